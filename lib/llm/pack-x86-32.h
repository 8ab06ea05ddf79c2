/*
 * pack-x86-32.h — x86 packed GEMM kernels for the 32-element types (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0) and the PACK_A8 activation quantizer, included by
 * pack-avx2.c (QX_VNNI 0) and pack-avx512.c (QX_VNNI 1).
 *
 * PLACEHOLDER: no kernels yet; every type uses its reference.
 */
#ifndef PLOT_LLM_PACK_X86_32_H
#define PLOT_LLM_PACK_X86_32_H

#include "llm/pack-impl.h"

/* table entries "[type] = fn," for pack_kernels.gemm */
#define PACK_X86_32_GEMMS
#define PACK_X86_QUANTIZE_A8 NULL

#endif
