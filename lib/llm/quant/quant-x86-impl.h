/*
 * quant-x86-impl.h — the x86 SIMD kernels, included by quant-avx2.c
 * (AVX2 + FMA + F16C) and quant-avx512.c (the same code compiled for
 * AVX-512VL + VNNI: EVEX encodings, 32 vector registers, and vpdpbusd for
 * the u8 x s8 sums). Each includer defines QX_VNNI (0 or 1) first and builds
 * its own kernel table from these static functions.
 *
 * Covered: vec_dot for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K, Q6_K; vec_dot_n (one weight row x up to 4 activation rows per pass)
 * for the quantized ones; with VNNI also vec_dot_mn (4 weight rows x 4
 * activation rows per pass) for the 32-element types; quantize_row for the activation types Q8_0, Q8_1,
 * Q8_K and for F16. Dequant stays scalar (only embedding lookups use it).
 *
 * The integer core is ggml's: unsigned 4/5/6-bit quants times signed int8
 * activations with maddubs (u8 x s8 -> pairwise i16; no saturation since
 * 63*127*2 < 32767), widened with madd, scaled per block in float with FMA.
 * Per-block integer sums are exact, so results differ from the reference
 * only in float summation order. The quantizers reproduce the reference bit
 * for bit (same float operations, same rounding rule).
 */
#ifndef PLOT_LLM_QUANT_X86_IMPL_H
#define PLOT_LLM_QUANT_X86_IMPL_H

#include "llm/quant/quant-impl.h"
#include "llm/quant/quant.h"

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
 * element j + 16 = high nibble of qs[j]. Broadcast-load + shift + blend
 * keeps this off port 5 (vinserti128 would not). */
static inline __m256i nibbles32(const uint8_t *qs)
{
	__m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
	b = _mm256_blend_epi32(b, _mm256_srli_epi16(b, 4), 0xF0);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* Two adjacent halves (a block's d and m, or d and s) -> floats in lanes 0
 * and 1. A plain 32-bit load: cheaper than two scalar conversions. */
static inline __m128 h2f_pair(const uint16_t *p)
{
	return _mm_cvtph_ps(_mm_loadu_si32(p));
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

/* u8 x s8 over 32 bytes -> 8 int32 lanes, lane k = sum of bytes 4k..4k+3.
 * VNNI does it in one instruction with the same lane grouping (and no
 * intermediate i16, which never saturates here anyway), so both give the
 * same integers. */
static inline __m256i dot_u8s8_i32(__m256i u, __m256i s)
{
#if QX_VNNI
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* u8 x s8 -> 8 float lanes. Signed x signed goes through here too: move
 * a's sign onto b (sign_epi8) so maddubs sees |a| unsigned. */
static inline __m256 dot_u8s8(__m256i u, __m256i s)
{
	return _mm256_cvtepi32_ps(dot_u8s8_i32(u, s));
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

/* ---- quantized types: one weight row against K activation rows -----------
 *
 * Each kernel is written for K activation rows at once (K = 1..4, a
 * compile-time constant after inlining): the weight block is unpacked once
 * and multiplied into K accumulators. For every activation row the float
 * operations and their order are exactly those of K = 1, so quant_vec_dot_n
 * returns bit-identical results to quant_vec_dot whatever the batch is.
 */
#define MAXK 8
/* activation rows per pass of the 32-element kernels */
#if QX_VNNI
#define QX_BIGK 8
#else
#define QX_BIGK 4
#endif
#define INLINE static inline __attribute__((always_inline))
/* K (and R) are constants after inlining; unrolled, the accumulator arrays
 * live in registers instead of on the stack */
#define QX_UNROLL _Pragma("GCC unroll 8")

/* y[t * ys] = hsum(acc[t]) + add[t] */
INLINE void store_k(int K, const __m256 *acc, const float *add, float *y, size_t ys)
{
	for (int t = 0; t < K; t++)
		y[(size_t)t * ys] = hsum8(acc[t]) + add[t];
}

/* y[t * ys] = hsum(acc[t]) + lane 1 of mins[t] */
INLINE void store_mins(int K, const __m256 *acc, const __m128 *mins, float *y, size_t ys)
{
	float m[MAXK];
	for (int t = 0; t < K; t++)
		m[t] = _mm_cvtss_f32(_mm_shuffle_ps(mins[t], mins[t], 1));
	store_k(K, acc, m, y, ys);
}

/* Activation block i of row t: rows are xs bytes apart, blocks bsz bytes. */
#define XBLK(type, x, xs, t, i) ((const type *)((const uint8_t *)(x) + (size_t)(t) * (xs)) + (i))

INLINE void q4_0_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q4_0 *a = w;
	__m256 acc[MAXK];
	float zero[MAXK] = { 0 };
	QX_UNROLL
	for (int t = 0; t < K; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256i q = _mm256_sub_epi8(nibbles32(a[i].qs), _mm256_set1_epi8(8));
		__m256i aq = _mm256_sign_epi8(q, q);
		__m128 dw = h2f_pair(&a[i].d); /* lane 0 */
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_0 *b = XBLK(blk_q8_0, x, xs, t, i);
			__m256 p = dot_u8s8(aq, _mm256_sign_epi8(load32(b->qs), q));
			__m128 dd = _mm_mul_ps(dw, h2f_pair(&b->d));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), p, acc[t]);
		}
	}
	store_k(K, acc, zero, y, ys);
}

/* Q4_1 / Q5_1 against Q8_1: unsigned quants, min term m * s per block */
INLINE void q4_1_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q4_1 *a = w;
	__m256 acc[MAXK];
	__m128 mins[MAXK]; /* lane 1: sum of m * s */
	QX_UNROLL
	for (int t = 0; t < K; t++) {
		acc[t] = _mm256_setzero_ps();
		mins[t] = _mm_setzero_ps();
	}
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256i q = nibbles32(a[i].qs);
		__m128 dm = h2f_pair(&a[i].d); /* (d, m) */
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_1 *b = XBLK(blk_q8_1, x, xs, t, i);
			__m128 prod = _mm_mul_ps(dm, h2f_pair(&b->d)); /* (d dy, m s) */
			mins[t] = _mm_add_ps(mins[t], prod);
			__m256 p = dot_u8s8(q, load32(b->qs));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(prod), p, acc[t]);
		}
	}
	store_mins(K, acc, mins, y, ys);
}

INLINE void q5_0_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q5_0 *a = w;
	__m256 acc[MAXK];
	float zero[MAXK] = { 0 };
	QX_UNROLL
	for (int t = 0; t < K; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		/* q - 16 = nibble | 0xF0 where the 5th bit is clear */
		__m256i hi = _mm256_andnot_si256(bits32(a[i].qh), _mm256_set1_epi8((char)0xF0));
		__m256i q = _mm256_or_si256(nibbles32(a[i].qs), hi);
		__m256i aq = _mm256_sign_epi8(q, q);
		__m128 dw = h2f_pair(&a[i].d); /* lane 0 */
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_0 *b = XBLK(blk_q8_0, x, xs, t, i);
			__m256 p = dot_u8s8(aq, _mm256_sign_epi8(load32(b->qs), q));
			__m128 dd = _mm_mul_ps(dw, h2f_pair(&b->d));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), p, acc[t]);
		}
	}
	store_k(K, acc, zero, y, ys);
}

INLINE void q5_1_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q5_1 *a = w;
	__m256 acc[MAXK];
	__m128 mins[MAXK]; /* lane 1: sum of m * s */
	QX_UNROLL
	for (int t = 0; t < K; t++) {
		acc[t] = _mm256_setzero_ps();
		mins[t] = _mm_setzero_ps();
	}
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256i hi = _mm256_and_si256(bits32(a[i].qh), _mm256_set1_epi8(0x10));
		__m256i q = _mm256_or_si256(nibbles32(a[i].qs), hi);
		__m128 dm = h2f_pair(&a[i].d); /* (d, m) */
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_1 *b = XBLK(blk_q8_1, x, xs, t, i);
			__m128 prod = _mm_mul_ps(dm, h2f_pair(&b->d)); /* (d dy, m s) */
			mins[t] = _mm_add_ps(mins[t], prod);
			__m256 p = dot_u8s8(q, load32(b->qs));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(prod), p, acc[t]);
		}
	}
	store_mins(K, acc, mins, y, ys);
}

INLINE void q8_0_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q8_0 *a = w;
	__m256 acc[MAXK];
	float zero[MAXK] = { 0 };
	QX_UNROLL
	for (int t = 0; t < K; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK4; i++) {
		__m256i q = load32(a[i].qs);
		__m256i aq = _mm256_sign_epi8(q, q);
		__m128 dw = h2f_pair(&a[i].d); /* lane 0 */
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_0 *b = XBLK(blk_q8_0, x, xs, t, i);
			__m256 p = dot_u8s8(aq, _mm256_sign_epi8(load32(b->qs), q));
			__m128 dd = _mm_mul_ps(dw, h2f_pair(&b->d));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), p, acc[t]);
		}
	}
	store_k(K, acc, zero, y, ys);
}

/* sum_j m[j] * (bsums[2j] + bsums[2j+1]) */
static inline int k_mins_dot(__m128i m16, const int16_t *bsums)
{
	__m256i bs = load32(bsums);
	__m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
	__m128i p = _mm_madd_epi16(m16, pair);
	p = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 1));
	return _mm_cvtsi128_si32(p);
}

/* One 64-element chunk of Q4_K/Q5_K: lo/hi are the two sub-blocks' quants. */
static inline __m256i k_chunk(__m256i lo, __m256i hi, const int8_t *y, __m256i sc_lo, __m256i sc_hi)
{
	__m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(y)), sc_lo);
	__m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(y + 32)), sc_hi);
	return _mm256_add_epi32(pl, ph);
}

/* Unpacked Q4_K/Q5_K super-block: 8 sub-blocks of 32 quants (0..31) and
 * their 6-bit scales (broadcast as i16) and mins. */
struct kblk {
	__m256i q[8];
	__m256i sc[8];
	__m128i m16;
};

/* The 12 packed bytes of 6-bit scales and mins -> bytes sc[0..7], m[0..7]
 * (the word-wise form of k4_scale_min). */
static inline __m128i k_scale_bytes(const uint8_t *scales)
{
	const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
	uint32_t w[3];
	memcpy(w, scales, 12);
	uint64_t sc = (w[0] & k1) | (uint64_t)((w[2] & k2) | ((w[0] >> 6) & k3) << 4) << 32;
	uint64_t m = (w[1] & k1) | (uint64_t)(((w[2] >> 4) & k2) | ((w[1] >> 6) & k3) << 4) << 32;
	return _mm_set_epi64x((long long)m, (long long)sc);
}

INLINE void unpack_k(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, struct kblk *k)
{
	const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
	__m256i sm16 = _mm256_cvtepu8_epi16(k_scale_bytes(scales)); /* sc0..7 | m0..7 */
	k->m16 = _mm256_extracti128_si256(sm16, 1);
	__m256i scd = _mm256_permute2x128_si256(sm16, sm16, 0x00);
	for (int j = 0; j < 8; j++) /* broadcast i16 lane j: bytes 2j, 2j+1 */
		k->sc[j] = _mm256_shuffle_epi8(scd, _mm256_set1_epi16((short)((2 * j + 1) << 8 | 2 * j)));
	__m256i h = qh ? load32(qh) : _mm256_setzero_si256();
	QX_UNROLL
	for (int c = 0; c < 4; c++) {
		__m256i q = load32(qs + 32 * c);
		k->q[2 * c] = _mm256_and_si256(q, m4);
		k->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
		if (qh) {
			__m256i hl = _mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one);
			__m256i hh = _mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one);
			k->q[2 * c] = _mm256_or_si256(k->q[2 * c], _mm256_slli_epi16(hl, 4));
			k->q[2 * c + 1] = _mm256_or_si256(k->q[2 * c + 1], _mm256_slli_epi16(hh, 4));
		}
	}
}

/* Q4_K/Q5_K (qh NULL for Q4_K) against Q8_K. */
INLINE void qk_k(int64_t n, const void *w, size_t bsz, int has_qh, const void *x, size_t xs,
		 int K, float *y, size_t ys)
{
	__m256 acc[MAXK];
	float mins[MAXK] = { 0 };
	struct kblk k;
	QX_UNROLL
	for (int t = 0; t < K; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *blk = (const uint8_t *)w + (size_t)i * bsz;
		const blk_q5_K *a5 = (const blk_q5_K *)blk;
		const blk_q4_K *a4 = (const blk_q4_K *)blk;
		unpack_k(a4->scales, has_qh ? a5->qs : a4->qs, has_qh ? a5->qh : NULL, &k);
		float dw = h2f(a4->d), dmin = h2f(a4->dmin);
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_K *b = XBLK(blk_q8_K, x, xs, t, i);
			mins[t] += b->d * dmin * (float)k_mins_dot(k.m16, b->bsums);
			__m256i sum = _mm256_setzero_si256();
			QX_UNROLL
			for (int c = 0; c < 4; c++)
				sum = _mm256_add_epi32(sum, k_chunk(k.q[2 * c], k.q[2 * c + 1], b->qs + 64 * c,
								  k.sc[2 * c], k.sc[2 * c + 1]));
			acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(b->d * dw), _mm256_cvtepi32_ps(sum), acc[t]);
		}
	}
	QX_UNROLL
	for (int t = 0; t < K; t++)
		mins[t] = -mins[t];
	store_k(K, acc, mins, y, ys);
}

INLINE void q4_K_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	qk_k(n, w, sizeof(blk_q4_K), 0, x, xs, K, y, ys);
}

INLINE void q5_K_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	qk_k(n, w, sizeof(blk_q5_K), 1, x, xs, K, y, ys);
}

/* Q6_K: quants stored +32 (0..63) are used unsigned; 32 * sum_g scale[g] *
 * bsums[g] comes off at the end. q[4h + k] holds elements 128h + 32k .. +31,
 * s16[4h + k] the scales of their two 16-groups. */
INLINE void unpack_q6(const blk_q6_K *a, __m256i *q, __m256i *s16, __m256i *scales16)
{
	const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
	__m128i sc8 = _mm_loadu_si128((const __m128i *)a->scales);
	*scales16 = _mm256_cvtepi8_epi16(sc8);
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = a->ql + 64 * h;
		__m256i la = load32(ql), lb = load32(ql + 32), qh = load32(a->qh + 32 * h);
		__m256i lo[4] = { _mm256_and_si256(la, m4), _mm256_and_si256(lb, m4),
				  _mm256_and_si256(_mm256_srli_epi16(la, 4), m4),
				  _mm256_and_si256(_mm256_srli_epi16(lb, 4), m4) };
		for (int k = 0; k < 4; k++) {
			__m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);
			q[4 * h + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(hb, 4));
			/* 8 copies of scale 2c, 8 of scale 2c+1, widened to i16 */
			long long c2 = 2 * (4 * h + k);
			__m128i pick = _mm_set_epi64x((c2 + 1) * 0x0101010101010101ll, c2 * 0x0101010101010101ll);
			s16[4 * h + k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
		}
	}
}

INLINE void q6_K_k(int64_t n, const void *w, const void *x, size_t xs, int K, float *y, size_t ys)
{
	const blk_q6_K *a = w;
	__m256 acc[MAXK];
	float zero[MAXK] = { 0 };
	__m256i q[8], s16[8], scales16;
	QX_UNROLL
	for (int t = 0; t < K; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q6(&a[i], q, s16, &scales16);
		float dw = h2f(a[i].d);
		QX_UNROLL
		for (int t = 0; t < K; t++) {
			const blk_q8_K *b = XBLK(blk_q8_K, x, xs, t, i);
			__m256i off = _mm256_madd_epi16(scales16, load32(b->bsums));
			__m256i sum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
			QX_UNROLL
			for (int k = 0; k < 8; k++) {
				__m256i p = _mm256_maddubs_epi16(q[k], load32(b->qs + 32 * k));
				sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s16[k]));
			}
			acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(b->d * dw), _mm256_cvtepi32_ps(sum), acc[t]);
		}
	}
	store_k(K, acc, zero, y, ys);
}

/* The single dot is the K = 1 case; the batched one runs groups of `big`
 * activation rows (8 where 32 vector registers hold them, else 4), then
 * the remainder. Each K is a separate inlined specialization. */
#define KCALL(kern, k) kern(n, w, xb + (size_t)t * xs, xs, k, y + (size_t)t * ys, ys)
#define DOT_PAIR(name, kern, big)                                                \
	static float dot_##name(int64_t n, const void *w, const void *x)         \
	{                                                                         \
		float y;                                                          \
		kern(n, w, x, 0, 1, &y, 1);                                       \
		return y;                                                         \
	}                                                                         \
	static void dot_n_##name(int64_t n, const void *w, const void *x, size_t xs, \
				 int64_t nx, float *y, size_t ys)                  \
	{                                                                         \
		const uint8_t *xb = x;                                            \
		int64_t t = 0;                                                    \
		for (; t + (big) <= nx; t += (big))                               \
			KCALL(kern, big);                                         \
		if ((big) > 4 && nx - t >= 4) {                                   \
			KCALL(kern, 4);                                           \
			t += 4;                                                   \
		}                                                                 \
		switch (nx - t) {                                                 \
		case 3: KCALL(kern, 3); break;                                    \
		case 2: KCALL(kern, 2); break;                                    \
		case 1: KCALL(kern, 1); break;                                    \
		default: break;                                                   \
		}                                                                 \
	}

DOT_PAIR(q4_0, q4_0_k, QX_BIGK)
DOT_PAIR(q4_1, q4_1_k, QX_BIGK)
DOT_PAIR(q5_0, q5_0_k, QX_BIGK)
DOT_PAIR(q5_1, q5_1_k, QX_BIGK)
DOT_PAIR(q8_0, q8_0_k, QX_BIGK)
DOT_PAIR(q4_K, q4_K_k, 4) /* an unpacked super-block already takes 16 registers */
DOT_PAIR(q5_K, q5_K_k, 4)
DOT_PAIR(q6_K, q6_K_k, 4)

/* ---- 32-element types: R weight rows x K activation rows (VNNI) ----------
 *
 * dot_n reuses a weight block across K activation rows; this also reuses
 * each activation block across R weight rows, which halves the loads and
 * the activation-side work per (row, token) pair. Signed weights go in as
 * u8 q + off (off = 8, 16 or 128) and the dpbusd accumulator starts at
 * -off * (lane sums of x), computed once per activation block: the lane
 * integers are those of the sign_epi8 form exactly, and every float
 * operation per (row, token) is the one dot_n / dot does, in the same order,
 * so results are bit-identical to quant_vec_dot.
 */
#if QX_VNNI
#define MN_R 4
#define MN_K 4
/* fewer tokens: dot_n per row (decode streams rows from memory; measured) */
#define MN_NX_MIN 2

/* weight block bytes / activation block bytes / offset for type T */
#define MN_WB(T) ((T) == Q_Q4_0 ? sizeof(blk_q4_0) : (T) == Q_Q4_1 ? sizeof(blk_q4_1) : \
		  (T) == Q_Q5_0 ? sizeof(blk_q5_0) : (T) == Q_Q5_1 ? sizeof(blk_q5_1) : sizeof(blk_q8_0))
#define MN_XB(T) ((T) == Q_Q4_1 || (T) == Q_Q5_1 ? sizeof(blk_q8_1) : sizeof(blk_q8_0))
#define MN_OFF(T) ((T) == Q_Q4_0 ? 8 : (T) == Q_Q5_0 ? 16 : (T) == Q_Q8_0 ? 128 : 0)
#define MN_MIN(T) ((T) == Q_Q4_1 || (T) == Q_Q5_1)

/* The block's quants as u8 (q + MN_OFF). */
INLINE __m256i mn_wq(uint32_t T, const uint8_t *blk)
{
	switch (T) {
	case Q_Q4_0: return nibbles32(((const blk_q4_0 *)blk)->qs);
	case Q_Q4_1: return nibbles32(((const blk_q4_1 *)blk)->qs);
	case Q_Q5_0: {
		const blk_q5_0 *a = (const blk_q5_0 *)blk;
		__m256i hi = _mm256_and_si256(bits32(a->qh), _mm256_set1_epi8(0x10));
		return _mm256_or_si256(nibbles32(a->qs), hi);
	}
	case Q_Q5_1: {
		const blk_q5_1 *a = (const blk_q5_1 *)blk;
		__m256i hi = _mm256_and_si256(bits32(a->qh), _mm256_set1_epi8(0x10));
		return _mm256_or_si256(nibbles32(a->qs), hi);
	}
	default: return _mm256_xor_si256(load32(((const blk_q8_0 *)blk)->qs),
					 _mm256_set1_epi8((char)0x80));
	}
}

/* Activation block and -off * its lane sums. */
struct mn_x {
	__m256i q, neg;
};

INLINE void mn_loadx(uint32_t T, const uint8_t *b, struct mn_x *x)
{
	x->q = load32(b + (MN_MIN(T) ? 4 : 2));
	if (MN_OFF(T)) {
		__m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
						_mm256_set1_epi8((char)MN_OFF(T)), x->q);
		x->neg = _mm256_sub_epi32(_mm256_setzero_si256(), s);
	}
}

/* The (d, s) halves of K activation blocks: xd lane t = d_t, xsm lane t =
 * s_t, so one multiply scales a weight block against all K tokens. */
INLINE void mn_scales(int K, const uint8_t *x, size_t xs, size_t off, __m128 *xd, __m128 *xsm)
{
	int v[MN_K] = { 0 };
	QX_UNROLL
	for (int t = 0; t < K; t++)
		memcpy(&v[t], x + (size_t)t * xs + off, 4);
	__m256 f = _mm256_cvtph_ps(_mm_set_epi32(v[3], v[2], v[1], v[0])); /* d0 s0 d1 s1 .. */
	f = _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
	*xd = _mm256_castps256_ps128(f);
	*xsm = _mm256_extractf128_ps(f, 1);
}

/* lane t of v in all 8 lanes */
INLINE __m256 mn_lane(__m128 v, int t)
{
	if (t == 0)
		return _mm256_broadcastss_ps(v);
	return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(t));
}

INLINE void mn32_k(uint32_t T, int R, int K, int64_t n, const uint8_t *w, size_t ws,
		   const uint8_t *x, size_t xs, float *y, size_t yw, size_t ys)
{
	__m256 acc[MN_R][MN_K];
	__m128 mins[MN_R]; /* lane t: sum of m * s (Q4_1, Q5_1) */
	QX_UNROLL
	for (int r = 0; r < R; r++) {
		mins[r] = _mm_setzero_ps();
		QX_UNROLL
		for (int t = 0; t < K; t++)
			acc[r][t] = _mm256_setzero_ps();
	}
	for (int64_t i = 0; i < n / QK4; i++) {
		struct mn_x xb[MN_K];
		__m128 xd, xsm;
		mn_scales(K, x, xs, (size_t)i * MN_XB(T), &xd, &xsm);
		QX_UNROLL
		for (int t = 0; t < K; t++)
			mn_loadx(T, x + (size_t)t * xs + (size_t)i * MN_XB(T), &xb[t]);
		QX_UNROLL
		for (int r = 0; r < R; r++) {
			const uint8_t *a = w + (size_t)r * ws + (size_t)i * MN_WB(T);
			__m256i q = mn_wq(T, a);
			__m128 dm = h2f_pair((const uint16_t *)a); /* (d, m) */
			/* lane t: d * d_t, as dot's (d, m) * (d_t, s_t) lane 0 */
			__m128 dd = _mm_mul_ps(_mm_broadcastss_ps(dm), xd);
			if (MN_MIN(T))
				mins[r] = _mm_add_ps(mins[r], _mm_mul_ps(_mm_permute_ps(dm, 0x55), xsm));
			QX_UNROLL
			for (int t = 0; t < K; t++) {
				__m256i s0 = MN_OFF(T) ? xb[t].neg : _mm256_setzero_si256();
				__m256 p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(s0, q, xb[t].q));
				acc[r][t] = _mm256_fmadd_ps(mn_lane(dd, t), p, acc[r][t]);
			}
		}
	}
	QX_UNROLL
	for (int r = 0; r < R; r++) {
		float m[4];
		_mm_storeu_ps(m, mins[r]);
		store_k(K, acc[r], m, y + (size_t)r * yw, ys);
	}
}

#define MNCALL(T, R, K) mn32_k(T, R, K, n, w + (size_t)r * ws, ws, xb + (size_t)t * xs, xs, \
			       y + (size_t)r * yw + (size_t)t * ys, yw, ys)
/* nw weight rows ws bytes apart x nx activation rows: y[r * yw + t * ys] */
#define DOT_MN(name, T, dotn)                                                     \
	static void dot_mn_##name(int64_t n, const void *wv, size_t ws, int64_t nw,   \
				  const void *x, size_t xs, int64_t nx, float *y,     \
				  size_t yw, size_t ys)                               \
	{                                                                         \
		const uint8_t *w = wv, *xb = x;                                   \
		int64_t r = 0;                                                    \
		for (; nx >= MN_NX_MIN && r + MN_R <= nw; r += MN_R) {            \
			int64_t t = 0;                                            \
			for (; t + MN_K <= nx; t += MN_K)                         \
				MNCALL(T, MN_R, MN_K);                            \
			switch (nx - t) {                                         \
			case 3: MNCALL(T, MN_R, 3); break;                        \
			case 2: MNCALL(T, MN_R, 2); break;                        \
			case 1: MNCALL(T, MN_R, 1); break;                        \
			default: break;                                           \
			}                                                         \
		}                                                                 \
		for (; r < nw; r++)                                               \
			dotn(n, w + (size_t)r * ws, x, xs, nx, y + (size_t)r * yw, ys); \
	}

DOT_MN(q4_0, Q_Q4_0, dot_n_q4_0)
DOT_MN(q4_1, Q_Q4_1, dot_n_q4_1)
DOT_MN(q5_0, Q_Q5_0, dot_n_q5_0)
DOT_MN(q5_1, Q_Q5_1, dot_n_q5_1)
DOT_MN(q8_0, Q_Q8_0, dot_n_q8_0)
#endif

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

/* 32 floats times id, rounded half to even, -> 32 int8 */
static inline __m256i quant32_even(const float *x, float id)
{
#define QX_EVEN(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
	__m256 s = _mm256_set1_ps(id);
	return pack32(QX_EVEN(_mm256_mul_ps(_mm256_loadu_ps(x), s)),
		      QX_EVEN(_mm256_mul_ps(_mm256_loadu_ps(x + 8), s)),
		      QX_EVEN(_mm256_mul_ps(_mm256_loadu_ps(x + 16), s)),
		      QX_EVEN(_mm256_mul_ps(_mm256_loadu_ps(x + 24), s)));
#undef QX_EVEN
}

/* llama.cpp's x86 rule, as quant-ref.c's */
static void quantize_q8_1(const float *src, void *dst, int64_t n)
{
	blk_q8_1 *b = dst;
	for (int64_t i = 0; i < n / QK4; i++) {
		const float *x = src + i * QK4;
		float amax = absmax(x, QK4), d = amax / 127.0f;
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		__m256i q = quant32_even(x, id);
		_mm256_storeu_si256((__m256i *)b[i].qs, q);
		int sum = hsum_i32x8(dot_u8s8_i32(_mm256_set1_epi8(1), q));
		b[i].d = f32_to_fp16(d);
		b[i].s = f32_to_fp16((float)sum * d);
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

#endif
