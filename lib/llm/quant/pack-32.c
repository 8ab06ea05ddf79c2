/*
 * pack-32.c — repacking, reference GEMM and PACK_A8 activations for the
 * 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0). Layouts: pack-impl.h;
 * numbers: pack.h.
 *
 * Design: every type goes through one row view of a packed block,
 * get_row() (row r's 32 stored quants, unsigned as stored, and its scales)
 * and its inverse put_row(). Repacking is put_row() per ggml row; the
 * inverse rebuilds the ggml block of row r and dequantizes it with
 * quant_dequant_row_ref, so pack_dequant_row equals the original bit for
 * bit by construction; the reference GEMM follows pack.h's formulas
 * literally (exact int32 sums, one fmaf per term, dw * dx as its own
 * multiply). Speed is the SIMD kernels' job (pack-x86-32.h).
 *
 * Invariants: quants are unsigned as stored (Q4 0..15, Q5 0..31, Q8_0
 * q + 128 in 0..255); the offsets 8 / 16 / 128 are subtracted through the
 * activation block sum, never per element.
 */
#include "llm/quant/pack-impl.h"
#include "llm/quant/quant.h"

#include <math.h>
#include <string.h>

/* Vector layout (pack-impl.h): element k of row r is byte 4r + k % 4 of
 * vector k / 4. */
static unsigned vbyte(unsigned r, unsigned k)
{
	return 4 * r + k % 4;
}

/* bit 0..3 of element (g, p) from the nibble plane */
static unsigned get_nib(const uint8_t *qs, unsigned g, unsigned p)
{
	return (qs[32 * (g / 2) + p] >> (4 * (g % 2))) & 0xF;
}

static void put_nib(uint8_t *qs, unsigned g, unsigned p, unsigned v)
{
	qs[32 * (g / 2) + p] |= (uint8_t)((v & 0xF) << (4 * (g % 2)));
}

/* The pieces of one packed block of any 32-type, by pointer into it. */
struct pk_view {
	uint16_t *d, *m;  /* m NULL for the types without a min */
	uint8_t *qh, *qs; /* qh NULL for Q4 / Q8 */
	int bytes8;       /* Q8_0: one byte per quant */
};

static struct pk_view view(uint32_t t, void *blk)
{
	struct pk_view v = { 0 };
	switch (t) {
	case Q_Q4_0: { pk_q4_0 *b = blk; v.d = b->d; v.qs = b->qs; break; }
	case Q_Q4_1: { pk_q4_1 *b = blk; v.d = b->d; v.m = b->m; v.qs = b->qs; break; }
	case Q_Q5_0: { pk_q5_0 *b = blk; v.d = b->d; v.qh = b->qh; v.qs = b->qs; break; }
	case Q_Q5_1: {
		pk_q5_1 *b = blk;
		v.d = b->d, v.m = b->m, v.qh = b->qh, v.qs = b->qs;
		break;
	}
	default: { pk_q8_0 *b = blk; v.d = b->d; v.qs = b->qs; v.bytes8 = 1; break; }
	}
	return v;
}

/* row r's stored quants q[32] of a packed block */
static void get_row(const struct pk_view *v, unsigned r, int *q)
{
	for (unsigned k = 0; k < 32; k++) {
		unsigned g = k / 4, p = vbyte(r, k);
		if (v->bytes8) {
			q[k] = v->qs[32 * g + p];
			continue;
		}
		q[k] = (int)get_nib(v->qs, g, p);
		if (v->qh)
			q[k] |= ((v->qh[p] >> g) & 1) << 4;
	}
}

/* the inverse (the block must start zeroed) */
static void put_row(const struct pk_view *v, unsigned r, const int *q)
{
	for (unsigned k = 0; k < 32; k++) {
		unsigned g = k / 4, p = vbyte(r, k);
		if (v->bytes8) {
			v->qs[32 * g + p] = (uint8_t)q[k];
			continue;
		}
		put_nib(v->qs, g, p, (unsigned)q[k]);
		if (v->qh)
			v->qh[p] |= (uint8_t)(((q[k] >> 4) & 1) << g);
	}
}

/* ggml block -> its 32 stored quants and scales (m left alone without a min) */
static void ggml_get(uint32_t t, const void *src, int *q, uint16_t *d, uint16_t *m)
{
	const uint8_t *qs = NULL, *qh = NULL;
	switch (t) {
	case Q_Q4_0: { const blk_q4_0 *b = src; *d = b->d; qs = b->qs; break; }
	case Q_Q4_1: { const blk_q4_1 *b = src; *d = b->d; *m = b->m; qs = b->qs; break; }
	case Q_Q5_0: { const blk_q5_0 *b = src; *d = b->d; qh = b->qh; qs = b->qs; break; }
	case Q_Q5_1: {
		const blk_q5_1 *b = src;
		*d = b->d, *m = b->m, qh = b->qh, qs = b->qs;
		break;
	}
	default: {
		const blk_q8_0 *b = src;
		*d = b->d;
		for (int k = 0; k < 32; k++)
			q[k] = b->qs[k] + 128;
		return;
	}
	}
	uint32_t h = 0;
	if (qh)
		memcpy(&h, qh, 4);
	for (int j = 0; j < 16; j++) {
		q[j] = (qs[j] & 0xF) | (int)((h >> j) & 1) << 4;
		q[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
	}
}

/* the inverse: stored quants and scales -> one ggml block */
static void ggml_put(uint32_t t, void *dst, const int *q, uint16_t d, uint16_t m)
{
	uint8_t qs[16];
	uint32_t h = 0;
	for (int j = 0; j < 16; j++) {
		qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
		h |= (uint32_t)((q[j] >> 4) & 1) << j | (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
	}
	switch (t) {
	case Q_Q4_0: { blk_q4_0 *b = dst; b->d = d; memcpy(b->qs, qs, 16); break; }
	case Q_Q4_1: { blk_q4_1 *b = dst; b->d = d; b->m = m; memcpy(b->qs, qs, 16); break; }
	case Q_Q5_0: {
		blk_q5_0 *b = dst;
		b->d = d, memcpy(b->qh, &h, 4), memcpy(b->qs, qs, 16);
		break;
	}
	case Q_Q5_1: {
		blk_q5_1 *b = dst;
		b->d = d, b->m = m, memcpy(b->qh, &h, 4), memcpy(b->qs, qs, 16);
		break;
	}
	default: {
		blk_q8_0 *b = dst;
		b->d = d;
		for (int k = 0; k < 32; k++)
			b->qs[k] = (int8_t)(q[k] - 128);
	}
	}
}

static void pack_group(uint32_t t, const void *src, size_t rb, uint64_t cols, void *dst)
{
	size_t bytes = pack_types_32[t].bytes, gbytes = quant_block_bytes(t);
	memset(dst, 0, (size_t)(cols / 32) * bytes);
	for (uint64_t b = 0; b < cols / 32; b++) {
		struct pk_view v = view(t, (uint8_t *)dst + b * bytes);
		for (unsigned r = 0; r < PACK_ROWS; r++) {
			int q[32];
			uint16_t d, m = 0;
			ggml_get(t, (const uint8_t *)src + r * rb + b * gbytes, q, &d, &m);
			put_row(&v, r, q);
			v.d[r] = d;
			if (v.m)
				v.m[r] = m;
		}
	}
}

static void unrow(uint32_t t, const void *group, uint64_t cols, unsigned r, float *dst)
{
	size_t bytes = pack_types_32[t].bytes;
	uint8_t blk[sizeof(blk_q8_0)]; /* the largest 32-element ggml block */
	for (uint64_t b = 0; b < cols / 32; b++) {
		struct pk_view v = view(t, (uint8_t *)group + b * bytes);
		int q[32];
		get_row(&v, r, q);
		ggml_put(t, blk, q, v.d[r], v.m ? v.m[r] : 0);
		quant_dequant_row_ref(t, blk, dst + b * 32, 32);
	}
}

/* pack.h's formula for one (row, token): offsets 8 / 16 / 128 or the min */
static float ref_dot(uint32_t t, const uint8_t *w, int64_t nb, unsigned r, const void *xrow)
{
	const pk_a8 *x = xrow;
	size_t bytes = pack_types_32[t].bytes;
	int off = t == Q_Q4_0 ? 8 : t == Q_Q5_0 ? 16 : t == Q_Q8_0 ? 128 : 0;
	float acc = 0.0f;
	for (int64_t b = 0; b < nb; b++) {
		struct pk_view v = view(t, (void *)(w + b * bytes));
		int q[32];
		int32_t i = 0;
		get_row(&v, r, q);
		for (int k = 0; k < 32; k++)
			i += q[k] * x[b].qs[k];
		float dw = fp16_to_f32(v.d[r]), dx = x[b].d;
		if (v.m) {
			acc = fmaf((float)i, dw * dx, acc);
			acc = fmaf(fp16_to_f32(v.m[r]), x[b].s, acc);
		} else {
			acc = fmaf((float)(i - off * x[b].sum), dw * dx, acc);
		}
	}
	return acc;
}

/* Thin per-type entry points for the table (the type is the table index). */
#define TYPE_FNS(name, T)                                                                   \
	static void pack_##name(const void *src, size_t rb, uint64_t cols, void *dst)       \
	{                                                                                   \
		pack_group(T, src, rb, cols, dst);                                          \
	}                                                                                   \
	static void unrow_##name(const void *group, uint64_t cols, unsigned r, float *dst)  \
	{                                                                                   \
		unrow(T, group, cols, r, dst);                                              \
	}                                                                                   \
	static void gemm_ref_##name(int64_t cols, const void *w, size_t gs, int64_t ng,     \
				    const void *x, size_t xs, int64_t nx, float *y, size_t ys) \
	{                                                                                   \
		pack_ref_gemm(ref_dot, T, cols / 32, w, gs, ng, x, xs, nx, y, ys);          \
	}

TYPE_FNS(q4_0, Q_Q4_0)
TYPE_FNS(q4_1, Q_Q4_1)
TYPE_FNS(q5_0, Q_Q5_0)
TYPE_FNS(q5_1, Q_Q5_1)
TYPE_FNS(q8_0, Q_Q8_0)

#define ENTRY(name, T)                                                                    \
	[T] = { .blk = 32, .bytes = sizeof(pk_##name), .act = PACK_A8, .pack = pack_##name, \
		.unrow = unrow_##name, .gemm_ref = gemm_ref_##name }

const struct pack_type pack_types_32[QT_TABLE] = {
	ENTRY(q4_0, Q_Q4_0), ENTRY(q4_1, Q_Q4_1), ENTRY(q5_0, Q_Q5_0),
	ENTRY(q5_1, Q_Q5_1), ENTRY(q8_0, Q_Q8_0),
};

/* llama.cpp's x86 quantize_row_q8_0 / q8_1 (pack.h): id = 127 / amax,
 * not 1 / d, and rintf (half to even under the default rounding mode); the
 * fp16 scales are kept as floats. */
void pack_ref_quantize_a8(const float *x, void *dst, int64_t n)
{
	pk_a8 *b = dst;
	for (int64_t i = 0; i < n / 32; i++, x += 32) {
		float amax = 0;
		for (int j = 0; j < 32; j++)
			if (fabsf(x[j]) > amax)
				amax = fabsf(x[j]);
		float d = amax / 127.0f;
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		int32_t sum = 0;
		for (int j = 0; j < 32; j++) {
			b[i].qs[j] = (int8_t)rintf(x[j] * id);
			sum += b[i].qs[j];
		}
		b[i].d = fp16_to_f32(f32_to_fp16(d));
		b[i].s = fp16_to_f32(f32_to_fp16(d * (float)sum));
		b[i].sum = sum;
	}
}
