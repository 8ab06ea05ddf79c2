/*
 * attn-avx2.c — AVX2/FMA attention inner loops (attn.c dispatches; see its
 * header for the invariants).
 *
 * Scores: four positions at a time per query head, one 8-lane accumulator
 * per dot (so a dot's order depends only on hk), reduced together with
 * hadd. A span tail of fewer than four positions repeats the last row in
 * the unused slots, so each dot runs the same instructions as in a full
 * group. Mix: a 64-float slice of one head's output stays in eight
 * registers while every position of the span is added in.
 */
#include <immintrin.h>

#include "llm/model-impl.h"

void llm_attn_scores_avx2(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
			  uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_avx2(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		       const float *v, size_t vs, uint32_t n);

/* (a0, a1, a2, a3) -> (sum a0, sum a1, sum a2, sum a3) */
static inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
	return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* four dots of q (hk floats) with rows r[0..3] */
static inline __m128 dot4(const float *q, const float *const r[4], uint32_t hk)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	for (uint32_t d = 0; d < hk; d += 8) {
		__m256 x = _mm256_loadu_ps(q + d);
		a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r[0] + d), a0);
		a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r[1] + d), a1);
		a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r[2] + d), a2);
		a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r[3] + d), a3);
	}
	return hsum4(a0, a1, a2, a3);
}

void llm_attn_scores_avx2(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
			  uint32_t n, float scale, float *sc, size_t sc_stride)
{
	__m128 vs = _mm_set1_ps(scale);
	for (uint32_t i = 0; i < n; i += 4) {
		uint32_t m = n - i < 4 ? n - i : 4;
		const float *r[4];
		for (uint32_t j = 0; j < 4; j++)
			r[j] = k + (size_t)(i + (j < m ? j : m - 1)) * ks;
		for (uint32_t g = 0; g < grp; g++) {
			float s[4];
			_mm_storeu_ps(s, _mm_mul_ps(dot4(q + (size_t)g * hk, r, hk), vs));
			for (uint32_t j = 0; j < m; j++)
				sc[g * sc_stride + i + j] = s[j];
		}
	}
}

/* out[0..w) += sum_i p[i] * v_i[0..w), w <= 64, a multiple of 8 */
static inline void mix_slice(float *out, uint32_t w, const float *p, const float *v, size_t vs,
			     uint32_t n)
{
	__m256 acc[8];
	for (uint32_t c = 0; c < w / 8; c++)
		acc[c] = _mm256_loadu_ps(out + 8 * c);
	for (uint32_t i = 0; i < n; i++) {
		__m256 pi = _mm256_set1_ps(p[i]);
		for (uint32_t c = 0; c < w / 8; c++)
			acc[c] = _mm256_fmadd_ps(pi, _mm256_loadu_ps(v + i * vs + 8 * c), acc[c]);
	}
	for (uint32_t c = 0; c < w / 8; c++)
		_mm256_storeu_ps(out + 8 * c, acc[c]);
}

void llm_attn_mix_avx2(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		       const float *v, size_t vs, uint32_t n)
{
	for (uint32_t g = 0; g < grp; g++)
		for (uint32_t d = 0; d < hv; d += 64)
			mix_slice(out + (size_t)g * hv + d, hv - d < 64 ? hv - d : 64,
				  p + g * p_stride, v + d, vs, n);
}
