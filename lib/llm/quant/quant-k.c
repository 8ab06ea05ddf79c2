/*
 * quant-k.c — scalar reference kernels for the K-quants (ggml's 256-element
 * super-blocks): Q4_K, Q5_K, Q6_K weights and Q8_K activations.
 *
 *   Q4_K  8 sub-blocks of 32: x = d*sc[j]*q - dmin*m[j], q 4-bit, sc/m 6-bit
 *         packed in 12 bytes (k4_scale_min); quants for sub-blocks 2c and
 *         2c+1 share the 32 bytes qs[32c..32c+31] (low nibble, high nibble).
 *   Q5_K  Q4_K plus a 5th bit: qh[l] bit 2c (sub-block 2c), 2c+1 (2c+1).
 *   Q6_K  16 sub-blocks of 16: x = d*scales[g]*(q - 32), q 6-bit = 4 bits in
 *         ql + 2 bits in qh; scales int8.
 *   Q8_K  x = d*q, d float (may be negative), with bsums[g] = sum of the 16
 *         quants of group g,
 *         so a dot can subtract the Q4_K/Q5_K mins without touching x again.
 *
 * The quantizers here are simple min/max rounding (not ggml's iterative
 * search): good enough for tests and tiny models, not for shipping weights.
 */
#include "llm/quant/quant-impl.h"
#include "llm/quant/quant.h"

#include <math.h>

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int nearest(float v)
{
	return (int)lrintf(v);
}

/* ---- unpacking ---------------------------------------------------------- */

/* Q4_K/Q5_K quants (before the 5th bit) in element order, and the scales. */
static void unpack_q4k(const uint8_t *qs, const uint8_t *scales, int *q, uint8_t *sc, uint8_t *m)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			q[64 * c + l] = qs[32 * c + l] & 0xF;
			q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
		}
	for (int j = 0; j < 8; j++)
		k4_scale_min(j, scales, &sc[j], &m[j]);
}

static void add_q5k_high(const uint8_t *qh, int *q)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			q[64 * c + l] += ((qh[l] >> (2 * c)) & 1) << 4;
			q[64 * c + 32 + l] += ((qh[l] >> (2 * c + 1)) & 1) << 4;
		}
}

/* Q6_K quants in element order, -32..31 */
static void unpack_q6k(const blk_q6_K *b, int *q)
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		int *o = q + 128 * h;
		for (int l = 0; l < 32; l++) {
			o[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
			o[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
			o[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
			o[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
		}
	}
}

/* ---- dequant ------------------------------------------------------------ */

static void dequant_affine_k(float d, float dmin, const int *q, const uint8_t *sc,
			     const uint8_t *m, float *y)
{
	for (int j = 0; j < 8; j++) {
		float d1 = d * sc[j], m1 = dmin * m[j];
		for (int l = 0; l < 32; l++)
			y[32 * j + l] = d1 * (float)q[32 * j + l] - m1;
	}
}

void quant_ref_dequant_q4_K(const void *src, float *dst, int64_t n)
{
	const blk_q4_K *b = src;
	int q[QK_K];
	uint8_t sc[8], m[8];
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q4k(b[i].qs, b[i].scales, q, sc, m);
		dequant_affine_k(fp16_to_f32(b[i].d), fp16_to_f32(b[i].dmin), q, sc, m, dst + i * QK_K);
	}
}

void quant_ref_dequant_q5_K(const void *src, float *dst, int64_t n)
{
	const blk_q5_K *b = src;
	int q[QK_K];
	uint8_t sc[8], m[8];
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q4k(b[i].qs, b[i].scales, q, sc, m);
		add_q5k_high(b[i].qh, q);
		dequant_affine_k(fp16_to_f32(b[i].d), fp16_to_f32(b[i].dmin), q, sc, m, dst + i * QK_K);
	}
}

void quant_ref_dequant_q6_K(const void *src, float *dst, int64_t n)
{
	const blk_q6_K *b = src;
	int q[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = fp16_to_f32(b[i].d);
		unpack_q6k(&b[i], q);
		for (int e = 0; e < QK_K; e++)
			dst[i * QK_K + e] = d * (float)b[i].scales[e / 16] * (float)q[e];
	}
}

void quant_ref_dequant_q8_K(const void *src, float *dst, int64_t n)
{
	const blk_q8_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int e = 0; e < QK_K; e++)
			dst[i * QK_K + e] = b[i].d * (float)b[i].qs[e];
}

/* ---- dots against Q8_K activations --------------------------------------- */

/* sum over the 8 sub-blocks of sc[j] * (q . x), and of m[j] * sum(x) */
static void affine_k_sums(const int *q, const uint8_t *sc, const uint8_t *m,
			  const blk_q8_K *x, int *sumi, int *summ)
{
	*sumi = *summ = 0;
	for (int j = 0; j < 8; j++) {
		int s = 0;
		for (int l = 0; l < 32; l++)
			s += q[32 * j + l] * x->qs[32 * j + l];
		*sumi += sc[j] * s;
		*summ += m[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
	}
}

float quant_ref_dot_q4_K(int64_t n, const void *w, const void *x)
{
	const blk_q4_K *a = w;
	const blk_q8_K *b = x;
	int q[QK_K], sumi, summ;
	uint8_t sc[8], m[8];
	float s = 0;
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q4k(a[i].qs, a[i].scales, q, sc, m);
		affine_k_sums(q, sc, m, &b[i], &sumi, &summ);
		s += b[i].d * (fp16_to_f32(a[i].d) * (float)sumi - fp16_to_f32(a[i].dmin) * (float)summ);
	}
	return s;
}

float quant_ref_dot_q5_K(int64_t n, const void *w, const void *x)
{
	const blk_q5_K *a = w;
	const blk_q8_K *b = x;
	int q[QK_K], sumi, summ;
	uint8_t sc[8], m[8];
	float s = 0;
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q4k(a[i].qs, a[i].scales, q, sc, m);
		add_q5k_high(a[i].qh, q);
		affine_k_sums(q, sc, m, &b[i], &sumi, &summ);
		s += b[i].d * (fp16_to_f32(a[i].d) * (float)sumi - fp16_to_f32(a[i].dmin) * (float)summ);
	}
	return s;
}

float quant_ref_dot_q6_K(int64_t n, const void *w, const void *x)
{
	const blk_q6_K *a = w;
	const blk_q8_K *b = x;
	int q[QK_K];
	float s = 0;
	for (int64_t i = 0; i < n / QK_K; i++) {
		unpack_q6k(&a[i], q);
		int sumi = 0;
		for (int g = 0; g < QK_K / 16; g++) {
			int t = 0;
			for (int l = 0; l < 16; l++)
				t += q[16 * g + l] * b[i].qs[16 * g + l];
			sumi += a[i].scales[g] * t;
		}
		s += fp16_to_f32(a[i].d) * b[i].d * (float)sumi;
	}
	return s;
}

/* ---- quantizers ---------------------------------------------------------- */

/* Pack 6-bit scales and mins the way k4_scale_min reads them. */
static void pack_scales(const uint8_t *sc, const uint8_t *m, uint8_t *out)
{
	for (int j = 0; j < 4; j++) {
		out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
		out[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
		out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
	}
}

/* One Q4_K/Q5_K super-block: per sub-block x ~ scale*q - min with min <= 0
 * folded in, then 6-bit scales relative to the block maxima. q in 0..levels-1. */
static void quant_affine_k(const float *x, int levels, uint16_t *d16, uint16_t *dmin16,
			   uint8_t *scales, int *q)
{
	float scale[8], mn[8], smax = 0, mmax = 0;
	uint8_t sc[8], m[8];
	for (int j = 0; j < 8; j++) {
		float lo = 0, hi = x[32 * j];
		for (int l = 0; l < 32; l++) {
			lo = fminf(lo, x[32 * j + l]);
			hi = fmaxf(hi, x[32 * j + l]);
		}
		scale[j] = (hi - lo) / (float)(levels - 1);
		mn[j] = -lo;
		smax = fmaxf(smax, scale[j]);
		mmax = fmaxf(mmax, mn[j]);
	}
	*d16 = f32_to_fp16(smax / 63.0f);
	*dmin16 = f32_to_fp16(mmax / 63.0f);
	float d = fp16_to_f32(*d16), dmin = fp16_to_f32(*dmin16);
	for (int j = 0; j < 8; j++) {
		sc[j] = (uint8_t)clampi(d ? nearest(scale[j] / d) : 0, 0, 63);
		m[j] = (uint8_t)clampi(dmin ? nearest(mn[j] / dmin) : 0, 0, 63);
		float es = d * sc[j], em = dmin * m[j];
		for (int l = 0; l < 32; l++)
			q[32 * j + l] = es ? clampi(nearest((x[32 * j + l] + em) / es), 0, levels - 1) : 0;
	}
	pack_scales(sc, m, scales);
}

static void pack_q4k(const int *q, uint8_t *qs)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++)
			qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 0xF) | ((q[64 * c + 32 + l] & 0xF) << 4));
}

void quant_ref_quantize_q4_K(const float *src, void *dst, int64_t n)
{
	blk_q4_K *b = dst;
	int q[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_affine_k(src + i * QK_K, 16, &b[i].d, &b[i].dmin, b[i].scales, q);
		pack_q4k(q, b[i].qs);
	}
}

void quant_ref_quantize_q5_K(const float *src, void *dst, int64_t n)
{
	blk_q5_K *b = dst;
	int q[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_affine_k(src + i * QK_K, 32, &b[i].d, &b[i].dmin, b[i].scales, q);
		pack_q4k(q, b[i].qs);
		memset(b[i].qh, 0, sizeof b[i].qh);
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++)
				b[i].qh[l] |= (uint8_t)(((q[64 * c + l] >> 4) << (2 * c)) |
							((q[64 * c + 32 + l] >> 4) << (2 * c + 1)));
	}
}

static void pack_q6k(const int *q, blk_q6_K *b)
{
	for (int h = 0; h < 2; h++) {
		const int *s = q + 128 * h; /* unsigned 0..63 */
		uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		for (int l = 0; l < 32; l++) {
			ql[l] = (uint8_t)((s[l] & 0xF) | ((s[l + 64] & 0xF) << 4));
			ql[l + 32] = (uint8_t)((s[l + 32] & 0xF) | ((s[l + 96] & 0xF) << 4));
			qh[l] = (uint8_t)((s[l] >> 4) | ((s[l + 32] >> 4) << 2) |
					  ((s[l + 64] >> 4) << 4) | ((s[l + 96] >> 4) << 6));
		}
	}
}

/* Signed scale per group of 16 mapping the largest-magnitude element to -32
 * (as ggml), then int8 scales relative to the largest one. */
void quant_ref_quantize_q6_K(const float *src, void *dst, int64_t n)
{
	blk_q6_K *b = dst;
	int q[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float scale[16], amax = 0;
		for (int g = 0; g < 16; g++) {
			float mx = 0;
			for (int l = 0; l < 16; l++)
				if (fabsf(x[16 * g + l]) > fabsf(mx))
					mx = x[16 * g + l];
			scale[g] = mx / -32.0f;
			amax = fmaxf(amax, fabsf(scale[g]));
		}
		b[i].d = f32_to_fp16(amax / 127.0f);
		float d = fp16_to_f32(b[i].d);
		for (int g = 0; g < 16; g++) {
			b[i].scales[g] = (int8_t)clampi(d ? nearest(scale[g] / d) : 0, -127, 127);
			float es = d * b[i].scales[g];
			for (int l = 0; l < 16; l++)
				q[16 * g + l] = es ? clampi(nearest(x[16 * g + l] / es), -32, 31) + 32 : 32;
		}
		pack_q6k(q, &b[i]);
	}
}

/* Activations, bit for bit ggml's quantize_row_q8_K_ref: the first element
 * of largest magnitude maps to -127 (so d may be negative), q = round half
 * to even of x * (-127/max), clamped to 127; bsums hold the group sums. */
void quant_ref_quantize_q8_K(const float *src, void *dst, int64_t n)
{
	blk_q8_K *b = dst;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float amax = 0, max = 0;
		for (int e = 0; e < QK_K; e++)
			if (fabsf(x[e]) > amax) {
				amax = fabsf(x[e]);
				max = x[e];
			}
		float iscale = amax ? -127.0f / max : 0.0f;
		for (int e = 0; e < QK_K; e++)
			b[i].qs[e] = (int8_t)(amax ? clampi(nearest(iscale * x[e]), -128, 127) : 0);
		b[i].d = amax ? 1.0f / iscale : 0.0f;
		for (int g = 0; g < QK_K / 16; g++) {
			int s = 0;
			for (int l = 0; l < 16; l++)
				s += b[i].qs[16 * g + l];
			b[i].bsums[g] = (int16_t)s;
		}
	}
}
