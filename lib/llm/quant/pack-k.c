/*
 * pack-k.c — repacking, unpacking and the reference GEMM for the K-quants
 * (Q4_K, Q5_K, Q6_K) against Q8_K activations. Layouts: pack-impl.h;
 * numbers: pack.h.
 *
 * Design: every element is addressed through one mapping, (row r, element
 * e of the super-block) -> chunk c = e / 32, vector g = (e % 32) / 4, byte
 * p = 4r + e % 4; its low nibble sits in qs[c][32 * (g / 2) + p] (high
 * half when g is odd), its bit 4 (and Q6_K's bit 5) in bit g of the plane
 * byte p. unrow and gemm_ref read through that mapping (get_q); pack writes
 * whole bytes (put_chunk) in the same order, checked against it by the
 * unrow test (every packed byte is written: no memset); the ggml
 * element order comes from the reference unpacking of quant-k.c, redone
 * here (ggml_q4k, ggml_q6k) and pinned by the unrow == quant_dequant_row_ref
 * test.
 *
 * Invariants: unrow uses the reference dequant's float expressions in the
 * same order (bit-identical rows); gemm_ref is pack.h's formula to the
 * letter: exact int sums, (float) conversions, d * dx as a separate
 * multiply, fmaf. The integer sums fit int32 for every weight and any Q8_K
 * row whose bsums are its true group sums (bounds in pack-x86-k.h).
 */
#include "llm/quant/pack-impl.h"
#include "llm/quant/quant.h"

#include <math.h>
#include <string.h>

/* A packed super-block seen through its fields; planes = high-bit planes
 * (0: Q4_K, 1: Q5_K, 2: Q6_K), each 32 bytes per chunk. */
struct kview {
	const uint16_t *d, *dmin;
	const uint8_t *sc, *m; /* [sub-block][row] */
	const uint8_t *qh, *qs;
	int planes;
};

static struct kview view_q4(const pk_q4_K *p)
{
	return (struct kview){ p->d, p->dmin, p->sc[0], p->m[0], NULL, p->qs[0], 0 };
}

static struct kview view_q5(const pk_q5_K *p)
{
	return (struct kview){ p->d, p->dmin, p->sc[0], p->m[0], p->qh[0], p->qs[0], 1 };
}

static struct kview view_q6(const pk_q6_K *p)
{
	return (struct kview){ p->d, NULL, (const uint8_t *)p->sc[0], NULL, p->qh[0], p->qs[0], 2 };
}

/* ---- the element mapping ---------------------------------------------- */

static unsigned nib_at(unsigned r, unsigned e)
{
	unsigned c = e / 32, g = (e % 32) / 4;
	return 128 * c + 32 * (g / 2) + 4 * r + e % 4;
}

static unsigned plane_at(unsigned r, unsigned e, int planes, int b)
{
	return 32 * (unsigned)planes * (e / 32) + 32 * (unsigned)b + 4 * r + e % 4;
}

/* Row r's 32 quants q of one chunk into the chunk's nibble bytes (qs, 128)
 * and plane bytes (qh, 32 per plane): whole bytes, no read-modify-write.
 * Byte 4r + i of piece p holds elements 8p + i (low) and 8p + 4 + i (high)
 * (nib_at), bit g of plane byte 4r + i element 4g + i (plane_at). */
static void put_chunk(uint8_t *qs, uint8_t *qh, int planes, unsigned r, const int *q)
{
	for (unsigned p = 0; p < 4; p++)
		for (unsigned i = 0; i < 4; i++)
			qs[32 * p + 4 * r + i] =
				(uint8_t)((q[8 * p + i] & 0xF) | (q[8 * p + 4 + i] & 0xF) << 4);
	for (int b = 0; b < planes; b++)
		for (unsigned i = 0; i < 4; i++) {
			unsigned h = 0;
			for (unsigned g = 0; g < 8; g++)
				h |= (unsigned)((q[4 * g + i] >> (4 + b)) & 1) << g;
			qh[32 * b + 4 * r + i] = (uint8_t)h;
		}
}

/* a row's 256 quants into a super-block's chunks */
static void put_row(uint8_t *qs, uint8_t *qh, int planes, unsigned r, const int *q)
{
	for (unsigned c = 0; c < 8; c++)
		put_chunk(qs + 128 * c, planes ? qh + 32 * planes * c : NULL, planes, r, q + 32 * c);
}

static int get_q(const struct kview *v, unsigned r, unsigned e)
{
	unsigned g = (e % 32) / 4;
	int q = (v->qs[nib_at(r, e)] >> (g % 2 ? 4 : 0)) & 0xF;
	for (int b = 0; b < v->planes; b++)
		q |= ((v->qh[plane_at(r, e, v->planes, b)] >> g) & 1) << (4 + b);
	return q;
}

/* ---- ggml element order (quant-k.c's unpack_q4k / add_q5k_high / unpack_q6k) */

/* Q4_K/Q5_K quants 0..31 in element order; qh NULL for Q4_K */
static void ggml_q4k(const uint8_t *qs, const uint8_t *qh, int *q)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			q[64 * c + l] = qs[32 * c + l] & 0xF;
			q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
			if (qh) {
				q[64 * c + l] += ((qh[l] >> (2 * c)) & 1) << 4;
				q[64 * c + 32 + l] += ((qh[l] >> (2 * c + 1)) & 1) << 4;
			}
		}
}

/* Q6_K quants 0..63 (stored, before the -32) in element order */
static void ggml_q6k(const blk_q6_K *b, int *q)
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		int *o = q + 128 * h;
		for (int l = 0; l < 32; l++) {
			o[l] = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
			o[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
			o[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
			o[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
		}
	}
}

/* ---- pack --------------------------------------------------------------- */

static const void *src_block(const void *src, size_t rb, unsigned r, uint64_t b, size_t bb)
{
	return (const uint8_t *)src + r * rb + b * bb;
}

static void pack_affine(const void *src, size_t rb, uint64_t cols, void *dst, int planes)
{
	size_t bb = planes ? sizeof(blk_q5_K) : sizeof(blk_q4_K);
	size_t pb = planes ? sizeof(pk_q5_K) : sizeof(pk_q4_K);
	for (uint64_t b = 0; b < cols / QK_K; b++) {
		uint8_t *o = (uint8_t *)dst + b * pb;
		pk_q4_K *p4 = (pk_q4_K *)o;
		pk_q5_K *p5 = (pk_q5_K *)o;
		uint8_t *qs = planes ? p5->qs[0] : p4->qs[0], *qh = planes ? p5->qh[0] : NULL;
		for (unsigned r = 0; r < PACK_ROWS; r++) {
			/* Q4_K and Q5_K share d, dmin, scales at the same offsets */
			const blk_q5_K *a5 = src_block(src, rb, r, b, bb);
			const blk_q4_K *a4 = src_block(src, rb, r, b, bb);
			int q[QK_K];
			p4->d[r] = a4->d;
			p4->dmin[r] = a4->dmin;
			for (int j = 0; j < 8; j++)
				k4_scale_min(j, a4->scales, &p4->sc[j][r], &p4->m[j][r]);
			ggml_q4k(planes ? a5->qs : a4->qs, planes ? a5->qh : NULL, q);
			put_row(qs, qh, planes, r, q);
		}
	}
}

_Static_assert(offsetof(pk_q4_K, sc) == offsetof(pk_q5_K, sc), "pk_q4_K/pk_q5_K heads");
_Static_assert(offsetof(blk_q4_K, scales) == offsetof(blk_q5_K, scales), "q4_K/q5_K heads");

static void pack_q4_K(const void *src, size_t rb, uint64_t cols, void *dst)
{
	pack_affine(src, rb, cols, dst, 0);
}

static void pack_q5_K(const void *src, size_t rb, uint64_t cols, void *dst)
{
	pack_affine(src, rb, cols, dst, 1);
}

static void pack_q6_K(const void *src, size_t rb, uint64_t cols, void *dst)
{
	pk_q6_K *o = dst;
	for (uint64_t b = 0; b < cols / QK_K; b++) {
		for (unsigned r = 0; r < PACK_ROWS; r++) {
			const blk_q6_K *a = src_block(src, rb, r, b, sizeof(blk_q6_K));
			int q[QK_K];
			o[b].d[r] = a->d;
			for (int j = 0; j < 16; j++)
				o[b].sc[j][r] = a->scales[j];
			ggml_q6k(a, q);
			put_row(o[b].qs[0], o[b].qh[0], 2, r, q);
		}
	}
}

/* ---- unrow: quant-k.c's dequant expressions, operand for operand -------- */

static void unrow_affine(const struct kview *v, unsigned r, float *y)
{
	float d = fp16_to_f32(v->d[r]), dmin = fp16_to_f32(v->dmin[r]);
	for (unsigned j = 0; j < 8; j++) {
		float d1 = d * v->sc[8 * j + r], m1 = dmin * v->m[8 * j + r];
		for (unsigned l = 0; l < 32; l++)
			y[32 * j + l] = d1 * (float)get_q(v, r, 32 * j + l) - m1;
	}
}

static void unrow_q4_K(const void *group, uint64_t cols, unsigned r, float *dst)
{
	for (uint64_t b = 0; b < cols / QK_K; b++) {
		struct kview v = view_q4((const pk_q4_K *)group + b);
		unrow_affine(&v, r, dst + b * QK_K);
	}
}

static void unrow_q5_K(const void *group, uint64_t cols, unsigned r, float *dst)
{
	for (uint64_t b = 0; b < cols / QK_K; b++) {
		struct kview v = view_q5((const pk_q5_K *)group + b);
		unrow_affine(&v, r, dst + b * QK_K);
	}
}

static void unrow_q6_K(const void *group, uint64_t cols, unsigned r, float *dst)
{
	for (uint64_t b = 0; b < cols / QK_K; b++) {
		struct kview v = view_q6((const pk_q6_K *)group + b);
		float d = fp16_to_f32(v.d[r]);
		for (unsigned e = 0; e < QK_K; e++)
			dst[b * QK_K + e] =
				d * (float)(int8_t)v.sc[8 * (e / 16) + r] * (float)(get_q(&v, r, e) - 32);
	}
}

/* ---- gemm_ref: pack.h's formulas ---------------------------------------- */

/* one super-block of row r against activation block a, into acc */
static float ref_affine(const struct kview *v, unsigned r, const blk_q8_K *a, float acc)
{
	int32_t iq = 0, im = 0;
	for (unsigned j = 0; j < 8; j++) {
		int32_t s = 0;
		for (unsigned l = 0; l < 32; l++)
			s += get_q(v, r, 32 * j + l) * a->qs[32 * j + l];
		iq += v->sc[8 * j + r] * s;
		im += v->m[8 * j + r] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
	}
	float d = fp16_to_f32(v->d[r]), dmin = fp16_to_f32(v->dmin[r]);
	acc = fmaf((float)iq, d * a->d, acc);
	return fmaf(-(float)im, dmin * a->d, acc);
}

static float ref_q6(const struct kview *v, unsigned r, const blk_q8_K *a, float acc)
{
	int32_t iq = 0;
	for (unsigned j = 0; j < 16; j++) {
		int32_t s = 0;
		for (unsigned l = 0; l < 16; l++)
			s += get_q(v, r, 16 * j + l) * a->qs[16 * j + l];
		iq += (int8_t)v->sc[8 * j + r] * (s - 32 * a->bsums[j]);
	}
	return fmaf((float)iq, fp16_to_f32(v->d[r]) * a->d, acc);
}

/* One (row, token) dot of a group; type picks the view and the formula. */
static float ref_dot(uint32_t type, const uint8_t *group, int64_t nb, unsigned r,
		     const void *xrow)
{
	const blk_q8_K *x = xrow;
	float acc = 0.0f;
	for (int64_t b = 0; b < nb; b++) {
		struct kview v;
		if (type == Q_Q4_K)
			v = view_q4((const pk_q4_K *)group + b);
		else if (type == Q_Q5_K)
			v = view_q5((const pk_q5_K *)group + b);
		else
			v = view_q6((const pk_q6_K *)group + b);
		acc = type == Q_Q6_K ? ref_q6(&v, r, &x[b], acc) : ref_affine(&v, r, &x[b], acc);
	}
	return acc;
}

static void gemm_ref_q4_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pack_ref_gemm(ref_dot, Q_Q4_K, cols / QK_K, w, gs, ng, x, xs, nx, y, ys);
}

static void gemm_ref_q5_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pack_ref_gemm(ref_dot, Q_Q5_K, cols / QK_K, w, gs, ng, x, xs, nx, y, ys);
}

static void gemm_ref_q6_K(int64_t cols, const void *w, size_t gs, int64_t ng, const void *x,
			  size_t xs, int64_t nx, float *y, size_t ys)
{
	pack_ref_gemm(ref_dot, Q_Q6_K, cols / QK_K, w, gs, ng, x, xs, nx, y, ys);
}

const struct pack_type pack_types_k[QT_TABLE] = {
	[Q_Q4_K] = { QK_K, sizeof(pk_q4_K), Q_Q8_K, pack_q4_K, unrow_q4_K, gemm_ref_q4_K },
	[Q_Q5_K] = { QK_K, sizeof(pk_q5_K), Q_Q8_K, pack_q5_K, unrow_q5_K, gemm_ref_q5_K },
	[Q_Q6_K] = { QK_K, sizeof(pk_q6_K), Q_Q8_K, pack_q6_K, unrow_q6_K, gemm_ref_q6_K },
};
