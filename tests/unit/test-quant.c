/*
 * test-quant.c — quant kernels: type arithmetic, the reference dots against
 * "dequantize both sides and multiply", every dispatched (SIMD) path against
 * the reference, and exact round trips on blocks built to be representable.
 *
 * Tolerances (|fast - ref| <= tol * sum_i |w_i x_i| + 1e-6; ref vs the
 * dequantized dot also allows Q8_1's fp16 block sum, see min_term_slack):
 *   quantized dots 1e-5: integer block sums are exact on both sides, only
 *     the float accumulation of per-block partials differs in order;
 *   F32/F16/BF16 dots 1e-4: float lanes with FMA vs a double-precision
 *     reference, n up to 4096;
 *   dequant and quantize: exact (same float operations on both sides).
 * Dequant against the gguf Python package is in tests/ref/test_quant.py.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper-rng.h"

#include "llm/quant/quant-impl.h"
#include "llm/quant/quant.h"

static const uint32_t weight_types[] = {
	Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0, Q_Q4_K, Q_Q5_K, Q_Q6_K,
};
#define N_WT (sizeof weight_types / sizeof weight_types[0])

static void fill_gauss(float *x, int64_t n, float scale)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = test_gauss() * scale;
}

/* Byte offsets of the fp16 scale fields of each block type (-1 ends). */
static const int *half_fields(uint32_t t)
{
	static const int d[] = { 0, -1 }, dm[] = { 0, 2, -1 }, q6[] = { 208, -1 }, none[] = { -1 };
	switch (t) {
	case Q_Q4_0: case Q_Q5_0: case Q_Q8_0: return d;
	case Q_Q4_1: case Q_Q5_1: case Q_Q4_K: case Q_Q5_K: return dm;
	case Q_Q6_K: return q6;
	default: return none;
	}
}

/* A row of random blocks: every quant bit pattern, finite scales. Float
 * types get random finite values instead. */
static void *random_row(uint32_t t, int64_t n)
{
	size_t nb = quant_row_bytes(t, (uint64_t)n);
	uint8_t *p = malloc(nb);
	assert_non_null(p);
	if (t == Q_F32 || t == Q_F16 || t == Q_BF16) {
		float *x = malloc((size_t)n * sizeof *x);
		fill_gauss(x, n, 1.0f);
		quant_quantize_row_ref(t, x, p, n);
		free(x);
		return p;
	}
	for (size_t i = 0; i < nb; i++)
		p[i] = (uint8_t)test_rnd();
	uint32_t bb = quant_block_bytes(t);
	for (size_t b = 0; b < nb / bb; b++)
		for (const int *o = half_fields(t); *o >= 0; o++) {
			uint16_t h = f32_to_fp16(test_gauss() * 0.05f);
			memcpy(p + b * bb + *o, &h, 2);
		}
	return p;
}

/* sum_i |w_i x_i| in double, from both sides dequantized */
static double dot_magnitude(uint32_t wt, const void *w, const void *xq, int64_t n, double *exact)
{
	float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
	quant_dequant_row_ref(wt, w, a, n);
	quant_dequant_row_ref(quant_dot_type(wt), xq, b, n);
	double mag = 0, s = 0;
	for (int64_t i = 0; i < n; i++) {
		mag += fabs((double)a[i] * b[i]);
		s += (double)a[i] * b[i];
	}
	free(a);
	free(b);
	*exact = s;
	return mag;
}

static void *quantized_activations(uint32_t wt, int64_t n)
{
	uint32_t dt = quant_dot_type(wt);
	float *x = malloc((size_t)n * sizeof *x);
	void *xq = malloc(quant_row_bytes(dt, (uint64_t)n));
	fill_gauss(x, n, 2.0f);
	quant_quantize_row_ref(dt, x, xq, n);
	free(x);
	return xq;
}

static int is_float(uint32_t t)
{
	return t == Q_F32 || t == Q_F16 || t == Q_BF16;
}

static void test_row_bytes(void **state)
{
	assert_int_equal(quant_row_bytes(Q_Q4_0, 64), 36);
	assert_int_equal(quant_row_bytes(Q_Q4_0, 33), 0);
	assert_int_equal(quant_row_bytes(Q_Q4_1, 576), 18 * 20);
	assert_int_equal(quant_row_bytes(Q_Q8_0, 32), 34);
	assert_int_equal(quant_row_bytes(Q_Q4_K, 256), 144);
	assert_int_equal(quant_row_bytes(Q_Q4_K, 640), 0);
	assert_int_equal(quant_row_bytes(Q_Q5_K, 512), 352);
	assert_int_equal(quant_row_bytes(Q_Q6_K, 2048), 8 * 210);
	assert_int_equal(quant_row_bytes(Q_Q8_K, 256), 292);
	assert_int_equal(quant_row_bytes(Q_F32, 7), 28);
	assert_int_equal(quant_row_bytes(Q_BF16, 3), 6);
	assert_int_equal(quant_row_bytes(99, 32), 0);
	assert_int_equal(quant_row_bytes(Q_F32, UINT64_MAX / 2), 0); /* overflow */
	assert_int_equal(quant_block_elems(Q_Q5_0), 32);
	assert_int_equal(quant_block_bytes(Q_Q5_0), 22);
	assert_int_equal(quant_block_elems(Q_Q2_K), 256);
	assert_int_equal(quant_block_elems(5), 0); /* removed Q4_2 */
	assert_string_equal(quant_name(Q_Q6_K), "Q6_K");
	assert_string_equal(quant_name(5), "?");
	assert_int_equal(quant_supported(Q_Q2_K), 0);
	for (size_t i = 0; i < N_WT; i++)
		assert_true(quant_supported(weight_types[i]));
	assert_int_equal(quant_dot_type(Q_Q4_K), Q_Q8_K);
	assert_int_equal(quant_dot_type(Q_Q6_K), Q_Q8_K);
	assert_int_equal(quant_dot_type(Q_Q4_1), Q_Q8_1);
	assert_int_equal(quant_dot_type(Q_Q5_1), Q_Q8_1);
	assert_int_equal(quant_dot_type(Q_Q8_0), Q_Q8_0);
	assert_int_equal(quant_row_bytes(Q_Q8_1, 64), 72);
	assert_int_equal(quant_dot_type(Q_Q5_0), Q_Q8_0);
	assert_int_equal(quant_dot_type(Q_BF16), Q_F32);
}

/* Q4_1/Q5_1 dots use the Q8_1 block sum s = fp16(sum(q) * d) with d
 * unrounded, while the dequantized activations use fp16(d): the two
 * roundings let the dot differ by up to |m * s| * 2^-10 per block. */
static double min_term_slack(uint32_t t, const void *w, const void *xq, int64_t n)
{
	if (t != Q_Q4_1 && t != Q_Q5_1)
		return 0;
	const blk_q8_1 *x = xq;
	size_t bb = quant_block_bytes(t);
	double slack = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		uint16_t m;
		memcpy(&m, (const uint8_t *)w + i * bb + 2, 2);
		slack += fabs((double)fp16_to_f32(m) * fp16_to_f32(x[i].s)) * 0x1p-10;
	}
	return slack;
}

/* The reference dot (integer sums per block) equals the dot of the two
 * dequantized rows. */
static void test_ref_dot_is_dequant_dot(void **state)
{
	const int64_t n = 1024;
	for (size_t i = 0; i < N_WT; i++) {
		uint32_t t = weight_types[i];
		void *w = random_row(t, n), *xq = quantized_activations(t, n);
		double exact, mag = dot_magnitude(t, w, xq, n, &exact);
		double got = quant_vec_dot_ref(t, n, w, xq);
		if (fabs(got - exact) > 1e-5 * mag + min_term_slack(t, w, xq, n) + 1e-6)
			fail_msg("%s: ref dot %.9g, dequantized dot %.9g", quant_name(t), got, exact);
		free(w);
		free(xq);
	}
}

static void check_fast_dot(uint32_t t, int64_t n)
{
	void *w = random_row(t, n), *xq = quantized_activations(t, n);
	double exact, mag = dot_magnitude(t, w, xq, n, &exact);
	float ref = quant_vec_dot_ref(t, n, w, xq);
	float fast = quant_vec_dot(t, n, w, xq);
	double tol = (is_float(t) ? 1e-4 : 1e-5) * mag + 1e-6;
	if (fabs((double)fast - ref) > tol)
		fail_msg("%s n=%lld (%s): fast %.9g, ref %.9g, tol %.3g", quant_name(t), (long long)n,
			 quant_impl_name(), fast, ref, tol);
	free(w);
	free(xq);
}

/* Run fn once under every SIMD implementation this CPU has, then restore
 * the best. On a CPU without AVX2 there is nothing to compare. */
static void for_each_fast(void (*fn)(void))
{
	const char *name;
	for (int i = 1; (name = quant_impl_available(i)) != NULL; i++) {
		assert_int_equal(quant_set_impl(name), 0);
		assert_string_equal(quant_impl_name(), name);
		fn();
	}
	assert_int_equal(quant_set_impl(NULL), 0);
}

static void fast_dot_matches_ref(void)
{
	static const int64_t sizes[] = { 256, 512, 768, 2048, 4096 };
	for (size_t i = 0; i < N_WT; i++)
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
			for (int rep = 0; rep < 4; rep++)
				check_fast_dot(weight_types[i], sizes[s]);
	/* odd lengths where the type allows them: tails of SIMD loops */
	static const int64_t odd[] = { 1, 7, 31, 33, 100 };
	for (size_t s = 0; s < sizeof odd / sizeof odd[0]; s++) {
		check_fast_dot(Q_F32, odd[s]);
		check_fast_dot(Q_F16, odd[s]);
		check_fast_dot(Q_BF16, odd[s]);
	}
	check_fast_dot(Q_Q4_1, 32);
	check_fast_dot(Q_Q8_0, 96);
	check_fast_dot(Q_Q5_0, 160);
}

static void test_fast_dot_matches_ref(void **state)
{
	for_each_fast(fast_dot_matches_ref);
}

/* vec_dot_n over nx rows equals vec_dot row by row, bit for bit, for every
 * batch size (groups of 4 plus each remainder) and under the reference. */
static void check_dot_n(uint32_t t, int64_t n, int nx)
{
	uint32_t dt = quant_dot_type(t);
	size_t xrb = quant_row_bytes(dt, (uint64_t)n), stride = xrb + 40;
	void *w = random_row(t, n);
	uint8_t *xs = malloc(stride * (size_t)nx);
	float y[3 * 20];
	for (int k = 0; k < nx; k++) {
		void *xq = quantized_activations(t, n);
		memcpy(xs + (size_t)k * stride, xq, xrb);
		free(xq);
	}
	quant_vec_dot_n(t, n, w, xs, stride, nx, y, 3);
	for (int k = 0; k < nx; k++) {
		float one = quant_vec_dot(t, n, w, xs + (size_t)k * stride);
		if (memcmp(&one, &y[3 * k], sizeof one) != 0)
			fail_msg("%s nx=%d row %d (%s): dot_n %.9g, dot %.9g", quant_name(t), nx, k,
				 quant_impl_name(), y[3 * k], one);
	}
	free(w);
	free(xs);
}

static void dot_n_is_batch_invariant(void)
{
	for (size_t i = 0; i < N_WT; i++)
		for (int nx = 1; nx <= 9; nx++)
			check_dot_n(weight_types[i], 512, nx);
}

static void test_dot_n_is_batch_invariant(void **state)
{
	quant_force_ref(1);
	dot_n_is_batch_invariant();
	for_each_fast(dot_n_is_batch_invariant);
}

/* vec_dot_mn over nw weight rows x nx activation rows equals vec_dot per
 * pair, bit for bit, for every block shape and remainder on both sides
 * (rows and tokens at odd strides, outputs interleaved). */
static void check_dot_mn(uint32_t t, int64_t n, int nw, int nx)
{
	uint32_t dt = quant_dot_type(t);
	size_t xrb = quant_row_bytes(dt, (uint64_t)n), xst = xrb + 40;
	size_t rb = quant_row_bytes(t, (uint64_t)n), wst = rb + 24;
	uint8_t *w = malloc(wst * (size_t)nw), *xs = malloc(xst * (size_t)nx);
	float y[11 * 11];
	for (int r = 0; r < nw; r++) {
		void *row = random_row(t, n);
		memcpy(w + (size_t)r * wst, row, rb);
		free(row);
	}
	for (int k = 0; k < nx; k++) {
		void *xq = quantized_activations(t, n);
		memcpy(xs + (size_t)k * xst, xq, xrb);
		free(xq);
	}
	quant_vec_dot_mn(t, n, w, wst, nw, xs, xst, nx, y, 1, 11);
	for (int r = 0; r < nw; r++)
		for (int k = 0; k < nx; k++) {
			float one = quant_vec_dot(t, n, w + (size_t)r * wst, xs + (size_t)k * xst);
			if (memcmp(&one, &y[11 * k + r], sizeof one) != 0)
				fail_msg("%s nw=%d nx=%d (%d,%d) (%s): dot_mn %.9g, dot %.9g",
					 quant_name(t), nw, nx, r, k, quant_impl_name(),
					 y[11 * k + r], one);
		}
	free(w);
	free(xs);
}

static void dot_mn_is_batch_invariant(void)
{
	for (size_t i = 0; i < N_WT; i++)
		for (int nw = 1; nw <= 9; nw += 2)
			for (int nx = 1; nx <= 9; nx++)
				check_dot_mn(weight_types[i], 256, nw, nx);
}

static void test_dot_mn_is_batch_invariant(void **state)
{
	quant_force_ref(1);
	dot_mn_is_batch_invariant();
	for_each_fast(dot_mn_is_batch_invariant);
}

/* Every SIMD level computes the same integers and the same float operations
 * in the same order, so a result does not depend on the CPU generation. */
static void test_simd_levels_agree(void **state)
{
	const char *a = quant_impl_available(1), *b = quant_impl_available(2);
	if (!a || !b) {
		printf("only %s here: nothing to compare\n", a ? a : "ref");
		return;
	}
	for (size_t i = 0; i < N_WT; i++) {
		uint32_t t = weight_types[i];
		void *w = random_row(t, 2048), *xq = quantized_activations(t, 2048);
		quant_set_impl(a);
		float ya = quant_vec_dot(t, 2048, w, xq);
		quant_set_impl(b);
		float yb = quant_vec_dot(t, 2048, w, xq);
		if (memcmp(&ya, &yb, sizeof ya) != 0)
			fail_msg("%s: %s %.9g, %s %.9g", quant_name(t), a, ya, b, yb);
		free(w);
		free(xq);
	}
	quant_set_impl(NULL);
}

static void fast_dequant_matches_ref(void)
{
	const int64_t n = 2048;
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
	for (size_t i = 0; i < N_WT; i++) {
		uint32_t t = weight_types[i];
		void *w = random_row(t, n);
		quant_dequant_row_ref(t, w, a, n);
		quant_dequant_row(t, w, b, n);
		for (int64_t j = 0; j < n; j++)
			if (a[j] != b[j])
				fail_msg("%s[%lld]: fast %.9g ref %.9g", quant_name(t), (long long)j, b[j], a[j]);
		free(w);
	}
	free(a);
	free(b);
}

static void test_fast_dequant_matches_ref(void **state)
{
	for_each_fast(fast_dequant_matches_ref);
}

static void check_fast_quantize(uint32_t t, int64_t n)
{
	float *x = malloc((size_t)n * sizeof *x);
	size_t nb = quant_row_bytes(t, (uint64_t)n);
	uint8_t *a = malloc(nb), *b = malloc(nb);
	fill_gauss(x, n, 3.0f);
	x[0] = 0;
	if (n >= 64)
		memset(x + 32, 0, 32 * sizeof *x); /* an all-zero block */
	quant_quantize_row_ref(t, x, a, n);
	quant_quantize_row(t, x, b, n);
	if (memcmp(a, b, nb) != 0)
		fail_msg("%s: fast quantize differs from ref (%s)", quant_name(t), quant_impl_name());
	free(x);
	free(a);
	free(b);
}

/* The activation quantizers must agree bit for bit: a matmul's result must
 * not depend on the CPU it runs on. */
static void fast_quantize_matches_ref(void)
{
	for (int rep = 0; rep < 8; rep++) {
		check_fast_quantize(Q_Q8_0, 1024);
		check_fast_quantize(Q_Q8_1, 1024);
		check_fast_quantize(Q_Q8_K, 1024);
		check_fast_quantize(Q_F16, 100);
		check_fast_quantize(Q_BF16, 100);
	}
}

static void test_fast_quantize_matches_ref(void **state)
{
	for_each_fast(fast_quantize_matches_ref);
}

/* Rows whose values sit exactly on each format's grid come back exactly. */
static void test_exact_roundtrip(void **state)
{
	float x[64], y[64];
	uint8_t buf[256];
	for (int j = 0; j < 64; j++)
		x[j] = (float)(j % 16 - 8) * 0.25f; /* Q4_0: absmax -2 -> d = 0.25 */
	quant_quantize_row_ref(Q_Q4_0, x, buf, 64);
	quant_dequant_row_ref(Q_Q4_0, buf, y, 64);
	assert_memory_equal(x, y, sizeof x);
	for (int j = 0; j < 64; j++)
		x[j] = 1.0f + 0.5f * (float)(j % 16); /* Q4_1: min 1, d 0.5 */
	quant_quantize_row_ref(Q_Q4_1, x, buf, 64);
	quant_dequant_row_ref(Q_Q4_1, buf, y, 64);
	assert_memory_equal(x, y, sizeof x);
	for (int j = 0; j < 64; j++)
		x[j] = (float)(j % 32 - 16) * 0.125f; /* Q5_0: absmax -2 -> d 0.125 */
	quant_quantize_row_ref(Q_Q5_0, x, buf, 64);
	quant_dequant_row_ref(Q_Q5_0, buf, y, 64);
	assert_memory_equal(x, y, sizeof x);
	for (int j = 0; j < 64; j++)
		x[j] = -3.0f + 0.25f * (float)(j % 32); /* Q5_1: min -3, d 0.25 */
	quant_quantize_row_ref(Q_Q5_1, x, buf, 64);
	quant_dequant_row_ref(Q_Q5_1, buf, y, 64);
	assert_memory_equal(x, y, sizeof x);
	for (int j = 0; j < 64; j++)
		x[j] = j % 32 == 0 ? -127.0f : (float)((j * 37) % 255 - 127); /* Q8_0: d 1 */
	quant_quantize_row_ref(Q_Q8_0, x, buf, 64);
	quant_dequant_row_ref(Q_Q8_0, buf, y, 64);
	assert_memory_equal(x, y, sizeof x);
}

/* Q8_K's group sums are what the K-quant dots subtract mins with. */
static void test_q8k_bsums(void **state)
{
	float x[512];
	blk_q8_K b[2];
	fill_gauss(x, 512, 1.0f);
	quant_quantize_row(Q_Q8_K, x, b, 512);
	for (int i = 0; i < 2; i++)
		for (int g = 0; g < 16; g++) {
			int s = 0;
			for (int l = 0; l < 16; l++)
				s += b[i].qs[16 * g + l];
			assert_int_equal(b[i].bsums[g], s);
		}
}

static void test_fp16(void **state)
{
	/* every half converts back to itself (NaNs stay NaN) */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = fp16_to_f32((uint16_t)h);
		if (isnan(f))
			assert_true(isnan(fp16_to_f32(f32_to_fp16(f))));
		else
			assert_int_equal(f32_to_fp16(f), h);
	}
	assert_true(fp16_to_f32(0x3C00) == 1.0f);
	assert_true(fp16_to_f32(0x0001) == 0x1p-24f);
	assert_int_equal(f32_to_fp16(1.0f + 0x1p-11f), 0x3C00); /* tie to even */
	assert_int_equal(f32_to_fp16(65520.0f), 0x7C00);         /* overflow to inf */
	assert_int_equal(f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);   /* tie to even */
}

static void test_impl_selection(void **state)
{
	assert_string_equal(quant_impl_available(0), "ref");
	quant_force_ref(1);
	assert_string_equal(quant_impl_name(), "ref");
	quant_force_ref(0);
	const char *best = quant_impl_name(), *name;
	int i = 0;
	while ((name = quant_impl_available(i + 1)) != NULL)
		i++;
	assert_string_equal(best, quant_impl_available(i));
	assert_int_equal(quant_set_impl("sse9"), -1);
	assert_string_equal(quant_impl_name(), best);
	printf("dispatch: %s (of %d levels)\n", best, i + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_row_bytes),
		cmocka_unit_test(test_fp16),
		cmocka_unit_test(test_ref_dot_is_dequant_dot),
		cmocka_unit_test(test_fast_dot_matches_ref),
		cmocka_unit_test(test_dot_n_is_batch_invariant),
		cmocka_unit_test(test_dot_mn_is_batch_invariant),
		cmocka_unit_test(test_fast_dequant_matches_ref),
		cmocka_unit_test(test_fast_quantize_matches_ref),
		cmocka_unit_test(test_exact_roundtrip),
		cmocka_unit_test(test_q8k_bsums),
		cmocka_unit_test(test_simd_levels_agree),
		cmocka_unit_test(test_impl_selection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
