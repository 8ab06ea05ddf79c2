/*
 * test-backend-ops.c — the cases of test-backend: for each op of
 * lib/cuda/cuda-ops.h, its shapes, its CPU reference (the engine's own
 * functions: quant_dequant_row_ref, quant_quantize_row + quant_vec_dot,
 * llm_rmsnorm, llm_rope_table, llm_rope_apply, llm_glu, llm_f16_*; a
 * double-precision sum where the CPU engine has no standalone function, as
 * for attention, whose semantics follow cpu/attn.c) and its tolerance (the
 * table in test-backend.c's header says why each is what it is).
 *
 * The fused ops (add_rmsnorm, rope_kv) must give their parts' bits: they
 * are compared with those parts run on the device, byte for byte.
 *
 * Shapes cover one row / one token, odd sizes (rows not a multiple of the
 * kernels' warps or tiles, F32/F16/BF16 rows of odd length), long rows
 * (8192), batches from 1 to 512, and the head layouts of the five model
 * shapes of tests/gpu/run (llama 1B, SmolLM2, Qwen2, Gemma 3).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda-ops.h"
#include "cuda/cuda-plan.h"
#include "llm/cpu/attn-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/quant.h"
#include "test-backend.h"

static const uint32_t wtypes[] = {
	Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0, Q_Q4_K, Q_Q5_K, Q_Q6_K,
};
#define N_WTYPES (sizeof wtypes / sizeof wtypes[0])
#define TE tb_err, sizeof tb_err

static int is_float_type(uint32_t t) { return t == Q_F32 || t == Q_F16 || t == Q_BF16; }

/* ---- conversions ---------------------------------------------------------- */

static void case_f32_to_f16(void)
{
	struct tc c = { 0 };
	size_t n = 70001;
	float *x = tb_frand(n, 1.0f);
	uint16_t *got = malloc(n * 2);
	size_t bad = 0;
	for (size_t i = 0; i < n; i += 7) /* overflow, subnormal and tiny values too */
		x[i] *= i % 3 == 0 ? 1e5f : i % 3 == 1 ? 1e-5f : 1e-9f;
	float *dx = tb_dput(&c, x, n * 4);
	uint16_t *dy = tb_dnew(&c, n * 2);
	if (dx && dy && cuda_f32_to_f16(dy, dx, n, tb_stream, TE))
		c.broken = 1, printf("FAIL f32_to_f16: %s\n", tb_err);
	if (!tb_dget(&c, got, dy, n * 2))
		for (size_t i = 0; i < n; i++)
			bad += got[i] != llm_f16_from_f32(x[i]);
	char ex[64];
	snprintf(ex, sizeof ex, "(%zu of %zu halves differ)", bad, n);
	tb_report(&c, "f32_to_f16", "n=70001 incl. overflow/subnormal", (double)bad, 0, ex, 0);
	free(x);
	free(got);
}

/* every one of the 65536 halves, NaNs compared as NaN (payloads may differ);
 * the output is poisoned with 0x7F bytes here, a finite float no half
 * converts to, since NaN poison would pass for the NaN halves */
static void case_f16_to_f32(void)
{
	struct tc c = { 0 };
	uint16_t *h = malloc(65536 * 2);
	float *got = malloc(65536 * 4);
	size_t bad = 0;
	for (uint32_t i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	uint16_t *dh = tb_dput(&c, h, 65536 * 2);
	float *dy = tb_dnew(&c, 65536 * 4);
	if (dy && cuda_memset(dy, 0x7F, 65536 * 4, tb_stream, TE))
		c.broken = 1, printf("FAIL f16_to_f32: %s\n", tb_err);
	if (dh && dy && cuda_f16_to_f32(dy, dh, 65536, tb_stream, TE))
		c.broken = 1, printf("FAIL f16_to_f32: %s\n", tb_err);
	if (!tb_dget(&c, got, dy, 65536 * 4)) {
		for (uint32_t i = 0; i < 65536; i++) {
			float w = llm_f32_from_f16((uint16_t)i);
			bad += isnan(w) ? !isnan(got[i]) : memcmp(&w, &got[i], 4) != 0;
		}
	}
	char ex[64];
	snprintf(ex, sizeof ex, "(%zu of 65536 differ)", bad);
	tb_report(&c, "f16_to_f32", "all 65536 halves", (double)bad, 0, ex, 0);
	free(h);
	free(got);
}

static void case_scale_round(size_t n, float scale, int round)
{
	struct tc c = { 0 };
	float *x = tb_frand(n, 4.0f), *want = malloc(n * 4), *got = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		want[i] = x[i] * scale;
	if (round)
		llm_f16_round(want, n);
	float *dx = tb_dput(&c, x, n * 4);
	if (dx && cuda_scale_round(dx, n, scale, round, tb_stream, TE))
		c.broken = 1, printf("FAIL scale_round: %s\n", tb_err);
	double e = tb_dget(&c, got, dx, n * 4) ? INFINITY : tb_relf(got, want, n);
	char d[64];
	snprintf(d, sizeof d, "n=%zu scale=%g round=%d", n, scale, round);
	tb_report(&c, "scale_round", d, e, 0, NULL, 0);
	free(x), free(want), free(got);
}

static void conv_cases(void)
{
	if (tb_want("f32_to_f16"))
		case_f32_to_f16();
	if (tb_want("f16_to_f32"))
		case_f16_to_f32();
	if (tb_want("scale_round")) {
		case_scale_round(1, 0.125f, 1);
		case_scale_round(1031, 1.0f, 1);
		case_scale_round(4099, 0.0883883f, 0);
	}
}

/* ---- embedding and dequantization ----------------------------------------- */

static void case_embed(uint32_t type, uint32_t dim, uint32_t n, float scale)
{
	struct tc c = { 0 };
	uint32_t vocab = 40;
	float *deq = NULL;
	void *w = tb_weights(type, vocab, dim, &deq);
	size_t rb = quant_row_bytes(type, dim);
	int32_t *tok = malloc(n * sizeof *tok);
	float *want = malloc((size_t)n * dim * 4), *got = malloc((size_t)n * dim * 4);
	for (uint32_t t = 0; t < n; t++) {
		tok[t] = (int32_t)tb_irand(vocab);
		for (uint32_t i = 0; i < dim; i++)
			want[(size_t)t * dim + i] = deq[(size_t)tok[t] * dim + i] * scale;
	}
	void *dw = tb_dput(&c, w, rb * vocab);
	int32_t *dt = tb_dput(&c, tok, n * sizeof *tok);
	float *dx = tb_dnew(&c, (size_t)n * dim * 4);
	if (dx && cuda_embed(dx, dw, type, rb, dim, dt, n, scale, tb_stream, TE))
		c.broken = 1, printf("FAIL embed: %s\n", tb_err);
	double e = tb_dget(&c, got, dx, (size_t)n * dim * 4) ? INFINITY
		   : tb_relf(got, want, (size_t)n * dim);
	char d[80];
	snprintf(d, sizeof d, "%s dim=%u n=%u scale=%.3g", quant_name(type), dim, n, scale);
	tb_report(&c, "embed", d, e, 0, NULL, 0);
	free(w), free(deq), free(tok), free(want), free(got);
}

static void case_dequant(uint32_t type, uint32_t rows, uint32_t cols, int f16)
{
	struct tc c = { 0 };
	float *deq = NULL;
	void *w = tb_weights(type, rows, cols, &deq);
	size_t rb = quant_row_bytes(type, cols), n = (size_t)rows * cols;
	float *got = malloc(n * 4), *want = malloc(n * 4);
	uint16_t *h = malloc(n * 2), *hw = malloc(n * 2);
	void *dw = tb_dput(&c, w, rb * rows), *dy = tb_dnew(&c, n * (f16 ? 2 : 4));
	int rc = 0;
	if (dy)
		rc = f16 ? cuda_dequant_f16(dy, dw, type, rb, rows, cols, tb_stream, TE)
			 : cuda_dequant_f32(dy, dw, type, rb, rows, cols, tb_stream, TE);
	if (rc)
		c.broken = 1, printf("FAIL dequant: %s\n", tb_err);
	double e = INFINITY;
	if (!tb_dget(&c, f16 ? (void *)h : (void *)got, dy, n * (f16 ? 2 : 4))) {
		memcpy(want, deq, n * 4);
		if (f16) { /* compare as floats: NaN halves show */
			llm_f16_row(hw, deq, n);
			for (size_t i = 0; i < n; i++)
				got[i] = llm_f32_from_f16(h[i]), want[i] = llm_f32_from_f16(hw[i]);
		}
		e = tb_relf(got, want, n);
	}
	char d[80];
	snprintf(d, sizeof d, "%s rows=%u cols=%u", quant_name(type), rows, cols);
	tb_report(&c, f16 ? "dequant_f16" : "dequant_f32", d, e, 0, NULL, 0);
	free(w), free(deq), free(got), free(want), free(h), free(hw);
}

static void weight_cases(void)
{
	for (size_t i = 0; i < N_WTYPES; i++) {
		uint32_t t = wtypes[i], odd = is_float_type(t) ? 100 : 256;
		if (tb_want("embed")) {
			case_embed(t, 256, 1, 1.0f);
			case_embed(t, odd, 7, 10.0f);
			case_embed(t, 512, 64, sqrtf(512.0f));
		}
		for (int f16 = 0; f16 < 2; f16++) {
			if (!tb_want(f16 ? "dequant_f16" : "dequant_f32"))
				continue;
			case_dequant(t, 1, 256, f16);
			case_dequant(t, 37, 1024, f16);
			case_dequant(t, 3, odd == 100 ? 96 : 512, f16);
		}
	}
}

/* ---- matrix products ------------------------------------------------------- */

/* Y (n, rows) = X . W^T in double from the CPU's dequantized rows; *mag
 * gets the sum of the squares of all the individual products w_i x_i. */
static double *ref_product(const float *deq, const float *x, uint32_t rows, uint32_t cols,
			   uint32_t n, double *mag)
{
	double *y = malloc((size_t)n * rows * sizeof *y);
	*mag = 0;
	for (uint32_t t = 0; y && t < n; t++)
		for (uint32_t r = 0; r < rows; r++) {
			double s = 0;
			for (uint32_t i = 0; i < cols; i++) {
				double p = (double)deq[(size_t)r * cols + i] * x[(size_t)t * cols + i];
				s += p;
				*mag += p * p;
			}
			y[(size_t)t * rows + r] = s;
		}
	return y;
}

/* A product's error: |got - want|_2 over the L2 norm of the individual
 * products (mag), not of the result, so that a dot which cancels to near
 * zero does not inflate it: rounding errors scale with the products. */
static double product_err(const float *got, const double *want, const float *wantf, size_t n,
			  double mag)
{
	double num = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i]))
			return INFINITY;
		double d = got[i] - (want ? want[i] : wantf[i]);
		num += d * d;
	}
	return mag > 0 ? sqrt(num / mag) : sqrt(num);
}

/* The CPU engine's product: activations quantized to the dot type first. */
static float *cpu_product(uint32_t type, const uint8_t *w, const float *x, uint32_t rows,
			  uint32_t cols, uint32_t n)
{
	uint32_t dt = quant_dot_type(type);
	size_t rb = quant_row_bytes(type, cols), xb = quant_row_bytes(dt, cols);
	float *y = malloc((size_t)n * rows * sizeof *y);
	uint8_t *xq = malloc(xb);
	for (uint32_t t = 0; y && xq && t < n; t++) {
		quant_quantize_row(dt, x + (size_t)t * cols, xq, cols);
		for (uint32_t r = 0; r < rows; r++)
			y[(size_t)t * rows + r] = quant_vec_dot(type, cols, w + r * rb, xq);
	}
	free(xq);
	return y;
}

/* The last token alone must give its row of the batch bit for bit. */
static int matvec_alone(struct tc *c, const void *dw, uint32_t type, size_t rb, uint32_t rows,
			uint32_t cols, const float *dx, uint32_t n, const float *yfull)
{
	float *dy1 = tb_dnew(c, (size_t)rows * 4), *y1 = malloc((size_t)rows * 4);
	int same = 0;
	if (dy1 && cuda_matvec(dy1, dw, type, rb, rows, cols, dx + (size_t)(n - 1) * cols, 1,
			       tb_stream, TE))
		c->broken = 1, printf("FAIL matvec: %s\n", tb_err);
	if (y1 && !tb_dget(c, y1, dy1, (size_t)rows * 4))
		same = !memcmp(y1, yfull + (size_t)(n - 1) * rows, (size_t)rows * 4);
	free(y1);
	return same;
}

static void case_matvec(uint32_t type, uint32_t rows, uint32_t cols, uint32_t n)
{
	struct tc c = { 0 };
	float *deq = NULL, *x = tb_frand((size_t)n * cols, 1.0f);
	uint8_t *w = tb_weights(type, rows, cols, &deq);
	size_t rb = quant_row_bytes(type, cols), ny = (size_t)n * rows;
	float *got = malloc(ny * 4), *cpu = cpu_product(type, w, x, rows, cols, n);
	double mag, *ref = ref_product(deq, x, rows, cols, n, &mag);
	void *dw = tb_dput(&c, w, rb * rows);
	float *dx = tb_dput(&c, x, (size_t)n * cols * 4), *dy = tb_dnew(&c, ny * 4);
	if (dy && cuda_matvec(dy, dw, type, rb, rows, cols, dx, n, tb_stream, TE))
		c.broken = 1, printf("FAIL matvec: %s\n", tb_err);
	double e = INFINITY, ec = INFINITY, tol_cpu = is_float_type(type) ? 1e-5 : 3e-2;
	int alone = 0;
	if (!tb_dget(&c, got, dy, ny * 4)) {
		e = product_err(got, ref, NULL, ny, mag);
		ec = product_err(got, NULL, cpu, ny, mag);
		alone = matvec_alone(&c, dw, type, rb, rows, cols, dx, n, got);
	}
	char d[80], ex[96];
	snprintf(d, sizeof d, "%s rows=%u cols=%u n=%u", quant_name(type), rows, cols, n);
	snprintf(ex, sizeof ex, "cpu=%.2e(tol %.0e) %s", ec, tol_cpu,
		 alone ? "invariant" : "NOT-BATCH-INVARIANT");
	tb_report(&c, "matvec", d, e, 1e-5, ex, !(ec <= tol_cpu) || !alone);
	free(deq), free(x), free(w), free(got), free(cpu), free(ref);
}

static void case_gemm(uint32_t type, uint32_t rows, uint32_t cols, uint32_t n, size_t budget)
{
	struct tc c = { 0 };
	float *deq = NULL, *x = tb_frand((size_t)n * cols, 1.0f);
	uint8_t *w = tb_weights(type, rows, cols, &deq);
	size_t rb = quant_row_bytes(type, cols), ny = (size_t)n * rows;
	uint32_t tile = cuda_plan_gemm_tile(rows, cols, budget);
	float *got = malloc(ny * 4);
	double mag, *ref = ref_product(deq, x, rows, cols, n, &mag);
	void *dw = tb_dput(&c, w, rb * rows);
	float *dx = tb_dput(&c, x, (size_t)n * cols * 4), *dy = tb_dnew(&c, ny * 4);
	uint16_t *xh = tb_dnew(&c, (size_t)n * cols * 2), *wh = tb_dnew(&c, (size_t)tile * cols * 2);
	if (wh && cuda_gemm(dy, dw, type, rb, rows, cols, dx, n, xh, wh, tile, tb_blas, tb_stream,
			    TE))
		c.broken = 1, printf("FAIL gemm: %s\n", tb_err);
	double e = tb_dget(&c, got, dy, ny * 4) ? INFINITY : product_err(got, ref, NULL, ny, mag);
	char d[80], ex[32];
	snprintf(d, sizeof d, "%s rows=%u cols=%u n=%u", quant_name(type), rows, cols, n);
	snprintf(ex, sizeof ex, "tile_rows=%u", tile);
	tb_report(&c, "gemm", d, e, 2e-3, ex, 0);
	free(deq), free(x), free(w), free(got), free(ref);
}

static void product_cases(void)
{
	static const uint32_t mv[][3] = {
		{ 1, 256, 1 }, { 37, 512, 3 }, { 300, 2048, 9 }, { 64, 8192, 1 },
		{ 129, 256, 64 }, { 7, 768, 512 },
	};
	static const uint32_t gm[][3] = {
		{ 1, 256, 1 }, { 64, 256, 65 }, { 300, 512, 512 }, { 257, 1024, 100 },
	};
	for (size_t i = 0; i < N_WTYPES; i++) {
		uint32_t t = wtypes[i];
		for (size_t k = 0; tb_want("matvec") && k < sizeof mv / sizeof mv[0]; k++)
			if (!tb_small || mv[k][2] < 512)
				case_matvec(t, mv[k][0], mv[k][1], mv[k][2]);
		if (tb_want("matvec") && is_float_type(t))
			case_matvec(t, 5, 77, 2);
		for (size_t k = 0; tb_want("gemm") && k < sizeof gm / sizeof gm[0]; k++)
			if (!tb_small || gm[k][2] < 512)
				case_gemm(t, gm[k][0], gm[k][1], gm[k][2],
				  k == 3 ? (size_t)64 * 1024 * 2 : (size_t)64 << 20);
	}
}

/* ---- row operations ------------------------------------------------------- */

static void case_rmsnorm(uint32_t n, uint32_t dim, float amp, int inplace)
{
	struct tc c = { 0 };
	size_t nx = (size_t)n * dim;
	float *x = tb_frand(nx, amp), *w = tb_frand(dim, 0.1f), *want = malloc(nx * 4);
	float *got = malloc(nx * 4), eps = 1e-6f;
	for (uint32_t i = 0; i < dim; i++)
		w[i] += 1.0f;
	for (uint32_t t = 0; t < n; t++)
		llm_rmsnorm(want + (size_t)t * dim, x + (size_t)t * dim, w, dim, eps);
	float *dx = tb_dput(&c, x, nx * 4), *dw = tb_dput(&c, w, dim * 4);
	float *dy = inplace ? dx : tb_dnew(&c, nx * 4);
	if (dy && cuda_rmsnorm(dy, dx, dw, n, dim, eps, tb_stream, TE))
		c.broken = 1, printf("FAIL rmsnorm: %s\n", tb_err);
	double e = tb_dget(&c, got, dy, nx * 4) ? INFINITY : tb_relf(got, want, nx);
	char d[80];
	snprintf(d, sizeof d, "n=%u dim=%u amp=%g%s", n, dim, amp, inplace ? " in-place" : "");
	tb_report(&c, "rmsnorm", d, e, 1e-6, NULL, 0);
	free(x), free(w), free(want), free(got);
}

static void case_qk_norm(uint32_t n, uint32_t heads, uint32_t hd)
{
	struct tc c = { 0 };
	size_t nx = (size_t)n * heads * hd;
	float *x = tb_frand(nx, 3.0f), *w = tb_frand(hd, 0.1f), *want = malloc(nx * 4);
	float *got = malloc(nx * 4), eps = 1e-6f;
	for (uint32_t i = 0; i < hd; i++)
		w[i] += 1.0f;
	for (size_t r = 0; r < (size_t)n * heads; r++)
		llm_rmsnorm(want + r * hd, x + r * hd, w, hd, eps);
	float *dx = tb_dput(&c, x, nx * 4), *dw = tb_dput(&c, w, hd * 4);
	if (dw && cuda_qk_norm(dx, dw, n, heads, hd, eps, tb_stream, TE))
		c.broken = 1, printf("FAIL qk_norm: %s\n", tb_err);
	double e = tb_dget(&c, got, dx, nx * 4) ? INFINITY : tb_relf(got, want, nx);
	char d[80];
	snprintf(d, sizeof d, "n=%u heads=%u head_dim=%u", n, heads, hd);
	tb_report(&c, "qk_norm", d, e, 1e-6, NULL, 0);
	free(x), free(w), free(want), free(got);
}

static void case_rope_table(uint32_t n, uint32_t n_rot, float base, float scale, int freqs)
{
	struct tc c = { 0 };
	uint32_t *pos = malloc(n * 4);
	float *ff = tb_frand(n_rot / 2, 1.0f), *want = malloc((size_t)n * n_rot * 4);
	float *got = malloc((size_t)n * n_rot * 4);
	for (uint32_t i = 0; i < n_rot / 2; i++)
		ff[i] = 4.5f + 3.5f * ff[i]; /* 1 .. 8, as Llama 3.1's factors */
	for (uint32_t t = 0; t < n; t++) {
		pos[t] = t == 0 ? 0 : tb_irand(131072);
		llm_rope_table(want + (size_t)t * n_rot, n_rot, pos[t], base, scale, freqs ? ff : NULL);
	}
	uint32_t *dp = tb_dput(&c, pos, n * 4);
	float *dff = tb_dput(&c, ff, n_rot / 2 * 4), *dcs = tb_dnew(&c, (size_t)n * n_rot * 4);
	if (dcs && cuda_rope_table(dcs, dp, n, n_rot, base, scale, freqs ? dff : NULL, tb_stream, TE))
		c.broken = 1, printf("FAIL rope_table: %s\n", tb_err);
	double e = tb_dget(&c, got, dcs, (size_t)n * n_rot * 4) ? INFINITY
		   : tb_relf(got, want, (size_t)n * n_rot);
	char d[80];
	snprintf(d, sizeof d, "n=%u n_rot=%u base=%g scale=%g%s", n, n_rot, base, scale,
		 freqs ? " freqs" : "");
	tb_report(&c, "rope_table", d, e, 1e-6, NULL, 0);
	free(pos), free(ff), free(want), free(got);
}

static void case_rope(uint32_t n, uint32_t heads, uint32_t hd, uint32_t n_rot, int mode)
{
	struct tc c = { 0 };
	size_t nx = (size_t)n * heads * hd;
	float *x = tb_frand(nx, 2.0f), *cs = malloc((size_t)n * n_rot * 4);
	float *want = malloc(nx * 4), *got = malloc(nx * 4);
	memcpy(want, x, nx * 4);
	for (uint32_t t = 0; t < n; t++) {
		llm_rope_table(cs + (size_t)t * n_rot, n_rot, tb_irand(40000), 10000.0f, 1.0f, NULL);
		for (uint32_t h = 0; h < heads; h++)
			llm_rope_apply(want + ((size_t)t * heads + h) * hd, cs + (size_t)t * n_rot, n_rot,
				       (enum llm_rope_mode)mode);
	}
	float *dx = tb_dput(&c, x, nx * 4), *dcs = tb_dput(&c, cs, (size_t)n * n_rot * 4);
	if (dcs && cuda_rope(dx, dcs, n, heads, hd, n_rot, mode, tb_stream, TE))
		c.broken = 1, printf("FAIL rope: %s\n", tb_err);
	double e = tb_dget(&c, got, dx, nx * 4) ? INFINITY : tb_relf(got, want, nx);
	char d[80];
	snprintf(d, sizeof d, "n=%u heads=%u head_dim=%u n_rot=%u %s", n, heads, hd, n_rot,
		 mode ? "neox" : "norm");
	tb_report(&c, "rope", d, e, 1e-6, NULL, 0);
	free(x), free(cs), free(want), free(got);
}

static void case_glu(uint32_t n, uint32_t dim, int act)
{
	struct tc c = { 0 };
	size_t nx = (size_t)n * dim;
	float *g = tb_frand(nx, 8.0f), *u = tb_frand(nx, 2.0f), *want = malloc(nx * 4);
	float *got = malloc(nx * 4);
	memcpy(want, g, nx * 4);
	for (uint32_t t = 0; t < n; t++)
		llm_glu(want + (size_t)t * dim, u + (size_t)t * dim, dim, (enum llm_act)act);
	float *dg = tb_dput(&c, g, nx * 4), *du = tb_dput(&c, u, nx * 4);
	if (du && cuda_glu(dg, du, n, dim, act, tb_stream, TE))
		c.broken = 1, printf("FAIL glu: %s\n", tb_err);
	double e = tb_dget(&c, got, dg, nx * 4) ? INFINITY : tb_relf(got, want, nx);
	char d[80];
	snprintf(d, sizeof d, "n=%u dim=%u %s", n, dim, act ? "gelu_tanh" : "silu");
	tb_report(&c, "glu", d, e, 1e-5, NULL, 0);
	free(g), free(u), free(want), free(got);
}

static void case_add(size_t n, uint32_t bias_dim)
{
	struct tc c = { 0 };
	uint32_t rows = bias_dim ? (uint32_t)(n / bias_dim) : 0;
	float *x = tb_frand(n, 3.0f), *y = tb_frand(bias_dim ? bias_dim : n, 3.0f);
	float *want = malloc(n * 4), *got = malloc(n * 4);
	for (size_t i = 0; i < n; i++)
		want[i] = x[i] + y[bias_dim ? i % bias_dim : i];
	float *dx = tb_dput(&c, x, n * 4), *dy = tb_dput(&c, y, (bias_dim ? bias_dim : n) * 4);
	int rc = !dy ? 0 : bias_dim ? cuda_add_bias(dx, dy, rows, bias_dim, tb_stream, TE)
			   : cuda_add(dx, dy, n, tb_stream, TE);
	if (rc)
		c.broken = 1, printf("FAIL add: %s\n", tb_err);
	double e = tb_dget(&c, got, dx, n * 4) ? INFINITY : tb_relf(got, want, n);
	char d[80];
	if (bias_dim)
		snprintf(d, sizeof d, "n=%u dim=%u", rows, bias_dim);
	else
		snprintf(d, sizeof d, "n=%zu", n);
	tb_report(&c, bias_dim ? "add_bias" : "add", d, e, 0, NULL, 0);
	free(x), free(y), free(want), free(got);
}

static void case_gather(uint32_t total, uint32_t n_rows, uint32_t dim)
{
	struct tc c = { 0 };
	float *x = tb_frand((size_t)total * dim, 1.0f), *want = malloc((size_t)n_rows * dim * 4);
	float *got = malloc((size_t)n_rows * dim * 4);
	uint32_t *rows = malloc(n_rows * 4);
	for (uint32_t r = 0; r < n_rows; r++) {
		rows[r] = tb_irand(total);
		memcpy(want + (size_t)r * dim, x + (size_t)rows[r] * dim, dim * 4);
	}
	float *dx = tb_dput(&c, x, (size_t)total * dim * 4), *dy = tb_dnew(&c, (size_t)n_rows * dim * 4);
	uint32_t *dr = tb_dput(&c, rows, n_rows * 4);
	if (dr && cuda_gather_rows(dy, dx, dr, n_rows, dim, tb_stream, TE))
		c.broken = 1, printf("FAIL gather_rows: %s\n", tb_err);
	double e = tb_dget(&c, got, dy, (size_t)n_rows * dim * 4) ? INFINITY
		   : tb_relf(got, want, (size_t)n_rows * dim);
	char d[80];
	snprintf(d, sizeof d, "rows %u of %u dim=%u", n_rows, total, dim);
	tb_report(&c, "gather_rows", d, e, 0, NULL, 0);
	free(x), free(want), free(got), free(rows);
}

static void row_cases(void)
{
	static const uint32_t nd[][2] = {
		{ 1, 1 }, { 3, 7 }, { 65, 64 }, { 9, 576 }, { 512, 2048 }, { 2, 8192 },
	};
	for (size_t i = 0; i < sizeof nd / sizeof nd[0]; i++) {
		if (tb_want("rmsnorm"))
			case_rmsnorm(nd[i][0], nd[i][1], i % 2 ? 100.0f : 1.0f, i == 3);
		for (int act = 0; tb_want("glu") && act < 2; act++)
			case_glu(nd[i][0], nd[i][1] == 7 ? 77 : nd[i][1], act);
	}
	if (tb_want("qk_norm")) {
		case_qk_norm(1, 4, 64);
		case_qk_norm(9, 8, 128);
		case_qk_norm(33, 4, 256);
	}
	if (tb_want("rope_table")) {
		case_rope_table(1, 64, 10000.0f, 1.0f, 0);
		case_rope_table(17, 128, 500000.0f, 1.0f, 1);
		case_rope_table(300, 256, 1e6f, 0.25f, 0);
		case_rope_table(64, 32, 10000.0f, 1.0f, 0);
	}
	for (int mode = 0; tb_want("rope") && mode < 2; mode++) {
		case_rope(1, 4, 64, 64, mode);
		case_rope(65, 9, 64, 64, mode);
		case_rope(7, 4, 256, 256, mode);
		case_rope(33, 8, 128, 64, mode); /* partial rotation */
	}
	if (tb_want("add")) {
		case_add(1, 0);
		case_add(1000, 0);
		case_add((1u << 20) + 3, 0);
	}
	if (tb_want("add_bias")) {
		case_add(64, 64);
		case_add((size_t)33 * 896, 896);
	}
	if (tb_want("gather_rows")) {
		case_gather(1, 1, 64);
		case_gather(300, 17, 2048);
		case_gather(512, 512, 576);
	}
}

/* ---- KV cache and attention ------------------------------------------------- */

/* A host copy of a cache of layout L, random: halves or floats in [-1, 1). */
static void *random_cache(const struct cuda_kv_layout *L)
{
	size_t n = L->bytes / L->elem_bytes;
	void *kv = malloc(L->bytes);
	for (size_t i = 0; kv && i < n; i++) {
		float v = tb_urand(1.0f);
		if (L->elem_bytes == 2)
			((uint16_t *)kv)[i] = llm_f16_from_f32(v);
		else
			((float *)kv)[i] = v;
	}
	return kv;
}

static void put_row(const struct cuda_kv_layout *L, void *kv, size_t off, const float *x,
		    uint32_t dim)
{
	if (L->elem_bytes == 2)
		llm_f16_row((uint16_t *)kv + off, x, dim);
	else
		memcpy((float *)kv + off, x, dim * 4);
}

static void case_kv_write(uint32_t elem, uint32_t kdim, uint32_t vdim, uint32_t n)
{
	struct tc c = { 0 };
	struct cuda_kv_layout L;
	uint32_t n_blocks = 12, bs = 16, layer = tb_irand(3);
	if (cuda_plan_kv(&L, elem, 3, bs, n_blocks, kdim, vdim, TE)) {
		c.broken = 1, printf("FAIL kv_write: %s\n", tb_err);
		tb_report(&c, "kv_write", "layout", INFINITY, 0, NULL, 1);
		return;
	}
	uint8_t *kv = random_cache(&L), *got = malloc(L.bytes);
	float *k = tb_frand((size_t)n * kdim, 2.0f), *v = tb_frand((size_t)n * vdim, 2.0f);
	uint32_t *slots = malloc(n * 4), total = n_blocks * bs;
	void *dkv = tb_dput(&c, kv, L.bytes);
	uint32_t *all = malloc(total * 4);
	for (uint32_t i = 0; i < total; i++)
		all[i] = i;
	for (uint32_t t = 0; t < n; t++) { /* distinct slots: a partial shuffle */
		uint32_t j = t + tb_irand(total - t), tmp = all[t];
		all[t] = all[j], all[j] = tmp;
		slots[t] = all[t];
	}
	free(all);
	for (uint32_t t = 0; t < n; t++) {
		put_row(&L, kv, cuda_plan_k_off(&L, layer, slots[t]), k + (size_t)t * kdim, kdim);
		put_row(&L, kv, cuda_plan_v_off(&L, layer, slots[t]), v + (size_t)t * vdim, vdim);
	}
	float *dk = tb_dput(&c, k, (size_t)n * kdim * 4), *dv = tb_dput(&c, v, (size_t)n * vdim * 4);
	uint32_t *ds = tb_dput(&c, slots, n * 4);
	if (ds && cuda_kv_write(dkv, &L, layer, dk, dv, ds, n, tb_stream, TE))
		c.broken = 1, printf("FAIL kv_write: %s\n", tb_err);
	size_t bad = 0;
	if (!tb_dget(&c, got, dkv, L.bytes))
		for (size_t i = 0; i < L.bytes; i++)
			bad += got[i] != kv[i];
	char d[80], ex[64];
	snprintf(d, sizeof d, "f%u kdim=%u vdim=%u n=%u layer=%u", elem * 8, kdim, vdim, n, layer);
	snprintf(ex, sizeof ex, "(%zu cache bytes differ)", bad);
	tb_report(&c, "kv_write", d, (double)bad, 0, ex, 0);
	free(kv), free(got), free(k), free(v), free(slots);
}

/* An attention problem: sequences with block tables in one cache, entries
 * (sequence, position) whose K/V are already in it. */
struct att {
	uint32_t n_head, n_head_kv, hd, elem, window, n, n_seq;
	struct cuda_kv_layout L;
	uint8_t *kv;
	uint32_t *tab, *tab_off, *pos, *seq_of, *tab_of_seq;
	float *q;
};

static float kv_at(const struct att *a, size_t off)
{
	return a->elem == 2 ? llm_f32_from_f16(((uint16_t *)a->kv)[off]) : ((float *)a->kv)[off];
}

/* out (n_head, hd) of entry t in double, the CPU's semantics (cpu/attn.c). */
static void ref_attn(const struct att *a, uint32_t t, float scale, double *out)
{
	uint32_t pos = a->pos[t], grp = a->n_head / a->n_head_kv, bs = a->L.block_size;
	uint32_t lo = a->window && pos + 1 > a->window ? pos + 1 - a->window : 0;
	const uint32_t *tab = a->tab + a->tab_off[t];
	double *p = malloc((pos + 1) * sizeof *p);
	for (uint32_t h = 0; h < a->n_head; h++) {
		uint32_t g = h / grp;
		const float *q = a->q + ((size_t)t * a->n_head + h) * a->hd;
		double mx = -INFINITY, sum = 0;
		for (uint32_t j = lo; j <= pos; j++) {
			size_t ko = cuda_plan_k_off(&a->L, 1, cuda_plan_slot(&a->L, tab[j / bs], j));
			double s = 0;
			for (uint32_t d = 0; d < a->hd; d++)
				s += (double)q[d] * kv_at(a, ko + g * a->hd + d);
			p[j] = s * scale;
			mx = fmax(mx, p[j]);
		}
		for (uint32_t j = lo; j <= pos; j++)
			sum += p[j] = exp(p[j] - mx);
		for (uint32_t d = 0; d < a->hd; d++)
			out[h * a->hd + d] = 0;
		for (uint32_t j = lo; j <= pos; j++) {
			double pj = p[j] / sum;
			if (a->elem == 2)
				pj = llm_f32_from_f16(llm_f16_from_f32((float)pj));
			size_t vo = cuda_plan_v_off(&a->L, 1, cuda_plan_slot(&a->L, tab[j / bs], j));
			for (uint32_t d = 0; d < a->hd; d++)
				out[h * a->hd + d] += pj * kv_at(a, vo + g * a->hd + d);
		}
	}
	free(p);
}

/* Sequence lengths lens[s]; entries: decode (each sequence's last
 * position) or prefill (all of sequence 0's positions from p0). */
static int att_build(struct att *a, const uint32_t *lens, uint32_t p0, int prefill)
{
	uint32_t bs = 16, nb = 0, need[8];
	for (uint32_t s = 0; s < a->n_seq; s++)
		need[s] = (lens[s] + bs - 1) / bs, nb += need[s];
	uint32_t n_blocks = nb + 3, *perm = malloc(n_blocks * 4);
	if (cuda_plan_kv(&a->L, a->elem, 2, bs, n_blocks, (size_t)a->n_head_kv * a->hd,
			 (size_t)a->n_head_kv * a->hd, TE))
		return free(perm), -1;
	for (uint32_t i = 0; i < n_blocks; i++)
		perm[i] = i;
	for (uint32_t i = n_blocks - 1; i > 0; i--) { /* tables in shuffled blocks */
		uint32_t j = tb_irand(i + 1), tmp = perm[i];
		perm[i] = perm[j], perm[j] = tmp;
	}
	a->tab = perm;
	a->tab_of_seq = malloc(a->n_seq * 4);
	for (uint32_t s = 0, o = 0; s < a->n_seq; o += need[s], s++)
		a->tab_of_seq[s] = o;
	a->n = prefill ? lens[0] - p0 : a->n_seq;
	a->pos = malloc(a->n * 4), a->tab_off = malloc(a->n * 4), a->seq_of = malloc(a->n * 4);
	for (uint32_t t = 0; t < a->n; t++) {
		a->seq_of[t] = prefill ? 0 : t;
		a->pos[t] = prefill ? p0 + t : lens[t] - 1;
		a->tab_off[t] = a->tab_of_seq[a->seq_of[t]];
	}
	a->kv = random_cache(&a->L);
	a->q = tb_frand((size_t)a->n * a->n_head * a->hd, 1.0f);
	if (a->elem == 2)
		llm_f16_round(a->q, (size_t)a->n * a->n_head * a->hd);
	return a->kv && a->q ? 0 : -1;
}

static void att_free(struct att *a)
{
	free(a->kv), free(a->tab), free(a->tab_off), free(a->pos), free(a->seq_of);
	free(a->tab_of_seq), free(a->q);
}

static uint32_t att_max_ctx(const struct att *a)
{
	uint32_t m = 0;
	for (uint32_t t = 0; t < a->n; t++)
		m = a->pos[t] + 1 > m ? a->pos[t] + 1 : m;
	return m;
}

/* Run cuda_attn for rows (NULL: all); out host (n_rows, n_head, hd). n_seg
 * > 1: split over the sequence in that many segments (flash-decoding). */
static int att_run(struct tc *c, const struct att *a, void *const dev[5], const uint32_t *rows,
		   uint32_t n_rows, uint32_t n_seg, float *out)
{
	size_t on = (size_t)n_rows * a->n_head * a->hd;
	float *dout = tb_dnew(c, on * 4), *part = NULL;
	uint32_t *drows = rows ? tb_dput(c, rows, n_rows * 4) : NULL;
	if (n_seg > 1)
		part = tb_dnew(c, cuda_plan_attn_part(n_rows, a->n_head, a->n_head_kv, a->hd, n_seg) * 4);
	struct cuda_attn_args x = {
		.out = dout, .q = dev[0], .kv = dev[1], .L = a->L, .layer = 1, .pos = dev[2],
		.tab = dev[3], .tab_off = dev[4], .rows = drows, .n = a->n, .n_rows = n_rows,
		.n_head = a->n_head, .n_head_kv = a->n_head_kv, .head_dim_k = a->hd,
		.head_dim_v = a->hd, .window = a->window, .scale = 1.0f / sqrtf((float)a->hd),
		.round_p = a->elem == 2, .part = part, .n_seg = part ? n_seg : 0,
	};
	if (dout && (!rows || drows) && (n_seg <= 1 || part) && cuda_attn(&x, tb_stream, TE))
		c->broken = 1, printf("FAIL attn: %s\n", tb_err);
	return tb_dget(c, out, dout, on * 4);
}

/* Split over the sequence, an entry's result must not depend on n_seg:
 * the backend takes n_seg from the batch's longest context, so a longer
 * neighbour raises it. Runs with segs and segs + 2 segments must agree
 * exactly (== : the sign of a zero may differ, cuda-ops.h says), and an
 * entry whose context fits one segment must equal the unsplit run (whole),
 * so batch invariance holds across the switch. */
static int split_equal(struct tc *c, const struct att *a, void *const dev[5], uint32_t segs,
		       const float *whole, size_t on)
{
	float *s1 = malloc(on * 4), *s2 = malloc(on * 4);
	size_t per = on / a->n;
	segs = segs < 2 ? 2 : segs;
	int same = s1 && s2 && !att_run(c, a, dev, NULL, a->n, segs, s1) &&
		   !att_run(c, a, dev, NULL, a->n, segs + 2, s2);
	for (size_t i = 0; same && i < on; i++) {
		int one_seg = a->pos[i / per] + 1 <= CUDA_ATTN_SEG;
		same = s1[i] == s2[i] && (!one_seg || s1[i] == whole[i]);
		if (!same && getenv("TB_DEBUG"))
			printf("split differs: entry %zu (pos %u) elem %zu: %a (%u segs) %a (%u) "
			       "%a (unsplit)\n", i / per, a->pos[i / per], i % per, s1[i], segs,
			       s2[i], segs + 2, whole[i]);
	}
	free(s1);
	free(s2);
	return same;
}

static void case_attn(uint32_t n_head, uint32_t n_head_kv, uint32_t hd, uint32_t elem,
		      uint32_t window, const uint32_t *lens, uint32_t n_seq, uint32_t p0,
		      int prefill)
{
	struct tc c = { 0 };
	struct att a = { .n_head = n_head, .n_head_kv = n_head_kv, .hd = hd, .elem = elem,
			 .window = window, .n_seq = n_seq };
	char d[96], ex[64];
	snprintf(d, sizeof d, "%s h=%u/%u hd=%u f%u win=%u n=%u len0=%u", prefill ? "prefill" :
		 "decode", n_head, n_head_kv, hd, elem * 8, window, prefill ? lens[0] - p0 : n_seq,
		 lens[0]);
	if (cuda_plan_attn(n_head, n_head_kv, hd, hd, TE) || att_build(&a, lens, p0, prefill)) {
		c.broken = 1, printf("FAIL attn: %s\n", tb_err);
		tb_report(&c, "attn", d, INFINITY, 2e-3, NULL, 1);
		return att_free(&a);
	}
	size_t on = (size_t)a.n * n_head * hd, tabn = a.L.n_blocks;
	void *dev[5] = {
		tb_dput(&c, a.q, on * 4), tb_dput(&c, a.kv, a.L.bytes), tb_dput(&c, a.pos, a.n * 4),
		tb_dput(&c, a.tab, tabn * 4), tb_dput(&c, a.tab_off, a.n * 4),
	};
	float *got = malloc(on * 4), *one = malloc((size_t)n_head * hd * 4);
	double *ref = malloc(on * sizeof *ref), e = INFINITY;
	uint32_t last = a.n - 1, segs = cuda_plan_attn_segs(att_max_ctx(&a));
	int alone = 0, split_same = 1;
	if (!att_run(&c, &a, dev, NULL, a.n, 1, got)) {
		for (uint32_t t = 0; t < a.n; t++)
			ref_attn(&a, t, 1.0f / sqrtf((float)hd), ref + (size_t)t * n_head * hd);
		e = tb_rel(got, ref, on);
		alone = !att_run(&c, &a, dev, &last, 1, 1, one) &&
			!memcmp(one, got + (size_t)last * n_head * hd, (size_t)n_head * hd * 4);
		split_same = split_equal(&c, &a, dev, segs, got, on);
	}
	snprintf(ex, sizeof ex, "%s split=%s", alone ? "invariant" : "NOT-BATCH-INVARIANT",
		 split_same ? "same" : "DIFFERS");
	tb_report(&c, "attn", d, e, elem == 2 ? 2e-3 : 1e-5, ex, !alone || !split_same);
	free(got), free(one), free(ref);
	att_free(&a);
}

static void attn_cases(void)
{
	static const uint32_t heads[][3] = { /* n_head, n_head_kv, head_dim */
		{ 4, 2, 64 }, { 32, 8, 64 }, { 9, 3, 64 }, { 14, 2, 64 }, { 4, 1, 256 },
	};
	static const uint32_t dec[] = { 1, 17, 300, 1000 }, pre1[] = { 64 }, pre2[] = { 148 };
	static const uint32_t big[] = { 512 };
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		const uint32_t *h = heads[i];
		for (uint32_t elem = 2; elem <= 4; elem += 2) {
			if (tb_small && i > 2)
				break;
			case_attn(h[0], h[1], h[2], elem, 0, dec, 4, 0, 0);
			case_attn(h[0], h[1], h[2], elem, 16, dec, 4, 0, 0);
			case_attn(h[0], h[1], h[2], elem, 0, pre1, 1, 0, 1);
			case_attn(h[0], h[1], h[2], elem, i == 4 ? 16 : 0, pre2, 1, 100, 1);
		}
	}
	if (!tb_small)
		case_attn(32, 8, 64, 2, 0, big, 1, 0, 1);
}

/* ---- fused ops: bit for bit their parts ------------------------------------ */

/* Bytes of a and b (n) that differ. */
static size_t diff_bytes(const void *a, const void *b, size_t n)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += ((const uint8_t *)a)[i] != ((const uint8_t *)b)[i];
	return bad;
}

/* cuda_add_rmsnorm against cuda_rmsnorm (post), cuda_add, cuda_rmsnorm run
 * on the device one after the other: x and xn bitwise the same (err: the
 * bytes that differ, tolerance 0); and against the CPU (llm_rmsnorm, a
 * float add) within rmsnorm's 1e-6. */
static void case_add_rmsnorm(uint32_t n, uint32_t dim, int post, int norm)
{
	struct tc c = { 0 };
	size_t nx = (size_t)n * dim, nb = nx * 4;
	float *x = tb_frand(nx, 3.0f), *y = tb_frand(nx, post ? 50.0f : 3.0f);
	float *pw = tb_frand(dim, 0.1f), *w = tb_frand(dim, 0.1f), eps = 1e-6f;
	float *want = malloc(nb), *wantn = malloc(nb), *tmp = malloc(dim * 4);
	float *got = malloc(nb), *gotn = malloc(nb), *ref = malloc(nb), *refn = malloc(nb);
	for (uint32_t i = 0; i < dim; i++)
		pw[i] += 1.0f, w[i] += 1.0f;
	for (uint32_t t = 0; t < n; t++) { /* the CPU */
		const float *yr = y + (size_t)t * dim;
		if (post)
			llm_rmsnorm(tmp, yr, pw, dim, eps);
		for (uint32_t i = 0; i < dim; i++)
			want[(size_t)t * dim + i] = x[(size_t)t * dim + i] + (post ? tmp[i] : yr[i]);
		llm_rmsnorm(wantn + (size_t)t * dim, want + (size_t)t * dim, w, dim, eps);
	}
	float *dx = tb_dput(&c, x, nb), *dy = tb_dput(&c, y, nb), *dxn = tb_dnew(&c, nb);
	float *dx2 = tb_dput(&c, x, nb), *dy2 = tb_dput(&c, y, nb), *dxn2 = tb_dnew(&c, nb);
	float *dpw = tb_dput(&c, pw, dim * 4), *dw = tb_dput(&c, w, dim * 4);
	if (dw && (cuda_add_rmsnorm(dx, dy, post ? dpw : NULL, dxn, norm ? dw : NULL, n, dim, eps,
				    tb_stream, TE) ||
		   (post && cuda_rmsnorm(dy2, dy2, dpw, n, dim, eps, tb_stream, TE)) ||
		   cuda_add(dx2, dy2, nx, tb_stream, TE) ||
		   (norm && cuda_rmsnorm(dxn2, dx2, dw, n, dim, eps, tb_stream, TE))))
		c.broken = 1, printf("FAIL add_rmsnorm: %s\n", tb_err);
	size_t bad = 0;
	double e_cpu = INFINITY;
	if (!tb_dget(&c, got, dx, nb) && !tb_dget(&c, ref, dx2, nb) && !tb_dget(&c, gotn, dxn, nb) &&
	    !tb_dget(&c, refn, dxn2, nb)) {
		bad = diff_bytes(got, ref, nb) + (norm ? diff_bytes(gotn, refn, nb) : 0);
		e_cpu = tb_relf(got, want, nx);
		double en = norm ? tb_relf(gotn, wantn, nx) : 0;
		e_cpu = en > e_cpu ? en : e_cpu;
	}
	char d[80], ex[80];
	snprintf(d, sizeof d, "n=%u dim=%u%s%s", n, dim, post ? " post" : "", norm ? " norm" : "");
	snprintf(ex, sizeof ex, "(bytes differing from the unfused ops; vs CPU %.2e)", e_cpu);
	tb_report(&c, "add_rmsnorm", d, (double)bad, 0, ex, !(e_cpu <= 1e-6));
	free(x), free(y), free(pw), free(w), free(want), free(wantn), free(tmp);
	free(got), free(gotn), free(ref), free(refn);
}

/* A rope_kv problem: q, k, v, the table, slots and a random cache. */
struct rkv_case {
	struct cuda_rope_kv_args a;
	float *q, *k, *v, *cs;
	uint32_t *slots;
	uint8_t *kv;
};

static int rkv_make(struct rkv_case *r, uint32_t elem, uint32_t n_head, uint32_t n_kv,
		    uint32_t hd, uint32_t n_rot, uint32_t n)
{
	struct cuda_rope_kv_args *a = &r->a;
	uint32_t total = 8 * 16;
	if (cuda_plan_kv(&a->L, elem, 3, 16, 8, n_kv * hd, n_kv * hd, TE))
		return -1;
	r->q = tb_frand((size_t)n * n_head * hd, 2.0f);
	r->k = tb_frand((size_t)n * n_kv * hd, 2.0f);
	r->v = tb_frand((size_t)n * n_kv * hd, 2.0f);
	r->cs = malloc((size_t)n * n_rot * 4);
	r->slots = malloc(n * 4);
	for (uint32_t t = 0; t < n; t++) {
		llm_rope_table(r->cs + (size_t)t * n_rot, n_rot, tb_irand(40000), 10000.0f, 1.0f, NULL);
		r->slots[t] = (t * 37 + 5) % total; /* distinct for n <= total (37 odd) */
	}
	r->kv = random_cache(&a->L);
	a->layer = tb_irand(3), a->n = n, a->n_head = n_head, a->head_dim = hd, a->n_rot = n_rot;
	return 0;
}

/* Upload a copy of r's inputs into a (device pointers). */
static int rkv_upload(struct tc *c, const struct rkv_case *r, struct cuda_rope_kv_args *a)
{
	*a = r->a;
	size_t nq = (size_t)a->n * a->n_head * a->head_dim, nk = (size_t)a->n * a->L.kdim;
	a->q = tb_dput(c, r->q, nq * 4), a->k = tb_dput(c, r->k, nk * 4);
	a->v = tb_dput(c, r->v, nk * 4), a->cs = tb_dput(c, r->cs, (size_t)a->n * a->n_rot * 4);
	a->slots = tb_dput(c, r->slots, a->n * 4), a->kv = tb_dput(c, r->kv, a->L.bytes);
	return a->kv ? 0 : -1;
}

/* cuda_rope_kv against cuda_rope (q, k), cuda_scale_round, cuda_kv_write
 * on the device: q, k and the whole cache bitwise the same (err: bytes that
 * differ, tolerance 0). */
static void case_rope_kv(uint32_t elem, uint32_t n_head, uint32_t n_kv, uint32_t hd,
			 uint32_t n_rot, int mode, uint32_t n, float scale, int round)
{
	struct tc c = { 0 };
	struct rkv_case r;
	struct cuda_rope_kv_args a, b;
	char d[96];
	snprintf(d, sizeof d, "f%u heads=%u/%u hd=%u rot=%u %s n=%u%s", elem * 8, n_head, n_kv, hd,
		 n_rot, mode ? "neox" : "norm", n, round ? " round" : "");
	if (rkv_make(&r, elem, n_head, n_kv, hd, n_rot, n)) {
		c.broken = 1, printf("FAIL rope_kv: %s\n", tb_err);
		tb_report(&c, "rope_kv", d, INFINITY, 0, NULL, 1);
		return;
	}
	r.a.mode = mode, r.a.scale_q = scale, r.a.round_q = round;
	size_t nq = (size_t)n * n_head * hd * 4, nk = (size_t)n * r.a.L.kdim * 4;
	uint8_t *h[6] = { malloc(nq), malloc(nk), malloc(r.a.L.bytes), malloc(nq), malloc(nk),
			  malloc(r.a.L.bytes) };
	if (!rkv_upload(&c, &r, &a) && !rkv_upload(&c, &r, &b) &&
	    (cuda_rope_kv(&a, tb_stream, TE) ||
	     cuda_rope(b.q, b.cs, n, n_head, hd, n_rot, mode, tb_stream, TE) ||
	     cuda_rope(b.k, b.cs, n, n_kv, hd, n_rot, mode, tb_stream, TE) ||
	     ((round || scale != 1.0f) &&
	      cuda_scale_round(b.q, (size_t)n * n_head * hd, scale, round, tb_stream, TE)) ||
	     cuda_kv_write(b.kv, &b.L, b.layer, b.k, b.v, b.slots, n, tb_stream, TE)))
		c.broken = 1, printf("FAIL rope_kv: %s\n", tb_err);
	size_t bad = 0;
	if (!c.broken && !tb_dget(&c, h[0], a.q, nq) && !tb_dget(&c, h[1], a.k, nk) &&
	    !tb_dget(&c, h[2], a.kv, a.L.bytes) && !tb_dget(&c, h[3], b.q, nq) &&
	    !tb_dget(&c, h[4], b.k, nk) && !tb_dget(&c, h[5], b.kv, a.L.bytes))
		bad = diff_bytes(h[0], h[3], nq) + diff_bytes(h[1], h[4], nk) +
		      diff_bytes(h[2], h[5], a.L.bytes);
	tb_report(&c, "rope_kv", d, c.broken ? INFINITY : (double)bad, 0,
		  "(bytes of q, k, cache differing from the unfused ops)", 0);
	for (int i = 0; i < 6; i++)
		free(h[i]);
	free(r.q), free(r.k), free(r.v), free(r.cs), free(r.slots), free(r.kv);
}

/* cuda_matvec_multi against cuda_matvec of each part (then cuda_add_bias,
 * with biases: the middle part has none, as a model may leave one out):
 * bitwise (err: the bytes that differ, tolerance 0). */
static void case_matvec_multi(uint32_t type, uint32_t cols, uint32_t n, uint32_t np,
			      const uint32_t *rows, int biased)
{
	struct tc c = { 0 };
	float *deq, *x = tb_frand((size_t)n * cols, 1.0f), *ys[3], *yr[3], *hb[3] = { 0 };
	const float *db[3] = { 0 };
	const void *dw[3];
	void *hw[3];
	size_t rb = quant_row_bytes(type, cols), bad = 0;
	float *dx = tb_dput(&c, x, (size_t)n * cols * 4);
	for (uint32_t m = 0; m < np; m++) {
		hw[m] = tb_weights(type, rows[m], cols, &deq);
		free(deq);
		dw[m] = tb_dput(&c, hw[m], (size_t)rows[m] * rb);
		ys[m] = tb_dnew(&c, (size_t)n * rows[m] * 4);
		yr[m] = tb_dnew(&c, (size_t)n * rows[m] * 4);
		if (biased && m != 1) {
			hb[m] = tb_frand(rows[m], 1.0f);
			db[m] = tb_dput(&c, hb[m], (size_t)rows[m] * 4);
		}
	}
	if (!c.broken && cuda_matvec_multi(ys, dw, biased ? db : NULL, rows, np, type, rb, cols, dx,
					   n, tb_stream, TE))
		c.broken = 1, printf("FAIL matvec_multi: %s\n", tb_err);
	for (uint32_t m = 0; m < np && !c.broken; m++)
		if (cuda_matvec(yr[m], dw[m], type, rb, rows[m], cols, dx, n, tb_stream, TE) ||
		    cuda_add_bias(yr[m], db[m], n, rows[m], tb_stream, TE))
			c.broken = 1, printf("FAIL matvec_multi: %s\n", tb_err);
	for (uint32_t m = 0; m < np && !c.broken; m++) {
		size_t nb = (size_t)n * rows[m] * 4;
		float *a = malloc(nb), *b = malloc(nb);
		if (!tb_dget(&c, a, ys[m], nb) && !tb_dget(&c, b, yr[m], nb))
			bad += diff_bytes(a, b, nb);
		free(a), free(b);
	}
	char d[96];
	snprintf(d, sizeof d, "%s cols=%u n=%u rows=%u/%u/%u%s", quant_name(type), cols, n, rows[0],
		 np > 1 ? rows[1] : 0, np > 2 ? rows[2] : 0, biased ? " bias" : "");
	tb_report(&c, "matvec_multi", d, c.broken ? INFINITY : (double)bad, 0,
		  "(bytes differing from cuda_matvec of each part)", 0);
	for (uint32_t m = 0; m < np; m++)
		free(hw[m]), free(hb[m]);
	free(x);
}

static void fused_cases(void)
{
	static const uint32_t qkv[3] = { 2048, 512, 512 }, odd[3] = { 7, 33, 1 }, gu[2] = { 96, 96 };
	for (size_t i = 0; tb_want("matvec_multi") && i < N_WTYPES; i++) {
		uint32_t t = wtypes[i], kq = t >= Q_Q4_K && t <= Q_Q6_K;
		case_matvec_multi(t, 2048, 1, 3, qkv, 0);               /* llama 1B q/k/v, decode */
		case_matvec_multi(t, kq ? 256 : 64, 5, 3, odd, 0);      /* odd row counts */
		case_matvec_multi(t, kq ? 512 : 576, tb_small ? 9 : 64, 2, gu, 0); /* gate/up, a tile */
		case_matvec_multi(t, kq ? 1024 : 896, 3, 3, qkv, 1);   /* qwen2-like biased q/k/v */
	}

	static const uint32_t nd[][2] = { { 1, 1 }, { 3, 7 }, { 1, 576 }, { 65, 2048 }, { 512, 640 } };
	for (size_t i = 0; tb_want("add_rmsnorm") && i < sizeof nd / sizeof nd[0]; i++)
		for (int k = 0; k < 4; k++)
			case_add_rmsnorm(nd[i][0], nd[i][1], k & 1, k >> 1);
	if (!tb_want("rope_kv"))
		return;
	case_rope_kv(2, 32, 8, 64, 64, 0, 1, 0.125f, 1);    /* llama 1B decode */
	case_rope_kv(4, 32, 8, 64, 64, 0, 1, 1.0f, 0);      /* F32 cache */
	case_rope_kv(2, 9, 3, 64, 64, 1, 64, 1.0f, 1);      /* SmolLM2, neox, a tile */
	case_rope_kv(2, 14, 2, 64, 64, 1, 5, 1.0f, 1);      /* Qwen2 0.5B */
	case_rope_kv(2, 4, 1, 256, 256, 1, 3, 0.0625f, 1);  /* Gemma 3, scale in q */
	case_rope_kv(4, 8, 8, 128, 64, 0, 33, 1.0f, 0);     /* partial rotation */
	if (!tb_small)
		case_rope_kv(2, 32, 8, 64, 64, 0, 128, 0.125f, 1); /* a full cache */
}

void tb_run_all(void)
{
	conv_cases();
	weight_cases();
	product_cases();
	row_cases();
	if (tb_want("kv_write")) {
		case_kv_write(2, 128, 128, 1);
		case_kv_write(2, 256, 256, 5);
		case_kv_write(4, 64, 64, 64);
		case_kv_write(2, 512, 512, 150);
	}
	if (tb_want("attn"))
		attn_cases();
	fused_cases();
}
