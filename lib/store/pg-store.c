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
 *
 * THE DATABASE GOING AWAY
 *   Every write of a batch is also kept in the batch's log until its commit.
 *   When a statement fails (the connection is gone), the rest of the batch
 *   is not sent but logged, the transaction rolled back, and the log moved
 *   to the retry list; the next batch (the claimer forces one each
 *   heartbeat while writes wait: store_pg_pending) replays the retry list
 *   first, in order, inside its transaction. Leases whose finish waits stay
 *   held (renewed, counted against the daemon's units) until it commits.
 *   The retry list is bounded (PG_RETRY_MAX bytes of output): past it the
 *   oldest task's waiting writes are dropped with its lease; its run does not
 *   count, and the sweep requeues it once its lease expires (it runs again).
 *   A finish the server refuses as LOST (another daemon's sweep was first)
 *   is discarded like any write of a lost lease.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "plot/pool.h"
#include "store/pg-impl.h"

#define PG_RETRY_MAX (64u << 20) /* bytes of output waiting for the database */

enum { PEND_APPEND, PEND_FINISH };

/* A write the database has not committed yet (writer thread only). */
struct pend {
	struct pend *next;
	int kind, state;
	uint64_t id, lease;
	char *error;       /* PEND_FINISH: may be NULL */
	void *data;        /* PEND_APPEND */
	size_t len;
};

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
	/* writer thread only: */
	struct pend *log, **log_tail;     /* this batch's writes, until its commit */
	struct pend *retry, **retry_tail; /* failed batches' writes, in order */
	size_t retry_bytes;
	int broken;                       /* this batch lost the connection */
	size_t replaying;                 /* retried writes in this batch */
	/* mu: what store_pg_pending reports */
	size_t pending;
	uint64_t dropped, replayed;
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

static void pend_free(struct pend *w)
{
	free(w->error);
	free(w->data);
	free(w);
}

/* Send one write, unless the batch already lost the connection. */
static void pend_send(struct pgstore *p, struct pend *w)
{
	int rc = 0;
	if (!p->broken && w->kind == PEND_APPEND)
		rc = pgq_append(p->q, w->id, w->lease, w->data, w->len, p->err, sizeof p->err);
	else if (!p->broken)
		rc = pgq_finish(p->q, w->id, w->lease, w->state, w->error, p->err,
				sizeof p->err);
	if (rc == -PGQ_E_LOST && w->kind == PEND_APPEND)
		lease_of(p, w->id, 1); /* later writes of that run are dropped */
	if (rc == -PGQ_E_QUERY)
		p->broken = 1;
}

/* Log w in this batch and send it. 0, or -1 when out of memory. */
static int pend_add(struct pgstore *p, struct pend *w)
{
	*p->log_tail = w;
	p->log_tail = &w->next;
	pend_send(p, w);
	return 0;
}

static int pg_put(void *ctx, const struct store_record *r)
{
	struct pgstore *p = ctx;
	if (!POOL_STATE_TERMINAL(r->state))
		return 0;
	uint64_t lease = lease_end(p, r->id);
	if (!lease)
		return 0; /* lost, or not ours: the run does not count */
	struct pend *w = calloc(1, sizeof *w);
	if (!w || (r->error && !(w->error = strdup(r->error)))) {
		free(w);
		return -1;
	}
	*w = (struct pend){ .kind = PEND_FINISH, .state = r->state, .id = r->id,
			    .lease = lease, .error = w->error };
	return pend_add(p, w);
}

static int pg_append(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len)
{
	struct pgstore *p = ctx;
	uint64_t lease = lease_of(p, id, 0); /* an ending one: its finish is queued after */
	(void)off; /* chunks are appended in order; the offset is implied */
	if (!lease || !len)
		return 0;
	struct pend *w = calloc(1, sizeof *w);
	if (!w || !(w->data = malloc(len))) {
		free(w);
		return -1;
	}
	memcpy(w->data, data, len);
	*w = (struct pend){ .kind = PEND_APPEND, .id = id, .lease = lease, .data = w->data,
			    .len = len };
	return pend_add(p, w);
}

/* The retry list is over its bound: drop the oldest task's writes and its
 * lease (the sweep requeues it). */
static void retry_trim(struct pgstore *p)
{
	while (p->retry_bytes > PG_RETRY_MAX && p->retry) {
		uint64_t id = p->retry->id;
		struct pend **pp = &p->retry;
		while (*pp) {
			struct pend *w = *pp;
			if (w->id == id) {
				*pp = w->next;
				p->retry_bytes -= w->len;
				pend_free(w);
			} else {
				pp = &w->next;
			}
		}
		p->retry_tail = &p->retry;
		while (*p->retry_tail)
			p->retry_tail = &(*p->retry_tail)->next;
		pthread_mutex_lock(&p->mu);
		ssize_t i = find(p, id);
		if (i >= 0)
			p->held[i] = p->held[--p->n];
		p->dropped++;
		pthread_mutex_unlock(&p->mu);
	}
}

/* A batch that lost the connection: its log waits for the next one. */
static void log_to_retry(struct pgstore *p)
{
	size_t n = 0;
	for (struct pend *w = p->log; w; w = w->next) {
		p->retry_bytes += w->len;
		n++;
	}
	*p->retry_tail = p->log;
	if (p->log)
		p->retry_tail = p->log_tail;
	p->log = NULL;
	p->log_tail = &p->log;
	retry_trim(p);
	n = 0;
	for (struct pend *w = p->retry; w; w = w->next)
		n++;
	pthread_mutex_lock(&p->mu);
	p->pending = n;
	pthread_mutex_unlock(&p->mu);
}

static void log_clear(struct pgstore *p)
{
	for (struct pend *w = p->log, *nx; w; w = nx) {
		nx = w->next;
		pend_free(w);
	}
	p->log = NULL;
	p->log_tail = &p->log;
	pthread_mutex_lock(&p->mu);
	p->pending = 0;
	pthread_mutex_unlock(&p->mu);
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
	log_clear(p);
	for (struct pend *w = p->retry, *nx; w; w = nx) {
		nx = w->next;
		pend_free(w);
	}
	pgq_free(p->q);
	pthread_mutex_destroy(&p->mu);
	free(p->held);
	free(p);
}

/* A batch begins: reconnect if the connection broke, then replay what
 * failed batches left, in order, in this transaction. Never fails: without
 * a connection the batch's writes are logged for the next one. */
static int pg_begin(void *ctx)
{
	struct pgstore *p = ctx;
	p->broken = (!pgq_connected(p->q) &&
		     pgq_reconnect(p->q, p->err, sizeof p->err) < 0) ||
		    pgq_exec_cmd(p->q, "store (begin)", "BEGIN", 0, NULL, p->err, sizeof p->err);
	struct pend *r = p->retry;
	p->retry = NULL;
	p->retry_tail = &p->retry;
	p->retry_bytes = 0;
	p->replaying = 0;
	for (struct pend *nx; r; r = nx) {
		nx = r->next;
		r->next = NULL;
		pend_add(p, r);
		p->replaying++;
	}
	return 0;
}

static int pg_commit(void *ctx)
{
	struct pgstore *p = ctx;
	if (!p->broken &&
	    pgq_exec_cmd(p->q, "store (commit)", "COMMIT", 0, NULL, p->err, sizeof p->err) == 0) {
		log_clear(p);
		release_ended(p);
		pthread_mutex_lock(&p->mu);
		p->replayed += p->replaying;
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	pgq_rollback(p->q);
	log_to_retry(p); /* kept: the writer need not know */
	return 0;
}

static void pg_rollback(void *ctx)
{
	struct pgstore *p = ctx;
	pgq_rollback(p->q); /* (not reached: commit never fails) */
	log_to_retry(p);
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
	p->log_tail = &p->log;
	p->retry_tail = &p->retry;
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
		for (size_t i = 0; i < p->n; i++) /* ending ones too: a finish may wait */
			(*out)[n++] = (struct pgq_lease){ p->held[i].id, p->held[i].lease };
		if (!n) {
			free(*out);
			*out = NULL;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

void store_pg_pending(struct store *s, size_t *writes, uint64_t *dropped, uint64_t *replayed)
{
	struct pgstore *p = of(s);
	*writes = 0;
	*dropped = *replayed = 0;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	*writes = p->pending;
	*dropped = p->dropped;
	*replayed = p->replayed;
	pthread_mutex_unlock(&p->mu);
}
