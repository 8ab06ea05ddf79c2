/*
 * pack-avx512.c — the packed GEMM kernels compiled for AVX-512 (VL, BW, DQ)
 * + VNNI: vpdpbusd for the u8 x s8 dots and 32 vector registers for wider
 * tiles. pack.c calls in only when quant.h's selected level is "avx512"
 * (cpuid checked there). Builds without AVX-512 flags get an empty table.
 */
#include "llm/quant/pack-impl.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

#if defined(__clang__)
/* a level whose headers define no kernel leaves the region empty */
#pragma clang diagnostic ignored "-Wpragma-clang-attribute"
#pragma clang attribute push(__attribute__((target("avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512vnni")
#endif

#define QX_VNNI 1
#include "llm/quant/pack-x86-32.h"
#include "llm/quant/pack-x86-k.h"

const struct pack_kernels pack_kernels_avx512 = {
	.name = "avx512",
	.gemm = { PACK_X86_32_GEMMS PACK_X86_K_GEMMS },
	.quantize_a8 = PACK_X86_QUANTIZE_A8,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#else

const struct pack_kernels pack_kernels_avx512 = { .name = "avx512" };

#endif
