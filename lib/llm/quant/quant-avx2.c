/*
 * quant-avx2.c — AVX2 + FMA + F16C kernel table (compiled with those flags
 * only; quant.c calls in only after cpuid says the CPU has them). The
 * kernels themselves are in quant-x86-impl.h, shared with quant-avx512.c.
 */
#define QX_VNNI 0
#include "llm/quant/quant-x86-impl.h"

#define QX_TABLE quant_kernels_avx2
#define QX_NAME "avx2"
#include "llm/quant/quant-x86-table.h"
