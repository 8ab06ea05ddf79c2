/*
 * attn.c — the two inner loops of attention over one span of cached
 * positions: scores (q . k for every query head of a KV group) and the
 * probability-weighted sum of V rows, over F32 or IEEE half (F16) K/V
 * rows; and the float <-> half conversions of the F16 cache. AVX2 versions
 * in attn-avx2.c, chosen once per process.
 *
 * Why not one llm_dot_f32 / axpy call per position: with head sizes of
 * 64..256 the call, the horizontal sum and the reload of the output row
 * cost more than the arithmetic; batched decode spent ~20% there.
 *
 * F16 follows llama.cpp's default CPU path (KV cache F16, no flash
 * attention): K and V are stored as half; KQ = mul_mat(K, Q) converts Q to
 * half (the vec_dot type of F16) and accumulates in float; KQV =
 * mul_mat(V, softmax) converts the probabilities to half. The forward pass
 * rounds q and p to half values (llm_f16_round) before calling the loops
 * here, which then only widen K/V: a product of two halves is exact in
 * float, so the bits differ from ggml's only by summation order.
 *
 * Invariant: a score is one dot product whose summation order depends only
 * on hk (never on n, the span, the batch or the thread); the mix adds
 * position after position into each output element, in position order. So
 * results are batch-invariant. The AVX2 versions fuse multiply and add and
 * sum dots in another order, so they differ from the scalar ones in the
 * last bits: the choice is made once per process. The half conversions
 * give the same bits in both (attn-impl.h).
 */
#include <cpuid.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "llm/cpu/attn-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/cpu/ops-impl.h"

int llm_attn_avx2(void)
{
	static _Atomic int cached = -1; /* every thread computes the same value */
	int v = atomic_load_explicit(&cached, memory_order_relaxed);
	if (v < 0) {
		unsigned a, b, c, d;
		int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
		v = llm_ops_avx2() && f16c;
		atomic_store_explicit(&cached, v, memory_order_relaxed);
	}
	return v;
}

/* Round to nearest even; overflow to inf, NaN stays a quiet NaN with its
 * top payload bits (what F16C does). */
uint16_t llm_f16_from_f32(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7fffffffu;
	if (a > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
	if (a >= 0x477ff000u) /* >= 65520: rounds past the largest half */
		return (uint16_t)(sign | 0x7c00);
	if (a < 0x38800000u) { /* below 2^-14: a multiple of 2^-24, exact scaling */
		float f;
		memcpy(&f, &a, sizeof f);
		return (uint16_t)(sign | (uint16_t)lrintf(f * 0x1p24f));
	}
	a += 0xfffu + ((a >> 13) & 1u); /* nearest even on the 13 dropped bits */
	return (uint16_t)(sign | ((a - 0x38000000u) >> 13));
}

float llm_f32_from_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
	uint32_t u;
	if (e == 0) {
		float f = (float)m * 0x1p-24f;
		return sign ? -f : f;
	}
	u = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

void llm_f16_row_ref(uint16_t *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = llm_f16_from_f32(x[i]);
}

void llm_f16_round_ref(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = llm_f32_from_f16(llm_f16_from_f32(x[i]));
}

void llm_f16_row(uint16_t *y, const float *x, size_t n)
{
	if (llm_attn_avx2())
		llm_f16_row_avx2(y, x, n);
	else
		llm_f16_row_ref(y, x, n);
}

void llm_f16_round(float *x, size_t n)
{
	if (llm_attn_avx2())
		llm_f16_round_avx2(x, n);
	else
		llm_f16_round_ref(x, n);
}

void llm_attn_scores(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
		     uint32_t n, float scale, float *sc, size_t sc_stride)
{
	if (hk % 8 == 0 && llm_attn_avx2()) {
		llm_attn_scores_avx2(q, grp, hk, k, ks, n, scale, sc, sc_stride);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t g = 0; g < grp; g++)
			sc[g * sc_stride + i] = llm_dot_f32(q + (size_t)g * hk, k + i * ks, hk) * scale;
}

void llm_attn_mix(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		  const float *v, size_t vs, uint32_t n)
{
	if (hv % 8 == 0 && llm_attn_avx2()) {
		llm_attn_mix_avx2(out, grp, hv, p, p_stride, v, vs, n);
		return;
	}
	for (uint32_t g = 0; g < grp; g++)
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t d = 0; d < hv; d++)
				out[(size_t)g * hv + d] += p[g * p_stride + i] * v[i * vs + d];
}

/* Dots in element order; the order depends only on hk. */
void llm_attn_scores_f16_ref(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			     size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t g = 0; g < grp; g++) {
			const float *qg = q + (size_t)g * hk;
			float s = 0.0f;
			for (uint32_t d = 0; d < hk; d++)
				s += qg[d] * llm_f32_from_f16(k[i * ks + d]);
			sc[g * sc_stride + i] = s * scale;
		}
}

void llm_attn_mix_f16_ref(float *out, uint32_t grp, uint32_t hv, const float *p,
			  size_t p_stride, const uint16_t *v, size_t vs, uint32_t n)
{
	for (uint32_t g = 0; g < grp; g++)
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t d = 0; d < hv; d++)
				out[(size_t)g * hv + d] +=
					p[g * p_stride + i] * llm_f32_from_f16(v[i * vs + d]);
}

void llm_attn_scores_f16(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			 size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride)
{
	if (hk % 8 == 0 && llm_attn_avx2())
		llm_attn_scores_f16_avx2(q, grp, hk, k, ks, n, scale, sc, sc_stride);
	else
		llm_attn_scores_f16_ref(q, grp, hk, k, ks, n, scale, sc, sc_stride);
}

void llm_attn_mix_f16(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		      const uint16_t *v, size_t vs, uint32_t n)
{
	if (hv % 8 == 0 && llm_attn_avx2())
		llm_attn_mix_f16_avx2(out, grp, hv, p, p_stride, v, vs, n);
	else
		llm_attn_mix_f16_ref(out, grp, hv, p, p_stride, v, vs, n);
}
