/*
 * pack-avx2.c — the packed GEMM kernels for AVX2 + FMA + F16C (no VNNI:
 * the u8 x s8 dots go through maddubs + madd). The kernels are in
 * pack-x86-32.h and pack-x86-k.h, shared with pack-avx512.c; pack.c calls
 * in only when quant.h's selected level is "avx2".
 */
#define QX_VNNI 0
#include "llm/quant/pack-x86-32.h"
#include "llm/quant/pack-x86-k.h"

const struct pack_kernels pack_kernels_avx2 = {
	.name = "avx2",
	.gemm = { PACK_X86_32_GEMMS PACK_X86_K_GEMMS },
	.quantize_a8 = PACK_X86_QUANTIZE_A8,
};
