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
#include <unistd.h>

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
	m->store = cm->lot.queue_backend == CFG_BACKEND_SQLITE ? durable_store(ms->durable)
		   : cm->lot.queue_backend == CFG_BACKEND_POSTGRES ? durable_pg_store(ms->durable)
		   : NULL;
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
	ec.pool.owner_uid = (uint32_t)geteuid(); /* max_units_owner, not _per_user */
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
	void (*on_gone)(void *, struct model *) = ms->on_gone; /* dispatch_init may come first */
	void *on_gone_ctx = ms->on_gone_ctx;
	memset(ms, 0, sizeof(*ms));
	ms->on_gone = on_gone;
	ms->on_gone_ctx = on_gone_ctx;
	ms->durable = du;
	ms->post = post;
	ms->on_task = on_task;
	ms->on_task_ctx = ctx;
	ms->cap = c->n_models + MODELS_ADHOC_MAX;
	ms->v = calloc(ms->cap, sizeof(*ms->v));
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
		m->ms = ms;
		m->idle_ms = cm->idle_unload_secs == CFG_NULL ? 0 : cm->idle_unload_secs * 1000;
		m->last_active_ms = loop_now_ns() / 1000000;
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
	for (size_t i = 0; i < ms->n; i++) {
		struct model *m = &ms->v[i];
		if (m->job_on)
			pthread_join(m->job, NULL); /* its post back is discarded */
		exec_free(m->exec); /* the store is the writer's: durable_close */
		exec_free(m->old_exec);
		if (m->adhoc)
			cfg_free(m->adhoc);
	}
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

/* ---- loading and unloading at runtime -------------------------------------- *
 *
 * An unload runs in three steps, so the loop never waits and never touches
 * a pool that is going away:
 *   1. loop (models_unload): state UNLOADING (submits refused), gen + 1 (a
 *      submit prepared before it is refused when it comes back), every
 *      queued and running task cancelled; a worker thread starts.
 *   2. worker: pool_shutdown(CANCEL) waits for the running tasks to end;
 *      then it posts step 3.
 *   3. loop (on_shut): on_gone ends every watch of the model's tasks, the
 *      executor and store are detached from the model (the loop no longer
 *      sees them) and a second worker frees them (joining the executor's
 *      threads may take a while: a model still loading finishes its step);
 *      its post (on_freed) marks the model UNLOADED.
 * Task ids come from the daemon-wide sequence, so none is reused. The
 * store of a durable model is the daemon's (durable.c), never freed here.
 * A model loaded by path keeps its entry (and name)
 * once unloaded; `plot models load NAME` or a request loads it again. */

static void *free_main(void *arg);
static void detach(struct model *m);

static void on_freed(void *ctx, uint64_t key, void *arg, int live)
{
	struct model *m = arg;
	(void)ctx;
	(void)key;
	if (!live)
		return; /* exiting: models_free joins and frees */
	pthread_join(m->job, NULL);
	m->job_on = 0;
	m->state = MODEL_UNLOADED;
	log_msg(LOG_INFO, "pool %s: unloaded", m->name);
}

static void on_shut(void *ctx, uint64_t key, void *arg, int live)
{
	struct models *ms = ctx;
	struct model *m = arg;
	(void)key;
	if (!live)
		return;
	pthread_join(m->job, NULL);
	m->job_on = 0;
	ms->on_gone(ms->on_gone_ctx, m);
	m->shut = 1;
	if (!m->refs)
		detach(m);
}

/* Loop: nothing holds m's stopped pool any more; hand it to a worker. */
static void detach(struct model *m)
{
	m->shut = 0;
	m->old_exec = m->exec;
	m->exec = NULL;
	m->pool = NULL;
	m->store = NULL;
	m->job_on = 1; /* before the thread starts: free_main reads it */
	if (pthread_create(&m->job, NULL, free_main, m) != 0) {
		m->job_on = 0;
		free_main(m); /* no thread: free here, the loop waits this once */
		m->state = MODEL_UNLOADED;
	}
}

static void *shut_main(void *arg)
{
	struct model *m = arg;
	pool_shutdown(m->pool, POOL_SHUTDOWN_CANCEL, 60ull * 1000000000ull);
	if (post_send(m->ms->post, on_shut, m->ms, m) < 0)
		log_msg(LOG_ERROR, "pool %s: unload lost: out of memory posting it", m->name);
	return NULL;
}

static void *free_main(void *arg)
{
	struct model *m = arg;
	exec_free(m->old_exec);
	m->old_exec = NULL;
	if (m->job_on && post_send(m->ms->post, on_freed, m->ms, m) < 0)
		log_msg(LOG_ERROR, "pool %s: unload lost: out of memory posting it", m->name);
	return NULL;
}

int models_unload(struct models *ms, struct model *m, char *err, size_t errlen)
{
	if (m->state != MODEL_LOADED || !m->exec) {
		snprintf(err, errlen, "model %s is not loaded (%s)", m->name,
			 models_state_name(m, "failed"));
		return -1;
	}
	m->state = MODEL_UNLOADING;
	m->gen++;
	struct pool_task_info *v;
	size_t n = models_list(m, &v);
	for (size_t k = 0; k < n; k++)
		pool_cancel(m->pool, v[k].id);
	free(v);
	log_msg(LOG_INFO, "pool %s: unloading (%zu tasks cancelled)", m->name, n);
	m->job_on = 1;
	if (pthread_create(&m->job, NULL, shut_main, m) != 0) {
		m->job_on = 0;
		m->state = MODEL_LOADED;
		snprintf(err, errlen, "cannot start a thread to unload %s", m->name);
		return -1;
	}
	(void)ms;
	return 0;
}

int models_reload(struct models *ms, struct model *m, char *err, size_t errlen)
{
	if (m->state == MODEL_LOADED)
		return 0;
	if (m->state == MODEL_UNLOADING) {
		snprintf(err, errlen, "model %s is unloading; try again when it is unloaded", m->name);
		return -1;
	}
	m->error[0] = '\0';
	m->state = MODEL_LOADED;
	m->last_active_ms = loop_now_ns() / 1000000;
	if (model_start(ms, m, m->conf) < 0) {
		snprintf(err, errlen, "model %s: %s", m->name, m->error);
		log_msg(LOG_ERROR, "pool %s: not started: %s", m->name, m->error);
		return -1;
	}
	struct cfg_lot live = m->lot; /* runtime sets outlive the pool */
	m->lot = m->conf->lot;
	models_set_lot(m, &live, "loaded again");
	log_model(m);
	return 0;
}

/* A model name as the config takes it: 1..64 of A-Z a-z 0-9 . _ : - */
static int name_ok(const char *n)
{
	size_t len = strlen(n);
	return len >= 1 && len <= 64 &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == len;
}

/* The one-model config of a model loaded by path, through the config
 * loader, so its settings are exactly a configured model's defaults. */
static struct cfg *adhoc_cfg(const char *name, const char *path, char *err, size_t errlen)
{
	char *yaml = NULL;
	size_t len = 0;
	struct cfg *c = NULL;
	FILE *f = open_memstream(&yaml, &len);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fprintf(f, "models:\n  - name: \"%s\"\n    executor: llm\n    path: \"", name);
	for (const char *p = path; *p; p++)
		fprintf(f, (unsigned char)*p < 0x20 || *p == 0x7f ? "\\x%02x"
			   : *p == '"' || *p == '\\' ? "\\%c" : "%c", (unsigned char)*p);
	fputs("\"\n", f);
	if (fclose(f) == 0 && cfg_load_string(yaml, len, "plot models load", &c, err, errlen) < 0)
		c = NULL;
	free(yaml);
	return c;
}

int models_add(struct models *ms, const char *name, const char *path,
	       const struct cfg_lot *lot, char *err, size_t errlen)
{
	if (!name_ok(name)) {
		snprintf(err, errlen, "a model name has 1 to 64 of A-Z a-z 0-9 . _ : -, got \"%.64s\"",
			 name);
		return -1;
	}
	if (models_find(ms, name)) {
		snprintf(err, errlen, "there is a model named %s already", name);
		return -1;
	}
	if (ms->n == ms->cap) {
		snprintf(err, errlen, "at most %d models may be loaded by path", MODELS_ADHOC_MAX);
		return -1;
	}
	struct cfg *c = adhoc_cfg(name, path, err, errlen);
	if (!c)
		return -1;
	struct model *m = &ms->v[ms->n];
	memset(m, 0, sizeof(*m));
	c->models[0].lot = *lot;
	m->adhoc = c;
	m->conf = &c->models[0];
	m->name = m->conf->name;
	m->lot = *lot;
	m->ms = ms;
	m->index = (unsigned)ms->n;
	m->last_active_ms = loop_now_ns() / 1000000;
	ms->n++;
	if (model_start(ms, m, m->conf) < 0) {
		log_msg(LOG_ERROR, "pool %s: not started: %s", m->name, m->error);
		snprintf(err, errlen, "model %s: %s", m->name, m->error);
		return -1; /* it stays, failed, as a configured model would */
	}
	log_msg(LOG_INFO, "pool %s: loading %s (plot models load)", m->name, path);
	log_model(m);
	return 0;
}

void models_touch(struct model *m, uint64_t now_ms)
{
	m->last_active_ms = now_ms;
}

static int busy(const struct model *m)
{
	struct pool_stats st;
	pool_stats(m->pool, &st);
	return st.queued + st.running > 0;
}

void models_idle_check(struct models *ms, uint64_t now_ms)
{
	char err[256];
	for (size_t i = 0; i < ms->n; i++) {
		struct model *m = &ms->v[i];
		if (m->shut && !m->refs)
			detach(m);
		if (!m->idle_ms || m->state != MODEL_LOADED || !m->pool)
			continue;
		if (busy(m))
			m->last_active_ms = now_ms;
		else if (now_ms - m->last_active_ms >= m->idle_ms &&
			 models_unload(ms, m, err, sizeof(err)) == 0)
			log_msg(LOG_INFO, "pool %s: idle for %llu s (idle_unload_secs)", m->name,
				(unsigned long long)(m->idle_ms / 1000));
	}
}

double models_idle_in(const struct model *m, uint64_t now_ms)
{
	if (!m->idle_ms || m->state != MODEL_LOADED || !m->pool || busy(m))
		return 0;
	uint64_t end = m->last_active_ms + m->idle_ms;
	return end > now_ms ? (double)(end - now_ms) / 1000.0 : 0.001;
}

const char *models_state_name(const struct model *m, const char *exec_state)
{
	switch (m->state) {
	case MODEL_UNLOADING: return "unloading";
	case MODEL_UNLOADED: return "unloaded";
	default: return exec_state;
	}
}
