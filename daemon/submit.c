/*
 * submit.c — the one submit path of plotd, for every front (socket, HTTP)
 * and every executor.
 *
 * DESIGN
 *   exec_prepare() prepares the request off the loop (tokenizing for llm;
 *   inline for synthetic); its result comes back through the post queue,
 *   or, when the executor answered inline on the loop thread, right after
 *   exec_prepare returns. On the loop, submit_prepared() checks that
 *   submits are still open and the client still wants it, calls
 *   pool_submit, and hands the front one struct submit_out. The front
 *   turns it into its own reply (a msgpack frame, an HTTP status); the
 *   messages are made here so both fronts say the same thing.
 *
 *   A model with a durable store: the task is submitted held (it cannot
 *   start), its record goes to the store writer, and done() waits for the
 *   writer's completion (posted back to the loop): committed, the task is
 *   confirmed and may run; failed, it is cancelled unstarted and done()
 *   says STORE. So a client is told of a task only once it is on disk, and
 *   a task nobody was told of never runs. A repeat of an idempotency key
 *   gets the first task's id (also once the store holds it). Restored tasks
 *   (a restart) take the same path with their own id, times and attempts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "pgshare.h"
#include "submit.h"

/* One submit between exec_prepare and pool_submit. cb's borrowed key and
 * request are copies owned here. */
struct pending {
	struct dispatch *d;
	size_t model;
	unsigned gen;               /* the model's gen at the start: an unload since refuses it */
	struct submit_cbs cb;
	int inline_done;            /* loop thread only: answered inside exec_prepare */
	struct exec_prepared *res;
	struct submit_restore restore; /* id 0: a new task */
	char *key, *request;
	size_t request_len;
};

/* A submitted task waiting for the store's commit before done(). */
struct ack {
	struct dispatch *d;
	struct submit_cbs cb;
	size_t model;
	struct submit_out o;
	uint32_t uid;
	char *key;
	int ok;
};

static void fail(const struct submit_cbs *cb, int code, const char *fmt, const char *arg)
{
	struct submit_out o = { .code = code };
	snprintf(o.msg, sizeof(o.msg), fmt, arg);
	cb->done(cb->ctx, &o);
}

static int code_of(int status)
{
	switch (-status) {
	case EXEC_E_CONTEXT: return PROTO_E_CONTEXT;
	case EXEC_E_NOMEM: return PROTO_E_NOMEM;
	case EXEC_E_SHUTDOWN: return PROTO_E_SHUTDOWN;
	case EXEC_E_LOAD: return PROTO_E_INTERNAL;
	default: return PROTO_E_INVALID;
	}
}

static void rejected(const struct submit_cbs *cb, const struct model *m, uint32_t uid,
		     uint64_t cost, int rc, int gone)
{
	struct submit_out o = { .code = proto_code_from_pool(rc) };

	log_msg(LOG_INFO, "pool %s: submit from uid %u rejected: %s%s", m->name, (unsigned)uid,
		pool_err_name(rc), gone ? " (detached, its client is gone)" : "");
	if (-rc == POOL_E_QUEUE_FULL) {
		snprintf(o.msg, sizeof(o.msg), "queue of model %s is full (max_queue_depth %llu)",
			 m->name, (unsigned long long)pool_get_limit(m->pool,
								     POOL_LIMIT_MAX_QUEUE_DEPTH));
		o.retry_after_secs = 1;
	} else if (-rc == POOL_E_CAPACITY) {
		snprintf(o.msg, sizeof(o.msg), "cost %llu exceeds max_units %llu of model %s",
			 (unsigned long long)cost,
			 (unsigned long long)pool_get_limit(m->pool, POOL_LIMIT_MAX_UNITS), m->name);
	} else if (-rc == POOL_E_USER_CAP) {
		int own = uid == (uint32_t)geteuid();
		snprintf(o.msg, sizeof(o.msg), "cost %llu would put uid %u over %s %llu units "
			 "queued and running on model %s; retry when its tasks end",
			 (unsigned long long)cost, (unsigned)uid,
			 own ? "max_units_owner" : "max_units_per_user",
			 (unsigned long long)pool_get_limit(m->pool, own ? POOL_LIMIT_MAX_OWNER_UNITS
									  : POOL_LIMIT_MAX_USER_UNITS),
			 m->name);
		o.retry_after_secs = 1;
	} else if (-rc == POOL_E_SHUTDOWN) {
		snprintf(o.msg, sizeof(o.msg), "plotd is shutting down");
	} else {
		snprintf(o.msg, sizeof(o.msg), "submit to model %s: %s", m->name,
			 pool_err_name(rc));
	}
	cb->done(cb->ctx, &o);
}

/* ---- acknowledged after the commit ----------------------------------------- */

/* post_fn: the store answered (loop thread). */
static void acked(void *ctx, uint64_t key, void *arg, int live)
{
	struct ack *a = arg;
	struct model *m = live ? &a->d->models->v[a->model] : NULL;

	(void)ctx;
	(void)key;
	if (live && a->ok) {
		if (m->pool)
			pool_confirm(m->pool, a->o.task); /* stored: it may run now */
	} else if (live) {
		char why[200];
		store_writer_error(a->d->durable->writer, why, sizeof(why));
		log_msg(LOG_ERROR, "pool %s: task %llu refused, not stored: %s", m->name,
			(unsigned long long)a->o.task, why);
		if (m->pool)
			pool_cancel(m->pool, a->o.task); /* nobody was told of it: never runs */
		durable_key_remember(a->d->durable, a->uid, a->key, 0);
		a->o.code = PROTO_E_STORE;
		snprintf(a->o.msg, sizeof(a->o.msg), "task not accepted: %s", why);
	} else {
		a->o.code = SUBMIT_DROPPED; /* plotd exited first */
	}
	a->cb.done(a->cb.ctx, &a->o);
	free(a->key);
	free(a);
}

/* Store writer thread: the batch holding the task is committed (or not). */
static void ack_committed(void *ctx, void *arg, int ok)
{
	struct ack *a = arg;

	(void)ctx;
	a->ok = ok;
	if (post_send(a->d->post, acked, a->d, a) < 0)
		log_msg(LOG_ERROR, "task %llu: its reply is lost: out of memory",
			(unsigned long long)a->o.task); /* a leaks: only the loop may free it */
}

/* done(o) once everything the store holds so far (the task's record
 * included) is committed; without a store, now. */
static void done_when_stored(struct dispatch *d, struct model *m, const struct submit_cbs *cb,
			     const struct submit_out *o, uint32_t uid, const char *key)
{
	struct ack *a = m->store ? calloc(1, sizeof(*a)) : NULL;

	if (a) {
		*a = (struct ack){ .d = d, .cb = *cb, .model = m->index, .o = *o, .uid = uid,
				   .key = key ? strdup(key) : NULL };
		if (store_writer_sync(d->durable->writer, ack_committed, d, a) == 0)
			return;
		free(a->key);
		free(a);
	}
	if (m->store)
		log_msg(LOG_ERROR, "task %llu: acknowledged before its commit: out of memory",
			(unsigned long long)o->task);
	if (m->pool)
		pool_confirm(m->pool, o->task);
	cb->done(cb->ctx, o);
}

/* What the store needs to resume the task, and a restored task's own id,
 * times and attempts, into the pool's submit. */
static void submit_extras(const struct pending *pe, const struct model *m,
			  struct pool_submit *sub)
{
	sub->key = pe->key;
	sub->request = pe->request;
	sub->request_len = pe->request_len;
	sub->hold = m->store && !pe->restore.id; /* runs once stored */
	if (!pe->restore.id)
		return;
	sub->id = pe->restore.id;
	sub->created_ns = pe->restore.created_ns;
	sub->attempts = pe->restore.attempts;
	if (pe->restore.deadline_ns) {
		sub->deadline_ns = pe->restore.deadline_ns;
		sub->timeout_ns = 0;
	}
}

/* ---- the path ------------------------------------------------------------------- */

/* Loop: one prepared request -> pool_submit -> done(). */
static void submit_prepared(struct pending *pe)
{
	struct dispatch *d = pe->d;
	struct model *m = &d->models->v[pe->model];
	struct exec_prepared *r = pe->res;
	int want = pe->cb.wanted(pe->cb.ctx);
	uint64_t id;

	if (!want && !pe->cb.detach) {
		fail(&pe->cb, SUBMIT_DROPPED, "%s", "the client left");
		return;
	}
	if (!r) {
		fail(&pe->cb, PROTO_E_NOMEM, "%s", "out of memory");
		return;
	}
	if (m->gen != pe->gen || !m->pool) {
		fail(&pe->cb, PROTO_E_SHUTDOWN, "model %s was unloaded while the request was "
		     "prepared; send it again to load it", m->name);
		return;
	}
	if (r->status < 0 || (!pe->restore.id && !d->hooks.can_submit(d->hooks.ctx))) {
		fail(&pe->cb, r->status < 0 ? code_of(r->status) : PROTO_E_SHUTDOWN, "%s",
		     r->status < 0 ? r->error : "plotd is draining: no new tasks");
		return;
	}
	uint64_t cost = r->sub.cost;
	if (!pe->restore.id && m->store && m->store == durable_pg_store(d->durable)) {
		if (cost > pool_get_limit(m->pool, POOL_LIMIT_MAX_UNITS)) {
			r->sub.payload_free(r->sub.payload);
			r->sub.payload = NULL;
			rejected(&pe->cb, m, r->sub.owner_uid, cost, -POOL_E_CAPACITY, !want);
			return;
		}
		pgshare_submit(d->durable->pg, m, &r->sub, pe->key, pe->request,
			       pe->request_len, &pe->cb, r->prompt_tokens, r->max_tokens);
		return; /* into the shared queue: a claim brings it to a pool */
	}
	submit_extras(pe, m, &r->sub);
	r->sub.prompt_tokens = r->prompt_tokens; /* the pool logs the submission */
	int rc = pool_submit(m->pool, &r->sub, &id);
	r->sub.payload = NULL; /* the pool took it, in every case */
	if (rc < 0) {
		rejected(&pe->cb, m, r->sub.owner_uid, cost, rc, !want);
		return;
	}
	durable_key_remember(d->durable, r->sub.owner_uid, pe->key, id);
	/* "submitted" is the pool's line (before "admitted"); say what it cannot */
	if (pe->restore.id)
		log_msg(LOG_INFO, "pool %s: task %llu resumed", m->name, (unsigned long long)id);
	if (pe->cb.detach)
		log_msg(LOG_DEBUG, "pool %s: task %llu is detached", m->name,
			(unsigned long long)id);
	struct submit_out o = { .code = 0, .task = id, .prompt_tokens = r->prompt_tokens,
				 .max_tokens = r->max_tokens };
	if (pe->restore.id)
		pe->cb.done(pe->cb.ctx, &o); /* on disk already */
	else
		done_when_stored(d, m, &pe->cb, &o, r->sub.owner_uid, pe->key);
}

/* ---- restart --------------------------------------------------------------------- */

/* Every restored task is back in its pool: admission may start. */
static void restore_check(struct dispatch *d)
{
	if (d->restore_open || d->restoring)
		return;
	for (size_t i = 0; i < d->models->n; i++)
		if (d->models->v[i].pool)
			pool_hold(d->models->v[i].pool, 0);
}

void submit_restore_begin(struct dispatch *d)
{
	d->restore_open = 1;
	for (size_t i = 0; i < d->models->n; i++)
		if (d->models->v[i].pool)
			pool_hold(d->models->v[i].pool, 1);
}

void submit_restore_end(struct dispatch *d)
{
	d->restore_open = 0;
	restore_check(d);
}

static void pending_done(struct pending *pe)
{
	if (pe->restore.id) {
		pe->d->restoring--;
		restore_check(pe->d);
	}
	exec_prepared_free(pe->res);
	free(pe->key);
	free(pe->request);
	free(pe);
}

/* post_fn: a prepared submit reaches the loop (or is discarded at exit). */
static void on_prepared_post(void *ctx, uint64_t key, void *arg, int live)
{
	struct pending *pe = arg;

	(void)ctx;
	(void)key;
	if (live)
		submit_prepared(pe);
	else
		fail(&pe->cb, SUBMIT_DROPPED, "%s", "plotd exited");
	pending_done(pe);
}

/* Any thread: the executor's answer. Inline on the loop thread while
 * exec_prepare runs (a synthetic model), the submit goes on right after it
 * returns; from any other thread it is posted to the loop. */
static void on_prepared(void *ctx, struct exec_prepared *r)
{
	struct pending *pe = ctx;
	struct dispatch *d = pe->d;

	pe->res = r;
	if (pthread_equal(pthread_self(), d->loop_thread) && d->preparing == pe) {
		pe->inline_done = 1;
		return;
	}
	if (post_send(d->post, on_prepared_post, d, pe) < 0) {
		/* the front's context leaks: it can only be freed on the loop */
		log_msg(LOG_ERROR, "submit lost: out of memory posting it to the loop");
		pending_done(pe);
	}
}

/* What a request does not say, the model's generate.* settings do (from
 * the config, per model over daemon-wide), for every front alike. */
static void with_defaults(const struct model *m, const struct exec_request *in,
			  struct exec_request *r)
{
	const struct cfg_lot *g = &m->lot;

	*r = *in;
	if (!(r->has & EXEC_HAS_MAX_TOKENS) && g->gen_max_tokens != CFG_NULL) {
		r->has |= EXEC_HAS_MAX_TOKENS;
		r->max_tokens = (uint32_t)g->gen_max_tokens;
	}
	if (!(r->has & EXEC_HAS_TEMPERATURE)) {
		r->has |= EXEC_HAS_TEMPERATURE;
		r->temperature = g->gen_temperature;
	}
	if (!(r->has & EXEC_HAS_TOP_K)) {
		r->has |= EXEC_HAS_TOP_K;
		r->top_k = (uint32_t)g->gen_top_k;
	}
	if (!(r->has & EXEC_HAS_TOP_P)) {
		r->has |= EXEC_HAS_TOP_P;
		r->top_p = g->gen_top_p;
	}
	if (!(r->has & EXEC_HAS_MIN_P)) {
		r->has |= EXEC_HAS_MIN_P;
		r->min_p = g->gen_min_p;
	}
}

/* A key this user gave before names a task still held: done() with it. */
static int repeat(struct dispatch *d, struct model *m, const struct exec_request *r,
		  const struct submit_cbs *cb)
{
	uint64_t id = cb->key ? durable_key_lookup(d->durable, r->owner_uid, cb->key) : 0;
	struct model *held = id ? models_for_task(d->models, id) : NULL;
	struct submit_out o = { .code = 0, .task = id };

	if (!held)
		return 0;
	log_msg(LOG_INFO, "pool %s: submit with the key of task %llu: that task", held->name,
		(unsigned long long)id);
	(void)m;
	done_when_stored(d, held, cb, &o, r->owner_uid, NULL);
	return 1;
}

static struct pending *pending_new(struct dispatch *d, struct model *m,
				   const struct submit_cbs *cb)
{
	struct pending *pe = calloc(1, sizeof(*pe));
	if (!pe)
		return NULL;
	*pe = (struct pending){ .d = d, .model = m->index, .gen = m->gen, .cb = *cb };
	pe->cb.key = NULL;
	pe->cb.request = NULL;
	pe->cb.restore = NULL;
	if (cb->restore) {
		pe->restore = *cb->restore;
		d->restoring++; /* pending_done counts it back */
	}
	pe->key = cb->key ? strdup(cb->key) : NULL;
	pe->request = cb->request_len ? malloc(cb->request_len) : NULL;
	if ((cb->key && !pe->key) || (cb->request_len && !pe->request)) {
		pending_done(pe);
		return NULL;
	}
	if (pe->request) {
		memcpy(pe->request, cb->request, cb->request_len);
		pe->request_len = cb->request_len;
	}
	return pe;
}

void submit_start(struct dispatch *d, struct model *m, const struct exec_request *in,
		  const struct submit_cbs *cb)
{
	struct exec_request r0;
	const struct exec_request *r = &r0;
	char err[256];

	with_defaults(m, in, &r0);
	if (!cb->restore && repeat(d, m, r, cb))
		return;
	struct pending *pe = pending_new(d, m, cb);
	if (!pe) {
		fail(cb, PROTO_E_NOMEM, "%s", "out of memory");
		return;
	}
	d->preparing = pe;
	int rc = exec_prepare(m->exec, r, on_prepared, pe, err, sizeof(err));
	d->preparing = NULL;
	if (rc < 0) {
		pending_done(pe);
		fail(cb, code_of(rc), "%s", err);
	} else if (pe->inline_done) { /* else it was posted, maybe already */
		submit_prepared(pe);
		pending_done(pe);
	}
}
