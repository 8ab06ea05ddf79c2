/*
 * pack-x86-k.h — x86 packed GEMM kernels for the K-quants (Q4_K, Q5_K,
 * Q6_K), included by pack-avx2.c (QX_VNNI 0) and pack-avx512.c (QX_VNNI 1).
 *
 * PLACEHOLDER: no kernels yet; every type uses its reference.
 */
#ifndef PLOT_LLM_PACK_X86_K_H
#define PLOT_LLM_PACK_X86_K_H

#include "llm/pack-impl.h"

/* table entries "[type] = fn," for pack_kernels.gemm */
#define PACK_X86_K_GEMMS

#endif
