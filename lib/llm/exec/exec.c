/*
 * exec.c — the llm executor's lifecycle: config check, the loader thread,
 * the pool_executor ops, status and the hold gate for tests.
 *
 * DESIGN
 *   Three threads per model: loader (exits when loaded), prep (tokenizing,
 *   exec-prep.c) and engine (continuous batching, exec-engine.c). They meet
 *   in one mutex (mu) with two condition variables; nothing polls.
 *   The pool learns the executor's capacity from set_threads(): 0 while
 *   loading, max_num_seqs once READY or FAILED. exec_pool_sync() brings the pool in
 *   line with the executor: max_units = blocks once sized (if attached so),
 *   then the running limit once READY/FAILED. Loader and attach both call
 *   it; sync_mu makes its pool calls happen once each, units first. The
 *   state is published before the pool call, and pool_set_capacity
 *   serialises with set_threads in the pool, so the pool ends with the right
 *   value whichever runs last.
 *
 * INVARIANTS
 *   - m/tok/tmpl/kv are written only by the loader, before `sized` is set.
 *   - max_units is set before `sized` is published, so no prepare result
 *     (hence no submit) sees the pool's loading-time max_units.
 *   - ops->stop is called by pool_free() with no task running; it joins all
 *     three threads, answering queued prepare requests with SHUTDOWN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm/exec/exec-impl.h"
#include "plot/gguf.h"
#include "plot/template.h"

static void *loader_main(void *arg);

uint64_t exec_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *llm_exec_state_name(int state)
{
	switch (state) {
	case LLM_EXEC_LOADING: return "loading";
	case LLM_EXEC_READY: return "ready";
	case LLM_EXEC_FAILED: return "failed";
	default: return "?";
	}
}

/* ---- config ---------------------------------------------------------------- */

static int check_range(const char *field, uint64_t v, uint64_t lo, uint64_t hi, char *err,
		       size_t errlen)
{
	if (v >= lo && v <= hi)
		return 0;
	snprintf(err, errlen, "params.%s must be in [%llu, %llu], got %llu", field,
		 (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)v);
	return -LLM_EXEC_E_INVALID;
}

static int check_config(const struct llm_exec_config *c, char *err, size_t errlen)
{
	if (!c->path || !*c->path) {
		snprintf(err, errlen, "path: missing");
		return -LLM_EXEC_E_INVALID;
	}
	char e[200];
	if (llm_device_check(c->device, e, sizeof e) != 0) {
		snprintf(err, errlen, "params.device: %s", e);
		return -LLM_EXEC_E_INVALID;
	}
	if (check_range("kvcache_mem_mb", c->kvcache_mem_mb, 1, 1u << 20, err, errlen) ||
	    check_range("block_size", c->block_size, 1, 4096, err, errlen) ||
	    check_range("max_num_seqs", c->max_num_seqs, 1, 4096, err, errlen) ||
	    check_range("max_batch_tokens", c->max_batch_tokens, 1, LLM_MAX_BATCH, err, errlen) ||
	    check_range("context_length", c->context_length, 0, 1u << 24, err, errlen) ||
	    check_range("kv_type", (uint64_t)(unsigned)c->kv_type, LLM_KV_F16, LLM_KV_F32, err,
			errlen))
		return -LLM_EXEC_E_INVALID;
	return 0;
}

/* ---- creation and teardown -------------------------------------------------- */

static int exec_alloc(struct llm_exec *x, const struct llm_exec_config *c)
{
	x->cfg = *c;
	x->path = strdup(c->path);
	x->name = strdup(c->name ? c->name : c->path);
	x->device = strdup(c->device ? c->device : "cpu");
	x->run = calloc(c->max_num_seqs, sizeof *x->run);
	x->slot_used = calloc(c->max_num_seqs, 1);
	if (!x->path || !x->name || !x->device || !x->run || !x->slot_used)
		return -1;
	x->cfg.path = x->path;
	x->cfg.name = x->name;
	x->cfg.device = x->device;
	x->held = c->start_held;
	x->threads_want = 1;
	if (pthread_mutex_init(&x->mu, NULL) || pthread_mutex_init(&x->sync_mu, NULL))
		return -1;
	if (pthread_cond_init(&x->engine_cv, NULL) || pthread_cond_init(&x->prep_cv, NULL))
		return -1;
	exec_stats_init(&x->st);
	return 0;
}

static void exec_release(struct llm_exec *x)
{
	if (!x)
		return;
	if (x->kv)
		llm_kv_free(x->kv);
	if (x->m)
		llm_model_free(x->m);
	tok_free(x->tok);
	tmpl_free(x->tmpl);
	while (x->in_head) {
		struct inbox_node *n = x->in_head;
		x->in_head = n->next;
		free(n);
	}
	free(x->run);
	free(x->slot_used);
	free(x->path);
	free(x->name);
	free(x->device);
	free(x);
}

static void exec_join(struct llm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	x->stopping = 1;
	pthread_cond_broadcast(&x->engine_cv);
	pthread_cond_broadcast(&x->prep_cv);
	pthread_mutex_unlock(&x->mu);
	if (x->loader_on)
		pthread_join(x->loader, NULL);
	if (x->prep_on)
		pthread_join(x->prep, NULL);
	if (x->engine_on)
		pthread_join(x->engine, NULL);
	x->loader_on = x->prep_on = x->engine_on = 0;
	exec_prep_drain(x);
}

static int exec_start_threads(struct llm_exec *x, char *err, size_t errlen)
{
	if (pthread_create(&x->loader, NULL, loader_main, x) == 0)
		x->loader_on = 1;
	if (x->loader_on && pthread_create(&x->prep, NULL, exec_prep_main, x) == 0)
		x->prep_on = 1;
	if (x->prep_on && pthread_create(&x->engine, NULL, exec_engine_main, x) == 0)
		x->engine_on = 1;
	if (x->engine_on)
		return 0;
	snprintf(err, errlen, "model %s: cannot start threads: %s", x->name, strerror(errno));
	exec_join(x);
	return -LLM_EXEC_E_NOMEM;
}

static const struct pool_executor_ops exec_ops;

int llm_exec_new(const struct llm_exec_config *c, struct pool_executor *out,
		 struct llm_exec **handle, char *err, size_t errlen)
{
	int rc = check_config(c, err, errlen);
	if (rc)
		return rc;
	struct llm_exec *x = calloc(1, sizeof *x);
	if (!x || exec_alloc(x, c) < 0) {
		snprintf(err, errlen, "model %s: out of memory", c->name ? c->name : c->path);
		exec_release(x);
		return -LLM_EXEC_E_NOMEM;
	}
	rc = exec_start_threads(x, err, errlen);
	if (rc) {
		exec_release(x);
		return rc;
	}
	out->ops = &exec_ops;
	out->ctx = x;
	*handle = x;
	return 0;
}

/* ---- pool sync ---------------------------------------------------------------- */

static void exec_pool_sync(struct llm_exec *x)
{
	pthread_mutex_lock(&x->sync_mu);
	pthread_mutex_lock(&x->mu);
	struct pool *p = x->pool;
	int units = p && x->units_are_blocks && x->blocks_total && !x->pool_units_done;
	int raise = p && x->state != LLM_EXEC_LOADING && !x->pool_raised;
	x->pool_units_done |= units;
	x->pool_raised |= raise;
	uint32_t blocks = x->blocks_total;
	pthread_mutex_unlock(&x->mu);
	if (units)
		pool_set_limit(p, POOL_LIMIT_MAX_UNITS, blocks);
	if (raise)
		pool_set_capacity(p, x->cfg.max_num_seqs);
	pthread_mutex_unlock(&x->sync_mu);
}

/* ---- loader ----------------------------------------------------------------- */

static void set_progress(struct llm_exec *x, double p)
{
	pthread_mutex_lock(&x->mu);
	x->progress = p;
	pthread_mutex_unlock(&x->mu);
}

/* The model's load is LOAD_MODEL_SHARE of the progress; reading the
 * weights once (load_touch) is the rest. */
#define LOAD_MODEL_SHARE 0.9

static void on_load_progress(void *ctx, double f)
{
	set_progress(ctx, f * LOAD_MODEL_SHARE);
}

/* What the model's tensors hold: the GGUF's tensor data (repacking keeps
 * the size, model-pack.c). */
static uint64_t weights_bytes(const struct gguf *g)
{
	uint64_t n = gguf_n_tensors(g), total = 0;
	for (uint64_t i = 0; i < n; i++)
		total += gguf_tensor(g, i)->nbytes;
	return total;
}

/* Model, tokenizer, template, KV cache; then `sized` is published. */
static int load_meta(struct llm_exec *x, char *err, size_t errlen)
{
	char e[256];
	x->m = llm_model_load_progress(x->path, x->device, on_load_progress, x, e, sizeof e);
	if (!x->m) {
		snprintf(err, errlen, "%.60s: %.180s", x->path, e);
		return -1;
	}
	x->tok = tok_from_gguf(llm_model_gguf(x->m), e, sizeof e);
	if (!x->tok) {
		snprintf(err, errlen, "%.60s: tokenizer: %.180s", x->path, e);
		return -1;
	}
	/* A model without a usable template still serves raw prompts. */
	x->tmpl = tmpl_from_gguf(llm_model_gguf(x->m), x->tmpl_err, sizeof x->tmpl_err);
	const struct llm_hparams *hp = llm_model_hparams(x->m);
	x->n_vocab = hp->n_vocab;
	x->n_ctx = x->cfg.context_length ? x->cfg.context_length : hp->n_ctx_train;
	if (x->n_ctx == 0)
		x->n_ctx = 2048;
	x->kv = llm_kv_new(x->m, (enum llm_kv_type)x->cfg.kv_type,
			   (size_t)x->cfg.kvcache_mem_mb << 20, x->cfg.block_size,
			   x->cfg.max_num_seqs, e, sizeof e);
	if (!x->kv) {
		snprintf(err, errlen, "KV cache (kvcache_mem_mb %llu): %.180s",
			 (unsigned long long)x->cfg.kvcache_mem_mb, e);
		return -1;
	}
	struct llm_device_mem dm;
	int dev_mem = llm_model_device_mem(x->m, &dm, e, sizeof e) == 0;
	pthread_mutex_lock(&x->mu);
	snprintf(x->dev_id, sizeof x->dev_id, "%s", llm_model_device(x->m));
	if (dev_mem) {
		snprintf(x->dev_name, sizeof x->dev_name, "%s", dm.name);
		x->has_dev_mem = 1;
		x->dev_total = dm.total_bytes;
		x->dev_free = dm.free_bytes;
		x->dev_at_ns = exec_now_ns();
	}
	x->blocks_total = llm_kv_blocks_total(x->kv);
	x->weights_bytes = weights_bytes(llm_model_gguf(x->m));
	x->kv_bytes = (uint64_t)llm_kv_bytes_per_token(x->m, llm_kv_type(x->kv)) *
		      llm_kv_block_size(x->kv) * x->blocks_total;
	pthread_mutex_unlock(&x->mu);
	return 0;
}

/* Read every tensor byte once (one per page), so the first request does
 * not pay for the disk, and so progress means something. */
static int load_touch(struct llm_exec *x)
{
	const struct gguf *g = llm_model_gguf(x->m);
	uint64_t n = gguf_n_tensors(g), total = 0, done = 0;
	volatile unsigned char sink = 0;

	for (uint64_t i = 0; i < n; i++)
		total += gguf_tensor(g, i)->nbytes;
	for (uint64_t i = 0; i < n; i++) {
		const struct gguf_tensor *t = gguf_tensor(g, i);
		const unsigned char *p = t->data;
		for (uint64_t o = 0; o < t->nbytes; o += 4096)
			sink ^= p[o];
		done += t->nbytes;
		if ((i & 15) == 15 || i + 1 == n) {
			set_progress(x, LOAD_MODEL_SHARE + (1 - LOAD_MODEL_SHARE) *
					       (total ? (double)done / (double)total : 1.0));
			pthread_mutex_lock(&x->mu);
			int stop = x->stopping;
			pthread_mutex_unlock(&x->mu);
			if (stop)
				return -1;
		}
	}
	(void)sink;
	return 0;
}

/* Publish READY or FAILED, then open the pool's running limit. */
static void load_finish(struct llm_exec *x, int state, const char *why)
{
	pthread_mutex_lock(&x->mu);
	while (x->held && !x->stopping && state == LLM_EXEC_READY)
		pthread_cond_wait(&x->engine_cv, &x->mu);
	x->state = state;
	x->sized = 1;
	if (state == LLM_EXEC_READY)
		x->progress = 1.0;
	if (why)
		snprintf(x->error, sizeof x->error, "%s", why);
	pthread_cond_broadcast(&x->engine_cv);
	pthread_cond_broadcast(&x->prep_cv);
	pthread_mutex_unlock(&x->mu);
	exec_pool_sync(x);
}

static void *loader_main(void *arg)
{
	struct llm_exec *x = arg;
	char err[256];

	if (load_meta(x, err, sizeof err) < 0) {
		load_finish(x, LLM_EXEC_FAILED, err);
		return NULL;
	}
	exec_pool_sync(x);
	pthread_mutex_lock(&x->mu);
	x->sized = 1;
	pthread_cond_broadcast(&x->prep_cv);
	pthread_mutex_unlock(&x->mu);
	if (load_touch(x) < 0) {
		load_finish(x, LLM_EXEC_FAILED, "stopped while loading");
		return NULL;
	}
	load_finish(x, LLM_EXEC_READY, NULL);
	return NULL;
}

/* ---- public control --------------------------------------------------------- */

void llm_exec_attach(struct llm_exec *x, struct pool *p, int units_are_blocks)
{
	pthread_mutex_lock(&x->mu);
	x->pool = p;
	x->units_are_blocks = units_are_blocks;
	pthread_mutex_unlock(&x->mu);
	exec_pool_sync(x);
}

const char *llm_exec_device(const struct llm_exec *x)
{
	return x->device ? x->device : "cpu"; /* written once, before any thread */
}

void llm_exec_status(struct llm_exec *x, struct llm_exec_status *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&x->mu);
	st->state = x->state;
	st->progress = x->progress;
	if (x->sized && x->kv) {
		st->blocks_total = x->blocks_total;
		st->context_length = x->n_ctx;
		st->weights_bytes = x->weights_bytes;
		st->kv_bytes = x->kv_bytes;
		st->device = x->dev_id;
	}
	if (x->sized && x->kv && x->has_dev_mem) {
		st->device_name = x->dev_name;
		st->device_total_bytes = x->dev_total;
		st->device_free_bytes = x->dev_free;
		if (x->state == LLM_EXEC_READY && !x->dev_refresh &&
		    exec_now_ns() - x->dev_at_ns > EXEC_DEV_MEM_STALE_NS) {
			x->dev_refresh = 1; /* the engine thread resamples; the next read sees it */
			pthread_cond_signal(&x->engine_cv);
		}
	}
	snprintf(st->error, sizeof st->error, "%s", x->error);
	pthread_mutex_unlock(&x->mu);
}

uint32_t llm_exec_blocks_total(struct llm_exec *x)
{
	struct llm_exec_status st;
	llm_exec_status(x, &st);
	return st.blocks_total;
}

void llm_exec_hold(struct llm_exec *x, int on)
{
	pthread_mutex_lock(&x->mu);
	x->held = on;
	pthread_cond_broadcast(&x->engine_cv);
	pthread_mutex_unlock(&x->mu);
}

/* ---- pool_executor ops ------------------------------------------------------ */

static int op_start(void *ctx, struct pool_task *t)
{
	struct llm_exec *x = ctx;
	struct inbox_node *n = malloc(sizeof *n);
	if (!n)
		return -POOL_E_NOMEM;
	n->next = NULL;
	n->t = t;
	pthread_mutex_lock(&x->mu);
	if (x->in_tail)
		x->in_tail->next = n;
	else
		x->in_head = n;
	x->in_tail = n;
	pthread_cond_signal(&x->engine_cv);
	pthread_mutex_unlock(&x->mu);
	return 0;
}

/* The flag is already visible; wake the engine in case it sleeps (held). */
static void op_cancel(void *ctx, struct pool_task *t)
{
	struct llm_exec *x = ctx;
	(void)t;
	pthread_mutex_lock(&x->mu);
	pthread_cond_signal(&x->engine_cv);
	pthread_mutex_unlock(&x->mu);
}

/* n compute threads (0 = one per online core), applied between steps;
 * the capacity is the batch, max_num_seqs, and 0 while loading. */
static int op_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	struct llm_exec *x = ctx;
	if (n == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores > 0 ? (unsigned)cores : 1;
	}
	pthread_mutex_lock(&x->mu);
	x->threads_want = n;
	*capacity = x->state == LLM_EXEC_LOADING ? 0 : x->cfg.max_num_seqs;
	pthread_cond_signal(&x->engine_cv);
	pthread_mutex_unlock(&x->mu);
	return 0;
}

static void op_stop(void *ctx)
{
	exec_join(ctx);
}

static void op_free(void *ctx)
{
	struct llm_exec *x = ctx;
	exec_join(x);
	exec_stats_destroy(&x->st);
	pthread_cond_destroy(&x->engine_cv);
	pthread_cond_destroy(&x->prep_cv);
	pthread_mutex_destroy(&x->mu);
	pthread_mutex_destroy(&x->sync_mu);
	exec_release(x);
}

static const struct pool_executor_ops exec_ops = {
	.start = op_start,
	.cancel = op_cancel,
	.set_threads = op_set_threads,
	.stop = op_stop,
	.free = op_free,
};
