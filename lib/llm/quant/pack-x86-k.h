/*
 * pack-x86-k.h — x86 packed GEMM kernels for the K-quants (Q4_K, Q5_K,
 * Q6_K) against Q8_K activations, included by pack-avx2.c (QX_VNNI 0) and
 * pack-avx512.c (QX_VNNI 1). Layouts: pack-impl.h; numbers: pack.h.
 *
 * Design: a tile is NG groups of 8 rows x NT tokens (NT = 8 with VNNI and
 * its 32 registers, 4 on AVX2's 16; nx == 1 takes 2 groups for ILP). With
 * AVX-512 the groups go in pairs through zmm tiles (pkz_*: 16 rows per
 * vpdpbusd, which issues here at the ymm rate; decode takes two pairs); an
 * odd last group and the AVX2 level take the ymm tile (pkk_tile). Per 32-element chunk each
 * weight vector is unpacked once (nibble + high-bit planes) and multiplied
 * with the NT tokens' 4 broadcast activation bytes;
 * the 8 int32 lanes are the 8 rows. Per sub-block ("unit": 32 elements, 16
 * for Q6_K) the integer sum is scaled by its per-row scale and summed over
 * the super-block in int32:
 *   VNNI: vpdpbusd into int32, then mullo by the scale at the end of the unit;
 *   AVX2: maddubs into int16 (add_epi16) for up to F vectors, then madd by
 *         the scale as an int16 pair (sc, sc): one op for widen and scale.
 * The Q4_K/Q5_K mins (sum_j m_j (bsum[2j] + bsum[2j+1])) and Q6_K's -32
 * offset (32 sum_j sc_j bsum_j) are 8 madd_epi16 per token of (m_j, m_j) or
 * (sc_2i, sc_2i+1) pairs with the broadcast bsum pair. Then per super-block
 * and token: cvt, d * dx, fma (and the min's fma) in pack.h's order, so the
 * bits equal gemm_ref's whatever the tile, level or register width.
 * Cost, from uop counts that match the measured rates (zmm, 8 tokens): Q4_K
 * is bound by vpdpbusd + the unit's mullo (2 uops) on the two 512-bit
 * ports; Q6_K's 16-element units double the mullo share (about 30% of its
 * time). Decode (nx = 1) is bound by unpacking, which no token amortizes.
 *
 * Bounds (all sums exact): q <= 15/31/63, |x| <= 128, 8 vectors per unit.
 *   maddubs pair sums <= 2*15*128 = 3840 (Q4_K), 7936 (Q5_K), 16128 (Q6_K):
 *   no saturation; int16 sums of F = 8/4/2 of them <= 30720 / 31744 / 32256.
 *   Unit sums |S| <= 32*31*128 = 126976 (Q5_K), 16*63*128 = 129024 (Q6_K);
 *   iq <= 8*63*126976 = 64e6 (Q5_K), Q6_K: 16*128*129024 = 264e6 and the
 *   offset 32*16*128*2048 = 134e6; mins 8*63*4096 = 2.1e6: all < 2^31 as
 *   long as bsums are the true group sums (the Q8_K quantizer's).
 */
#ifndef PLOT_LLM_PACK_X86_K_H
#define PLOT_LLM_PACK_X86_K_H

#include "llm/quant/pack-impl.h"
#include "llm/quant/quant.h"

#include <immintrin.h>
#include <string.h>

#define PKK_INLINE static inline __attribute__((always_inline))

/* the tiles' loops have constant trip counts: unrolled, their arrays of
 * vectors live in registers (clang ignores GCC's pragma) */
#if defined(__clang__)
#define PKK_UNROLL _Pragma("clang loop unroll(full)")
#else
#define PKK_UNROLL _Pragma("GCC unroll 8")
#endif

#if QX_VNNI
#define PKK_T 8
#else
#define PKK_T 4
#endif

PKK_INLINE __m256i pkk_load(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* 4 bytes at p in all 8 lanes (folds into an embedded broadcast with EVEX) */
PKK_INLINE __m256i pkk_bcast4(const void *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* left by s bits if s > 0, else right; 16-bit lanes (callers mask one bit
 * per byte, which never comes from the neighbour byte for |s| <= 7 - bit) */
PKK_INLINE __m256i pkk_shift(__m256i v, int s)
{
	if (s > 0)
		return _mm256_slli_epi16(v, s);
	if (s < 0)
		return _mm256_srli_epi16(v, -s);
	return v;
}

/* int16 pairs (lo, hi) per 32-bit lane from two int32 vectors of small values */
PKK_INLINE __m256i pkk_pair(__m256i lo, __m256i hi)
{
	return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)),
			       _mm256_slli_epi32(hi, 16));
}

/* 8 row bytes -> int32 lanes */
PKK_INLINE __m256i pkk_row_bytes(const void *p, int is_signed)
{
	__m128i b = _mm_loadl_epi64((const __m128i *)p);
	return is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

/* ---- the packed block's fields, by number of high-bit planes ------------- */

PKK_INLINE size_t pkk_bytes(int planes)
{
	return planes == 0 ? sizeof(pk_q4_K) : planes == 1 ? sizeof(pk_q5_K) : sizeof(pk_q6_K);
}

PKK_INLINE const uint8_t *pkk_qs(const uint8_t *blk, int planes, int c)
{
	if (planes == 0)
		return ((const pk_q4_K *)blk)->qs[c];
	if (planes == 1)
		return ((const pk_q5_K *)blk)->qs[c];
	return ((const pk_q6_K *)blk)->qs[c];
}

PKK_INLINE const uint8_t *pkk_qh(const uint8_t *blk, int planes, int c)
{
	if (planes == 1)
		return ((const pk_q5_K *)blk)->qh[c];
	return ((const pk_q6_K *)blk)->qh[c];
}

/* scale bytes of unit j (sub-block of 32, Q6_K: of 16), one per row */
PKK_INLINE const void *pkk_sc(const uint8_t *blk, int planes, int j)
{
	if (planes == 2)
		return ((const pk_q6_K *)blk)->sc[j];
	return ((const pk_q4_K *)blk)->sc[j]; /* same offset in pk_q5_K */
}

/* A chunk's high bits, prepared once for its 8 vectors. Q5_K: hb[0] is
 * the plane. Q6_K: the two planes interleaved, so that each vector takes its
 * two bits with one shift: hb[0] = bit g of plane 0 at g, of plane 1 at
 * g + 1, for even g; hb[1] the same for odd g, moved down by one. */
PKK_INLINE void pkk_hbits(const uint8_t *qh, int planes, __m256i *hb)
{
	if (planes == 1) {
		hb[0] = pkk_load(qh);
	} else if (planes == 2) {
		const __m256i m55 = _mm256_set1_epi8(0x55), mAA = _mm256_set1_epi8((char)0xAA);
		__m256i p0 = pkk_load(qh), p1 = pkk_load(qh + 32);
		hb[0] = _mm256_or_si256(_mm256_and_si256(p0, m55),
					_mm256_and_si256(_mm256_slli_epi16(p1, 1), mAA));
		hb[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p0, 1), m55),
					_mm256_and_si256(p1, mAA));
	}
}

/* weight vector g (0..7) of a chunk: the nibble plus bit 4 (+ bit 5) */
PKK_INLINE __m256i pkk_wvec(const uint8_t *qs, const __m256i *hb, int planes, int g)
{
	__m256i v = pkk_load(qs + 32 * (g / 2));
	if (g & 1)
		v = _mm256_srli_epi16(v, 4);
	v = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
	if (planes == 1)
		v = _mm256_or_si256(v, _mm256_and_si256(pkk_shift(hb[0], 4 - g),
							_mm256_set1_epi8(0x10)));
	else if (planes == 2)
		v = _mm256_or_si256(v, _mm256_and_si256(pkk_shift(hb[g & 1], 4 - (g & ~1)),
							_mm256_set1_epi8(0x30)));
	return v;
}

/* ---- the integer core --------------------------------------------------- */

#if QX_VNNI
#define PKK_FLUSH(planes) ((planes) == 2 ? 4 : 8) /* the unit */
PKK_INLINE __m256i pkk_dot(__m256i acc, __m256i w, __m256i x)
{
	return _mm256_dpbusd_epi32(acc, w, x);
}

PKK_INLINE __m256i pkk_scale(const void *sc, int is_signed)
{
	return pkk_row_bytes(sc, is_signed);
}

PKK_INLINE __m256i pkk_flush(__m256i iq, __m256i acc, __m256i sc)
{
	return _mm256_add_epi32(iq, _mm256_mullo_epi32(acc, sc));
}
#else
#define PKK_FLUSH(planes) (8 >> (planes)) /* int16 sums stay < 2^15 */
PKK_INLINE __m256i pkk_dot(__m256i acc, __m256i w, __m256i x)
{
	return _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, x));
}

PKK_INLINE __m256i pkk_scale(const void *sc, int is_signed)
{
	__m256i s = pkk_row_bytes(sc, is_signed);
	return pkk_pair(s, s);
}

PKK_INLINE __m256i pkk_flush(__m256i iq, __m256i acc, __m256i sc)
{
	return _mm256_add_epi32(iq, _mm256_madd_epi16(acc, sc));
}
#endif

/* The bsum side per super-block: aux[i] . (bsum[2i], bsum[2i+1]) summed
 * over i gives the mins (Q4_K/Q5_K: aux = (m_i, m_i)) or the offset's
 * sum_j sc_j bsum_j (Q6_K: aux = (sc_2i, sc_2i+1)). */
PKK_INLINE void pkk_aux(const uint8_t *blk, int planes, __m256i *aux)
{
	for (int i = 0; i < 8; i++) {
		if (planes == 2) {
			const pk_q6_K *p = (const pk_q6_K *)blk;
			aux[i] = pkk_pair(pkk_row_bytes(p->sc[2 * i], 1),
					  pkk_row_bytes(p->sc[2 * i + 1], 1));
		} else {
			__m256i m = pkk_row_bytes(((const pk_q4_K *)blk)->m[i], 0);
			aux[i] = pkk_pair(m, m);
		}
	}
}

PKK_INLINE __m256i pkk_bsum_dot(const __m256i *aux, const blk_q8_K *a)
{
	__m256i s = _mm256_madd_epi16(aux[0], pkk_bcast4(&a->bsums[0]));
	for (int i = 1; i < 8; i++)
		s = _mm256_add_epi32(s, _mm256_madd_epi16(aux[i], pkk_bcast4(&a->bsums[2 * i])));
	return s;
}

/* 8 fp16 at p -> floats */
PKK_INLINE __m256 pkk_h8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* iq, bsum term -> facc, in pack.h's order */
PKK_INLINE __m256 pkk_finish(const uint8_t *blk, int planes, __m256i iq, __m256i bs, float dx,
			     __m256 facc)
{
	__m256 vdx = _mm256_set1_ps(dx);
	if (planes == 2) {
		iq = _mm256_sub_epi32(iq, _mm256_slli_epi32(bs, 5));
		__m256 d = _mm256_mul_ps(pkk_h8(((const pk_q6_K *)blk)->d), vdx);
		return _mm256_fmadd_ps(_mm256_cvtepi32_ps(iq), d, facc);
	}
	const pk_q4_K *p = (const pk_q4_K *)blk; /* d, dmin at the same offsets in pk_q5_K */
	facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iq), _mm256_mul_ps(pkk_h8(p->d), vdx), facc);
	__m256 nim = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_setzero_si256(), bs));
	return _mm256_fmadd_ps(nim, _mm256_mul_ps(pkk_h8(p->dmin), vdx), facc);
}

/* ---- the tile ------------------------------------------------------------ */

/*
 * NG groups (gs bytes apart, from w) x NT tokens (xs bytes apart, from x):
 * y[t * ys + 8 * g + r]. planes, NG, NT are constants at every call, so
 * the unrolled loops keep the arrays in registers.
 */
PKK_INLINE void pkk_tile(int planes, int NG, int NT, int64_t nb, const uint8_t *w, size_t gs,
			 const uint8_t *x, size_t xs, float *y, size_t ys)
{
	const size_t pb = pkk_bytes(planes);
	const int flush = PKK_FLUSH(planes), unit = planes == 2 ? 4 : 8;
	__m256 facc[2][PKK_T];
PKK_UNROLL
	for (int g = 0; g < NG; g++)
PKK_UNROLL
		for (int t = 0; t < NT; t++)
			facc[g][t] = _mm256_setzero_ps();
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *blk[2];
		const blk_q8_K *xb[PKK_T];
		__m256i iq[2][PKK_T], acc[2][PKK_T];
PKK_UNROLL
		for (int g = 0; g < NG; g++) {
			blk[g] = w + (size_t)g * gs + (size_t)b * pb;
PKK_UNROLL
			for (int t = 0; t < NT; t++)
				iq[g][t] = _mm256_setzero_si256();
		}
PKK_UNROLL
		for (int t = 0; t < NT; t++)
			xb[t] = (const blk_q8_K *)(x + (size_t)t * xs) + b;
		for (int c = 0; c < 8; c++) {
			__m256i hb[2][2];
PKK_UNROLL
			for (int g = 0; g < NG; g++)
				if (planes)
					pkk_hbits(pkk_qh(blk[g], planes, c), planes, hb[g]);
PKK_UNROLL
			for (int v = 0; v < 8; v++) {
PKK_UNROLL
				for (int g = 0; g < NG; g++) {
					__m256i wv = pkk_wvec(pkk_qs(blk[g], planes, c), hb[g], planes, v);
PKK_UNROLL
					for (int t = 0; t < NT; t++) {
						__m256i xv = pkk_bcast4(&xb[t]->qs[32 * c + 4 * v]);
						if (v % flush == 0)
							acc[g][t] = _mm256_setzero_si256();
						acc[g][t] = pkk_dot(acc[g][t], wv, xv);
					}
				}
				if (v % flush != flush - 1)
					continue;
				int j = planes == 2 ? 2 * c + v / unit : c;
PKK_UNROLL
				for (int g = 0; g < NG; g++) {
					__m256i sc = pkk_scale(pkk_sc(blk[g], planes, j), planes == 2);
PKK_UNROLL
					for (int t = 0; t < NT; t++)
						iq[g][t] = pkk_flush(iq[g][t], acc[g][t], sc);
				}
			}
		}
PKK_UNROLL
		for (int g = 0; g < NG; g++) {
			__m256i aux[8];
			pkk_aux(blk[g], planes, aux);
PKK_UNROLL
			for (int t = 0; t < NT; t++)
				facc[g][t] = pkk_finish(blk[g], planes, iq[g][t], pkk_bsum_dot(aux, xb[t]),
							xb[t]->d, facc[g][t]);
		}
	}
PKK_UNROLL
	for (int g = 0; g < NG; g++)
PKK_UNROLL
		for (int t = 0; t < NT; t++)
			_mm256_storeu_ps(y + (size_t)t * ys + 8 * (size_t)g, facc[g][t]);
}

#if QX_VNNI
/* ---- AVX-512: two groups in one zmm ----------------------------------------
 * The same tile with 16 rows per register: lanes 0..7 are group A's rows,
 * 8..15 group B's (gs bytes on), both halves multiplied by the same
 * broadcast activation bytes. zmm vpdpbusd runs at ymm's instruction rate,
 * so each instruction does twice the work. Lane for lane the operations are
 * the ymm tile's, so the bits are too. */

PKK_INLINE __m512i pkz_load2(const uint8_t *a, size_t gs)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(pkk_load(a)), pkk_load(a + gs), 1);
}

PKK_INLINE __m512i pkz_shift(__m512i v, int s)
{
	if (s > 0)
		return _mm512_slli_epi16(v, (unsigned)s);
	if (s < 0)
		return _mm512_srli_epi16(v, (unsigned)-s);
	return v;
}

PKK_INLINE __m512i pkz_pair(__m512i lo, __m512i hi)
{
	return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)),
			       _mm512_slli_epi32(hi, 16));
}

/* 8 row bytes of each group -> 16 int32 lanes */
PKK_INLINE __m512i pkz_row_bytes(const void *a, size_t gs, int is_signed)
{
	__m128i b = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a),
				       _mm_loadl_epi64((const __m128i *)((const uint8_t *)a + gs)));
	return is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

PKK_INLINE __m512 pkz_h16(const uint16_t *a, size_t gs)
{
	__m256i h = _mm256_inserti128_si256(
		_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
		_mm_loadu_si128((const __m128i *)((const uint8_t *)a + gs)), 1);
	return _mm512_cvtph_ps(h);
}

PKK_INLINE void pkz_hbits(const uint8_t *qh, size_t gs, int planes, __m512i *hb)
{
	if (planes == 1) {
		hb[0] = pkz_load2(qh, gs);
	} else if (planes == 2) {
		const __m512i m55 = _mm512_set1_epi8(0x55), mAA = _mm512_set1_epi8((char)0xAA);
		__m512i p0 = pkz_load2(qh, gs), p1 = pkz_load2(qh + 32, gs);
		hb[0] = _mm512_or_si512(_mm512_and_si512(p0, m55),
					_mm512_and_si512(_mm512_slli_epi16(p1, 1), mAA));
		hb[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(p0, 1), m55),
					_mm512_and_si512(p1, mAA));
	}
}

PKK_INLINE __m512i pkz_wvec(const uint8_t *qs, size_t gs, const __m512i *hb, int planes, int g)
{
	__m512i v = pkz_load2(qs + 32 * (g / 2), gs);
	if (g & 1)
		v = _mm512_srli_epi16(v, 4);
	v = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
	if (planes == 1)
		v = _mm512_or_si512(v, _mm512_and_si512(pkz_shift(hb[0], 4 - g),
							_mm512_set1_epi8(0x10)));
	else if (planes == 2)
		v = _mm512_or_si512(v, _mm512_and_si512(pkz_shift(hb[g & 1], 4 - (g & ~1)),
							_mm512_set1_epi8(0x30)));
	return v;
}

PKK_INLINE __m512i pkz_bsum_dot(const __m512i *aux, const blk_q8_K *a)
{
	__m512i s = _mm512_setzero_si512();
	for (int i = 0; i < 8; i++) {
		int32_t v;
		memcpy(&v, &a->bsums[2 * i], 4);
		s = _mm512_add_epi32(s, _mm512_madd_epi16(aux[i], _mm512_set1_epi32(v)));
	}
	return s;
}

PKK_INLINE void pkz_aux(const uint8_t *blk, size_t gs, int planes, __m512i *aux)
{
	for (int i = 0; i < 8; i++) {
		if (planes == 2) {
			const pk_q6_K *p = (const pk_q6_K *)blk;
			aux[i] = pkz_pair(pkz_row_bytes(p->sc[2 * i], gs, 1),
					  pkz_row_bytes(p->sc[2 * i + 1], gs, 1));
		} else {
			__m512i m = pkz_row_bytes(((const pk_q4_K *)blk)->m[i], gs, 0);
			aux[i] = pkz_pair(m, m);
		}
	}
}

PKK_INLINE __m512 pkz_finish(const uint8_t *blk, size_t gs, int planes, __m512i iq, __m512i bs,
			     float dx, __m512 facc)
{
	__m512 vdx = _mm512_set1_ps(dx);
	if (planes == 2) {
		iq = _mm512_sub_epi32(iq, _mm512_slli_epi32(bs, 5));
		__m512 d = _mm512_mul_ps(pkz_h16(((const pk_q6_K *)blk)->d, gs), vdx);
		return _mm512_fmadd_ps(_mm512_cvtepi32_ps(iq), d, facc);
	}
	const pk_q4_K *p = (const pk_q4_K *)blk;
	facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iq), _mm512_mul_ps(pkz_h16(p->d, gs), vdx), facc);
	__m512 nim = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_setzero_si512(), bs));
	return _mm512_fmadd_ps(nim, _mm512_mul_ps(pkz_h16(p->dmin, gs), vdx), facc);
}

/* NP pairs of groups (w + 2 p gs and the next) x NT tokens: y[t * ys +
 * 16 p + r], r < 16; lane l = p * NT + t. NP = 2 only with NT = 1
 * (decode: two independent chains and weight streams). */
PKK_INLINE void pkz_tile(int planes, int NP, int NT, int64_t nb, const uint8_t *w, size_t gs,
			 const uint8_t *x, size_t xs, float *y, size_t ys)
{
	const size_t pb = pkk_bytes(planes);
	const int unit = planes == 2 ? 4 : 8, NL = NP * NT;
	__m512 facc[PKK_T];
PKK_UNROLL
	for (int l = 0; l < NL; l++)
		facc[l] = _mm512_setzero_ps();
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *blk[2];
		const blk_q8_K *xb[PKK_T];
		__m512i iq[PKK_T], acc[PKK_T];
PKK_UNROLL
		for (int p = 0; p < NP; p++)
			blk[p] = w + 2 * (size_t)p * gs + (size_t)b * pb;
PKK_UNROLL
		for (int l = 0; l < NL; l++)
			iq[l] = _mm512_setzero_si512();
PKK_UNROLL
		for (int t = 0; t < NT; t++)
			xb[t] = (const blk_q8_K *)(x + (size_t)t * xs) + b;
		for (int c = 0; c < 8; c++) {
			__m512i hb[2][2];
PKK_UNROLL
			for (int p = 0; p < NP; p++)
				if (planes)
					pkz_hbits(pkk_qh(blk[p], planes, c), gs, planes, hb[p]);
PKK_UNROLL
			for (int v = 0; v < 8; v++) {
PKK_UNROLL
				for (int p = 0; p < NP; p++) {
					__m512i wv = pkz_wvec(pkk_qs(blk[p], planes, c), gs, hb[p], planes, v);
PKK_UNROLL
					for (int t = 0; t < NT; t++) {
						int32_t x4;
						memcpy(&x4, &xb[t]->qs[32 * c + 4 * v], 4);
						if (v % unit == 0)
							acc[p * NT + t] = _mm512_setzero_si512();
						acc[p * NT + t] = _mm512_dpbusd_epi32(acc[p * NT + t], wv,
										      _mm512_set1_epi32(x4));
					}
				}
				if (v % unit != unit - 1)
					continue;
				int j = planes == 2 ? 2 * c + v / unit : c;
PKK_UNROLL
				for (int p = 0; p < NP; p++) {
					__m512i sc = pkz_row_bytes(pkk_sc(blk[p], planes, j), gs, planes == 2);
PKK_UNROLL
					for (int t = 0; t < NT; t++)
						iq[p * NT + t] = _mm512_add_epi32(
							iq[p * NT + t], _mm512_mullo_epi32(acc[p * NT + t], sc));
				}
			}
		}
PKK_UNROLL
		for (int p = 0; p < NP; p++) {
			__m512i aux[8];
			pkz_aux(blk[p], gs, planes, aux);
PKK_UNROLL
			for (int t = 0; t < NT; t++)
				facc[p * NT + t] = pkz_finish(blk[p], gs, planes, iq[p * NT + t],
							      pkz_bsum_dot(aux, xb[t]), xb[t]->d,
							      facc[p * NT + t]);
		}
	}
PKK_UNROLL
	for (int p = 0; p < NP; p++)
PKK_UNROLL
		for (int t = 0; t < NT; t++)
			_mm512_storeu_ps(y + (size_t)t * ys + 16 * (size_t)p, facc[p * NT + t]);
}

/* group pairs g, g + 1: tokens in tiles of 8, 4, 2, 1 */
PKK_INLINE void pkz_pair_gemm(int planes, int64_t nb, const uint8_t *wg, size_t gs,
			      const uint8_t *x, size_t xs, int64_t nx, float *y, size_t ys)
{
	int64_t t = 0;
	for (; t + 8 <= nx; t += 8)
		pkz_tile(planes, 1, 8, nb, wg, gs, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	if (nx - t >= 4) {
		pkz_tile(planes, 1, 4, nb, wg, gs, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
		t += 4;
	}
	if (nx - t >= 2) {
		pkz_tile(planes, 1, 2, nb, wg, gs, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
		t += 2;
	}
	if (nx - t >= 1)
		pkz_tile(planes, 1, 1, nb, wg, gs, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
}
#endif

/* Tiles over the call: nx == 1 (decode) pairs groups for ILP; otherwise
 * each group takes its tokens in tiles of PKK_T, then 4, 2, 1. */
PKK_INLINE void pkk_gemm(int planes, int64_t cols, const void *w, size_t gs, int64_t ng,
			 const void *x, size_t xs, int64_t nx, float *y, size_t ys)
{
	const uint8_t *wb = w, *xb = x;
	int64_t nb = cols / QK_K, g = 0;
#if QX_VNNI
	if (nx == 1)
		for (; g + 4 <= ng; g += 4)
			pkz_tile(planes, 2, 1, nb, wb + (size_t)g * gs, gs, xb, xs, y + 8 * g, ys);
	for (; g + 2 <= ng; g += 2)
		pkz_pair_gemm(planes, nb, wb + (size_t)g * gs, gs, xb, xs, nx, y + 8 * g, ys);
#endif
	if (nx == 1)
		for (; g + 2 <= ng; g += 2)
			pkk_tile(planes, 2, 1, nb, wb + (size_t)g * gs, gs, xb, xs, y + 8 * g, ys);
	for (; g < ng; g++) {
		const uint8_t *wg = wb + (size_t)g * gs;
		int64_t t = 0;
		for (; t + PKK_T <= nx; t += PKK_T)
			pkk_tile(planes, 1, PKK_T, nb, wg, gs, xb + (size_t)t * xs, xs,
				 y + (size_t)t * ys + 8 * g, ys);
#if PKK_T > 4
		if (nx - t >= 4) {
			pkk_tile(planes, 1, 4, nb, wg, gs, xb + (size_t)t * xs, xs,
				 y + (size_t)t * ys + 8 * g, ys);
			t += 4;
		}
#endif
		if (nx - t >= 2) {
			pkk_tile(planes, 1, 2, nb, wg, gs, xb + (size_t)t * xs, xs,
				 y + (size_t)t * ys + 8 * g, ys);
			t += 2;
		}
		if (nx - t >= 1)
			pkk_tile(planes, 1, 1, nb, wg, gs, xb + (size_t)t * xs, xs,
				 y + (size_t)t * ys + 8 * g, ys);
	}
}

static void pkk_gemm_q4_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pkk_gemm(0, cols, w, gs, ng, x, xs, nx, y, ys);
}

static void pkk_gemm_q5_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pkk_gemm(1, cols, w, gs, ng, x, xs, nx, y, ys);
}

static void pkk_gemm_q6_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pkk_gemm(2, cols, w, gs, ng, x, xs, nx, y, ys);
}

/* table entries "[type] = fn," for pack_kernels.gemm */
#define PACK_X86_K_GEMMS \
	[Q_Q4_K] = pkk_gemm_q4_K, [Q_Q5_K] = pkk_gemm_q5_K, [Q_Q6_K] = pkk_gemm_q6_K,

#endif
