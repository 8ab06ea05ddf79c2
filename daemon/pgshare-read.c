/*
 * pgshare-read.c — following a task in the shared queue's database, for
 * any front: the one place that tails a task held elsewhere (or queued),
 * with two kinds of reply sink, a socket client (plot tail, plot run) and
 * a callback (the HTTP front: completions, mailbox, cancel, queues).
 *
 * DESIGN
 *   A read is an op on the claimer thread (pgshare.c), which alone talks
 *   to the database. A tail is a round every 50 ms (the first ones sooner:
 *   5, 10, 20, 40 ms, so a short task's end is seen soon): on the first, the
 *   task's record (HEAD); on each, the output rows appended since the last
 *   one seen (CHUNK: pgq_output_since, one statement that also says the
 *   state); when the state is terminal (or at once without follow), the
 *   record again (END). Each message is posted to the loop in order; the
 *   loop hands it to the sink. A whole read (HTTP's non-streaming answers
 *   and the mailbox) skips HEAD and CHUNK: it only counts the rows, and
 *   END carries the whole output, read in the same round that saw the end.
 *
 *   The sink is a struct pgshare_reader, refcounted between the op, its
 *   messages in the post queue and the consumer. The consumer says it left
 *   by setting gone (a socket client that went away, an HTTP request that
 *   ended: pgshare_reader_stop): its messages are then dropped on the loop
 *   before they touch it, and the tail ends at its next round. Messages
 *   discarded at exit (post queue not live) never reach a sink.
 *
 *   chunks counts the rows the task appended: one per output chunk with a
 *   byte in it (a pool appends every non-empty emit as one row), what HTTP
 *   reports as usage.completion_tokens for a local task.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgshare-impl.h"

static void on_tail(void *ctx, uint64_t key, void *arg, int live);

void pgshare_reader_unref(struct pgshare_reader *sh)
{
	if (sh && __atomic_sub_fetch(&sh->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(sh);
}

void pgshare_reader_stop(struct pgshare_reader *r)
{
	if (!r)
		return;
	__atomic_store_n(&r->gone, 1, __ATOMIC_RELEASE);
	pgshare_reader_unref(r);
}

void pgshare_reader_drop(struct pgshare_reader *r)
{
	pgshare_reader_unref(r);
}

static int reader_gone(const struct pgshare_reader *r)
{
	return __atomic_load_n(&r->gone, __ATOMIC_ACQUIRE);
}

/* An op of kind with a new sink: refs for the op and, with fn, the
 * consumer. */
static struct op *op_with_sink(int kind, uint64_t task, pgshare_read_fn fn, void *ctx)
{
	struct op *o = calloc(1, sizeof *o);
	struct pgshare_reader *sh = calloc(1, sizeof *sh);
	if (!o || !sh) {
		free(o);
		free(sh);
		return NULL;
	}
	*sh = (struct pgshare_reader){ .refs = fn ? 2 : 1, .fn = fn, .ctx = ctx };
	o->kind = kind;
	o->task = task;
	o->sh = sh;
	return o;
}

/* ---- the loop's half ------------------------------------------------------------ */

/* A subscribe to a task held elsewhere: a tail that polls the database. */
int pgshare_tail_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req)
{
	struct op *o = op_with_sink(OP_TAIL, req->u.task_ref.task, NULL, NULL);
	if (!o)
		return 0;
	o->conn_num = c->num;
	o->req_id = req->id;
	o->follow = req->u.task_ref.follow;
	pgshare_push(ps, o);
	return 1;
}

struct pgshare_reader *pgshare_follow(struct pgshare *ps, uint64_t task, int follow, int whole,
				      pgshare_read_fn fn, void *ctx)
{
	struct op *o = op_with_sink(OP_TAIL, task, fn, ctx);
	if (!o)
		return NULL;
	o->follow = follow;
	o->whole = whole;
	pgshare_push(ps, o);
	return o->sh;
}

struct pgshare_reader *pgshare_cancel_task(struct pgshare *ps, uint64_t task,
					   pgshare_read_fn fn, void *ctx)
{
	struct op *o = op_with_sink(OP_CANCEL, task, fn, ctx);
	if (!o)
		return NULL;
	o->owner = 1;
	pgshare_push(ps, o);
	return o->sh;
}

struct pgshare_reader *pgshare_stats_read(struct pgshare *ps, pgshare_read_fn fn, void *ctx)
{
	struct op *o = op_with_sink(OP_STATS, 0, fn, ctx);
	if (!o)
		return NULL;
	pgshare_push(ps, o);
	return o->sh;
}

static int code_of(int rc)
{
	switch (-rc) {
	case 0: return 0;
	case PGQ_E_NOTFOUND: return PROTO_E_NOT_FOUND;
	case PGQ_E_STATE: return PROTO_E_STATE;
	case PGQ_E_INVAL: return PROTO_E_PERMISSION;
	default: return PROTO_E_STORE;
	}
}

/* Loop: hand message o to its callback sink. */
static void to_callback(struct op *o)
{
	static const int kinds[] = { [TAIL_HEAD] = PGSHARE_READ_HEAD,
				     [TAIL_CHUNK] = PGSHARE_READ_CHUNK,
				     [TAIL_END] = PGSHARE_READ_END, [TAIL_ERR] = PGSHARE_READ_ERR };
	struct pgshare_read ev = { .task = o->task, .code = code_of(o->rc), .msg = o->err,
				   .rec = &o->rec, .data = o->data, .len = o->len,
				   .chunks = o->nchunks, .models = o->mstat, .n_models = o->nm,
				   .daemons = o->dstat, .n_daemons = o->nd };

	if (o->kind == OP_CANCEL)
		ev.kind = PGSHARE_READ_CANCELLED;
	else if (o->kind == OP_STATS)
		ev.kind = o->rc < 0 ? PGSHARE_READ_ERR : PGSHARE_READ_STATS;
	else
		ev.kind = kinds[o->msg];
	if (ev.kind == PGSHARE_READ_ERR && !ev.code)
		ev.code = PROTO_E_STORE;
	o->sh->fn(o->sh->ctx, &ev);
}

void pgshare_read_answer(struct pgshare *ps, struct op *o, int live)
{
	(void)ps;
	if (live && !reader_gone(o->sh))
		to_callback(o);
	pgshare_op_free(o);
}

static void send_stream(struct conn *c, struct op *o)
{
	struct proto_msg m;

	if (o->msg == TAIL_CHUNK) {
		proto_msg_init(&m, PROTO_T_CHUNK, o->req_id);
		m.u.chunk.task = o->task;
		m.u.chunk.data = o->data;
		m.u.chunk.len = o->len;
	} else {
		struct proto_task_info pi;
		pgshare_record_to_proto(&o->rec, &pi);
		proto_msg_init(&m, PROTO_T_END, o->req_id);
		m.u.end.task = o->task;
		m.u.end.state = o->rec.state;
		m.u.end.error = o->rec.error;
		m.u.end.wait_secs = pi.wait_secs;
		m.u.end.run_secs = pi.run_secs;
	}
	if (conn_send_stream(c, &m) < 0)
		__atomic_store_n(&o->sh->gone, 1, __ATOMIC_RELEASE);
}

/* Loop: a tail's message to its socket client. */
static void to_socket(struct pgshare *ps, struct op *o)
{
	struct conn *c = conn_by_num(ps->d->conns, o->conn_num);
	struct proto_msg req, r;

	proto_msg_init(&req, PROTO_T_SUBSCRIBE, o->req_id);
	if (!c) {
		__atomic_store_n(&o->sh->gone, 1, __ATOMIC_RELEASE);
	} else if (o->msg == TAIL_ERR) {
		conn_error(c, &req, code_of(o->rc) ? code_of(o->rc) : PROTO_E_STORE,
			   "task %llu %s", (unsigned long long)o->task,
			   o->rc == -PGQ_E_NOTFOUND ? "not found" : o->err);
	} else if (o->msg == TAIL_HEAD && c->role != ROLE_OWNER &&
		   o->rec.owner_uid != c->peer.uid) {
		__atomic_store_n(&o->sh->gone, 1, __ATOMIC_RELEASE);
		conn_error(c, &req, PROTO_E_PERMISSION, "task %llu belongs to another user",
			   (unsigned long long)o->task);
	} else if (o->msg == TAIL_HEAD) {
		proto_msg_ok(&r, &req);
		pgshare_record_to_proto(&o->rec, &r.u.task);
		conn_send(c, &r);
	} else {
		send_stream(c, o);
	}
}

/* post_send: one message of a tail, in order. */
static void on_tail(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;

	(void)key;
	if (!live || reader_gone(o->sh))
		__atomic_store_n(&o->sh->gone, 1, __ATOMIC_RELEASE);
	else if (o->sh->fn)
		to_callback(o);
	else
		to_socket(ps, o);
	pgshare_op_free(o);
}

/* ---- the claimer thread's half ------------------------------------------------------- */

/* A message of tail t for the loop; its data and record move into it. */
static void tail_post(struct pgshare *ps, struct op *t, int msg)
{
	struct op *m = calloc(1, sizeof *m);
	if (!m)
		return;
	*m = (struct op){ .kind = OP_TAIL, .msg = msg, .conn_num = t->conn_num,
			  .req_id = t->req_id, .task = t->task, .rc = t->rc, .sh = t->sh,
			  .data = t->data, .len = t->len, .nchunks = t->nchunks };
	__atomic_add_fetch(&t->sh->refs, 1, __ATOMIC_ACQ_REL);
	memcpy(m->err, t->err, sizeof m->err);
	if (msg != TAIL_CHUNK) {
		m->rec = t->rec;
		memset(&t->rec, 0, sizeof t->rec);
	}
	t->data = NULL;
	t->len = t->cap = 0;
	if (post_send(ps->post, on_tail, ps, m) < 0)
		pgshare_op_free(m);
}

static void tail_collect(void *arg, uint64_t seq, const void *data, size_t len)
{
	struct op *t = arg;
	(void)seq;
	t->nchunks++;
	if (t->whole)
		return; /* counted only: END brings the whole output */
	if (t->len + len > t->cap) {
		size_t n = (t->len + len) * 2;
		char *d = realloc(t->data, n);
		if (!d)
			return; /* the chunk is lost to this reader only */
		t->data = d;
		t->cap = n;
	}
	memcpy(t->data + t->len, data, len);
	t->len += len;
}

/* A tail's first round: the task's record as its header (a whole read has
 * none). 0, or -1 when the task cannot be read (ERR posted). */
static int tail_head(struct pgshare *ps, struct op *t)
{
	t->started = 1;
	if (t->whole)
		return 0;
	t->rc = pgq_get(ps->q, t->task, &t->rec, NULL, t->err, sizeof t->err);
	if (t->rc < 0) {
		tail_post(ps, t, TAIL_ERR);
		return -1;
	}
	free(t->rec.output); /* the output comes as chunks */
	t->rec.output = NULL;
	t->rec.output_len = 0;
	tail_post(ps, t, TAIL_HEAD);
	return 0;
}

/* The wait before the next round: 5, 10, 20, 40 ms, then every 50 ms. A
 * short task (most non-streaming requests) is seen ending within a few ms
 * of its commit instead of a whole poll later, for four statements more
 * at the start of a long one. */
static uint64_t tail_interval(struct op *t)
{
	uint64_t ms = (uint64_t)PGSHARE_TAIL_FIRST_MS << (t->rounds < 8 ? t->rounds : 8);
	t->rounds++;
	return ms < PGSHARE_TAIL_POLL_MS ? ms : PGSHARE_TAIL_POLL_MS;
}

/* Whether the task ran again since the last round (its attempts changed):
 * what came is then the new run's output from its start, the lost run's
 * deleted. A whole read counts only the new run's chunks and goes on (its
 * END reads the output then); a stream that had passed on output of the
 * lost run ends with an error (1) instead of splicing the two runs. */
static int requeued(struct op *t, int attempts, uint64_t seen, uint64_t chunks)
{
	int was = t->attempts, known = t->attempts_known;
	t->attempts = attempts;
	t->attempts_known = 1;
	if (!known || attempts == was)
		return 0;
	if (t->whole) {
		t->nchunks -= chunks;
		return 0;
	}
	if (seen == 0)
		return 0; /* nothing of the lost run was read: follow the new one */
	free(t->data);
	t->data = NULL;
	t->len = t->cap = 0;
	t->rc = -PGQ_E_STATE;
	snprintf(t->err, sizeof t->err, "lost its runner and runs again from the start (run %d): "
		 "the output so far was the lost run's; follow it again for the new run",
		 attempts + 1);
	return 1;
}

/* One round of a tail: its header first, then the chunks appended since the
 * last round, then its end. Returns 1 while it goes on. A database that
 * fails in the middle of a follow is asked again next round (the tail
 * outlives a restart); a whole read says so at once (ERR). */
static int tail_step(struct pgshare *ps, struct op *t)
{
	if (__atomic_load_n(&t->sh->gone, __ATOMIC_ACQUIRE))
		return 0;
	if (!t->started && tail_head(ps, t) < 0)
		return 0;
	uint64_t seen = t->seq, chunks = t->nchunks;
	int attempts = -1;
	t->rc = pgq_output_since(ps->q, t->task, t->seq, tail_collect, t, &t->seq, &t->state,
				 &attempts, t->err, sizeof t->err);
	if (t->rc == 0 && requeued(t, attempts, seen, chunks)) {
		tail_post(ps, t, TAIL_ERR);
		return 0;
	}
	if (t->len)
		tail_post(ps, t, TAIL_CHUNK);
	if (t->rc < 0 && t->whole && (t->rc != -PGQ_E_QUERY || !t->follow)) {
		tail_post(ps, t, TAIL_ERR);
		return 0;
	}
	if (t->rc < 0 && t->rc != -PGQ_E_QUERY)
		return 0;
	if (t->rc == 0 && (POOL_STATE_TERMINAL(t->state) || !t->follow)) {
		if ((t->rc = pgq_get(ps->q, t->task, &t->rec, NULL, t->err, sizeof t->err)) == 0)
			tail_post(ps, t, TAIL_END);
		else if (t->whole)
			tail_post(ps, t, TAIL_ERR);
		return 0;
	}
	t->next_ms = pgshare_mono_ms() + tail_interval(t);
	return 1;
}

void pgshare_thread_tail(struct pgshare *ps, struct op *o)
{
	if (!tail_step(ps, o)) {
		pgshare_op_free(o);
		return;
	}
	o->next = ps->waiters;
	ps->waiters = o;
}
