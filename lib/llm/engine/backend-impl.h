/*
 * backend-impl.h — the engine's device seam: the table of function
 * pointers every compute backend (CPU now, CUDA later) fills, and the
 * registry that maps a device name ("cpu", "cuda", "cuda:N") to one.
 *
 * Design (ggml's ggml_backend_i + backend registry; vLLM's split of the
 * block manager from the cache engine)
 *   - Above this seam (model.c, kv.c, batch.c, the executor) nothing tests
 *     which backend it got: it calls through struct llm_backend_ops.
 *   - The host keeps what every backend shares: the GGUF mapping, the
 *     validated weight descriptions (struct llm_w), the hyper-parameters,
 *     and all KV bookkeeping (block tables, free list, sequence lengths,
 *     batch validation). A backend supplies where the bytes live (prepared
 *     weights, KV storage) and the kernels that run a forward pass over
 *     them.
 *   - Call order for a model: probe -> open -> upload (host loading done)
 *     -> { kv_alloc, forward*, kv_free }* -> release -> close. release and
 *     close are also called after a failed upload / on every exit path.
 *
 * Invariants: ops of one model are called from its owner thread only (the
 * executor's engine thread, the loader before that); a backend never
 * prints and reports failures as -LLM_E* with err naming the device.
 */
#ifndef PLOT_LLM_BACKEND_IMPL_H
#define PLOT_LLM_BACKEND_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "plot/llm.h"

/* What a KV cache's storage must hold: n_blocks blocks of block_size token
 * slots, each slot holding kdim K and vdim V elements of elem_bytes for
 * every one of n_layer layers. The layout inside is the backend's. */
struct llm_kv_geom {
	enum llm_kv_type type;
	size_t elem_bytes;     /* 4 (F32) or 2 (F16) */
	uint32_t n_layer;
	size_t kdim, vdim;     /* elements per token per layer: n_head_kv * head_dim_k/_v */
	uint32_t block_size;   /* token slots per block */
	uint32_t n_blocks;
};

struct llm_backend_ops {
	const char *name;      /* the device name's prefix: "cpu", "cuda" */
	int indexed;           /* 1: takes ":N" (N = device index); 0: name only */
	/* Is device `index` present and usable? Touches no model. 0, or
	 * -LLM_EUNSUP with err saying why ("cuda:1: no such CUDA device (found 0)"). */
	int (*probe)(int index, char *err, size_t errlen);
	/* Take device `index` for one model: *dev is the backend's context. */
	int (*open)(int index, void **dev, char *err, size_t errlen);
	void (*close)(void *dev);
	/* Make m's validated weights (m->layers, m->output...) usable on the
	 * device, once host loading is done. CPU: repack for the GEMM kernels
	 * and start the compute thread pool. */
	int (*upload)(struct llm_model *m, char *err, size_t errlen);
	/* Free what upload made; safe after a failed or partial upload. */
	void (*release)(struct llm_model *m);
	/* KV storage: the bytes of g's blocks on the device (*store), and their
	 * release. The bookkeeping (kv.c) never looks inside *store. */
	int (*kv_alloc)(void *dev, const struct llm_kv_geom *g, void **store, char *err,
			size_t errlen);
	void (*kv_free)(void *dev, void *store);
	/* Run batch b: the host has validated it and reserved its KV blocks
	 * (batch.c); write K/V of every entry into the storage through the
	 * block tables, fill logits for the entries that want them. 0 or
	 * -LLM_ENOMEM. The host then commits the sequence lengths. */
	int (*forward)(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		       float *logits, char *err, size_t errlen);
	/* The device's name and memory now (llm_model_device_mem); NULL: a
	 * device without memory of its own (CPU). */
	int (*mem)(const struct llm_model *m, struct llm_device_mem *o, char *err, size_t errlen);
	/* Host threads the backend computes with (CPU); NULL: fixed at 1. */
	int (*set_threads)(struct llm_model *m, unsigned n);
	unsigned (*threads)(const struct llm_model *m);
};

/* The backend a device name selects, and its device index. NULL device is
 * "cpu". 0, or -LLM_EINVAL (malformed or unknown name) / -LLM_EUNSUP (a
 * backend this build lacks) with err naming the device. Touches no
 * hardware: probing is the caller's next step. */
int llm_backend_find(const char *device, const struct llm_backend_ops **ops, int *index,
		     char *err, size_t errlen);

/* The backends compiled in (registry.c lists them). */
extern const struct llm_backend_ops llm_backend_cpu;
#ifdef PLOT_CUDA
extern const struct llm_backend_ops llm_backend_cuda; /* lib/cuda/backend-cuda.c */
#endif

#endif
