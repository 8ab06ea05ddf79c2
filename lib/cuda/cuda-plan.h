/*
 * cuda-plan.h — the host-side arithmetic of the CUDA backend: KV cache
 * layout sizes, launch geometry and the limits the kernels accept. Pure C
 * (cuda-plan.c, compiled into every build), so the unit tests check it in
 * plain `make check` on machines without a GPU; the kernels (the .cu files)
 * and the backend read their constants and choices from here only.
 */
#ifndef PLOT_CUDA_PLAN_H
#define PLOT_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda-ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CUDA_MATVEC_TILE 8      /* tokens one matvec thread block accumulates at once */
#define CUDA_MATVEC_WARPS 4     /* weight rows per matvec thread block (one per warp) */
#define CUDA_MATVEC_MAX_N 64    /* the backend uses cuda_matvec up to this many tokens */
#define CUDA_ATTN_TILE 32       /* key positions per online-softmax step */
#define CUDA_ATTN_THREADS 128   /* threads per attention block (4 warps) */
#define CUDA_ATTN_MAX_HEAD_DIM 256
#define CUDA_ATTN_MAX_GROUP 16  /* query heads per KV head */
#define CUDA_ATTN_MAX_ACC 2048  /* group * head_dim_v: 16 accumulators per thread */
#define CUDA_ATTN_SEG 256      /* positions per block when attention is split */
#define CUDA_NORM_THREADS 256
#define CUDA_GEMM_ROW_ALIGN 64  /* weight rows per gemm tile are a multiple of this */

/* L from a cache's geometry; CUDA_OP_EINVAL with err when a size overflows
 * or an element size is not 2 or 4. */
int cuda_plan_kv(struct cuda_kv_layout *L, uint32_t elem_bytes, uint32_t n_layer,
		 uint32_t block_size, uint32_t n_blocks, size_t kdim, size_t vdim, char *err,
		 size_t errlen);
/* Slot of position pos whose block (from the sequence's table) is block. */
static inline uint32_t cuda_plan_slot(const struct cuda_kv_layout *L, uint32_t block,
				      uint32_t pos)
{
	return block * L->block_size + pos % L->block_size;
}
/* Element offsets of slot's K and V rows in layer (as cuda-ops.h says). */
size_t cuda_plan_k_off(const struct cuda_kv_layout *L, uint32_t layer, uint32_t slot);
size_t cuda_plan_v_off(const struct cuda_kv_layout *L, uint32_t layer, uint32_t slot);

/* Rows per cuda_gemm weight tile for a scratch of budget bytes of f16:
 * all rows when they fit, else the largest multiple of CUDA_GEMM_ROW_ALIGN
 * that fits (at least CUDA_GEMM_ROW_ALIGN, or rows when fewer). */
uint32_t cuda_plan_gemm_tile(uint32_t rows, uint32_t cols, size_t budget);

/* Does cuda_attn take these heads? 0, or CUDA_OP_EINVAL with err saying
 * which limit fails. */
int cuda_plan_attn(uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim_k,
		   uint32_t head_dim_v, char *err, size_t errlen);

/* Segments for a batch whose largest context is max_ctx positions (1
 * when no split helps), and the floats of cuda_attn_args.part for them:
 * per (row, KV head, segment) the group's accumulators, maxima and sums. */
uint32_t cuda_plan_attn_segs(uint32_t max_ctx);
size_t cuda_plan_attn_part(uint32_t n_rows, uint32_t n_head, uint32_t n_head_kv,
			   uint32_t head_dim_v, uint32_t n_seg);

/* Matvec grid: x = token tiles, y = groups of CUDA_MATVEC_WARPS rows. */
void cuda_plan_matvec(uint32_t rows, uint32_t n, uint32_t *grid_x, uint32_t *grid_y);

/* Is type one the kernels read (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
 * Q4_K Q5_K Q6_K), and do cols fit its block? 0 or CUDA_OP_EINVAL. */
int cuda_plan_weight(uint32_t type, uint32_t cols, size_t row_bytes, char *err,
		     size_t errlen);

/* One batch's metadata for the device, in one array of 32-bit words so a
 * single copy moves it; the fields are word offsets of each part:
 *   tokens (n) int32, pos (n), slots (n) = cuda_plan_slot of each entry,
 *   tab_off (n) = where the entry's block table starts in tab, rows
 *   (n_out) = entries wanting logits (batch order), tab = the block tables
 *   of the batch's distinct sequences, each once. */
struct cuda_batch_plan {
	uint32_t n, n_out;
	size_t tokens, pos, slots, tab_off, rows, tab;
	size_t words;          /* total */
};
struct llm_kv;
struct llm_batch;
/* Plan b (validated, blocks reserved) over kv: fills *p always, writes buf
 * only when buf && cap >= p->words (else the caller grows buf and calls
 * again). want_logits 0 ignores the entries' flags (n_out = 0). seq_off:
 * scratch of kv's max_seqs words (overwritten). L: the cache's
 * layout (block_size). */
void cuda_plan_batch(const struct llm_kv *kv, const struct cuda_kv_layout *L,
		     const struct llm_batch *b, int want_logits, uint32_t *seq_off,
		     uint32_t *buf, size_t cap, struct cuda_batch_plan *p);

#ifdef __cplusplus
}
#endif

#endif
