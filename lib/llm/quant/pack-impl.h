/*
 * pack-impl.h — packed block layouts and the kernel tables of pack.h.
 *
 * Every packed block holds the same weight block of PACK_ROWS (8) rows, and
 * is exactly 8 times the size of the original block (so repacking costs no
 * memory), except Q4_K/Q5_K, whose 6-bit scales are unpacked to bytes
 * (+32 bytes per 8 super-blocks).
 *
 * "Vector" layout of 32 elements x 8 rows (used by every type): vector g
 * (g = 0..7) is 32 bytes; byte p = 4r + i of it holds element k = 4g + i of
 * row r. One u8 x s8 dot of vector g with the broadcast activation bytes
 * x[4g .. 4g+3] gives the 8 rows' partial sums in the 8 int32 lanes.
 *   nibbles (qs[128]): 32-byte chunk c holds vector 2c in its low nibbles
 *       and vector 2c + 1 in its high nibbles (same byte p).
 *   high-bit plane (qh[32]): bit g of byte p is bit 4 of element (g, p).
 *   Q6_K's two planes (qh[64]): bytes 0..31 give bit 4, bytes 32..63 bit 5,
 *       bit g of byte p for element (g, p), as above.
 *   bytes (Q8_0's qs[256]): vector g at qs[32g], stored as q + 128 (u8).
 * Scales are the original fp16 values, one per row: d[r], m[r].
 * K-quants: a super-block is 8 chunks of 32 elements in the vector layout;
 * sc[j][r], m[j][r] are sub-block j's scale and min of row r (Q6_K: 16
 * sub-blocks of 16, int8 scales, sub-block j = vectors 4(j%2)..4(j%2)+3 of
 * chunk j/2).
 */
#ifndef PLOT_LLM_PACK_IMPL_H
#define PLOT_LLM_PACK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/quant/pack.h"
#include "llm/quant/quant-impl.h"

typedef struct { uint16_t d[8]; uint8_t qs[128]; } pk_q4_0;
typedef struct { uint16_t d[8], m[8]; uint8_t qs[128]; } pk_q4_1;
typedef struct { uint16_t d[8]; uint8_t qh[32]; uint8_t qs[128]; } pk_q5_0;
typedef struct { uint16_t d[8], m[8]; uint8_t qh[32]; uint8_t qs[128]; } pk_q5_1;
typedef struct { uint16_t d[8]; uint8_t qs[256]; } pk_q8_0;
typedef struct {
	uint16_t d[8], dmin[8];
	uint8_t sc[8][8], m[8][8];  /* [sub-block][row], 0..63 */
	uint8_t qs[8][128];         /* [chunk] nibbles */
} pk_q4_K;
typedef struct {
	uint16_t d[8], dmin[8];
	uint8_t sc[8][8], m[8][8];
	uint8_t qh[8][32];          /* [chunk] bit-4 plane */
	uint8_t qs[8][128];
} pk_q5_K;
typedef struct {
	uint16_t d[8];
	int8_t sc[16][8];           /* [sub-block of 16][row] */
	uint8_t qh[8][64];          /* [chunk] bit-4 and bit-5 planes */
	uint8_t qs[8][128];         /* [chunk] low nibbles; q = 0..63, dot subtracts 32 */
} pk_q6_K;

/*
 * PACK_A8 activation block, llama.cpp's x86 q8_0 / q8_1 numbers with the
 * fp16 values widened to float (pack.h): d = fp16(amax / 127), q =
 * rint(x * (127 / amax)) (half to even), sum = sum(q) (the exact offset of
 * Q4_0/Q5_0/Q8_0), s = fp16((amax / 127) * sum) (Q4_1/Q5_1's min term).
 * Floats, not halves: the kernels broadcast them straight from memory.
 */
typedef struct { float d, s; int32_t sum; int8_t qs[32]; } pk_a8;

_Static_assert(sizeof(pk_q4_0) == 8 * sizeof(blk_q4_0), "pk_q4_0 layout");
_Static_assert(sizeof(pk_q4_1) == 8 * sizeof(blk_q4_1), "pk_q4_1 layout");
_Static_assert(sizeof(pk_q5_0) == 8 * sizeof(blk_q5_0), "pk_q5_0 layout");
_Static_assert(sizeof(pk_q5_1) == 8 * sizeof(blk_q5_1), "pk_q5_1 layout");
_Static_assert(sizeof(pk_q8_0) == 8 * sizeof(blk_q8_0), "pk_q8_0 layout");
_Static_assert(sizeof(pk_q4_K) == 8 * sizeof(blk_q4_K) + 32, "pk_q4_K layout");
_Static_assert(sizeof(pk_q5_K) == 8 * sizeof(blk_q5_K) + 32, "pk_q5_K layout");
_Static_assert(sizeof(pk_q6_K) == 8 * sizeof(blk_q6_K), "pk_q6_K layout");
_Static_assert(sizeof(pk_a8) == 44, "pk_a8 layout");

/*
 * ngroups groups of 8 rows starting at w (the first group's first block),
 * gs bytes apart, against nx activation rows (xs bytes apart):
 * y[t * ys + 8 * g + r]. cols is a multiple of the block.
 */
typedef void (*pack_gemm_fn)(int64_t cols, const void *w, size_t gs, int64_t ngroups,
			     const void *x, size_t xs, int64_t nx, float *y, size_t ys);
typedef void (*pack_act_fn)(const float *x, void *dst, int64_t n);

/* A SIMD level's kernels; its name matches quant_impl_name(). */
struct pack_kernels {
	const char *name;
	pack_gemm_fn gemm[QT_TABLE];  /* NULL: the type's reference */
	pack_act_fn quantize_a8;      /* NULL: the reference */
};

extern const struct pack_kernels pack_kernels_avx2;
extern const struct pack_kernels pack_kernels_avx512;

/* Per-type pieces (pack-32.c: Q4_0..Q8_0 and PACK_A8; pack-k.c: K-quants). */
typedef void (*pack_group_fn)(const void *src, size_t src_row_bytes, uint64_t cols, void *dst);
typedef void (*pack_unrow_fn)(const void *group, uint64_t cols, unsigned r, float *dst);
struct pack_type {
	uint32_t blk;        /* elements per block */
	size_t bytes;        /* bytes per packed block (8 rows) */
	uint32_t act;        /* PACK_A8 or Q_Q8_K */
	pack_group_fn pack;  /* one group of 8 rows (src: row 0 of the group) */
	pack_unrow_fn unrow; /* dequantize row r (0..7) of one packed group */
	pack_gemm_fn gemm_ref; /* the scalar reference kernel */
};
extern const struct pack_type pack_types_32[QT_TABLE]; /* NULL pack: not a 32-type */

/* The scalar reference kernels' outer loops (pack.c), shared by pack-32.c
 * and pack-k.c: y[k * ys + 8 g + r] = dot(t, group g, nb blocks, row r,
 * token k's activation row) for ng groups gs bytes apart, nx tokens. */
typedef float (*pack_ref_dot_fn)(uint32_t t, const uint8_t *group, int64_t nb, unsigned r,
				 const void *x);
void pack_ref_gemm(pack_ref_dot_fn dot, uint32_t t, int64_t nb, const void *w, size_t gs,
		   int64_t ng, const void *x, size_t xs, int64_t nx, float *y, size_t ys);
extern const struct pack_type pack_types_k[QT_TABLE];
void pack_ref_quantize_a8(const float *x, void *dst, int64_t n);

#endif
