/*
 * cuda-ops.h — THE contract of the CUDA kernels: one plain C function per
 * operation of the forward pass, plus the device memory, stream and cuBLAS
 * plumbing they need. The engine's CUDA backend (backend-cuda.c) and the
 * GPU test program (test-backend) reach every kernel through this header
 * and nothing else; it needs no CUDA header (streams and handles are void *).
 *
 * Conventions (every function)
 *   - Pointers named d_* or documented "device" are device memory; shapes
 *     are given as (rows, cols) row-major, in elements. Nothing is checked
 *     against the device's allocation sizes: the caller sizes buffers.
 *   - stream: a cudaStream_t, or NULL for the legacy default stream. Every
 *     op only enqueues work (asynchronous); a launch error is reported at
 *     once, an execution error at the next synchronising call.
 *   - Returns 0, or a negative CUDA_OP_E* with err (errlen bytes, may be
 *     NULL/0) naming the op and what is wrong, e.g. "cuda_matvec: weight
 *     type 10 (Q2_K) not supported" or CUDA's own message with file:line.
 *   - Weight types are ggml/GGUF numbers (lib/llm/quant/quant.h: enum
 *     qtype): F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
 *     Q6_K. A weight matrix (rows, cols) is rows of row_bytes =
 *     quant_row_bytes(type, cols) bytes, exactly as in the GGUF file
 *     (uploaded once, never repacked). w must be 16-byte aligned (any
 *     cudaMalloc'ed pointer is; CUDA_OP_EINVAL otherwise).
 *   - f16 buffers are uint16_t IEEE half bits.
 *   - Without a GPU, cuda_set_emulation(1) (cuda-host.h) makes every
 *     function here run its kernel's own code on the host, on host memory.
 *
 * Numerics, compared with the CPU backend (lib/llm/cpu/forward.c)
 *   - Matrix products take f32 activations as they are (the CPU quantizes
 *     them to Q8_0/Q8_1/Q8_K first), so the GPU is the more exact of the
 *     two: test-backend compares both with a double-precision reference
 *     (dequantized weights x f32 activations) or with each other under a
 *     tolerance, never bit for bit.
 *   - cuda_matvec computes every (weight row, token) dot in a fixed order
 *     that does not depend on n: a token's result is bitwise the same in
 *     any batch (batch invariance). cuda_gemm (cuBLAS, f16 inputs, f32
 *     accumulation) does not promise that; the backend uses it only above
 *     CUDA_MATVEC_MAX_N tokens (cuda-plan.h).
 *   - Reductions (norm sums, softmax sums, dots) run in a fixed order per
 *     row/head, so every op is deterministic run to run.
 */
#ifndef PLOT_CUDA_OPS_H
#define PLOT_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	CUDA_OP_EFAIL = -1,   /* a CUDA runtime / cuBLAS call failed (message says which) */
	CUDA_OP_ENOMEM = -2,  /* device memory exhausted */
	CUDA_OP_EINVAL = -3,  /* arguments the kernels do not support (type, shape, limits) */
};

/* ---- device memory, streams, cuBLAS (cuda-mem.cu) ---------------------- */

/* Make device `index` current for the calling thread. */
int cuda_set_device(int index, char *err, size_t errlen);
/* *p = bytes of device memory (bytes 0 allocates nothing, *p = NULL).
 * CUDA_OP_ENOMEM when the device is full. */
int cuda_malloc(void **p, size_t bytes, char *err, size_t errlen);
void cuda_free(void *p);                         /* NULL is a no-op */
/* Fill bytes of device memory with byte value v (poisoning: 0xFF makes f32 NaN). */
int cuda_memset(void *d, int v, size_t bytes, void *stream, char *err, size_t errlen);
/* Copies. The _async forms are ordered on stream; with ordinary (pageable)
 * host memory they may return before the copy is done only for h2d, so
 * the host buffer of an h2d copy must stay unchanged until the stream
 * syncs. d2h is complete when cuda_stream_sync returns. */
int cuda_h2d(void *d, const void *h, size_t bytes, void *stream, char *err, size_t errlen);
int cuda_d2h(void *h, const void *d, size_t bytes, void *stream, char *err, size_t errlen);
int cuda_d2d(void *d, const void *s, size_t bytes, void *stream, char *err, size_t errlen);
int cuda_stream_new(void **stream, char *err, size_t errlen);
void cuda_stream_free(void *stream);
/* Wait for everything enqueued on stream; reports execution errors. */
int cuda_stream_sync(void *stream, char *err, size_t errlen);
/* Pinned host memory (faster, truly asynchronous copies). */
int cuda_host_alloc(void **p, size_t bytes, char *err, size_t errlen);
void cuda_host_free(void *p);
/* A cuBLAS handle bound to stream (for cuda_gemm). */
int cuda_blas_new(void **blas, void *stream, char *err, size_t errlen);
void cuda_blas_free(void *blas);
/* Kernel launches (cuBLAS calls included) every op of this file enqueued so
 * far, process-wide, the emulated device's counted alike (graph replays
 * are not launches of ops: a captured pass counts once, when captured).
 * For tests and benchmarks: launches per layer (cuda_backend_launches). */
uint64_t cuda_launches(void);
/* Free and total memory of the current device, in bytes. */
int cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen);

/* CUDA graphs: capture what is enqueued on stream between begin and end
 * into *exec (a cudaGraphExec_t; *exec NULL on entry builds one, else it
 * is updated in place when the topology allows, rebuilt when not), then
 * launch it on stream. */
int cuda_graph_begin(void *stream, char *err, size_t errlen);
int cuda_graph_end(void *stream, void **exec, char *err, size_t errlen);
int cuda_graph_launch(void *exec, void *stream, char *err, size_t errlen);
void cuda_graph_free(void *exec);

/* ---- conversions (cuda-norm.cu) --------------------------------------- */

/* y[i] = half(x[i]), round to nearest even (as llm_f16_row), n elements. */
int cuda_f32_to_f16(uint16_t *y, const float *x, size_t n, void *stream, char *err,
		    size_t errlen);
/* y[i] = float(x[i]). */
int cuda_f16_to_f32(float *y, const uint16_t *x, size_t n, void *stream, char *err,
		    size_t errlen);
/* x[i] = float(half(x[i] * scale)) when round_f16, else x[i] * scale: the
 * q preparation of an F16 cache (forward.c q_round; scale 1 when the
 * architecture does not fold the attention scale into q). */
int cuda_scale_round(float *x, size_t n, float scale, int round_f16, void *stream, char *err,
		     size_t errlen);

/* ---- embedding, dequantization (cuda-quant.cu) ------------------------ */

/* x (n, dim) f32: row t = dequant(w row tokens[t]) * scale. w: (n_vocab,
 * dim) of type, row_bytes apart; tokens: device (n), each < n_vocab
 * (unchecked: the host validated the batch). scale = sqrt(n_embd) for
 * gemma3, else 1. */
int cuda_embed(float *x, const void *w, uint32_t type, size_t row_bytes, uint32_t dim,
	       const int32_t *tokens, uint32_t n, float scale, void *stream, char *err,
	       size_t errlen);
/* y (rows, cols) f16 = dequant(w rows [0, rows)) (w as in cuda_embed):
 * the tiles cuda_gemm feeds to cuBLAS, and test-backend's view of a
 * weight. */
int cuda_dequant_f16(uint16_t *y, const void *w, uint32_t type, size_t row_bytes,
		     uint32_t rows, uint32_t cols, void *stream, char *err, size_t errlen);
/* The same into f32 (exact dequantization, for tests). */
int cuda_dequant_f32(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
		     uint32_t cols, void *stream, char *err, size_t errlen);

/* ---- matrix products (cuda-matvec.cu, cuda-gemm.cu) -------------------- */

/* Y (n, rows) = X (n, cols) . W^T, W (rows, cols) of type (row_bytes per
 * row), X and Y f32 with row strides cols and rows. Any n >= 1 (tokens go
 * in tiles of CUDA_MATVEC_TILE, cuda-plan.h; the weights are read once per
 * tile, from HBM for the first and mostly L2 for the others); meant for
 * n <= CUDA_MATVEC_MAX_N. cols must be a multiple of the type's block
 * (32, or 256 for K-quants; any cols for F32/F16/BF16). Batch invariant. */
int cuda_matvec(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
		uint32_t cols, const float *x, uint32_t n, void *stream, char *err, size_t errlen);

/* Up to CUDA_MATVEC_PARTS products of the same X with weights of one type
 * and row shape (cols, row_bytes), in one launch: y[i] (n, rows[i]) = X .
 * W_i^T, each bitwise what cuda_matvec(y[i], w[i], ...) gives (a weight row
 * is the same warp's same work; only the grid is shared): the q, k, v
 * projections, or gate and up. bias (NULL: none; else bias[i], NULL or
 * rows[i] floats) is added to each output row as it is written, bitwise
 * what cuda_add_bias after the product gives (one rounded add): qwen2's
 * q/k/v biases without three more launches. */
#define CUDA_MATVEC_PARTS 3
int cuda_matvec_multi(float *const *y, const void *const *w, const float *const *bias,
		      const uint32_t *rows, uint32_t n_parts, uint32_t type, size_t row_bytes,
		      uint32_t cols, const float *x, uint32_t n, void *stream, char *err,
		      size_t errlen);

/* The same product for large n (prefill): X converted to f16 into xh
 * (n * cols halves), W dequantized to f16 in tiles of tile_rows rows into
 * wh (tile_rows * cols halves; unused for F16 weights, which go to cuBLAS
 * as they are), then cublasGemmEx (f16 x f16, f32 accumulate, tensor
 * cores) per tile. blas from cuda_blas_new on the same stream. tile_rows:
 * cuda_plan_gemm_tile() (cuda-plan.h) sizes it for a scratch budget.
 * Activations beyond +-65504 saturate in f16 (the normed inputs of every
 * projection are far below). */
int cuda_gemm(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
	      uint32_t cols, const float *x, uint32_t n, uint16_t *xh, uint16_t *wh,
	      uint32_t tile_rows, void *blas, void *stream, char *err, size_t errlen);

/* ---- row operations (cuda-norm.cu) ------------------------------------ */

/* y (n, dim) = x * rsqrt(mean(x^2) + eps) * w, per row (w: (dim), device;
 * gemma's "1 + w" is already folded into the file's weights, arch.c).
 * y may be x. The sum of squares is a fixed-order tree in double. */
int cuda_rmsnorm(float *y, const float *x, const float *w, uint32_t n, uint32_t dim, float eps,
		 void *stream, char *err, size_t errlen);
/* QK-norm: x (n, n_heads, head_dim) normed in place per head with the
 * shared weight w (head_dim) — cuda_rmsnorm over n * n_heads rows. */
int cuda_qk_norm(float *x, const float *w, uint32_t n, uint32_t n_heads, uint32_t head_dim,
		 float eps, void *stream, char *err, size_t errlen);
/* RoPE table: cs (n, n_rot) = for token t and pair i (cos th, sin th),
 * th = pos[t] * scale * base^(-2i/n_rot) / ff[i] in double, as
 * llm_rope_table. pos: device (n); ff: device (n_rot/2) or NULL. */
int cuda_rope_table(float *cs, const uint32_t *pos, uint32_t n, uint32_t n_rot, float base,
		    float scale, const float *ff, void *stream, char *err, size_t errlen);
/* Rotate the first n_rot elements of every head of x (n, n_heads,
 * head_dim) in place with token t's row of cs; mode 0 (LLM_ROPE_NORM):
 * pairs (2i, 2i+1); 1 (LLM_ROPE_NEOX): (i, i + n_rot/2). */
int cuda_rope(float *x, const float *cs, uint32_t n, uint32_t n_heads, uint32_t head_dim,
	      uint32_t n_rot, int mode, void *stream, char *err, size_t errlen);
/* gate (n, dim) = act(gate) * up; act 0 (LLM_ACT_SILU): g sigmoid(g);
 * 1 (LLM_ACT_GELU_TANH): 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
int cuda_glu(float *gate, const float *up, uint32_t n, uint32_t dim, int act, void *stream,
	     char *err, size_t errlen);
/* x[i] += y[i], n elements (residual add). */
int cuda_add(float *x, const float *y, size_t n, void *stream, char *err, size_t errlen);
/* Fused residual step (one launch): per row, x += post_w ? rmsnorm(y) *
 * post_w : y, then, when w is not NULL, xn = rmsnorm(x) * w: bit for bit
 * cuda_rmsnorm(y, y, post_w), cuda_add(x, y), cuda_rmsnorm(xn, x, w) one
 * after the other (y itself is left as it was). xn must not alias x or y. */
int cuda_add_rmsnorm(float *x, const float *y, const float *post_w, float *xn, const float *w,
		     uint32_t n, uint32_t dim, float eps, void *stream, char *err,
		     size_t errlen);
/* y (n, dim) += b (dim) per row (q/k/v biases); b NULL: nothing to add. */
int cuda_add_bias(float *y, const float *b, uint32_t n, uint32_t dim, void *stream, char *err,
		  size_t errlen);
/* y (n_rows, dim) = x rows rows[0..n_rows) (device indices). y != x. */
int cuda_gather_rows(float *y, const float *x, const uint32_t *rows, uint32_t n_rows,
		     uint32_t dim, void *stream, char *err, size_t errlen);

/* ---- paged KV cache (cuda-attn.cu) ------------------------------------ */

/* Where a KV cache's bytes are (the CPU backend's layout, kv-store.c, so
 * test-backend can copy a CPU cache to the device byte for byte): block b
 * holds, for each layer l, K (block_size, kdim) then V (block_size,
 * vdim), elements of elem_bytes (2: f16, 4: f32). Element offsets:
 *   K of slot s in layer l: (s / block_size) * block_elems + l * layer_elems
 *                           + (s % block_size) * kdim
 *   V: the same + block_size * kdim, rows of vdim.
 * A slot is block_id * block_size + pos % block_size (the host resolves
 * the block through the sequence's table). cuda_plan_kv (cuda-plan.h)
 * fills it with overflow checks. */
struct cuda_kv_layout {
	uint32_t elem_bytes;   /* 2 (F16) or 4 (F32) */
	uint32_t n_layer, block_size, n_blocks;
	uint32_t kdim, vdim;   /* n_head_kv * head_dim_k, n_head_kv * head_dim_v */
	size_t layer_elems;    /* block_size * (kdim + vdim) */
	size_t block_elems;    /* n_layer * layer_elems */
	size_t bytes;          /* n_blocks * block_elems * elem_bytes */
};

/* Store K (n, kdim) and V (n, vdim) f32 rows of layer `layer` into slots
 * slots[t] (device, (n)) of the cache kv (device, L->bytes), converted to
 * half (round to nearest even) when L->elem_bytes is 2. */
int cuda_kv_write(void *kv, const struct cuda_kv_layout *L, uint32_t layer, const float *k,
		  const float *v, const uint32_t *slots, uint32_t n, void *stream, char *err,
		  size_t errlen);

/* Fused (one launch for the four): RoPE of q (n, n_head, head_dim) and k
 * (n, L.kdim) in place as cuda_rope, then q as cuda_scale_round(q,
 * scale_q, round_q) leaves it (nothing when scale_q is 1 and round_q 0),
 * then K and V stored as cuda_kv_write: bit for bit what those ops give
 * one after the other (test-backend and the unit tests compare). */
struct cuda_rope_kv_args {
	float *q, *k;            /* device */
	const float *v, *cs;     /* device: v (n, L.vdim); cs (n, n_rot) as cuda_rope */
	void *kv;                /* the cache (device, L.bytes) */
	struct cuda_kv_layout L;
	uint32_t layer;
	const uint32_t *slots;   /* (n) device */
	uint32_t n, n_head, head_dim, n_rot;
	int mode;                /* 0 LLM_ROPE_NORM, 1 LLM_ROPE_NEOX */
	float scale_q;
	int round_q;
};
int cuda_rope_kv(const struct cuda_rope_kv_args *a, void *stream, char *err, size_t errlen);

/* Attention through block tables, decode and causal prefill alike. */
struct cuda_attn_args {
	float *out;            /* (n_rows, n_head, head_dim_v): row j for entry rows[j] */
	const float *q;        /* (n, n_head, head_dim_k), already normed, roped, scaled
	                        * and (F16 cache) rounded to half values */
	const void *kv;        /* the cache (device) */
	struct cuda_kv_layout L;
	uint32_t layer;
	const uint32_t *pos;   /* (n) device: entry t's position */
	const uint32_t *tab;   /* device: block ids of all tables, concatenated */
	const uint32_t *tab_off; /* (n) device: entry t's table is tab + tab_off[t] */
	const uint32_t *rows;  /* (n_rows) device: entries to compute; NULL: all, n_rows = n */
	uint32_t n, n_rows;
	uint32_t n_head, n_head_kv, head_dim_k, head_dim_v;
	uint32_t window;       /* 0: attend to [0, pos]; else to [pos + 1 - window, pos] */
	float scale;           /* multiplies q.k (1 where it is folded into q) */
	int round_p;           /* F16 cache: probabilities rounded to half before they
	                        * weight V (as the CPU and ggml do) */
	/* Split over the sequence (flash-decoding), optional: with part != NULL
	 * and n_seg > 1 an entry's positions go in segments of CUDA_ATTN_SEG
	 * (from lo) to n_seg blocks each, whose partial results (part: device,
	 * cuda_plan_attn_part floats) a second kernel combines. n_seg =
	 * cuda_plan_attn_segs(largest pos + 1 of the batch). NULL / 0 / 1: one
	 * block per (entry, KV head) walks all positions. */
	float *part;
	uint32_t n_seg;
};
/* out = softmax(scale q.K^T) V over positions [lo, pos] of the entry's
 * sequence, K/V read through its block table (positions the same batch
 * wrote earlier included: call after cuda_kv_write). One thread block per
 * (row, KV head) handles the n_head / n_head_kv query heads sharing that
 * KV head, over key tiles of CUDA_ATTN_TILE positions with an online
 * (flash-attention) softmax in f32. The tiles start at lo and the
 * arithmetic per (entry, head) depends only on its own q, pos and cache,
 * so results are bitwise the same whatever else is in the batch; the
 * segments of a split start at lo too and are combined in a fixed order,
 * and an entry's result does not depend on n_seg (bitwise, but for the
 * sign of a zero).
 * Limits: cuda_plan_attn (cuda-plan.h): head dims <= CUDA_ATTN_MAX_HEAD_DIM,
 * group * head_dim_v <= CUDA_ATTN_MAX_ACC. */
int cuda_attn(const struct cuda_attn_args *a, void *stream, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
