/*
 * cuda-impl.h — the CUDA engine backend's private state, shared by its two
 * host files: backend-cuda.c (the backend table: open/close, weight
 * upload/release, KV storage) and cuda-forward.c (the forward pass). All
 * device work goes through cuda-ops.h; nothing here includes a CUDA header.
 *
 * Ownership: one struct cuda_ctx per model (the backend's dev context,
 * m->dev), used only from the model's owner thread, which therefore calls
 * cuda_set_device before every entry point. Weights are device copies of
 * the GGUF bytes (never repacked); the scratch grows to the largest batch
 * seen and lives until close.
 */
#ifndef PLOT_CUDA_IMPL_H
#define PLOT_CUDA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda-ops.h"
#include "cuda/cuda-plan.h"
#include "llm/engine/backend-impl.h"
#include "llm/engine/model-impl.h"

/* A weight matrix on the device: (rows, cols) of type, row_bytes per row. */
struct cuda_w {
	void *d;
	uint32_t type, rows, cols;
	size_t row_bytes;
};

struct cuda_layer {
	struct cuda_w wq, wk, wv, wo, gate, up, down;
	float *attn_norm, *ffn_norm;           /* (n_embd) */
	float *q_norm, *k_norm;                /* (head_dim_k) or NULL */
	float *post_attn_norm, *post_ffw_norm; /* (n_embd) or NULL */
	float *bq, *bk, *bv;                   /* biases or NULL */
};

/* Device buffers of one forward pass, for up to cap tokens (logits for up
 * to out_cap rows). */
struct cuda_scratch {
	uint32_t cap, out_cap;
	float *x, *x2;          /* (cap, n_embd) residual stream, and its gathered rows */
	float *xn;              /* (cap, n_embd) normed input */
	float *q, *k, *v;       /* (cap, n_head*hdk), (cap, n_kv*hdk), (cap, n_kv*hdv) */
	float *att;             /* (cap, n_head*hdv) */
	float *gate, *up;       /* (cap, n_ff) */
	float *o;               /* (cap, n_embd) */
	float *cs_g, *cs_s;     /* (cap, n_rot) RoPE tables: global, sliding */
	uint16_t *xh;           /* (cap, max matmul cols) f16 activations for cuda_gemm */
	float *logits;          /* (out_cap, n_vocab) */
	uint32_t *meta;         /* device copy of the batch plan (meta_cap words) */
	uint32_t *meta_h;       /* pinned host side of it */
	size_t meta_cap;
	float *part;            /* (part_cap) split attention's partial results */
	size_t part_cap;
	uint32_t *seq_off;      /* host (seq_cap) scratch of cuda_plan_batch */
	uint32_t seq_cap;
};

/* A captured forward pass (cuda-forward.c body_graph) and its shape. */
struct cuda_graph {
	void *exec;             /* cudaGraphExec_t, or NULL: empty slot */
	uint32_t n, n_out, n_seg;
	const void *kv;         /* the cache's device bytes */
	struct cuda_kv_layout L; /* and layout (an address can be reused) */
	uint64_t gen;           /* cuda_ctx.gen when captured */
	uint64_t used;          /* LRU tick */
};
#define CUDA_GRAPHS 4

struct cuda_ctx {
	int index;
	char name[64];          /* the device's ("NVIDIA H200"), read at open */
	void *stream, *blas;
	/* weights (upload) */
	struct cuda_layer *layers;
	uint32_t n_layer;
	struct cuda_w tok_embd, output;
	int output_shared;      /* output is tok_embd's allocation (tied embeddings) */
	float *output_norm, *rope_freqs;
	size_t weight_bytes;    /* device bytes upload allocated */
	/* forward */
	struct cuda_scratch s;
	uint16_t *wh;           /* gemm weight tile scratch, wh_elems halves */
	size_t wh_elems;
	/* graphs of decode-sized passes */
	struct cuda_graph graphs[CUDA_GRAPHS];
	uint64_t gen;           /* bumped whenever a pointer a graph holds changes */
	uint64_t tick;
	int graphs_off;         /* cuda_backend_set_graphs(m, 0), or capture failed */
	int fused_off;          /* cuda_backend_set_fused(m, 0): the ops one by one */
	uint32_t launches_layer, launches_pass; /* of the last pass run or captured */
	uint64_t graph_captures, graph_replays; /* cuda_backend_graph_counts */
	char graphs_why[256];   /* why capture failed ("" if it did not) */
};

/* A KV cache's device storage (kv->store). */
struct cuda_kv_store {
	void *d;
	struct cuda_kv_layout L;
};

/* cuda-forward.c */
int cuda_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		 float *logits, char *err, size_t errlen);
void cuda_scratch_free(struct cuda_scratch *s);
void cuda_graphs_free(struct cuda_ctx *c);


#endif
