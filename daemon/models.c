/*
 * models.c — one pool per configured model, its executor, its live limits,
 * and the bridge from pool threads back to the event loop.
 *
 * DESIGN
 *   Each model's pool gets a distinct id range (MODEL_ID_SPAN), so a task id
 *   alone names its model and ids are unique across the daemon.
 *
 *   The pools' notify callback runs on pool/executor threads. It appends the
 *   task id to a mutex-guarded list and writes the notes eventfd only when
 *   the list goes from empty to non-empty, so a burst of events costs one
 *   wakeup; an id already on the list is not added again (note_set). The loop swaps the list out (models_take_notes) and drains the
 *   watchers of each id with pool_sub_next(timeout 0). Nothing here blocks
 *   the loop: pool calls take the pool mutex for a short critical section.
 *
 * INVARIANTS
 *   m->lot mirrors what the pool was last told (config plus runtime sets),
 *   except that for an llm model max_units null tells the pool "every KV
 *   block the budget holds", not unlimited.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plotd.h"

static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *notes;
static size_t notes_len, notes_cap;
static int notes_fd = -1;

/* The ids already in notes, so a stream emitting a million chunks between
 * two loop iterations is noted once. Open addressing; a slot is in the set
 * iff its gen is the current one, so taking the notes clears it in O(1). */
struct note_slot {
	uint64_t id;
	uint32_t gen;
};
static struct note_slot *note_set;
static size_t note_set_cap; /* power of two, > 2 * notes_len */
static uint32_t note_gen = 1;

static size_t note_hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* Under notes_mu. 1: id was there; 0: added (or no room: treat as new). */
static int note_set_add(uint64_t id);

static void note_set_rebuild(size_t cap)
{
	struct note_slot *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return; /* keep the old set; note_set_add falls back to duplicates */
	free(note_set);
	note_set = ns;
	note_set_cap = cap;
	note_gen = 1;
	for (size_t i = 0; i < notes_len; i++)
		note_set_add(notes[i]);
}

static int note_set_add(uint64_t id)
{
	if ((notes_len + 1) * 2 > note_set_cap)
		note_set_rebuild(note_set_cap ? note_set_cap * 2 : 1024);
	if ((notes_len + 1) * 2 > note_set_cap)
		return 0;
	for (size_t i = note_hash(id, note_set_cap);; i = (i + 1) & (note_set_cap - 1)) {
		struct note_slot *sl = &note_set[i];
		if (sl->gen != note_gen) {
			sl->id = id;
			sl->gen = note_gen;
			return 0;
		}
		if (sl->id == id)
			return 1;
	}
}

void models_notes_init(int fd)
{
	notes_fd = fd;
}

/* Pool threads: remember the id, wake the loop on the first one. */
static void models_notify(void *ctx, uint64_t task)
{
	int wake = 0;

	(void)ctx;
	pthread_mutex_lock(&notes_mu);
	if (note_set_add(task)) { /* already noted since the loop last looked */
		pthread_mutex_unlock(&notes_mu);
		return;
	}
	if (notes_len == notes_cap) {
		size_t ncap = notes_cap ? notes_cap * 2 : 1024;
		uint64_t *nv = realloc(notes, ncap * sizeof(*nv));
		if (!nv) { /* drop the note; wake anyway so the loop rescans */
			pthread_mutex_unlock(&notes_mu);
			loop_eventfd_signal(notes_fd);
			return;
		}
		notes = nv;
		notes_cap = ncap;
	}
	wake = notes_len == 0;
	notes[notes_len++] = task;
	pthread_mutex_unlock(&notes_mu);
	if (wake)
		loop_eventfd_signal(notes_fd);
}

/* Loop thread: look at task again on the next round (a stream that used up
 * its budget). */
void models_renote(uint64_t task)
{
	models_notify(NULL, task);
}

/* Loop thread: swap the pending ids into *out (a buffer of *cap entries that
 * the caller keeps between calls). Returns how many. */
size_t models_take_notes(uint64_t **out, size_t *cap)
{
	pthread_mutex_lock(&notes_mu);
	uint64_t *v = notes;
	size_t n = notes_len, c = notes_cap;
	notes = *out;
	notes_cap = *cap;
	notes_len = 0;
	if (++note_gen == 0) { /* wrapped: clear for real */
		if (note_set)
			memset(note_set, 0, note_set_cap * sizeof(*note_set));
		note_gen = 1;
	}
	pthread_mutex_unlock(&notes_mu);
	*out = v;
	*cap = c;
	return n;
}

void models_notes_free(void)
{
	free(notes);
	free(note_set);
	notes = NULL;
	note_set = NULL;
	notes_len = notes_cap = note_set_cap = 0;
}

static struct pool_executor make_executor(const struct cfg_model *cm, char *err,
					  size_t errlen)
{
	struct pool_executor ex = { 0 };

	switch (cm->executor) {
	case CFG_EXEC_SYNTHETIC:
		ex = pool_synthetic_executor_new(cm->params.tokens_per_sec);
		if (!ex.ops)
			snprintf(err, errlen, "synthetic executor: out of memory");
		break;
	default:
		snprintf(err, errlen, "executor llm is not available in this build yet");
		break;
	}
	return ex;
}

/* Pool threads: one log line per admission and per end (pool activity). */
static void models_event(void *ctx, const struct pool_event *ev)
{
	const struct model *m = ctx;

	if (!log_enabled(LOG_INFO))
		return;
	if (ev->state == POOL_RUNNING)
		log_msg(LOG_INFO, "pool %s: task %llu admitted (%s, cost %llu, waited %.1f ms)",
			m->name, (unsigned long long)ev->id, pool_prio_name(ev->priority),
			(unsigned long long)ev->cost, (double)ev->elapsed_ns / 1e6);
	else
		log_msg(LOG_INFO, "pool %s: task %llu %s after %.1f ms", m->name,
			(unsigned long long)ev->id, pool_state_name(ev->state),
			(double)ev->elapsed_ns / 1e6);
}

static int model_start(struct model *m, const struct cfg_model *cm, struct plotd *d)
{
	struct pool_config pc;
	char err[256] = "";

	memset(&pc, 0, sizeof(pc));
	cfg_lot_pool_config(&cm->lot, m->name, &pc);
	pc.notify = models_notify;
	pc.notify_ctx = d;
	pc.on_event = models_event;
	pc.on_event_ctx = m;
	pc.first_id = (uint64_t)m->index * MODEL_ID_SPAN + 1;
	if (cm->executor == CFG_EXEC_LLM) {
		if (llm_model_start(m, cm, &pc, err, sizeof(err)) < 0) {
			snprintf(m->error, sizeof(m->error), "%s", err);
			return -1;
		}
		return 0;
	}
	struct pool_executor ex = make_executor(cm, err, sizeof(err));
	if (!ex.ops) {
		snprintf(m->error, sizeof(m->error), "%s", err);
		return -1;
	}
	m->pool = pool_new(&pc, ex, err, sizeof(err));
	if (!m->pool) {
		snprintf(m->error, sizeof(m->error), "%s", err);
		return -1;
	}
	return 0;
}

static void log_model(const struct model *m)
{
	char mu[32] = "null", mr[32] = "null";
	if (m->lot.max_units != CFG_NULL)
		snprintf(mu, sizeof(mu), "%llu", (unsigned long long)m->lot.max_units);
	if (m->lot.max_running != CFG_NULL)
		snprintf(mr, sizeof(mr), "%llu", (unsigned long long)m->lot.max_running);
	log_msg(LOG_INFO, "pool %s: started (executor=%s max_running=%s threads=%llu "
		"max_units=%s max_queue_depth=%llu timeout_secs=%llu retention_secs=%llu)",
		m->name, m->executor == CFG_EXEC_SYNTHETIC ? "synthetic" : "llm", mr,
		(unsigned long long)m->lot.threads, mu,
		(unsigned long long)m->lot.max_queue_depth,
		(unsigned long long)m->lot.timeout_secs,
		(unsigned long long)m->lot.retention_secs);
}

int models_init(struct models *ms, const struct cfg *c, struct plotd *d,
		char *err, size_t errlen)
{
	memset(ms, 0, sizeof(*ms));
	ms->v = calloc(c->n_models ? c->n_models : 1, sizeof(*ms->v));
	if (!ms->v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *cm = &c->models[i];
		struct model *m = &ms->v[ms->n++];
		m->index = (unsigned)i;
		m->name = strdup(cm->name);
		m->lot = cm->lot;
		m->executor = cm->executor;
		m->tokens_per_sec = cm->params.tokens_per_sec;
		m->params = cm->params;
		m->path = cm->path ? strdup(cm->path) : NULL;
		if (!m->name || (cm->path && !m->path)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (strcmp(cm->name, c->default_model) == 0)
			ms->default_index = i;
		if (model_start(m, cm, d) < 0)
			log_msg(LOG_ERROR, "pool %s: not started: %s", m->name, m->error);
		else
			log_model(m);
	}
	return 0;
}

void models_free(struct models *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		if (ms->v[i].pool)
			pool_free(ms->v[i].pool);
		free(ms->v[i].name);
		free(ms->v[i].path);
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
	if (task == 0)
		return NULL;
	uint64_t k = (task - 1) / MODEL_ID_SPAN;
	return k < ms->n ? &ms->v[k] : NULL;
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

static void fmt_val(const struct cfg_lot *lot, const char *key, char *buf, size_t len)
{
	char err[128];
	if (cfg_lot_get(lot, key, buf, len, err, sizeof(err)) < 0)
		snprintf(buf, len, "?");
}

/* The value the pool is told: an llm model's max_units null is every KV
 * block (once the cache is sized; before that the executor sets it when it
 * sizes the cache, if the config said null). */
static uint64_t pool_value(const struct model *m, int which, uint64_t v)
{
	uint32_t blocks = m->llm ? llm_exec_blocks_total(m->llm) : 0;
	if (which == POOL_LIMIT_MAX_UNITS && v == UINT64_MAX && blocks)
		return blocks;
	return v;
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
