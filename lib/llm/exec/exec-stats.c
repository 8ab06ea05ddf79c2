/*
 * exec-stats.c — the llm executor's live figures for `plot stats`.
 *
 * DESIGN
 *   The engine thread records once per step (one short lock hold): the step's
 *   times and token counts into a ring of the last EXEC_STEP_RING steps,
 *   TTFT and ITL samples into rings of the last EXEC_TTFT_RING /
 *   EXEC_ITL_RING values. llm_exec_stats() copies under the same lock and
 *   computes the rates and percentiles outside it, so a reader never holds
 *   up a step for longer than a memcpy.
 *
 *   Rates: tokens of the steps that ended in the last 10 s divided by the
 *   wall time from the first such step's start to the last one's end (idle
 *   gaps between steps count: it is the throughput a user sees).
 */
#include <stdlib.h>
#include <string.h>

#include "llm/exec/exec-impl.h"

void exec_stats_init(struct exec_stats_block *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_init(&st->mu, NULL);
}

void exec_stats_destroy(struct exec_stats_block *st)
{
	pthread_mutex_destroy(&st->mu);
}

void exec_stats_step(struct exec_stats_block *st, const struct exec_step_rec *r,
		     uint32_t batch_seqs, uint32_t running, uint32_t kv_free, uint32_t threads)
{
	pthread_mutex_lock(&st->mu);
	st->steps[st->n_steps % EXEC_STEP_RING] = *r;
	st->n_steps++;
	st->prompt_tokens += r->n_prefill;
	st->generated_tokens += r->n_decode;
	st->batch_seqs = batch_seqs;
	st->batch_tokens = r->n_prefill + r->n_decode;
	st->running = running;
	st->threads = threads;
	st->kv_free = kv_free;
	st->kv_valid = 1;
	pthread_mutex_unlock(&st->mu);
}

/* A sequence freed its blocks (before its task is handed back, so a reader
 * that saw the task end sees the blocks free). */
void exec_stats_kv(struct exec_stats_block *st, uint32_t kv_free)
{
	pthread_mutex_lock(&st->mu);
	st->kv_free = kv_free;
	st->kv_valid = 1;
	pthread_mutex_unlock(&st->mu);
}

/* Sample the device's memory (outside the lock: it asks the driver) and
 * publish it; the CPU has none (has_dev_mem stays 0). From the loader, then
 * the engine thread: the model's owner threads. */
void exec_dev_mem_sample(struct llm_exec *x)
{
	struct llm_device_mem dm;
	char e[256];
	if (llm_model_device_mem(x->m, &dm, e, sizeof e) != 0)
		return; /* no figures beats stale ones presented as new */
	pthread_mutex_lock(&x->mu);
	x->has_dev_mem = 1;
	x->dev_total = dm.total_bytes;
	x->dev_free = dm.free_bytes;
	x->dev_at_ns = exec_now_ns();
	pthread_mutex_unlock(&x->mu);
}

void exec_stats_ttft(struct exec_stats_block *st, uint64_t ns)
{
	pthread_mutex_lock(&st->mu);
	st->ttft[st->n_ttft++ % EXEC_TTFT_RING] = ns;
	st->ttft_sum_ns += ns;
	pthread_mutex_unlock(&st->mu);
}

void exec_stats_itl(struct exec_stats_block *st, uint64_t ns)
{
	pthread_mutex_lock(&st->mu);
	st->itl[st->n_itl++ % EXEC_ITL_RING] = ns;
	st->itl_sum_ns += ns;
	pthread_mutex_unlock(&st->mu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of v[0..n) (sorted in place). */
static void pctl(uint64_t *v, size_t n, uint64_t *p50, uint64_t *p99)
{
	*p50 = *p99 = 0;
	if (!n)
		return;
	qsort(v, n, sizeof *v, cmp_u64);
	*p50 = v[(n * 50 + 99) / 100 - 1];
	*p99 = v[(n * 99 + 99) / 100 - 1];
}

static void rates(const struct exec_step_rec *s, size_t n, uint64_t now, double *pre,
		  double *dec)
{
	uint64_t t0 = UINT64_MAX, t1 = 0, np = 0, nd = 0;
	*pre = *dec = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i].t1 + EXEC_RATE_WINDOW_NS < now)
			continue;
		t0 = s[i].t0 < t0 ? s[i].t0 : t0;
		t1 = s[i].t1 > t1 ? s[i].t1 : t1;
		np += s[i].n_prefill;
		nd += s[i].n_decode;
	}
	if (t1 <= t0)
		return;
	*pre = (double)np * 1e9 / (double)(t1 - t0);
	*dec = (double)nd * 1e9 / (double)(t1 - t0);
}

struct stats_copy {
	uint64_t ttft[EXEC_TTFT_RING], itl[EXEC_ITL_RING];
	struct exec_step_rec steps[EXEC_STEP_RING];
	size_t n_ttft, n_itl, n_steps;
};

void llm_exec_stats(struct llm_exec *x, struct llm_exec_stats *s)
{
	struct exec_stats_block *st = &x->st;
	struct stats_copy *c = malloc(sizeof *c);
	memset(s, 0, sizeof *s);
	s->kv_blocks_total = llm_exec_blocks_total(x);
	pthread_mutex_lock(&st->mu);
	s->batch_seqs = st->batch_seqs;
	s->batch_tokens = st->batch_tokens;
	s->running = st->running;
	s->threads = st->threads;
	s->kv_blocks_used = st->kv_valid ? s->kv_blocks_total - st->kv_free : 0;
	s->steps = st->n_steps;
	s->prompt_tokens = st->prompt_tokens;
	s->generated_tokens = st->generated_tokens;
	s->ttft_count = st->n_ttft;
	s->ttft_sum_ns = st->ttft_sum_ns;
	s->itl_count = st->n_itl;
	s->itl_sum_ns = st->itl_sum_ns;
	if (c) {
		c->n_ttft = st->n_ttft < EXEC_TTFT_RING ? st->n_ttft : EXEC_TTFT_RING;
		c->n_itl = st->n_itl < EXEC_ITL_RING ? st->n_itl : EXEC_ITL_RING;
		c->n_steps = st->n_steps < EXEC_STEP_RING ? st->n_steps : EXEC_STEP_RING;
		memcpy(c->ttft, st->ttft, c->n_ttft * sizeof *c->ttft);
		memcpy(c->itl, st->itl, c->n_itl * sizeof *c->itl);
		memcpy(c->steps, st->steps, c->n_steps * sizeof *c->steps);
	}
	pthread_mutex_unlock(&st->mu);
	if (!c)
		return;
	pctl(c->ttft, c->n_ttft, &s->ttft_p50_ns, &s->ttft_p99_ns);
	pctl(c->itl, c->n_itl, &s->itl_p50_ns, &s->itl_p99_ns);
	rates(c->steps, c->n_steps, exec_now_ns(), &s->prefill_tps, &s->decode_tps);
	free(c);
}
