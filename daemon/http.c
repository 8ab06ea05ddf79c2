/*
 * http.c — plotd's optional HTTP listener: libmicrohttpd (MHD) driven by
 * the daemon's own event loop, the routes, bearer-token auth, the limits,
 * and the parking lot's routes (health, models, queues, mailbox, cancel,
 * metrics). Completions are http-oai.c's.
 *
 * DESIGN
 *   One loop, no extra thread: MHD runs in external-event-loop mode with
 *   its own epoll set (MHD_USE_EPOLL); that set's descriptor is one watch
 *   on plotd's loop, and MHD_run() is called when it is readable, when
 *   MHD's own timeout falls due (a timerfd armed after every run), and
 *   before sleeping while MHD says it has ready work (timeout 0). The
 *   listening socket is ours (bound here, so its errors name the address),
 *   handed to MHD.
 *
 *   A request that waits (a submit being prepared, a task running, a
 *   stream between tokens) is suspended (MHD_suspend_connection) and
 *   resumed by the loop when its task changes: pool notes reach
 *   http_task_event beside dispatch_task_event. Waiting requests are one
 *   list; the connection limit bounds it, so a note walks at most that
 *   many.
 *
 *   HTTP has no peer credentials: every HTTP task belongs to the daemon's
 *   owner (its uid), and the bearer token, when set, is the access control.
 *   The listener binds to loopback by default. GET /health needs no token.
 *
 * LIMITS (plot.yaml(5) daemon.http_*)
 *   body bytes (413 beyond), header bytes (MHD's per-connection memory:
 *   431 beyond), connections (more wait in the backlog), idle seconds (MHD
 *   closes a connection without traffic; a suspended one waits for its
 *   task, not for the client), and a stream's undelivered output (a reader
 *   that falls further behind is dropped: http-oai.c).
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http-impl.h"
#include "log.h"

enum {
	ROUTE_NONE = 0, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_MODELS, ROUTE_CHAT, ROUTE_COMPLETIONS,
	ROUTE_QUEUES, ROUTE_MAILBOX, ROUTE_TASK,
};

static const struct route {
	const char *method, *path; /* a path ending in '/' takes an id after it */
	int id;
	int auth;
} routes[] = {
	[ROUTE_HEALTH] = { "GET", "/health", 0, 0 },
	[ROUTE_METRICS] = { "GET", "/metrics", 0, 1 },
	[ROUTE_MODELS] = { "GET", "/v1/models", 0, 1 },
	[ROUTE_CHAT] = { "POST", "/v1/chat/completions", 0, 1 },
	[ROUTE_COMPLETIONS] = { "POST", "/v1/completions", 0, 1 },
	[ROUTE_QUEUES] = { "GET", "/v1/queues", 0, 1 },
	[ROUTE_MAILBOX] = { "GET", "/v1/mailbox/", 1, 1 },
	[ROUTE_TASK] = { "DELETE", "/v1/tasks/", 1, 1 },
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static void run_mhd(struct http *h);

/* ---- answers ------------------------------------------------------------------ */

void http_resume(struct hreq *r)
{
	if (!r->suspended)
		return;
	r->suspended = 0;
	MHD_resume_connection(r->conn);
	r->h->again = 1;
}

void http_ready(struct hreq *r, unsigned status, char *json)
{
	free(r->resp);
	r->status = status;
	r->resp = json;
	r->ctype = "application/json";
	r->phase = H_READY;
	http_resume(r);
}

static const char *error_type(unsigned status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 429: return "rate_limit_error";
	default: return status < 500 ? "invalid_request_error" : "server_error";
	}
}

static void fail_msg(struct hreq *r, unsigned status, const char *code, const char *msg)
{
	char *j = oai_error_json(msg, error_type(status), NULL, code);
	http_ready(r, status, j);
}

void http_fail(struct hreq *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg(r, status, code, msg);
}

/* plot's error codes as HTTP statuses (plotd.8, HTTP). */
static unsigned status_of(int code)
{
	switch (code) {
	case PROTO_E_QUEUE_FULL: return 429;
	case PROTO_E_NOT_FOUND: return 404;
	case PROTO_E_PERMISSION: return 403;
	case PROTO_E_SHUTDOWN: case PROTO_E_STORE: return 503;
	case PROTO_E_TIMEOUT: return 504;
	case PROTO_E_STATE: return 409;
	case PROTO_E_CAPACITY: case PROTO_E_INVALID: case PROTO_E_CONTEXT:
	case PROTO_E_TOO_LARGE: case PROTO_E_MALFORMED: return 400;
	default: return 500;
	}
}

static const char *code_name(int code, char *buf, size_t len)
{
	if (code == PROTO_E_CONTEXT)
		return "context_length_exceeded";
	snprintf(buf, len, "%s", proto_code_name(code));
	for (char *p = buf; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	return buf;
}

void http_fail_proto(struct hreq *r, int proto_code, const char *msg, uint64_t retry_after)
{
	char name[32];

	r->retry_after = retry_after;
	fail_msg(r, status_of(proto_code), code_name(proto_code, name, sizeof(name)), msg);
}

/* Queue r's ready answer. */
static enum MHD_Result queue_ready(struct hreq *r)
{
	const char *body = r->resp ? r->resp : "{}";
	char buf[32];
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
	if (r->task) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)r->task);
		MHD_add_response_header(resp, "X-Plot-Task", buf);
	}
	if (r->retry_after) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)r->retry_after);
		MHD_add_response_header(resp, "Retry-After", buf);
	}
	if (r->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
	enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	r->phase = H_SENT;
	return rc;
}

/* ---- the waiting list --------------------------------------------------------- */

void http_wait_link(struct hreq *r)
{
	struct http *h = r->h;

	r->prev = NULL;
	r->next = h->waiting;
	if (h->waiting)
		h->waiting->prev = r;
	h->waiting = r;
	h->n_waiting++;
}

void http_wait_unlink(struct hreq *r)
{
	struct http *h = r->h;

	if (r->prev)
		r->prev->next = r->next;
	else if (h->waiting == r)
		h->waiting = r->next;
	else
		return; /* not linked */
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	h->n_waiting--;
}

void http_task_event(struct http *h, uint64_t task)
{
	struct hreq *r, *next;

	if (!h)
		return;
	for (r = h->waiting; r; r = next) {
		next = r->next; /* the event may unlink r (never another) */
		if (r->task == task)
			http_oai_event(r);
	}
	if (h->again)
		run_mhd(h);
}

void http_kick_all(struct http *h)
{
	struct hreq *r, *next;

	if (!h)
		return;
	for (r = h->waiting; r; r = next) {
		next = r->next;
		http_oai_event(r);
	}
	run_mhd(h);
}

size_t http_waiting(const struct http *h)
{
	return h ? h->n_waiting : 0;
}

/* ---- the parking lot's routes ---------------------------------------------------- */

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* GET /health: 200 when the default model is ready and plotd takes tasks;
 * 503 while it loads, after it failed, or while draining. */
static void do_health(struct hreq *r)
{
	struct models *ms = r->h->d->models;
	struct model *m = ms->n ? &ms->v[ms->default_index] : NULL;
	struct exec_info info = { .state = "failed", .error = "" };
	int open = r->h->d->hooks.can_submit(r->h->d->hooks.ctx);

	if (m && m->exec)
		exec_describe(m->exec, &info);
	else if (m)
		snprintf(info.error, sizeof(info.error), "%s", m->error);
	int ok = open && strcmp(info.state, "ready") == 0;
	json_t *o = json_pack("{s:s,s:s?,s:s,s:f}", "status", !open ? "draining" : info.state,
			      "model", m ? m->name : NULL, "model_state", info.state, "progress",
			      info.progress);
	if (o && info.error[0])
		json_object_set_new(o, "error", json_string(info.error));
	http_ready(r, ok ? 200 : 503, dump(o));
}

static void do_models(struct hreq *r)
{
	struct models *ms = r->h->d->models;
	const char **names = calloc(ms->n ? ms->n : 1, sizeof(*names));

	if (!names) {
		http_fail(r, 500, "nomem", "out of memory");
		return;
	}
	for (size_t i = 0; i < ms->n; i++)
		names[i] = ms->v[i].name;
	char *j = oai_models_json(names, ms->n, r->h->started);
	free(names);
	http_ready(r, 200, j);
}

/* The stats of every model, as `plot stats` gets them. */
static struct proto_model_stats *all_stats(struct http *h, struct proto_stats *st)
{
	struct models *ms = h->d->models;
	struct proto_model_stats *v = calloc(ms->n ? ms->n : 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < ms->n; i++)
		dispatch_model_stats(&ms->v[i], &v[i]);
	*st = (struct proto_stats){ .models = v, .n_models = (uint32_t)ms->n,
				    .uptime_secs = (double)(conn_now_ms() - h->d->start_ms) / 1e3,
				    .clients = h->d->conns->n, .rss_bytes = dispatch_rss_bytes() };
	return v;
}

static void do_metrics(struct hreq *r)
{
	struct proto_stats st;
	struct proto_model_stats *v = all_stats(r->h, &st);
	char *text = NULL;
	size_t len = 0;
	FILE *f = v ? open_memstream(&text, &len) : NULL;
	int bad = !f;

	if (f) {
		bad = proto_stats_prometheus(&st, f) < 0;
		bad |= fclose(f) != 0;
	}
	free(v);
	if (bad) {
		free(text);
		http_fail(r, 500, "nomem", "out of memory");
		return;
	}
	http_ready(r, 200, text);
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

/* The object a walk writes into: the model's, or the nested one
 * (queued_by_priority) between OBJ and END. */
struct json_walk {
	json_t *top, *cur;
};

static void json_visit(void *ctx, const struct proto_stat_val *v)
{
	struct json_walk *w = ctx;
	json_t *x;

	switch (v->kind) {
	case PROTO_SV_END: w->cur = w->top; return;
	case PROTO_SV_U64: x = json_integer((json_int_t)v->u); break;
	case PROTO_SV_DBL: x = isfinite(v->d) ? json_real(v->d) : json_null(); break;
	case PROTO_SV_STR: x = json_string(v->s); break;
	case PROTO_SV_OBJ: x = json_object(); break;
	default: x = json_null(); break;
	}
	json_object_set_new(w->cur, v->key, x);
	if (v->kind == PROTO_SV_OBJ && x)
		w->cur = x;
}

/* A model's queue figures: `plot stats --json`'s keys (the walk both
 * render), its name under "model". */
static json_t *stats_json(const struct proto_model_stats *m)
{
	json_t *o = json_pack("{s:s}", "model", m->name);
	struct json_walk w = { o, o };

	if (o)
		proto_stats_model_walk(m, json_visit, &w);
	return o;
}

static void do_queues(struct hreq *r)
{
	struct proto_stats st;
	struct proto_model_stats *v = all_stats(r->h, &st);
	json_t *a = json_array();

	for (uint32_t i = 0; v && a && i < st.n_models; i++)
		json_array_append_new(a, stats_json(&v[i]));
	free(v);
	if (v && a && http_pg_queues(r, a)) /* and the shared queue's, from the database */
		return;
	http_ready(r, v ? 200 : 500, dump(json_pack("{s:o}", "queues", a)));
}

/* The task id after the route's prefix; 0 when it is not a number. */
static uint64_t path_id(const char *url, const char *prefix)
{
	const char *s = url + strlen(prefix);
	char *end;

	if (*s < '1' || *s > '9')
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	return errno || *end ? 0 : (uint64_t)v;
}

static struct model *find_task(struct hreq *r, uint64_t id, struct pool_task_info *ti)
{
	struct model *m = id ? models_for_task(r->h->d->models, id) : NULL;

	if (!m || !m->pool || pool_task_info(m->pool, id, ti) < 0) {
		http_fail(r, 404, "not_found", "task %llu not found", (unsigned long long)id);
		return NULL;
	}
	return m;
}

/* GET /v1/mailbox/{id}: the task's state and its output so far. */
static void do_mailbox(struct hreq *r, const char *url)
{
	struct pool_task_info ti;
	uint64_t id = path_id(url, routes[ROUTE_MAILBOX].path);
	if (http_pg_mailbox(r, id)) /* not here: the shared queue's database answers */
		return;
	struct model *m = find_task(r, id, &ti);
	char *out = NULL;
	size_t len = 0;
	int state;

	if (!m)
		return;
	if (pool_result(m->pool, id, &out, &len, &state) < 0) {
		http_fail(r, 404, "not_found", "task %llu not found", (unsigned long long)id);
		return;
	}
	json_t *o = json_pack("{s:I,s:s,s:s,s:s%,s:I,s:I}", "id", (json_int_t)id, "model",
			      m->name, "state", pool_state_name(state), "output", out, len,
			      "output_bytes", (json_int_t)len, "chunks", (json_int_t)ti.chunks);
	if (o && POOL_STATE_TERMINAL(ti.state) && ti.error[0])
		json_object_set_new(o, "error", json_string(ti.error));
	free(out);
	http_ready(r, o ? 200 : 500, dump(o));
}

/* DELETE /v1/tasks/{id}: cancel. 409 when it already ended. */
static void do_cancel(struct hreq *r, const char *url)
{
	struct pool_task_info ti;
	uint64_t id = path_id(url, routes[ROUTE_TASK].path);
	if (http_pg_delete(r, id)) /* not here: cancelled in the shared queue's database */
		return;
	struct model *m = find_task(r, id, &ti);

	if (!m)
		return;
	if (pool_cancel(m->pool, id) < 0) {
		pool_task_info(m->pool, id, &ti);
		http_fail(r, 409, "state", "task %llu already ended (%s)", (unsigned long long)id,
			  pool_state_name(ti.state));
		return;
	}
	log_msg(LOG_INFO, "pool %s: task %llu cancelled over HTTP", m->name,
		(unsigned long long)id);
	http_ready(r, 200, dump(json_pack("{s:I,s:b}", "id", (json_int_t)id, "cancelled", 1)));
}

/* ---- the access handler ------------------------------------------------------------ */

static int find_route(const char *method, const char *url, int *path_ok)
{
	*path_ok = 0;
	for (size_t i = 1; i < N_ROUTES; i++) {
		const struct route *rt = &routes[i];
		size_t n = strlen(rt->path);
		int match = rt->id ? strncmp(url, rt->path, n) == 0 && url[n]
				   : strcmp(url, rt->path) == 0;
		if (!match)
			continue;
		*path_ok = 1;
		if (strcmp(method, rt->method) == 0)
			return (int)i;
	}
	return ROUTE_NONE;
}

/* Constant-time compare of the bearer token. */
static int authorized(struct hreq *r)
{
	const char *want = r->h->c.token;
	const char *got = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	size_t n, m;
	unsigned diff = 0;

	if (!want)
		return 1;
	if (!got || strncmp(got, "Bearer ", 7) != 0)
		return 0;
	got += 7;
	n = strlen(want);
	m = strlen(got);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? got[i] : 0);
	return diff == 0 && n == m;
}

/* First call for a request: its route, auth, the declared body size. */
static int begin(struct hreq *r, const char *method, const char *url)
{
	int path_ok;
	const char *cl;

	r->route = find_route(method, url, &path_ok);
	if (r->route == ROUTE_NONE) {
		if (path_ok)
			http_fail(r, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
		else
			http_fail(r, 404, "not_found", "no route %s %s", method, url);
		return -1;
	}
	if (routes[r->route].auth && !authorized(r)) {
		http_fail(r, 401, "invalid_api_key", "missing or wrong bearer token (Authorization: "
			  "Bearer ...)");
		return -1;
	}
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
	if (cl && strtoull(cl, NULL, 10) > r->h->c.max_body) {
		http_fail(r, 413, "too_large", "request body of %s bytes exceeds "
			  "daemon.http_max_body %llu", cl, (unsigned long long)r->h->c.max_body);
		return -1;
	}
	return 0;
}

static void take_body(struct hreq *r, const char *data, size_t n)
{
	if (r->too_large || r->len + n > r->h->c.max_body) {
		r->too_large = 1;
		return;
	}
	char *nb = realloc(r->body, r->len + n + 1);
	if (!nb) {
		r->too_large = 1;
		return;
	}
	memcpy(nb + r->len, data, n);
	r->len += n;
	nb[r->len] = 0;
	r->body = nb;
}

/* The whole request is read: answer it, or start its task. */
static void dispatch_route(struct hreq *r, const char *url)
{
	if (r->too_large) {
		http_fail(r, 413, "too_large", "request body exceeds daemon.http_max_body %llu",
			  (unsigned long long)r->h->c.max_body);
		return;
	}
	switch (r->route) {
	case ROUTE_HEALTH: do_health(r); break;
	case ROUTE_METRICS: do_metrics(r); break;
	case ROUTE_MODELS: do_models(r); break;
	case ROUTE_QUEUES: do_queues(r); break;
	case ROUTE_MAILBOX: do_mailbox(r, url); break;
	case ROUTE_TASK: do_cancel(r, url); break;
	case ROUTE_CHAT: http_oai_start(r, OAI_CHAT); break;
	case ROUTE_COMPLETIONS: http_oai_start(r, OAI_COMPLETION); break;
	}
}

/* What the request's phase asks for now: queue an answer, or wait. */
static enum MHD_Result step(struct hreq *r)
{
	if (r->phase == H_READY)
		return queue_ready(r);
	if (r->phase == H_STREAMING && !r->sse_queued) { /* submitted: start the SSE response */
		if (http_oai_queue(r) == 0)
			return MHD_YES;
		return r->phase == H_READY ? queue_ready(r) : MHD_NO;
	}
	if (r->phase == H_SUBMITTING || r->phase == H_WAITING) {
		r->suspended = 1;
		MHD_suspend_connection(r->conn);
	}
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *data,
				 size_t *data_size, void **con_cls)
{
	struct http *h = cls;
	struct hreq *r = *con_cls;

	(void)version;
	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		r->h = h;
		r->conn = conn;
		*con_cls = r;
		if (begin(r, method, url) < 0)
			return queue_ready(r);
		return MHD_YES;
	}
	if (r->phase == H_READING && *data_size) {
		take_body(r, data, *data_size);
		*data_size = 0;
		return MHD_YES;
	}
	if (r->phase == H_READING)
		dispatch_route(r, url);
	return step(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct hreq *r = *con_cls;

	(void)cls;
	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		http_oai_cancel(r);
	http_wait_unlink(r);
	if (r->in_submit) { /* submit.c still holds r: done() frees it */
		r->gone = 1;
		return;
	}
	http_oai_free(r);
}

/* ---- the loop ---------------------------------------------------------------------- */

static unsigned n_connections(struct http *h)
{
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di ? di->num_connections : 0;
}

/* Run MHD, then arm the timer for its next timeout. When connections
 * closed, run it once more before sleeping: MHD takes its listening socket
 * back into its epoll set (dropped at the connection limit) only at the
 * start of a run, and no event would come to start one. */
static void run_mhd(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;
	unsigned before = n_connections(h);

	h->again = 0;
	MHD_run(h->mhd);
	if (n_connections(h) < before)
		h->again = 1;
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
		if (ms == 0)
			h->again = 1;
		else
			loop_timerfd_arm(h->timer_w.fd, ms > 3600000 ? 3600000 : ms, 0);
	}
}

static void on_mhd(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct http *h = (struct http *)(void *)((char *)w - offsetof(struct http, mhd_w));

	(void)l;
	(void)ev;
	run_mhd(h);
}

static void on_timer(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct http *h = (struct http *)(void *)((char *)w - offsetof(struct http, timer_w));

	(void)l;
	(void)ev;
	loop_fd_drain(w->fd);
	run_mhd(h);
}

int http_before_sleep(struct http *h)
{
	if (!h || !h->again)
		return 0;
	run_mhd(h);
	return h->again;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	log_msg(LOG_DEBUG, "http: %s", buf);
}

/* "HOST:PORT" (HOST may be [v6]) -> a bound, listening socket. */
static int bind_addr(struct http *h, char *err, size_t errlen)
{
	char host[80];
	const char *a = h->c.addr, *colon = strrchr(a, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res;
	size_t hl = colon ? (size_t)(colon - a) : 0;

	if (!colon || hl == 0 || hl >= sizeof(host) || !colon[1]) {
		snprintf(err, errlen, "daemon.http: expected HOST:PORT, got '%s'", a);
		return -1;
	}
	if (a[0] == '[' && colon[-1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hl - 2, a + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, a);
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "daemon.http %s: %s", a, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		snprintf(err, errlen, "daemon.http %s: %s", a, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	h->lsn_fd = fd;
	return 0;
}

/* The bound address, with the port the kernel chose when 0 was asked. */
static void name_addr(struct http *h)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[16];

	if (getsockname(h->lsn_fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(h->addr, sizeof(h->addr), "%s", h->c.addr);
		return;
	}
	snprintf(h->addr, sizeof(h->addr), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

static int start_mhd(struct http *h, char *err, size_t errlen)
{
	h->mhd = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_access, h, MHD_OPTION_LISTEN_SOCKET, h->lsn_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->c.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->c.idle_secs,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)h->c.max_header,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen, "daemon.http %s: libmicrohttpd did not start", h->c.addr);
		return -1;
	}
	h->lsn_fd = -1; /* MHD owns it now */
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	h->mhd_w = (struct loop_watch){ di ? di->epoll_fd : -1, on_mhd };
	h->timer_w = (struct loop_watch){ loop_timerfd_new(), on_timer };
	if (h->mhd_w.fd < 0 || h->timer_w.fd < 0 || loop_add(h->loop, &h->mhd_w, EPOLLIN) < 0 ||
	    loop_add(h->loop, &h->timer_w, EPOLLIN) < 0) {
		snprintf(err, errlen, "daemon.http: event loop: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct http *http_new(struct loop *l, struct dispatch *d, const struct http_config *c,
		      char *err, size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->c = *c;
	snprintf(h->addr_buf, sizeof(h->addr_buf), "%s", c->addr);
	h->c.addr = h->addr_buf;
	if (c->token && !(h->c.token = h->tok = strdup(c->token))) {
		snprintf(err, errlen, "out of memory");
		free(h);
		return NULL;
	}
	h->loop = l;
	h->d = d;
	h->started = (int64_t)time(NULL);
	h->lsn_fd = h->mhd_w.fd = h->timer_w.fd = -1;
	if (bind_addr(h, err, errlen) < 0) {
		http_free(h);
		return NULL;
	}
	name_addr(h);
	if (start_mhd(h, err, errlen) < 0) {
		http_free(h);
		return NULL;
	}
	run_mhd(h);
	return h;
}

const char *http_address(const struct http *h)
{
	return h->addr;
}

/* Exit with requests still waiting (the flush grace ran out): streams end
 * with an error, the rest get 503, so no connection stays suspended (MHD
 * cannot stop with one). */
static void stop_waiting(struct http *h)
{
	struct hreq *r, *next;

	for (r = h->waiting; r; r = next) {
		next = r->next;
		if (r->phase == H_STREAMING && r->sse_queued) {
			r->drop = 1;
			http_resume(r);
			continue;
		}
		http_wait_unlink(r);
		http_fail(r, 503, "shutdown", "plotd is shutting down");
	}
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->mhd_w.fd >= 0 && h->mhd)
		loop_del(h->loop, &h->mhd_w);
	if (h->timer_w.fd >= 0) {
		loop_del(h->loop, &h->timer_w);
		close(h->timer_w.fd);
	}
	stop_waiting(h);
	if (h->mhd) {
		MHD_run(h->mhd);
		MHD_stop_daemon(h->mhd);
	}
	if (h->lsn_fd >= 0)
		close(h->lsn_fd);
	free(h->tok);
	free(h);
}
