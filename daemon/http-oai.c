/*
 * http-oai.c — POST /v1/chat/completions and /v1/completions: a request's
 * life from its JSON to the last SSE event.
 *
 * DESIGN
 *   The body becomes a struct exec_request (lib/oai) and goes through the
 *   daemon's one submit path (submit.c), so HTTP and the socket admit,
 *   reject and log a task the same way. The connection is suspended while
 *   the task is prepared and while it runs; the pools' notes resume it.
 *
 *   Not streaming: when the task is terminal, its whole output (pool_result)
 *   becomes one response. Streaming: a pool subscription is drained only
 *   when MHD asks for more bytes (the content reader) and the previous
 *   batch is gone, so plotd holds at most one batch per connection; the
 *   rest waits in the pool, which keeps the whole output anyway (mailbox).
 *   A reader whose undelivered output passes daemon.http_max_output is
 *   dropped, as the socket drops a slow client. A UTF-8 sequence split
 *   between two chunks is held back until it is whole.
 *
 *   usage.completion_tokens is the task's chunk count: the llm executor
 *   emits one chunk per token, except that text held back for a stop
 *   string or an unfinished UTF-8 sequence goes out as one chunk, so it
 *   can undercount there. finish_reason is "length" when that count
 *   reached the task's limit (its max_tokens, or without one the room its
 *   prompt left in the context), else "stop".
 *
 *   A model on the shared queue (postgres): the task may run on any
 *   daemon, so it is followed in the database instead of a pool
 *   (http-pg.c); its reads fill r->pg_out and wake the request as a pool
 *   note would, and everything below is the same (task_info, the fill).
 *
 *   A client that disconnects cancels its task unless it asked to detach
 *   ("detach": true). A suspended connection's socket is not watched, so a
 *   client that leaves while its task is still queued is noticed at the
 *   task's first output (streaming) or its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http-impl.h"
#include "log.h"
#include "submit.h"

#define SSE_BATCH (64u << 10)
#define SSE_BATCH_CHUNKS 2048

/* ---- submit ---------------------------------------------------------------------- */

static int still_there(void *ctx)
{
	return !((struct hreq *)ctx)->gone;
}

/* Without a max_tokens an llm task runs to the end of its context: that
 * is its limit then (0 = no limit known). */
static uint32_t room_left(const struct hreq *r)
{
	struct exec_info info = { .state = "" };

	exec_describe(r->m->exec, &info);
	return info.context_length > r->prompt_tokens
		? (uint32_t)(info.context_length - r->prompt_tokens) : 0;
}

static void on_submitted(void *ctx, const struct submit_out *o)
{
	struct hreq *r = ctx;

	r->in_submit = 0;
	if (r->gone) { /* the client left while the task was prepared */
		if (o->code == 0 && !r->detach) {
			r->task = o->task;
			http_oai_cancel(r);
		}
		http_oai_free(r);
		return;
	}
	http_wait_unlink(r);
	if (r->phase != H_SUBMITTING) /* answered meanwhile (plotd is stopping) */
		return;
	if (o->code) {
		http_fail_proto(r, o->code == SUBMIT_DROPPED ? PROTO_E_SHUTDOWN : o->code, o->msg,
				o->retry_after_secs);
		return;
	}
	r->task = o->task;
	r->prompt_tokens = o->prompt_tokens;
	r->max_tokens = o->max_tokens ? o->max_tokens : room_left(r);
	if (r->on_pg && http_pg_follow(r) < 0) {
		http_oai_cancel(r);
		http_fail(r, 500, "nomem", "out of memory");
		return;
	}
	http_wait_link(r);
	if (r->stream) {
		r->phase = H_STREAMING; /* http.c's step() queues the SSE response */
		http_resume(r);
	} else {
		r->phase = H_WAITING;
		http_oai_event(r); /* it may have ended already */
	}
}

static int check_model(struct hreq *r, const struct oai_request *q)
{
	struct dispatch *d = r->h->d;
	struct model *m = models_find(d->models, q->model);

	if (!m) {
		http_fail(r, 404, "model_not_found", "no model named '%s'", q->model);
		return -1;
	}
	char err[512];
	if (m->state != MODEL_LOADED && models_reload(d->models, m, err, sizeof(err)) < 0) {
		http_fail(r, 503, "unavailable", "%s", err);
		return -1;
	}
	if (!m->exec) {
		http_fail(r, 503, "internal", "model %s is not running: %s", m->name, m->error);
		return -1;
	}
	if (!d->hooks.can_submit(d->hooks.ctx)) {
		http_fail(r, 503, "shutdown", "plotd is draining: no new tasks");
		return -1;
	}
	r->m = m;
	m->refs++; /* an unload frees m's pool only once no request holds it */
	r->on_pg = http_pg_model(r); /* the task is followed in the database */
	return 0;
}

void http_oai_start(struct hreq *r, int kind)
{
	struct oai_request q;
	char err[512];

	if (oai_request_parse(r->body ? r->body : "", r->len, kind, &q, err, sizeof(err)) < 0) {
		oai_request_free(&q);
		http_fail(r, 400, "invalid", "%s", err);
		return;
	}
	if (check_model(r, &q) < 0) {
		oai_request_free(&q);
		return;
	}
	r->kind = kind;
	r->stream = q.stream;
	r->include_usage = q.include_usage;
	r->detach = q.detach;
	r->created = (int64_t)time(NULL);
	q.ex.owner_uid = (uint32_t)r->h->c.owner;
	r->phase = H_SUBMITTING;
	r->in_submit = 1;
	http_wait_link(r); /* task 0: notes skip it; a shutdown resumes it */
	struct submit_cbs cb = { .wanted = still_there, .done = on_submitted, .ctx = r,
				 .detach = q.detach };
	struct proto_buf frame; /* kept by a durable store, to resume the task after a restart */
	proto_buf_init(&frame);
	if (r->m->store && dispatch_request_frame(r->m->name, &q.ex, &frame, err, sizeof(err)) == 0
	    && frame.len > 4) {
		cb.request = frame.data + 4; /* the body, without the length prefix */
		cb.request_len = frame.len - 4;
	}
	submit_start(r->h->d, r->m, &q.ex, &cb);
	proto_buf_free(&frame);
	oai_request_free(&q);
}

/* ---- a whole response --------------------------------------------------------------- */

/* The task as its pool, or for a model on the shared queue the database,
 * says now. */
static void task_info(struct hreq *r, struct pool_task_info *ti)
{
	if (r->on_pg)
		http_pg_info(r, ti);
	else if (pool_task_info(r->m->pool, r->task, ti) < 0)
		ti->state = POOL_FAILED, ti->error[0] = 0, ti->chunks = 0, ti->output_bytes = 0;
}

static const char *finish_of(const struct hreq *r, uint64_t chunks)
{
	return r->max_tokens && chunks >= r->max_tokens ? "length" : "stop";
}

/* Why a task that did not finish ok ended, as an HTTP status and message. */
static unsigned ended_badly(const struct hreq *r, const struct pool_task_info *ti, char *msg,
			    size_t len, const char **code)
{
	unsigned long long id = (unsigned long long)r->task;

	switch (ti->state) {
	case POOL_EXPIRED:
	case POOL_TIMEOUT:
		*code = "timeout";
		snprintf(msg, len, "task %llu: deadline passed while %s (any partial output is "
			 "at /v1/mailbox/%llu)", id, ti->state == POOL_EXPIRED ? "queued" : "running",
			 id);
		return 504;
	case POOL_CANCELLED:
		*code = "cancelled";
		snprintf(msg, len, "task %llu was cancelled", id);
		return 409;
	default:
		*code = "failed";
		snprintf(msg, len, "task %llu failed: %s", id, ti->error[0] ? ti->error : "?");
		return 500;
	}
}

static void respond_whole(struct hreq *r, const struct pool_task_info *ti)
{
	char *out = NULL, msg[512];
	size_t len = 0;
	int state;
	const char *code;

	if (ti->state != POOL_DONE) {
		unsigned st = ended_badly(r, ti, msg, sizeof(msg), &code);
		http_fail(r, st, code, "%s", msg);
		return;
	}
	if (r->on_pg) {
		http_pg_take(r, &out, &len);
	} else if (pool_result(r->m->pool, r->task, &out, &len, &state) < 0) {
		http_fail(r, 404, "not_found", "task %llu not found", (unsigned long long)r->task);
		return;
	}
	struct oai_usage u = { r->prompt_tokens, ti->chunks };
	char *j = oai_response_json(r->kind, r->task, r->created, r->m->name, out, len,
				    finish_of(r, ti->chunks), &u);
	free(out);
	if (!j)
		http_fail(r, 500, "nomem", "out of memory");
	else
		http_ready(r, 200, j);
}

/* ---- streaming ------------------------------------------------------------------------ */

static int out_add(struct hreq *r, const char *s, size_t n)
{
	char *nb = realloc(r->out, r->out_len + n);
	if (!nb)
		return -1;
	memcpy(nb + r->out_len, s, n);
	r->out = nb;
	r->out_len += n;
	return 0;
}

/* One "data: JSON\n\n" event; JSON is taken. */
static void sse(struct hreq *r, char *json)
{
	if (!json)
		return;
	out_add(r, "data: ", 6);
	out_add(r, json, strlen(json));
	out_add(r, "\n\n", 2);
	free(json);
}

static void sse_text(struct hreq *r, const char *text, size_t len, const char *finish)
{
	int role = r->kind == OAI_CHAT && !r->role_sent;

	if (!len && !role && !finish)
		return;
	sse(r, oai_chunk_json(r->kind, r->task, r->created, r->m->name, text, len, role, finish,
			      NULL));
	r->role_sent = 1;
}

/* New output: whole UTF-8 sequences go out, a split one's head waits. */
static void stream_chunk(struct hreq *r, const char *data, size_t len)
{
	char *buf = malloc(r->hold_len + len);

	if (!buf)
		return;
	memcpy(buf, r->hold, r->hold_len);
	memcpy(buf + r->hold_len, data, len);
	size_t n = r->hold_len + len, ok = oai_utf8_complete(buf, n);
	r->hold_len = n - ok; /* at most 3 bytes */
	memcpy(r->hold, buf + ok, r->hold_len);
	sse_text(r, buf, ok, NULL);
	free(buf);
	r->delivered += len;
}

static void stream_end(struct hreq *r)
{
	struct pool_task_info ti;
	char msg[512];
	const char *code;

	task_info(r, &ti);
	if (r->hold_len) { /* a split sequence that never finished */
		sse_text(r, r->hold, r->hold_len, NULL);
		r->hold_len = 0;
	}
	if (ti.state == POOL_DONE) {
		sse_text(r, "", 0, finish_of(r, ti.chunks));
		if (r->include_usage) {
			struct oai_usage u = { r->prompt_tokens, ti.chunks };
			sse(r, oai_chunk_json(r->kind, r->task, r->created, r->m->name, NULL, 0, 0,
					      NULL, &u));
		}
	} else {
		unsigned st = ended_badly(r, &ti, msg, sizeof(msg), &code);
		(void)st;
		sse(r, oai_error_json(msg, st == 504 ? "timeout_error" : "server_error", NULL,
				      code));
	}
	out_add(r, "data: [DONE]\n\n", 14);
	r->ended = 1;
	http_wait_unlink(r);
}

/* Take what the subscription has now into r->out (which is empty). */
static void stream_fill(struct hreq *r)
{
	char *data = NULL;
	size_t len = 0, n = 0;
	int state = 0, ev;

	if (r->on_pg) { /* what the database gave since the last fill */
		http_pg_take(r, &data, &len);
		ev = len ? POOL_SUB_CHUNK : POOL_STATE_TERMINAL(r->pg_state) ? POOL_SUB_END : 0;
	} else {
		ev = pool_sub_take(r->sub, SSE_BATCH, SSE_BATCH_CHUNKS, &data, &len, &n, &state);
	}

	if (ev == POOL_SUB_CHUNK)
		stream_chunk(r, data, len);
	else if (ev == POOL_SUB_END)
		stream_end(r);
	free(data);
}

/* MHD: more bytes for the SSE body. Nothing yet: suspend until a note. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct hreq *r = cls;

	(void)pos;
	if (r->drop)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (r->out_off == r->out_len) {
		r->out_off = r->out_len = 0;
		if (!r->ended)
			stream_fill(r);
	}
	if (r->out_off < r->out_len) {
		size_t n = r->out_len - r->out_off < max ? r->out_len - r->out_off : max;
		memcpy(buf, r->out + r->out_off, n);
		r->out_off += n;
		return (ssize_t)n;
	}
	if (r->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	r->suspended = 1;
	MHD_suspend_connection(r->conn);
	return 0;
}

int http_oai_queue(struct hreq *r)
{
	char id[32];

	if (!r->on_pg && pool_subscribe(r->m->pool, r->task, &r->sub) < 0) {
		http_fail(r, 404, "not_found", "task %llu not found", (unsigned long long)r->task);
		return -1;
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
								      stream_read, r, NULL);
	if (!resp)
		return -1;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->task);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Plot-Task", id);
	enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	r->sse_queued = rc == MHD_YES;
	return rc == MHD_YES ? 0 : -1;
}

/* ---- task notes, disconnects ---------------------------------------------------------- */

/* A streaming reader that fell more than max_output behind is dropped. */
static void check_lag(struct hreq *r, const struct pool_task_info *ti)
{
	if (r->drop || ti->output_bytes - r->delivered <= r->h->c.max_output)
		return;
	log_msg(LOG_WARN, "http: task %llu: the client is %llu bytes behind "
		"(daemon.http_max_output %llu): dropping it", (unsigned long long)r->task,
		(unsigned long long)(ti->output_bytes - r->delivered),
		(unsigned long long)r->h->c.max_output);
	r->drop = 1;
	/* MHD asks the reader for bytes only when the socket takes them, which
	 * a stalled client's never does: shut the socket, MHD then closes the
	 * connection (and on_completed cancels the task unless detached). */
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

void http_oai_event(struct hreq *r)
{
	struct pool_task_info ti;

	if (!r->task || (r->phase != H_WAITING && r->phase != H_STREAMING))
		return;
	task_info(r, &ti);
	if (r->phase == H_WAITING) {
		if (POOL_STATE_TERMINAL(ti.state)) {
			http_wait_unlink(r);
			respond_whole(r, &ti);
		}
		return;
	}
	if (r->sub || r->on_pg)
		check_lag(r, &ti);
	http_resume(r); /* the reader drains */
}

void http_oai_cancel(struct hreq *r)
{
	if (!r->task || r->detach || r->ended || r->phase == H_SENT || !r->m || !r->m->pool)
		return;
	if (r->on_pg) {
		http_pg_cancel(r);
		return;
	}
	if (pool_cancel(r->m->pool, r->task) == 0)
		log_msg(LOG_INFO, "pool %s: task %llu cancelled: its HTTP client disconnected",
			r->m->name, (unsigned long long)r->task);
}

void http_oai_free(struct hreq *r)
{
	if (r->sub)
		pool_sub_close(r->sub);
	http_pg_free(r);
	if (r->m)
		r->m->refs--;
	free(r->body);
	free(r->resp);
	free(r->out);
	free(r);
}
