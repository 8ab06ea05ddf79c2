/*
 * llm.c — models with `executor: llm`: starting the executor beside the
 * pool, and the submit path that tokenizes off the loop.
 *
 * DESIGN
 *   A submit for an llm model is not answered at once: the request goes to
 *   the executor's prep thread (llm_exec_prepare: template, tokenize,
 *   validate, cost). Its callback runs on that thread; it only appends the
 *   result to a mutex-guarded list and writes the prep eventfd when the
 *   list goes from empty to non-empty. The loop (llm_on_prepared) then
 *   calls pool_submit and answers the client, found again by connection
 *   number (it may have gone meanwhile: a detached task is submitted
 *   anyway, any other is dropped).
 *
 *   max_units: null means every KV block the budget holds; the executor
 *   sets it on the pool when the cache is sized (llm_exec_attach), before
 *   any prepare result exists, and opens the running limit once loaded.
 *
 * INVARIANT: every llm_exec_prepare we start yields exactly one pending
 * entry; each entry is consumed by the loop or freed at exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "plotd.h"

#define LLM_DEFAULT_MAX_TOKENS 256

struct pending {
	struct pending *next;
	struct plotd *d;
	size_t model;
	uint64_t conn_num, req_id;
	int detach, has_cost;
	uint64_t cost;
	struct llm_exec_prepared *res;
};

static pthread_mutex_t prep_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pending *prep_head, *prep_tail;
static int prep_fd = -1;

void llm_prepared_init(int fd)
{
	prep_fd = fd;
}

/* ---- starting a model ------------------------------------------------------- */

/* "~/x" -> "$HOME/x" (config files name model paths that way). */
static const char *expand_home(const char *p, char *buf, size_t len)
{
	const char *home = getenv("HOME");
	if (strncmp(p, "~/", 2) != 0 || !home)
		return p;
	snprintf(buf, len, "%s/%s", home, p + 2);
	return buf;
}

int llm_model_start(struct model *m, const struct cfg_model *cm, const struct pool_config *pc,
		    char *err, size_t errlen)
{
	char path[4096];
	struct pool_executor ex;
	if (!cm->path) {
		snprintf(err, errlen, "models[].path: required for executor llm");
		return -1;
	}
	const struct cfg_params *p = &cm->params;
	struct llm_exec_config c = {
		.name = m->name, .path = expand_home(cm->path, path, sizeof(path)),
		.device = "cpu", .kvcache_mem_mb = p->kvcache_mem_mb,
		.block_size = (uint32_t)p->block_size, .max_num_seqs = (uint32_t)p->max_num_seqs,
		.max_batch_tokens = (uint32_t)p->max_batch_tokens,
		.context_length = p->context_length == CFG_NULL ? 0 : (uint32_t)p->context_length,
		.kv_type = p->kv_type,
	};
	if (llm_exec_new(&c, &ex, &m->llm, err, errlen) < 0)
		return -1;
	m->pool = pool_new(pc, ex, err, errlen); /* frees the executor on failure */
	if (!m->pool) {
		m->llm = NULL;
		return -1;
	}
	llm_exec_attach(m->llm, m->pool, cm->lot.max_units == CFG_NULL);
	return 0;
}

const char *llm_model_state(struct model *m)
{
	struct llm_exec_status st;
	if (!m->llm)
		return "failed";
	llm_exec_status(m->llm, &st);
	return llm_exec_state_name(st.state);
}

/* Fill the llm part of a models reply; o->error points into st. */
void llm_model_info(struct model *m, struct proto_model_info *o, struct llm_exec_status *st)
{
	if (!m->llm) {
		o->state = "failed";
		o->error = m->error;
		return;
	}
	llm_exec_status(m->llm, st);
	o->state = llm_exec_state_name(st->state);
	o->progress = st->progress;
	o->error = st->state == LLM_EXEC_FAILED ? st->error : NULL;
	o->context_length = st->context_length;
	o->kv_blocks = st->blocks_total;
}

/* Fill the llm part of a stats reply: a snapshot taken under the executor's
 * stats lock only (a memcpy while the engine computes), never its step. */
void llm_model_stats(const struct model *m, struct proto_model_stats *o)
{
	struct llm_exec_stats s;
	if (!m->llm)
		return;
	llm_exec_stats(m->llm, &s);
	o->is_llm = 1;
	o->prefill_tps = s.prefill_tps;
	o->decode_tps = s.decode_tps;
	o->batch_size = s.batch_seqs;
	o->kv_blocks_used = s.kv_blocks_used;
	o->kv_blocks_total = s.kv_blocks_total;
	o->ttft_p50_ms = (double)s.ttft_p50_ns / 1e6;
	o->ttft_p99_ms = (double)s.ttft_p99_ns / 1e6;
	o->itl_p50_ms = (double)s.itl_p50_ns / 1e6;
	o->itl_p99_ms = (double)s.itl_p99_ns / 1e6;
}

/* ---- submit ------------------------------------------------------------------ */

/* Prep thread: hand the result to the loop. */
static void on_prepared_cb(void *ctx, struct llm_exec_prepared *r)
{
	struct pending *pe = ctx;
	pe->res = r;
	pthread_mutex_lock(&prep_mu);
	int wake = prep_head == NULL;
	if (prep_tail)
		prep_tail->next = pe;
	else
		prep_head = pe;
	prep_tail = pe;
	pthread_mutex_unlock(&prep_mu);
	if (wake && prep_fd >= 0)
		loop_eventfd_signal(prep_fd);
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
		s = plotd_now_ms();
	return s;
}

/* The request's sampling fields over llama.cpp's defaults. */
static void params_from(const struct proto_submit *s, struct llm_exec_request *q)
{
	smp_params_default(&q->params);
	if (s->has & PROTO_HAS_TEMPERATURE)
		q->params.temperature = (float)s->temperature;
	if (s->has & PROTO_HAS_TOP_K)
		q->params.top_k = s->top_k > INT32_MAX ? INT32_MAX : (int32_t)s->top_k;
	if (s->has & PROTO_HAS_TOP_P)
		q->params.top_p = (float)s->top_p;
	if (s->has & PROTO_HAS_MIN_P)
		q->params.min_p = (float)s->min_p;
	q->params.seed = (s->has & PROTO_HAS_SEED) ? s->seed : random_seed();
	q->max_tokens = (s->has & PROTO_HAS_MAX_TOKENS) ? s->max_tokens : LLM_DEFAULT_MAX_TOKENS;
	q->stop = s->stop;
	q->n_stop = s->n_stop;
	q->priority = s->priority;
	q->ignore_eos = s->ignore_eos;
	if (s->has & PROTO_HAS_DEADLINE)
		q->timeout_ns = (uint64_t)(s->deadline_secs * 1e9);
}

void llm_submit(struct conn *c, const struct proto_msg *req, struct model *m)
{
	const struct proto_submit *s = &req->u.submit;
	struct llm_exec_request q = { .prompt = s->prompt };
	struct tmpl_msg *msgs = calloc(s->n_messages ? s->n_messages : 1, sizeof(*msgs));
	struct pending *pe = calloc(1, sizeof(*pe));
	char err[256];

	if (!msgs || !pe) {
		free(msgs);
		free(pe);
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	for (uint32_t i = 0; i < s->n_messages; i++)
		msgs[i] = (struct tmpl_msg){ s->messages[i].role, s->messages[i].content };
	q.messages = msgs;
	q.n_messages = s->n_messages;
	q.prompt_as_turn = !s->raw;
	params_from(s, &q);
	q.owner_uid = (uint32_t)c->peer.uid;
	*pe = (struct pending){ .d = c->d, .model = m->index, .conn_num = c->num,
				.req_id = req->id, .detach = s->detach,
				.has_cost = !!(s->has & PROTO_HAS_COST), .cost = s->cost };
	int rc = llm_exec_prepare(m->llm, &q, on_prepared_cb, pe, err, sizeof(err));
	free(msgs);
	if (rc < 0) {
		free(pe);
		conn_error(c, req, rc == -LLM_EXEC_E_NOMEM ? PROTO_E_NOMEM :
			   rc == -LLM_EXEC_E_SHUTDOWN ? PROTO_E_SHUTDOWN : PROTO_E_INVALID,
			   "%s", err);
	}
}

static struct conn *conn_by_num(struct plotd *d, uint64_t num)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->num == num && !c->dead && !c->closing)
			return c;
	return NULL;
}

static int code_of(int status)
{
	switch (-status) {
	case LLM_EXEC_E_CONTEXT: return PROTO_E_CONTEXT;
	case LLM_EXEC_E_NOMEM: return PROTO_E_NOMEM;
	case LLM_EXEC_E_SHUTDOWN: return PROTO_E_SHUTDOWN;
	case LLM_EXEC_E_LOAD: return PROTO_E_INTERNAL;
	default: return PROTO_E_INVALID;
	}
}

static void reject(struct conn *c, const struct proto_msg *req, struct model *m,
		   uint64_t cost, int rc)
{
	log_msg(LOG_INFO, "pool %s: submit rejected: %s", m->name, pool_err_name(rc));
	if (!c)
		return;
	if (-rc == POOL_E_CAPACITY)
		conn_error(c, req, PROTO_E_CAPACITY, "cost %llu exceeds max_units %llu of model %s",
			   (unsigned long long)cost,
			   (unsigned long long)pool_get_limit(m->pool, POOL_LIMIT_MAX_UNITS),
			   m->name);
	else if (-rc == POOL_E_QUEUE_FULL)
		conn_error(c, req, PROTO_E_QUEUE_FULL, "queue of model %s is full "
			   "(max_queue_depth %llu)", m->name, (unsigned long long)
			   pool_get_limit(m->pool, POOL_LIMIT_MAX_QUEUE_DEPTH));
	else
		conn_error(c, req, proto_code_from_pool(rc), "submit to model %s: %s", m->name,
			   pool_err_name(rc));
}

/* Loop: one prepared request -> pool_submit -> answer. */
static void submit_prepared(struct pending *pe)
{
	struct plotd *d = pe->d;
	struct model *m = &d->models.v[pe->model];
	struct conn *c = conn_by_num(d, pe->conn_num);
	struct llm_exec_prepared *r = pe->res;
	struct proto_msg req = { .type = PROTO_T_SUBMIT, .id = pe->req_id }, out;
	uint64_t id;

	if (!r || (!c && !pe->detach)) {
		if (c)
			conn_error(c, &req, PROTO_E_NOMEM, "out of memory");
		return;
	}
	if (r->status < 0) {
		if (c)
			conn_error(c, &req, code_of(r->status), "%s", r->error);
		return;
	}
	if (!plotd_can_submit(d)) {
		if (c)
			conn_error(c, &req, PROTO_E_SHUTDOWN, "plotd is draining: no new tasks");
		return;
	}
	if (pe->has_cost)
		r->sub.cost = pe->cost;
	uint64_t cost = r->sub.cost;
	int rc = pool_submit(m->pool, &r->sub, &id);
	r->sub.payload = NULL; /* the pool took it, in every case */
	if (rc < 0) {
		reject(c, &req, m, cost, rc);
		return;
	}
	log_msg(LOG_INFO, "pool %s: task %llu submitted (%u prompt tokens, cost %llu%s)",
		m->name, (unsigned long long)id, r->prompt_tokens, (unsigned long long)cost,
		pe->detach ? ", detached" : "");
	if (!c)
		return;
	if (!pe->detach)
		conn_remember_run(c, id);
	proto_msg_ok(&out, &req);
	out.u.submitted.task = id;
	out.u.submitted.model = m->name;
	conn_send(c, &out);
}

void llm_on_prepared(struct plotd *d)
{
	(void)d;
	pthread_mutex_lock(&prep_mu);
	struct pending *pe = prep_head;
	prep_head = prep_tail = NULL;
	pthread_mutex_unlock(&prep_mu);
	while (pe) {
		struct pending *nx = pe->next;
		submit_prepared(pe);
		llm_exec_prepared_free(pe->res);
		free(pe);
		pe = nx;
	}
}

/* At exit, after the models are freed (their prep threads answered). */
void llm_prepared_free(void)
{
	pthread_mutex_lock(&prep_mu);
	struct pending *pe = prep_head;
	prep_head = prep_tail = NULL;
	pthread_mutex_unlock(&prep_mu);
	while (pe) {
		struct pending *nx = pe->next;
		llm_exec_prepared_free(pe->res);
		free(pe);
		pe = nx;
	}
}
