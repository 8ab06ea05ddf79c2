/*
 * pack-x86-32.h — x86 packed GEMM kernels for the 32-element types (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0) and the PACK_A8 activation quantizer, included by
 * pack-avx2.c (QX_VNNI 0) and pack-avx512.c (QX_VNNI 1).
 *
 * Design: a tile is G groups of 8 rows x T tokens. Per block, each group's
 * 8 weight vectors are unpacked to u8 once and reused for all T tokens; per
 * token the int32 accumulator starts at -off * xsum (the type's offset,
 * folded into the init), takes 8 u8 x s8 dots against 4 broadcast
 * activation bytes (vpdpbusd with VNNI; maddubs + madd without), is
 * converted once, and enters the float accumulator with one fma on
 * dd = dw * dx (Q4_1/Q5_1: a second fma for the min). T = 8 with VNNI (32
 * registers), 4 without; decode (nx = 1) runs several groups side by side
 * so independent chains hide the latencies. With AVX-512 (the VNNI build)
 * a zmm holds two groups, 16 rows per instruction; an odd last group takes
 * the ymm path. Tile loops have constant trip counts and are unrolled
 * (P32_UNROLL), so the arrays of vectors live in registers.
 *
 * Invariant (pack.h): per (row, token) lane the float operations are
 * exactly the reference's, in the same order: (float)i, dw * dx, fmaf, and
 * a second fmaf on the block's sx for the min; integer sums are exact however
 * they are grouped (maddubs pairs never saturate: Q4 8 * 2 * 15 * 127,
 * Q5 4 * 2 * 31 * 127 < 32767 summed in i16; Q8_0 without VNNI uses the
 * signed quants, |q| <= 128, one maddubs per vector). So every tile shape
 * gives the reference's bits.
 *
 * Helpers carry the p32_ prefix: pack-x86-k.h lands in the same file.
 */
#ifndef PLOT_LLM_PACK_X86_32_H
#define PLOT_LLM_PACK_X86_32_H

#include "llm/quant/pack-impl.h"
#include "llm/quant/quant.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define P32_INLINE static inline __attribute__((always_inline))
/* the tiles' loops have constant trip counts: unrolled, their arrays of
 * vectors become registers */
#if defined(__clang__)
#define P32_UNROLL _Pragma("clang loop unroll(full)")
#else
#define P32_UNROLL _Pragma("GCC unroll 8")
#endif

#if QX_VNNI
#define P32_T 8
#else
#define P32_T 4
#endif

/* one packed block of one group, unpacked: v[g] is vector g (u8; Q8_0
 * without VNNI: the signed quants) */
struct p32_wb {
	__m256i v[8];
	__m256 dw, mw;
};

P32_INLINE __m256i p32_ld(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

P32_INLINE int p32_has_min(int t)
{
	return t == Q_Q4_1 || t == Q_Q5_1;
}

P32_INLINE size_t p32_bytes(int t)
{
	switch (t) {
	case Q_Q4_0: return sizeof(pk_q4_0);
	case Q_Q4_1: return sizeof(pk_q4_1);
	case Q_Q5_0: return sizeof(pk_q5_0);
	case Q_Q5_1: return sizeof(pk_q5_1);
	default: return sizeof(pk_q8_0);
	}
}

/* chunk c: vector 2c in the low nibbles, 2c + 1 in the high ones */
P32_INLINE void p32_nibbles(const uint8_t *qs, __m256i *v)
{
	const __m256i m = _mm256_set1_epi8(0x0F);
	P32_UNROLL
	for (int c = 0; c < 4; c++) {
		__m256i b = p32_ld(qs + 32 * c);
		v[2 * c] = _mm256_and_si256(b, m);
		v[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
	}
}

/* bit g of byte p -> bit 4 of vector g's byte p. A 16-bit shift by < 4
 * never carries a bit across the byte boundary into bit 4. */
P32_INLINE void p32_highbits(const uint8_t *qh, __m256i *v)
{
	const __m256i b4 = _mm256_set1_epi8(0x10);
	__m256i h = p32_ld(qh);
	v[0] = _mm256_or_si256(v[0], _mm256_and_si256(_mm256_slli_epi16(h, 4), b4));
	v[1] = _mm256_or_si256(v[1], _mm256_and_si256(_mm256_slli_epi16(h, 3), b4));
	v[2] = _mm256_or_si256(v[2], _mm256_and_si256(_mm256_slli_epi16(h, 2), b4));
	v[3] = _mm256_or_si256(v[3], _mm256_and_si256(_mm256_slli_epi16(h, 1), b4));
	v[4] = _mm256_or_si256(v[4], _mm256_and_si256(h, b4));
	v[5] = _mm256_or_si256(v[5], _mm256_and_si256(_mm256_srli_epi16(h, 1), b4));
	v[6] = _mm256_or_si256(v[6], _mm256_and_si256(_mm256_srli_epi16(h, 2), b4));
	v[7] = _mm256_or_si256(v[7], _mm256_and_si256(_mm256_srli_epi16(h, 3), b4));
}

P32_INLINE __m256 p32_halves(const uint16_t *h)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

P32_INLINE void p32_load(int t, const uint8_t *blk, struct p32_wb *w)
{
	switch (t) {
	case Q_Q4_0: {
		const pk_q4_0 *b = (const pk_q4_0 *)blk;
		w->dw = p32_halves(b->d), p32_nibbles(b->qs, w->v);
		break;
	}
	case Q_Q4_1: {
		const pk_q4_1 *b = (const pk_q4_1 *)blk;
		w->dw = p32_halves(b->d), w->mw = p32_halves(b->m), p32_nibbles(b->qs, w->v);
		break;
	}
	case Q_Q5_0: {
		const pk_q5_0 *b = (const pk_q5_0 *)blk;
		w->dw = p32_halves(b->d), p32_nibbles(b->qs, w->v), p32_highbits(b->qh, w->v);
		break;
	}
	case Q_Q5_1: {
		const pk_q5_1 *b = (const pk_q5_1 *)blk;
		w->dw = p32_halves(b->d), w->mw = p32_halves(b->m);
		p32_nibbles(b->qs, w->v), p32_highbits(b->qh, w->v);
		break;
	}
	default: {
		const pk_q8_0 *b = (const pk_q8_0 *)blk;
		w->dw = p32_halves(b->d);
		P32_UNROLL
		for (int g = 0; g < 8; g++)
			w->v[g] = QX_VNNI ? p32_ld(b->qs + 32 * g)
					  : _mm256_xor_si256(p32_ld(b->qs + 32 * g),
							     _mm256_set1_epi8((char)0x80));
	}
	}
}

/* activation bytes 4g .. 4g + 3 in every lane */
P32_INLINE __m256i p32_bx(const int8_t *xq, int g)
{
	int32_t v;
	memcpy(&v, xq + 4 * g, 4);
	return _mm256_set1_epi32(v);
}

#if QX_VNNI
/* two chains when the caller has no other independent work (T = 1) */
P32_INLINE __m256i p32_idot(int t, const struct p32_wb *w, const int8_t *xq, int32_t xsum,
			    int split)
{
	int off = t == Q_Q4_0 ? 8 : t == Q_Q5_0 ? 16 : t == Q_Q8_0 ? 128 : 0;
	__m256i a = _mm256_set1_epi32(-off * xsum), b = _mm256_setzero_si256();
	P32_UNROLL
	for (int g = 0; g < 8; g++) {
		if (split && (g & 1))
			b = _mm256_dpbusd_epi32(b, w->v[g], p32_bx(xq, g));
		else
			a = _mm256_dpbusd_epi32(a, w->v[g], p32_bx(xq, g));
	}
	return split ? _mm256_add_epi32(a, b) : a;
}
#else
/* i16 sums of n maddubs products of vectors g0 .. g0 + n - 1 */
P32_INLINE __m256i p32_sum16(const struct p32_wb *w, const int8_t *xq, int g0, int n)
{
	__m256i s = _mm256_maddubs_epi16(w->v[g0], p32_bx(xq, g0));
	P32_UNROLL
	for (int g = g0 + 1; g < g0 + n; g++)
		s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w->v[g], p32_bx(xq, g)));
	return s;
}

P32_INLINE __m256i p32_idot(int t, const struct p32_wb *w, const int8_t *xq, int32_t xsum,
			    int split)
{
	const __m256i ones = _mm256_set1_epi16(1);
	int off = t == Q_Q4_0 ? 8 : t == Q_Q5_0 ? 16 : 0;
	__m256i a = _mm256_set1_epi32(-off * xsum);
	if (t == Q_Q4_0 || t == Q_Q4_1)
		return _mm256_add_epi32(a, _mm256_madd_epi16(p32_sum16(w, xq, 0, 8), ones));
	if (t == Q_Q5_0 || t == Q_Q5_1) {
		a = _mm256_add_epi32(a, _mm256_madd_epi16(p32_sum16(w, xq, 0, 4), ones));
		return _mm256_add_epi32(a, _mm256_madd_epi16(p32_sum16(w, xq, 4, 4), ones));
	}
	/* Q8_0: |q| as the unsigned side, q's sign moved onto x */
	P32_UNROLL
	for (int g = 0; g < 8; g++) {
		__m256i s = w->v[g];
		__m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(s), _mm256_sign_epi8(p32_bx(xq, g), s));
		a = _mm256_add_epi32(a, _mm256_madd_epi16(p, ones));
	}
	return a;
}
#endif

/* acc = fmaf((float)i, dw * dx, acc) [; acc = fmaf(mw, sx, acc)] */
P32_INLINE __m256 p32_fma(int t, const struct p32_wb *w, const pk_a8 *a, int split, __m256 acc)
{
	__m256i i = p32_idot(t, w, a->qs, a->sum, split);
	__m256 dd = _mm256_mul_ps(w->dw, _mm256_set1_ps(a->d));
	acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), dd, acc);
	if (p32_has_min(t))
		acc = _mm256_fmadd_ps(w->mw, _mm256_set1_ps(a->s), acc);
	return acc;
}

/* G groups (gs bytes apart) x T tokens over nb blocks; y[k * ys + 8 * j + r] */
P32_INLINE void p32_tile(int t, int G, int T, int64_t nb, const uint8_t *w, size_t gs,
			 const uint8_t *x, size_t xs, float *y, size_t ys)
{
	__m256 acc[2][P32_T];
	size_t bytes = p32_bytes(t);
	P32_UNROLL
	for (int j = 0; j < G; j++)
		P32_UNROLL
		for (int k = 0; k < T; k++)
			acc[j][k] = _mm256_setzero_ps();
	for (int64_t b = 0; b < nb; b++)
		P32_UNROLL
		for (int j = 0; j < G; j++) {
			struct p32_wb wb;
			p32_load(t, w + (size_t)j * gs + (size_t)b * bytes, &wb);
			P32_UNROLL
			for (int k = 0; k < T; k++)
				acc[j][k] = p32_fma(t, &wb, (const pk_a8 *)(x + (size_t)k * xs) + b,
						    T == 1 && G == 1, acc[j][k]);
		}
	P32_UNROLL
	for (int j = 0; j < G; j++)
		P32_UNROLL
		for (int k = 0; k < T; k++)
			_mm256_storeu_ps(y + (size_t)k * ys + 8 * j, acc[j][k]);
}

/* one group against every token: full tiles, then 4 / 2 / 1 for the rest */
P32_INLINE void p32_group(int t, int64_t nb, const uint8_t *w, const uint8_t *x, size_t xs,
			  int64_t nx, float *y, size_t ys)
{
	int64_t k = 0;
	for (; k + P32_T <= nx; k += P32_T)
		p32_tile(t, 1, P32_T, nb, w, 0, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
#if P32_T > 4
	if (nx - k >= 4) {
		p32_tile(t, 1, 4, nb, w, 0, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
		k += 4;
	}
#endif
	if (nx - k >= 2) {
		p32_tile(t, 1, 2, nb, w, 0, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
		k += 2;
	}
	if (nx - k >= 1)
		p32_tile(t, 1, 1, nb, w, 0, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
}

#if QX_VNNI
/* ---- AVX-512: two groups per zmm (lanes 0..7 group j, 8..15 group j + 1) --
 * The same per-lane operations as above on twice the rows per instruction;
 * vpdpbusd zmm issues on both FMA ports where ymm would use the pair. */

struct p32_wz {
	__m512i v[8];
	__m512 dw, mw;
};

P32_INLINE size_t p32_off_qs(int t)
{
	switch (t) {
	case Q_Q4_0: return offsetof(pk_q4_0, qs);
	case Q_Q4_1: return offsetof(pk_q4_1, qs);
	case Q_Q5_0: return offsetof(pk_q5_0, qs);
	case Q_Q5_1: return offsetof(pk_q5_1, qs);
	default: return offsetof(pk_q8_0, qs);
	}
}

/* 32 bytes at a (group j) and at a + gs (group j + 1) */
P32_INLINE __m512i p32_ld2(const uint8_t *a, size_t gs)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(p32_ld(a)), p32_ld(a + gs), 1);
}

/* 8 halves at a and at a + gs -> 16 floats */
P32_INLINE __m512 p32_halves2(const uint8_t *a, size_t gs)
{
	__m128i lo = _mm_loadu_si128((const __m128i *)a), hi = _mm_loadu_si128((const __m128i *)(a + gs));
	return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}

_Static_assert(offsetof(pk_q4_1, m) == 16 && offsetof(pk_q5_1, m) == 16, "m follows d[8]");
_Static_assert(offsetof(pk_q5_0, qs) - offsetof(pk_q5_0, qh) == 32 &&
		       offsetof(pk_q5_1, qs) - offsetof(pk_q5_1, qh) == 32,
	       "qh[32] just before qs");

P32_INLINE void p32_load2(int t, const uint8_t *blk, size_t gs, struct p32_wz *w)
{
	const __m512i m = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
	const uint8_t *qs = blk + p32_off_qs(t);
	w->dw = p32_halves2(blk, gs); /* d[8] opens every block */
	if (p32_has_min(t))
		w->mw = p32_halves2(blk + 16, gs); /* m[8] follows d[8] */
	if (t == Q_Q8_0) {
		P32_UNROLL
		for (int g = 0; g < 8; g++)
			w->v[g] = p32_ld2(qs + 32 * g, gs);
		return;
	}
	P32_UNROLL
	for (int c = 0; c < 4; c++) {
		__m512i b = p32_ld2(qs + 32 * c, gs);
		w->v[2 * c] = _mm512_and_si512(b, m);
		w->v[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(b, 4), m);
	}
	if (t == Q_Q5_0 || t == Q_Q5_1) {
		/* qh[32] sits just before qs[128] */
		__m512i h = p32_ld2(qs - 32, gs);
		w->v[0] = _mm512_or_si512(w->v[0], _mm512_and_si512(_mm512_slli_epi16(h, 4), b4));
		w->v[1] = _mm512_or_si512(w->v[1], _mm512_and_si512(_mm512_slli_epi16(h, 3), b4));
		w->v[2] = _mm512_or_si512(w->v[2], _mm512_and_si512(_mm512_slli_epi16(h, 2), b4));
		w->v[3] = _mm512_or_si512(w->v[3], _mm512_and_si512(_mm512_slli_epi16(h, 1), b4));
		w->v[4] = _mm512_or_si512(w->v[4], _mm512_and_si512(h, b4));
		w->v[5] = _mm512_or_si512(w->v[5], _mm512_and_si512(_mm512_srli_epi16(h, 1), b4));
		w->v[6] = _mm512_or_si512(w->v[6], _mm512_and_si512(_mm512_srli_epi16(h, 2), b4));
		w->v[7] = _mm512_or_si512(w->v[7], _mm512_and_si512(_mm512_srli_epi16(h, 3), b4));
	}
}

P32_INLINE __m512 p32_fma2(int t, const struct p32_wz *w, const pk_a8 *a, int split, __m512 acc)
{
	int off = t == Q_Q4_0 ? 8 : t == Q_Q5_0 ? 16 : t == Q_Q8_0 ? 128 : 0;
	__m512i i = _mm512_set1_epi32(-off * a->sum), i2 = _mm512_setzero_si512();
	P32_UNROLL
	for (int g = 0; g < 8; g++) {
		int32_t v;
		memcpy(&v, a->qs + 4 * g, 4);
		if (split && (g & 1))
			i2 = _mm512_dpbusd_epi32(i2, w->v[g], _mm512_set1_epi32(v));
		else
			i = _mm512_dpbusd_epi32(i, w->v[g], _mm512_set1_epi32(v));
	}
	if (split)
		i = _mm512_add_epi32(i, i2);
	__m512 dd = _mm512_mul_ps(w->dw, _mm512_set1_ps(a->d));
	acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), dd, acc);
	if (p32_has_min(t))
		acc = _mm512_fmadd_ps(w->mw, _mm512_set1_ps(a->s), acc);
	return acc;
}

/* P pairs of groups (pair j at w + 2j gs) x T tokens */
P32_INLINE void p32_tile2(int t, int P, int T, int64_t nb, const uint8_t *w, size_t gs,
			  const uint8_t *x, size_t xs, float *y, size_t ys)
{
	__m512 acc[2][P32_T];
	size_t bytes = p32_bytes(t);
	P32_UNROLL
	for (int j = 0; j < P; j++)
		P32_UNROLL
		for (int k = 0; k < T; k++)
			acc[j][k] = _mm512_setzero_ps();
	for (int64_t b = 0; b < nb; b++)
		P32_UNROLL
		for (int j = 0; j < P; j++) {
			struct p32_wz wz;
			p32_load2(t, w + (size_t)(2 * j) * gs + (size_t)b * bytes, gs, &wz);
			P32_UNROLL
			for (int k = 0; k < T; k++)
				acc[j][k] = p32_fma2(t, &wz, (const pk_a8 *)(x + (size_t)k * xs) + b,
						     T == 1, acc[j][k]);
		}
	P32_UNROLL
	for (int j = 0; j < P; j++)
		P32_UNROLL
		for (int k = 0; k < T; k++)
			_mm512_storeu_ps(y + (size_t)k * ys + 16 * j, acc[j][k]);
}

/* one pair of groups against every token */
P32_INLINE void p32_pair(int t, int64_t nb, const uint8_t *w, size_t gs, const uint8_t *x,
			 size_t xs, int64_t nx, float *y, size_t ys)
{
	int64_t k = 0;
	for (; k + 8 <= nx; k += 8)
		p32_tile2(t, 1, 8, nb, w, gs, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
	if (nx - k >= 4) {
		p32_tile2(t, 1, 4, nb, w, gs, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
		k += 4;
	}
	if (nx - k >= 2) {
		p32_tile2(t, 1, 2, nb, w, gs, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
		k += 2;
	}
	if (nx - k >= 1)
		p32_tile2(t, 1, 1, nb, w, gs, x + (size_t)k * xs, xs, y + (size_t)k * ys, ys);
}

/* Pairs of groups in zmm (nx = 1: two pairs side by side), an odd last
 * group in ymm. */
P32_INLINE void p32_gemm(int t, int64_t cols, const void *w, size_t gs, int64_t ng,
			 const void *x, size_t xs, int64_t nx, float *y, size_t ys)
{
	const uint8_t *wb = w, *xb = x;
	int64_t nb = cols / 32, g = 0;
	if (nx == 1)
		for (; g + 4 <= ng; g += 4)
			p32_tile2(t, 2, 1, nb, wb + (size_t)g * gs, gs, xb, xs, y + 8 * g, ys);
	for (; g + 2 <= ng; g += 2)
		p32_pair(t, nb, wb + (size_t)g * gs, gs, xb, xs, nx, y + 8 * g, ys);
	if (g < ng)
		p32_group(t, nb, wb + (size_t)g * gs, xb, xs, nx, y + 8 * g, ys);
}
#else
/* Groups outermost: a group's blocks stay in L1 while all tokens pass. */
P32_INLINE void p32_gemm(int t, int64_t cols, const void *w, size_t gs, int64_t ng,
			 const void *x, size_t xs, int64_t nx, float *y, size_t ys)
{
	const uint8_t *wb = w, *xb = x;
	int64_t nb = cols / 32, g = 0;
	if (nx == 1)
		for (; g + 2 <= ng; g += 2)
			p32_tile(t, 2, 1, nb, wb + (size_t)g * gs, gs, xb, xs, y + 8 * g, ys);
	for (; g < ng; g++)
		p32_group(t, nb, wb + (size_t)g * gs, xb, xs, nx, y + 8 * g, ys);
}
#endif

#define P32_GEMM(name, T)                                                                  \
	static void p32_gemm_##name(int64_t cols, const void *w, size_t gs, int64_t ng,    \
				    const void *x, size_t xs, int64_t nx, float *y, size_t ys) \
	{                                                                                  \
		p32_gemm(T, cols, w, gs, ng, x, xs, nx, y, ys);                            \
	}

P32_GEMM(q4_0, Q_Q4_0)
P32_GEMM(q4_1, Q_Q4_1)
P32_GEMM(q5_0, Q_Q5_0)
P32_GEMM(q5_1, Q_Q5_1)
P32_GEMM(q8_0, Q_Q8_0)

/* ---- PACK_A8 quantizer: pack_ref_quantize_a8 bit for bit ----------------- */

/* max |x| over 32; abs(x) first in max_ps so a NaN is skipped, as the
 * reference's "fabsf(x) > amax" does */
P32_INLINE float p32_absmax(const float *x)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_setzero_ps();
	P32_UNROLL
	for (int j = 0; j < 32; j += 8)
		m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
	__m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	r = _mm_max_ps(r, _mm_movehl_ps(r, r));
	r = _mm_max_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

/* fp16 rounding (to nearest even, as f32_to_fp16) of a and b, back as floats */
P32_INLINE void p32_fp16x2(float *a, float *b)
{
	__m128 v = _mm_cvtph_ps(_mm_cvtps_ph(_mm_setr_ps(*a, *b, 0, 0), _MM_FROUND_TO_NEAREST_INT));
	*a = _mm_cvtss_f32(v);
	*b = _mm_cvtss_f32(_mm_movehdup_ps(v));
}

/* llama.cpp's x86 quantize_row_q8_0 / q8_1 numbers (pack.h) */
static void p32_quantize_a8(const float *x, void *dst, int64_t n)
{
	pk_a8 *b = dst;
	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		float amax = p32_absmax(x);
		float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
		__m256 s = _mm256_set1_ps(id);
		__m256i q[4];
		for (int k = 0; k < 4; k++)
			q[k] = _mm256_cvtps_epi32(_mm256_round_ps(
				_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s),
				_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		__m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
		__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
		s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
					       _mm256_packs_epi32(q[2], q[3]));
		/* packs work per 128-bit lane; restore element order */
		p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)b[i].qs, p);
		b[i].sum = _mm_cvtsi128_si32(s4);
		b[i].d = d;
		b[i].s = d * (float)b[i].sum;
		p32_fp16x2(&b[i].d, &b[i].s);
	}
}

/* table entries "[type] = fn," for pack_kernels.gemm */
#define PACK_X86_32_GEMMS                                                          \
	[Q_Q4_0] = p32_gemm_q4_0, [Q_Q4_1] = p32_gemm_q4_1, [Q_Q5_0] = p32_gemm_q5_0, \
	[Q_Q5_1] = p32_gemm_q5_1, [Q_Q8_0] = p32_gemm_q8_0,
#define PACK_X86_QUANTIZE_A8 p32_quantize_a8

#endif
