/*
 * attn-avx2.c — AVX2/FMA/F16C attention inner loops and half conversions
 * (attn.c dispatches; see its header and attn-impl.h for the invariants).
 *
 * Scores: four positions at a time per query head, one 8-lane accumulator
 * per dot (so a dot's order depends only on hk), reduced together with
 * hadd. A span tail of fewer than four positions repeats the last row in
 * the unused slots, so each dot runs the same instructions as in a full
 * group. Mix: a 64-float slice of one head's output stays in eight
 * registers while every position of the span is added in. The F32 and F16
 * versions are the same code (always inlined with a constant `h`), the F16
 * one widening each 8 halves of K or V with vcvtph2ps as it loads them.
 */
#include <immintrin.h>

#include "llm/cpu/attn-impl.h"
#include "llm/engine/model-impl.h"

#define INLINE static inline __attribute__((always_inline))

/* 8 elements of row r from element d: floats, or halves widened (h) */
INLINE __m256 load8(const void *r, size_t d, int h)
{
	if (h)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)r + d)));
	return _mm256_loadu_ps((const float *)r + d);
}

INLINE const void *row(const void *base, size_t i, int h)
{
	return h ? (const void *)((const uint16_t *)base + i) : (const void *)((const float *)base + i);
}

/* (a0, a1, a2, a3) -> (sum a0, sum a1, sum a2, sum a3) */
INLINE __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
	return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* four dots of q (hk floats) with rows r[0..3] */
INLINE __m128 dot4(const float *q, const void *const r[4], uint32_t hk, int h)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	for (uint32_t d = 0; d < hk; d += 8) {
		__m256 x = _mm256_loadu_ps(q + d);
		a0 = _mm256_fmadd_ps(x, load8(r[0], d, h), a0);
		a1 = _mm256_fmadd_ps(x, load8(r[1], d, h), a1);
		a2 = _mm256_fmadd_ps(x, load8(r[2], d, h), a2);
		a3 = _mm256_fmadd_ps(x, load8(r[3], d, h), a3);
	}
	return hsum4(a0, a1, a2, a3);
}

INLINE void scores(const float *q, uint32_t grp, uint32_t hk, const void *k, size_t ks,
		   uint32_t n, float scale, float *sc, size_t sc_stride, int h)
{
	__m128 vs = _mm_set1_ps(scale);
	for (uint32_t i = 0; i < n; i += 4) {
		uint32_t m = n - i < 4 ? n - i : 4;
		const void *r[4];
		for (uint32_t j = 0; j < 4; j++)
			r[j] = row(k, (size_t)(i + (j < m ? j : m - 1)) * ks, h);
		for (uint32_t g = 0; g < grp; g++) {
			float s[4];
			_mm_storeu_ps(s, _mm_mul_ps(dot4(q + (size_t)g * hk, r, hk, h), vs));
			for (uint32_t j = 0; j < m; j++)
				sc[g * sc_stride + i + j] = s[j];
		}
	}
}

/* out[0..w) += sum_i p[i] * v_i[0..w), w <= 64, a multiple of 8 */
INLINE void mix_slice(float *out, uint32_t w, const float *p, const void *v, size_t vs,
		      uint32_t n, int h)
{
	__m256 acc[8];
	for (uint32_t c = 0; c < w / 8; c++)
		acc[c] = _mm256_loadu_ps(out + 8 * c);
	for (uint32_t i = 0; i < n; i++) {
		__m256 pi = _mm256_set1_ps(p[i]);
		const void *vi = row(v, i * vs, h);
		for (uint32_t c = 0; c < w / 8; c++)
			acc[c] = _mm256_fmadd_ps(pi, load8(vi, 8 * c, h), acc[c]);
	}
	for (uint32_t c = 0; c < w / 8; c++)
		_mm256_storeu_ps(out + 8 * c, acc[c]);
}

INLINE void mix(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		const void *v, size_t vs, uint32_t n, int h)
{
	for (uint32_t g = 0; g < grp; g++)
		for (uint32_t d = 0; d < hv; d += 64)
			mix_slice(out + (size_t)g * hv + d, hv - d < 64 ? hv - d : 64,
				  p + g * p_stride, row(v, d, h), vs, n, h);
}

void llm_attn_scores_avx2(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
			  uint32_t n, float scale, float *sc, size_t sc_stride)
{
	scores(q, grp, hk, k, ks, n, scale, sc, sc_stride, 0);
}

void llm_attn_scores_f16_avx2(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			      size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride)
{
	scores(q, grp, hk, k, ks, n, scale, sc, sc_stride, 1);
}

void llm_attn_mix_avx2(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		       const float *v, size_t vs, uint32_t n)
{
	mix(out, grp, hv, p, p_stride, v, vs, n, 0);
}

void llm_attn_mix_f16_avx2(float *out, uint32_t grp, uint32_t hv, const float *p,
			   size_t p_stride, const uint16_t *v, size_t vs, uint32_t n)
{
	mix(out, grp, hv, p, p_stride, v, vs, n, 1);
}

/* Whole vectors of 8, then the tail through a zero-padded vector, so every
 * element takes the same instruction (nearest even, imm 0). */
void llm_f16_row_avx2(uint16_t *y, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(y + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
	if (i < n) {
		float t[8] = { 0 };
		uint16_t o[8];
		for (size_t j = 0; i + j < n; j++)
			t[j] = x[i + j];
		_mm_storeu_si128((__m128i *)o,
				 _mm256_cvtps_ph(_mm256_loadu_ps(t), _MM_FROUND_TO_NEAREST_INT));
		for (size_t j = 0; i + j < n; j++)
			y[i + j] = o[j];
	}
}

void llm_f16_round_avx2(float *x, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
		_mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
	}
	if (i < n) {
		float t[8] = { 0 };
		for (size_t j = 0; i + j < n; j++)
			t[j] = x[i + j];
		llm_f16_round_avx2(t, 8);
		for (size_t j = 0; i + j < n; j++)
			x[i + j] = t[j];
	}
}
