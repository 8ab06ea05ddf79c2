/*
 * test-backend — every op of lib/cuda/cuda-ops.h on the GPU against the same
 * computation on the CPU through the engine's own functions (lib/llm/cpu,
 * lib/llm/quant), for every weight type and a spread of shapes. ggml's
 * test-backend-ops is the model. Built only by make CUDA=1 (make gpu-tests).
 *
 *   test-backend [--seed N] [--op NAME] [--quiet] [--small] [--emulate]
 *
 * --small leaves out the 512-token cases and three of the five attention
 * head layouts: for the CPU stand-in of make check, never on the GPU.
 * --emulate (a CUDA build) runs the kernels' own code on the host through
 * lib/cuda's emulated device (cuda-emu.cu): the dry run of tests/gpu/run
 * on a machine without a GPU.
 * Each run draws fresh random inputs (the seed is printed first; --seed N
 * repeats a run). Every output buffer is poisoned (all bytes 0xFF: NaN in
 * f32, NaN in f16) before the op runs, so an element the op leaves unwritten
 * shows as NaN, and NaN never passes. One line per case, then a table per
 * op (cases, failures, worst error over tolerance), then
 * "test-backend: ok|FAIL cases=N failed=M seed=S".
 *
 * Error: err = |gpu - ref|_2 / |ref|_2 over the case's whole output (NaN or
 * inf anywhere: err = inf); for matvec and gemm the denominator is the L2
 * norm of all the individual products w_i x_i instead, since rounding
 * errors scale with those and a dot that cancels to near zero would
 * otherwise inflate the ratio. Tolerances, and why:
 *   exact (0)    conversions, adds, gathers, kv_write, dequantization,
 *                embedding, scale_round: the GPU does the same IEEE
 *                operations as the CPU (cuda-quant.cuh reads blocks
 *                bit-exactly as quant-ref.c), so any difference is a bug.
 *   1e-6         rmsnorm, qk_norm, rope, rope_table: a handful of f32
 *                roundings (unit roundoff 6e-8) per element; the sum of
 *                squares is in double on both sides, in different orders.
 *   1e-5         glu: the CPU's Cephes expf against CUDA's expf/tanhf, a few
 *                ulp each; matvec against a double-precision reference of
 *                the dequantized weights times the f32 activations: f32
 *                accumulation over up to 8192 products, ~6e-8 x sqrt(cols).
 *   3e-2         matvec against the CPU engine's own product, which first
 *                quantizes the activations to Q8_0/Q8_1/Q8_K: each x_i off
 *                by up to amax/254 of its block, ~4e-3 of the products'
 *                norm for uniform activations, x7 margin; F32/F16/BF16
 *                weights use f32 activations on the CPU too: 1e-5 there.
 *   2e-3         gemm (cuBLAS, f16 inputs, f32 accumulation) against the
 *                double reference: both operands rounded to half (2^-11
 *                relative each, random signs), ~4e-4, x5 margin.
 *   2e-3 / 1e-5  attention against a double-precision reference with the
 *                CPU's semantics (attn.c): with an F16 cache the CPU rounds
 *                the normalised probabilities to half, the GPU's online
 *                softmax rounds them relative to the running maximum
 *                (cuda-attn.cu), up to 1e-3 per element; with an F32 cache
 *                only f32 accumulation differs.
 *   exact (0)    add_rmsnorm, rope_kv, matvec_multi (the fused ops of the
 *                forward pass): err counts the bytes that differ from their
 *                parts (rmsnorm, add, rope, scale_round, kv_write; matvec of
 *                each weight) run on the device one after the other, which
 *                they promise bit for bit;
 *                add_rmsnorm also stays within rmsnorm's 1e-6 of the CPU.
 * matvec and attention are also checked for batch invariance: a token's
 * row computed alone (n = 1, one row) must equal bit for bit its row in
 * the full batch; and attention split over the sequence (flash-decoding)
 * must not depend on the number of segments, which the batch's longest
 * context sets: n_seg and n_seg + 2 agree exactly, and an entry whose
 * context fits one segment equals the unsplit run (cuda-ops.h: bitwise
 * but for the sign of a zero). TB_DEBUG=1 prints where that fails.
 *
 * Exit status: 0 every case passed, 1 a case failed, 2 usage, 77 no CUDA
 * device (nothing was tested: never a pass).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda/cuda-dev.h"
#include "cuda/cuda-ops.h"
#ifdef PLOT_CUDA
#include "cuda/cuda-host.h"
#endif
#include "llm/quant/quant.h"
#include "test-backend.h"

#define EXIT_NO_DEVICE 77

/* Per-op tally for the summary table. */
struct tally {
	const char *op;
	double tol;       /* the main tolerance (0: exact) */
	int cases, failed;
	double worst;     /* largest err / tol (err when tol is 0) */
};

#define T(name, t) { .op = name, .tol = t }
static struct tally tallies[] = {
	T("f32_to_f16", 0), T("f16_to_f32", 0), T("scale_round", 0), T("embed", 0),
	T("dequant_f16", 0), T("dequant_f32", 0), T("matvec", 1e-5), T("gemm", 2e-3),
	T("rmsnorm", 1e-6), T("qk_norm", 1e-6), T("rope_table", 1e-6), T("rope", 1e-6),
	T("glu", 1e-5), T("add", 0), T("add_bias", 0), T("gather_rows", 0),
	T("kv_write", 0), T("attn", 2e-3), T("add_rmsnorm", 0), T("rope_kv", 0),
	T("matvec_multi", 0),
};
#undef T
#define N_TALLIES (sizeof tallies / sizeof tallies[0])

void *tb_stream, *tb_blas;
char tb_err[1024];
int tb_small;
static uint64_t rng_state;
static const char *only_op;
static int quiet;

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float tb_urand(float a) /* uniform in [-a, a) */
{
	return (float)((double)(rnd() >> 11) * (2.0 / 9007199254740992.0) - 1.0) * a;
}

float *tb_frand(size_t n, float a)
{
	float *x = malloc((n ? n : 1) * sizeof *x);
	for (size_t i = 0; x && i < n; i++)
		x[i] = tb_urand(a);
	return x;
}

uint32_t tb_irand(uint32_t n) { return (uint32_t)(rnd() % n); }

/* ---- device buffers ------------------------------------------------------ */

static void cfail(struct tc *c, const char *what)
{
	if (!c->broken)
		printf("FAIL %s: CUDA: %s\n", what, tb_err);
	c->broken = 1;
}

/* bytes of device memory, poisoned with 0xFF */
void *tb_dnew(struct tc *c, size_t bytes)
{
	void *p = NULL;
	if (c->broken || c->nbuf == TB_MAX_BUFS)
		return c->broken = 1, NULL;
	if (cuda_malloc(&p, bytes ? bytes : 1, tb_err, sizeof tb_err) ||
	    cuda_memset(p, 0xFF, bytes ? bytes : 1, tb_stream, tb_err, sizeof tb_err)) {
		cfail(c, "alloc");
		cuda_free(p);
		return NULL;
	}
	return c->buf[c->nbuf++] = p;
}

void *tb_dput(struct tc *c, const void *h, size_t bytes)
{
	void *p = tb_dnew(c, bytes);
	if (p && cuda_h2d(p, h, bytes, tb_stream, tb_err, sizeof tb_err))
		cfail(c, "h2d");
	return c->broken ? NULL : p;
}

/* Wait for the op, then copy back (NULL h: only wait). */
int tb_dget(struct tc *c, void *h, const void *d, size_t bytes)
{
	if (c->broken)
		return -1;
	if (cuda_stream_sync(tb_stream, tb_err, sizeof tb_err) ||
	    (h && cuda_d2h(h, d, bytes, tb_stream, tb_err, sizeof tb_err)) ||
	    cuda_stream_sync(tb_stream, tb_err, sizeof tb_err))
		return cfail(c, "run"), -1;
	return 0;
}

static void tc_free(struct tc *c)
{
	cuda_stream_sync(tb_stream, tb_err, sizeof tb_err);
	for (int i = 0; i < c->nbuf; i++)
		cuda_free(c->buf[i]);
	c->nbuf = 0;
}

/* ---- comparison and reporting ------------------------------------------- */

double tb_rel(const float *got, const double *want, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i]))
			return INFINITY;
		double d = got[i] - want[i];
		num += d * d;
		den += want[i] * want[i];
	}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

double tb_relf(const float *got, const float *want, size_t n)
{
	double *w = malloc((n ? n : 1) * sizeof *w);
	if (!w)
		return INFINITY;
	for (size_t i = 0; i < n; i++)
		w[i] = want[i];
	double e = tb_rel(got, w, n);
	free(w);
	return e;
}

static struct tally *tally_of(const char *op)
{
	for (size_t i = 0; i < N_TALLIES; i++)
		if (!strcmp(tallies[i].op, op))
			return &tallies[i];
	return NULL;
}

/* One result line; ok unless err > tol (or NaN) or extra_fail. */
int tb_report(struct tc *c, const char *op, const char *desc, double e, double tol,
		  const char *extra, int extra_fail)
{
	struct tally *t = tally_of(op);
	int ok = !c->broken && !extra_fail && e <= tol;
	t->cases++;
	t->failed += !ok;
	double score = c->broken ? INFINITY : tol > 0 ? e / tol : e;
	if (score > t->worst || isnan(score))
		t->worst = isnan(score) ? INFINITY : score;
	if (!ok || !quiet)
		printf("%s %-11s %-34s err=%.2e tol=%.0e%s%s\n", ok ? "ok  " : "FAIL", op, desc, e,
		       tol, extra ? " " : "", extra ? extra : "");
	tc_free(c);
	memset(c, 0, sizeof *c);
	return ok ? 0 : -1;
}

int tb_want(const char *op)
{
	return !only_op || !strcmp(only_op, op);
}

/* ---- weights ------------------------------------------------------------- */

/* rows x cols of type from random floats (the engine's reference
 * quantizer); deq gets the CPU's dequantization of every row. */
void *tb_weights(uint32_t type, uint32_t rows, uint32_t cols, float **deq)
{
	size_t rb = quant_row_bytes(type, cols);
	uint8_t *w = malloc(rb * rows);
	float *d = malloc((size_t)rows * cols * sizeof *d), *src = tb_frand(cols, 1.0f);
	for (uint32_t r = 0; w && d && src && r < rows; r++) {
		for (uint32_t i = 0; i < cols; i++)
			src[i] = tb_urand(1.0f);
		quant_quantize_row_ref(type, src, w + r * rb, cols);
		quant_dequant_row_ref(type, w + r * rb, d + (size_t)r * cols, cols);
	}
	free(src);
	*deq = d;
	return w;
}

/* ---- driver -------------------------------------------------------------- */

static void summary(uint64_t seed)
{
	int cases = 0, failed = 0;
	printf("\n%-12s %6s %7s %12s %8s\n", "op", "cases", "failed", "worst/tol", "tol");
	for (size_t i = 0; i < N_TALLIES; i++) {
		struct tally *t = &tallies[i];
		if (!t->cases)
			continue;
		printf("%-12s %6d %7d %12.3g %8.0e\n", t->op, t->cases, t->failed, t->worst, t->tol);
		cases += t->cases;
		failed += t->failed;
	}
	printf("test-backend: %s cases=%d failed=%d seed=%llu\n", failed ? "FAIL" : "ok", cases,
	       failed, (unsigned long long)seed);
}

static int open_device(void)
{
	int n = 0;
	struct cuda_dev_info info;
	if (cuda_dev_count(&n, tb_err, sizeof tb_err) || n == 0) {
		printf("test-backend: no CUDA device (%s): nothing tested\n", n ? "" : tb_err[0] ? tb_err :
		       "the runtime found none");
		return -1;
	}
	if (cuda_dev_info(0, &info, tb_err, sizeof tb_err) || cuda_set_device(0, tb_err, sizeof tb_err) ||
	    cuda_stream_new(&tb_stream, tb_err, sizeof tb_err) || cuda_blas_new(&tb_blas, tb_stream, tb_err, sizeof tb_err)) {
		printf("test-backend: no usable CUDA device: %s\n", tb_err);
		return -1;
	}
	printf("device: %s (sm_%d%d, %.1f GiB)\n", info.name, info.cc_major, info.cc_minor,
	       info.total_bytes / 1073741824.0);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	int emulate = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--op") && i + 1 < argc)
			only_op = argv[++i];
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else if (!strcmp(argv[i], "--small"))
			tb_small = 1;
		else if (!strcmp(argv[i], "--emulate"))
			emulate = 1;
		else
			return fprintf(stderr, "usage: test-backend [--seed N] [--op NAME] [--quiet] [--small] "
				       "[--emulate]\n"), 2;
	}
#ifdef PLOT_CUDA
	cuda_set_emulation(emulate);
#else
	if (emulate)
		return fprintf(stderr, "test-backend: --emulate needs a CUDA build\n"), 2;
#endif
	if (only_op && !tally_of(only_op))
		return fprintf(stderr, "test-backend: '%s': no such op\n", only_op), 2;
	printf("test-backend: seed %llu (--seed %llu repeats this run)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	rng_state = seed;
	if (open_device())
		return EXIT_NO_DEVICE;
	tb_run_all();
	summary(seed);
	cuda_blas_free(tb_blas);
	cuda_stream_free(tb_stream);
	for (size_t i = 0; i < N_TALLIES; i++)
		if (tallies[i].failed)
			return 1;
	return 0;
}
