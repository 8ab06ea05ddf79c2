/*
 * llm-exec.h — the `llm` executor: a pool executor (pool.h) that runs a GGUF
 * model on a device (config `device`: the CPU today) with continuous
 * batching and streams detokenized text.
 *
 * DEVICE
 *   config.device names the engine backend (llm.h, llm_device_check): "cpu"
 *   (NULL = cpu), "cuda", "cuda:N". llm_exec_new refuses, with
 *   -LLM_EXEC_E_INVALID and "params.device: ...", a name that is malformed
 *   or whose backend this build lacks ("params.device: cuda: this build has
 *   no CUDA backend (rebuild with make CUDA=1)"). The device itself is
 *   probed by the loader, off the caller's thread: a missing GPU makes the
 *   model FAILED with the reason ("cuda:1: no such CUDA device (found 0)"),
 *   and its tasks fail at once with it (LOADING below). Everything above
 *   the engine (prepare, batching, sampling, stats) is the same on every
 *   device.
 *
 * LIFECYCLE
 *   llm_exec_new() returns a struct pool_executor (give it to pool_new(),
 *   which owns it from then on: pool_free() stops and frees it, and so does
 *   a failing pool_new()) and a handle for the calls below, valid until
 *   then. Call llm_exec_attach(handle, pool, ...) once the pool exists.
 *
 * LOADING
 *   The model loads on a loader thread: open and validate the GGUF file,
 *   build tokenizer and chat template, size the KV cache (after which
 *   llm_exec_blocks_total() is known, the pool's max_units follows it if
 *   attached so, and prepare works),
 *   then read every tensor byte once (progress 0..1) and become READY.
 *   Until READY the executor reports capacity 0 to the pool, so tasks
 *   submitted meanwhile wait in the pool's queue; at READY it raises its
 *   capacity to max_num_seqs with pool_set_capacity(). If
 *   loading fails, the limit is raised too and every task that starts then
 *   fails at once with the reason (nothing waits forever).
 *
 * PREPARE (off the event loop)
 *   llm_exec_prepare() copies a request and queues it to the prep thread,
 *   which renders the chat template (chat messages), tokenizes, validates
 *   (sampling parameters, max_tokens, stop strings, context length) and
 *   computes the cost in KV blocks: ceil((prompt tokens + max_tokens) /
 *   block_size). It then calls cb on the prep thread with a result that is
 *   ready for pool_submit(). A request queued before the model is sized
 *   waits for it.
 *
 * ENGINE
 *   One engine thread per model runs continuous batching. ops->start only
 *   queues the task and signals a condition variable. Each step: take newly
 *   started tasks (reserving their KV blocks for prompt + max_tokens, which
 *   the pool's admission by units guarantees), end cancelled ones, build ONE
 *   batch (a decode token per running sequence, then prefill chunks of new
 *   prompts in admission order up to max_batch_tokens, at least one prompt
 *   token per step), run llm_forward once, sample each sequence with its own
 *   sampler, emit its new text (held back while it may still be a stop
 *   string or an incomplete UTF-8 character), end sequences on an end-of-
 *   generation token, stop string, max_tokens or cancel (deadline timeouts
 *   arrive as cancels), free their KV blocks, then pool_task_finish().
 *   It sleeps on the condition variable when nothing runs.
 *   Blocks are reserved whole at start, so no sequence is ever preempted.
 *
 * BATCH INVARIANCE
 *   A sequence's tokens depend only on its prompt and parameters: the engine
 *   gives bitwise identical logits whatever shares the batch, and each
 *   sequence has its own sampler, RNG and stop matcher; nothing here depends
 *   on the batch's composition.
 *
 * THREADS
 *   The pool's threads limit is the model's compute thread count
 *   (set_threads applies it between steps; 0 = one per online core). The
 *   executor's capacity is max_num_seqs (0 while loading); the pool runs
 *   at most min(max_running, that) sequences in the batch.
 *   All llm_exec_* calls are thread-safe.
 */
#ifndef PLOT_LLM_EXEC_H
#define PLOT_LLM_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "plot/pool.h"
#include "plot/sampler.h"
#include "plot/template.h"

/* Error codes (negated) of llm_exec_new and of a prepare result. */
enum llm_exec_err {
	LLM_EXEC_OK = 0,
	LLM_EXEC_E_INVALID = 1,  /* bad request or config field (error names it) */
	LLM_EXEC_E_CONTEXT = 2,  /* prompt + max_tokens exceed the context length */
	LLM_EXEC_E_LOAD = 3,     /* the model failed to load (error says why) */
	LLM_EXEC_E_NOMEM = 4,
	LLM_EXEC_E_SHUTDOWN = 5, /* the executor stopped before the request ran */
};

#define LLM_EXEC_MAX_PROMPT (16u << 20)  /* bytes of prompt or of all messages */
#define LLM_EXEC_MAX_MESSAGES 4096

struct llm_exec;

struct llm_exec_config {
	const char *name;          /* for messages; may be NULL */
	const char *path;          /* GGUF file */
	const char *device;        /* "cpu" (NULL = cpu), "cuda", "cuda:N": see DEVICE */
	uint64_t kvcache_mem_mb;   /* KV budget, 1..1048576 */
	uint32_t block_size;       /* tokens per KV block, 1..4096 */
	uint32_t max_num_seqs;     /* sequences running at once, 1..4096 */
	uint32_t max_batch_tokens; /* tokens per forward pass, 1..LLM_MAX_BATCH */
	uint32_t context_length;   /* 0 = the model's trained context */
	int kv_type;               /* enum llm_kv_type: 0 = f16 (the default), 1 = f32 */
	int start_held;            /* tests: begin held (see llm_exec_hold) */
};

/* Validate c, start the loader, prep and engine threads. On success returns
 * 0, fills *out (for pool_new) and *handle. On error returns -LLM_EXEC_E_*
 * with err filled; nothing is left running. */
int llm_exec_new(const struct llm_exec_config *c, struct pool_executor *out,
		 struct llm_exec **handle, char *err, size_t errlen);

/* Tell the executor its pool (once, after pool_new). When units_are_blocks
 * (config max_units: null), the pool's max_units becomes the KV blocks the
 * budget holds as soon as the cache is sized, before any prepare result
 * exists. The pool's running limit is raised when the model is READY (or
 * FAILED). Either happens at once if that point has passed already. */
void llm_exec_attach(struct llm_exec *x, struct pool *p, int units_are_blocks);

enum llm_exec_state {
	LLM_EXEC_LOADING = 0,
	LLM_EXEC_READY = 1,
	LLM_EXEC_FAILED = 2,
};
const char *llm_exec_state_name(int state); /* "loading", "ready", "failed" */

struct llm_exec_status {
	int state;               /* enum llm_exec_state */
	double progress;         /* 0..1 while loading; 1 once ready */
	uint32_t blocks_total;   /* 0 until the KV cache is sized */
	uint32_t context_length; /* 0 until known */
	uint64_t weights_bytes;  /* the model's tensors (the GGUF's); 0 until sized */
	uint64_t kv_bytes;       /* the KV cache's blocks (<= kvcache_mem_mb); 0 until sized */
	char error[256];         /* why it failed */
	/* Once sized (NULL / 0 before; the strings live as long as the executor):
	 * the device resolved ("cpu", "cuda:0"), and for a device with memory of
	 * its own its name ("NVIDIA H200", "emulated"), its memory and what is
	 * free of it (every process's use counted). The engine thread samples
	 * the free memory; a read that finds the sample older than 1 s asks it
	 * for a new one (never the driver itself), so a reader sees figures at
	 * most one read behind. NULL / 0 on the CPU. */
	const char *device, *device_name;
	uint64_t device_total_bytes, device_free_bytes;
};
void llm_exec_status(struct llm_exec *x, struct llm_exec_status *st);
/* The device it was configured on ("cpu", "cuda:1"); valid until freed. */
const char *llm_exec_device(const struct llm_exec *x);
/* KV blocks the budget holds (the units of this pool); 0 until sized. */
uint32_t llm_exec_blocks_total(struct llm_exec *x);

/* ---- prepare ----------------------------------------------------------- */

struct llm_exec_request {
	const char *prompt;                /* raw text, when n_messages == 0 */
	int prompt_as_turn;                /* render prompt as one user turn when the
	                                    * model has a chat template */
	const struct tmpl_msg *messages;   /* chat, rendered through the template */
	size_t n_messages;
	struct smp_params params;
	uint32_t max_tokens;               /* 0: until the end of the text, the context
	                                    * or what the KV cache holds, whichever is
	                                    * first (all of it is reserved) */
	const char *const *stop;           /* up to SMP_MAX_STOPS strings */
	size_t n_stop;
	int ignore_eos;                    /* keep going past end-of-generation tokens */
	/* passed through into the result's pool_submit */
	int priority;
	uint64_t deadline_ns, timeout_ns;
	uint32_t owner_uid;
};

/* A prepared request, owned by whoever receives it in the callback. */
struct llm_exec_prepared {
	int status;               /* 0 or -LLM_EXEC_E_* */
	char error[256];          /* set when status < 0 */
	uint32_t prompt_tokens;
	struct pool_submit sub;   /* ready for pool_submit(): payload, payload_free,
	                             cost, priority, deadline, timeout, owner, label */
	char label[128];          /* sub.label points here */
};
typedef void (*llm_exec_prepared_fn)(void *ctx, struct llm_exec_prepared *r);

/* Copy r and queue it. cb runs later on the prep thread (or, for requests
 * still queued when the executor stops, on the stopping thread with
 * -LLM_EXEC_E_SHUTDOWN). Returns 0, or -LLM_EXEC_E_INVALID / _NOMEM /
 * _SHUTDOWN with err filled and cb never called. */
int llm_exec_prepare(struct llm_exec *x, const struct llm_exec_request *r,
		     llm_exec_prepared_fn cb, void *cb_ctx, char *err, size_t errlen);
/* Free a result; frees sub.payload unless the caller set it to NULL (do
 * that after pool_submit, which takes the payload in every case). */
void llm_exec_prepared_free(struct llm_exec_prepared *r);

/* ---- stats --------------------------------------------------------------- */

struct llm_exec_stats {
	double prefill_tps, decode_tps;  /* over the steps of the last 10 s */
	uint32_t batch_seqs;             /* sequences in the last step */
	uint32_t batch_tokens;           /* tokens in the last step */
	uint32_t running;                /* sequences running now */
	uint32_t threads;                /* compute threads of the last step */
	uint32_t kv_blocks_used, kv_blocks_total;
	/* vLLM definitions over the last 1024 requests / 4096 tokens:
	 * TTFT = arrival (llm_exec_prepare) to first token; ITL = between
	 * consecutive tokens of one sequence. */
	uint64_t ttft_p50_ns, ttft_p99_ns, itl_p50_ns, itl_p99_ns;
	uint64_t steps, prompt_tokens, generated_tokens; /* totals */
	uint64_t ttft_count, ttft_sum_ns, itl_count, itl_sum_ns; /* every sample so far */
};
/* A consistent snapshot, under the executor's stats lock (never the engine's
 * step: cheap while the engine computes). */
void llm_exec_stats(struct llm_exec *x, struct llm_exec_stats *s);

/* Tests: while held, the engine starts no new step and the loader does not
 * finish (it waits after sizing, before READY). */
void llm_exec_hold(struct llm_exec *x, int on);

#endif
