/*
 * http-pg.c — the HTTP front for models on the shared queue (PostgreSQL,
 * issues #15 and #16): completions whose task runs on whichever daemon
 * claims it, and the mailbox, cancel and queues routes answered by the
 * database for tasks no local pool has.
 *
 * DESIGN
 *   A completion's submit goes through the one submit path (submit.c puts
 *   it into the database, which gives its id). From then on the request
 *   follows the task in the database with pgshare-read.c's tail, the same
 *   follower `plot tail` and `plot run` use for a task held elsewhere,
 *   whether this daemon claims the task or another one does: one path,
 *   whatever the claim. Its messages arrive on the loop (this file's
 *   callback), fill the request's buffer and wake it through
 *   http_oai_event, as a pool note wakes a local one; http-oai.c turns the
 *   buffer into SSE or one response exactly as for a local task. Latency:
 *   the tail's poll (5 ms at first, growing to 50 ms) plus the runner's
 *   group commit: about 6 ms for a short task run elsewhere.
 *
 *   A streaming request holds the output read and not yet sent; past
 *   daemon.http_max_output it is dropped (http-oai.c's check_lag), as a
 *   local stream's slow reader is. A non-streaming one reads nothing until
 *   the task ends (a whole read: the rows are only counted), then the
 *   whole output at once.
 *
 *   usage.completion_tokens is the count of output rows the task appended
 *   (one per non-empty chunk), finish_reason follows from it as for a
 *   local task.
 *
 *   A client that leaves cancels its task: in the local pool when this
 *   daemon runs it, else in the database, whose NOTIFY plot_cancel stops
 *   it on the daemon that holds it. Every database call is the claimer
 *   thread's: the loop only posts and is answered.
 *
 *   The request owns one reader at a time (r->pg); when the request ends
 *   first, pgshare_reader_stop keeps its later messages from touching it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-impl.h"
#include "log.h"
#include "plot/pgq.h"

static struct pgshare *pg_of(const struct hreq *r)
{
	return r->h->d->durable ? r->h->d->durable->pg : NULL;
}

int http_pg_model(const struct hreq *r)
{
	struct pgshare *ps = pg_of(r);
	return ps && r->m && pgshare_serves(ps, r->m);
}

/* The read is over: let go of it (its last message is being handled). */
static void reader_done(struct hreq *r)
{
	pgshare_reader_drop(r->pg);
	r->pg = NULL;
}

static void buf_add(struct hreq *r, const char *data, size_t len)
{
	char *nb = realloc(r->pg_out, r->pg_len + len + 1);
	if (!nb) {
		r->drop = 1; /* a stream that cannot keep up ends with an error */
		return;
	}
	memcpy(nb + r->pg_len, data, len);
	r->pg_len += len;
	nb[r->pg_len] = 0;
	r->pg_out = nb;
}

static void read_end(struct hreq *r, int state, const char *error)
{
	r->pg_state = state;
	free(r->pg_error);
	r->pg_error = error ? strdup(error) : NULL;
	reader_done(r);
}

/* Loop: what the database says of a completion's task. */
static void on_task(void *ctx, const struct pgshare_read *ev)
{
	struct hreq *r = ctx;

	if (ev->kind == PGSHARE_READ_HEAD)
		return;
	if (ev->kind == PGSHARE_READ_CHUNK) {
		buf_add(r, ev->data, ev->len);
		r->pg_bytes += ev->len;
		r->pg_chunks = ev->chunks;
	} else if (ev->kind == PGSHARE_READ_END) {
		const struct store_record *rec = ev->rec;
		if (!r->stream && rec->output_len)
			buf_add(r, rec->output, rec->output_len);
		if (!r->stream)
			r->pg_bytes = rec->output_len;
		r->pg_chunks = ev->chunks;
		read_end(r, rec->state, rec->error);
	} else {
		read_end(r, POOL_FAILED, ev->msg);
	}
	http_oai_event(r);
}

int http_pg_follow(struct hreq *r)
{
	r->pg_state = POOL_QUEUED;
	r->pg = pgshare_follow(pg_of(r), r->task, 1, !r->stream, on_task, r);
	return r->pg ? 0 : -1;
}

void http_pg_info(const struct hreq *r, struct pool_task_info *ti)
{
	memset(ti, 0, sizeof *ti);
	ti->id = r->task;
	ti->state = r->pg_state;
	ti->chunks = r->pg_chunks;
	ti->output_bytes = r->pg_bytes;
	snprintf(ti->error, sizeof ti->error, "%s", r->pg_error ? r->pg_error : "");
}

void http_pg_take(struct hreq *r, char **out, size_t *len)
{
	*out = r->pg_out;
	*len = r->pg_len;
	r->pg_out = NULL;
	r->pg_len = 0;
}

/* Loop: the database's answer to a cancel nobody waits for. */
static void on_left(void *ctx, const struct pgshare_read *ev)
{
	(void)ctx;
	if (ev->code == 0)
		log_msg(LOG_INFO, "task %llu cancelled in the shared queue: its HTTP client "
			"disconnected", (unsigned long long)ev->task);
}

void http_pg_cancel(struct hreq *r)
{
	struct pgshare *ps = pg_of(r);

	if (pool_cancel(r->m->pool, r->task) == 0) /* claimed here */
		log_msg(LOG_INFO, "pool %s: task %llu cancelled: its HTTP client disconnected",
			r->m->name, (unsigned long long)r->task);
	else if (ps && !pgshare_local(ps, r->task))
		pgshare_reader_drop(pgshare_cancel_task(ps, r->task, on_left, NULL));
}

/* ---- the parking lot's routes ----------------------------------------------------- */

/* r waits for the database (a shutdown meanwhile answers it 503). */
static int wait_db(struct hreq *r, struct pgshare_reader *rd)
{
	if (!rd) {
		http_fail(r, 500, "nomem", "out of memory");
		return 1;
	}
	r->pg = rd;
	r->phase = H_WAITING; /* task 0: no pool note matches it */
	http_wait_link(r);
	return 1;
}

/* The answer came: 1 when r still waits for it (not answered meanwhile). */
static int answer_due(struct hreq *r)
{
	reader_done(r);
	if (r->phase != H_WAITING)
		return 0;
	http_wait_unlink(r);
	return 1;
}

static void read_failed(struct hreq *r, const struct pgshare_read *ev)
{
	if (ev->code == PROTO_E_NOT_FOUND)
		http_fail(r, 404, "not_found", "task %llu not found", (unsigned long long)ev->task);
	else
		http_fail_proto(r, PROTO_E_STORE, ev->msg, 0);
}

static void on_mailbox(void *ctx, const struct pgshare_read *ev)
{
	struct hreq *r = ctx;
	const struct store_record *rec = ev->rec;

	if (!answer_due(r))
		return;
	if (ev->kind != PGSHARE_READ_END) {
		read_failed(r, ev);
		return;
	}
	json_t *o = json_pack("{s:I,s:s,s:s,s:s%,s:I,s:I}", "id", (json_int_t)ev->task, "model",
			      rec->model ? rec->model : "", "state", pool_state_name(rec->state),
			      "output", rec->output ? rec->output : "", rec->output_len,
			      "output_bytes", (json_int_t)rec->output_len, "chunks",
			      (json_int_t)ev->chunks);
	if (o && POOL_STATE_TERMINAL(rec->state) && rec->error && rec->error[0])
		json_object_set_new(o, "error", json_string(rec->error));
	char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (j)
		http_ready(r, 200, j);
	else
		http_fail(r, 500, "nomem", "out of memory");
}

int http_pg_mailbox(struct hreq *r, uint64_t id)
{
	struct pgshare *ps = pg_of(r);

	if (!ps || !id || pgshare_local(ps, id))
		return 0;
	return wait_db(r, pgshare_follow(ps, id, 0, 1, on_mailbox, r));
}

static void on_deleted(void *ctx, const struct pgshare_read *ev)
{
	struct hreq *r = ctx;
	unsigned long long id = (unsigned long long)ev->task;

	if (!answer_due(r))
		return;
	if (ev->code == PROTO_E_STATE) {
		http_fail(r, 409, "state", "task %llu already ended (%s)", id,
			  pool_state_name(ev->rec->state));
	} else if (ev->code) {
		read_failed(r, ev);
	} else {
		log_msg(LOG_INFO, "task %llu cancelled in the shared queue over HTTP", id);
		json_t *o = json_pack("{s:I,s:b}", "id", (json_int_t)id, "cancelled", 1);
		char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		http_ready(r, j ? 200 : 500, j);
	}
}

int http_pg_delete(struct hreq *r, uint64_t id)
{
	struct pgshare *ps = pg_of(r);

	if (!ps || !id || pgshare_local(ps, id))
		return 0;
	return wait_db(r, pgshare_cancel_task(ps, id, on_deleted, r));
}

/* The shared queue as `plot stats --json` shows it. */
static json_t *shared_json(const struct pgshare_read *ev)
{
	json_t *sh = json_array(), *ds = json_array();

	for (size_t i = 0; sh && i < ev->n_models; i++) {
		const struct pgq_model_stat *m = &ev->models[i];
		json_array_append_new(sh, json_pack("{s:s,s:I,s:I,s:I,s:I}", "model", m->model,
						    "queued", (json_int_t)m->queued, "running",
						    (json_int_t)m->running, "queued_units",
						    (json_int_t)m->queued_units, "running_units",
						    (json_int_t)m->running_units));
	}
	for (size_t i = 0; ds && i < ev->n_daemons; i++) {
		const struct pgq_daemon_stat *d = &ev->daemons[i];
		json_array_append_new(ds, json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", d->name,
						    "units", (json_int_t)d->units, "running",
						    (json_int_t)d->running, "holding",
						    (json_int_t)d->holding, "seen_ms",
						    (json_int_t)d->seen_ms_ago));
	}
	return json_pack("{s:o*,s:o*}", "shared", sh, "daemons", ds);
}

static void on_stats(void *ctx, const struct pgshare_read *ev)
{
	struct hreq *r = ctx;
	json_t *q = r->pg_json, *o;

	r->pg_json = NULL;
	if (!answer_due(r)) {
		json_decref(q);
		return;
	}
	if (ev->kind != PGSHARE_READ_STATS) {
		json_decref(q);
		http_fail_proto(r, PROTO_E_STORE, ev->msg, 0);
		return;
	}
	o = shared_json(ev);
	if (o)
		json_object_set_new(o, "queues", q);
	else
		json_decref(q);
	char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	http_ready(r, j ? 200 : 500, j);
}

int http_pg_queues(struct hreq *r, json_t *queues)
{
	struct pgshare *ps = pg_of(r);

	if (!ps)
		return 0;
	r->pg_json = queues;
	return wait_db(r, pgshare_stats_read(ps, on_stats, r));
}

void http_pg_free(struct hreq *r)
{
	pgshare_reader_stop(r->pg);
	r->pg = NULL;
	free(r->pg_out);
	free(r->pg_error);
	json_decref(r->pg_json);
}
