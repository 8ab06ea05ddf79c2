/*
 * llm.c — the `llm` row of the executor table: a GGUF model run by the
 * engine's llm executor (include/plot/llm-exec.h) on the configured device.
 *
 * DESIGN
 *   A thin translation: the config's params become a struct
 *   llm_exec_config, a struct exec_request an llm_exec_request (sampling
 *   fields over llama.cpp's defaults, which the daemon has already replaced
 *   by the model's generate.* settings; without max_tokens, until the end of
 *   the text or the context (0); a fresh
 *   seed from getrandom when none is), and an llm_exec_prepared the common
 *   struct exec_prepared. The prep thread tokenizes; its callback is
 *   forwarded as is, so the daemon sees one kind of result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "exec/exec-impl.h"
#include "plot/llm-exec.h"

static int llm_create(const struct exec_config *c, struct pool_executor *pe, void **ctx,
		      char *err, size_t errlen)
{
	const struct cfg_model *cm = c->model;
	const struct cfg_params *p = &cm->params;
	struct llm_exec *x;

	if (!c->path) {
		snprintf(err, errlen, "models[].path: required for executor llm");
		return -EXEC_E_INVALID;
	}
	struct llm_exec_config lc = {
		.name = cm->name, .path = c->path, .device = p->device,
		.kvcache_mem_mb = p->kvcache_mem_mb, .block_size = (uint32_t)p->block_size,
		.max_num_seqs = (uint32_t)p->max_num_seqs,
		.max_batch_tokens = (uint32_t)p->max_batch_tokens,
		.context_length = p->context_length == CFG_NULL ? 0 : (uint32_t)p->context_length,
		.kv_type = p->kv_type,
	};
	int rc = llm_exec_new(&lc, pe, &x, err, errlen);
	if (rc < 0)
		return rc; /* llm_exec_err values are exec_err's */
	*ctx = x;
	return 0;
}

static void llm_attach(void *ctx, struct pool *p, const struct exec_config *c)
{
	llm_exec_attach(ctx, p, c->model->lot.max_units == CFG_NULL);
}

static uint64_t fresh_seed(void)
{
	uint64_t s = 0;
	struct timespec ts;
	if (getrandom(&s, sizeof(s), 0) == (ssize_t)sizeof(s))
		return s;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The request's sampling fields over llama.cpp's defaults. */
static void request_from(const struct exec_request *r, struct llm_exec_request *q)
{
	memset(q, 0, sizeof(*q));
	q->prompt = r->prompt;
	q->prompt_as_turn = !r->raw;
	q->messages = r->messages;
	q->n_messages = r->n_messages;
	smp_params_default(&q->params);
	if (r->has & EXEC_HAS_TEMPERATURE)
		q->params.temperature = (float)r->temperature;
	if (r->has & EXEC_HAS_TOP_K)
		q->params.top_k = r->top_k > INT32_MAX ? INT32_MAX : (int32_t)r->top_k;
	if (r->has & EXEC_HAS_TOP_P)
		q->params.top_p = (float)r->top_p;
	if (r->has & EXEC_HAS_MIN_P)
		q->params.min_p = (float)r->min_p;
	if (r->has & EXEC_HAS_REPETITION_PENALTY)
		q->params.repetition_penalty = (float)r->repetition_penalty;
	if (r->has & EXEC_HAS_FREQUENCY_PENALTY)
		q->params.frequency_penalty = (float)r->frequency_penalty;
	if (r->has & EXEC_HAS_PRESENCE_PENALTY)
		q->params.presence_penalty = (float)r->presence_penalty;
	if (r->has & EXEC_HAS_PENALTY_LAST_N)
		q->params.penalty_last_n = r->penalty_last_n > INT32_MAX ? INT32_MAX
					   : (int32_t)r->penalty_last_n;
	q->params.seed = (r->has & EXEC_HAS_SEED) ? r->seed : fresh_seed();
	q->max_tokens = (r->has & EXEC_HAS_MAX_TOKENS) ? r->max_tokens : 0;
	q->stop = r->stop;
	q->n_stop = r->n_stop;
	q->ignore_eos = r->ignore_eos;
	q->priority = r->priority;
	if (r->has & EXEC_HAS_TIMEOUT)
		q->timeout_ns = r->timeout_ns;
	q->owner_uid = r->owner_uid;
}

/* What travels with a request through the prep thread. */
struct relay {
	exec_prepared_fn cb;
	void *cb_ctx;
	int has_cost;
	uint64_t cost;
	uint32_t max_tokens;
};

/* Prep thread: llm result -> common result, then the caller's callback. */
static void on_prepared(void *ctx, struct llm_exec_prepared *lr)
{
	struct relay rl = *(struct relay *)ctx;
	struct exec_prepared *p = exec_prepared_new(lr ? lr->status : -EXEC_E_NOMEM);

	free(ctx);
	if (p && lr) {
		memcpy(p->error, lr->error, sizeof(p->error));
		p->prompt_tokens = lr->prompt_tokens;
		p->max_tokens = rl.max_tokens;
		p->sub = lr->sub;
		memcpy(p->label, lr->label, sizeof(p->label));
		p->sub.label = p->label;
		if (p->status == 0 && rl.has_cost)
			p->sub.cost = rl.cost;
		lr->sub.payload = NULL; /* moved */
	} else if (p) {
		snprintf(p->error, sizeof(p->error), "out of memory");
	}
	llm_exec_prepared_free(lr);
	rl.cb(rl.cb_ctx, p); /* p NULL: out of memory; the callback says so */
}

static int llm_prepare(void *ctx, const struct exec_request *r, exec_prepared_fn cb,
		       void *cb_ctx, char *err, size_t errlen)
{
	struct llm_exec_request q;
	struct relay *rl = malloc(sizeof(*rl));

	if (!rl) {
		snprintf(err, errlen, "out of memory");
		return -EXEC_E_NOMEM;
	}
	if ((r->has & EXEC_HAS_MAX_TOKENS) && r->max_tokens == 0) {
		free(rl); /* absent means "to the end"; an explicit 0 is a mistake */
		snprintf(err, errlen, "max_tokens must be >= 1, got 0");
		return -EXEC_E_INVALID;
	}
	request_from(r, &q);
	*rl = (struct relay){ cb, cb_ctx, !!(r->has & EXEC_HAS_COST), r->cost, q.max_tokens };
	int rc = llm_exec_prepare(ctx, &q, on_prepared, rl, err, errlen);
	if (rc < 0)
		free(rl);
	return rc;
}

static void llm_describe(void *ctx, struct exec_info *o)
{
	struct llm_exec_status st;

	llm_exec_status(ctx, &st);
	snprintf(o->device, sizeof(o->device), "%s", st.device ? st.device : llm_exec_device(ctx));
	o->device_id = st.device;
	o->device_name = st.device_name;
	o->device_total_bytes = st.device_total_bytes;
	o->device_free_bytes = st.device_free_bytes;
	o->state = llm_exec_state_name(st.state);
	o->progress = st.progress;
	if (st.state == LLM_EXEC_FAILED)
		snprintf(o->error, sizeof(o->error), "%s", st.error);
	o->context_length = st.context_length;
	o->units_total = st.blocks_total;
	o->kv_bytes = st.kv_bytes;
	o->mem_bytes = st.weights_bytes + st.kv_bytes;
}

/* A snapshot under the executor's stats lock only, never its step. */
static void llm_stats(void *ctx, struct exec_stats *o)
{
	struct llm_exec_stats s;

	llm_exec_stats(ctx, &s);
	o->has_engine = 1;
	o->prefill_tps = s.prefill_tps;
	o->decode_tps = s.decode_tps;
	o->batch_size = s.batch_seqs;
	o->kv_blocks_used = s.kv_blocks_used;
	o->kv_blocks_total = s.kv_blocks_total;
	o->ttft_p50_ms = (double)s.ttft_p50_ns / 1e6;
	o->ttft_p99_ms = (double)s.ttft_p99_ns / 1e6;
	o->itl_p50_ms = (double)s.itl_p50_ns / 1e6;
	o->itl_p99_ms = (double)s.itl_p99_ns / 1e6;
	o->ttft_count = s.ttft_count;
	o->ttft_sum_secs = (double)s.ttft_sum_ns / 1e9;
	o->itl_count = s.itl_count;
	o->itl_sum_secs = (double)s.itl_sum_ns / 1e9;
}

const struct exec_ops exec_llm_ops = {
	.name = "llm",
	.create = llm_create,
	.attach = llm_attach,
	.prepare = llm_prepare,
	.describe = llm_describe,
	.stats = llm_stats,
};
