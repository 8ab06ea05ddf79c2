/*
 * models.c — one executor and its pool per configured model, and their
 * live limits.
 *
 * DESIGN
 *   Each model's executor is made through the executor table (exec_new:
 *   plot/exec.h), which also creates its pool; nothing here knows which
 *   executor a model has. Every pool takes its ids from one daemon-wide
 *   counter (durable.c, persisted with the store), so ids are unique
 *   across models and restarts and stay short; a task's model is the pool
 *   that holds it.
 *
 *   The pools' notify callback runs on pool and executor threads: it posts
 *   a note keyed by task id to the loop (post_note coalesces repeats, so a
 *   burst of chunks costs one delivery). The loop then drains the task's
 *   watchers. Nothing here blocks the loop: pool calls take the pool mutex
 *   for a short critical section.
 *
 * INVARIANTS
 *   m->lot mirrors what the pool was last told (config plus runtime sets),
 *   except that max_units null tells the pool "every unit the executor's
 *   budget holds" where it has one, not unlimited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "log.h"
#include "models.h"
#include "plot/store.h"

/* Pool threads: hand the task id to the loop. */
static void models_notify(void *ctx, uint64_t task)
{
	struct models *ms = ctx;
	post_note(ms->post, ms->on_task, ms->on_task_ctx, task);
}

void models_renote(struct models *ms, uint64_t task)
{
	models_notify(ms, task);
}

/* Pool threads: one log line per submission, admission and end, in that
 * order (the pool delivers a task's events in order). */
static void models_event(void *ctx, const struct pool_event *ev)
{
	const struct model *m = ctx;

	if (!log_enabled(LOG_INFO))
		return;
	if (ev->state == POOL_QUEUED)
		log_msg(LOG_INFO, "pool %s: task %llu submitted (%u prompt tokens, uid %u, %s, "
			"cost %llu)", m->name, (unsigned long long)ev->id, ev->prompt_tokens,
			(unsigned)ev->owner_uid, pool_prio_name(ev->priority),
			(unsigned long long)ev->cost);
	else if (ev->state == POOL_RUNNING)
		log_msg(LOG_INFO, "pool %s: task %llu admitted (%s, cost %llu, waited %.1f ms)",
			m->name, (unsigned long long)ev->id, pool_prio_name(ev->priority),
			(unsigned long long)ev->cost, (double)ev->elapsed_ns / 1e6);
	else
		log_msg(LOG_INFO, "pool %s: task %llu %s after %.1f ms", m->name,
			(unsigned long long)ev->id, pool_state_name(ev->state),
			(double)ev->elapsed_ns / 1e6);
}

/* "~/x" -> "$HOME/x" (config files name model paths that way). */
static const char *expand_home(const char *p, char *buf, size_t len)
{
	const char *home = getenv("HOME");
	if (!p || strncmp(p, "~/", 2) != 0 || !home)
		return p;
	snprintf(buf, len, "%s/%s", home, p + 2);
	return buf;
}

static int model_start(struct models *ms, struct model *m, const struct cfg_model *cm)
{
	struct exec_config ec;
	const struct store_backend *b;
	char path[4096];

	if (store_backend_pick(cfg_choice_name("parking_lot.queue.backend", cm->lot.queue_backend),
			       cfg_choice_name("parking_lot.mailbox.backend",
					       cm->lot.mailbox_backend),
			       &b, m->error, sizeof(m->error)) < 0)
		return -1;
	m->store = cm->lot.queue_backend == CFG_BACKEND_SQLITE ? durable_store(ms->durable) : NULL;
	memset(&ec, 0, sizeof(ec));
	ec.model = cm;
	ec.path = expand_home(cm->path, path, sizeof(path));
	cfg_lot_pool_config(&cm->lot, m->name, &ec.pool);
	ec.pool.notify = models_notify;
	ec.pool.notify_ctx = ms;
	ec.pool.on_event = models_event;
	ec.pool.on_event_ctx = m;
	ec.pool.next_id = durable_next_id;
	ec.pool.next_id_ctx = ms->durable;
	ec.pool.store = m->store;
	m->exec = exec_new(&ec, m->error, sizeof(m->error));
	m->pool = exec_pool(m->exec);
	return m->exec ? 0 : -1;
}

static void log_model(const struct model *m)
{
	char lim[512] = "";
	size_t off = 0;

	for (size_t i = 0; i < cfg_setting_count() && off < sizeof(lim); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		char v[64], e[128];
		if (s->scope != CFG_SCOPE_LOT || !s->key ||
		    cfg_lot_get(&m->lot, s->key, v, sizeof(v), e, sizeof(e)) < 0)
			continue;
		off += (size_t)snprintf(lim + off, sizeof(lim) - off, " %s=%s", s->key, v);
	}
	log_msg(LOG_INFO, "pool %s: started (executor=%s%s)", m->name, exec_name(m->exec), lim);
}

int models_init(struct models *ms, const struct cfg *c, struct post *post, post_fn on_task,
		void *ctx, struct durable *du, char *err, size_t errlen)
{
	memset(ms, 0, sizeof(*ms));
	ms->durable = du;
	ms->post = post;
	ms->on_task = on_task;
	ms->on_task_ctx = ctx;
	ms->v = calloc(c->n_models ? c->n_models : 1, sizeof(*ms->v));
	if (!ms->v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *cm = &c->models[i];
		struct model *m = &ms->v[ms->n++];
		m->index = (unsigned)i;
		m->name = cm->name;
		m->conf = cm;
		m->lot = cm->lot;
		if (strcmp(cm->name, c->default_model) == 0)
			ms->default_index = i;
		if (model_start(ms, m, cm) < 0)
			log_msg(LOG_ERROR, "pool %s: not started: %s", m->name, m->error);
		else
			log_model(m);
	}
	return 0;
}

void models_free(struct models *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		exec_free(ms->v[i].exec); /* the store is the writer's: durable_close */
	free(ms->v);
	memset(ms, 0, sizeof(*ms));
}

struct model *models_find(struct models *ms, const char *name)
{
	if (!name || !*name)
		return ms->n ? &ms->v[ms->default_index] : NULL;
	for (size_t i = 0; i < ms->n; i++)
		if (strcmp(ms->v[i].name, name) == 0)
			return &ms->v[i];
	return NULL;
}

struct model *models_for_task(struct models *ms, uint64_t task)
{
	struct pool_task_info ti;
	for (size_t i = 0; task && i < ms->n; i++)
		if (ms->v[i].pool && pool_task_info(ms->v[i].pool, task, &ti) == 0)
			return &ms->v[i];
	return NULL;
}

const char *models_executor_name(const struct model *m)
{
	return exec_config_name(m->conf);
}

/* A malloc'd snapshot of m's queued and running tasks, in queue order.
 * pool_list reports how many exist, which may have grown since we sized
 * the array: only what fits is returned. NULL (0) when out of memory. */
size_t models_list(const struct model *m, struct pool_task_info **out)
{
	size_t cap = m->pool ? pool_list(m->pool, NULL, 0) : 0;
	struct pool_task_info *v = calloc(cap ? cap : 1, sizeof(*v));
	size_t n = v && cap ? pool_list(m->pool, v, cap) : 0;

	*out = v;
	return n < cap ? n : cap;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* One setting of the params scope, compared by its type in the table. */
static int same_param(const struct cfg_setting *s, const struct cfg_params *a,
		      const struct cfg_params *b)
{
	const char *pa = (const char *)a + s->offset, *pb = (const char *)b + s->offset;
	switch (s->type) {
	case CFG_T_UINT: return *(const uint64_t *)pa == *(const uint64_t *)pb;
	case CFG_T_DOUBLE: return *(const double *)pa == *(const double *)pb;
	case CFG_T_BOOL:
	case CFG_T_ENUM: return *(const int *)pa == *(const int *)pb;
	case CFG_T_STRING: return same_str(*(char *const *)pa, *(char *const *)pb);
	case CFG_T_DEVICE: return strcmp(pa, pb) == 0; /* char[CFG_DEVICE_MAX] */
	default: return 1;
	}
}

int models_same_shape(const struct model *m, const struct cfg_model *cm)
{
	if (cm->executor != m->conf->executor || !same_str(cm->path, m->conf->path))
		return 0;
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope == CFG_SCOPE_PARAMS && !same_param(s, &cm->params, &m->conf->params))
			return 0;
	}
	return 1;
}

int models_shutdown(struct models *ms, int cancel, uint64_t timeout_ns)
{
	uint64_t end = loop_now_ns() + timeout_ns;
	int rc = 0;

	for (size_t i = 0; i < ms->n; i++) {
		if (!ms->v[i].pool)
			continue;
		uint64_t now = loop_now_ns();
		uint64_t left = end > now ? end - now : 1000000ull;
		if (pool_shutdown(ms->v[i].pool, cancel ? POOL_SHUTDOWN_CANCEL : POOL_SHUTDOWN_DRAIN,
				  left) < 0)
			rc = -1;
	}
	return rc;
}

void models_cancel_all(struct models *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		struct pool_task_info *v;
		size_t n = models_list(&ms->v[i], &v);
		for (size_t k = 0; k < n; k++)
			pool_cancel(ms->v[i].pool, v[k].id);
		free(v);
	}
}

static void fmt_val(const struct cfg_lot *lot, const char *key, char *buf, size_t len)
{
	char err[128];
	if (cfg_lot_get(lot, key, buf, len, err, sizeof(err)) < 0)
		snprintf(buf, len, "?");
}

/* The value the pool is told: max_units null is every unit the executor's
 * budget holds, when it has one (an llm model's KV blocks, once the cache
 * is sized; before that the executor sets it itself when it sizes the
 * cache, if the config said null); otherwise no bound. */
static uint64_t pool_value(const struct model *m, int which, uint64_t v)
{
	struct exec_info info;
	if (which != POOL_LIMIT_MAX_UNITS || v != UINT64_MAX || !m->exec)
		return v;
	exec_describe(m->exec, &info);
	return info.units_total ? info.units_total : v;
}

/* Apply every runtime-changeable lot setting of want that differs from the
 * live value to the pool, logging each change. Returns how many changed. */
int models_set_lot(struct model *m, const struct cfg_lot *want, const char *why)
{
	int changed = 0;

	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		int which_old, which_new;
		uint64_t vold, vnew;
		if (s->scope != CFG_SCOPE_LOT || !(s->flags & CFG_F_RUNTIME) || !s->key)
			continue;
		if (cfg_lot_pool_limit(&m->lot, s, &which_old, &vold) < 0 ||
		    cfg_lot_pool_limit(want, s, &which_new, &vnew) < 0 || vold == vnew)
			continue;
		char a[64], b[64];
		fmt_val(&m->lot, s->key, a, sizeof(a));
		fmt_val(want, s->key, b, sizeof(b));
		int rc = m->pool ? pool_set_limit(m->pool, (enum pool_limit)which_new,
						  pool_value(m, which_new, vnew)) : 0;
		if (rc < 0) {
			log_msg(LOG_ERROR, "pool %s: %s %s -> %s failed: %s", m->name,
				s->key, a, b, pool_err_name(rc));
			continue;
		}
		log_msg(LOG_INFO, "pool %s: limit %s %s -> %s (%s)", m->name, s->key, a, b, why);
		/* Only what the pool accepted becomes the live value. */
		if (s->type == CFG_T_UINT)
			memcpy((char *)&m->lot + s->offset, (const char *)want + s->offset,
			       sizeof(uint64_t));
		changed++;
	}
	return changed;
}
