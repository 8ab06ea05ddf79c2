/*
 * registry.c — the executor table and the calls the daemon makes through it.
 *
 * DESIGN
 *   One row per executor (synthetic.c, llm.c), looked up by the config's
 *   `executor:` name. struct exec pairs a row with its handle and the pool
 *   built around it, so a caller holds one pointer per model and never asks
 *   which executor it has. The pool owns the executor (pool_new takes its
 *   struct pool_executor): exec_free frees the pool, which stops and frees
 *   the executor.
 *
 *   Adding an executor (llm on cuda is the same row with another device) is
 *   one file and one line in `table`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/exec.h"
#include "exec/exec-impl.h"

static const struct exec_ops *const table[] = {
	&exec_synthetic_ops,
	&exec_llm_ops,
};
#define N_EXEC (sizeof table / sizeof table[0])

struct exec {
	const struct exec_ops *ops;
	void *ctx;
	struct pool *pool;
};

const struct exec_ops *exec_find(const char *name)
{
	for (size_t i = 0; name && i < N_EXEC; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

const struct exec_ops *exec_at(size_t i)
{
	return i < N_EXEC ? table[i] : NULL;
}

/* The config's executor: the name in the settings table's choices. */
const char *exec_config_name(const struct cfg_model *cm)
{
	const char *name = cfg_choice_name("models[].executor", cm->executor);
	return name ? name : "?";
}

struct exec *exec_new(const struct exec_config *c, char *err, size_t errlen)
{
	const char *name = exec_config_name(c->model);
	const struct exec_ops *ops = exec_find(name);
	struct pool_executor pe;
	struct exec *e;

	if (!ops) {
		snprintf(err, errlen, "models[].executor: no executor named '%s' in this build",
			 name);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->ops = ops;
	if (ops->create(c, &pe, &e->ctx, err, errlen) < 0) {
		free(e);
		return NULL;
	}
	e->pool = pool_new(&c->pool, pe, err, errlen); /* frees pe on failure */
	if (!e->pool) {
		free(e);
		return NULL;
	}
	if (ops->attach)
		ops->attach(e->ctx, e->pool, c);
	return e;
}

void exec_free(struct exec *e)
{
	if (!e)
		return;
	pool_free(e->pool); /* stops and frees the executor, so e->ctx too */
	free(e);
}

struct pool *exec_pool(const struct exec *e)
{
	return e ? e->pool : NULL;
}

const char *exec_name(const struct exec *e)
{
	return e->ops->name;
}

int exec_prepare(struct exec *e, const struct exec_request *r, exec_prepared_fn cb,
		 void *cb_ctx, char *err, size_t errlen)
{
	return e->ops->prepare(e->ctx, r, cb, cb_ctx, err, errlen);
}

void exec_prepared_free(struct exec_prepared *r)
{
	if (!r)
		return;
	if (r->sub.payload && r->sub.payload_free)
		r->sub.payload_free(r->sub.payload);
	free(r);
}

void exec_describe(struct exec *e, struct exec_info *out)
{
	memset(out, 0, sizeof(*out));
	out->executor = e->ops->name;
	out->state = "ready";
	out->progress = 1;
	if (e->ops->describe)
		e->ops->describe(e->ctx, out);
}

void exec_stats(struct exec *e, struct exec_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (e->ops->stats)
		e->ops->stats(e->ctx, out);
}

struct exec_prepared *exec_prepared_new(int status)
{
	struct exec_prepared *r = calloc(1, sizeof(*r));
	if (r)
		r->status = status;
	return r;
}
