/*
 * pack-32.c — repacking, reference GEMM and PACK_A8 activations for the
 * 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0). Layouts: pack-impl.h;
 * numbers: pack.h.
 *
 * PLACEHOLDER: no type packs yet.
 */
#include "llm/pack-impl.h"

const struct pack_type pack_types_32[QT_TABLE];

void pack_ref_quantize_a8(const float *x, void *dst, int64_t n)
{
	(void)x, (void)dst, (void)n;
}
