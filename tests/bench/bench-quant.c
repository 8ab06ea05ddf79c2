/*
 * bench-quant — matrix x vector throughput of each weight type's vec_dot,
 * reference vs the dispatched fast path, on the shipped models' shapes:
 * 32-element types as SmolLM2's ffn_up (1536 rows of 576), K-quants as
 * Gemma 3's ffn_down (640 rows of 2048). Weights fit in L2/L3, so this
 * measures the kernels, not DRAM. Each figure is the fastest of many
 * single matvecs, implementations interleaved (see bench()).
 * Every implementation this CPU runs is timed in the same run (the machine
 * is shared, so only same-run figures compare). Also a batch of 16
 * activation rows through quant_vec_dot_mn (ns per row per activation).
 * Last line: "quant: <type>_<impl>_ns=.. <type>_<impl>_b16_ns=..
 * <type>_ref_ns=.. ..." (ns per row).
 *
 * Pack block (lib/llm/quant/pack.h): the packed 8-row GEMM against the row
 * kernels it replaces (quant_vec_dot_mn over all rows, as forward.c calls
 * it), per 32-element type, for nx = 1, 4, 16 tokens on 1536 x 576 and
 * 640 x 2048 matrices, single thread, activation quantization not timed.
 * Keys: pack<nx>_<type>[_2048][_<level>]_gmacs and mn<nx>_..._gmacs
 * (multiply-accumulates per second; the level suffix only for levels
 * below the best).
 *
 * K-quant packed GEMM (bench_pack_k): pack_gemm against the row kernels
 * (quant_vec_dot_mn, chunks of 16 rows as forward.c) for nx = 1, 4, 16 on
 * Gemma 3's ffn_down (Q6_K, 640 x 2048) and attn_output (Q4_K, 640 x 1024),
 * single thread, in GMAC/s; keys "<type>_<impl>_mn<nx>_gmacs=..
 * <type>_<impl>_pk<nx>_gmacs=..".
 */
#include "llm/quant/pack.h"
#include "llm/quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile float sink;

#define MAX_IMPL 4
#define ROUNDS 300

/* Seconds for one matvec (nx = 1: quant_vec_dot per row; nx = 16:
 * quant_vec_dot_mn over chunks of 16 rows x 16 activation rows). */
static double one_matvec(uint32_t t, int rows, int n, const uint8_t *w, const uint8_t *xq,
			 size_t xrb, int nx)
{
	size_t rb = quant_row_bytes(t, (uint64_t)n);
	static float y[16];
	double t0 = now();
	if (nx == 1) {
		float s = 0;
		for (int r = 0; r < rows; r++)
			s += quant_vec_dot(t, n, w + (size_t)r * rb, xq);
		y[0] = s;
	} else {
		/* as forward.c: rows in chunks of 16, each through quant_vec_dot_mn */
		static float yb[16 * 16];
		for (int r = 0; r < rows; r += 16)
			quant_vec_dot_mn(t, n, w + (size_t)r * rb, rb, rows - r < 16 ? rows - r : 16,
					 xq, xrb, nx, yb, 1, 16);
		y[0] = yb[0];
	}
	sink = y[0];
	return now() - t0;
}

/* The machine is shared: take the minimum over many single matvecs, with
 * the implementations interleaved round by round so load hits all alike. */
static void bench(uint32_t t, int rows, int n, char *line, size_t cap)
{
	size_t rb = quant_row_bytes(t, (uint64_t)n);
	uint32_t dt = quant_dot_type(t);
	size_t xrb = quant_row_bytes(dt, (uint64_t)n);
	float *f = malloc((size_t)rows * n * sizeof *f);
	uint8_t *w = malloc(rb * rows), *xq = malloc(xrb * 16);
	srand(1);
	for (size_t i = 0; i < (size_t)rows * n; i++)
		f[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	for (int r = 0; r < rows; r++)
		quant_quantize_row(t, f + (size_t)r * n, w + (size_t)r * rb, n);
	for (int k = 0; k < 16; k++)
		quant_quantize_row(dt, f + (size_t)k * n, xq + k * xrb, n);
	const char *impl[MAX_IMPL];
	double best1[MAX_IMPL], best16[MAX_IMPL];
	int ni = 0;
	while (ni < MAX_IMPL && (impl[ni] = quant_impl_available(ni)) != NULL) {
		best1[ni] = best16[ni] = 1e9;
		ni++;
	}
	for (int round = 0; round < ROUNDS; round++)
		for (int i = 0; i < ni; i++) {
			quant_set_impl(impl[i]);
			if (i == 0 && round % 10)
				continue; /* the reference is slow and only a baseline */
			double a = one_matvec(t, rows, n, w, xq, xrb, 1);
			double b = one_matvec(t, rows, n, w, xq, xrb, 16);
			best1[i] = a < best1[i] ? a : best1[i];
			best16[i] = b < best16[i] ? b : best16[i];
		}
	quant_set_impl(NULL);
	double ref = best1[0] * 1e9 / rows;
	printf("%-5s %4d x %4d  ref %7.1f ns/row", quant_name(t), rows, n, ref);
	size_t len = strlen(line);
	snprintf(line + len, cap - len, " %s_ref_ns=%.1f", quant_name(t), ref);
	for (int i = 1; i < ni; i++) {
		double ns = best1[i] * 1e9 / rows, ns16 = best16[i] * 1e9 / rows / 16;
		printf("  | %s %6.1f ns/row %5.2f GB/s x%4.1f, batch16 %6.1f ns/row/act", impl[i], ns,
		       (double)rb / ns, ref / ns, ns16);
		len = strlen(line);
		snprintf(line + len, cap - len, " %s_%s_ns=%.1f %s_%s_b16_ns=%.1f", quant_name(t),
			 impl[i], ns, quant_name(t), impl[i], ns16);
	}
	printf("\n");
	free(f);
	free(w);
	free(xq);
}

/* ---- K-quant packed GEMM vs the row kernels ----------------------------- */

#define PK_ROUNDS 60

/* seconds for y = W x over nx tokens: packed (pk) or quant_vec_dot_mn */
static double one_gemm(uint32_t t, int rows, int n, const void *w, size_t rb, const void *pk,
		       const uint8_t *xq, size_t xrb, int nx, int packed)
{
	static float y[16 * 2048];
	double t0 = now();
	if (packed)
		pack_gemm(t, n, pk, 0, rows, xq, xrb, nx, y, (size_t)rows);
	else
		for (int r = 0; r < rows; r += 16)
			quant_vec_dot_mn(t, n, (const uint8_t *)w + (size_t)r * rb, rb,
					 rows - r < 16 ? rows - r : 16, xq, xrb, nx, y + r, 1,
					 (size_t)rows);
	sink = y[0];
	return now() - t0;
}

static void bench_pack_k(uint32_t t, int rows, int n, char *line, size_t cap)
{
	static const int nxs[] = { 1, 4, 16 };
	size_t rb = quant_row_bytes(t, (uint64_t)n), xrb = quant_row_bytes(Q_Q8_K, (uint64_t)n);
	size_t pb = pack_matrix_bytes(t, (uint64_t)rows, (uint64_t)n);
	float *f = malloc((size_t)rows * n * sizeof *f);
	uint8_t *w = malloc(rb * rows), *xq = malloc(xrb * 16), *pk = malloc(pb);
	srand(2);
	for (size_t i = 0; i < (size_t)rows * n; i++)
		f[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	for (int r = 0; r < rows; r++)
		quant_quantize_row(t, f + (size_t)r * n, w + (size_t)r * rb, n);
	for (int k = 0; k < 16; k++)
		quant_quantize_row(Q_Q8_K, f + (size_t)k * n, xq + k * xrb, n);
	pack_matrix(t, w, (uint64_t)n, 0, (uint64_t)rows, pk);
	const char *impl;
	for (int i = 1; (impl = quant_impl_available(i)) != NULL; i++) {
		quant_set_impl(impl);
		printf("%-5s %4d x %4d  %-6s GMAC/s", quant_name(t), rows, n, impl);
		for (size_t k = 0; k < sizeof nxs / sizeof nxs[0]; k++) {
			double best[2] = { 1e9, 1e9 };
			for (int round = 0; round < PK_ROUNDS; round++)
				for (int p = 0; p < 2; p++) {
					double s = one_gemm(t, rows, n, w, rb, pk, xq, xrb, nxs[k], p);
					best[p] = s < best[p] ? s : best[p];
				}
			double macs = (double)rows * n * nxs[k] * 1e-9;
			printf("  nx=%-2d mn %6.1f packed %6.1f (x%.2f)", nxs[k], macs / best[0],
			       macs / best[1], best[0] / best[1]);
			size_t len = strlen(line);
			snprintf(line + len, cap - len, " %s_%s_mn%d_gmacs=%.1f %s_%s_pk%d_gmacs=%.1f",
				 quant_name(t), impl, nxs[k], macs / best[0], quant_name(t), impl,
				 nxs[k], macs / best[1]);
		}
		printf("\n");
	}
	quant_set_impl(NULL);
	free(f);
	free(w);
	free(xq);
	free(pk);
}

/* ---- packed GEMM vs quant_vec_dot_mn ---------------------------------------- */

#define PACK_ROUNDS 40

struct pk_case {
	uint32_t t;
	int rows, cols;
	uint8_t *w, *p, *xq, *xa; /* ggml rows, packed, Q8_0/Q8_1 and PACK_A8 activations */
	size_t xrb, xab;
	float *y;                 /* (16, rows) */
};

static void pk_case_init(struct pk_case *c, uint32_t t, int rows, int cols)
{
	size_t rb = quant_row_bytes(t, (uint64_t)cols), n = (size_t)rows * cols;
	uint32_t dt = quant_dot_type(t);
	float *f = malloc((n > 16u * cols ? n : 16u * cols) * sizeof *f);
	c->t = t, c->rows = rows, c->cols = cols;
	c->xrb = quant_row_bytes(dt, (uint64_t)cols);
	c->xab = pack_act_row_bytes(PACK_A8, (uint64_t)cols);
	c->w = malloc(rb * rows);
	c->p = malloc(pack_matrix_bytes(t, (uint64_t)rows, (uint64_t)cols));
	c->xq = malloc(c->xrb * 16), c->xa = malloc(c->xab * 16);
	c->y = malloc((size_t)16 * rows * sizeof *c->y);
	srand(2);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)rand() / (float)RAND_MAX - 0.5f;
	for (int r = 0; r < rows; r++)
		quant_quantize_row(t, f + (size_t)r * cols, c->w + (size_t)r * rb, cols);
	pack_matrix(t, c->w, (uint64_t)cols, 0, (uint64_t)rows, c->p);
	for (int k = 0; k < 16; k++) {
		quant_quantize_row(dt, f + (size_t)k * cols, c->xq + k * c->xrb, cols);
		pack_quantize_act(PACK_A8, f + (size_t)k * cols, c->xa + k * c->xab, cols);
	}
	free(f);
}

static void pk_case_free(struct pk_case *c)
{
	free(c->w), free(c->p), free(c->xq), free(c->xa), free(c->y);
}

/* seconds for one product of the whole matrix with nx tokens */
static double pk_once(const struct pk_case *c, int packed, int nx)
{
	double t0 = now();
	if (packed)
		pack_gemm(c->t, c->cols, c->p, 0, c->rows, c->xa, c->xab, nx, c->y,
			  (size_t)c->rows);
	else
		quant_vec_dot_mn(c->t, c->cols, c->w, quant_row_bytes(c->t, (uint64_t)c->cols),
				 c->rows, c->xq, c->xrb, nx, c->y, 1, (size_t)c->rows);
	sink = c->y[0];
	return now() - t0;
}

/* one level, one case: both paths interleaved round by round, best of each */
static void pk_bench_level(const struct pk_case *c, const char *level, const char *suffix,
			   char *line, size_t cap)
{
	static const int nxs[] = { 1, 4, 16 };
	double macs = (double)c->rows * c->cols;
	char tn[8];
	snprintf(tn, sizeof tn, "%s", quant_name(c->t));
	for (char *q = tn; *q; q++)
		*q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
	printf("pack  %-5s %4d x %4d %-6s", quant_name(c->t), c->rows, c->cols, level);
	for (size_t i = 0; i < sizeof nxs / sizeof nxs[0]; i++) {
		int nx = nxs[i];
		double best[2] = { 1e9, 1e9 };
		for (int round = 0; round < PACK_ROUNDS; round++)
			for (int k = 0; k < 2; k++) {
				double s = pk_once(c, k, nx);
				best[k] = s < best[k] ? s : best[k];
			}
		double old = macs * nx / best[0] * 1e-9, new = macs * nx / best[1] * 1e-9;
		printf(" | nx=%2d mn %6.1f pack %6.1f GMAC/s x%.2f", nx, old, new, new / old);
		size_t len = strlen(line);
		snprintf(line + len, cap - len, " mn%d_%s%s_gmacs=%.2f pack%d_%s%s_gmacs=%.2f", nx, tn,
			 suffix, old, nx, tn, suffix, new);
	}
	printf("\n");
}

static void pk_bench(char *line, size_t cap)
{
	static const uint32_t pt[] = { Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0 };
	static const int shape[2][2] = { { 1536, 576 }, { 640, 2048 } };
	int top = 0;
	while (quant_impl_available(top + 1))
		top++;
	for (size_t i = 0; i < sizeof pt / sizeof pt[0]; i++)
		for (int s = 0; s < 2; s++) {
			struct pk_case c;
			pk_case_init(&c, pt[i], shape[s][0], shape[s][1]);
			for (int l = top; l >= 1; l--) {
				const char *level = quant_impl_available(l);
				char suffix[32];
				snprintf(suffix, sizeof suffix, "%s%s%s", s ? "_2048" : "",
					 l < top ? "_" : "", l < top ? level : "");
				quant_set_impl(level);
				pk_bench_level(&c, level, suffix, line, cap);
			}
			quant_set_impl(NULL);
			pk_case_free(&c);
		}
}

/* "bench-quant pack": the pack block only */
int main(int argc, char **argv)
{
	int pack_only = argc > 1 && strcmp(argv[1], "pack") == 0;
	static const uint32_t legacy[] = { Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0 };
	static const uint32_t kq[] = { Q_Q4_K, Q_Q5_K, Q_Q6_K };
	static char line[16384] = "quant:";
	printf("dispatch: %s\n", quant_impl_name());
	for (size_t i = 0; i < sizeof legacy / sizeof legacy[0] && !pack_only; i++)
		bench(legacy[i], 1536, 576, line, sizeof line);
	for (size_t i = 0; i < sizeof kq / sizeof kq[0] && !pack_only; i++)
		bench(kq[i], 640, 2048, line, sizeof line);
	pk_bench(line, sizeof line);
	bench_pack_k(Q_Q6_K, 640, 2048, line, sizeof line);
	bench_pack_k(Q_Q4_K, 640, 1024, line, sizeof line);
	printf("%s impl=%s\n", line, quant_impl_name());
	return 0;
}
