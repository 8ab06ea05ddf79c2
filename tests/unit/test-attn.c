/*
 * test-attn.c — the attention inner loops of lib/llm/cpu/attn.c over F16 (IEEE
 * half) K/V rows and the half conversions of the F16 KV cache: the AVX2
 * versions against the scalar reference, and the invariants batch
 * invariance rests on.
 *
 *   - Conversions: bit for bit the same in both, on every half value and on
 *     random and edge floats (ties, overflow, subnormals), and right on
 *     known values (nearest even).
 *   - Scores and mix: AVX2 within SCORE_REL of the scalar reference (they
 *     sum in different orders); a position's score has the same bits in any
 *     span (its order depends only on the head size) and the mix of a span
 *     split in two equals the mix of it whole (positions added in order).
 *   - The F16 loops equal the F32 ones run on the widened rows, bit for bit
 *     (the AVX2 F16 code only adds the widening load).
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
#include "llm/cpu/attn-impl.h"
#include "llm/engine/model-impl.h"

#define SCORE_REL 1e-5
#define NPOS 11 /* positions: two full groups of four and a tail of three */
#define GRP 3

static float bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static void test_f16_known(void **state)
{
	assert_int_equal(llm_f16_from_f32(1.0f), 0x3c00);
	assert_int_equal(llm_f16_from_f32(-2.0f), 0xc000);
	assert_int_equal(llm_f16_from_f32(65504.0f), 0x7bff);
	assert_int_equal(llm_f16_from_f32(65519.99f), 0x7bff);
	assert_int_equal(llm_f16_from_f32(65520.0f), 0x7c00);   /* tie to even: inf */
	assert_int_equal(llm_f16_from_f32(1.0f + 0x1p-11f), 0x3c00); /* tie, even below */
	assert_int_equal(llm_f16_from_f32(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, even above */
	assert_int_equal(llm_f16_from_f32(0x1p-24f), 0x0001);
	assert_int_equal(llm_f16_from_f32(0x1p-25f), 0x0000);   /* tie to even: 0 */
	assert_int_equal(llm_f16_from_f32(3 * 0x1p-25f), 0x0002);
	assert_int_equal(llm_f16_from_f32(-0.0f), 0x8000);
	assert_int_equal(llm_f16_from_f32(INFINITY), 0x7c00);
	assert_int_equal(llm_f16_from_f32(0x1p-14f - 0x1p-26f), 0x0400); /* up to the least normal */
	assert_true(llm_f32_from_f16(0x0001) == 0x1p-24f);
	assert_true(llm_f32_from_f16(0xfbff) == -65504.0f);
	assert_true(isnan(llm_f32_from_f16(0x7e00)));
}

/* Every half survives the round trip; widening agrees with a float cast. */
static void test_f16_roundtrip(void **state)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue; /* NaN */
		float f = llm_f32_from_f16((uint16_t)h);
		assert_int_equal(llm_f16_from_f32(f), h);
	}
}

/* n floats: random magnitudes over the half range and beyond, plus the
 * midpoints between neighbouring halves (the ties) and edge values. */
static void edge_floats(float *x, size_t n)
{
	static const float edge[] = { 0.0f, -0.0f, 65504.0f, 65520.0f, 65519.0f, 1e-8f,
				      0x1p-25f, 0x1p-14f, 1e30f, -1e30f };
	size_t ne = sizeof edge / sizeof edge[0];
	for (size_t i = 0; i < n; i++) {
		uint32_t r = test_rnd();
		if (i < ne)
			x[i] = edge[i];
		else if (i % 3 == 0) /* a tie: half h's bits plus half a unit */
			x[i] = (llm_f32_from_f16((uint16_t)(r & 0x7bff)) +
				llm_f32_from_f16((uint16_t)((r & 0x7bff) + 1))) / 2;
		else
			x[i] = bits_f((r & 0x8fffffffu) | ((100 + r % 50) << 23));
	}
}

static void test_f16_avx2_same_bits(void **state)
{
	if (!llm_attn_avx2()) {
		printf("no AVX2/F16C: scalar only\n");
		return;
	}
	enum { N = 4099 }; /* a tail of three */
	float *x = malloc(N * sizeof *x), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
	uint16_t *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb);
	test_rng_seed(7);
	edge_floats(x, N);
	llm_f16_row_ref(ha, x, N);
	llm_f16_row_avx2(hb, x, N);
	assert_memory_equal(ha, hb, N * sizeof *ha);
	memcpy(a, x, N * sizeof *x);
	memcpy(b, x, N * sizeof *x);
	llm_f16_round_ref(a, N);
	llm_f16_round_avx2(b, N);
	assert_memory_equal(a, b, N * sizeof *a);
	free(x); free(a); free(b); free(ha); free(hb);
}

/* (rows, dim) halves with stride dim + 8, and the same widened to floats */
static void rand_rows(uint16_t *h, float *f, uint32_t rows, uint32_t dim)
{
	size_t st = dim + 8;
	for (size_t i = 0; i < rows * st; i++) {
		h[i] = llm_f16_from_f32(test_gauss());
		f[i] = llm_f32_from_f16(h[i]);
	}
}

static void rand_half_floats(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = test_gauss();
	llm_f16_round_ref(x, n);
}

static void check_scores(uint32_t hk)
{
	size_t st = hk + 8;
	uint16_t *k = malloc(NPOS * st * sizeof *k);
	float *kf = malloc(NPOS * st * sizeof *kf), q[GRP * 256];
	float ref[GRP * NPOS], vec[GRP * NPOS], f32[GRP * NPOS], one[GRP * NPOS];
	rand_rows(k, kf, NPOS, hk);
	rand_half_floats(q, (size_t)GRP * hk);
	llm_attn_scores_f16_ref(q, GRP, hk, k, st, NPOS, 0.125f, ref, NPOS);
	llm_attn_scores_f16(q, GRP, hk, k, st, NPOS, 0.125f, vec, NPOS);
	for (size_t i = 0; i < GRP * NPOS; i++)
		assert_true(fabsf(vec[i] - ref[i]) <= SCORE_REL * (1 + fabsf(ref[i])));
	llm_attn_scores(q, GRP, hk, kf, st, NPOS, 0.125f, f32, NPOS);
	if (llm_attn_avx2() && hk % 8 == 0) /* else the F32 dot is llm_dot_f32's */
		assert_memory_equal(vec, f32, sizeof vec);
	for (uint32_t i = 0; i < NPOS; i++) /* one position at a time: the same bits */
		llm_attn_scores_f16(q, GRP, hk, k + i * st, st, 1, 0.125f, one + i, NPOS);
	assert_memory_equal(vec, one, sizeof vec);
	free(k);
	free(kf);
}

static void test_scores_f16(void **state)
{
	test_rng_seed(11);
	check_scores(64);
	check_scores(256);
	check_scores(12); /* not a multiple of 8: the scalar loop */
}

static void check_mix(uint32_t hv)
{
	size_t st = hv + 8;
	uint16_t *v = malloc(NPOS * st * sizeof *v);
	float *vf = malloc(NPOS * st * sizeof *vf), p[GRP * NPOS];
	float ref[GRP * 256] = { 0 }, vec[GRP * 256] = { 0 }, f32[GRP * 256] = { 0 };
	float split[GRP * 256] = { 0 };
	rand_rows(v, vf, NPOS, hv);
	for (size_t i = 0; i < GRP * NPOS; i++)
		p[i] = (float)(test_rnd() % 1000) / 1000.0f;
	llm_f16_round_ref(p, GRP * NPOS);
	llm_attn_mix_f16_ref(ref, GRP, hv, p, NPOS, v, st, NPOS);
	llm_attn_mix_f16(vec, GRP, hv, p, NPOS, v, st, NPOS);
	for (size_t i = 0; i < (size_t)GRP * hv; i++)
		assert_true(fabsf(vec[i] - ref[i]) <= SCORE_REL * (1 + fabsf(ref[i])));
	llm_attn_mix(f32, GRP, hv, p, NPOS, vf, st, NPOS);
	if (llm_attn_avx2())
		assert_memory_equal(vec, f32, (size_t)GRP * hv * sizeof(float));
	llm_attn_mix_f16(split, GRP, hv, p, NPOS, v, st, 5); /* two spans: the same bits */
	llm_attn_mix_f16(split, GRP, hv, p + 5, NPOS, v + 5 * st, st, NPOS - 5);
	assert_memory_equal(vec, split, (size_t)GRP * hv * sizeof(float));
	free(v);
	free(vf);
}

static void test_mix_f16(void **state)
{
	test_rng_seed(13);
	check_mix(64);
	check_mix(256);
	check_mix(12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_f16_known),
		cmocka_unit_test(test_f16_roundtrip),
		cmocka_unit_test(test_f16_avx2_same_bits),
		cmocka_unit_test(test_scores_f16),
		cmocka_unit_test(test_mix_f16),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
