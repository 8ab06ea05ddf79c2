/*
 * ops-avx2.c — AVX2/FMA versions of the row operations (ops.c picks them at
 * run time when the CPU has AVX2 and FMA).
 *
 * Invariant: the reduction order depends only on n, never on the batch or
 * the thread, so results stay batch-invariant. glu, rmsnorm and softmax
 * repeat ops.c's reference operation for operation (lane j of the double
 * accumulators holds the reference's partial sum j; tails are masked loads
 * whose dead lanes add +0), so they give the same bits; the dot differs
 * from its scalar version in the last bits, which is why the choice is
 * made once per process.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "llm/cpu/ops-impl.h"

#define SET1 _mm256_set1_ps

/* all-ones in lanes [0, rem), rem < 8 */
static __m256i tail_mask(uint32_t rem)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
				  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* exp(xh + xl), op for op as exp_ff in ops.c */
static __m256 exp_avx2(__m256 xh, __m256 xl)
{
	__m256 x = _mm256_min_ps(_mm256_max_ps(xh, SET1(OPS_EXP_LO)), SET1(OPS_EXP_HI));
	__m256 nf = _mm256_sub_ps(_mm256_fmadd_ps(x, SET1(OPS_LOG2E), SET1(OPS_MAGIC)),
				  SET1(OPS_MAGIC));
	__m256 r = _mm256_fnmadd_ps(nf, SET1(OPS_LN2_HI), x);
	r = _mm256_add_ps(_mm256_fnmadd_ps(nf, SET1(OPS_LN2_LO), r), xl);
	__m256 p = _mm256_fmadd_ps(SET1(OPS_EXP_P5), r, SET1(OPS_EXP_P4));
	p = _mm256_fmadd_ps(p, r, SET1(OPS_EXP_P3));
	p = _mm256_fmadd_ps(p, r, SET1(OPS_EXP_P2));
	p = _mm256_fmadd_ps(p, r, SET1(OPS_EXP_P1));
	p = _mm256_fmadd_ps(p, r, SET1(OPS_EXP_P0));
	p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), SET1(1.0f));
	__m256i n = _mm256_cvtps_epi32(nf);
	__m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
	__m256i b = _mm256_set1_epi32(127);
	__m256 y = _mm256_mul_ps(
		_mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23))),
		_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23)));
	y = _mm256_andnot_ps(_mm256_cmp_ps(xh, SET1(OPS_EXP_LO), _CMP_LT_OQ), y);
	return _mm256_blendv_ps(y, xh, _mm256_cmp_ps(xh, xh, _CMP_UNORD_Q));
}

/* z = g (C1 + C2 g^2) as zh + zl, as gelu_z in ops.c */
static __m256 gelu_z(__m256 g, __m256 *zl)
{
	__m256 c1h = SET1(OPS_GELU_C1H), c2h = SET1(OPS_GELU_C2H);
	__m256 ph = _mm256_mul_ps(g, g), pl = _mm256_fmsub_ps(g, g, ph);
	__m256 th = _mm256_mul_ps(c2h, ph), tl = _mm256_fmsub_ps(c2h, ph, th);
	__m256 wh = _mm256_add_ps(c1h, th), bp = _mm256_sub_ps(wh, c1h);
	__m256 ap = _mm256_sub_ps(wh, bp);
	__m256 we = _mm256_add_ps(_mm256_sub_ps(c1h, ap), _mm256_sub_ps(th, bp));
	__m256 wl = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(we, tl), SET1(OPS_GELU_C1L)),
				  _mm256_fmadd_ps(SET1(OPS_GELU_C2L), ph, _mm256_mul_ps(c2h, pl)));
	__m256 zh = _mm256_mul_ps(g, wh);
	*zl = _mm256_add_ps(_mm256_fmsub_ps(g, wh, zh), _mm256_mul_ps(g, wl));
	return zh;
}

/* g * sigmoid(z), as act_ref in ops.c */
static __m256 act_avx2(__m256 g, int gelu)
{
	__m256 zl = _mm256_setzero_ps(), zh = gelu ? gelu_z(g, &zl) : g;
	__m256 flip = _mm256_andnot_ps(zh, SET1(-0.0f)); /* sign bit where z >= +0 */
	__m256 e = exp_avx2(_mm256_xor_ps(zh, flip), _mm256_xor_ps(zl, flip));
	__m256 num = _mm256_blendv_ps(e, SET1(1.0f), flip);
	return _mm256_div_ps(_mm256_mul_ps(_mm256_max_ps(SET1(-FLT_MAX), g), num),
			     _mm256_add_ps(SET1(1.0f), e));
}

void llm_glu_avx2(float *gate, const float *up, uint32_t n, enum llm_act act)
{
	int gelu = act == LLM_ACT_GELU_TANH;
	uint32_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(gate + i, _mm256_mul_ps(act_avx2(_mm256_loadu_ps(gate + i), gelu),
							 _mm256_loadu_ps(up + i)));
	if (i < n) {
		__m256i m = tail_mask(n - i);
		__m256 g = act_avx2(_mm256_maskload_ps(gate + i, m), gelu);
		_mm256_maskstore_ps(gate + i, m, _mm256_mul_ps(g, _mm256_maskload_ps(up + i, m)));
	}
}

/* lo + hi lane by lane, then ((0 + 2) + (1 + 3)): ops.c's sum8 */
static double hsum_pd(__m256d lo, __m256d hi)
{
	__m256d t = _mm256_add_pd(lo, hi);
	__m128d h = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
	return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* Squares are exact in double, so the FMA rounds like the reference's add. */
static void sumsq_step(__m256 v, __m256d *lo, __m256d *hi)
{
	__m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
	__m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
	*lo = _mm256_fmadd_pd(a, a, *lo);
	*hi = _mm256_fmadd_pd(b, b, *hi);
}

void llm_rmsnorm_avx2(float *y, const float *x, const float *w, uint32_t n, float eps)
{
	__m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
	uint32_t i = 0, rem = n % 8;
	for (; i + 8 <= n; i += 8)
		sumsq_step(_mm256_loadu_ps(x + i), &lo, &hi);
	if (rem)
		sumsq_step(_mm256_maskload_ps(x + i, tail_mask(rem)), &lo, &hi);
	__m256 r = SET1((float)(1.0 / sqrt(hsum_pd(lo, hi) / n + eps)));
	for (i = 0; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), r),
						      _mm256_loadu_ps(w + i)));
	if (rem) {
		__m256i m = tail_mask(rem);
		_mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_mul_ps(
			_mm256_maskload_ps(x + i, m), r), _mm256_maskload_ps(w + i, m)));
	}
}

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

/* NaNs are skipped as by the reference's x > mx; +-0 ties do not matter
 * (x - (+0) and x - (-0) have the same exp). */
static float max_avx2(const float *x, uint32_t n)
{
	__m256 m = SET1(-INFINITY);
	uint32_t i = 0;
	for (; i + 8 <= n; i += 8)
		m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
	if (i < n) {
		__m256i t = tail_mask(n - i);
		m = _mm256_max_ps(_mm256_blendv_ps(SET1(-INFINITY), _mm256_maskload_ps(x + i, t),
						   _mm256_castsi256_ps(t)), m);
	}
	__m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	h = _mm_max_ps(h, _mm_movehl_ps(h, h));
	return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* e^(v - mx) into the double partial sums */
static __m256 exp_step(__m256 v, __m256 mx, __m256d *lo, __m256d *hi)
{
	__m256 e = exp_avx2(_mm256_sub_ps(v, mx), _mm256_setzero_ps());
	*lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
	*hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	return e;
}

void llm_softmax_avx2(float *x, uint32_t n)
{
	__m256 mx = SET1(max_avx2(x, n));
	__m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
	uint32_t i = 0, rem = n % 8;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, exp_step(_mm256_loadu_ps(x + i), mx, &lo, &hi));
	if (rem) {
		/* dead lanes -inf: their e is +0 and adds nothing */
		__m256i m = tail_mask(rem);
		__m256 v = _mm256_blendv_ps(SET1(-INFINITY), _mm256_maskload_ps(x + i, m),
					    _mm256_castsi256_ps(m));
		_mm256_maskstore_ps(x + i, m, exp_step(v, mx, &lo, &hi));
	}
	__m256 inv = SET1((float)(1.0 / hsum_pd(lo, hi)));
	for (i = 0; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
	if (rem) {
		__m256i m = tail_mask(rem);
		_mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
	}
}
