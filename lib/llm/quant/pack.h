/*
 * pack.h — weight matrices repacked for the GEMM kernels (private to lib/llm).
 *
 * Why: a plain row dot (quant.h) reduces one weight row against one
 * activation row and ends in a horizontal sum; for a batch of tokens it
 * costs about four vector ops per 32-element block pair. The packed form
 * interleaves 8 weight rows so that one u8 x s8 dot instruction (vpdpbusd,
 * or maddubs + madd without VNNI) multiplies 4 elements of 8 rows by 4
 * broadcast activation elements, and the 8 int32 lanes are the 8 rows'
 * partial sums: no horizontal sums, scales applied per row lane.
 *
 * Layout: rows in groups of PACK_ROWS (8), group-major; within a group, one
 * packed block per weight block, in column order (pack-impl.h has them).
 * A matrix packs when its type has packed kernels, rows % 8 == 0 and cols is
 * a multiple of the block; otherwise pack_matrix_bytes() is 0 and the caller
 * keeps the quant.h row kernels.
 *
 * Activations: the packed kernels take their own activation rows, made by
 * pack_quantize_act() for pack_act_type(wtype): PACK_A8 for the 32-element
 * types, Q_Q8_K for the K-quants. Weights sharing an activation type share
 * rows. A PACK_A8 block of 32 holds what llama.cpp's x86 quantize_row_q8_0
 * and quantize_row_q8_1 store, so near-ties round as the peer's do:
 *   amax = max |x|; d32 = amax / 127; id = amax != 0 ? 127 / amax : 0;
 *   q = rint(x * id) (round half to even); xsum = sum(q);
 *   dx = fp16(d32), sx = fp16(d32 * (float)xsum)  (kept as floats),
 * fp16() rounding to nearest even. Q8_K is quant.h's (ggml's
 * quantize_row_q8_K_ref, which x86 llama.cpp also runs).
 *
 * Numbers (the contract every implementation meets bit for bit): for row r
 * and token t, acc = 0.0f, then per block b in column order, with integer
 * sums exact and each float operation rounded once (fmaf = one rounding):
 *   Q4_0/Q5_0/Q8_0: i = sum_k q[k] x[k] - off * xsum  (q unsigned as stored,
 *                   off = 8 / 16 / 128); acc = fmaf((float)i, dw * dx, acc)
 *   Q4_1/Q5_1:      i = sum_k q[k] x[k]; acc = fmaf((float)i, dw * dx, acc);
 *                   acc = fmaf(mw, sx, acc)
 *   Q4_K/Q5_K (per super-block of 256, sub-blocks j of 32):
 *                   iq = sum_j sc_j * sum_{k in j} q[k] x[k];
 *                   im = sum_j m_j * (bsum[2j] + bsum[2j+1]);
 *                   acc = fmaf((float)iq, d * dx, acc);
 *                   acc = fmaf(-(float)im, dmin * dx, acc)
 *   Q6_K (sub-blocks j of 16): iq = sum_j sc_j * (sum_{k in j} q[k] x[k]
 *                   - 32 * bsum[j]); acc = fmaf((float)iq, d * dx, acc)
 * y[t][r] = acc. dw, mw, d, dmin are the weight's fp16 values as floats;
 * dx, sx, xsum the PACK_A8 block's (above); for the K-quants dx is
 * Q8_K's float d and bsum its group sums. So the result for (r, t) never
 * depends on the other rows or tokens of the call, on the tile sizes, on
 * threads, or on the implementation (ref, avx2, avx512): batch invariance
 * holds by construction, and tests compare implementations with memcmp.
 */
#ifndef PLOT_LLM_PACK_H
#define PLOT_LLM_PACK_H

#include <stddef.h>
#include <stdint.h>

#define PACK_ROWS 8
/* activation type of the 32-element packed kernels (outside ggml's numbers) */
#define PACK_A8 64u

/* 1 if wtype has packed kernels */
int pack_supported(uint32_t wtype);
/* Bytes of the packed rows x cols matrix; 0 if it does not pack (type,
 * rows % 8, cols % block) or the size overflows. */
size_t pack_matrix_bytes(uint32_t wtype, uint64_t rows, uint64_t cols);
/* Repack rows [r0, r1) (multiples of 8) of src (rows of
 * quant_row_bytes(wtype, cols) bytes, contiguous) into dst, the whole
 * packed matrix (pack_matrix_bytes). Disjoint ranges may run in parallel. */
void pack_matrix(uint32_t wtype, const void *src, uint64_t cols, uint64_t r0, uint64_t r1,
		 void *dst);
/* The inverse for one row: dequantize row r of the packed matrix to floats
 * (n = cols), the same values quant_dequant_row gives on the original. */
void pack_dequant_row(uint32_t wtype, const void *packed, uint64_t cols, uint64_t r, float *dst);

/* Activation type of wtype's packed kernels (PACK_A8 or Q_Q8_K). */
uint32_t pack_act_type(uint32_t wtype);
/* Bytes of one activation row of n elements; 0 if n is not a multiple of the block. */
size_t pack_act_row_bytes(uint32_t atype, uint64_t n);
/* x (n floats) -> one activation row of atype */
void pack_quantize_act(uint32_t atype, const float *x, void *dst, int64_t n);

/*
 * y[t * y_stride + (r - r0)] = dot(row r, activation row t), for rows
 * r in [r0, r1) (multiples of 8) and tokens t < nx; activation rows are
 * x_stride bytes apart. w is the whole packed matrix.
 */
void pack_gemm(uint32_t wtype, int64_t cols, const void *w, int64_t r0, int64_t r1,
	       const void *x, size_t x_stride, int64_t nx, float *y, size_t y_stride);
/* The scalar reference, whatever implementation is selected (for tests). */
void pack_gemm_ref(uint32_t wtype, int64_t cols, const void *w, int64_t r0, int64_t r1,
		   const void *x, size_t x_stride, int64_t nx, float *y, size_t y_stride);

#endif
