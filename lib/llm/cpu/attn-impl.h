/*
 * attn-impl.h — the two implementations of the attention inner loops
 * (attn.c: scalar reference and dispatch, attn-avx2.c: AVX2/FMA/F16C) and
 * the IEEE half conversions the F16 KV cache uses. Declared here so
 * tests/unit/test-attn.c can hold the two side by side.
 *
 * Invariant: the half conversions give the same bits in both (round to
 * nearest even, as F16C's _mm256_cvtps_ph(x, 0) and ggml's fp32_to_fp16);
 * the dots and sums may differ in the last float bits (FMA, lane order),
 * so which one runs is chosen once per process.
 */
#ifndef PLOT_LLM_ATTN_IMPL_H
#define PLOT_LLM_ATTN_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* attn.c */
int llm_attn_avx2(void); /* nonzero when the AVX2 versions are in use (AVX2, FMA, F16C) */
uint16_t llm_f16_from_f32(float x);
float llm_f32_from_f16(uint16_t h);
void llm_f16_row_ref(uint16_t *y, const float *x, size_t n);
void llm_f16_round_ref(float *x, size_t n);
void llm_attn_scores_f16_ref(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			     size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_f16_ref(float *out, uint32_t grp, uint32_t hv, const float *p,
			  size_t p_stride, const uint16_t *v, size_t vs, uint32_t n);

/* attn-avx2.c: only call when llm_attn_avx2(); head sizes multiples of 8 */
void llm_f16_row_avx2(uint16_t *y, const float *x, size_t n);
void llm_f16_round_avx2(float *x, size_t n);
void llm_attn_scores_avx2(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
			  uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_avx2(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		       const float *v, size_t vs, uint32_t n);
void llm_attn_scores_f16_avx2(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			      size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_f16_avx2(float *out, uint32_t grp, uint32_t hv, const float *p,
			   size_t p_stride, const uint16_t *v, size_t vs, uint32_t n);

#endif
