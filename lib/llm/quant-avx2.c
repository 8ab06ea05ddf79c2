/* placeholder, filled below */
#include "llm/quant-impl.h"
const struct quant_kernels quant_kernels_avx2 = { .name = "avx2" };
