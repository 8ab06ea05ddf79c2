/*
 * quant-avx512.c — the quant-x86-impl.h kernels compiled for AVX-512 (VL,
 * BW, DQ) + VNNI: vpdpbusd replaces maddubs + madd in the 32-element dots,
 * and the EVEX encodings give 32 vector registers for the batched (K = 4)
 * kernels. The integer sums are the same as AVX2's, so results are too.
 *
 * VNNI is enabled here by pragma (the Makefile's AVX512_FLAGS stop at
 * BW/VL/DQ); quant.c uses this table only when cpuid reports AVX512-VNNI.
 * Builds without AVX-512 flags (the fuzz harness compiles every lib file
 * with -mavx2) get an empty table, which the dispatcher skips.
 */
#include "llm/quant/quant-impl.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512vnni")
#endif

#define QX_VNNI 1
#include "llm/quant/quant-x86-impl.h"

#define QX_TABLE quant_kernels_avx512
#define QX_NAME "avx512"
#include "llm/quant/quant-x86-table.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else

const struct quant_kernels quant_kernels_avx512 = { .name = "avx512" };

#endif
