/*
 * cuda-quant.cuh — reading GGUF weight rows on the device: the 32
 * consecutive elements [32c, 32c + 32) of a row ("chunk" c) as floats, for
 * every weight type the kernels take. The matvec, embedding and dequant
 * kernels are all built on cu_chunk<T>().
 *
 * Block layouts read (ggml's, lib/llm/quant/quant-impl.h; byte offsets):
 *   Q4_0 (18 B / 32)  d@0 f16, qs@2 [16]: elem i<16 = qs[i]&15, i>=16 = qs[i-16]>>4; d*(q-8)
 *   Q4_1 (20 B / 32)  d@0, m@2, qs@4 [16]; d*q + m
 *   Q5_0 (22 B / 32)  d@0, qh@2 u32 LE (bit i = 5th bit of elem i), qs@6; d*(q-16)
 *   Q5_1 (24 B / 32)  d@0, m@2, qh@4, qs@8; d*q + m
 *   Q8_0 (34 B / 32)  d@0, qs@2 int8 [32]; d*q
 *   Q4_K (144 B / 256) d@0, dmin@2, scales@4 [12] (6-bit sc/m, k4_scale_min),
 *        qs@16 [128]: sub-block j (32 elems) = nibble (j&1) of qs[32(j>>1) + l];
 *        d*sc[j]*q - dmin*m[j]
 *   Q5_K (176 B / 256) Q4_K + qh@16 [32] (bit j of qh[l] = 5th bit), qs@48
 *   Q6_K (210 B / 256) ql@0 [128], qh@128 [64], scales@192 int8 [16], d@208;
 *        chunk j: half h = j>>2, group g = j&3, l < 32:
 *        q = ((ql[64h + 32(g&1) + l] >> 4(g>>1)) & 15) | ((qh[32h + l] >> 2g) & 3) << 4,
 *        d * scales[2j + l/16] * (q - 32)
 *   F32 / F16 / BF16: plain; a partial last chunk reads 0 past cols.
 * Products and sums are written with cu_mul/cu_add in the order of
 * quant-ref.c / quant-k.c, so a dequantized element is bit for bit the
 * CPU reference's (no fused multiply-add where the C code has none).
 *
 * Alignment: a row starts at w + r * row_bytes with w 16-byte aligned
 * (cudaMalloc); the wide loads below rely only on what the block sizes
 * then guarantee (Q4_K/Q5_K qs 16 B; F16/F32 rows when cols % 32 == 0,
 * the VEC case). Everything else is read by bytes or halves.
 */
#ifndef PLOT_CUDA_QUANT_CUH
#define PLOT_CUDA_QUANT_CUH

#include "cuda/cuda-common.cuh"

/* ggml type numbers (lib/llm/quant/quant.h, enum qtype) */
#define CQ_F32 0
#define CQ_F16 1
#define CQ_Q4_0 2
#define CQ_Q4_1 3
#define CQ_Q5_0 6
#define CQ_Q5_1 7
#define CQ_Q8_0 8
#define CQ_Q4_K 12
#define CQ_Q5_K 13
#define CQ_Q6_K 14
#define CQ_BF16 30

CU_HD uint16_t cu_u16(const uint8_t *p)
{
	return *(const uint16_t *)p; /* every f16 field sits at an even offset */
}

CU_HD uint32_t cu_u32_bytes(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 4-bit quants of a 32-element block: q[i] for i < 16 low nibbles, then high */
CU_HD void cu_nib32(const uint8_t *qs, int *q)
{
CU_UNROLL
	for (int i = 0; i < 16; i++) {
		uint8_t b = qs[i];
		q[i] = b & 15;
		q[i + 16] = b >> 4;
	}
}

CU_HD void cu_k4_scale_min(int j, const uint8_t *s, float *sc, float *m)
{
	if (j < 4) {
		*sc = (float)(s[j] & 63);
		*m = (float)(s[j + 4] & 63);
	} else {
		*sc = (float)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
		*m = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
	}
}

template <int T, bool VEC>
CU_HD void cu_chunk_float(const uint8_t *row, uint32_t c, uint32_t cols,
					       float *v)
{
	if constexpr (VEC) {
		if constexpr (T == CQ_F32) {
			const float4 *p = (const float4 *)row + (size_t)c * 8;
CU_UNROLL
			for (int i = 0; i < 8; i++) {
				float4 f = p[i];
				v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
			}
		} else {
			const uint4 *p = (const uint4 *)row + (size_t)c * 4;
CU_UNROLL
			for (int i = 0; i < 4; i++) {
				uint4 u = p[i];
				uint32_t w[4] = { u.x, u.y, u.z, u.w };
CU_UNROLL
				for (int k = 0; k < 4; k++) {
					uint16_t lo = (uint16_t)(w[k] & 0xFFFF), hi = (uint16_t)(w[k] >> 16);
					v[8 * i + 2 * k] = T == CQ_F16 ? cu_h2f(lo) : cu_bf2f(lo);
					v[8 * i + 2 * k + 1] = T == CQ_F16 ? cu_h2f(hi) : cu_bf2f(hi);
				}
			}
		}
	} else {
CU_UNROLL
	for (int i = 0; i < 32; i++) {
		uint32_t e = c * 32 + i;
		float f = 0.0f;
		if (e < cols) {
			if (T == CQ_F32)
				f = ((const float *)row)[e];
			else if (T == CQ_F16)
				f = cu_h2f(((const uint16_t *)row)[e]);
			else
				f = cu_bf2f(((const uint16_t *)row)[e]);
		}
		v[i] = f;
	}
	}
}

/* Q4_0, Q4_1, Q5_0, Q5_1 */
template <int T>
CU_HD void cu_chunk_q4x(const uint8_t *row, uint32_t c, float *v)
{
	int q[32];
	const int bs = T == CQ_Q4_0 ? 18 : T == CQ_Q4_1 ? 20 : T == CQ_Q5_0 ? 22 : 24;
	const int qso = T == CQ_Q4_0 ? 2 : T == CQ_Q4_1 ? 4 : T == CQ_Q5_0 ? 6 : 8;
	const uint8_t *b = row + (size_t)c * bs;
	float d = cu_h2f(cu_u16(b));
	cu_nib32(b + qso, q);
	if (T == CQ_Q5_0 || T == CQ_Q5_1) {
		uint32_t h = cu_u32_bytes(b + (T == CQ_Q5_0 ? 2 : 4));
CU_UNROLL
		for (int i = 0; i < 32; i++)
			q[i] |= (int)((h >> i) & 1) << 4;
	}
	if (T == CQ_Q4_0 || T == CQ_Q5_0) {
		const int off = T == CQ_Q4_0 ? 8 : 16;
CU_UNROLL
		for (int i = 0; i < 32; i++)
			v[i] = cu_mul(d, (float)(q[i] - off));
	} else {
		float m = cu_h2f(cu_u16(b + 2));
CU_UNROLL
		for (int i = 0; i < 32; i++)
			v[i] = cu_add(cu_mul(d, (float)q[i]), m);
	}
}

template <int T>
CU_HD void cu_chunk_q32(const uint8_t *row, uint32_t c, float *v)
{
	if constexpr (T == CQ_Q8_0) {
		const uint8_t *b = row + (size_t)c * 34;
		float d = cu_h2f(cu_u16(b));
CU_UNROLL
		for (int i = 0; i < 32; i++)
			v[i] = cu_mul(d, (float)(int8_t)b[2 + i]);
	} else {
		cu_chunk_q4x<T>(row, c, v);
	}
}

/* Q4_K / Q5_K: chunk c is sub-block j = c % 8 of super-block c / 8 */
template <int T>
CU_HD void cu_chunk_q45k(const uint8_t *row, uint32_t c, float *v)
{
	const int bs = T == CQ_Q4_K ? 144 : 176, qso = T == CQ_Q4_K ? 16 : 48;
	const uint8_t *b = row + (size_t)(c >> 3) * bs;
	const int j = (int)(c & 7);
	float d = cu_h2f(cu_u16(b)), dmin = cu_h2f(cu_u16(b + 2)), sc, m;
	cu_k4_scale_min(j, b + 4, &sc, &m);
	float d1 = cu_mul(d, sc), m1 = cu_mul(dmin, m);
	const uint4 *qp = (const uint4 *)(b + qso + 32 * (j >> 1));
	uint4 u[2] = { qp[0], qp[1] };
	const uint8_t *qs = (const uint8_t *)u;
	const int sh = (j & 1) * 4;
CU_UNROLL
	for (int l = 0; l < 32; l++) {
		int q = (qs[l] >> sh) & 15;
		if (T == CQ_Q5_K)
			q += ((b[16 + l] >> j) & 1) << 4;
		v[l] = cu_sub(cu_mul(d1, (float)q), m1);
	}
}

CU_HD void cu_chunk_q6k(const uint8_t *row, uint32_t c, float *v)
{
	const uint8_t *b = row + (size_t)(c >> 3) * 210;
	const int j = (int)(c & 7), h = j >> 2, g = j & 3;
	const uint8_t *ql = b + 64 * h + 32 * (g & 1), *qh = b + 128 + 32 * h;
	const int shl = 4 * (g >> 1), shh = 2 * g;
	float d = cu_h2f(cu_u16(b + 208));
	float ds0 = cu_mul(d, (float)(int8_t)b[192 + 2 * j]);
	float ds1 = cu_mul(d, (float)(int8_t)b[192 + 2 * j + 1]);
CU_UNROLL
	for (int l = 0; l < 32; l++) {
		int q = ((ql[l] >> shl) & 15) | (((qh[l] >> shh) & 3) << 4);
		v[l] = cu_mul(l < 16 ? ds0 : ds1, (float)(q - 32));
	}
}

/* v[0..32) = elements [32c, 32c + 32) of the row (0 past cols for the float types). */
template <int T, bool VEC>
CU_HD void cu_chunk(const uint8_t *row, uint32_t c, uint32_t cols, float *v)
{
	if constexpr (T == CQ_F32 || T == CQ_F16 || T == CQ_BF16)
		cu_chunk_float<T, VEC>(row, c, cols, v);
	else if constexpr (T == CQ_Q4_K || T == CQ_Q5_K)
		cu_chunk_q45k<T>(row, c, v);
	else if constexpr (T == CQ_Q6_K)
		cu_chunk_q6k(row, c, v);
	else
		cu_chunk_q32<T>(row, c, v);
}

/* Calls F.template operator()<T, VEC>() for the runtime type t; VEC when
 * the float types' rows are whole chunks. CUDA_OP_EINVAL for other types. */
template <typename F>
static int cu_dispatch(uint32_t t, uint32_t cols, F f)
{
	bool vec = cols % 32 == 0;
	switch (t) {
	case CQ_F32: return vec ? f.template go<CQ_F32, true>() : f.template go<CQ_F32, false>();
	case CQ_F16: return vec ? f.template go<CQ_F16, true>() : f.template go<CQ_F16, false>();
	case CQ_BF16: return vec ? f.template go<CQ_BF16, true>() : f.template go<CQ_BF16, false>();
	case CQ_Q4_0: return f.template go<CQ_Q4_0, false>();
	case CQ_Q4_1: return f.template go<CQ_Q4_1, false>();
	case CQ_Q5_0: return f.template go<CQ_Q5_0, false>();
	case CQ_Q5_1: return f.template go<CQ_Q5_1, false>();
	case CQ_Q8_0: return f.template go<CQ_Q8_0, false>();
	case CQ_Q4_K: return f.template go<CQ_Q4_K, false>();
	case CQ_Q5_K: return f.template go<CQ_Q5_K, false>();
	case CQ_Q6_K: return f.template go<CQ_Q6_K, false>();
	default: return CUDA_OP_EINVAL;
	}
}

/* Argument checks every weight-reading op makes: type/shape (cuda_plan_weight)
 * and the 16-byte alignment the wide loads need. */
static inline int cu_check_weight(const char *op, const void *w, uint32_t type, size_t row_bytes,
				  uint32_t cols, char *err, size_t errlen)
{
	char e[200];
	if (cuda_plan_weight(type, cols, row_bytes, e, sizeof e))
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "%s: %s", op, e);
	if ((uintptr_t)w % 16)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "%s: weights at %p are not 16-byte aligned",
			       op, w);
	return 0;
}

#endif
