/*
 * exec-impl.h — private state of the llm executor (lib/llm/exec/exec*.c).
 *
 * Ownership:
 *   - mu guards the control block: state, progress, error, held, stopping,
 *     pool, threads_want, the start inbox and the prep queue.
 *   - The loader writes m, tok, tmpl, kv, n_ctx before publishing `sized`
 *     (under mu); after that they are read-only, except that the model's
 *     thread count and the KV cache belong to the engine thread.
 *   - The engine thread alone owns the running sequences (run[], slots).
 *   - st_mu guards the stats block; the engine writes it once per step,
 *     llm_exec_stats() reads it.
 */
#ifndef PLOT_LLM_EXEC_IMPL_H
#define PLOT_LLM_EXEC_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "plot/llm-exec.h"
#include "plot/llm.h"
#include "plot/tok.h"

/* What a prepared task carries into the pool (the pool_submit payload). */
struct exec_payload {
	int32_t *ids;              /* (n_prompt) prompt tokens */
	uint32_t n_prompt, max_tokens;
	struct smp_params params;
	char **stop;
	size_t n_stop;
	int ignore_eos;
	uint64_t arrival_ns;       /* llm_exec_prepare() time, CLOCK_MONOTONIC */
};
void exec_payload_free(void *p);

/* A prepare request, deep-copied, queued for the prep thread. */
struct prep_req {
	struct prep_req *next;
	char *prompt;
	struct tmpl_msg *msgs;
	size_t n_msgs;
	struct llm_exec_request r;  /* scalars; its pointers are not used */
	char **stop;
	size_t n_stop;
	llm_exec_prepared_fn cb;
	void *cb_ctx;
	uint64_t arrival_ns;
};

struct inbox_node {
	struct inbox_node *next;
	struct pool_task *t;
};

struct seq;

#define EXEC_TTFT_RING 1024
#define EXEC_ITL_RING 4096
#define EXEC_STEP_RING 256
#define EXEC_RATE_WINDOW_NS 10000000000ull
#define EXEC_DEV_MEM_STALE_NS 1000000000ull /* device memory figures: resampled after 1 s */

struct exec_step_rec {
	uint64_t t0, t1;
	uint32_t n_prefill, n_decode;
};

struct exec_stats_block {
	pthread_mutex_t mu;
	uint64_t ttft[EXEC_TTFT_RING], itl[EXEC_ITL_RING];
	uint64_t n_ttft, n_itl;
	uint64_t ttft_sum_ns, itl_sum_ns; /* of every sample, not only the ring's */
	struct exec_step_rec steps[EXEC_STEP_RING];
	uint64_t n_steps, prompt_tokens, generated_tokens;
	uint32_t batch_seqs, batch_tokens, running, kv_free, threads;
	int kv_valid;              /* kv_free has been written */
};

struct llm_exec {
	struct llm_exec_config cfg;
	char *path, *name, *device;  /* owned copies; cfg's pointers point here */

	pthread_mutex_t mu;
	pthread_cond_t engine_cv;  /* inbox, cancel, threads, hold, stop, loaded */
	pthread_cond_t prep_cv;    /* prep queue, sized, stop */
	int state;                 /* enum llm_exec_state */
	double progress;
	char error[256];
	int sized, held, stopping;
	struct pool *pool;
	int units_are_blocks;      /* attach: max_units follows blocks_total */
	int pool_units_done;       /* pool max_units already set */
	int pool_raised;           /* pool_set_capacity already done */
	pthread_mutex_t sync_mu;   /* orders the pool calls of exec_pool_sync */
	unsigned threads_want;
	struct inbox_node *in_head, *in_tail;
	struct prep_req *prep_head, *prep_tail;

	/* written by the loader before `sized` */
	struct llm_model *m;
	struct tok *tok;
	struct tmpl *tmpl;
	char tmpl_err[200];
	struct llm_kv *kv;
	uint32_t n_ctx, n_vocab, blocks_total;
	uint64_t weights_bytes, kv_bytes; /* the GGUF's tensors; the KV cache's blocks */
	char dev_id[16];           /* the device resolved ("cuda:0"), immutable once sized */
	char dev_name[64];         /* its product name ("NVIDIA H200"); "" for the CPU */

	/* device memory (under mu): sampled by the loader, then by the engine
	 * thread whenever a reader found the sample older than
	 * EXEC_DEV_MEM_STALE_NS and set dev_refresh (the loop never asks the
	 * driver itself: a wedged device must not stall it) */
	int has_dev_mem, dev_refresh;
	uint64_t dev_total, dev_free, dev_at_ns;

	pthread_t loader, prep, engine;
	int loader_on, prep_on, engine_on;

	/* engine thread only */
	struct seq **run;          /* (max_num_seqs) running, in admission order */
	uint32_t n_run;
	uint8_t *slot_used;        /* (max_num_seqs) KV sequence ids in use */
	unsigned threads_have;

	struct exec_stats_block st;
};

uint64_t exec_now_ns(void);

/* exec-prep.c */
void *exec_prep_main(void *arg);
void exec_prep_drain(struct llm_exec *x);
void exec_prep_req_free(struct prep_req *q);

/* exec-engine.c */
void *exec_engine_main(void *arg);

/* exec-stats.c */
void exec_stats_init(struct exec_stats_block *st);
void exec_stats_destroy(struct exec_stats_block *st);
void exec_stats_step(struct exec_stats_block *st, const struct exec_step_rec *r,
		     uint32_t batch_seqs, uint32_t running, uint32_t kv_free, uint32_t threads);
void exec_stats_kv(struct exec_stats_block *st, uint32_t kv_free);
void exec_stats_ttft(struct exec_stats_block *st, uint64_t ns);
void exec_stats_itl(struct exec_stats_block *st, uint64_t ns);
void exec_dev_mem_sample(struct llm_exec *x);

#endif
