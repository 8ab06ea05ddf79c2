/*
 * exec.h — the executor seam: what runs a model's tasks, chosen by its
 * config name (`executor: synthetic | llm`) from one table, the way
 * commands are (tmux's cmd_entry, ggml's backend registry).
 *
 * An executor is created once per model. It hands the pool a struct
 * pool_executor (start, cancel, threads, stop, free: pool.h), and gives the
 * daemon everything else it needs through struct exec_ops, so nothing above
 * this seam asks which executor a model has:
 *   - prepare: turn a decoded submit into a pool_submit OFF the event loop
 *     (render the chat template, tokenize, validate, compute the cost). The
 *     result comes back through a callback, which may run on any thread,
 *     also before prepare returns (the synthetic executor prepares inline);
 *   - describe: state (loading, ready, failed), load progress, the reason
 *     of a failure, context length, units the budget holds, device;
 *   - stats: the engine's own figures (tokens/s, batch, KV use, TTFT/ITL),
 *     when it has any.
 * Live limits go through the pool (pool_set_limit: max_running is enforced
 * by the pool, threads reach the executor's set_threads), so they mean the
 * same for every executor.
 *
 * LIFETIME
 *   exec_new() creates the executor and the model's pool together (the pool
 *   owns the executor: pool_free() stops and frees it); exec_free() frees
 *   both. Every prepare that returned 0 calls its callback exactly once,
 *   with status -EXEC_E_SHUTDOWN for requests still queued when the pool is
 *   freed.
 *
 * THREADS
 *   exec_* functions are safe from any thread. Callbacks must not call back
 *   into the executor; they typically post the result to the event loop.
 */
#ifndef PLOT_EXEC_H
#define PLOT_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "plot/cfg.h"
#include "plot/pool.h"
#include "plot/template.h"

/* Error codes (negated) of exec_new, exec_prepare and a prepare result. */
enum exec_err {
	EXEC_OK = 0,
	EXEC_E_INVALID = 1,  /* bad request or config field (the message names it) */
	EXEC_E_CONTEXT = 2,  /* prompt + max_tokens exceed the context length */
	EXEC_E_LOAD = 3,     /* the model failed to load (the message says why) */
	EXEC_E_NOMEM = 4,
	EXEC_E_SHUTDOWN = 5, /* the executor stopped before the request ran */
};

/* Which optional fields of struct exec_request are set. */
enum {
	EXEC_HAS_MAX_TOKENS = 1u << 0,
	EXEC_HAS_TEMPERATURE = 1u << 1,
	EXEC_HAS_TOP_K = 1u << 2,
	EXEC_HAS_TOP_P = 1u << 3,
	EXEC_HAS_MIN_P = 1u << 4,
	EXEC_HAS_SEED = 1u << 5,
	EXEC_HAS_COST = 1u << 6,
	EXEC_HAS_TIMEOUT = 1u << 7,
	EXEC_HAS_FREQUENCY_PENALTY = 1u << 8,
	EXEC_HAS_PRESENCE_PENALTY = 1u << 9,
	EXEC_HAS_REPETITION_PENALTY = 1u << 10,
	EXEC_HAS_PENALTY_LAST_N = 1u << 11,
};

/* One submit, as the daemon decoded it; executor-neutral. Pointers are
 * borrowed for the duration of exec_prepare() only. */
struct exec_request {
	const char *prompt;              /* plain text, or NULL when messages */
	const struct tmpl_msg *messages; /* a chat */
	size_t n_messages;
	int raw;                         /* prompt is plain text, not one user turn */
	uint32_t has;                    /* EXEC_HAS_* */
	uint32_t max_tokens;
	double temperature, top_p, min_p;
	double frequency_penalty, presence_penalty; /* [-2, 2]: the HTTP front, plot run */
	uint32_t top_k;
	uint64_t seed;
	double repetition_penalty;       /* (0, 10] */
	uint32_t penalty_last_n;
	const char *const *stop;
	size_t n_stop;
	int ignore_eos;
	int priority;                    /* enum pool_prio */
	uint64_t timeout_ns;             /* EXEC_HAS_TIMEOUT: relative deadline */
	uint64_t cost;                   /* EXEC_HAS_COST: overrides the computed cost */
	uint32_t owner_uid;
};

/* A prepared request, owned by whoever receives it in the callback; free it
 * with exec_prepared_free(). */
struct exec_prepared {
	int status;              /* 0 or -EXEC_E_* */
	char error[256];         /* set when status < 0 */
	uint32_t prompt_tokens;  /* 0 for an executor without a tokenizer */
	uint32_t max_tokens;     /* the limit it will run to (the request's, or the
	                          * executor's default); 0 = none */
	struct pool_submit sub;  /* ready for pool_submit(); set sub.payload to NULL
	                          * once pool_submit took it (it does, in every case) */
	char label[128];         /* sub.label points here */
};
typedef void (*exec_prepared_fn)(void *ctx, struct exec_prepared *r);

/* What `plot models` shows. Strings point into the struct or are static. */
struct exec_info {
	const char *executor;    /* the table name: "synthetic", "llm" */
	const char *state;       /* "loading", "ready", "failed" */
	double progress;         /* 0..1 while loading; 1 once ready */
	char error[256];         /* why it failed; "" otherwise */
	uint64_t context_length; /* tokens; 0 = not applicable or not known yet */
	uint64_t units_total;    /* units (KV blocks) the budget holds; 0 = n/a */
	char device[32];         /* where it runs ("cpu", "cuda:0"); "" = n/a */
	uint64_t kv_bytes;       /* the KV cache it holds; 0 = none or not sized yet */
	uint64_t mem_bytes;      /* weights + KV cache it holds; 0 = none (synthetic)
	                          * or not sized yet */
	/* device_id: the device resolved once the model is sized ("cpu",
	 * "cuda:0" where the config says "cuda"), NULL before. On a device with
	 * memory of its own (a GPU; NULL / 0 otherwise): device_name, its
	 * product ("NVIDIA H200"), its memory in all and free now for every
	 * process (a sample at most a read behind). The strings live as long
	 * as the executor. */
	const char *device_id, *device_name;
	uint64_t device_total_bytes, device_free_bytes;
};

/* The engine's figures, for `plot stats` and Prometheus. has_engine is 0 for
 * an executor without them (synthetic): the rest is then zero. */
struct exec_stats {
	int has_engine;
	double prefill_tps, decode_tps;    /* over the last 10 s */
	uint64_t batch_size;               /* sequences in the last step */
	uint64_t kv_blocks_used, kv_blocks_total;
	double ttft_p50_ms, ttft_p99_ms, itl_p50_ms, itl_p99_ms;
	uint64_t ttft_count, itl_count;    /* samples so far (TTFT: requests, ITL: tokens) */
	double ttft_sum_secs, itl_sum_secs; /* their sum */
};

/* How a model's executor is made. Filled by the daemon from the config. */
struct exec_config {
	const struct cfg_model *model;   /* name, executor, params, lot */
	const char *path;                /* model file with ~ expanded; NULL if none */
	struct pool_config pool;         /* the pool to create around it */
};

/* One row of the executor table. ctx is the executor's own handle. */
struct exec_ops {
	const char *name;                /* config name */
	/* Create the executor: fill *pe (given to pool_new) and *ctx. */
	int (*create)(const struct exec_config *c, struct pool_executor *pe, void **ctx,
		      char *err, size_t errlen);
	/* The pool exists now (it owns pe). */
	void (*attach)(void *ctx, struct pool *p, const struct exec_config *c);
	int (*prepare)(void *ctx, const struct exec_request *r, exec_prepared_fn cb,
		       void *cb_ctx, char *err, size_t errlen);
	void (*describe)(void *ctx, struct exec_info *out);
	void (*stats)(void *ctx, struct exec_stats *out);
};

/* The table: lookup by config name (NULL if none), and by index for listings. */
const struct exec_ops *exec_find(const char *name);
const struct exec_ops *exec_at(size_t i);
/* The executor a model's config names ("synthetic", "llm"). */
const char *exec_config_name(const struct cfg_model *cm);

struct exec; /* one model's executor and its pool */

/* Look c->model->executor up, create the executor and its pool. NULL with
 * err filled (naming the model and the field) on failure. */
struct exec *exec_new(const struct exec_config *c, char *err, size_t errlen);
void exec_free(struct exec *e);
struct pool *exec_pool(const struct exec *e);
const char *exec_name(const struct exec *e);
int exec_prepare(struct exec *e, const struct exec_request *r, exec_prepared_fn cb,
		 void *cb_ctx, char *err, size_t errlen);
void exec_prepared_free(struct exec_prepared *r);
void exec_describe(struct exec *e, struct exec_info *out);
void exec_stats(struct exec *e, struct exec_stats *out);

#endif
