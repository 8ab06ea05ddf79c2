/*
 * pg-store.c — the postgres row of the store table: the struct store the
 * pools of a postgres model write through (by way of the store writer), and
 * the table of leases this daemon holds.
 *
 * DESIGN
 *   With PostgreSQL the database is the queue: tasks are inserted by
 *   pgq_submit and enter a daemon's pool only when that daemon claims them
 *   (daemon/pgshare.c). What a pool then writes about a claimed task comes
 *   here on the store writer's thread: output appends become pgq_append,
 *   the terminal record becomes pgq_finish, both presenting the task's
 *   lease token; the other records (queued, running) say nothing the
 *   database does not know already and are dropped, as are deletes
 *   (retention of the local copy is local). A batch of the writer is one
 *   transaction (BEGIN ... COMMIT): one commit for many appends.
 *
 *   The lease table maps a task id to the token its claim returned. The
 *   claimer adds to it (store_pg_hold) and removes lost leases; the writer
 *   takes a task's lease out at its finish. A write for a task without a
 *   lease here (lost, or never claimed here) is dropped: a daemon that lost
 *   its lease discards the output. One mutex guards the table; the pgq
 *   connection is the writer thread's alone.
 *
 *   Nothing is read back at start (scan finds nothing): a restarted daemon
 *   claims again; the tasks it held come back through the sweep.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "plot/pool.h"
#include "store/pg-impl.h"

struct pg_lease {
	uint64_t id, lease, cost;
	char model[64];
	int ending;  /* its finish is in the writer's open batch */
};

struct pgstore {
	struct pgq *q;           /* the writer thread's connection */
	pthread_mutex_t mu;      /* guards held */
	struct pg_lease *held;
	size_t n, cap;
	char err[512];
	void (*on_release)(void *ctx); /* leases ended by a batch: units are free */
	void *on_release_ctx;
};

static ssize_t find(struct pgstore *p, uint64_t id)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->held[i].id == id)
			return (ssize_t)i;
	return -1;
}

/* The lease of id (0: none); take 1 also removes it. */
static uint64_t lease_of(struct pgstore *p, uint64_t id, int take)
{
	uint64_t l = 0;
	pthread_mutex_lock(&p->mu);
	ssize_t i = find(p, id);
	if (i >= 0) {
		l = p->held[i].lease;
		if (take)
			p->held[i] = p->held[--p->n];
	}
	pthread_mutex_unlock(&p->mu);
	return l;
}

/* Mark id's lease as ending (the batch's commit or rollback removes it);
 * returns its token, 0 when not held or already ending. */
static uint64_t lease_end(struct pgstore *p, uint64_t id)
{
	uint64_t l = 0;
	pthread_mutex_lock(&p->mu);
	ssize_t i = find(p, id);
	if (i >= 0 && !p->held[i].ending) {
		l = p->held[i].lease;
		p->held[i].ending = 1;
	}
	pthread_mutex_unlock(&p->mu);
	return l;
}

/* After a batch: the leases it ended are gone (committed, or the finish was
 * lost and the lease expires); tell the claimer their units are free. */
static void release_ended(struct pgstore *p)
{
	size_t gone = 0;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n;) {
		if (p->held[i].ending) {
			p->held[i] = p->held[--p->n];
			gone++;
		} else {
			i++;
		}
	}
	/* under the lock: store_pg_on_release(NULL) returns only once no call
	 * is running (it must be cheap and must not call back here) */
	if (gone && p->on_release)
		p->on_release(p->on_release_ctx);
	pthread_mutex_unlock(&p->mu);
}

static int pg_put(void *ctx, const struct store_record *r)
{
	struct pgstore *p = ctx;
	if (!POOL_STATE_TERMINAL(r->state))
		return 0;
	uint64_t lease = lease_end(p, r->id);
	if (!lease)
		return 0; /* lost, or not ours: the run does not count */
	int rc = pgq_finish(p->q, r->id, lease, r->state, r->error, p->err, sizeof p->err);
	return rc == -PGQ_E_QUERY ? -1 : 0;
}

static int pg_append(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len)
{
	struct pgstore *p = ctx;
	uint64_t lease = lease_of(p, id, 0); /* an ending one: its finish is queued after */
	(void)off; /* chunks are appended in order; the offset is implied */
	if (!lease || !len)
		return 0;
	int rc = pgq_append(p->q, id, lease, data, len, p->err, sizeof p->err);
	if (rc == -PGQ_E_LOST)
		lease_of(p, id, 1);
	return rc == -PGQ_E_QUERY ? -1 : 0;
}

static int pg_get(void *ctx, uint64_t id, struct store_record *out)
{
	struct pgstore *p = ctx;
	return pgq_get(p->q, id, out, NULL, p->err, sizeof p->err) < 0 ? -1 : 0;
}

static int pg_del(void *ctx, uint64_t id)
{
	(void)ctx;
	(void)id;
	return 0; /* the local copy's retention; the database keeps the task */
}

static size_t pg_count(void *ctx)
{
	struct pgstore *p = ctx;
	pthread_mutex_lock(&p->mu);
	size_t n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static void pg_free(void *ctx)
{
	struct pgstore *p = ctx;
	pgq_free(p->q);
	pthread_mutex_destroy(&p->mu);
	free(p->held);
	free(p);
}

static int pg_begin(void *ctx)
{
	struct pgstore *p = ctx;
	if (!pgq_connected(p->q) && pgq_reconnect(p->q, p->err, sizeof p->err) < 0)
		return -1; /* the batch fails; the next one tries again */
	return pgq_exec_cmd(p->q, "store (begin)", "BEGIN", 0, NULL, p->err, sizeof p->err)
		? -1 : 0;
}

static int pg_commit(void *ctx)
{
	struct pgstore *p = ctx;
	int rc = pgq_exec_cmd(p->q, "store (commit)", "COMMIT", 0, NULL, p->err,
			      sizeof p->err) ? -1 : 0;
	if (rc == 0)
		release_ended(p);
	return rc;
}

static void pg_rollback(void *ctx)
{
	struct pgstore *p = ctx;
	pgq_rollback(p->q);
	release_ended(p);
}

static int pg_scan(void *ctx, store_scan_fn fn, void *arg)
{
	(void)ctx;
	(void)fn;
	(void)arg;
	return 0; /* claims bring tasks in, not a read at start */
}

static int pg_seq_get(void *ctx, uint64_t *next)
{
	(void)ctx;
	*next = 1; /* ids come from the database's sequence */
	return 0;
}

static int pg_seq_put(void *ctx, uint64_t next)
{
	(void)ctx;
	(void)next;
	return 0;
}

static const char *pg_error(void *ctx)
{
	struct pgstore *p = ctx;
	return p->err;
}

static const struct store_ops pg_ops = {
	.put = pg_put, .get = pg_get, .del = pg_del, .count = pg_count, .free = pg_free,
	.begin = pg_begin, .commit = pg_commit, .rollback = pg_rollback, .scan = pg_scan,
	.seq_get = pg_seq_get, .seq_put = pg_seq_put, .error = pg_error, .append = pg_append,
};

int store_pg_open(const struct store_open_args *a, struct store **out, char *err,
		  size_t errlen)
{
	struct pgstore *p = calloc(1, sizeof *p);
	struct store *s = calloc(1, sizeof *s); /* store_free frees it */
	*out = NULL;
	if (!p || !s) {
		free(p);
		free(s);
		snprintf(err, errlen, "postgres: out of memory");
		return -1;
	}
	if (pgq_open(a->url, a->name, &p->q, err, errlen) < 0) {
		free(p);
		free(s);
		return -1;
	}
	pthread_mutex_init(&p->mu, NULL);
	*s = (struct store){ .ops = &pg_ops, .ctx = p };
	snprintf(s->name, sizeof s->name, "postgres");
	*out = s;
	return 0;
}

static struct pgstore *of(struct store *s)
{
	return s && s->ops == &pg_ops ? s->ctx : NULL;
}

void store_pg_on_release(struct store *s, void (*fn)(void *ctx), void *ctx)
{
	struct pgstore *p = of(s);
	if (p) {
		pthread_mutex_lock(&p->mu);
		p->on_release = fn;
		p->on_release_ctx = ctx;
		pthread_mutex_unlock(&p->mu);
	}
}

void store_pg_held(struct store *s, const char *model, uint64_t *units, uint64_t *count)
{
	struct pgstore *p = of(s);
	*units = *count = 0;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->held[i].model, model)) {
			*units += p->held[i].cost;
			(*count)++;
		}
	pthread_mutex_unlock(&p->mu);
}

int store_pg_hold(struct store *s, uint64_t id, uint64_t lease, const char *model,
		  uint64_t cost)
{
	struct pgstore *p = of(s);
	int rc = 0;
	if (!p)
		return -1;
	pthread_mutex_lock(&p->mu);
	if (p->n == p->cap) {
		size_t n = p->cap ? p->cap * 2 : 64;
		struct pg_lease *v = realloc(p->held, n * sizeof *v);
		if (v) {
			p->held = v;
			p->cap = n;
		}
	}
	if (p->n < p->cap)
	{
		struct pg_lease *l = &p->held[p->n++];
		*l = (struct pg_lease){ .id = id, .lease = lease, .cost = cost };
		snprintf(l->model, sizeof l->model, "%s", model);
	}
	else
		rc = -1;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int store_pg_drop(struct store *s, uint64_t id, uint64_t lease)
{
	struct pgstore *p = of(s);
	int rc = -1;
	if (!p)
		return -1;
	pthread_mutex_lock(&p->mu);
	ssize_t i = find(p, id);
	if (i >= 0 && (!lease || p->held[i].lease == lease)) {
		p->held[i] = p->held[--p->n];
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

size_t store_pg_leases(struct store *s, struct pgq_lease **out)
{
	struct pgstore *p = of(s);
	size_t n = 0;
	*out = NULL;
	if (!p)
		return 0;
	pthread_mutex_lock(&p->mu);
	if (p->n && (*out = malloc(p->n * sizeof **out))) {
		for (size_t i = 0; i < p->n; i++)
			if (!p->held[i].ending)
				(*out)[n++] = (struct pgq_lease){ p->held[i].id, p->held[i].lease };
		if (!n) {
			free(*out);
			*out = NULL;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}
