/*
 * quant-avx2.c — AVX2 + FMA + F16C fast paths (compiled with those flags
 * only; quant.c calls in only after cpuid says the CPU has them).
 *
 * Covered: vec_dot for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K, Q6_K; quantize_row for the activation types Q8_0, Q8_1, Q8_K and
 * for F16. Dequant stays scalar (only embedding lookups use it).
 *
 * The integer core is ggml's: unsigned 4/5/6-bit quants times signed int8
 * activations with maddubs (u8 x s8 -> pairwise i16; no saturation since
 * 63*127*2 < 32767), widened with madd, scaled per block in float with FMA.
 * Per-block integer sums are exact, so results differ from the reference
 * only in float summation order. The quantizers reproduce the reference bit
 * for bit (same float operations, same rounding rule).
 */
#include "llm/quant-impl.h"
#include "llm/quant.h"

#include <immintrin.h>
#include <math.h>

static inline float h2f(uint16_t h)
{
	return _cvtsh_ss(h);
}

static inline float hsum8(__m256 v)
{
	__m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	r = _mm_add_ps(r, _mm_movehl_ps(r, r));
	r = _mm_add_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

static inline int hsum_i32x8(__m256i v)
{
	__m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
	r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 1));
	return _mm_cvtsi128_si32(r);
}

/* 16 packed bytes -> 32 nibbles: element j = low nibble of qs[j] (j < 16),
 * element j + 16 = high nibble of qs[j]. */
static inline __m256i nibbles32(const uint8_t *qs)
{
	__m128i t = _mm_loadu_si128((const __m128i *)qs);
	__m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0xFF where bit j is set. */
static inline __m256i bits32(const uint8_t *p)
{
	uint32_t x;
	memcpy(&x, p, 4);
	const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
					       0x0101010101010101ll, 0);
	__m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
	b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFEll));
	return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* u8 x s8 over 32 bytes -> 8 int32 lanes */
static inline __m256i dot_u8s8_i32(__m256i u, __m256i s)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline __m256 dot_u8s8(__m256i u, __m256i s)
{
	return _mm256_cvtepi32_ps(dot_u8s8_i32(u, s));
}

/* s8 x s8: move a's sign onto b so maddubs sees |a| unsigned */
static inline __m256 dot_s8s8(__m256i a, __m256i b)
{
	return dot_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

static inline __m256i load32(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- float types ---------------------------------------------------------- */

/* Four independent accumulators hide FMA latency. */
#define FLOAT_DOT(name, load)                                                   \
	static float name(int64_t n, const void *w, const void *x)              \
	{                                                                        \
		const float *b = x;                                              \
		__m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(),      \
				  _mm256_setzero_ps(), _mm256_setzero_ps() };    \
		int64_t i = 0;                                                   \
		for (; i + 32 <= n; i += 32)                                     \
			for (int k = 0; k < 4; k++)                              \
				acc[k] = _mm256_fmadd_ps(load(w, i + 8 * k),     \
							 _mm256_loadu_ps(b + i + 8 * k), acc[k]); \
		for (; i + 8 <= n; i += 8)                                       \
			acc[0] = _mm256_fmadd_ps(load(w, i), _mm256_loadu_ps(b + i), acc[0]); \
		float s = hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),     \
					      _mm256_add_ps(acc[2], acc[3])));   \
		for (; i < n; i++)                                               \
			s += scalar(w, i) * b[i];                                \
		return s;                                                        \
	}

static inline __m256 ld_f32(const void *w, int64_t i)
{
	return _mm256_loadu_ps((const float *)w + i);
}

static inline __m256 ld_f16(const void *w, int64_t i)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
}

static inline __m256 ld_bf16(const void *w, int64_t i)
{
	__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

#define scalar(w, i) ((const float *)(w))[i]
FLOAT_DOT(dot_f32, ld_f32)
#undef scalar
#define scalar(w, i) h2f(((const uint16_t *)(w))[i])
FLOAT_DOT(dot_f16, ld_f16)
#undef scalar
#define scalar(w, i) bf16_to_f32(((const uint16_t *)(w))[i])
FLOAT_DOT(dot_bf16, ld_bf16)
#undef scalar

/* ---- 32-element block types --------------------------------------------- */

static float dot_q4_0(int64_t n, const void *w, const void *x)
{
	const blk_q4_0 *a = w;
	const blk_q8_0 *b = x;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256i q = _mm256_sub_epi8(nibbles32(a[i].qs), _mm256_set1_epi8(8));
		__m256 p = dot_s8s8(q, load32(b[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
	}
	return hsum8(acc);
}

static float dot_q4_1(int64_t n, const void *w, const void *x)
{
	const blk_q4_1 *a = w;
	const blk_q8_1 *b = x;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		mins += h2f(a[i].m) * h2f(b[i].s);
		__m256 p = dot_u8s8(nibbles32(a[i].qs), load32(b[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
	}
	return hsum8(acc) + mins;
}

static float dot_q5_0(int64_t n, const void *w, const void *x)
{
	const blk_q5_0 *a = w;
	const blk_q8_0 *b = x;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		/* q - 16 = nibble | 0xF0 where the 5th bit is clear */
		__m256i hi = _mm256_andnot_si256(bits32(a[i].qh), _mm256_set1_epi8((char)0xF0));
		__m256i q = _mm256_or_si256(nibbles32(a[i].qs), hi);
		__m256 p = dot_s8s8(q, load32(b[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
	}
	return hsum8(acc);
}

static float dot_q5_1(int64_t n, const void *w, const void *x)
{
	const blk_q5_1 *a = w;
	const blk_q8_1 *b = x;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		mins += h2f(a[i].m) * h2f(b[i].s);
		__m256i hi = _mm256_and_si256(bits32(a[i].qh), _mm256_set1_epi8(0x10));
		__m256i q = _mm256_or_si256(nibbles32(a[i].qs), hi);
		__m256 p = dot_u8s8(q, load32(b[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
	}
	return hsum8(acc) + mins;
}

static float dot_q8_0(int64_t n, const void *w, const void *x)
{
	const blk_q8_0 *a = w, *b = x;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256 p = dot_s8s8(load32(a[i].qs), load32(b[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), p, acc);
	}
	return hsum8(acc);
}

/* ---- K-quants -------------------------------------------------------------- */

/* sum_j m[j] * (bsums[2j] + bsums[2j+1]) */
static inline int k_mins_dot(const uint8_t *m, const int16_t *bsums)
{
	__m256i bs = load32(bsums);
	__m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
	__m128i mm = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m));
	__m128i p = _mm_madd_epi16(mm, pair);
	p = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 1));
	return _mm_cvtsi128_si32(p);
}

static inline void k_scales(const uint8_t *scales, uint8_t *sc, uint8_t *m)
{
	for (int j = 0; j < 8; j++)
		k4_scale_min(j, scales, &sc[j], &m[j]);
}

/* One 64-element chunk of Q4_K/Q5_K: lo/hi are the two sub-blocks' quants. */
static inline __m256i k_chunk(__m256i lo, __m256i hi, const int8_t *y, int sc_lo, int sc_hi)
{
	__m256i pl = _mm256_maddubs_epi16(lo, load32(y));
	__m256i ph = _mm256_maddubs_epi16(hi, load32(y + 32));
	pl = _mm256_madd_epi16(pl, _mm256_set1_epi16((short)sc_lo));
	ph = _mm256_madd_epi16(ph, _mm256_set1_epi16((short)sc_hi));
	return _mm256_add_epi32(pl, ph);
}

static float dot_q4_K(int64_t n, const void *w, const void *x)
{
	const blk_q4_K *a = w;
	const blk_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0F);
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	uint8_t sc[8], m[8];
	for (int64_t i = 0; i < n / QK_K; i++) {
		k_scales(a[i].scales, sc, m);
		mins += b[i].d * h2f(a[i].dmin) * (float)k_mins_dot(m, b[i].bsums);
		__m256i sum = _mm256_setzero_si256();
		for (int c = 0; c < 4; c++) {
			__m256i q = load32(a[i].qs + 32 * c);
			__m256i lo = _mm256_and_si256(q, m4);
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
			sum = _mm256_add_epi32(sum, k_chunk(lo, hi, b[i].qs + 64 * c, sc[2 * c], sc[2 * c + 1]));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * h2f(a[i].d)), _mm256_cvtepi32_ps(sum), acc);
	}
	return hsum8(acc) - mins;
}

static float dot_q5_K(int64_t n, const void *w, const void *x)
{
	const blk_q5_K *a = w;
	const blk_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	uint8_t sc[8], m[8];
	for (int64_t i = 0; i < n / QK_K; i++) {
		k_scales(a[i].scales, sc, m);
		mins += b[i].d * h2f(a[i].dmin) * (float)k_mins_dot(m, b[i].bsums);
		__m256i qh = load32(a[i].qh), sum = _mm256_setzero_si256();
		for (int c = 0; c < 4; c++) {
			__m256i q = load32(a[i].qs + 32 * c);
			__m256i hl = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
			__m256i hh = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
			__m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(hl, 4));
			__m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
						     _mm256_slli_epi16(hh, 4));
			sum = _mm256_add_epi32(sum, k_chunk(lo, hi, b[i].qs + 64 * c, sc[2 * c], sc[2 * c + 1]));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * h2f(a[i].d)), _mm256_cvtepi32_ps(sum), acc);
	}
	return hsum8(acc) - mins;
}

/* 32 elements of Q6_K times Q8_K with the two 16-groups' scales. */
static inline __m256i q6_part(__m256i q6, const int8_t *y, int s0, int s1)
{
	__m256i p = _mm256_maddubs_epi16(q6, load32(y));
	__m256i s = _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
	return _mm256_madd_epi16(p, s);
}

/* Q6_K quants are stored +32 (0..63): the dot uses them unsigned and takes
 * 32 * sum_g scale[g] * bsums[g] off at the end. */
static float dot_q6_K(int64_t n, const void *w, const void *x)
{
	const blk_q6_K *a = w;
	const blk_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		const int8_t *sc = a[i].scales;
		__m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
		__m256i off = _mm256_madd_epi16(scales16, load32(b[i].bsums));
		__m256i sum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = a[i].ql + 64 * h;
			const int8_t *y = b[i].qs + 128 * h, *s = sc + 8 * h;
			__m256i la = load32(ql), lb = load32(ql + 32), qh = load32(a[i].qh + 32 * h);
			__m256i q0 = _mm256_or_si256(_mm256_and_si256(la, m4),
						     _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
			__m256i q1 = _mm256_or_si256(_mm256_and_si256(lb, m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
			__m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
			__m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
			sum = _mm256_add_epi32(sum, q6_part(q0, y, s[0], s[1]));
			sum = _mm256_add_epi32(sum, q6_part(q1, y + 32, s[2], s[3]));
			sum = _mm256_add_epi32(sum, q6_part(q2, y + 64, s[4], s[5]));
			sum = _mm256_add_epi32(sum, q6_part(q3, y + 96, s[6], s[7]));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * h2f(a[i].d)), _mm256_cvtepi32_ps(sum), acc);
	}
	return hsum8(acc);
}

/* ---- activation quantizers (bit-exact with the reference) ------------------ */

static inline float hmax8(__m256 v)
{
	__m128 r = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	r = _mm_max_ps(r, _mm_movehl_ps(r, r));
	r = _mm_max_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

static inline float absmax(const float *x, int n)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_setzero_ps();
	for (int j = 0; j < n; j += 8)
		m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
	return hmax8(m);
}

/* roundf: half away from zero. trunc, then step away if the dropped part
 * is >= 0.5 (x - trunc(x) is exact). */
static inline __m256 round_away(__m256 v)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
	__m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
	__m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
	__m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
	return _mm256_add_ps(t, _mm256_and_ps(ge, step));
}

/* 32 int32-valued floats (4 vectors) -> 32 int8, in order */
static inline __m256i pack32(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
	__m256i i0 = _mm256_cvtps_epi32(v0), i1 = _mm256_cvtps_epi32(v1);
	__m256i i2 = _mm256_cvtps_epi32(v2), i3 = _mm256_cvtps_epi32(v3);
	__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
	/* packs work per 128-bit lane; restore element order */
	return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline __m256i quant32_away(const float *x, float id)
{
	__m256 s = _mm256_set1_ps(id);
	return pack32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x), s)),
		      round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8), s)),
		      round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 16), s)),
		      round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 24), s)));
}

static void quantize_q8_0(const float *src, void *dst, int64_t n)
{
	blk_q8_0 *b = dst;
	for (int64_t i = 0; i < n / QK4; i++) {
		const float *x = src + i * QK4;
		float d = absmax(x, QK4) / 127.0f;
		float id = d ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		_mm256_storeu_si256((__m256i *)b[i].qs, quant32_away(x, id));
	}
}

static void quantize_q8_1(const float *src, void *dst, int64_t n)
{
	blk_q8_1 *b = dst;
	for (int64_t i = 0; i < n / QK4; i++) {
		const float *x = src + i * QK4;
		float d = absmax(x, QK4) / 127.0f;
		float id = d ? 1.0f / d : 0.0f;
		__m256i q = quant32_away(x, id);
		_mm256_storeu_si256((__m256i *)b[i].qs, q);
		int sum = hsum_i32x8(dot_u8s8_i32(_mm256_set1_epi8(1), q));
		b[i].d = f32_to_fp16(d);
		b[i].s = f32_to_fp16(fp16_to_f32(b[i].d) * (float)sum);
	}
}

/* Q8_K: the first element of largest magnitude sets the sign of d. */
static void quantize_q8_K(const float *src, void *dst, int64_t n)
{
	blk_q8_K *b = dst;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float amax = absmax(x, QK_K), max = 0;
		for (int e = 0; e < QK_K; e++)
			if (fabsf(x[e]) == amax) {
				max = x[e];
				break;
			}
		float iscale = amax ? -127.0f / max : 0.0f;
		__m256 s = _mm256_set1_ps(iscale);
		for (int e = 0; e < QK_K; e += 32) {
			__m256 v[4];
			for (int k = 0; k < 4; k++)
				v[k] = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + e + 8 * k), s),
						       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
			__m256i q = pack32(v[0], v[1], v[2], v[3]);
			_mm256_storeu_si256((__m256i *)(b[i].qs + e), q);
			/* group sums: maddubs with ones gives pair sums, hadd the rest */
			__m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
			__m256i g = _mm256_madd_epi16(p, _mm256_set1_epi16(1)); /* 8 sums of 4 */
			int16_t *bs = b[i].bsums + e / 16;
			__m128i lo = _mm256_castsi256_si128(g), hi = _mm256_extracti128_si256(g, 1);
			__m128i sums = _mm_hadd_epi32(_mm_hadd_epi32(lo, hi), _mm_setzero_si128());
			bs[0] = (int16_t)_mm_extract_epi32(sums, 0);
			bs[1] = (int16_t)_mm_extract_epi32(sums, 1);
		}
		b[i].d = amax ? 1.0f / iscale : 0.0f;
	}
}

static void quantize_f16(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++)
		d[i] = f32_to_fp16(src[i]);
}

const struct quant_kernels quant_kernels_avx2 = {
	.name = "avx2",
	.dot = {
		[Q_F32] = dot_f32, [Q_F16] = dot_f16, [Q_BF16] = dot_bf16,
		[Q_Q4_0] = dot_q4_0, [Q_Q4_1] = dot_q4_1, [Q_Q5_0] = dot_q5_0,
		[Q_Q5_1] = dot_q5_1, [Q_Q8_0] = dot_q8_0,
		[Q_Q4_K] = dot_q4_K, [Q_Q5_K] = dot_q5_K, [Q_Q6_K] = dot_q6_K,
	},
	.quantize = {
		[Q_Q8_0] = quantize_q8_0, [Q_Q8_1] = quantize_q8_1, [Q_Q8_K] = quantize_q8_K,
		[Q_F16] = quantize_f16,
	},
};
