/*
 * test-pack.c — the packed GEMM of the 32-element types (pack.h): repacking
 * round trip, the reference against exact arithmetic, every SIMD level
 * against the reference bit for bit (the batch-invariance guard), the
 * PACK_A8 quantizer, and the size checks.
 *
 * Matrices are random (rows 8..64 in groups of 8, cols 32..2048) with edge
 * -128), and activation blocks that are large (1e5; past amax ~ 8e6 the
 * fp16 scale overflows, in llama.cpp too), small (1e-4: d an fp16
 * subnormal), tiny (1e-30: d rounds to fp16 0 while q does not), all
 * negative, all zero, or exact .5 ties.
 *
 * Tolerance of the reference against exact arithmetic (test_ref_is_exact):
 * the integer block sums are exact, so the only errors are float roundings:
 * dw * dx and one per fmaf, each at most 2^-24 relative to a partial sum
 * bounded by S = sum_b (sum_k |dw q_k| |dx x_k| + |mw| |sx|) (the min
 * term multiplies the block's stored sx, pack.h).
 * So |ref - exact| <= (nb + 4) * 2^-24 * S (nb blocks), plus 1e-35 for
 * subnormal products of the tiny case.
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

#include "llm/quant/pack-impl.h"
#include "llm/quant/pack.h"
#include "llm/quant/quant.h"

static const uint32_t types[] = { Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0 };
#define N_TYPES (sizeof types / sizeof types[0])

static int has_min(uint32_t t)
{
	return t == Q_Q4_1 || t == Q_Q5_1;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	assert_non_null(p);
	return p;
}

/* ---- weights ------------------------------------------------------------- */

/* One ggml block: random quants, then maybe an edge case. */
static void random_block(uint32_t t, uint8_t *b)
{
	uint32_t bb = quant_block_bytes(t), hb = has_min(t) ? 4 : 2;
	for (uint32_t i = 0; i < bb; i++)
		b[i] = (uint8_t)test_rnd();
	switch (test_rnd() % 8) {
	case 0: /* every quant 0 (Q8_0: 0) */
		memset(b + hb, 0, bb - hb);
		break;
	case 1: /* every quant at its top (Q8_0: -128, the most negative) */
		memset(b + hb, t == Q_Q8_0 ? 0x80 : 0xFF, bb - hb);
		break;
	}
	uint16_t d = f32_to_fp16(test_rnd() % 8 == 0 ? 0.0f : test_gauss() * 0.05f);
	uint16_t m = f32_to_fp16(test_rnd() % 8 == 0 ? 0.0f : test_gauss() * 0.3f);
	if (test_rnd() % 16 == 0)
		d = f32_to_fp16(test_rnd() % 2 ? 4000.0f : -4000.0f); /* large scale */
	memcpy(b, &d, 2);
	if (has_min(t))
		memcpy(b + 2, &m, 2);
}

static uint8_t *random_matrix(uint32_t t, int64_t rows, int64_t cols)
{
	size_t rb = quant_row_bytes(t, (uint64_t)cols);
	uint8_t *w = xmalloc(rb * (size_t)rows);
	for (int64_t i = 0; i < rows * (cols / 32); i++)
		random_block(t, w + (size_t)i * quant_block_bytes(t));
	return w;
}

/* A ggml block's quants with the type's offset taken off (min types: as
 * stored) and its scales as floats: an independent decoder. */
static void decode_block(uint32_t t, const uint8_t *b, int *q, float *d, float *m)
{
	uint16_t h;
	memcpy(&h, b, 2);
	*d = fp16_to_f32(h);
	*m = 0;
	if (t == Q_Q8_0) {
		for (int k = 0; k < 32; k++)
			q[k] = (int8_t)b[2 + k];
		return;
	}
	if (has_min(t)) {
		memcpy(&h, b + 2, 2);
		*m = fp16_to_f32(h);
	}
	const uint8_t *p = b + (has_min(t) ? 4 : 2);
	uint32_t qh = 0;
	if (t == Q_Q5_0 || t == Q_Q5_1) {
		qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		p += 4;
	}
	int off = t == Q_Q4_0 ? 8 : t == Q_Q5_0 ? 16 : 0;
	for (int k = 0; k < 32; k++) {
		int v = k < 16 ? p[k] & 0xF : p[k - 16] >> 4;
		q[k] = (v | (int)((qh >> k) & 1) << 4) - off;
	}
}

/* ---- activations --------------------------------------------------------- */

/* n floats, each block of 32 one of the edge kinds (or plain gauss) */
static void random_act(float *x, int64_t n, int zero_row)
{
	for (int64_t b = 0; b < n / 32; b++) {
		float *v = x + b * 32;
		int kind = zero_row ? 4 : (int)(test_rnd() % 10);
		for (int j = 0; j < 32; j++) {
			float g = test_gauss();
			switch (kind) {
			case 1: v[j] = g * 1e5f; break;
			case 6: v[j] = g * 1e-4f; break;
			case 2: v[j] = g * 1e-30f; break;
			case 3: v[j] = -fabsf(g) - 0.25f; break;
			case 4: v[j] = 0.0f; break;
			case 5: /* amax 127 -> d = 1, so x * id keeps the .5 */
				v[j] = (float)((int)(test_rnd() % 254) - 127) + 0.5f;
				break;
			default: v[j] = g * 3.0f;
			}
		}
		if (kind == 5)
			v[test_rnd() % 32] = test_rnd() % 2 ? 127.0f : -127.0f;
	}
}

/* nx activation rows of n, PACK_A8 by the reference quantizer; every
 * fourth row all zero */
static uint8_t *random_a8(int64_t nx, int64_t n, size_t *xs)
{
	float *f = xmalloc((size_t)n * sizeof *f);
	*xs = pack_act_row_bytes(PACK_A8, (uint64_t)n);
	uint8_t *x = xmalloc(*xs * (size_t)nx);
	for (int64_t t = 0; t < nx; t++) {
		random_act(f, n, t % 4 == 3);
		pack_ref_quantize_a8(f, x + (size_t)t * *xs, n);
	}
	free(f);
	return x;
}

/* ---- helpers ------------------------------------------------------------- */

static int64_t random_cols(void)
{
	return 32 * (1 + (int64_t)(test_rnd() % 64));
}

static int64_t random_rows(void)
{
	return 8 * (1 + (int64_t)(test_rnd() % 8));
}

static uint8_t *packed(uint32_t t, const uint8_t *w, int64_t rows, int64_t cols)
{
	size_t pb = pack_matrix_bytes(t, (uint64_t)rows, (uint64_t)cols);
	assert_true(pb > 0);
	uint8_t *p = xmalloc(pb);
	memset(p, 0xEE, pb);
	pack_matrix(t, w, (uint64_t)cols, 0, (uint64_t)rows, p);
	return p;
}

/* ---- tests --------------------------------------------------------------- */

static void test_sizes(void **state)
{
	for (size_t i = 0; i < N_TYPES; i++) {
		uint32_t t = types[i];
		assert_true(pack_supported(t));
		assert_int_equal(pack_act_type(t), PACK_A8);
		assert_int_equal(pack_matrix_bytes(t, 16, 64), quant_row_bytes(t, 64) * 16);
		assert_int_equal(pack_matrix_bytes(t, 12, 64), 0);
		assert_int_equal(pack_matrix_bytes(t, 16, 48), 0);
		assert_int_equal(pack_matrix_bytes(t, 0, 64), 0);
		assert_int_equal(pack_matrix_bytes(t, 1ull << 60, 1ull << 40), 0);
		assert_int_equal(pack_matrix_bytes(t, 8, 32ull << 58), 0);
	}
	assert_int_equal(pack_matrix_bytes(Q_F32, 16, 64), 0);
	assert_int_equal(pack_matrix_bytes(Q_Q8_1, 16, 64), 0);
	assert_int_equal(pack_act_row_bytes(PACK_A8, 64), 2 * sizeof(pk_a8));
	assert_int_equal(pack_act_row_bytes(PACK_A8, 40), 0);
}

/* (a) pack_dequant_row of the packed matrix == the original row's */
static void test_unrow(void **state)
{
	for (size_t i = 0; i < N_TYPES; i++)
		for (int rep = 0; rep < 4; rep++) {
			uint32_t t = types[i];
			int64_t rows = random_rows(), cols = random_cols();
			size_t rb = quant_row_bytes(t, (uint64_t)cols);
			uint8_t *w = random_matrix(t, rows, cols), *p = packed(t, w, rows, cols);
			float *a = xmalloc((size_t)cols * sizeof *a), *b = xmalloc((size_t)cols * sizeof *b);
			for (int64_t r = 0; r < rows; r++) {
				quant_dequant_row_ref(t, w + (size_t)r * rb, a, cols);
				pack_dequant_row(t, p, (uint64_t)cols, (uint64_t)r, b);
				assert_memory_equal(a, b, (size_t)cols * sizeof *a);
			}
			free(w), free(p), free(a), free(b);
		}
}

/* exact dot of ggml row w with activation row x, and its magnitude S */
static double exact_dot(uint32_t t, const uint8_t *w, const pk_a8 *x, int64_t nb, double *mag)
{
	double s = 0;
	*mag = 0;
	for (int64_t b = 0; b < nb; b++) {
		int q[32];
		float d, m;
		decode_block(t, w + (size_t)b * quant_block_bytes(t), q, &d, &m);
		for (int k = 0; k < 32; k++) {
			double xv = (double)x[b].d * x[b].qs[k];
			s += (double)d * q[k] * xv;
			*mag += fabs((double)d * q[k]) * fabs(xv);
		}
		s += (double)m * x[b].s;
		*mag += fabs((double)m) * fabs((double)x[b].s);
	}
	return s;
}

/* (b) the reference against exact arithmetic, within the bound above */
static void test_ref_is_exact(void **state)
{
	for (size_t i = 0; i < N_TYPES; i++)
		for (int rep = 0; rep < 3; rep++) {
			uint32_t t = types[i];
			int64_t rows = random_rows(), cols = random_cols(), nx = 5, nb = cols / 32;
			size_t rb = quant_row_bytes(t, (uint64_t)cols), xs;
			uint8_t *w = random_matrix(t, rows, cols), *p = packed(t, w, rows, cols);
			uint8_t *x = random_a8(nx, cols, &xs);
			float *y = xmalloc((size_t)(rows * nx) * sizeof *y);
			pack_gemm_ref(t, cols, p, 0, rows, x, xs, nx, y, (size_t)rows);
			for (int64_t k = 0; k < nx; k++)
				for (int64_t r = 0; r < rows; r++) {
					double mag, e = exact_dot(t, w + (size_t)r * rb,
								  (const pk_a8 *)(x + (size_t)k * xs), nb, &mag);
					double tol = (double)(nb + 4) * 0x1p-24 * mag + 1e-35;
					double got = y[k * rows + r];
					if (fabs(got - e) > tol)
						fail_msg("%s r=%lld t=%lld: %.9g vs exact %.9g (tol %.3g)",
							 quant_name(t), (long long)r, (long long)k, got, e, tol);
				}
			free(w), free(p), free(x), free(y);
		}
}

/* one (type, matrix, nx, r0, r1) case: every level == the reference */
static void check_levels(uint32_t t, const uint8_t *p, int64_t cols, const uint8_t *x, size_t xs,
			 int64_t nx, int64_t r0, int64_t r1)
{
	size_t ys = (size_t)(r1 - r0) + 3, n = ys * (size_t)nx;
	float *ref = xmalloc(n * sizeof *ref), *got = xmalloc(n * sizeof *got);
	memset(ref, 0xA5, n * sizeof *ref);
	pack_gemm_ref(t, cols, p, r0, r1, x, xs, nx, ref, ys);
	const char *name;
	for (int i = 0; (name = quant_impl_available(i)) != NULL; i++) {
		assert_int_equal(quant_set_impl(name), 0);
		memset(got, 0xA5, n * sizeof *got);
		pack_gemm(t, cols, p, r0, r1, x, xs, nx, got, ys);
		if (memcmp(ref, got, n * sizeof *got) != 0) {
			size_t j = 0;
			while (memcmp(&ref[j], &got[j], sizeof *got) == 0)
				j++;
			quant_set_impl(NULL);
			fail_msg("%s %s cols=%lld nx=%lld rows [%lld,%lld): y[t=%zu][%zu] %.9g vs ref %.9g",
				 quant_name(t), name, (long long)cols, (long long)nx, (long long)r0,
				 (long long)r1, j / ys, j % ys, got[j], ref[j]);
		}
	}
	quant_set_impl(NULL);
	free(ref), free(got);
}

/* (c) every SIMD level == the reference, for many token counts and row
 * ranges: what makes a sequence's numbers independent of its batch */
static void test_levels_match_ref(void **state)
{
	static const int64_t nxs[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17 };
	for (size_t i = 0; i < N_TYPES; i++)
		for (int rep = 0; rep < 2; rep++) {
			uint32_t t = types[i];
			int64_t rows = rep ? 64 : random_rows(), cols = random_cols();
			size_t xs;
			uint8_t *w = random_matrix(t, rows, cols), *p = packed(t, w, rows, cols);
			uint8_t *x = random_a8(17, cols, &xs);
			for (size_t j = 0; j < sizeof nxs / sizeof nxs[0]; j++) {
				int64_t g = rows / 8, g0 = (int64_t)(test_rnd() % (uint32_t)g);
				int64_t g1 = g0 + 1 + (int64_t)(test_rnd() % (uint32_t)(g - g0));
				check_levels(t, p, cols, x, xs, nxs[j], 0, rows);
				check_levels(t, p, cols, x, xs, nxs[j], 8 * g0, 8 * g1);
			}
			/* every group count 1..8 (the kernels pair groups, and run
			 * two pairs side by side at nx = 1), from group 0 and 1 */
			for (int64_t g1 = 1; rep && g1 <= 8; g1++)
				for (int64_t g0 = 0; g0 < 2 && g0 < g1; g0++) {
					check_levels(t, p, cols, x, xs, 1, 8 * g0, 8 * g1);
					check_levels(t, p, cols, x, xs, 3, 8 * g0, 8 * g1);
				}
			free(w), free(p), free(x);
		}
}

static float fp16_round(float f)
{
	return fp16_to_f32(f32_to_fp16(f));
}

/* v rounded half to even, written out without the FPU's rounding mode */
static int half_even(float v, int *tie)
{
	float fl = floorf(v), frac = v - fl;
	*tie = frac == 0.5f;
	if (frac > 0.5f || (frac == 0.5f && fmodf(fl, 2.0f) != 0.0f))
		fl += 1.0f;
	return (int)fl;
}

/* one PACK_A8 block against llama.cpp's x86 q8_0 / q8_1 rule (pack.h);
 * returns the number of .5 ties it rounded */
static int check_a8_block(const float *x, const pk_a8 *a)
{
	float amax = 0;
	int32_t sum = 0;
	int ties = 0, tie;
	for (int k = 0; k < 32; k++)
		amax = fmaxf(amax, fabsf(x[k]));
	float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
	for (int k = 0; k < 32; k++) {
		int q = half_even(x[k] * id, &tie);
		assert_int_equal(a->qs[k], q);
		ties += tie;
		sum += q;
	}
	assert_int_equal(a->sum, sum);
	assert_true(a->d == fp16_round(d));
	assert_true(a->s == fp16_round(d * (float)sum));
	return ties;
}

/* the reference quantizer is llama.cpp's x86 q8_0 / q8_1: id = 127 / amax,
 * ties to even, fp16 d and s (with s from the unrounded d) */
static void test_a8_ref_is_llama_q8(void **state)
{
	int64_t n = 32 * 40;
	float *f = xmalloc((size_t)n * sizeof *f);
	pk_a8 *a = xmalloc(pack_act_row_bytes(PACK_A8, (uint64_t)n));
	int ties = 0;
	for (int rep = 0; rep < 8; rep++) {
		random_act(f, n, rep == 7);
		pack_ref_quantize_a8(f, a, n);
		for (int64_t b = 0; b < n / 32; b++)
			ties += check_a8_block(f + 32 * b, &a[b]);
	}
	assert_true(ties > 0); /* the tie rule was exercised */
	free(f), free(a);
}

/* (d) every level's PACK_A8 quantizer == the reference, ties and zeros included */
static void test_a8_levels_match_ref(void **state)
{
	int64_t n = 32 * 64;
	size_t xb = pack_act_row_bytes(PACK_A8, (uint64_t)n);
	float *f = xmalloc((size_t)n * sizeof *f);
	uint8_t *ref = xmalloc(xb), *got = xmalloc(xb);
	const char *name;
	for (int rep = 0; rep < 6; rep++) {
		random_act(f, n, rep == 5);
		pack_ref_quantize_a8(f, ref, n);
		for (int i = 0; (name = quant_impl_available(i)) != NULL; i++) {
			assert_int_equal(quant_set_impl(name), 0);
			memset(got, 0x5A, xb);
			pack_quantize_act(PACK_A8, f, got, n);
			if (memcmp(ref, got, xb) != 0) {
				quant_set_impl(NULL);
				fail_msg("PACK_A8 quantizer %s differs from the reference", name);
			}
		}
		quant_set_impl(NULL);
	}
	free(f), free(ref), free(got);
}

int main(void)
{
	test_rng_seed(0x2545F4914F6CDD1Dull);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_unrow),
		cmocka_unit_test(test_ref_is_exact),
		cmocka_unit_test(test_levels_match_ref),
		cmocka_unit_test(test_a8_ref_is_llama_q8),
		cmocka_unit_test(test_a8_levels_match_ref),
	};
	printf("pack levels: %s", quant_impl_available(0));
	for (int i = 1; quant_impl_available(i); i++)
		printf(" %s", quant_impl_available(i));
	printf("\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
