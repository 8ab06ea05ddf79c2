/*
 * llm-compare — one model on two devices through the engine's public API
 * (include/plot/llm.h): the end-to-end check of the CUDA backend against the
 * CPU (tests/gpu/run), and on the CPU alone the determinism and batch
 * invariance check of random-weight models (tests/cli/gguf-random.bats).
 *
 *   llm-compare [--a DEV] [--b DEV] [--threads-a N] [--threads-b N]
 *               [--positions N] [--steps N] [--prompt N] [--batch N]
 *               [--tol X] [--exact] [--kv-f32] [--seed N] [--model-b PATH] [--batch-a]
 *               [--emulate] [--float-acts] MODEL
 *
 * --float-acts makes A multiply float activations, as the GPU does, instead
 * of quantizing them to 8 bits first (llm_model_set_float_acts): the
 * logits check and the greedy reference then compare like with like, and
 * one more line reports B against A's default path.
 * --emulate (a make CUDA=1 build) puts lib/cuda's emulated device behind
 * "cuda": the CUDA backend's own code on the host, the dry run of
 * tests/gpu/run without a GPU.
 *
 * A (default cpu) is the reference, B (default cpu) the device under test;
 * the model is loaded once on each (--model-b: B loads another file, which
 * must fail the checks: the tests' proof that they can). Three checks:
 *   logits  a random prompt of --positions tokens (default 300, past one
 *           CUDA attention segment of 256) in one batch, logits wanted at
 *           every position, on A and on B: all
 *           finite; per position the relative error |b - a|_2 / |a|_2; the
 *           max over positions must stay under --tol (default 5e-2: the CPU
 *           quantizes activations to 8 bits before quantized products and
 *           the GPU does not, and that difference compounds over the
 *           layers; F32/F16 models land far below it). --exact demands
 *           bitwise equal logits instead (A and B the same kind of device).
 *   greedy  a --prompt (default 32) token prompt, then --steps (default 64)
 *           arg-max steps one token at a time, on each device on its own.
 *           The sequences must agree, or first differ at a step where A's
 *           logit gap between its pick and B's pick is under tau = 2 x the
 *           largest logit difference of the logits check (the measured
 *           noise between the devices; at least 1e-4): a near tie, which
 *           any change of rounding may flip. After that they are not
 *           compared (the contexts differ).
 *   batch   on B (and on A with --batch-a): sequence 0's greedy
 *           run of the greedy check, again among --batch - 1 (default 63)
 *           other sequences with prompts of other lengths, decoded in
 *           batches of all of them, twice: prompts prefilled one by one
 *           (every step then is a decode batch: logits must be bitwise the
 *           same, on any device), and all prompts in one joint prefill
 *           batch (tokens must be the same; logits bitwise on a CPU; on a
 *           GPU a batch past CUDA_MATVEC_MAX_N tokens takes the cuBLAS f16
 *           path, which the alone run's short prefill does not, so only
 *           their largest difference is reported).
 *   fused   (B on a CUDA device) the greedy prompt and 8 decode steps with
 *           the fused kernels and with the ops one by one: logits bitwise
 *           the same; the launches of a middle layer of a batch-1 decode
 *           both ways are reported (launches_per_layer=FUSED/UNFUSED).
 *   graphs  (B on a CUDA device) the same with the decode passes replayed
 *           as captured CUDA graphs and as plain launches: logits bitwise
 *           the same, and at least one replay (a graph that kept a value
 *           of the step it was captured in shows here). Where capture is
 *           refused (the emulated device) it says why and checks nothing.
 * The last line is "llm-compare: ok|FAIL key=value ...".
 *
 * Exit status: 0 all checks passed, 1 a check failed, 2 usage, 3 an engine
 * error (load, KV, forward: message on stderr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/llm.h"
#ifdef PLOT_CUDA
#include "cuda/backend-cuda.h"
#include "cuda/cuda-host.h"
#endif

struct dev {
	const char *name;
	unsigned threads;
	struct llm_model *m;
	int cpu;
};

struct opts {
	struct dev a, b;
	uint32_t positions, steps, prompt, batch;
	double tol;
	int exact, batch_a, emulate, float_acts;
	enum llm_kv_type kv_type;
	uint64_t seed;
	const char *path, *path_b; /* path_b: B loads another file (the tests' negative case) */
};

struct result {
	double max_rel, mean_rel, max_abs, tau;
	uint32_t agree, diverged_at; /* diverged_at = steps: never */
	double gap;                  /* A's gap at the divergence */
	int logits_ok, greedy_ok, batch_ok, batch_decode_bitwise;
	double batch_diff_b; /* joint prefill */
	int fused_checked, fused_ok; /* B on CUDA: fused kernels vs the ops one by one */
	int graphs_checked, graphs_ok; /* B on CUDA: graph replays vs plain launches */
	uint32_t launches[2];        /* per layer of a batch-1 decode: fused, unfused */
};

static uint32_t n_vocab;
static char err[512];

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Prompt tokens avoid the five control tokens of gguf-random's vocabulary. */
static void random_tokens(int32_t *t, uint32_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < n; i++)
		t[i] = 5 + (int32_t)(rng_next(&s) % (n_vocab - 5));
}

static struct llm_kv *kv_for(const struct dev *d, const struct opts *o, uint32_t tokens,
			     uint32_t seqs)
{
	size_t per = llm_kv_bytes_per_token(d->m, o->kv_type);
	size_t budget = per * ((size_t)tokens + 16u * seqs) * 2 + (1u << 20);
	struct llm_kv *kv = llm_kv_new(d->m, o->kv_type, budget, 16, seqs, err, sizeof err);
	if (!kv)
		fprintf(stderr, "llm-compare: %s: KV cache: %s\n", d->name, err);
	return kv;
}

static int forward(const struct dev *d, struct llm_kv *kv, const struct llm_batch_entry *e,
		   uint32_t n, float *logits)
{
	int rc = llm_forward(d->m, kv, &(struct llm_batch){ n, e }, logits, err, sizeof err);
	if (rc)
		fprintf(stderr, "llm-compare: %s: forward of %u entries: %s\n", d->name, n, err);
	return rc;
}

static uint32_t argmax(const float *x)
{
	uint32_t b = 0;
	for (uint32_t i = 1; i < n_vocab; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static int all_finite(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

/* Logits of one prompt at every position: (positions, n_vocab). */
static float *prompt_logits(const struct dev *d, const struct opts *o, const int32_t *toks)
{
	uint32_t n = o->positions;
	struct llm_batch_entry *e = calloc(n, sizeof *e);
	float *lg = malloc((size_t)n * n_vocab * sizeof *lg);
	struct llm_kv *kv = kv_for(d, o, n, 1);
	int rc = !e || !lg || !kv;
	for (uint32_t i = 0; !rc && i < n; i++)
		e[i] = (struct llm_batch_entry){ 0, i, toks[i], 1 };
	if (!rc)
		rc = forward(d, kv, e, n, lg);
	free(e);
	llm_kv_free(kv);
	if (rc)
		free(lg);
	return rc ? NULL : lg;
}

/* Max and mean over positions of |b - a|_2 / |a|_2, and the max |b - a|. */
static void rel_errors(const float *la, const float *lb, uint32_t positions, double *max_rel,
		       double *mean_rel, double *max_abs)
{
	double sum = 0;
	*max_rel = *max_abs = 0;
	for (uint32_t p = 0; p < positions; p++) {
		const float *a = la + (size_t)p * n_vocab, *b = lb + (size_t)p * n_vocab;
		double num = 0, den = 0;
		for (uint32_t i = 0; i < n_vocab; i++) {
			double dd = (double)b[i] - a[i];
			num += dd * dd;
			den += (double)a[i] * a[i];
			*max_abs = fmax(*max_abs, fabs(dd));
		}
		double rel = den > 0 ? sqrt(num / den) : sqrt(num);
		*max_rel = fmax(*max_rel, rel);
		sum += rel;
	}
	*mean_rel = sum / positions;
}

/* With --float-acts, also B against A's default 8-bit activations (reported). */
static int logits_vs_default(struct opts *o, const int32_t *toks, const float *lb)
{
	double mx, mean, ab;
	llm_model_set_float_acts(o->a.m, 0);
	float *la = prompt_logits(&o->a, o, toks);
	llm_model_set_float_acts(o->a.m, 1);
	if (!la)
		return -1;
	rel_errors(la, lb, o->positions, &mx, &mean, &ab);
	printf("logits: vs A with 8-bit activations (reported, not checked): max_rel=%.3e "
	       "mean_rel=%.3e max_abs=%.3e\n", mx, mean, ab);
	free(la);
	return 0;
}

static int check_logits(struct opts *o, struct result *r)
{
	int32_t *toks = malloc(o->positions * sizeof *toks);
	if (!toks)
		return -1;
	random_tokens(toks, o->positions, o->seed);
	float *la = prompt_logits(&o->a, o, toks), *lb = la ? prompt_logits(&o->b, o, toks) : NULL;
	if (la && lb && o->float_acts && logits_vs_default(o, toks, lb))
		free(lb), lb = NULL;
	free(toks);
	if (!la || !lb)
		return free(la), free(lb), -1;
	size_t all = (size_t)o->positions * n_vocab;
	int finite = all_finite(la, all) && all_finite(lb, all);
	rel_errors(la, lb, o->positions, &r->max_rel, &r->mean_rel, &r->max_abs);
	r->logits_ok = finite && (o->exact ? r->max_abs == 0 : r->max_rel <= o->tol);
	r->tau = fmax(2 * r->max_abs, 1e-4);
	char tol[32];
	snprintf(tol, sizeof tol, o->exact ? "exact" : "%.1e", o->tol);
	printf("logits: %u positions finite=%s max_rel=%.3e mean_rel=%.3e max_abs=%.3e tol=%s %s\n",
	       o->positions, finite ? "yes" : "NO", r->max_rel, r->mean_rel, r->max_abs, tol,
	       r->logits_ok ? "ok" : "FAIL");
	free(la);
	free(lb);
	return 0;
}

/* Greedy run of sequence `seq` of kv: prompt, then steps tokens one at a
 * time. toks gets prompt + steps ids; logits (steps, n_vocab) those each
 * step's pick was taken from. */
static int greedy(const struct dev *d, struct llm_kv *kv, int32_t *toks, uint32_t prompt,
		  uint32_t steps, float *logits)
{
	struct llm_batch_entry *e = calloc(prompt, sizeof *e);
	if (!e)
		return -1;
	for (uint32_t i = 0; i < prompt; i++)
		e[i] = (struct llm_batch_entry){ 0, i, toks[i], i + 1 == prompt };
	int rc = forward(d, kv, e, prompt, logits);
	free(e);
	for (uint32_t s = 0; !rc && s < steps; s++) {
		float *lg = logits + (size_t)s * n_vocab;
		toks[prompt + s] = (int32_t)argmax(lg);
		if (s + 1 < steps) {
			struct llm_batch_entry one = { 0, prompt + s, toks[prompt + s], 1 };
			rc = forward(d, kv, &one, 1, lg + n_vocab);
		}
	}
	return rc;
}

static uint32_t distinct(const int32_t *t, uint32_t n)
{
	uint32_t d = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = 0;
		while (j < i && t[j] != t[i])
			j++;
		d += j == i;
	}
	return d;
}

static int check_greedy(struct opts *o, struct result *r, int32_t *ta, int32_t *tb,
			float *ga, float *gb)
{
	uint32_t P = o->prompt, S = o->steps;
	random_tokens(ta, P, o->seed + 1);
	memcpy(tb, ta, P * sizeof *ta);
	struct llm_kv *ka = kv_for(&o->a, o, P + S, 1), *kb = kv_for(&o->b, o, P + S, 1);
	int rc = !ka || !kb || greedy(&o->a, ka, ta, P, S, ga) || greedy(&o->b, kb, tb, P, S, gb);
	llm_kv_free(ka);
	llm_kv_free(kb);
	if (rc)
		return -1;
	r->diverged_at = S;
	for (uint32_t s = 0; s < S && r->diverged_at == S; s++)
		if (ta[P + s] != tb[P + s])
			r->diverged_at = s;
	r->agree = r->diverged_at;
	r->greedy_ok = 1;
	if (r->diverged_at < S) {
		const float *lg = ga + (size_t)r->diverged_at * n_vocab;
		r->gap = lg[ta[P + r->diverged_at]] - lg[tb[P + r->diverged_at]];
		r->greedy_ok = !o->exact && r->gap < r->tau;
		printf("greedy: %u steps, first difference at step %u: A's gap %.3e %s tau %.3e %s\n",
		       S, r->diverged_at, r->gap, r->gap < r->tau ? "<" : ">=", r->tau,
		       r->greedy_ok ? "ok (a near tie)" : "FAIL");
	} else {
		printf("greedy: %u/%u steps identical (%u distinct tokens) ok\n", S, S,
		       distinct(ta + P, S));
	}
	return 0;
}

/* Sequence q's prompt alone, its last logits into row q of lg. */
static int prefill_one(const struct dev *d, struct llm_kv *kv, uint32_t q, const int32_t *t,
		       uint32_t len, struct llm_batch_entry *e, float *lg)
{
	for (uint32_t i = 0; i < len; i++)
		e[i] = (struct llm_batch_entry){ q, i, t[i], i + 1 == len };
	return forward(d, kv, e, len, lg + (size_t)q * n_vocab);
}

/* Sequence 0 = the greedy check's prompt; others get other prompts of
 * other lengths. Prefill all in one batch (joint) or each alone, then
 * decode all together; returns seq 0's tokens in t0 and its per-step
 * logits in l0. */
static int batched(const struct dev *d, const struct opts *o, const int32_t *prompt0,
		   int joint, int32_t *t0, float *l0)
{
	uint32_t B = o->batch, P = o->prompt, S = o->steps, n = 0;
	uint32_t *len = calloc(B, sizeof *len), *last = calloc(B, sizeof *last);
	int32_t *toks = malloc((size_t)B * (P + 16 + S) * sizeof *toks);
	struct llm_batch_entry *e = malloc((size_t)B * (P + 16) * sizeof *e);
	float *lg = malloc((size_t)B * n_vocab * sizeof *lg);
	struct llm_kv *kv = kv_for(d, o, B * (P + 16 + S), B);
	int rc = !len || !last || !toks || !e || !lg || !kv ? -1 : 0;
	for (uint32_t q = 0; !rc && q < B; q++) {
		int32_t *tq = toks + (size_t)q * (P + 16 + S);
		len[q] = q == 0 ? P : 1 + (q * 7) % (P + 15);
		if (q == 0)
			memcpy(tq, prompt0, P * sizeof *tq);
		else
			random_tokens(tq, len[q], o->seed + 100 + q);
	}
	for (uint32_t q = 0; !rc && !joint && q < B; q++)
		rc = prefill_one(d, kv, q, toks + (size_t)q * (P + 16 + S), len[q], e, lg);
	/* interleave the prompts' tokens so every sequence's entries mix */
	for (uint32_t i = 0; !rc && joint && i < P + 16; i++)
		for (uint32_t q = 0; q < B; q++)
			if (i < len[q])
				e[n++] = (struct llm_batch_entry){ q, i, toks[(size_t)q * (P + 16 + S) + i],
								   i + 1 == len[q] };
	for (uint32_t i = 0, k = 0; !rc && i < n; i++)
		if (e[i].want_logits)
			last[e[i].seq] = k++;
	if (!rc && joint)
		rc = forward(d, kv, e, n, lg);
	for (uint32_t s = 0; !rc && s < S; s++) {
		for (uint32_t q = 0; q < B; q++) {
			const float *row = lg + (size_t)(s == 0 && joint ? last[q] : q) * n_vocab;
			int32_t t = (int32_t)argmax(row);
			if (q == 0)
				t0[s] = t, memcpy(l0 + (size_t)s * n_vocab, row, n_vocab * sizeof *row);
			e[q] = (struct llm_batch_entry){ q, len[q] + s, t, 1 };
		}
		if (s + 1 < S)
			rc = forward(d, kv, e, B, lg);
	}
	free(len), free(last), free(toks), free(e), free(lg);
	llm_kv_free(kv);
	return rc;
}

/* Seq 0 among the others against its run alone (alone_t after the prompt,
 * alone_l per step). Prompts prefilled one by one (joint 0): every step is
 * a decode batch, which must be bitwise batch invariant on any device.
 * Joint prefill: on a GPU a batch of more tokens takes another product
 * path (cuBLAS on f16 operands past CUDA_MATVEC_MAX_N tokens), so only the
 * tokens must agree there; a CPU stays bitwise. Returns the largest logit
 * difference, or -1. */
static double batch_one(const struct dev *d, const struct opts *o, const int32_t *alone_t,
			const float *alone_l, int joint, int *ok)
{
	uint32_t S = o->steps;
	int32_t *t0 = malloc(S * sizeof *t0);
	float *l0 = malloc((size_t)S * n_vocab * sizeof *l0);
	double diff = -1;
	if (t0 && l0 && batched(d, o, alone_t, joint, t0, l0) == 0) {
		int same = memcmp(t0, alone_t + o->prompt, S * sizeof *t0) == 0;
		diff = 0;
		for (size_t i = 0; same && i < (size_t)S * n_vocab; i++)
			diff = fmax(diff, fabs((double)l0[i] - alone_l[i]));
		*ok = same && ((joint && !d->cpu) || diff == 0);
		printf("batch:  %s: seq 0 alone vs among %u others, %s: tokens %s, logits max_abs "
		       "%s%.3e %s\n", d->name, o->batch - 1, joint ? "one joint prefill" :
		       "prompts prefilled one by one", same ? "identical" : "DIFFER",
		       same ? "" : "(n/a) ", diff, *ok ? "ok" : "FAIL");
	}
	free(t0);
	free(l0);
	return diff;
}

static int check_batch(struct opts *o, struct result *r, const int32_t *ta, const int32_t *tb,
		       const float *ga, const float *gb)
{
	int ok[4] = { 1, 1, 1, 1 };
	double sep = batch_one(&o->b, o, tb, gb, 0, &ok[0]);
	r->batch_diff_b = batch_one(&o->b, o, tb, gb, 1, &ok[1]);
	if (sep < 0 || r->batch_diff_b < 0)
		return -1;
	r->batch_decode_bitwise = sep == 0;
	if (o->batch_a && (batch_one(&o->a, o, ta, ga, 0, &ok[2]) < 0 ||
			   batch_one(&o->a, o, ta, ga, 1, &ok[3]) < 0))
		return -1;
	r->batch_ok = ok[0] && ok[1] && ok[2] && ok[3];
	return 0;
}

#ifdef PLOT_CUDA
/* B on a CUDA device: the greedy check's prompt and 8 decode steps with the
 * fused kernels and with the ops one by one must give the same logits, bit
 * for bit (cuda-ops.h promises it), and the launches of a middle layer of
 * the last (batch-1 decode) pass, both ways, are reported. */
static int check_fused(struct opts *o, struct result *r, int32_t *toks, float *ga, float *gb)
{
	uint32_t steps = o->steps < 8 ? o->steps : 8, pass;
	float *lg[2] = { ga, gb };
	if (o->b.cpu)
		return 0;
	random_tokens(toks, o->prompt, o->seed + 7);
	for (int i = 0; i < 2; i++) {
		struct llm_kv *kv = kv_for(&o->b, o, o->prompt + steps, 1);
		int rc = !kv || cuda_backend_set_fused(o->b.m, i == 0) ? -1
			 : greedy(&o->b, kv, toks, o->prompt, steps, lg[i]);
		if (!rc)
			rc = cuda_backend_launches(o->b.m, &r->launches[i], &pass);
		llm_kv_free(kv);
		if (rc)
			return -1;
	}
	cuda_backend_set_fused(o->b.m, 1);
	r->fused_checked = 1;
	r->fused_ok = !memcmp(ga, gb, (size_t)steps * n_vocab * sizeof *ga);
	printf("fused: %s; launches per layer (batch-1 decode): %u fused, %u unfused\n",
	       r->fused_ok ? "logits bitwise equal to the unfused ops'" : "logits DIFFER from the "
	       "unfused ops'", r->launches[0], r->launches[1]);
	return 0;
}

/* One greedy run on B with graphs on or off; *why: capture refused. */
static int graph_run(struct opts *o, int32_t *toks, uint32_t steps, int on, float *lg,
		     const char **why)
{
	struct llm_kv *kv = kv_for(&o->b, o, o->prompt + steps, 1);
	int rc = !kv || cuda_backend_set_graphs(o->b.m, on) ? -1
		 : greedy(&o->b, kv, toks, o->prompt, steps, lg);
	if (why)
		*why = cuda_backend_graphs_off(o->b.m);
	llm_kv_free(kv);
	return rc;
}

/* B on a CUDA device: the greedy prompt and 8 decode steps replayed as
 * captured graphs and as plain launches give the same logits, bit for bit. */
static int check_graphs(struct opts *o, struct result *r, int32_t *toks, float *ga, float *gb)
{
	uint32_t steps = o->steps < 8 ? o->steps : 8;
	uint64_t cap0, rep0, cap1, rep1;
	const char *why = NULL;
	char whybuf[256];
	if (o->b.cpu)
		return 0;
	random_tokens(toks, o->prompt, o->seed + 11);
	if (cuda_backend_graph_counts(o->b.m, &cap0, &rep0) ||
	    graph_run(o, toks, steps, 1, ga, &why) ||
	    snprintf(whybuf, sizeof whybuf, "%s", why ? why : "") < 0 ||
	    cuda_backend_graph_counts(o->b.m, &cap1, &rep1) ||
	    graph_run(o, toks, steps, 0, gb, NULL) || cuda_backend_set_graphs(o->b.m, 1))
		return -1;
	if (why) {
		printf("graphs: off (%s): not checked\n", whybuf); /* why: reset by set_graphs */
		return 0;
	}
	r->graphs_checked = 1;
	r->graphs_ok = rep1 > rep0 && !memcmp(ga, gb, (size_t)steps * n_vocab * sizeof *ga);
	printf("graphs: %llu captured, %llu replayed: logits %s plain launches'\n",
	       (unsigned long long)(cap1 - cap0), (unsigned long long)(rep1 - rep0),
	       rep1 == rep0 ? "NOT CHECKED (no replay) against" : r->graphs_ok ? "bitwise equal to"
	       : "DIFFER from");
	return 0;
}
#endif

static const struct opts *opts_of_run; /* for load(): --float-acts */

static int load(struct dev *d, const char *path)
{
	d->cpu = !strcmp(d->name, "cpu");
	d->m = llm_model_load_on(path, d->name, err, sizeof err);
	if (!d->m) {
		fprintf(stderr, "llm-compare: %s: %s\n", d->name, err);
		return -1;
	}
	if (d == &opts_of_run->a && opts_of_run->float_acts)
		llm_model_set_float_acts(d->m, 1);
	if (llm_model_set_threads(d->m, d->threads)) {
		fprintf(stderr, "llm-compare: %s: cannot use %u threads\n", d->name, d->threads);
		return -1;
	}
	return 0;
}

static int run(struct opts *o, struct result *r)
{
	opts_of_run = o;
	if (load(&o->a, o->path) || load(&o->b, o->path_b ? o->path_b : o->path))
		return -1;
	n_vocab = llm_model_hparams(o->a.m)->n_vocab;
	const struct llm_hparams *hp = llm_model_hparams(o->a.m);
	printf("model: %s (%s, %u layers, %u wide, %u tokens) A=%s B=%s\n", o->path,
	       hp->arch_name, hp->n_layer, hp->n_embd, n_vocab, llm_model_device(o->a.m),
	       llm_model_device(o->b.m));
	size_t T = (size_t)o->prompt + o->steps;
	int32_t *ta = malloc(T * sizeof *ta), *tb = malloc(T * sizeof *tb);
	float *ga = malloc((size_t)o->steps * n_vocab * sizeof *ga);
	float *gb = malloc((size_t)o->steps * n_vocab * sizeof *gb);
	int rc = !ta || !tb || !ga || !gb ? -1 : 0;
	if (!rc)
		rc = check_logits(o, r);
	if (!rc)
		rc = check_greedy(o, r, ta, tb, ga, gb);
	if (!rc)
		rc = check_batch(o, r, ta, tb, ga, gb);
#ifdef PLOT_CUDA
	if (!rc)
		rc = check_fused(o, r, ta, ga, gb);
	if (!rc)
		rc = check_graphs(o, r, ta, ga, gb);
#endif
	free(ta), free(tb), free(ga), free(gb);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: llm-compare [--a DEV] [--b DEV] [--threads-a N] [--threads-b N] "
		"[--positions N]\n                   [--steps N] [--prompt N] [--batch N] [--tol X] "
		"[--exact] [--kv-f32] [--seed N]\n                   [--model-b PATH] [--batch-a] [--emulate] "
		"[--float-acts] MODEL\n");
	return 2;
}

static int num(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || !*s || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse(struct opts *o, int argc, char **argv)
{
	uint32_t u;
	int i;
	for (i = 1; i < argc - 1; i++) {
		const char *a = argv[i], *v = argv[i + 1];
		int bad = 0;
		if (!strcmp(a, "--exact")) { o->exact = 1; continue; }
		if (!strcmp(a, "--kv-f32")) { o->kv_type = LLM_KV_F32; continue; }
		if (!strcmp(a, "--batch-a")) { o->batch_a = 1; continue; }
		if (!strcmp(a, "--emulate")) { o->emulate = 1; continue; }
		if (!strcmp(a, "--float-acts")) { o->float_acts = 1; continue; }
		if (!strcmp(a, "--a")) o->a.name = v;
		else if (!strcmp(a, "--b")) o->b.name = v;
		else if (!strcmp(a, "--model-b")) o->path_b = v;
		else if (!strcmp(a, "--threads-a")) bad = num(v, 1, LLM_MAX_THREADS, &o->a.threads);
		else if (!strcmp(a, "--threads-b")) bad = num(v, 1, LLM_MAX_THREADS, &o->b.threads);
		else if (!strcmp(a, "--positions")) bad = num(v, 1, 8192, &o->positions);
		else if (!strcmp(a, "--steps")) bad = num(v, 1, 4096, &o->steps);
		else if (!strcmp(a, "--prompt")) bad = num(v, 1, 4096, &o->prompt);
		else if (!strcmp(a, "--batch")) bad = num(v, 1, 1024, &o->batch);
		else if (!strcmp(a, "--seed")) bad = num(v, 0, 0xffffffffUL, &u), o->seed = u;
		else if (!strcmp(a, "--tol")) o->tol = strtod(v, NULL), bad = !(o->tol > 0);
		else return usage();
		if (bad) {
			fprintf(stderr, "llm-compare: %s '%s': out of range\n", a, v);
			return 2;
		}
		i++;
	}
	if (i != argc - 1 || argv[i][0] == '-')
		return usage();
	o->path = argv[i];
#ifdef PLOT_CUDA
	cuda_set_emulation(o->emulate);
#else
	if (o->emulate) {
		fprintf(stderr, "llm-compare: --emulate needs a CUDA build (make CUDA=1)\n");
		return 2;
	}
#endif
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .a = { "cpu", 2, NULL, 0 }, .b = { "cpu", 2, NULL, 0 },
			  .positions = 300, .steps = 64, .prompt = 32, .batch = 64,
			  .tol = 5e-2, .seed = 1 };
	struct result r = { 0 };
	int rc = parse(&o, argc, argv);
	if (rc)
		return rc;
	rc = run(&o, &r);
	llm_model_free(o.a.m);
	llm_model_free(o.b.m);
	if (rc)
		return 3;
	int ok = r.logits_ok && r.greedy_ok && r.batch_ok && (!r.fused_checked || r.fused_ok) &&
		 (!r.graphs_checked || r.graphs_ok);
	char fused[128] = "";
	if (r.fused_checked)
		snprintf(fused, sizeof fused, " fused=%s launches_per_layer=%u/%u%s",
			 r.fused_ok ? "bitwise" : "DIFFER", r.launches[0], r.launches[1],
			 !r.graphs_checked ? "" : r.graphs_ok ? " graphs=bitwise" : " graphs=DIFFER");
	printf("llm-compare: %s max_rel=%.3e mean_rel=%.3e greedy=%u/%u%s batch=%s "
	       "decode_bitwise=%s joint_prefill_max_abs=%.3e%s\n", ok ? "ok" : "FAIL", r.max_rel,
	       r.mean_rel, r.agree, o.steps, r.diverged_at < o.steps && r.greedy_ok ? "(near-tie)" : "",
	       r.batch_ok ? "ok" : "FAIL", r.batch_decode_bitwise ? "yes" : "NO", r.batch_diff_b,
	       fused);
	return ok ? 0 : 1;
}
