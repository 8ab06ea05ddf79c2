/*
 * exec-engine.c — the engine thread: continuous batching over one model.
 *
 * DESIGN (one step)
 *   1. Under mu: wait while nothing runs and nothing arrived (or while held);
 *      take the inbox and the wanted thread count.
 *   2. Start the new tasks: a KV sequence slot, blocks for prompt +
 *      max_tokens (the pool admitted by units = blocks, so this succeeds; if
 *      not, the task fails with the reason instead of waiting), a sampler,
 *      a stop matcher and a streaming detokenizer.
 *   3. End the tasks whose cancel flag is up (user, deadline, shutdown).
 *   4. Build one batch: a decode entry per sequence that has a sampled token,
 *      then prefill chunks in admission order while max_batch_tokens lasts
 *      (at least one prompt token per step, so prompts always progress).
 *   5. llm_forward once; sample every sequence that got logits; emit text;
 *      end finished sequences (KV blocks freed before pool_task_finish).
 *
 * The engine owns run[], the slots and the KV cache; nobody else touches
 * them. Sequences never look at each other: their order in the batch only
 * decides where their rows go, never what is computed for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/exec/exec-impl.h"

struct seq {
	struct pool_task *t;
	struct exec_payload *pl;
	uint32_t slot;
	uint32_t n_done;       /* prompt tokens already in the KV cache */
	uint32_t n_gen;        /* tokens sampled so far */
	int32_t last;          /* last sampled token, fed in the next step */
	int32_t chunk;         /* prompt tokens in this step's batch */
	int32_t row;           /* logits row in this step, -1 = none */
	int ended;
	int finish;            /* enum pool_finish once known */
	uint64_t t_last;       /* time of the last sampled token */
	struct smp *smp;
	struct smp_stop *stop;
	struct tok_stream ts;
};

struct engine {
	struct llm_exec *x;
	struct llm_batch_entry *e; /* (max_batch_tokens + max_num_seqs) */
	float *logits;             /* (max_num_seqs, n_vocab) */
	char *piece;               /* (tok_stream_bound) */
};

/* ---- sequence lifecycle ------------------------------------------------------- */

static void seq_free(struct seq *s)
{
	smp_free(s->smp);
	smp_stop_free(s->stop);
	free(s);
}

static int emit(struct seq *s, const char *p, long n)
{
	if (n <= 0)
		return 0;
	return pool_task_emit(s->t, p, (size_t)n);
}

/* Detokenizer tail and held-back stop prefix, now safe to show. */
static int seq_flush(struct engine *g, struct seq *s)
{
	const char *text;
	int which = -1;
	size_t n = tok_stream_flush(&s->ts, g->piece);
	long k = smp_stop_feed(s->stop, g->piece, n, &text, &which);
	if (k < 0 || emit(s, text, k) < 0)
		return -1;
	if (which >= 0)
		return 0;
	k = smp_stop_flush(s->stop, &text);
	if (k < 0 || emit(s, text, k) < 0)
		return -1;
	return 0;
}

/* The one exit: flush (unless failing), free the blocks, hand back. */
static void seq_end(struct engine *g, struct seq *s, const char *errmsg)
{
	struct llm_exec *x = g->x;
	if (!errmsg && seq_flush(g, s) < 0)
		errmsg = "output could not be stored (max_output_bytes?)";
	llm_kv_seq_free(x->kv, s->slot);
	x->slot_used[s->slot] = 0;
	exec_stats_kv(&x->st, llm_kv_blocks_free(x->kv));
	pool_task_set_outcome(s->t, s->finish, s->n_gen, s->pl ? s->pl->n_prompt : 0);
	pool_task_finish(s->t, errmsg == NULL, errmsg);
	s->ended = 1;
}

static int seq_setup(struct llm_exec *x, struct seq *s, char *err, size_t errlen)
{
	const struct exec_payload *pl = s->pl;
	if (!pl)
		return snprintf(err, errlen, "task has no llm payload"), -1;
	s->smp = smp_new(&pl->params, err, errlen);
	if (!s->smp)
		return -1;
	s->stop = smp_stop_new((const char *const *)pl->stop, pl->n_stop, err, errlen);
	if (!s->stop)
		return -1;
	for (uint32_t i = 0; i < pl->n_prompt; i++)
		smp_accept(s->smp, pl->ids[i]);
	tok_stream_init(&s->ts, 0);
	uint32_t slot = 0;
	while (slot < x->cfg.max_num_seqs && x->slot_used[slot])
		slot++;
	if (slot == x->cfg.max_num_seqs)
		return snprintf(err, errlen, "no free sequence slot (max_num_seqs %u)",
				x->cfg.max_num_seqs), -1;
	uint32_t need = pl->n_prompt + pl->max_tokens;
	if (llm_kv_seq_reserve(x->kv, slot, need) < 0)
		return snprintf(err, errlen, "KV cache: %u blocks free, %u needed",
				llm_kv_blocks_free(x->kv),
				llm_kv_blocks_needed(x->kv, slot, need)), -1;
	s->slot = slot;
	x->slot_used[slot] = 1;
	return 0;
}

/* A newly started task joins run[], or fails at once with the reason. */
static void seq_start(struct engine *g, struct pool_task *t, int state, const char *why)
{
	struct llm_exec *x = g->x;
	char err[300];
	if (state == LLM_EXEC_FAILED) {
		snprintf(err, sizeof err, "model %s failed to load: %s", x->name, why);
		pool_task_finish(t, 0, err);
		return;
	}
	struct seq *s = calloc(1, sizeof *s);
	if (!s) {
		pool_task_finish(t, 0, "out of memory");
		return;
	}
	s->t = t;
	s->pl = pool_task_payload(t);
	if (x->n_run >= x->cfg.max_num_seqs || seq_setup(x, s, err, sizeof err) < 0) {
		if (x->n_run >= x->cfg.max_num_seqs)
			snprintf(err, sizeof err, "more than max_num_seqs %u running",
				 x->cfg.max_num_seqs);
		pool_task_finish(t, 0, err);
		seq_free(s);
		return;
	}
	s->t_last = exec_now_ns();
	x->run[x->n_run++] = s;
}

/* Drop ended sequences from run[], keeping admission order. */
static void run_compact(struct llm_exec *x)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < x->n_run; i++) {
		if (x->run[i]->ended)
			seq_free(x->run[i]);
		else
			x->run[k++] = x->run[i];
	}
	x->n_run = k;
}

/* ---- sampling and output ------------------------------------------------------- */

/* One sampled token: end it, or show it and feed it next step. */
static void seq_token(struct engine *g, struct seq *s, int32_t tok, uint64_t now)
{
	struct llm_exec *x = g->x;
	const struct exec_payload *pl = s->pl;
	const char *text;
	int which = -1;

	if (s->n_gen == 0)
		exec_stats_ttft(&x->st, now - pl->arrival_ns);
	else
		exec_stats_itl(&x->st, now - s->t_last);
	s->t_last = now;
	s->n_gen++;
	if (!pl->ignore_eos && tok_is_eog(x->tok, tok)) {
		s->n_gen--; /* the end-of-generation token is not output */
		s->finish = POOL_FINISH_EOS;
		seq_end(g, s, NULL);
		return;
	}
	size_t n = tok_stream_push(x->tok, &s->ts, tok, g->piece);
	long k = smp_stop_feed(s->stop, g->piece, n, &text, &which);
	if (k < 0 || emit(s, text, k) < 0) {
		seq_end(g, s, "output could not be stored (max_output_bytes?)");
		return;
	}
	if (which >= 0 || s->n_gen >= pl->max_tokens) {
		s->finish = which >= 0 ? POOL_FINISH_STOP : POOL_FINISH_MAX_TOKENS;
		seq_end(g, s, NULL);
		return;
	}
	s->last = tok;
}

static void sample_all(struct engine *g)
{
	struct llm_exec *x = g->x;
	uint64_t now = exec_now_ns();
	for (uint32_t i = 0; i < x->n_run; i++) {
		struct seq *s = x->run[i];
		s->n_done += (uint32_t)s->chunk;
		if (s->row < 0)
			continue;
		const float *row = g->logits + (size_t)s->row * x->n_vocab;
		int32_t tok = smp_sample(s->smp, row, (int32_t)x->n_vocab);
		if (tok < 0) {
			seq_end(g, s, "sampler failed (no finite logits)");
			continue;
		}
		seq_token(g, s, tok, now);
	}
}

/* ---- the batch ------------------------------------------------------------------ */

/* Decode entries first, then prefill chunks. Returns the entry count, at
 * most max(max_batch_tokens, running + 1) <= LLM_MAX_BATCH (config check). */
static uint32_t build_batch(struct engine *g, uint32_t *n_prefill, uint32_t *n_seqs)
{
	struct llm_exec *x = g->x;
	uint32_t n = 0, rows = 0;
	for (uint32_t i = 0; i < x->n_run; i++) {
		struct seq *s = x->run[i];
		s->chunk = 0;
		s->row = -1;
		if (s->n_done < s->pl->n_prompt)
			continue;
		uint32_t pos = s->pl->n_prompt + s->n_gen - 1;
		g->e[n++] = (struct llm_batch_entry){ s->slot, pos, s->last, 1 };
		s->row = (int32_t)rows++;
	}
	uint32_t budget = x->cfg.max_batch_tokens > n ? x->cfg.max_batch_tokens - n : 1;
	*n_seqs = rows;
	*n_prefill = 0;
	for (uint32_t i = 0; i < x->n_run && budget; i++) {
		struct seq *s = x->run[i];
		uint32_t left = s->pl->n_prompt - s->n_done;
		if (s->n_done >= s->pl->n_prompt)
			continue;
		uint32_t c = left < budget ? left : budget;
		for (uint32_t j = 0; j < c; j++) {
			uint32_t pos = s->n_done + j;
			int last = pos + 1 == s->pl->n_prompt;
			g->e[n++] = (struct llm_batch_entry){ s->slot, pos, s->pl->ids[pos],
							       (uint8_t)last };
		}
		if (s->n_done + c == s->pl->n_prompt)
			s->row = (int32_t)rows++;
		s->chunk = (int32_t)c;
		budget -= c;
		*n_prefill += c;
		(*n_seqs)++;
	}
	return n;
}

static void fail_batch(struct engine *g, const char *why)
{
	struct llm_exec *x = g->x;
	char msg[300];
	snprintf(msg, sizeof msg, "forward pass failed: %s", why);
	for (uint32_t i = 0; i < x->n_run; i++)
		if (x->run[i]->chunk || x->run[i]->row >= 0)
			seq_end(g, x->run[i], msg);
}

static void step(struct engine *g)
{
	struct llm_exec *x = g->x;
	struct exec_step_rec rec = { .t0 = exec_now_ns() };
	uint32_t n_seqs = 0;
	uint32_t n = build_batch(g, &rec.n_prefill, &n_seqs);
	struct llm_batch b = { n, g->e };
	char err[256];

	rec.n_decode = n - rec.n_prefill;
	if (llm_forward(x->m, x->kv, &b, g->logits, err, sizeof err) < 0)
		fail_batch(g, err);
	else
		sample_all(g);
	rec.t1 = exec_now_ns();
	run_compact(x);
	exec_stats_step(&x->st, &rec, n_seqs, x->n_run, llm_kv_blocks_free(x->kv),
			llm_model_threads(x->m));
}

static void reap_cancelled(struct engine *g)
{
	struct llm_exec *x = g->x;
	for (uint32_t i = 0; i < x->n_run; i++)
		if (pool_task_cancelled(x->run[i]->t))
			seq_end(g, x->run[i], NULL);
	run_compact(x);
}

/* ---- the thread ------------------------------------------------------------------ */

/* Wait for work; take the inbox. Returns 0, or -1 to stop. */
static int take_work(struct engine *g, struct inbox_node **in, int *state, char *why)
{
	struct llm_exec *x = g->x;
	pthread_mutex_lock(&x->mu);
	while (!x->stopping && (x->state == LLM_EXEC_LOADING || x->held ||
				(!x->in_head && !x->n_run && !x->dev_refresh)))
		pthread_cond_wait(&x->engine_cv, &x->mu);
	int stop = x->stopping, refresh = x->dev_refresh;
	x->dev_refresh = 0;
	*in = x->in_head;
	x->in_head = x->in_tail = NULL;
	*state = x->state;
	snprintf(why, 256, "%s", x->error);
	unsigned want = x->threads_want;
	pthread_mutex_unlock(&x->mu);
	if (!stop && *state == LLM_EXEC_READY && want != x->threads_have &&
	    llm_model_set_threads(x->m, want) == 0)
		x->threads_have = want;
	if (!stop && *state == LLM_EXEC_READY && refresh)
		exec_dev_mem_sample(x);
	return stop ? -1 : 0;
}

static int engine_alloc(struct engine *g, struct llm_exec *x)
{
	size_t ne = (size_t)x->cfg.max_batch_tokens + x->cfg.max_num_seqs;
	g->x = x;
	g->e = calloc(ne, sizeof *g->e);
	g->logits = malloc((size_t)x->cfg.max_num_seqs * x->n_vocab * sizeof *g->logits);
	g->piece = malloc(tok_stream_bound(x->tok) + 1);
	return g->e && g->logits && g->piece ? 0 : -1;
}

static void engine_release(struct engine *g)
{
	free(g->e);
	free(g->logits);
	free(g->piece);
}

/* Stopping with sequences still running cannot happen through the pool
 * (stop comes after every task was handed back); hand them back anyway. */
static void engine_drain(struct engine *g, struct inbox_node *in)
{
	struct llm_exec *x = g->x;
	for (uint32_t i = 0; i < x->n_run; i++)
		seq_end(g, x->run[i], "executor stopped");
	run_compact(x);
	while (in) {
		struct inbox_node *nx = in->next;
		pool_task_finish(in->t, 0, "executor stopped");
		free(in);
		in = nx;
	}
}

void *exec_engine_main(void *arg)
{
	struct engine g = { 0 };
	struct inbox_node *in = NULL;
	char why[256];
	int state, ok = 0;

	g.x = arg;
	while (take_work(&g, &in, &state, why) == 0) {
		if (state == LLM_EXEC_READY && !ok && engine_alloc(&g, g.x) == 0)
			ok = 1;
		if (state == LLM_EXEC_READY && !ok)
			snprintf(why, sizeof why, "out of memory for the engine's buffers"),
				state = LLM_EXEC_FAILED;
		for (struct inbox_node *nx; in; in = nx) {
			nx = in->next;
			seq_start(&g, in->t, state, why);
			free(in);
		}
		reap_cancelled(&g);
		if (g.x->n_run)
			step(&g);
	}
	engine_drain(&g, in);
	engine_release(&g);
	return NULL;
}
