/*
 * attn.c — the two inner loops of attention over one span of cached
 * positions: scores (q . k for every query head of a KV group) and the
 * probability-weighted sum of V rows. AVX2 versions in attn-avx2.c, chosen
 * once per process.
 *
 * Why not one llm_dot_f32 / axpy call per position: with head sizes of
 * 64..256 the call, the horizontal sum and the reload of the output row
 * cost more than the arithmetic; batched decode spent ~20% there.
 *
 * Invariant: a score is one dot product whose summation order depends only
 * on hk (never on n, the span, the batch or the thread); the mix adds
 * position after position into each output element, in position order. So
 * results are batch-invariant. The AVX2 versions fuse multiply and add and
 * sum dots in another order, so they differ from the scalar ones in the
 * last bits: the choice is made once per process.
 */
#include "llm/model-impl.h"
#include "llm/ops-impl.h"

void llm_attn_scores_avx2(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
			  uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_avx2(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		       const float *v, size_t vs, uint32_t n);

void llm_attn_scores(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
		     uint32_t n, float scale, float *sc, size_t sc_stride)
{
	if (hk % 8 == 0 && llm_ops_avx2()) {
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
	if (hv % 8 == 0 && llm_ops_avx2()) {
		llm_attn_mix_avx2(out, grp, hv, p, p_stride, v, vs, n);
		return;
	}
	for (uint32_t g = 0; g < grp; g++)
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t d = 0; d < hv; d++)
				out[(size_t)g * hv + d] += p[g * p_stride + i] * v[i * vs + d];
}
