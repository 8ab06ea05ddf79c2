/*
 * test-pack-k.c — the packed K-quant matrices (Q4_K, Q5_K, Q6_K; pack.h,
 * pack-k.c, pack-x86-k.h) against Q8_K activations:
 *   (a) unpacking a packed row gives quant_dequant_row_ref of the original
 *       row bit for bit (pins the layout and ggml's element order);
 *   (b) pack_gemm_ref is the real dot: against a double-precision sum of
 *       dequantized weights x dequantized activations, and against
 *       quant_vec_dot_ref, within tol = (4 nb + 8) 2^-24 mag, where mag is
 *       the sum over elements of (|d sc q| + |dmin m|) |dx x| (the size of
 *       the terms before any cancellation) and nb the super-blocks per row:
 *       each side rounds each of its <= 2 nb fma/multiply pairs and each
 *       dequantized element a few times, each by <= 2^-24 of mag;
 *   (c) pack_gemm under every implementation this CPU runs equals
 *       pack_gemm_ref bit for bit (memcmp), for many token counts and row
 *       sub-ranges, leaving y outside its rows untouched: the batch
 *       invariance pack.h promises; also every group count 1..9 (the
 *       kernels' pairing of groups and the odd one left over);
 *   (d) sizes: pack_matrix_bytes refuses rows % 8, cols % 256, overflow.
 * Weights: random bytes with random fp16 scales, zero d/dmin, all-maximum
 * quants and scales; activations: random, all-zero, one spike, and rows
 * built of -128/127 only (beyond what the quantizer makes).
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

static const uint32_t ktypes[] = { Q_Q4_K, Q_Q5_K, Q_Q6_K };
#define N_KT (sizeof ktypes / sizeof ktypes[0])
#define MAX_NX 17

enum wmode { W_RANDOM, W_ZERO_SCALE, W_MAX, N_WMODE };

/* byte offsets of d and dmin in a block (-1: none) */
static void half_offsets(uint32_t t, int *d, int *dmin)
{
	*d = t == Q_Q6_K ? (int)offsetof(blk_q6_K, d) : 0;
	*dmin = t == Q_Q6_K ? -1 : 2;
}

static void set_half(uint8_t *blk, int off, float v)
{
	uint16_t h = f32_to_fp16(v);
	if (off >= 0)
		memcpy(blk + off, &h, 2);
}

/* One weight block of mode m. */
static void fill_block(uint32_t t, uint8_t *blk, enum wmode m)
{
	uint32_t bb = quant_block_bytes(t);
	int od, om;
	half_offsets(t, &od, &om);
	for (uint32_t i = 0; i < bb; i++)
		blk[i] = m == W_MAX ? 0xFF : (uint8_t)test_rnd();
	if (m == W_MAX && t == Q_Q6_K) {
		blk_q6_K *b = (blk_q6_K *)blk;
		for (int j = 0; j < 16; j++)
			b->scales[j] = (int8_t)(j % 2 ? 127 : -128);
	}
	float d = m == W_RANDOM ? test_gauss() * 0.05f : m == W_MAX ? 0.5f : 0.0f;
	float dm = m == W_RANDOM ? test_gauss() * 0.05f : m == W_MAX ? 0.25f : 0.0f;
	set_half(blk, od, d);
	set_half(blk, om, dm);
}

struct mat {
	uint32_t t;
	int64_t rows, cols;
	size_t rb;
	uint8_t *w, *packed;
};

static struct mat make_mat(uint32_t t, int64_t rows, int64_t cols, enum wmode m)
{
	struct mat a = { t, rows, cols, quant_row_bytes(t, (uint64_t)cols), NULL, NULL };
	uint32_t bb = quant_block_bytes(t);
	a.w = malloc(a.rb * (size_t)rows);
	assert_non_null(a.w);
	for (size_t b = 0; b < a.rb * (size_t)rows / bb; b++)
		fill_block(t, a.w + b * bb, m);
	size_t pb = pack_matrix_bytes(t, (uint64_t)rows, (uint64_t)cols);
	assert_int_equal(pb, (size_t)(rows / 8) * (size_t)(cols / 256) *
				     pack_types_k[t].bytes);
	a.packed = malloc(pb);
	assert_non_null(a.packed);
	memset(a.packed, 0xA5, pb); /* pack must write every byte it owns */
	/* two halves, as threads would */
	pack_matrix(t, a.w, (uint64_t)cols, 0, (uint64_t)rows / 16 * 8, a.packed);
	pack_matrix(t, a.w, (uint64_t)cols, (uint64_t)rows / 16 * 8, (uint64_t)rows, a.packed);
	return a;
}

static void free_mat(struct mat *a)
{
	free(a->w);
	free(a->packed);
}

/* nx Q8_K activation rows, stride bytes apart (odd padding between) */
struct acts {
	int64_t nx, cols;
	size_t stride;
	uint8_t *x;
};

/* a row of -128/127 with true bsums and scale d: beyond the quantizer */
static void extreme_row(blk_q8_K *b, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++) {
		b[i].d = test_gauss() * 0.1f;
		for (int e = 0; e < QK_K; e++)
			b[i].qs[e] = (int8_t)(test_rnd() % 2 ? 127 : -128);
		if (i % 2)
			memset(b[i].qs, 0x80, 64); /* a run of -128 */
		for (int g = 0; g < 16; g++) {
			int s = 0;
			for (int l = 0; l < 16; l++)
				s += b[i].qs[16 * g + l];
			b[i].bsums[g] = (int16_t)s;
		}
	}
}

/* token k's kind cycles: random, zero, spike, extreme, random, ... */
static struct acts make_acts(int64_t cols, int64_t nx)
{
	struct acts a = { nx, cols, quant_row_bytes(Q_Q8_K, (uint64_t)cols) + 36, NULL };
	float *f = malloc((size_t)cols * sizeof *f);
	a.x = malloc(a.stride * (size_t)nx);
	assert_true(f && a.x);
	for (int64_t k = 0; k < nx; k++) {
		uint8_t *row = a.x + (size_t)k * a.stride;
		int kind = (int)(k % 5);
		if (kind == 3) {
			extreme_row((blk_q8_K *)row, cols / QK_K);
			continue;
		}
		for (int64_t i = 0; i < cols; i++)
			f[i] = kind == 1 ? 0.0f : kind == 2 ? test_gauss() * 1e-3f : test_gauss() * 2.0f;
		if (kind == 2)
			f[test_rnd() % cols] = -300.0f;
		quant_quantize_row(Q_Q8_K, f, row, cols);
	}
	free(f);
	return a;
}

static const void *act_row(const struct acts *a, int64_t k)
{
	return a->x + (size_t)k * a->stride;
}

/* ---- (a) unrow ----------------------------------------------------------- */

static void check_unrow(const struct mat *a)
{
	float *want = malloc((size_t)a->cols * sizeof *want);
	float *got = malloc((size_t)a->cols * sizeof *got);
	for (int64_t r = 0; r < a->rows; r++) {
		quant_dequant_row_ref(a->t, a->w + (size_t)r * a->rb, want, a->cols);
		pack_dequant_row(a->t, a->packed, (uint64_t)a->cols, (uint64_t)r, got);
		if (memcmp(want, got, (size_t)a->cols * sizeof *got) != 0) {
			int64_t i = 0;
			while (i < a->cols && memcmp(&want[i], &got[i], sizeof *got) == 0)
				i++;
			fail_msg("%s %lldx%lld row %lld elem %lld: unrow %.9g, ref %.9g",
				 quant_name(a->t), (long long)a->rows, (long long)a->cols, (long long)r,
				 (long long)i, got[i], want[i]);
		}
	}
	free(want);
	free(got);
}

/* random shapes: rows 8..64, cols 256..2048 */
static void random_shape(int64_t *rows, int64_t *cols)
{
	*rows = 8 * (1 + test_rnd() % 8);
	*cols = 256 * (1 + test_rnd() % 8);
}

static void test_unrow_is_dequant(void **state)
{
	for (size_t i = 0; i < N_KT; i++)
		for (int m = 0; m < N_WMODE; m++)
			for (int rep = 0; rep < 2; rep++) {
				int64_t rows, cols;
				random_shape(&rows, &cols);
				struct mat a = make_mat(ktypes[i], rows, cols, (enum wmode)m);
				check_unrow(&a);
				free_mat(&a);
			}
}

/* ---- (b) gemm_ref is the dot ----------------------------------------------- */

/* dequantized row with every term made non-negative: |d|, -|dmin| (so
 * d sc q + |dmin m|), for the error bound's magnitude; Q6_K takes |y|. */
static void abs_terms_row(uint32_t t, const uint8_t *w, int64_t cols, float *y)
{
	size_t rb = quant_row_bytes(t, (uint64_t)cols);
	uint32_t bb = quant_block_bytes(t);
	uint8_t *c = malloc(rb);
	int od, om;
	half_offsets(t, &od, &om);
	memcpy(c, w, rb);
	for (size_t b = 0; b < rb / bb; b++) {
		c[b * bb + (size_t)od + 1] &= 0x7F;
		if (om >= 0)
			c[b * bb + (size_t)om + 1] |= 0x80;
	}
	quant_dequant_row_ref(t, c, y, cols);
	for (int64_t i = 0; i < cols; i++)
		y[i] = fabsf(y[i]);
	free(c);
}

static void check_ref_dot(const struct mat *a, const struct acts *x)
{
	int64_t n = a->cols;
	float *w = malloc((size_t)n * sizeof *w), *wa = malloc((size_t)n * sizeof *wa);
	float *xf = malloc((size_t)n * sizeof *xf);
	float *y = malloc((size_t)(a->rows * x->nx) * sizeof *y);
	pack_gemm_ref(a->t, n, a->packed, 0, a->rows, x->x, x->stride, x->nx, y, (size_t)a->rows);
	for (int64_t r = 0; r < a->rows; r++) {
		const uint8_t *wr = a->w + (size_t)r * a->rb;
		quant_dequant_row_ref(a->t, wr, w, n);
		abs_terms_row(a->t, wr, n, wa);
		for (int64_t k = 0; k < x->nx; k++) {
			quant_dequant_row_ref(Q_Q8_K, act_row(x, k), xf, n);
			double exact = 0, mag = 0;
			for (int64_t i = 0; i < n; i++) {
				exact += (double)w[i] * xf[i];
				mag += (double)wa[i] * fabs((double)xf[i]);
			}
			double tol = (4.0 * (double)(n / QK_K) + 8.0) * 0x1p-24 * mag;
			float got = y[k * a->rows + r];
			float dot = quant_vec_dot_ref(a->t, n, wr, act_row(x, k));
			if (fabs(got - exact) > tol || fabs((double)got - dot) > tol)
				fail_msg("%s cols %lld row %lld tok %lld: packed %.9g, exact %.9g, "
					 "vec_dot %.9g, tol %.3g", quant_name(a->t), (long long)n,
					 (long long)r, (long long)k, got, exact, dot, tol);
		}
	}
	free(w);
	free(wa);
	free(xf);
	free(y);
}

static void test_ref_gemm_is_dot(void **state)
{
	for (size_t i = 0; i < N_KT; i++)
		for (int m = 0; m < N_WMODE; m++) {
			int64_t rows, cols;
			random_shape(&rows, &cols);
			struct mat a = make_mat(ktypes[i], rows, cols, (enum wmode)m);
			struct acts x = make_acts(cols, 5);
			check_ref_dot(&a, &x);
			free(x.x);
			free_mat(&a);
		}
}

/* ---- (c) every implementation == the reference, bit for bit ------------- */

/* y over rows [r0, r1) and the first nx tokens, y_stride wider than the
 * rows; compared with full (rows x MAX_NX reference, token-major) */
static void check_range(const struct mat *a, const struct acts *x, const float *full,
			int64_t r0, int64_t r1, int64_t nx)
{
	size_t ys = (size_t)(r1 - r0) + 3;
	size_t ny = ys * (size_t)nx;
	uint32_t *y = malloc(ny * sizeof *y);
	for (size_t i = 0; i < ny; i++)
		y[i] = 0x7FC0DEADu; /* a NaN the kernels never make */
	pack_gemm(a->t, a->cols, a->packed, r0, r1, x->x, x->stride, nx, (float *)y, ys);
	for (int64_t k = 0; k < nx; k++)
		for (size_t j = 0; j < ys; j++) {
			uint32_t got = y[(size_t)k * ys + j], want = 0x7FC0DEADu;
			if (j < (size_t)(r1 - r0))
				memcpy(&want, &full[k * a->rows + r0 + (int64_t)j], 4);
			if (got != want)
				fail_msg("%s %s %lldx%lld rows [%lld,%lld) nx %lld: y[tok %lld][%zu] "
					 "= %08x, want %08x", quant_name(a->t), quant_impl_name(),
					 (long long)a->rows, (long long)a->cols, (long long)r0,
					 (long long)r1, (long long)nx, (long long)k, j, got, want);
		}
	free(y);
}

static void check_impls(const struct mat *a, const struct acts *x)
{
	static const int64_t nxs[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16, 17 };
	float *full = malloc((size_t)(a->rows * MAX_NX) * sizeof *full);
	pack_gemm_ref(a->t, a->cols, a->packed, 0, a->rows, x->x, x->stride, MAX_NX, full,
		      (size_t)a->rows);
	const char *name;
	for (int i = 0; (name = quant_impl_available(i)) != NULL; i++) {
		assert_int_equal(quant_set_impl(name), 0);
		for (size_t k = 0; k < sizeof nxs / sizeof nxs[0]; k++) {
			check_range(a, x, full, 0, a->rows, nxs[k]);
			if (a->rows > 8) {
				check_range(a, x, full, 8, a->rows, nxs[k]);
				check_range(a, x, full, a->rows - 8, a->rows, nxs[k]);
			}
		}
	}
	assert_int_equal(quant_set_impl(NULL), 0);
	free(full);
}

static void test_impls_match_ref(void **state)
{
	static const int64_t shapes[][2] = { { 8, 256 }, { 24, 512 }, { 40, 768 } };
	for (size_t i = 0; i < N_KT; i++)
		for (int m = 0; m < N_WMODE; m++) {
			int64_t rows, cols;
			random_shape(&rows, &cols);
			if (m == W_MAX || m == W_ZERO_SCALE) {
				rows = shapes[m - 1][0];
				cols = shapes[m - 1][1];
			}
			struct mat a = make_mat(ktypes[i], rows, cols, (enum wmode)m);
			struct acts x = make_acts(cols, MAX_NX);
			check_impls(&a, &x);
			free(x.x);
			free_mat(&a);
		}
	/* a shape with odd super-block and group counts */
	for (size_t i = 0; i < N_KT; i++) {
		struct mat a = make_mat(ktypes[i], shapes[2][0], shapes[2][1], W_RANDOM);
		struct acts x = make_acts(shapes[2][1], MAX_NX);
		check_impls(&a, &x);
		free(x.x);
		free_mat(&a);
	}
}

/* every group count 1..9 from group 0 and from group 1, at nx 1 and 3:
 * the kernels pair groups (and pairs of pairs at nx 1), so each count
 * takes another mix of tiles, and the odd group the ymm one */
static void test_group_counts(void **state)
{
	for (size_t i = 0; i < N_KT; i++) {
		struct mat a = make_mat(ktypes[i], 80, 512, W_RANDOM);
		struct acts x = make_acts(512, MAX_NX);
		float *full = malloc((size_t)(a.rows * MAX_NX) * sizeof *full);
		pack_gemm_ref(a.t, a.cols, a.packed, 0, a.rows, x.x, x.stride, MAX_NX, full,
			      (size_t)a.rows);
		const char *name;
		for (int k = 0; (name = quant_impl_available(k)) != NULL; k++) {
			assert_int_equal(quant_set_impl(name), 0);
			for (int64_t ng = 1; ng <= 9; ng++)
				for (int64_t nx = 1; nx <= 3; nx += 2) {
					check_range(&a, &x, full, 0, 8 * ng, nx);
					check_range(&a, &x, full, 8, 8 + 8 * ng, nx);
				}
		}
		assert_int_equal(quant_set_impl(NULL), 0);
		free(full);
		free(x.x);
		free_mat(&a);
	}
}

/* ---- (d) sizes -------------------------------------------------------------- */

static void test_sizes(void **state)
{
	for (size_t i = 0; i < N_KT; i++) {
		uint32_t t = ktypes[i];
		size_t pb = pack_types_k[t].bytes;
		assert_true(pack_supported(t));
		assert_int_equal(pack_act_type(t), Q_Q8_K);
		assert_int_equal(pack_act_row_bytes(Q_Q8_K, 512), 2 * sizeof(blk_q8_K));
		assert_int_equal(pack_matrix_bytes(t, 8, 256), pb);
		assert_int_equal(pack_matrix_bytes(t, 64, 2048), 8 * 8 * pb);
		assert_int_equal(pack_matrix_bytes(t, 12, 256), 0);
		assert_int_equal(pack_matrix_bytes(t, 0, 256), 0);
		assert_int_equal(pack_matrix_bytes(t, 8, 0), 0);
		assert_int_equal(pack_matrix_bytes(t, 8, 32), 0);
		assert_int_equal(pack_matrix_bytes(t, 8, 384), 0);
		assert_int_equal(pack_matrix_bytes(t, 1ull << 60, 1ull << 20), 0);
		assert_int_equal(pack_matrix_bytes(t, 8, 256ull << 56), 0);
	}
	assert_int_equal(sizeof(pk_q4_K), 8 * sizeof(blk_q4_K) + 32);
	assert_int_equal(sizeof(pk_q6_K), 8 * sizeof(blk_q6_K));
}

int main(void)
{
	test_rng_seed(0x2545F4914F6CDD1Dull);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_unrow_is_dequant),
		cmocka_unit_test(test_ref_gemm_is_dot),
		cmocka_unit_test(test_impls_match_ref),
		cmocka_unit_test(test_group_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
