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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "submit.h"

/* One submit between exec_prepare and pool_submit. */
struct pending {
	struct dispatch *d;
	size_t model;
	struct submit_cbs cb;
	int inline_done;            /* loop thread only: answered inside exec_prepare */
	struct exec_prepared *res;
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
	} else if (-rc == POOL_E_SHUTDOWN) {
		snprintf(o.msg, sizeof(o.msg), "plotd is shutting down");
	} else {
		snprintf(o.msg, sizeof(o.msg), "submit to model %s: %s", m->name,
			 pool_err_name(rc));
	}
	cb->done(cb->ctx, &o);
}

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
	if (r->status < 0 || !d->hooks.can_submit(d->hooks.ctx)) {
		fail(&pe->cb, r->status < 0 ? code_of(r->status) : PROTO_E_SHUTDOWN, "%s",
		     r->status < 0 ? r->error : "plotd is draining: no new tasks");
		return;
	}
	uint64_t cost = r->sub.cost;
	r->sub.prompt_tokens = r->prompt_tokens; /* the pool logs the submission */
	int rc = pool_submit(m->pool, &r->sub, &id);
	r->sub.payload = NULL; /* the pool took it, in every case */
	if (rc < 0) {
		rejected(&pe->cb, m, r->sub.owner_uid, cost, rc, !want);
		return;
	}
	if (pe->cb.detach)
		log_msg(LOG_DEBUG, "pool %s: task %llu is detached", m->name,
			(unsigned long long)id);
	struct submit_out o = { .code = 0, .task = id, .prompt_tokens = r->prompt_tokens };
	pe->cb.done(pe->cb.ctx, &o);
}

static void pending_done(struct pending *pe)
{
	exec_prepared_free(pe->res);
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

void submit_start(struct dispatch *d, struct model *m, const struct exec_request *in,
		  const struct submit_cbs *cb)
{
	struct pending *pe = calloc(1, sizeof(*pe));
	struct exec_request r0, *r = &r0;
	char err[256];

	with_defaults(m, in, &r0);

	if (!pe) {
		fail(cb, PROTO_E_NOMEM, "%s", "out of memory");
		return;
	}
	*pe = (struct pending){ .d = d, .model = m->index, .cb = *cb };
	d->preparing = pe;
	int rc = exec_prepare(m->exec, r, on_prepared, pe, err, sizeof(err));
	d->preparing = NULL;
	if (rc < 0) {
		free(pe);
		fail(cb, code_of(rc), "%s", err);
	} else if (pe->inline_done) { /* else it was posted, maybe already */
		submit_prepared(pe);
		pending_done(pe);
	}
}
