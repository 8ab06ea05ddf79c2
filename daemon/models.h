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

#include <stddef.h>
#include <stdint.h>

#include "plot/cfg.h"
#include "plot/exec.h"
#include "plot/loop.h"
#include "plot/pool.h"

struct durable; /* durable.h: the store and the daemon-wide id sequence */

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
};

struct models {
	struct model *v;
	size_t n;
	size_t default_index;
	struct post *post;          /* where task notes go */
	post_fn on_task;            /* ... delivered as on_task(ctx, task id, NULL, 1) */
	void *on_task_ctx;
	struct durable *durable;    /* ids for every pool; the store of durable ones */
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

#endif
