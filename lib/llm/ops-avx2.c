/*
 * ops-avx2.c — AVX2/FMA versions of the attention inner loops (ops.c picks
 * them at run time when the CPU has AVX2 and FMA).
 *
 * Invariant: the reduction order depends only on n, never on the batch or
 * the thread, so results stay batch-invariant; they differ from the scalar
 * versions in the last bits, which is why the choice is made once per
 * process.
 */
#include <immintrin.h>

#include "llm/model-impl.h"

float llm_dot_f32_avx2(const float *a, const float *b, uint32_t n);
void llm_axpy_avx2(float *y, float a, const float *x, uint32_t n);

float llm_dot_f32_avx2(const float *a, const float *b, uint32_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	s0 = _mm256_add_ps(s0, s1);
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_movehdup_ps(h));
	float s = _mm_cvtss_f32(h);
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

void llm_axpy_avx2(float *y, float a, const float *x, uint32_t n)
{
	__m256 va = _mm256_set1_ps(a);
	uint32_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
							_mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += a * x[i];
}
