/*
 * dispatch.c — what plotd does with each request, and how task events reach
 * subscribers: one switch over the message type (tmux server_client_dispatch).
 *
 * DESIGN
 *   Every handler answers its request with exactly one ok or err reply,
 *   without blocking: pool calls only take the pool mutex briefly.
 *
 *   Submit has one path for every executor: the request becomes a struct
 *   exec_request, exec_prepare() prepares it off the loop (tokenizing for
 *   llm; inline for synthetic), the result comes back through the post
 *   queue, and submit_prepared() calls pool_submit and sends the reply.
 *   Nothing here asks which executor a model has.
 *
 *   Requests that wait (result with wait, subscribe) become watches
 *   (watch.c); the pools' notes (dispatch_task_event) drain them with
 *   pool_sub_next(timeout 0). Chunks drained in one go are coalesced into
 *   one chunk event of at most STREAM_COALESCE bytes, and one watch gets at
 *   most STREAM_BUDGET bytes or STREAM_BUDGET_CHUNKS chunks per round before
 *   the task is noted again, so a fast stream cannot starve other clients.
 *
 * PERMISSIONS (see plotd.8)
 *   ROLE_OWNER (the daemon's uid, root) may do everything. ROLE_ALLOWED
 *   (allow_users / allow_groups) may submit, read and cancel its own tasks,
 *   and read stats, queue, limits, models and config; others' tasks in the
 *   queue show without label or error. Limits set, drain and shutdown are
 *   the owner's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "pgshare.h"
#include "log.h"
#include "plot/version.h"
#include "submit.h"

#define STREAM_COALESCE (64u << 10)
#define STREAM_BUDGET (256u << 10)
#define STREAM_BUDGET_CHUNKS 2048

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* The dispatch a connection belongs to: its hooks' context. */
static struct dispatch *dsp(const struct conn *c)
{
	return c->s->hooks.ctx;
}

static int is_owner(const struct conn *c)
{
	return c->role == ROLE_OWNER;
}

static int may_see(const struct conn *c, const struct pool_task_info *ti)
{
	return is_owner(c) || ti->owner_uid == c->peer.uid;
}

static void reply_ok(struct conn *c, struct proto_msg *m, const struct proto_msg *req)
{
	(void)req;
	conn_send(c, m);
}

/* ---- task lookup -------------------------------------------------------- */

/* Find task and check that c may see it; replies with an error if not. */
static struct model *task_lookup(struct conn *c, const struct proto_msg *req, uint64_t task,
				 struct pool_task_info *ti)
{
	struct model *m = models_for_task(dsp(c)->models, task);
	if (!m || !m->pool || pool_task_info(m->pool, task, ti) < 0) {
		conn_error(c, req, PROTO_E_NOT_FOUND, "task %llu not found",
			   (unsigned long long)task);
		return NULL;
	}
	if (!may_see(c, ti)) {
		conn_error(c, req, PROTO_E_PERMISSION,
			   "task %llu belongs to another user", (unsigned long long)task);
		return NULL;
	}
	return m;
}

static void task_to_proto(const struct model *m, const struct pool_task_info *ti,
			  int redact, struct proto_task_info *out)
{
	uint64_t now = loop_now_ns();

	memset(out, 0, sizeof(*out));
	out->id = ti->id;
	out->model = m->name;
	out->priority = ti->priority;
	out->state = ti->state;
	out->cost = ti->cost;
	out->position = ti->position;
	out->age_secs = secs(now - ti->created_ns);
	out->wait_secs = secs((ti->started_ns ? ti->started_ns
			       : ti->ended_ns ? ti->ended_ns : now) - ti->created_ns);
	if (ti->started_ns)
		out->run_secs = secs((ti->ended_ns ? ti->ended_ns : now) - ti->started_ns);
	if (ti->deadline_ns) {
		out->has |= PROTO_HAS_DEADLINE;
		out->deadline_in_secs = ((double)ti->deadline_ns - (double)now) / 1e9;
	}
	out->output_bytes = ti->output_bytes;
	out->chunks = ti->chunks;
	out->owner_uid = ti->owner_uid;
	out->error = !redact && ti->error[0] ? ti->error : NULL;
	out->label = !redact && ti->label[0] ? ti->label : NULL;
	out->finish = ti->finish ? pool_finish_name(ti->finish) : NULL;
	out->tokens = ti->tokens;
	out->prompt_tokens = ti->prompt_tokens;
}

/* ---- hello, ping, models, config ---------------------------------------- */

static void do_hello(struct conn *c, const struct proto_msg *req)
{
	char err[256];
	struct proto_msg m;

	if (c->hello) {
		conn_error(c, req, PROTO_E_INVALID, "hello was already said");
		return;
	}
	if (proto_check_version(req->u.hello.version, err, sizeof(err)) < 0) {
		conn_error(c, req, PROTO_E_VERSION, "%s", err);
		conn_close_after_flush(c);
		return;
	}
	c->hello = 1;
	proto_msg_ok(&m, req);
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.agent = "plotd " PLOT_VERSION;
	m.u.hello.pid = (uint32_t)getpid();
	reply_ok(c, &m, req);
}

static uint64_t now_ms(void)
{
	return loop_now_ns() / 1000000;
}

static void unknown_model(struct conn *c, const struct proto_msg *req, const char *name);

/* The load or unload a models request asks for (the daemon's user and
 * root only). 0 to go on with the list, -1 when an error was sent. */
static int models_change(struct conn *c, const struct proto_msg *req)
{
	const struct proto_models_req *q = &req->u.models_req;
	struct models *ms = dsp(c)->models;
	char err[512];
	int rc = 0;
	if (!q->load && !q->unload)
		return 0;
	if (!is_owner(c)) {
		conn_error(c, req, PROTO_E_PERMISSION, "only plotd's own user may load or unload models");
		return -1;
	}
	const char *target = q->unload ? q->unload : q->load;
	struct model *m = strchr(target, '/') ? NULL : models_find(ms, target);
	if (!strchr(target, '/') && !m) {
		unknown_model(c, req, target);
		return -1;
	}
	if (q->unload)
		rc = models_unload(ms, m, err, sizeof(err));
	else if (m)
		rc = models_reload(ms, m, err, sizeof(err));
	else if (*target != '/' || !q->name)
		return conn_error(c, req, PROTO_E_INVALID, "load: an absolute path and a name are "
				  "needed"), -1;
	else
		rc = models_add(ms, q->name, target, dsp(c)->lot_defaults, err, sizeof(err));
	if (rc < 0)
		conn_error(c, req, PROTO_E_STATE, "%s", err);
	return rc;
}

static void do_models(struct conn *c, const struct proto_msg *req)
{
	struct models *ms = dsp(c)->models;
	if (models_change(c, req) < 0)
		return;
	struct proto_model_info *v = calloc(ms->n ? ms->n : 1, sizeof(*v));
	struct exec_info *info = calloc(ms->n ? ms->n : 1, sizeof(*info));
	struct proto_msg m;

	if (!v || !info) {
		free(v);
		free(info);
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < ms->n; i++) {
		const struct model *mo = &ms->v[i];
		v[i].name = mo->name;
		v[i].executor = models_executor_name(mo);
		v[i].is_default = i == ms->default_index;
		v[i].path = mo->conf->path;
		v[i].adhoc = mo->adhoc != NULL;
		v[i].gen_max_tokens = mo->lot.gen_max_tokens == CFG_NULL ? 0 : mo->lot.gen_max_tokens;
		v[i].gen_top_k = mo->lot.gen_top_k;
		v[i].gen_temperature = mo->lot.gen_temperature;
		v[i].gen_top_p = mo->lot.gen_top_p;
		v[i].gen_min_p = mo->lot.gen_min_p;
		if (!mo->exec) {
			v[i].state = models_state_name(mo, "failed");
			v[i].error = mo->state == MODEL_LOADED ? mo->error : NULL;
			continue;
		}
		exec_describe(mo->exec, &info[i]);
		v[i].state = models_state_name(mo, info[i].state);
		v[i].idle_in_secs = models_idle_in(mo, now_ms());
		v[i].progress = info[i].progress;
		v[i].error = info[i].error[0] ? info[i].error : NULL;
		v[i].context_length = info[i].context_length;
		v[i].kv_blocks = info[i].units_total;
		v[i].mem_bytes = info[i].mem_bytes;
		v[i].device = info[i].device[0] ? info[i].device : NULL;
	}
	proto_msg_ok(&m, req);
	m.u.models.models = v;
	m.u.models.n_models = (uint32_t)ms->n;
	reply_ok(c, &m, req);
	free(v);
	free(info);
}

static void do_config(struct conn *c, const struct proto_msg *req)
{
	struct proto_msg m;

	proto_msg_ok(&m, req);
	m.u.config.yaml = dsp(c)->config_yaml ? dsp(c)->config_yaml : "";
	m.u.config.source = dsp(c)->config_source ? dsp(c)->config_source : "<built-in>";
	reply_ok(c, &m, req);
}

/* ---- submit ------------------------------------------------------------- */

/* The one answer to a model name that does not exist, from every request
 * that takes one: NOT_FOUND naming it and listing the models there are. */
static void unknown_model(struct conn *c, const struct proto_msg *req, const char *name)
{
	struct models *ms = dsp(c)->models;
	char list[512];
	size_t len = 0;

	list[0] = '\0';
	for (size_t i = 0; i < ms->n && len < sizeof(list); i++) {
		int k = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", ms->v[i].name);
		len += k > 0 ? (size_t)k : 0;
	}
	conn_error(c, req, PROTO_E_NOT_FOUND, "no model named '%s' (models: %s)", name, list);
}

static int submit_check(struct conn *c, const struct proto_msg *req, struct model **mp)
{
	const struct proto_submit *s = &req->u.submit;
	struct dispatch *d = dsp(c);
	struct model *m = models_find(d->models, s->model);

	if (!d->hooks.can_submit(d->hooks.ctx)) {
		conn_error(c, req, PROTO_E_SHUTDOWN, "plotd is draining: no new tasks");
		return -1;
	}
	if (!m) {
		unknown_model(c, req, s->model);
		return -1;
	}
	char err[512];
	if (m->state != MODEL_LOADED && models_reload(d->models, m, err, sizeof(err)) < 0) {
		conn_error(c, req, m->state == MODEL_UNLOADING ? PROTO_E_SHUTDOWN : PROTO_E_INTERNAL,
			   "%s", err);
		return -1;
	}
	models_touch(m, now_ms());
	if (!m->exec) {
		conn_error(c, req, PROTO_E_INTERNAL, "model %s is not running: %s",
			   m->name, m->error);
		return -1;
	}
	if (!!s->prompt == !!s->n_messages) {
		conn_error(c, req, PROTO_E_INVALID, "give exactly one of prompt and msgs");
		return -1;
	}
	if ((s->has & PROTO_HAS_DEADLINE) && !(s->deadline_secs > 0 && s->deadline_secs <= 1e9)) {
		conn_error(c, req, PROTO_E_INVALID, "deadline must be in (0, 1e9] seconds");
		return -1;
	}
	if ((s->has & PROTO_HAS_COST) && s->cost == 0) {
		conn_error(c, req, PROTO_E_INVALID, "cost must be at least 1");
		return -1;
	}
	*mp = m;
	return 0;
}

/* The wire's optional fields, as the executor seam names them. */
static const struct { uint32_t wire, exec; } has_map[] = {
	{ PROTO_HAS_MAX_TOKENS, EXEC_HAS_MAX_TOKENS }, { PROTO_HAS_TEMPERATURE, EXEC_HAS_TEMPERATURE },
	{ PROTO_HAS_TOP_K, EXEC_HAS_TOP_K },           { PROTO_HAS_TOP_P, EXEC_HAS_TOP_P },
	{ PROTO_HAS_MIN_P, EXEC_HAS_MIN_P },           { PROTO_HAS_SEED, EXEC_HAS_SEED },
	{ PROTO_HAS_COST, EXEC_HAS_COST },             { PROTO_HAS_DEADLINE, EXEC_HAS_TIMEOUT },
	{ PROTO_HAS_REPETITION_PENALTY, EXEC_HAS_REPETITION_PENALTY },
	{ PROTO_HAS_FREQUENCY_PENALTY, EXEC_HAS_FREQUENCY_PENALTY },
	{ PROTO_HAS_PRESENCE_PENALTY, EXEC_HAS_PRESENCE_PENALTY },
	{ PROTO_HAS_PENALTY_LAST_N, EXEC_HAS_PENALTY_LAST_N },
};

static void request_from(uint32_t uid, const struct proto_submit *s,
			 const struct tmpl_msg *msgs, struct exec_request *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof has_map / sizeof has_map[0]; i++)
		if (s->has & has_map[i].wire)
			r->has |= has_map[i].exec;
	r->prompt = s->prompt;
	r->messages = msgs;
	r->n_messages = s->n_messages;
	r->raw = s->raw;
	r->max_tokens = s->max_tokens;
	r->temperature = s->temperature;
	r->top_k = s->top_k;
	r->top_p = s->top_p;
	r->min_p = s->min_p;
	r->seed = s->seed;
	r->repetition_penalty = s->repetition_penalty;
	r->frequency_penalty = s->frequency_penalty;
	r->presence_penalty = s->presence_penalty;
	r->penalty_last_n = s->penalty_last_n;
	r->stop = s->stop;
	r->n_stop = s->n_stop;
	r->ignore_eos = s->ignore_eos;
	r->priority = s->priority;
	r->timeout_ns = 0;
	if (s->has & PROTO_HAS_DEADLINE) /* a tiny positive deadline is 1 ns, not "none" */
		r->timeout_ns = s->deadline_secs * 1e9 < 1 ? 1 : (uint64_t)(s->deadline_secs * 1e9);
	r->cost = s->cost;
	r->owner_uid = uid;
}

/* The reverse of request_from: r as the submit a socket client would have
 * sent to model, encoded into frame, so the store can resume an HTTP task
 * after a restart exactly as a socket one. 0, or -1 with err. */
int dispatch_request_frame(const char *model, const struct exec_request *r,
			   struct proto_buf *frame, char *err, size_t errlen)
{
	struct proto_msg msg;
	struct proto_chat_msg *msgs = calloc(r->n_messages ? r->n_messages : 1, sizeof(*msgs));

	if (!msgs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uint32_t has = 0;
	for (size_t i = 0; i < sizeof has_map / sizeof has_map[0]; i++)
		if (r->has & has_map[i].exec)
			has |= has_map[i].wire;
	for (size_t i = 0; i < r->n_messages; i++)
		msgs[i] = (struct proto_chat_msg){ r->messages[i].role, r->messages[i].content };
	proto_msg_init(&msg, PROTO_T_SUBMIT, 0);
	msg.u.submit = (struct proto_submit){ .model = model, .prompt = r->prompt, .messages = msgs,
		.n_messages = (uint32_t)r->n_messages, .priority = r->priority, .has = has,
		.max_tokens = r->max_tokens, .temperature = r->temperature, .top_k = r->top_k,
		.top_p = r->top_p, .min_p = r->min_p, .seed = r->seed,
		.repetition_penalty = r->repetition_penalty,
		.frequency_penalty = r->frequency_penalty, .presence_penalty = r->presence_penalty,
		.penalty_last_n = r->penalty_last_n, .deadline_secs = (double)r->timeout_ns / 1e9,
		.cost = r->cost, .stop = r->stop, .n_stop = (uint32_t)r->n_stop, .detach = 1,
		.raw = r->raw, .ignore_eos = r->ignore_eos };
	int rc = proto_encode(&msg, NULL, frame, err, errlen);
	free(msgs);
	return rc < 0 ? -1 : 0;
}

/* A socket submit waiting for its outcome: the client is found again by
 * connection number, it may have gone meanwhile (a detached task is
 * submitted anyway, any other is dropped: submit.c). */
struct sock_submit {
	struct dispatch *d;
	uint64_t conn_num, req_id;
	const char *model;
	int detach;
};

static int sock_wanted(void *ctx)
{
	struct sock_submit *ss = ctx;
	return conn_by_num(ss->d->conns, ss->conn_num) != NULL;
}

static void sock_done(void *ctx, const struct submit_out *o)
{
	struct sock_submit ss = *(struct sock_submit *)ctx;
	struct conn *c = conn_by_num(ss.d->conns, ss.conn_num);
	struct proto_msg req = { .type = PROTO_T_SUBMIT, .id = ss.req_id }, out;

	free(ctx);
	if (!c || o->code == SUBMIT_DROPPED)
		return;
	if (o->code) {
		conn_error(c, &req, o->code, "%s", o->msg);
		return;
	}
	if (!ss.detach)
		conn_remember_run(c, o->task);
	proto_msg_ok(&out, &req);
	out.u.submitted.task = o->task;
	out.u.submitted.model = ss.model;
	conn_send(c, &out);
}

/* Prepare and submit s to m for uid; cb borrows frame (the submit as sent,
 * kept in the durable store so a restart can resume the task). */
static int submit_from(struct dispatch *d, struct model *m, const struct proto_submit *s,
		       uint32_t uid, struct submit_cbs *cb, const struct proto_buf *frame)
{
	struct exec_request r;
	struct tmpl_msg *msgs = calloc(s->n_messages ? s->n_messages : 1, sizeof(*msgs));

	if (!msgs)
		return -1;
	for (uint32_t i = 0; i < s->n_messages; i++)
		msgs[i] = (struct tmpl_msg){ s->messages[i].role, s->messages[i].content };
	request_from(uid, s, msgs, &r);
	cb->key = s->key;
	if (frame && frame->len > 4) { /* the body, without the length prefix */
		cb->request = frame->data + 4;
		cb->request_len = frame->len - 4;
	}
	submit_start(d, m, &r, cb);
	free(msgs);
	return 0;
}

static void do_submit(struct conn *c, const struct proto_msg *req)
{
	const struct proto_submit *s = &req->u.submit;
	struct proto_buf frame;
	struct model *m;
	char err[256];

	if (submit_check(c, req, &m) < 0)
		return;
	struct sock_submit *ss = malloc(sizeof(*ss));
	proto_buf_init(&frame);
	if (!ss || (m->store && proto_encode(req, NULL, &frame, err, sizeof(err)) < 0)) {
		free(ss);
		proto_buf_free(&frame);
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	*ss = (struct sock_submit){ dsp(c), c->num, req->id, m->name, s->detach };
	struct submit_cbs cb = { .wanted = sock_wanted, .done = sock_done, .ctx = ss,
				 .detach = s->detach };
	if (submit_from(dsp(c), m, s, (uint32_t)c->peer.uid, &cb, &frame) < 0) {
		free(ss);
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
	}
	proto_buf_free(&frame);
}

/* ---- restart ---------------------------------------------------------------- */

/* Startup: a stored task cannot be resumed; it ends FAILED, visibly. */
static void restore_failed(struct dispatch *d, struct model *m, const struct store_record *r,
			   const char *why)
{
	struct store_record f = *r;
	char msg[300];

	snprintf(msg, sizeof(msg), "not resumed after a restart: %s", why);
	log_msg(LOG_ERROR, "pool %s: task %llu %s", m->name, (unsigned long long)r->id, msg);
	f.state = POOL_FAILED;
	f.error = msg;
	f.output = ""; /* no partial output: cleared */
	f.output_len = 0;
	f.request = NULL;
	f.request_len = 0;
	f.ended_ns = loop_now_ns();
	durable_put(d->durable, &f);
	if (m->pool)
		pool_restore_ended(m->pool, &f);
}

/* A resumed task's outcome: nobody to tell, unless it failed. */
struct sock_restore {
	struct dispatch *d;
	size_t model;
	struct store_record rec; /* the scalar fields only */
};

static int restore_wanted(void *ctx)
{
	(void)ctx;
	return 1;
}

static void restore_done(void *ctx, const struct submit_out *o)
{
	struct sock_restore *sr = ctx;

	if (o->code && o->code != SUBMIT_DROPPED)
		restore_failed(sr->d, &sr->d->models->v[sr->model], &sr->rec, o->msg);
	free(sr);
}

void dispatch_restore(struct dispatch *d, struct model *m, const struct store_record *r)
{
	struct proto_msg req;
	char err[256];

	if (!m->exec) {
		restore_failed(d, m, r, m->error);
		return;
	}
	if (!r->request_len) {
		restore_failed(d, m, r, "its request was not stored");
		return;
	}
	if (proto_decode(r->request, r->request_len, NULL, &req, err, sizeof(err)) < 0 ||
	    req.type != PROTO_T_SUBMIT) {
		restore_failed(d, m, r, req.type != PROTO_T_SUBMIT ? "its stored request is not "
			       "a submit" : err);
		return;
	}
	struct sock_restore *sr = calloc(1, sizeof(*sr));
	struct submit_restore rs = { r->id, r->created_ns, r->deadline_ns, r->attempts };
	struct submit_cbs cb = { .wanted = restore_wanted, .done = restore_done, .ctx = sr,
				 .detach = 1 };
	if (sr) {
		*sr = (struct sock_restore){ d, m->index, *r };
		sr->rec.model = sr->rec.label = sr->rec.error = sr->rec.key = NULL;
		sr->rec.output = sr->rec.request = NULL;
		sr->rec.output_len = sr->rec.request_len = 0;
		cb.restore = &rs;
	}
	if (!sr || submit_from(d, m, &req.u.submit, r->owner_uid, &cb, NULL) < 0) {
		free(sr);
		restore_failed(d, m, r, "out of memory");
	}
	proto_msg_clear(&req);
}

/* ---- status, result ------------------------------------------------------ */

static void send_status(struct conn *c, struct model *m, const struct pool_task_info *ti,
			uint64_t req_id)
{
	struct proto_msg req, r;

	proto_msg_init(&req, PROTO_T_STATUS, req_id);
	proto_msg_ok(&r, &req);
	task_to_proto(m, ti, 0, &r.u.task);
	reply_ok(c, &r, &req);
}

static struct watch *watch_add(struct conn *c, struct model *m, int kind,
			       const struct proto_msg *req);

/* status; with wait, the reply comes once the task has ended (plot wait,
 * cancel --wait), without its output. */
static void do_status(struct conn *c, const struct proto_msg *req)
{
	struct pool_task_info ti;
	struct model *m = task_lookup(c, req, req->u.task_ref.task, &ti);

	if (!m)
		return;
	if (!req->u.task_ref.wait || POOL_STATE_TERMINAL(ti.state)) {
		send_status(c, m, &ti, req->id);
		return;
	}
	if (watch_add(c, m, WATCH_STATUS, req))
		dispatch_task_event(dsp(c), ti.id, NULL, 1); /* it may have ended meanwhile */
}

/* Send the result of a task; ti is its info, read just before (its error
 * is final once it is terminal, and empty before). */
static void send_result(struct conn *c, struct model *m, const struct pool_task_info *ti,
			uint64_t req_id)
{
	struct proto_msg req, r;
	char *out = NULL;
	size_t len = 0;
	int state;

	proto_msg_init(&req, PROTO_T_RESULT, req_id);
	if (pool_result(m->pool, ti->id, &out, &len, &state) < 0) {
		conn_error(c, &req, PROTO_E_NOT_FOUND, "task %llu not found",
			   (unsigned long long)ti->id);
		return;
	}
	proto_msg_ok(&r, &req);
	r.u.result.task = ti->id;
	r.u.result.state = state;
	r.u.result.data = out;
	r.u.result.len = len;
	r.u.result.error = POOL_STATE_TERMINAL(ti->state) && ti->error[0] ? ti->error : NULL;
	conn_send(c, &r);
	free(out);
}

static void watch_free(struct watch *w)
{
	watch_unlink(&dsp(w->c)->watches, w);
	if (w->sub)
		pool_sub_close(w->sub);
	free(w);
}

static struct watch *watch_add(struct conn *c, struct model *m, int kind,
			       const struct proto_msg *req)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w) {
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return NULL;
	}
	w->kind = kind;
	w->c = c;
	w->m = m;
	w->task = req->u.task_ref.task;
	w->req_id = req->id;
	w->conn_next = c->watches;
	c->watches = w;
	watch_link(&dsp(c)->watches, w);
	return w;
}

/* Unlink w from its connection and the table and free it. */
static void watch_drop(struct watch *w)
{
	struct watch **pp = &w->c->watches;
	while (*pp && *pp != w)
		pp = &(*pp)->conn_next;
	if (*pp)
		*pp = w->conn_next;
	watch_free(w);
}

static void do_result(struct conn *c, const struct proto_msg *req)
{
	struct pool_task_info ti;
	struct model *m = task_lookup(c, req, req->u.task_ref.task, &ti);

	if (!m)
		return;
	if (!req->u.task_ref.wait || POOL_STATE_TERMINAL(ti.state)) {
		send_result(c, m, &ti, req->id);
		return;
	}
	if (watch_add(c, m, WATCH_RESULT, req))
		dispatch_task_event(dsp(c), ti.id, NULL, 1); /* it may have ended meanwhile */
}

/* ---- subscribe: streams -------------------------------------------------- */

static int send_chunk(struct watch *w, const char *data, size_t len)
{
	struct proto_msg m;

	if (!len)
		return 0;
	proto_msg_init(&m, PROTO_T_CHUNK, w->req_id);
	m.u.chunk.task = w->task;
	m.u.chunk.data = data;
	m.u.chunk.len = len;
	return conn_send_stream(w->c, &m);
}

/* Send end and free the watch. Returns -1 (w is gone either way). */
static int send_end(struct watch *w, int state, const char *error)
{
	struct proto_msg m;
	struct proto_task_info pi;
	struct pool_task_info ti;

	proto_msg_init(&m, PROTO_T_END, w->req_id);
	m.u.end.task = w->task;
	m.u.end.state = state;
	m.u.end.error = error;
	if (pool_task_info(w->m->pool, w->task, &ti) == 0) {
		task_to_proto(w->m, &ti, 0, &pi);
		m.u.end.finish = POOL_STATE_TERMINAL(state) ? pi.finish : NULL;
		m.u.end.tokens = pi.tokens;
		m.u.end.prompt_tokens = pi.prompt_tokens;
		m.u.end.wait_secs = pi.wait_secs;
		m.u.end.run_secs = pi.run_secs;
	}
	if (conn_send_stream(w->c, &m) == 0)
		watch_drop(w);
	return -1;
}

static int current_state(struct watch *w, struct pool_task_info *ti)
{
	return pool_task_info(w->m->pool, w->task, ti) == 0 ? ti->state : POOL_QUEUED;
}

/* Drain what a subscription has now: chunks taken in batches of at most
 * STREAM_COALESCE bytes (one copy and one chunk event each), up to the
 * round's budget. Returns 1 if w is still there, 0 if it ended or its
 * connection was dropped. */
static int drain_sub(struct watch *w)
{
	size_t sent = 0, chunks = 0;

	for (;;) {
		char *data = NULL;
		size_t len = 0, n = 0;
		int state = 0;
		int ev = pool_sub_take(w->sub, STREAM_COALESCE, STREAM_BUDGET_CHUNKS - chunks, &data,
				       &len, &n, &state);
		if (ev == POOL_SUB_CHUNK) {
			int rc = send_chunk(w, data, len);
			free(data);
			if (rc < 0)
				return 0;
			sent += len;
			chunks += n;
			if (sent >= STREAM_BUDGET || chunks >= STREAM_BUDGET_CHUNKS) {
				/* fairness: come back later */
				models_renote(dsp(w->c)->models, w->task);
				return 1;
			}
			continue;
		}
		if (ev == POOL_SUB_END) {
			send_end(w, state, data);
			free(data);
			return 0;
		}
		if (ev == -POOL_E_NOMEM) { /* try again on the next round */
			models_renote(dsp(w->c)->models, w->task);
			return 1;
		}
		if (!w->follow) { /* replay only: end with the state now */
			struct pool_task_info ti;
			send_end(w, current_state(w, &ti), NULL);
			return 0;
		}
		return 1;
	}
}

static void do_subscribe(struct conn *c, const struct proto_msg *req)
{
	struct pool_task_info ti;
	struct proto_msg r;
	struct pool_sub *sub;
	struct model *m = task_lookup(c, req, req->u.task_ref.task, &ti);

	if (!m)
		return;
	if (pool_subscribe(m->pool, ti.id, &sub) < 0) {
		conn_error(c, req, PROTO_E_NOT_FOUND, "task %llu not found",
			   (unsigned long long)ti.id);
		return;
	}
	proto_msg_ok(&r, req);
	task_to_proto(m, &ti, 0, &r.u.task);
	conn_send(c, &r);
	struct watch *w = watch_add(c, m, WATCH_SUB, req);
	if (!w) {
		pool_sub_close(sub);
		return;
	}
	w->sub = sub;
	w->follow = req->u.task_ref.follow;
	w->run = conn_is_run(c, ti.id);
	drain_sub(w);
}

/* A pool said task changed: feed its watchers. A watch may be freed while
 * we walk (end, or its client dropped with all its watches), so after each
 * free the walk restarts from the head; each restart follows a free, which
 * bounds it. */
void dispatch_task_event(void *ctx, uint64_t task, void *arg, int live)
{
	struct dispatch *d = ctx;

	(void)arg;
	if (!live)
		return;
restart:
	for (struct watch *w = watch_first(&d->watches, task); w; w = w->hash_next) {
		if (w->task != task)
			continue;
		if (w->kind == WATCH_SUB) {
			if (!drain_sub(w))
				goto restart;
			continue;
		}
		struct pool_task_info ti;
		if (POOL_STATE_TERMINAL(current_state(w, &ti))) {
			if (w->kind == WATCH_STATUS)
				send_status(w->c, w->m, &ti, w->req_id);
			else
				send_result(w->c, w->m, &ti, w->req_id);
			watch_drop(w);
			goto restart;
		}
	}
}

/* ---- cancel -------------------------------------------------------------- */

static int cancel_one(struct conn *c, struct model *m, uint64_t task)
{
	int rc = pool_cancel(m->pool, task);
	if (rc == 0)
		log_msg(LOG_INFO, "pool %s: task %llu cancelled by uid %u", m->name,
			(unsigned long long)task, (unsigned)c->peer.uid);
	return rc;
}

static size_t cancel_all(struct conn *c, const struct proto_msg *req, uint64_t **out)
{
	const char *only = req->u.cancel.model;
	struct models *ms = dsp(c)->models;
	size_t n = 0, cap = 0;

	*out = NULL;
	for (size_t i = 0; i < ms->n; i++) {
		struct model *m = &ms->v[i];
		if (!m->pool || (only && strcmp(only, m->name) != 0))
			continue;
		struct pool_task_info *v;
		size_t cnt = models_list(m, &v);
		for (size_t k = 0; k < cnt; k++) {
			if (!may_see(c, &v[k]) || cancel_one(c, m, v[k].id) < 0)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				uint64_t *nv = realloc(*out, ncap * sizeof(**out));
				if (!nv)
					continue; /* cancelled, just not listed */
				*out = nv;
				cap = ncap;
			}
			(*out)[n++] = v[k].id;
		}
		free(v);
	}
	return n;
}

static void do_cancel(struct conn *c, const struct proto_msg *req)
{
	const struct proto_cancel *cr = &req->u.cancel;
	struct pool_task_info ti;
	struct proto_msg r;
	uint64_t *done = NULL;
	size_t n = 0;

	if (cr->all) {
		if (cr->model && !models_find(dsp(c)->models, cr->model)) {
			unknown_model(c, req, cr->model);
			return;
		}
		n = cancel_all(c, req, &done);
		if (pgshare_cancel_all(dsp(c)->durable->pg, c, req, done, n))
			return; /* the database's too: it replies */
	} else {
		/* Check every id first: an error cancels nothing. */
		for (uint32_t i = 0; i < cr->n_tasks; i++)
			if (!task_lookup(c, req, cr->tasks[i], &ti))
				return;
		done = calloc(cr->n_tasks ? cr->n_tasks : 1, sizeof(*done));
		for (uint32_t i = 0; done && i < cr->n_tasks; i++) {
			struct model *m = models_for_task(dsp(c)->models, cr->tasks[i]);
			int rc = cancel_one(c, m, cr->tasks[i]);
			if (rc == 0)
				done[n++] = cr->tasks[i];
			else if (cr->n_tasks == 1) {
				pool_task_info(m->pool, cr->tasks[i], &ti);
				conn_error(c, req, proto_code_from_pool(rc),
					   "task %llu already ended (%s)",
					   (unsigned long long)cr->tasks[i], pool_state_name(ti.state));
				free(done);
				return;
			}
		}
	}
	proto_msg_ok(&r, req);
	r.u.cancelled.tasks = done;
	r.u.cancelled.n_tasks = (uint32_t)n;
	conn_send(c, &r);
	free(done);
}

/* ---- stats, queue -------------------------------------------------------- */

/* Models selected by a filter; replies NOT_FOUND and returns -1 if a named
 * model does not exist. */
static int filter_models(struct conn *c, const struct proto_msg *req, size_t *first,
			 size_t *end)
{
	struct models *ms = dsp(c)->models;
	const char *name = req->u.filter.model;

	*first = 0;
	*end = ms->n;
	if (!name)
		return 0;
	struct model *m = models_find(ms, name);
	if (!m) {
		unknown_model(c, req, name);
		return -1;
	}
	*first = m->index;
	*end = m->index + 1;
	return 0;
}

static uint64_t ns_ms_round(uint64_t ns, uint64_t unit)
{
	return ns / unit;
}

void dispatch_model_stats(const struct model *m, struct proto_model_stats *o)
{
	struct pool_stats st;

	memset(o, 0, sizeof(*o));
	o->name = m->name;
	if (!m->pool)
		return;
	pool_stats(m->pool, &st);
	o->queued = st.queued;
	o->running = st.running;
	o->used_units = st.used_units;
	o->max_units = st.max_units;
	o->max_queue_depth = st.max_queue_depth;
	o->threads = st.threads;
	o->max_running = st.max_running == POOL_NO_CAP ? UINT64_MAX : st.max_running;
	o->running_limit = st.running_limit == POOL_NO_CAP ? UINT64_MAX : st.running_limit;
	o->submitted = st.submitted;
	o->completed = st.completed;
	o->failed = st.failed;
	o->cancelled = st.cancelled;
	o->expired = st.expired;
	o->timed_out = st.timed_out;
	o->rejected = st.rejected;
	o->rejected_queue_full = st.rejected_queue_full;
	o->rejected_capacity = st.rejected_capacity;
	memcpy(o->queued_by_prio, st.queued_by_prio, sizeof(o->queued_by_prio));
	o->queue_wait_p50_ms = (double)st.queue_wait_p50_ns / 1e6;
	o->queue_wait_p99_ms = (double)st.queue_wait_p99_ns / 1e6;
	o->queue_wait_count = st.queue_wait_count;
	o->queue_wait_sum_secs = (double)st.queue_wait_sum_ns / 1e9;
	o->mailbox = st.mailbox;
	o->timeout_secs = ns_ms_round(st.timeout_ns, 1000000000ull);
	o->retention_secs = ns_ms_round(st.retention_ns, 1000000000ull);
	if (m->exec) {
		struct exec_stats es;
		exec_stats(m->exec, &es);
		o->has_engine = es.has_engine;
		o->prefill_tps = es.prefill_tps;
		o->decode_tps = es.decode_tps;
		o->batch_size = es.batch_size;
		o->kv_blocks_used = es.kv_blocks_used;
		o->kv_blocks_total = es.kv_blocks_total;
		o->ttft_p50_ms = es.ttft_p50_ms;
		o->ttft_p99_ms = es.ttft_p99_ms;
		o->itl_p50_ms = es.itl_p50_ms;
		o->itl_p99_ms = es.itl_p99_ms;
		o->ttft_count = es.ttft_count;
		o->ttft_sum_secs = es.ttft_sum_secs;
		o->itl_count = es.itl_count;
		o->itl_sum_secs = es.itl_sum_secs;
		if (es.has_engine) /* the config outlives this reply */
			o->device = m->conf->params.device[0] ? m->conf->params.device : "cpu";
		struct exec_info info;
		exec_describe(m->exec, &info);
		o->model_ready = info.state && !strcmp(info.state, "ready");
		o->kv_bytes = info.kv_bytes;
		o->mem_bytes = info.mem_bytes;
	}
	o->prompt_tokens = st.prompt_tokens;
	o->generated_tokens = st.tokens;
}

/* plotd's resident memory, bytes (procfs, not a disk): 0 if unknown. */
uint64_t dispatch_rss_bytes(void)
{
	unsigned long long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void do_stats(struct conn *c, const struct proto_msg *req)
{
	struct models *ms = dsp(c)->models;
	struct proto_model_stats *v = calloc(ms->n ? ms->n : 1, sizeof(*v));
	struct proto_msg r;
	size_t first, end, n = 0;

	if (!v) {
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	if (filter_models(c, req, &first, &end) == 0) {
		for (size_t i = first; i < end; i++)
			dispatch_model_stats(&ms->v[i], &v[n++]);
		proto_msg_ok(&r, req);
		r.u.stats.models = v;
		r.u.stats.n_models = (uint32_t)n;
		r.u.stats.uptime_secs = (double)(conn_now_ms() - dsp(c)->start_ms) / 1e3;
		r.u.stats.clients = dsp(c)->conns->n;
		r.u.stats.rss_bytes = dispatch_rss_bytes();
		conn_send(c, &r);
	}
	free(v);
}

/* Append model m's queued/running tasks (filtered by state) to the arrays. */
/* Whether ti passes the queue/list request's filters. */
static int list_match(const struct proto_filter *f, const struct pool_task_info *ti,
		      uint64_t now)
{
	if (f->state >= 0 && ti->state != f->state)
		return 0;
	if ((f->has & PROTO_HAS_F_OWNER) && ti->owner_uid != f->owner)
		return 0;
	if ((f->has & PROTO_HAS_F_SINCE) && now > ti->created_ns &&
	    (double)(now - ti->created_ns) / 1e9 > f->since_secs)
		return 0;
	return 1;
}

/* One model's tasks that pass f: queued and running in queue order, then,
 * when f asks for all or for a finished state, the mailbox newest first. */
static size_t queue_collect(struct conn *c, struct model *m, const struct proto_filter *f,
			    struct proto_task_info *out, size_t room)
{
	struct pool_task_info *v;
	size_t cnt = models_list(m, &v), n = 0;
	uint64_t now = loop_now_ns();

	if (f->all || POOL_STATE_TERMINAL(f->state)) {
		size_t ne = pool_list_ended(m->pool, NULL, 0);
		struct pool_task_info *w = realloc(v, (cnt + ne + 1) * sizeof(*v));
		if (w) {
			v = w;
			ne = pool_list_ended(m->pool, v + cnt, ne);
			cnt += ne;
		}
	}
	for (size_t k = 0; v && k < cnt && n < room; k++) {
		if (!list_match(f, &v[k], now))
			continue;
		task_to_proto(m, &v[k], !may_see(c, &v[k]), &out[n]);
		/* the strings must outlive v: keep them in the label slot copies */
		out[n].label = out[n].label ? strdup(out[n].label) : NULL;
		out[n].error = out[n].error ? strdup(out[n].error) : NULL;
		n++;
	}
	free(v);
	return n;
}

static int newest_first(const void *a, const void *b)
{
	uint64_t x = ((const struct proto_task_info *)a)->id;
	uint64_t y = ((const struct proto_task_info *)b)->id;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void do_queue(struct conn *c, const struct proto_msg *req)
{
	const struct proto_filter *f = &req->u.filter;
	struct models *ms = dsp(c)->models;
	size_t first, end, n = 0, room = PROTO_MAX_ARRAY;
	struct proto_msg r;

	if (filter_models(c, req, &first, &end) < 0)
		return;
	struct proto_task_info *v = calloc(room, sizeof(*v));
	if (!v) {
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = first; i < end; i++)
		if (ms->v[i].pool)
			n += queue_collect(c, &ms->v[i], f, v + n, room - n);
	if (f->all) /* a listing: newest (highest id) first, the limit keeps the newest */
		qsort(v, n, sizeof(*v), newest_first);
	size_t shown = (f->has & PROTO_HAS_F_LIMIT) && f->limit < n ? (size_t)f->limit : n;
	proto_msg_ok(&r, req);
	r.u.queue.tasks = v;
	r.u.queue.n_tasks = (uint32_t)shown;
	conn_send(c, &r);
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].label);
		free((char *)v[i].error);
	}
	free(v);
}

/* ---- limits -------------------------------------------------------------- */

#define LIMIT_KEYS 16

struct limits_out {
	struct proto_model_limits ml;
	struct proto_kv kv[LIMIT_KEYS];
	char val[LIMIT_KEYS][48];
};

static void limits_one(const struct model *m, struct limits_out *o)
{
	char err[128];

	o->ml.name = m->name;
	o->ml.kv = o->kv;
	o->ml.n_kv = 0;
	for (size_t i = 0; i < cfg_setting_count() && o->ml.n_kv < LIMIT_KEYS; i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope != CFG_SCOPE_LOT || !s->key || !(s->flags & CFG_F_RUNTIME))
			continue;
		uint32_t k = o->ml.n_kv;
		if (cfg_lot_get(&m->lot, s->key, o->val[k], sizeof(o->val[k]), err,
				sizeof(err)) < 0)
			continue;
		o->kv[k].key = s->key;
		o->kv[k].value = o->val[k];
		o->ml.n_kv++;
	}
}

static void send_limits(struct conn *c, const struct proto_msg *req, size_t first, size_t end)
{
	struct models *ms = dsp(c)->models;
	struct limits_out *lo = calloc(end - first ? end - first : 1, sizeof(*lo));
	struct proto_model_limits *ml = calloc(end - first ? end - first : 1, sizeof(*ml));
	struct proto_msg r;

	if (!lo || !ml) {
		free(lo);
		free(ml);
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = first; i < end; i++) {
		limits_one(&ms->v[i], &lo[i - first]);
		ml[i - first] = lo[i - first].ml;
	}
	proto_msg_ok(&r, req);
	r.u.limits.models = ml;
	r.u.limits.n_models = (uint32_t)(end - first);
	conn_send(c, &r);
	free(lo);
	free(ml);
}

static void do_limits_get(struct conn *c, const struct proto_msg *req)
{
	size_t first, end;

	if (filter_models(c, req, &first, &end) == 0)
		send_limits(c, req, first, end);
}

static int cfg_to_proto_code(int rc)
{
	return -rc == CFG_E_UNKNOWN ? PROTO_E_NOT_FOUND : PROTO_E_CONFIG;
}

static void do_limits_set(struct conn *c, const struct proto_msg *req)
{
	const struct proto_limits_set *ls = &req->u.limits_set;
	struct models *ms = dsp(c)->models;
	size_t first = 0, end = ms->n;
	char err[256], why[64];

	if (!is_owner(c)) {
		conn_error(c, req, PROTO_E_PERMISSION, "only the daemon's owner may set limits");
		return;
	}
	if (ls->model) {
		struct model *m = models_find(ms, ls->model);
		if (!m) {
			unknown_model(c, req, ls->model);
			return;
		}
		first = m->index;
		end = first + 1;
	}
	/* Validate every key on every target first: all or nothing. */
	struct cfg_lot *want = calloc(end - first ? end - first : 1, sizeof(*want));
	if (!want) {
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	for (size_t i = first; i < end; i++) {
		want[i - first] = ms->v[i].lot;
		for (uint32_t k = 0; k < ls->n_kv; k++) {
			int rc = cfg_lot_set(&want[i - first], ls->kv[k].key, ls->kv[k].value,
					     err, sizeof(err));
			if (rc < 0) {
				conn_error(c, req, cfg_to_proto_code(rc), "%s", err);
				free(want);
				return;
			}
		}
	}
	snprintf(why, sizeof(why), "set by uid %u", (unsigned)c->peer.uid);
	for (size_t i = first; i < end; i++)
		models_set_lot(&ms->v[i], &want[i - first], why);
	free(want);
	send_limits(c, req, first, end);
}

/* ---- drain, shutdown ------------------------------------------------------ */

static void do_stop(struct conn *c, const struct proto_msg *req, int cancel)
{
	struct proto_msg r;
	char why[64];

	if (!is_owner(c)) {
		conn_error(c, req, PROTO_E_PERMISSION, "only the daemon's owner may %s it",
			   cancel ? "shut down" : "drain");
		return;
	}
	if (!(req->u.stop.timeout_secs >= 0 && req->u.stop.timeout_secs <= 86400)) {
		conn_error(c, req, PROTO_E_INVALID, "timeout must be 0..86400 seconds");
		return;
	}
	proto_msg_ok(&r, req);
	conn_send(c, &r);
	snprintf(why, sizeof(why), "%s requested by uid %u", cancel ? "shutdown" : "drain",
		 (unsigned)c->peer.uid);
	dsp(c)->hooks.stop(dsp(c)->hooks.ctx, cancel, req->u.stop.timeout_secs, why);
}

/* ---- the switch ------------------------------------------------------------ */

void dispatch_request(void *ctx, struct conn *c, struct proto_msg *req)
{
	(void)ctx; /* the same as dsp(c) */
	switch (req->type) {
	case PROTO_T_HELLO:
		do_hello(c, req);
		break;
	case PROTO_T_SUBMIT:
		do_submit(c, req);
		break;
	case PROTO_T_STATUS:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_status(c, req);
		break;
	case PROTO_T_RESULT:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_result(c, req);
		break;
	case PROTO_T_SUBSCRIBE:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_subscribe(c, req);
		break;
	case PROTO_T_CANCEL:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_cancel(c, req);
		break;
	case PROTO_T_STATS:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_stats(c, req);
		break;
	case PROTO_T_QUEUE:
		if (!pgshare_request(dsp(c)->durable->pg, c, req))
			do_queue(c, req);
		break;
	case PROTO_T_LIMITS_GET:
		do_limits_get(c, req);
		break;
	case PROTO_T_LIMITS_SET:
		do_limits_set(c, req);
		break;
	case PROTO_T_MODELS:
		do_models(c, req);
		break;
	case PROTO_T_CONFIG:
		do_config(c, req);
		break;
	case PROTO_T_PING: {
		struct proto_msg r;
		proto_msg_ok(&r, req);
		conn_send(c, &r);
		break;
	}
	case PROTO_T_DRAIN:
		do_stop(c, req, 0);
		break;
	case PROTO_T_SHUTDOWN:
		do_stop(c, req, 1);
		break;
	default: {
		/* A server message sent to us: answer as to a hello, the only op
		 * every client can match. */
		struct proto_msg as;
		proto_msg_init(&as, PROTO_T_HELLO, req->id);
		conn_error(c, &as, PROTO_E_INVALID, "%s is not a request",
			   proto_type_name(req->type));
		break;
	}
	}
}

/* ---- connections closing, lifecycle ----------------------------------------- */

/* The client went away (cancel_runs) or was dropped: free its watches, and
 * cancel the tasks it was running in the foreground. */
void dispatch_conn_closed(void *ctx, struct conn *c, int cancel_runs)
{
	while (c->watches) {
		struct watch *w = c->watches;
		c->watches = w->conn_next;
		if (cancel_runs && w->run && w->m->pool && pool_cancel(w->m->pool, w->task) == 0)
			log_msg(LOG_INFO, "pool %s: task %llu cancelled: its run client %llu "
				"disconnected", w->m->name, (unsigned long long)w->task,
				(unsigned long long)c->num);
		watch_free(w);
	}
	if (cancel_runs)
		pgshare_conn_closed(dsp(c)->durable->pg, c);
	(void)ctx;
}

static struct watch *watch_of(struct dispatch *d, const struct model *m)
{
	for (struct conn *c = d->conns->list; c; c = c->next)
		for (struct watch *w = c->watches; w; w = w->conn_next)
			if (w->m == m)
				return w;
	return NULL;
}

/* models' on_gone: m's pool is stopped (every task ended) and is about to
 * go. Feed the watches of m what their tasks still have (bounded rounds: a
 * slow client may not take it all), then end what is left with the task's
 * state and drop it, so no watch outlives the pool. Each end or drop may
 * close a connection, so every search starts again from the list's head. */
static void model_gone(void *ctx, struct model *gone)
{
	struct dispatch *d = ctx;
	struct watch *w;
	for (int round = 0; round < 64 && (w = watch_of(d, gone)); round++)
		dispatch_task_event(d, w->task, NULL, 1);
	while ((w = watch_of(d, gone))) {
		struct pool_task_info ti;
		int state = current_state(w, &ti);
		if (w->kind == WATCH_SUB) {
			send_end(w, state, "model unloaded"); /* w is gone either way */
			continue;
		}
		if (POOL_STATE_TERMINAL(state))
			send_result(w->c, w->m, &ti, w->req_id);
		watch_drop(w);
	}
}

void dispatch_kick_all(struct dispatch *d)
{
	size_t n = 0, cap = d->watches.count;
	uint64_t *ids = calloc(cap ? cap : 1, sizeof(*ids));

	for (struct conn *c = d->conns->list; ids && c; c = c->next)
		for (struct watch *w = c->watches; w && n < cap; w = w->conn_next)
			ids[n++] = w->task;
	for (size_t i = 0; i < n; i++)
		dispatch_task_event(d, ids[i], NULL, 1);
	free(ids);
}

size_t dispatch_watch_count(const struct dispatch *d)
{
	return d->watches.count;
}

int dispatch_init(struct dispatch *d, struct conns *cs, struct models *ms,
		  struct post *post, const struct dispatch_hooks *h)
{
	memset(d, 0, sizeof(*d));
	d->conns = cs;
	d->models = ms;
	d->post = post;
	d->hooks = *h;
	d->loop_thread = pthread_self();
	d->start_ms = conn_now_ms();
	ms->on_gone = model_gone;
	ms->on_gone_ctx = d;
	return watch_table_init(&d->watches, 1024);
}

void dispatch_free(struct dispatch *d)
{
	watch_table_free(&d->watches);
}
