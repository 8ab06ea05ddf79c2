/*
 * ops-impl.h — the two implementations of the row operations (ops.c: scalar
 * reference, ops-avx2.c: AVX2/FMA) and the constants they share.
 *
 * Invariant: for glu, rmsnorm and softmax both implementations perform the
 * same IEEE operations in the same order on every element (fmaf where the
 * vector code fuses, the same lane partition for the double sums), so they
 * give identical bits and a result never depends on which CPU ran it.
 * tests/unit/test-ops.c checks this bit for bit. (The float dot is
 * the exception: its scalar and AVX2 orders differ in the last bits.)
 *
 * exp(x) = 2^n * e^r, n = round(x / ln 2), r = x - n ln 2 (two-part ln 2),
 * e^r by the Cephes expf polynomial (1 + r + r^2 P(r), |r| <= ln2 / 2); 2^n is
 * applied in two halves so results down to the subnormals are rounded once.
 * x is clamped to [EXP_LO, EXP_HI] first (NaN is restored at the end), which
 * keeps n in [-150, 128]: below EXP_LO the result is +0, above EXP_HI
 * overflow gives +inf.
 */
#ifndef PLOT_LLM_OPS_IMPL_H
#define PLOT_LLM_OPS_IMPL_H

#include <stdint.h>

#include "llm/engine/model-impl.h"

#define OPS_EXP_LO (-104.0f) /* e^-104 < FLT_TRUE_MIN / 2: rounds to 0 */
#define OPS_EXP_HI 89.0f     /* e^89 > FLT_MAX */
#define OPS_MAGIC 0x1.8p23f  /* x + MAGIC rounds x to an integer (|x| < 2^22) */
#define OPS_LOG2E 0x1.715476p+0f
#define OPS_LN2_HI 0x1.62e430p-1f /* ln 2 = HI + LO to 2^-48 */
#define OPS_LN2_LO -0x1.05c610p-29f
#define OPS_EXP_P5 1.9875691500e-4f /* Cephes expf: e^r = 1 + r + r^2 P(r) */
#define OPS_EXP_P4 1.3981999507e-3f
#define OPS_EXP_P3 8.3334519073e-3f
#define OPS_EXP_P2 4.1665795894e-2f
#define OPS_EXP_P1 1.6666665459e-1f
#define OPS_EXP_P0 5.0000001201e-1f
/* GELU-tanh: 0.5 g (1 + tanh u) = g sigmoid(2u), 2u = g (C1 + C2 g^2),
 * C1 = 2 sqrt(2/pi), C2 = C1 * 0.044715, each as float HI + LO. */
#define OPS_GELU_C1H 0x1.988454p+0f
#define OPS_GELU_C1L -0x1.857936p-25f
#define OPS_GELU_C2H 0x1.2444f2p-4f
#define OPS_GELU_C2L 0x1.49b16ap-29f

/* ops.c */
int llm_ops_avx2(void); /* nonzero when the AVX2 versions are in use */
float llm_exp_ref(float x);
void llm_glu_ref(float *gate, const float *up, uint32_t n, enum llm_act act);
void llm_rmsnorm_ref(float *y, const float *x, const float *w, uint32_t n, float eps);
void llm_softmax_ref(float *x, uint32_t n);

/* ops-avx2.c: only call when llm_ops_avx2() */
void llm_glu_avx2(float *gate, const float *up, uint32_t n, enum llm_act act);
void llm_rmsnorm_avx2(float *y, const float *x, const float *w, uint32_t n, float eps);
void llm_softmax_avx2(float *x, uint32_t n);
float llm_dot_f32_avx2(const float *a, const float *b, uint32_t n);

#endif
