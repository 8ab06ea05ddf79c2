/*
 * pack.c — the packed-matrix API of pack.h: sizes, repacking, activation
 * quantization and run-time dispatch of the GEMM kernels.
 *
 * The per-type work lives in pack-32.c (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
 * the PACK_A8 activations) and pack-k.c (Q4_K, Q5_K, Q6_K); the SIMD
 * kernels in pack-avx2.c / pack-avx512.c. The SIMD level follows quant.h's
 * selection (quant_set_impl switches both), and a level without a kernel
 * for a type falls back to that type's reference, which computes the same
 * bits (pack.h's contract).
 */
#include "llm/quant/pack.h"
#include "llm/quant/pack-impl.h"
#include "llm/quant/quant.h"

#include <stdlib.h>
#include <string.h>

static const struct pack_type *ptype(uint32_t wtype)
{
	if (wtype >= QT_TABLE)
		return NULL;
	if (pack_types_32[wtype].pack)
		return &pack_types_32[wtype];
	if (pack_types_k[wtype].pack)
		return &pack_types_k[wtype];
	return NULL;
}

int pack_supported(uint32_t wtype)
{
	return ptype(wtype) != NULL;
}

/* bytes of one group of 8 rows */
static size_t group_bytes(const struct pack_type *pt, uint64_t cols)
{
	return (size_t)(cols / pt->blk) * pt->bytes;
}

size_t pack_matrix_bytes(uint32_t wtype, uint64_t rows, uint64_t cols)
{
	const struct pack_type *pt = ptype(wtype);
	uint64_t gb, r;
	if (!pt || rows == 0 || rows % PACK_ROWS || cols == 0 || cols % pt->blk)
		return 0;
	if (__builtin_mul_overflow(cols / pt->blk, (uint64_t)pt->bytes, &gb) ||
	    __builtin_mul_overflow(gb, rows / PACK_ROWS, &r) || r > SIZE_MAX)
		return 0;
	return (size_t)r;
}

void pack_matrix(uint32_t wtype, const void *src, uint64_t cols, uint64_t r0, uint64_t r1,
		 void *dst)
{
	const struct pack_type *pt = ptype(wtype);
	size_t rb = quant_row_bytes(wtype, cols), gb = group_bytes(pt, cols);
	for (uint64_t r = r0; r < r1; r += PACK_ROWS)
		pt->pack((const uint8_t *)src + r * rb, rb, cols,
			 (uint8_t *)dst + r / PACK_ROWS * gb);
}

void pack_dequant_row(uint32_t wtype, const void *packed, uint64_t cols, uint64_t r, float *dst)
{
	const struct pack_type *pt = ptype(wtype);
	pt->unrow((const uint8_t *)packed + r / PACK_ROWS * group_bytes(pt, cols), cols,
		  (unsigned)(r % PACK_ROWS), dst);
}

uint32_t pack_act_type(uint32_t wtype)
{
	const struct pack_type *pt = ptype(wtype);
	return pt ? pt->act : 0;
}

size_t pack_act_row_bytes(uint32_t atype, uint64_t n)
{
	if (atype != PACK_A8)
		return quant_row_bytes(atype, n);
	if (n % 32 || n / 32 > SIZE_MAX / sizeof(pk_a8))
		return 0;
	return (size_t)(n / 32) * sizeof(pk_a8);
}

/* The SIMD level quant.h runs now, or NULL for the reference. */
static const struct pack_kernels *level(void)
{
	const char *name = quant_impl_name();
	if (strcmp(name, pack_kernels_avx512.name) == 0)
		return &pack_kernels_avx512;
	if (strcmp(name, pack_kernels_avx2.name) == 0)
		return &pack_kernels_avx2;
	return NULL;
}

void pack_quantize_act(uint32_t atype, const float *x, void *dst, int64_t n)
{
	const struct pack_kernels *k = level();
	if (atype != PACK_A8)
		quant_quantize_row(atype, x, dst, n);
	else if (k && k->quantize_a8)
		k->quantize_a8(x, dst, n);
	else
		pack_ref_quantize_a8(x, dst, n);
}

static void gemm(pack_gemm_fn fn, const struct pack_type *pt, int64_t cols, const void *w,
		 int64_t r0, int64_t r1, const void *x, size_t xs, int64_t nx, float *y,
		 size_t ys)
{
	size_t gb = group_bytes(pt, (uint64_t)cols);
	fn(cols, (const uint8_t *)w + (size_t)(r0 / PACK_ROWS) * gb, gb, (r1 - r0) / PACK_ROWS, x,
	   xs, nx, y, ys);
}

void pack_ref_gemm(pack_ref_dot_fn dot, uint32_t t, int64_t nb, const void *w, size_t gs,
		   int64_t ng, const void *x, size_t xs, int64_t nx, float *y, size_t ys)
{
	for (int64_t g = 0; g < ng; g++)
		for (int64_t k = 0; k < nx; k++)
			for (unsigned r = 0; r < PACK_ROWS; r++)
				y[(size_t)k * ys + 8 * (size_t)g + r] =
					dot(t, (const uint8_t *)w + (size_t)g * gs, nb, r,
					    (const uint8_t *)x + (size_t)k * xs);
}

void pack_gemm(uint32_t wtype, int64_t cols, const void *w, int64_t r0, int64_t r1,
	       const void *x, size_t x_stride, int64_t nx, float *y, size_t y_stride)
{
	const struct pack_type *pt = ptype(wtype);
	const struct pack_kernels *k = level();
	pack_gemm_fn fn = k && k->gemm[wtype] ? k->gemm[wtype] : pt->gemm_ref;
	gemm(fn, pt, cols, w, r0, r1, x, x_stride, nx, y, y_stride);
}

void pack_gemm_ref(uint32_t wtype, int64_t cols, const void *w, int64_t r0, int64_t r1,
		   const void *x, size_t x_stride, int64_t nx, float *y, size_t y_stride)
{
	const struct pack_type *pt = ptype(wtype);
	gemm(pt->gemm_ref, pt, cols, w, r0, r1, x, x_stride, nx, y, y_stride);
}
