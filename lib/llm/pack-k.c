/*
 * pack-k.c — repacking and reference GEMM for the K-quants (Q4_K, Q5_K,
 * Q6_K). Layouts: pack-impl.h; numbers: pack.h.
 *
 * PLACEHOLDER: no type packs yet.
 */
#include "llm/pack-impl.h"

const struct pack_type pack_types_k[QT_TABLE];
