/*
 * models.h — one executor and its pool per configured model (models.c).
 *
 * Below the connections and dispatch; above the executor table
 * (plot/exec.h). Nothing here knows which executor a model has: models.c
 * builds each through exec_new() and talks to it through exec_* and pool_*.
 * Task events leave through the post queue (plot/loop.h) as notes keyed by
 * task id, delivered to the function the caller gave models_init.
 */
#ifndef PLOTD_MODELS_H
#define PLOTD_MODELS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "plot/cfg.h"
#include "plot/exec.h"
#include "plot/loop.h"
#include "plot/pool.h"

struct durable; /* durable.h: the store and the daemon-wide id sequence */

/* Models loaded by path (plot models load) beside the configured ones; the
 * array is sized for them at start, so a struct model never moves. */
#define MODELS_ADHOC_MAX 16

/* Where a model is in its life (models_unload / models_reload). */
enum model_state {
	MODEL_LOADED = 0,   /* exec is running (or failed to start: exec NULL) */
	MODEL_UNLOADING,    /* its tasks are being cancelled, then exec freed */
	MODEL_UNLOADED,     /* no exec; the next request loads it again */
};

struct model {
	const char *name;           /* conf->name */
	unsigned index;
	struct exec *exec;          /* NULL when the executor failed to start */
	struct pool *pool;          /* exec's pool; NULL with it */
	struct store *store;        /* the pool's records (the store writer's facade);
	                             * NULL = its own memory */
	struct cfg_lot lot;         /* live limits (config + runtime sets) */
	const struct cfg_model *conf; /* as started: in the daemon's first config,
	                             * kept for its life (a reload compares) */
	char error[256];            /* why exec is NULL */
	int state;                  /* enum model_state */
	unsigned gen;               /* +1 per unload: a submit prepared before is refused */
	uint64_t last_active_ms;    /* loop clock: when it last had work (idle unload) */
	uint64_t idle_ms;           /* idle_unload_secs * 1000; 0: never */
	struct cfg *adhoc;          /* loaded by path: owns conf */
	pthread_t job;              /* the unload's worker thread */
	int job_on;
	struct exec *old_exec;      /* unloading: what the worker frees */
	struct models *ms;          /* the set it belongs to */
	unsigned refs;              /* HTTP requests holding its pool (http-oai.c) */
	int shut;                   /* unloading: the pool stopped, waiting for refs 0 */
};

struct models {
	struct model *v;
	size_t n;
	size_t default_index;
	struct post *post;          /* where task notes go */
	post_fn on_task;            /* ... delivered as on_task(ctx, task id, NULL, 1) */
	void *on_task_ctx;
	struct durable *durable;    /* ids for every pool; the store of durable ones */
	size_t cap;                 /* v's room: configured models + MODELS_ADHOC_MAX */
	/* Loop thread, during an unload once m's pool has stopped: end and drop
	 * every watch of m's tasks; nothing may touch m's pool after it. */
	void (*on_gone)(void *ctx, struct model *m);
	void *on_gone_ctx;
};

/* Start every model of c; a model that fails is kept with its error (and
 * logged), the others serve. -1 only when out of memory. */
int models_init(struct models *ms, const struct cfg *c, struct post *post, post_fn on_task,
		void *ctx, struct durable *du, char *err, size_t errlen);
void models_free(struct models *ms);
struct model *models_find(struct models *ms, const char *name); /* NULL = default */
/* The model whose pool holds task (ids are daemon-wide), or NULL. */
struct model *models_for_task(struct models *ms, uint64_t task);
/* A malloc'd snapshot of m's queued and running tasks, in queue order. */
size_t models_list(const struct model *m, struct pool_task_info **out);
/* Apply every runtime limit of want that differs; logs each. Returns how
 * many changed. */
int models_set_lot(struct model *m, const struct cfg_lot *want, const char *why);
/* Look at task again on the next round (loop thread). */
void models_renote(struct models *ms, uint64_t task);
/* Whether cm would start the same executor as m (what a reload cannot change). */
int models_same_shape(const struct model *m, const struct cfg_model *cm);
const char *models_executor_name(const struct model *m);
/* Shut every pool down (any thread: the stopper). Returns -1 if some pool
 * still had running work at the end. */
int models_shutdown(struct models *ms, int cancel, uint64_t timeout_ns);
/* Cancel every queued and running task now. */
void models_cancel_all(struct models *ms);

/* ---- loading and unloading at runtime (loop thread) ----------------------- */

/* A new llm model named name serving the GGUF file at path (absolute),
 * with lot's limits and the llm defaults; it starts loading at once.
 * 0, or -1 with err (a bad or taken name, no room, out of memory). */
int models_add(struct models *ms, const char *name, const char *path,
	       const struct cfg_lot *lot, char *err, size_t errlen);
/* Unload m: refuse its new submits, cancel its queued and running tasks,
 * then free its executor and memory off the loop. 0, or -1 with err (not
 * loaded). */
int models_unload(struct models *ms, struct model *m, char *err, size_t errlen);
/* Load an unloaded m again (its configured settings). 0, or -1 with err
 * (unloading: try again; or the executor failed). Loaded: 0. */
int models_reload(struct models *ms, struct model *m, char *err, size_t errlen);
/* m has work now (a submit, a task event): its idle time starts over. */
void models_touch(struct model *m, uint64_t now_ms);
/* Unload every model idle past its idle_unload_secs, and free the pools of
 * unloads no request holds any more (the daemon's tick). */
void models_idle_check(struct models *ms, uint64_t now_ms);
/* Seconds until m unloads for being idle, 0 if it will not. */
double models_idle_in(const struct model *m, uint64_t now_ms);
const char *models_state_name(const struct model *m, const char *exec_state);

#endif
