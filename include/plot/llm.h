/*
 * llm.h — the language-model engine: load a GGUF model onto a device, keep
 * a paged KV cache, run batch-first forward passes.
 *
 * Design
 *   - Devices: every entry point that touches the device (loading and
 *     preparing weights, KV storage, forward) goes through a backend, a
 *     table of function pointers chosen by device name from a registry
 *     (lib/llm/engine/backend-impl.h; ggml's ggml_backend_i). "cpu" is the
 *     CPU backend (lib/llm/cpu/); "cuda" / "cuda:N" name the CUDA backend
 *     (lib/cuda/), present only in a `make CUDA=1` build and not yet able
 *     to run a model (issue #12). Nothing here changes with the backend:
 *     the host keeps the file, the hyper-parameters and all KV bookkeeping;
 *     a backend owns where the bytes live and the kernels.
 *   - A model is read-only after llm_model_load(): weights stay in the GGUF
 *     mapping (the CPU backend repacks them for its GEMM kernels),
 *     hyper-parameters live in struct llm_hparams. Architecture
 *     differences (llama, qwen2, gemma3) are one table in lib/llm/engine/arch.c; there is
 *     one forward pass for all of them.
 *   - llm_forward() evaluates a batch of entries (sequence, position, token)
 *     from any number of sequences at any positions. Every projection is one
 *     matrix x (batch of activations), so a 512-token prefill and a decode
 *     step of 16 sequences run the same code. Logits come back for the
 *     entries flagged want_logits, in batch order.
 *   - The KV cache (struct llm_kv) is one pool of fixed-size blocks of
 *     block_size token slots, allocated once from a byte budget. Each
 *     sequence has a block table; attention reads through it. Freeing a
 *     sequence returns its blocks.
 *   - Batch invariance: a sequence's logits are bitwise identical whatever
 *     else shares its batch. Each (weight row, token) dot product and each
 *     (token, head) attention is computed by one thread in a fixed order that
 *     does not depend on the batch's composition or the thread count.
 *
 * Threading: one thread owns a model and its KV caches and calls
 * llm_forward (the executor's engine thread); on the CPU backend
 * llm_forward itself splits work over the model's compute thread pool.
 * llm_model_set_threads is called by that owner between forward passes.
 */
#ifndef PLOT_LLM_H
#define PLOT_LLM_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct llm_model;
struct llm_kv;

/* Error codes returned (negated) by the functions below. */
enum llm_err {
	LLM_OK = 0,
	LLM_EINVAL = 1,   /* bad argument or batch entry (err names it) */
	LLM_ENOMEM = 2,   /* allocation failed */
	LLM_EFORMAT = 3,  /* model file: missing/ill-typed key or tensor, bad shape */
	LLM_EUNSUP = 4,   /* architecture or tensor type we do not implement */
	LLM_EKVFULL = 5,  /* not enough free KV blocks for the batch; nothing changed */
};

enum llm_arch_id { LLM_ARCH_LLAMA = 0, LLM_ARCH_GEMMA3 = 1, LLM_ARCH_QWEN2 = 2 };

/* Hyper-parameters as read from the file (after defaults). */
struct llm_hparams {
	enum llm_arch_id arch;
	char arch_name[32];
	uint32_t n_vocab, n_embd, n_layer, n_ff;
	uint32_t n_head, n_head_kv, head_dim_k, head_dim_v, n_rot;
	uint32_t n_ctx_train;
	uint32_t swa_window;     /* 0: no sliding-window layers */
	float rope_base, rope_base_swa, rope_scale; /* rope_scale multiplies positions */
	float norm_eps;
	float attn_scale;        /* multiplies q.k */
	int tied_embeddings;     /* 1: the output projection is token_embd */
};

/* Is device a valid device name of this build? NULL is "cpu"; otherwise
 * "cpu", "cuda" (= "cuda:0") or "cuda:N", N 0..255. Pure string work (no
 * hardware is touched): cheap enough for a config check. 0, or
 * -LLM_EINVAL ("'gpu': unknown device (...)", "'cuda:x': malformed device
 * index (...)") / -LLM_EUNSUP ("cuda: this build has no CUDA backend
 * (rebuild with make CUDA=1)") with err naming the device. */
int llm_device_check(const char *device, char *err, size_t errlen);

/* Load a GGUF model onto device (as llm_device_check; NULL = "cpu"). The
 * device is probed and opened before the file is read. NULL on failure with
 * err filled, naming the device ("cuda:1: no such CUDA device (found 0)"),
 * key or tensor ("tensor 'blk.3.attn_q.weight': shape (576, 512), want
 * (576, 576)"). */
struct llm_model *llm_model_load_on(const char *path, const char *device, char *err,
				    size_t errlen);
/* The same, calling progress(ctx, f) on the loading thread as the work
 * advances, f rising from 0 to 1 (the backend's upload, which on the CPU
 * repacks every weight matrix, is most of a load). progress may be NULL. */
typedef void (*llm_progress_fn)(void *ctx, double f);
struct llm_model *llm_model_load_progress(const char *path, const char *device,
					  llm_progress_fn progress, void *ctx,
					  char *err, size_t errlen);
/* llm_model_load_on(path, "cpu", ...) */
struct llm_model *llm_model_load(const char *path, char *err, size_t errlen);
void llm_model_free(struct llm_model *m);
/* The device the model is on, normalised: "cpu", "cuda:0". */
const char *llm_model_device(const struct llm_model *m);
/* What a device with memory of its own says about itself. */
struct llm_device_mem {
	char name[64];            /* the product: "NVIDIA H200", "emulated" */
	uint64_t total_bytes;     /* its memory, all of it */
	uint64_t free_bytes;      /* free now, for every process (cudaMemGetInfo) */
};
/* The model's device's name and memory now. 0, or -LLM_EUNSUP for a device
 * without memory of its own (the CPU: nothing is filled), or another
 * -LLM_E* with err naming the device. Cheap (no device properties query,
 * no synchronisation); call from the model's owner thread. */
int llm_model_device_mem(const struct llm_model *m, struct llm_device_mem *o, char *err,
			 size_t errlen);
const struct llm_hparams *llm_model_hparams(const struct llm_model *m);
/* The opened file, for the tokenizer and chat template (owned by the model). */
const struct gguf *llm_model_gguf(const struct llm_model *m);
#define LLM_MAX_THREADS 512
/* Host compute threads (caller included), 1..LLM_MAX_THREADS. 0 or
 * -LLM_EINVAL/-LLM_ENOMEM. A backend that computes elsewhere ignores it. */
int llm_model_set_threads(struct llm_model *m, unsigned n);
unsigned llm_model_threads(const struct llm_model *m);
/* Test mode: multiply dequantized weight rows with float activations instead
 * of quantizing activations to the weights' dot type. Slow; exists so the
 * oracle tests can check the architecture and weight decoding to 1e-3
 * without activation-rounding noise. Default off. */
void llm_model_set_float_acts(struct llm_model *m, int on);
/* Matmuls use the weights repacked at load for the GEMM kernels (on, the
 * default) or the row kernels over the GGUF layout (off). Both give the
 * same tokens up to float rounding; for tests and benchmarks. Switch only
 * while no forward runs. */
void llm_model_set_packed(struct llm_model *m, int on);

/* ---- KV cache ----------------------------------------------------------
 * Bookkeeping (block tables, free list, lengths) is host memory shared by
 * all backends; the K/V bytes are the model's backend's storage (host
 * memory on the CPU, device memory on a GPU). */

/* Element type of the cached K and V rows. F16 rounds K, V, and inside
 * attention Q (times the attention scale where the architecture folds it
 * into Q) and the softmax probabilities to IEEE half, nearest even, and
 * accumulates in float: what llama.cpp's default (F16, no flash attention)
 * CPU path does, so greedy tokens follow it. F32 keeps everything float. */
enum llm_kv_type {
	LLM_KV_F16 = 0, /* the default */
	LLM_KV_F32 = 1,
};

/* Bytes of K+V one token occupies across all layers with elements of type. */
size_t llm_kv_bytes_per_token(const struct llm_model *m, enum llm_kv_type type);
/* A pool of floor(budget / (block_size * bytes_per_token)) blocks of type's
 * elements serving sequence ids 0..max_seqs-1. NULL with err filled if that
 * is zero blocks or the arguments are out of range (type not one of the
 * enum, block_size 1..4096, max_seqs 1..65536). */
struct llm_kv *llm_kv_new(const struct llm_model *m, enum llm_kv_type type,
			  size_t budget_bytes, uint32_t block_size, uint32_t max_seqs,
			  char *err, size_t errlen);
void llm_kv_free(struct llm_kv *kv);
enum llm_kv_type llm_kv_type(const struct llm_kv *kv);
uint32_t llm_kv_block_size(const struct llm_kv *kv);
uint32_t llm_kv_blocks_total(const struct llm_kv *kv);
uint32_t llm_kv_blocks_free(const struct llm_kv *kv);
uint32_t llm_kv_max_seqs(const struct llm_kv *kv);
/* Tokens currently cached for seq (0 if out of range or empty). */
uint32_t llm_kv_seq_len(const struct llm_kv *kv, uint32_t seq);
/* Blocks seq holds now. */
uint32_t llm_kv_seq_blocks(const struct llm_kv *kv, uint32_t seq);
/* Blocks seq must still acquire to hold positions [0, n_tokens). */
uint32_t llm_kv_blocks_needed(const struct llm_kv *kv, uint32_t seq, uint32_t n_tokens);
/* Make seq able to hold positions [0, n_tokens): acquires blocks as needed.
 * -LLM_EKVFULL (nothing acquired) if the pool lacks them, -LLM_EINVAL for a
 * bad seq. llm_forward reserves by itself; executors reserve ahead to admit. */
int llm_kv_seq_reserve(struct llm_kv *kv, uint32_t seq, uint32_t n_tokens);
/* Drop seq's tokens and return all its blocks to the pool. */
void llm_kv_seq_free(struct llm_kv *kv, uint32_t seq);
/* Forget tokens at positions >= n (keeps blocks; a rewind). */
void llm_kv_seq_truncate(struct llm_kv *kv, uint32_t seq, uint32_t n);

/* ---- forward ----------------------------------------------------------- */

struct llm_batch_entry {
	uint32_t seq;      /* sequence id, < llm_kv_max_seqs() */
	uint32_t pos;      /* position in the sequence */
	int32_t token;     /* token id, < n_vocab */
	uint8_t want_logits;
};

/* Within one batch a sequence's entries must have consecutive positions in
 * batch order, and its first position must be <= llm_kv_seq_len() (a smaller
 * one rewinds: later cached tokens are dropped). Entries of different
 * sequences may interleave freely. */
#define LLM_MAX_BATCH 65536 /* entries per llm_forward call */

struct llm_batch {
	uint32_t n;                /* 1..LLM_MAX_BATCH */
	const struct llm_batch_entry *e;
};

/* Evaluate b on the model's device. logits_out gets (n_out, n_vocab) floats
 * (host memory), one row per entry with want_logits, in batch order (may be
 * NULL if none is flagged). The host checks b and reserves its KV blocks,
 * the backend computes, the host commits: on success every sequence's
 * cached length becomes its last position + 1. Returns 0, or -LLM_EINVAL
 * (err names the entry), -LLM_EKVFULL (KV cache unchanged), -LLM_ENOMEM
 * (lengths unchanged; blocks reserved for the batch stay with their
 * sequences until llm_kv_seq_free). */
int llm_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		float *logits_out, char *err, size_t errlen);

#endif
