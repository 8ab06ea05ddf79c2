/*
 * writer.c — the store writer: one thread owns a durable store; everyone
 * else posts to it (redis bio.c). Backend-independent: the SQL lives behind
 * struct store_ops.
 *
 * DESIGN
 *   Producers (the pools, through the facade store_writer_store(); the
 *   daemon, through store_writer_sync) append ops to one list under a mutex
 *   and signal a condition variable. The thread takes the whole list at
 *   once and writes it as one transaction: group commit, so many submits
 *   and state changes share one fsync. After the commit (or the rollback of
 *   a failed batch) it calls the sync completions that were in the batch,
 *   in order, with the outcome; the daemon's completion posts to its loop.
 *
 *   Within a batch only a task's last record is written: an earlier put of
 *   the same id hands it its request (which a later state record leaves
 *   out) and is skipped; a put followed by a delete is skipped. A put that
 *   carries output (which replaces the stored output) stays in its place.
 *   Under load a task's submit, start and end often share a batch. Output
 *   appended in pieces (one per token) is joined per task and batch into
 *   one chunk.
 *
 *   The id sequence is persisted in the same transaction as the records:
 *   the backend's next id becomes max(committed ids) + 1, so no committed
 *   id is ever handed out again, across restarts and models.
 *
 * INVARIANTS
 *   - Ops reach the backend in the order they were posted.
 *   - A completion runs after every op posted before it is committed or
 *     known lost; never before.
 *   - Times are converted to wall clock here, once, on the way in.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plot/store.h"

enum { OP_PUT, OP_DEL, OP_SYNC, OP_SKIP, OP_APPEND };

struct wop {
	struct wop *next;
	int kind;
	uint64_t off;          /* OP_APPEND: where rec.output goes in the task's output */
	size_t ocap;           /* OP_APPEND after a join: bytes allocated at rec.output */
	struct store_record rec;
	store_done_fn fn;
	void *ctx, *arg;
};

struct store_writer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wop *head, *tail;
	int stop, frozen, failed;
	char err[512];
	uint64_t batches, records;
	struct store *backend;
	struct store facade;
	pthread_t thread;
	uint64_t seq; /* next id the backend has recorded (writer thread only) */
};

/* ---- time ---------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One offset for all four times of a record, so their differences (wait,
 * run time) survive the round trip exactly. */
static uint64_t shift(uint64_t t, int to_wall, uint64_t now_mono, uint64_t now_wall)
{
	if (!t || t == UINT64_MAX)
		return t;
	if (to_wall)
		return t - now_mono + now_wall;
	if (t >= now_wall)
		return now_mono + (t - now_wall);
	return now_wall - t >= now_mono ? 1 : now_mono - (now_wall - t); /* 1: long past */
}

void store_record_times(struct store_record *r, int to_wall)
{
	uint64_t m = clock_ns(CLOCK_MONOTONIC), w = clock_ns(CLOCK_REALTIME);
	r->created_ns = shift(r->created_ns, to_wall, m, w);
	r->started_ns = shift(r->started_ns, to_wall, m, w);
	r->ended_ns = shift(r->ended_ns, to_wall, m, w);
	r->deadline_ns = shift(r->deadline_ns, to_wall, m, w);
}

/* ---- queueing ----------------------------------------------------------------- */

static char *dup_bytes(const char *p, size_t n)
{
	char *c = malloc(n + 1);
	if (c) {
		memcpy(c, p, n);
		c[n] = '\0';
	}
	return c;
}

static char *dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A deep copy with wall-clock times. -1: out of memory. */
static int copy_record(struct store_record *d, const struct store_record *s)
{
	*d = *s;
	store_record_times(d, 1);
	d->model = dup_str(s->model);
	d->label = dup_str(s->label);
	d->error = dup_str(s->error);
	d->key = dup_str(s->key);
	d->output = s->output ? dup_bytes(s->output, s->output_len) : NULL;
	d->request = s->request_len ? dup_bytes(s->request, s->request_len) : NULL;
	if ((s->model && !d->model) || (s->label && !d->label) || (s->error && !d->error) ||
	    (s->key && !d->key) || (s->output && !d->output) ||
	    (s->request_len && !d->request)) {
		store_record_clear(d);
		return -1;
	}
	return 0;
}

/* Append op, unless frozen (then it is dropped). */
static int enqueue(struct store_writer *w, struct wop *op)
{
	pthread_mutex_lock(&w->mu);
	if (w->frozen && op->kind != OP_SYNC) {
		pthread_mutex_unlock(&w->mu);
		store_record_clear(&op->rec);
		free(op);
		return 0;
	}
	if (w->tail)
		w->tail->next = op;
	else
		w->head = op;
	w->tail = op;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* A write that cannot be queued is a lost write: say so in the error. */
static int lost(struct store_writer *w, uint64_t id)
{
	pthread_mutex_lock(&w->mu);
	w->failed = 1;
	snprintf(w->err, sizeof w->err, "store: out of memory queueing task %llu",
		 (unsigned long long)id);
	pthread_mutex_unlock(&w->mu);
	return -1;
}

static int facade_put(void *ctx, const struct store_record *r)
{
	struct store_writer *w = ctx;
	struct wop *op = calloc(1, sizeof *op);
	if (!op || copy_record(&op->rec, r) < 0) {
		free(op);
		return lost(w, r->id);
	}
	op->kind = OP_PUT;
	return enqueue(w, op);
}

static int facade_del(void *ctx, uint64_t id)
{
	struct store_writer *w = ctx;
	struct wop *op = calloc(1, sizeof *op);
	if (!op)
		return lost(w, id);
	op->kind = OP_DEL;
	op->rec.id = id;
	return enqueue(w, op);
}

static int facade_append(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len)
{
	struct store_writer *w = ctx;
	struct wop *op = calloc(1, sizeof *op);
	if (!op || !(op->rec.output = dup_bytes(data, len))) {
		free(op);
		return lost(w, id);
	}
	op->kind = OP_APPEND;
	op->off = off;
	op->rec.id = id;
	op->rec.output_len = len;
	return enqueue(w, op);
}

int store_writer_sync(struct store_writer *w, store_done_fn fn, void *ctx, void *arg)
{
	struct wop *op = calloc(1, sizeof *op);
	if (!op)
		return -1;
	*op = (struct wop){ .kind = OP_SYNC, .fn = fn, .ctx = ctx, .arg = arg };
	return enqueue(w, op);
}

/* The facade is read through the writer's queue only; reads go to the
 * backend directly, which only the owner may do: the facade has none. */
static int facade_get(void *ctx, uint64_t id, struct store_record *out)
{
	(void)ctx;
	(void)id;
	(void)out;
	return -1;
}

static size_t facade_count(void *ctx)
{
	(void)ctx;
	return 0;
}

static void facade_free(void *ctx)
{
	(void)ctx; /* the writer owns itself: store_writer_free */
}

static const struct store_ops facade_ops = {
	.put = facade_put, .get = facade_get, .del = facade_del, .count = facade_count,
	.free = facade_free, .append = facade_append,
};

/* ---- the thread ---------------------------------------------------------------- */

static void take_request(struct store_record *to, struct store_record *from)
{
	if (!to->request_len && from->request_len) {
		to->request = from->request;
		to->request_len = from->request_len;
		from->request = NULL;
		from->request_len = 0;
	}
}

/* Join an append to the one before it of the same task when it continues
 * it: one chunk per task and batch. 0 joined, -1 not (or no memory). */
static int join(struct wop *to, struct wop *op)
{
	if (to->off + to->rec.output_len != op->off)
		return -1;
	size_t need = to->rec.output_len + op->rec.output_len + 1;
	if (need > to->ocap) { /* grow geometrically: a batch may join thousands of tokens */
		size_t cap = need < 64 ? 64 : need;
		if (cap <= SIZE_MAX / 2)
			cap *= 2;
		char *o = realloc(to->rec.output, cap);
		if (!o)
			return -1;
		to->rec.output = o;
		to->ocap = cap;
	}
	memcpy(to->rec.output + to->rec.output_len, op->rec.output, op->rec.output_len);
	to->rec.output_len += op->rec.output_len;
	op->kind = OP_SKIP;
	return 0;
}

/* Slot of id in an open-addressing table of cap (a power of two) entries. */
static size_t slot_of(struct wop **tab, size_t cap, uint64_t id)
{
	size_t i = (size_t)(id * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
	while (tab[i] && tab[i]->rec.id != id)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Appends first (oldest first: each joins the previous one of its task),
 * then puts (newest first: a later op of the same id supersedes a put). */
static void coalesce(struct wop *list)
{
	size_t n = 0, cap = 16;
	for (struct wop *op = list; op; op = op->next)
		n++;
	while (cap < 2 * n)
		cap *= 2;
	struct wop **v = malloc(n * sizeof *v), **seen = calloc(cap, sizeof *seen);
	if (!v || !seen)
		goto out; /* no memory: write everything, which is merely slower */
	n = 0;
	for (struct wop *op = list; op; op = op->next) {
		v[n++] = op;
		if (op->kind != OP_APPEND)
			continue;
		size_t i = slot_of(seen, cap, op->rec.id);
		if (!seen[i] || join(seen[i], op) < 0)
			seen[i] = op;
	}
	memset(seen, 0, cap * sizeof *seen);
	while (n--) {
		struct wop *op = v[n];
		if (op->kind != OP_PUT && op->kind != OP_DEL)
			continue;
		size_t i = slot_of(seen, cap, op->rec.id);
		if (!seen[i]) {
			seen[i] = op;
		} else if (op->kind == OP_PUT && !op->rec.output) {
			if (seen[i]->kind == OP_PUT)
				take_request(&seen[i]->rec, &op->rec);
			op->kind = OP_SKIP;
		} /* a put with output stays where it is: appends may follow it */
	}
out:
	free(v);
	free(seen);
}

static int apply(struct store_writer *w, struct wop *op, uint64_t *max_id)
{
	struct store *b = w->backend;
	if (op->kind == OP_PUT || op->kind == OP_SKIP) {
		if (op->rec.id >= *max_id)
			*max_id = op->rec.id + 1;
		return op->kind == OP_PUT ? b->ops->put(b->ctx, &op->rec) : 0;
	}
	if (op->kind == OP_APPEND)
		return store_append(b, op->rec.id, op->off, op->rec.output, op->rec.output_len);
	if (op->kind == OP_DEL)
		b->ops->del(b->ctx, op->rec.id); /* already gone is fine */
	return 0;
}

/* Write one batch in one transaction. Returns 1 committed, 0 failed. */
static int write_batch(struct store_writer *w, struct wop *list, uint64_t *nrec)
{
	struct store *b = w->backend;
	uint64_t next = w->seq;
	coalesce(list);
	int rc = b->ops->begin ? b->ops->begin(b->ctx) : 0;
	*nrec = 0;
	for (struct wop *op = list; op && rc == 0; op = op->next, (*nrec)++)
		rc = apply(w, op, &next);
	if (rc == 0 && next > w->seq && b->ops->seq_put)
		rc = b->ops->seq_put(b->ctx, next);
	if (rc == 0 && b->ops->commit)
		rc = b->ops->commit(b->ctx);
	if (rc < 0) {
		if (b->ops->rollback)
			b->ops->rollback(b->ctx);
		return 0;
	}
	w->seq = next;
	return 1;
}

static void finish_batch(struct store_writer *w, struct wop *list, int ok, uint64_t nrec)
{
	pthread_mutex_lock(&w->mu);
	w->batches++;
	if (ok) {
		w->records += nrec;
		w->failed = 0;
	} else {
		const char *e = w->backend->ops->error ? w->backend->ops->error(w->backend->ctx) : NULL;
		w->failed = 1;
		snprintf(w->err, sizeof w->err, "%s", e && e[0] ? e : "store: write failed");
	}
	pthread_mutex_unlock(&w->mu);
	for (struct wop *op = list, *nx; op; op = nx) {
		nx = op->next;
		if (op->kind == OP_SYNC)
			op->fn(op->ctx, op->arg, ok);
		store_record_clear(&op->rec);
		free(op);
	}
}

static void *writer_main(void *arg)
{
	struct store_writer *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		struct wop *list = w->head;
		w->head = w->tail = NULL;
		int stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		if (!list && stop)
			return NULL;
		uint64_t nrec;
		int ok = write_batch(w, list, &nrec);
		finish_batch(w, list, ok, nrec);
	}
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct store_writer *store_writer_new(struct store *backend, char *err, size_t errlen)
{
	struct store_writer *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "store: out of memory");
		store_free(backend);
		return NULL;
	}
	w->backend = backend;
	w->seq = 1;
	if (backend->ops->seq_get && backend->ops->seq_get(backend->ctx, &w->seq) < 0) {
		snprintf(err, errlen, "%s", backend->ops->error(backend->ctx));
		goto fail;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->facade = (struct store){ .ops = &facade_ops, .ctx = w };
	snprintf(w->facade.name, sizeof w->facade.name, "%s", backend->name);
	if (pthread_create(&w->thread, NULL, writer_main, w)) {
		snprintf(err, errlen, "store: cannot start the writer thread");
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	return w;
fail:
	store_free(backend);
	free(w);
	return NULL;
}

struct store *store_writer_store(struct store_writer *w)
{
	return &w->facade;
}

void store_writer_freeze(struct store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->frozen = 1;
	pthread_mutex_unlock(&w->mu);
}

int store_writer_error(struct store_writer *w, char *buf, size_t len)
{
	pthread_mutex_lock(&w->mu);
	int failed = w->failed;
	snprintf(buf, len, "%s", w->err);
	pthread_mutex_unlock(&w->mu);
	return failed;
}

void store_writer_counts(struct store_writer *w, uint64_t *batches, uint64_t *records)
{
	pthread_mutex_lock(&w->mu);
	*batches = w->batches;
	*records = w->records;
	pthread_mutex_unlock(&w->mu);
}

void store_writer_free(struct store_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	store_free(w->backend);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
