/*
 * quant-ref.c — scalar reference kernels: F32, F16, BF16 and the 32-element
 * block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (K-quants are in quant-k.c).
 *
 * These are the definition of each format's meaning: plain loops written to
 * be read, with no tricks. Every SIMD path is tested against them.
 *
 * Value of element j of a block (ggml's formats):
 *   Q4_0  d * (q - 8)        q = 4 bits: qs[j] low nibble, qs[j-16] high nibble
 *   Q4_1  d * q + m
 *   Q5_0  d * (q - 16)       q = 4 low bits as Q4_0 + bit j of qh (u32 LE)
 *   Q5_1  d * q + m
 *   Q8_0  d * q              q = int8
 * vec_dot takes weights in the type and activations in quant_dot_type()
 * (Q8_0, or Q8_1 for Q4_1/Q5_1; F32 for the float types) and accumulates
 * integer products per block, like ggml.
 */
#include "llm/quant/quant-impl.h"
#include "llm/quant/quant.h"

#include <math.h>

/* ---- float types ------------------------------------------------------ */

static void dequant_f32(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = fp16_to_f32(s[i]);
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = bf16_to_f32(s[i]);
}

static void quantize_f32(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void quantize_f16(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = f32_to_fp16(src[i]);
}

static void quantize_bf16(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = f32_to_bf16(src[i]);
}

/* Float dots accumulate in double: the reference should be the exact sum
 * (to float precision), so a fast path's error is measured against truth. */
static float dot_f32(int64_t n, const void *w, const void *x)
{
	const float *a = w, *b = x;
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return (float)s;
}

static float dot_f16(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)fp16_to_f32(a[i]) * b[i];
	return (float)s;
}

static float dot_bf16(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)bf16_to_f32(a[i]) * b[i];
	return (float)s;
}

/* ---- unpacking the 32-element formats to integers ---------------------- */

/* q[j] in 0..15 */
static void unpack4(const uint8_t *qs, int *q)
{
	for (int j = 0; j < QK4 / 2; j++) {
		q[j] = qs[j] & 0xF;
		q[j + QK4 / 2] = qs[j] >> 4;
	}
}

/* q[j] in 0..31: nibbles plus bit j of qh */
static void unpack5(const uint8_t *qs, const uint8_t *qh, int *q)
{
	uint32_t h;
	memcpy(&h, qh, 4);
	unpack4(qs, q);
	for (int j = 0; j < QK4; j++)
		q[j] |= (int)((h >> j) & 1) << 4;
}

static void dequant_q4_0(const void *src, float *dst, int64_t n)
{
	const blk_q4_0 *b = src;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d);
		unpack4(b[i].qs, q);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)(q[j] - 8);
	}
}

static void dequant_q4_1(const void *src, float *dst, int64_t n)
{
	const blk_q4_1 *b = src;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
		unpack4(b[i].qs, q);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)q[j] + m;
	}
}

static void dequant_q5_0(const void *src, float *dst, int64_t n)
{
	const blk_q5_0 *b = src;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d);
		unpack5(b[i].qs, b[i].qh, q);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)(q[j] - 16);
	}
}

static void dequant_q5_1(const void *src, float *dst, int64_t n)
{
	const blk_q5_1 *b = src;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
		unpack5(b[i].qs, b[i].qh, q);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)q[j] + m;
	}
}

static void dequant_q8_0(const void *src, float *dst, int64_t n)
{
	const blk_q8_0 *b = src;
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)b[i].qs[j];
	}
}

/* ---- quantizers --------------------------------------------------------- */

/* The element of largest magnitude, with its sign. */
static float signed_absmax(const float *x, int n)
{
	float amax = 0, max = 0;
	for (int j = 0; j < n; j++)
		if (fabsf(x[j]) > amax) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	return max;
}

static void range(const float *x, int n, float *lo, float *hi)
{
	*lo = *hi = x[0];
	for (int j = 1; j < n; j++) {
		*lo = fminf(*lo, x[j]);
		*hi = fmaxf(*hi, x[j]);
	}
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void pack4(const int *q, uint8_t *qs)
{
	for (int j = 0; j < QK4 / 2; j++)
		qs[j] = (uint8_t)(q[j] | (q[j + QK4 / 2] << 4));
}

static void pack5(const int *q, uint8_t *qs, uint8_t *qh)
{
	int lo[QK4];
	uint32_t h = 0;
	for (int j = 0; j < QK4; j++) {
		lo[j] = q[j] & 0xF;
		h |= (uint32_t)(q[j] >> 4) << j;
	}
	pack4(lo, qs);
	memcpy(qh, &h, 4);
}

/* Symmetric: the largest-magnitude element maps to -levels/2 exactly, so
 * the sign of the range is used fully (ggml's choice). Sets q in 0..levels-1. */
static float quant_sym(const float *x, int levels, int *q)
{
	float max = signed_absmax(x, QK4);
	float d = max / (float)(-levels / 2);
	float id = d ? 1.0f / d : 0.0f;
	for (int j = 0; j < QK4; j++)
		q[j] = clampi((int)floorf(x[j] * id + ((float)(levels / 2) + 0.5f)), 0, levels - 1);
	return d;
}

/* Affine: min maps to 0, max to levels-1. */
static float quant_affine(const float *x, int levels, int *q, float *min)
{
	float lo, hi;
	range(x, QK4, &lo, &hi);
	float d = (hi - lo) / (float)(levels - 1);
	float id = d ? 1.0f / d : 0.0f;
	for (int j = 0; j < QK4; j++)
		q[j] = clampi((int)floorf((x[j] - lo) * id + 0.5f), 0, levels - 1);
	*min = lo;
	return d;
}

static void quantize_q4_0(const float *src, void *dst, int64_t n)
{
	blk_q4_0 *b = dst;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		b[i].d = f32_to_fp16(quant_sym(src + i * QK4, 16, q));
		pack4(q, b[i].qs);
	}
}

static void quantize_q4_1(const float *src, void *dst, int64_t n)
{
	blk_q4_1 *b = dst;
	int q[QK4];
	float m;
	for (int64_t i = 0; i < n / QK4; i++) {
		b[i].d = f32_to_fp16(quant_affine(src + i * QK4, 16, q, &m));
		b[i].m = f32_to_fp16(m);
		pack4(q, b[i].qs);
	}
}

static void quantize_q5_0(const float *src, void *dst, int64_t n)
{
	blk_q5_0 *b = dst;
	int q[QK4];
	for (int64_t i = 0; i < n / QK4; i++) {
		b[i].d = f32_to_fp16(quant_sym(src + i * QK4, 32, q));
		pack5(q, b[i].qs, b[i].qh);
	}
}

static void quantize_q5_1(const float *src, void *dst, int64_t n)
{
	blk_q5_1 *b = dst;
	int q[QK4];
	float m;
	for (int64_t i = 0; i < n / QK4; i++) {
		b[i].d = f32_to_fp16(quant_affine(src + i * QK4, 32, q, &m));
		b[i].m = f32_to_fp16(m);
		pack5(q, b[i].qs, b[i].qh);
	}
}

/* Q8_0: d = absmax/127, q = roundf(x * (1/d)) (half away from zero), bit
 * for bit ggml's quantize_row_q8_0_ref and the gguf package's quantizer, so
 * the oracle sees the activations the engine sees. */
static void quantize_q8_0(const float *src, void *dst, int64_t n)
{
	blk_q8_0 *b = dst;
	for (int64_t i = 0; i < n / QK4; i++) {
		const float *x = src + i * QK4;
		float amax = fabsf(signed_absmax(x, QK4));
		float d = amax / 127.0f;
		float id = d ? 1.0f / d : 0.0f;
		b[i].d = f32_to_fp16(d);
		for (int j = 0; j < QK4; j++)
			b[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

/* Q8_1 (activations only): llama.cpp's x86 quantize_row_q8_1, which
 * differs from ggml's scalar _ref: id = 127 / amax and round half to even
 * (rintf), as lib/llm/quant/pack.h's PACK_A8; s = fp16(sum(q) * d) with d before
 * its fp16 rounding (so Q4_1/Q5_1 dots match llama.cpp's). */
static void quantize_q8_1(const float *src, void *dst, int64_t n)
{
	blk_q8_1 *b = dst;
	for (int64_t i = 0; i < n / QK4; i++) {
		const float *x = src + i * QK4;
		float amax = fabsf(signed_absmax(x, QK4));
		float d = amax / 127.0f;
		float id = amax != 0.0f ? 127.0f / amax : 0.0f;
		int sum = 0;
		b[i].d = f32_to_fp16(d);
		for (int j = 0; j < QK4; j++) {
			b[i].qs[j] = (int8_t)rintf(x[j] * id);
			sum += b[i].qs[j];
		}
		b[i].s = f32_to_fp16((float)sum * d);
	}
}

static void dequant_q8_1(const void *src, float *dst, int64_t n)
{
	const blk_q8_1 *b = src;
	for (int64_t i = 0; i < n / QK4; i++) {
		float d = fp16_to_f32(b[i].d);
		for (int j = 0; j < QK4; j++)
			dst[i * QK4 + j] = d * (float)b[i].qs[j];
	}
}

/* ---- dots against Q8_0 / Q8_1 activations ------------------------------- */

/* sum_j q[j] * x[j] and sum_j x[j] over one block */
static void isums(const int *q, const int8_t *x, int *qx, int *sx)
{
	*qx = *sx = 0;
	for (int j = 0; j < QK4; j++) {
		*qx += q[j] * x[j];
		*sx += x[j];
	}
}

static float dot_q4_0(int64_t n, const void *w, const void *x)
{
	const blk_q4_0 *a = w;
	const blk_q8_0 *b = x;
	int q[QK4], qx, sx;
	float s = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		unpack4(a[i].qs, q);
		isums(q, b[i].qs, &qx, &sx);
		s += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * (float)(qx - 8 * sx);
	}
	return s;
}

/* sum (d q + m) * dx y = d dx sum(q y) + m * s, with s = dx sum(y) */
static float dot_q4_1(int64_t n, const void *w, const void *x)
{
	const blk_q4_1 *a = w;
	const blk_q8_1 *b = x;
	int q[QK4], qx, sx;
	float s = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		unpack4(a[i].qs, q);
		isums(q, b[i].qs, &qx, &sx);
		s += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * (float)qx +
		     fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
	}
	return s;
}

static float dot_q5_0(int64_t n, const void *w, const void *x)
{
	const blk_q5_0 *a = w;
	const blk_q8_0 *b = x;
	int q[QK4], qx, sx;
	float s = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		unpack5(a[i].qs, a[i].qh, q);
		isums(q, b[i].qs, &qx, &sx);
		s += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * (float)(qx - 16 * sx);
	}
	return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *x)
{
	const blk_q5_1 *a = w;
	const blk_q8_1 *b = x;
	int q[QK4], qx, sx;
	float s = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		unpack5(a[i].qs, a[i].qh, q);
		isums(q, b[i].qs, &qx, &sx);
		s += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * (float)qx +
		     fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
	}
	return s;
}

static float dot_q8_0(int64_t n, const void *w, const void *x)
{
	const blk_q8_0 *a = w, *b = x;
	float s = 0;
	for (int64_t i = 0; i < n / QK4; i++) {
		int qx = 0;
		for (int j = 0; j < QK4; j++)
			qx += a[i].qs[j] * b[i].qs[j];
		s += fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d) * (float)qx;
	}
	return s;
}

const struct quant_kernels quant_kernels_ref = {
	.name = "ref",
	.dot = {
		[Q_F32] = dot_f32, [Q_F16] = dot_f16, [Q_BF16] = dot_bf16,
		[Q_Q4_0] = dot_q4_0, [Q_Q4_1] = dot_q4_1, [Q_Q5_0] = dot_q5_0,
		[Q_Q5_1] = dot_q5_1, [Q_Q8_0] = dot_q8_0,
		[Q_Q4_K] = quant_ref_dot_q4_K, [Q_Q5_K] = quant_ref_dot_q5_K,
		[Q_Q6_K] = quant_ref_dot_q6_K,
	},
	.dequant = {
		[Q_F32] = dequant_f32, [Q_F16] = dequant_f16, [Q_BF16] = dequant_bf16,
		[Q_Q4_0] = dequant_q4_0, [Q_Q4_1] = dequant_q4_1, [Q_Q5_0] = dequant_q5_0,
		[Q_Q5_1] = dequant_q5_1, [Q_Q8_0] = dequant_q8_0, [Q_Q8_1] = dequant_q8_1,
		[Q_Q4_K] = quant_ref_dequant_q4_K, [Q_Q5_K] = quant_ref_dequant_q5_K,
		[Q_Q6_K] = quant_ref_dequant_q6_K, [Q_Q8_K] = quant_ref_dequant_q8_K,
	},
	.quantize = {
		[Q_F32] = quantize_f32, [Q_F16] = quantize_f16, [Q_BF16] = quantize_bf16,
		[Q_Q4_0] = quantize_q4_0, [Q_Q4_1] = quantize_q4_1, [Q_Q5_0] = quantize_q5_0,
		[Q_Q5_1] = quantize_q5_1, [Q_Q8_0] = quantize_q8_0, [Q_Q8_1] = quantize_q8_1,
		[Q_Q4_K] = quant_ref_quantize_q4_K, [Q_Q5_K] = quant_ref_quantize_q5_K,
		[Q_Q6_K] = quant_ref_quantize_q6_K, [Q_Q8_K] = quant_ref_quantize_q8_K,
	},
};
