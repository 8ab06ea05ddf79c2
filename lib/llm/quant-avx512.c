#include "llm/quant-impl.h"
const struct quant_kernels quant_kernels_avx512 = { .name = "avx512" };
