/*
 * pgshare.c — the shared queue on PostgreSQL, plotd's side: submits go to
 * the database, claims bring tasks into the local pools, reads of tasks
 * held elsewhere go to the database (issue #15; the rules of the queue
 * itself are in include/plot/pgq.h).
 *
 * DESIGN
 *   Two connections per daemon. The store's (lib/store/pg-store.c) belongs
 *   to the store writer thread and carries what the pools write about the
 *   tasks they run: output appends and the end, under the task's lease, in
 *   group commits. The claimer's (here) belongs to one thread that the
 *   loop and the pools post to (a list under a mutex, an eventfd to wake
 *   it); it waits in poll() on that eventfd and the connection's socket
 *   (LISTEN plot_submit, plot_cancel), with a timeout of the heartbeat.
 *   The event loop never touches the network: every answer comes back
 *   through the post queue.
 *
 *   submit   loop: the prepared task goes to the thread (its payload is
 *            freed: the claimer prepares again from the stored request);
 *            pgq_submit there; the id the database gave comes back and the
 *            client is answered. QUEUE_FULL is the database's count of the
 *            model's queued tasks against the pool's max_queue_depth.
 *   claim    a plot_submit notification, a finish committed (units freed)
 *            or the heartbeat asks the loop for an offer (post_note: one
 *            at a time); the loop offers each postgres pool's max_units and
 *            running limit less what this daemon holds leases on (the
 *            store's lease table: claimed, running, or ending until the
 *            finish is committed), so the database never counts more
 *            against a daemon than its units; it posts the offer; the thread runs pgq_claim per
 *            model, records each lease in the store's table, and posts the
 *            claimed tasks; the loop starts each in its pool under its
 *            database id through dispatch_restore (the restart path: the
 *            request is decoded and prepared again). One offer is in
 *            flight at a time; one that claimed something is followed by
 *            another, until a claim comes back empty.
 *   beat     every lease_ms/3: pgq_sweep (expired leases and deadlines,
 *            whoever sees them first), pgq_renew of every lease held here;
 *            a lost lease is dropped from the table (its later writes are
 *            discarded) and its local task cancelled. A plot_cancel naming
 *            a task held here does the same.
 *   reads    status/result of a task not in a local pool: pgq_get on the
 *            thread; with wait, asked again every 100 ms until it ends.
 *            A tail (plot tail, plot run, and every HTTP read of a postgres
 *            model's task) is pgshare-read.c's: one follower, whose reply
 *            sink is a socket client or a front's callback.
 *   down     a failed statement with the connection gone: the beat
 *            reconnects with backoff (up to 5 s), then sweeps and claims
 *            (notifications sent meanwhile are lost; the beat covers them).
 *            Submits meanwhile fail with STORE. The store keeps the appends
 *            and finishes that failed (bounded, pg-store.c); each beat
 *            after a reconnect makes the writer replay them.
 *
 * THREADS
 *   ps->ops/stop: mu. claiming/again: loop only. Everything else after
 *   start: the claimer thread only (q, waiters, beat).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgshare-impl.h"

uint64_t pgshare_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pgshare_op_free(struct op *o)
{
	pgshare_reader_unref(o->sh);
	free(o->data);
	free(o->mstat);
	free(o->dstat);
	for (size_t i = 0; i < o->nrecs; i++)
		store_record_clear(&o->recs[i]);
	free(o->recs);
	free(o->pos);
	for (size_t i = 0; i < o->nmodels; i++)
		free(o->models[i]);
	free(o->models);
	free(o->ids);
	free(o->model);
	free(o->label);
	free(o->key);
	free(o->request);
	for (size_t i = 0; i < o->nclaimed; i++)
		pgq_claimed_clear(&o->claimed[i]);
	free(o->claimed);
	store_record_clear(&o->rec);
	free(o);
}

/* Any thread: queue o for the claimer. */
void pgshare_push(struct pgshare *ps, struct op *o)
{
	uint64_t one = 1;
	pthread_mutex_lock(&ps->mu);
	if (ps->tail)
		ps->tail->next = o;
	else
		ps->head = o;
	ps->tail = o;
	pthread_mutex_unlock(&ps->mu);
	if (write(ps->wake_fd, &one, sizeof one) < 0)
		log_msg(LOG_ERROR, "postgres: cannot wake the claimer: %s", strerror(errno));
}

/* ---- the loop's half ------------------------------------------------------ */

static void on_offer(void *ctx, uint64_t key, void *arg, int live);

void pgshare_kick(struct pgshare *ps)
{
	if (ps && __atomic_load_n(&ps->started, __ATOMIC_ACQUIRE))
		post_note(ps->post, on_offer, ps, 0);
}

int pgshare_holds(struct pgshare *ps, uint64_t id)
{
	struct pgq_lease *v;
	size_t n = ps ? store_pg_leases(ps->backend, &v) : 0;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++)
		found = v[i].id == id;
	if (n)
		free(v);
	return found;
}

int pgshare_serves(const struct pgshare *ps, const struct model *m)
{
	return m->pool && m->store && m->store == durable_pg_store(ps->d->durable);
}

/* What one pool can take now: its limits less what this daemon holds
 * leases on (claimed, running, or ending but not yet committed), so the
 * database never counts more against a daemon than its units. */
static int offer_of(struct pgshare *ps, struct model *m, struct offer *o)
{
	struct pool_stats st;
	uint64_t units, count;
	pool_stats(m->pool, &st);
	store_pg_held(ps->backend, m->name, &units, &count);
	if (st.shutting_down || (st.running_limit != POOL_NO_CAP && count >= st.running_limit))
		return 0;
	memset(o, 0, sizeof *o);
	snprintf(o->model, sizeof o->model, "%s", m->name);
	o->max_units = st.max_units;
	o->free_units = st.max_units > units ? st.max_units - units : 0;
	o->slots = st.running_limit == POOL_NO_CAP ? PGSHARE_CLAIM_CAP
		   : st.running_limit - count;
	if (o->slots > PGSHARE_CLAIM_CAP)
		o->slots = PGSHARE_CLAIM_CAP;
	return o->free_units > 0 && o->slots > 0;
}

/* post_note: build an offer from every postgres pool, send it to the thread. */
static void on_offer(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	(void)key;
	(void)arg;
	if (!live) /* discarded at exit: ps may be freed already */
		return;
	struct models *ms = ps->d->models;
	if (!ps->d->hooks.can_submit(ps->d->hooks.ctx))
		return; /* draining or stopping: claim nothing more */
	if (ps->claiming) {
		ps->again = 1;
		return;
	}
	struct op *o = calloc(1, sizeof *o);
	if (!o)
		return;
	o->kind = OP_CLAIM;
	for (size_t i = 0; i < ms->n; i++) {
		struct model *m = &ms->v[i];
		struct pool_stats st;
		if (!pgshare_serves(ps, m))
			continue;
		pool_stats(m->pool, &st);
		o->units += st.max_units == POOL_UNLIMITED ? 0 : st.max_units;
		o->running += st.running;
		if (o->noffers < PGSHARE_MAX_OFFER && offer_of(ps, m, &o->offers[o->noffers]))
			o->noffers++;
	}
	ps->again = 0;
	ps->claiming = 1;
	pgshare_push(ps, o);
}

/* Loop: start claimed task c in its pool, under its id and lease. */
static void start_claimed(struct pgshare *ps, struct pgq_claimed *c)
{
	struct model *m = models_find(ps->d->models, c->model);
	struct store_record r = { .id = c->id, .priority = c->priority, .state = POOL_QUEUED,
				  .cost = c->cost, .deadline_ns = c->deadline_ns,
				  .owner_uid = c->owner_uid, .model = c->model,
				  .attempts = (uint32_t)c->attempts, .request = c->request,
				  .request_len = c->request_len };

	if (!m || strcmp(m->name, c->model) != 0 || !m->pool) {
		log_msg(LOG_ERROR, "postgres: claimed task %llu of model %s, not served here now: "
			"it returns to the queue when its lease expires",
			(unsigned long long)c->id, c->model);
		return;
	}
	store_record_times(&r, 0); /* epoch -> the pool's clock */
	log_msg(LOG_DEBUG, "pool %s: task %llu claimed (attempt %d)", m->name,
		(unsigned long long)c->id, c->attempts + 1);
	dispatch_restore(ps->d, m, &r);
}

/* post_send: the claim's answer. */
static void on_claimed(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	(void)key;
	if (live) {
		ps->claiming = 0;
		if (o->rc < 0)
			log_msg(LOG_WARN, "postgres: claim: %s", o->err);
		for (size_t i = 0; i < o->nclaimed; i++)
			start_claimed(ps, &o->claimed[i]);
		if (o->nclaimed || ps->again)
			on_offer(ps, 0, NULL, 1);
	}
	pgshare_op_free(o);
}

/* post_send: a lease was lost (requeued, failed, cancelled elsewhere). */
static void on_lost(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	uint64_t id = (uintptr_t)arg;
	(void)key;
	if (!live)
		return;
	struct model *m = models_for_task(ps->d->models, id);
	if (m && m->pool && pool_cancel(m->pool, id) == 0)
		log_msg(LOG_WARN, "pool %s: task %llu stopped: its lease is gone (its output "
			"is discarded)", m->name, (unsigned long long)id);
}

/* post_send: the submit's answer. */
static void on_submitted(void *ctx, uint64_t key, void *arg, int live)
{
	struct op *o = arg;
	struct submit_out out = { .code = 0, .task = o->id, .prompt_tokens = o->prompt_tokens,
				  .max_tokens = o->max_tokens };
	(void)ctx;
	(void)key;
	if (!live) {
		out.code = SUBMIT_DROPPED;
	} else if (o->rc == -PGQ_E_FULL) {
		out.code = PROTO_E_QUEUE_FULL;
		snprintf(out.msg, sizeof out.msg, "shared queue of model %s is full "
			 "(max_queue_depth %llu, counted in the database)", o->model,
			 (unsigned long long)o->s.max_queued);
		out.retry_after_secs = 1;
	} else if (o->rc < 0) {
		out.code = PROTO_E_STORE;
		snprintf(out.msg, sizeof out.msg, "task not accepted: %.200s", o->err);
	}
	if (o->rc >= 0 && live)
		log_msg(LOG_INFO, "pool %s: task %llu submitted to the shared queue%s", o->model,
			(unsigned long long)o->id, o->rc == 1 ? " (a repeated key)" : "");
	o->cb.done(o->cb.ctx, &out);
	pgshare_op_free(o);
}

static uint64_t timeout_ms_of(struct model *m, const struct pool_submit *sub)
{
	uint64_t now = loop_now_ns(), t = sub->timeout_ns;
	if (sub->deadline_ns)
		t = sub->deadline_ns > now ? sub->deadline_ns - now : 1000000;
	else if (!t)
		t = pool_get_limit(m->pool, POOL_LIMIT_TIMEOUT_NS);
	return t ? (t + 999999) / 1000000 : 0;
}

void pgshare_submit(struct pgshare *ps, struct model *m, struct pool_submit *sub,
		    const char *key, const void *request, size_t request_len,
		    const struct submit_cbs *cb, uint32_t prompt_tokens, uint32_t max_tokens)
{
	struct op *o = calloc(1, sizeof *o);
	uint64_t depth = pool_get_limit(m->pool, POOL_LIMIT_MAX_QUEUE_DEPTH);

	if (sub->payload && sub->payload_free)
		sub->payload_free(sub->payload);
	sub->payload = NULL;
	if (!o || !(o->model = strdup(m->name)) || (sub->label && !(o->label = strdup(sub->label))) ||
	    (key && !(o->key = strdup(key))) ||
	    (request_len && !(o->request = malloc(request_len)))) {
		struct submit_out out = { .code = PROTO_E_NOMEM };
		snprintf(out.msg, sizeof out.msg, "out of memory");
		if (o)
			pgshare_op_free(o);
		cb->done(cb->ctx, &out);
		return;
	}
	if (request_len)
		memcpy(o->request, request, request_len);
	o->kind = OP_SUBMIT;
	o->cb = *cb;
	o->prompt_tokens = prompt_tokens;
	o->max_tokens = max_tokens;
	o->s = (struct pgq_submit){ .model = o->model, .priority = sub->priority,
				    .cost = sub->cost, .timeout_ms = timeout_ms_of(m, sub),
				    .owner_uid = sub->owner_uid, .label = o->label,
				    .max_restarts = ps->max_restarts,
				    .max_queued = depth == POOL_UNLIMITED ? 0 : depth,
				    .key = o->key, .request = o->request,
				    .request_len = request_len };
	if (depth == 0) { /* 0 rejects all, as the pool does */
		o->rc = -PGQ_E_FULL;
		on_submitted(ps, 0, o, 1);
		return;
	}
	pgshare_push(ps, o);
}

/* ---- reads of tasks held elsewhere ----------------------------------------- */

void pgshare_record_to_proto(const struct store_record *r, struct proto_task_info *out)
{
	uint64_t now = wall_ns();
	uint64_t end = r->ended_ns ? r->ended_ns : now;

	memset(out, 0, sizeof *out);
	out->id = r->id;
	out->model = r->model;
	out->priority = r->priority;
	out->state = r->state;
	out->cost = r->cost;
	out->age_secs = r->created_ns && now > r->created_ns ? (double)(now - r->created_ns) / 1e9 : 0;
	out->wait_secs = (double)((r->started_ns ? r->started_ns : end) - r->created_ns) / 1e9;
	if (r->started_ns && end > r->started_ns)
		out->run_secs = (double)(end - r->started_ns) / 1e9;
	if (r->deadline_ns) {
		out->has |= PROTO_HAS_DEADLINE;
		out->deadline_in_secs = ((double)r->deadline_ns - (double)now) / 1e9;
	}
	out->output_bytes = r->output_len;
	out->owner_uid = r->owner_uid;
	out->error = r->error;
	out->label = r->label;
}

/* post_send: the database's answer to a status or result. */
static void on_got(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	struct conn *c = live ? conn_by_num(ps->d->conns, o->conn_num) : NULL;
	struct proto_msg req, r;

	(void)key;
	proto_msg_init(&req, o->type, o->req_id);
	if (!c) {
		/* the client left */
	} else if (o->rc == -PGQ_E_NOTFOUND) {
		conn_error(c, &req, PROTO_E_NOT_FOUND, "task %llu not found",
			   (unsigned long long)o->task);
	} else if (o->rc < 0) {
		conn_error(c, &req, PROTO_E_STORE, "task %llu: %s", (unsigned long long)o->task,
			   o->err);
	} else if (c->role != ROLE_OWNER && o->rec.owner_uid != c->peer.uid) {
		conn_error(c, &req, PROTO_E_PERMISSION, "task %llu belongs to another user",
			   (unsigned long long)o->task);
	} else if (o->type == PROTO_T_STATUS) {
		proto_msg_ok(&r, &req);
		pgshare_record_to_proto(&o->rec, &r.u.task);
		conn_send(c, &r);
	} else {
		proto_msg_ok(&r, &req);
		r.u.result.task = o->task;
		r.u.result.state = o->rec.state;
		r.u.result.data = o->rec.output ? o->rec.output : "";
		r.u.result.len = o->rec.output_len;
		r.u.result.error = POOL_STATE_TERMINAL(o->rec.state) ? o->rec.error : NULL;
		conn_send(c, &r);
	}
	pgshare_op_free(o);
}

/* post_send: the database's answer to a cancel. */
static void on_cancelled(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	struct conn *c = live && !o->sh ? conn_by_num(ps->d->conns, o->conn_num) : NULL;
	struct proto_msg req, r;

	(void)key;
	if (o->sh) { /* a front's callback (HTTP) */
		pgshare_read_answer(ps, o, live);
		return;
	}
	proto_msg_init(&req, PROTO_T_CANCEL, o->req_id);
	if (!c && o->rc == 0 && live) {
		log_msg(LOG_INFO, "task %llu cancelled in the shared queue: its run client "
			"disconnected", (unsigned long long)o->task);
	} else if (!c) {
		/* the client left */
	} else if (o->rc == -PGQ_E_NOTFOUND) {
		conn_error(c, &req, PROTO_E_NOT_FOUND, "task %llu not found",
			   (unsigned long long)o->task);
	} else if (o->rc == -PGQ_E_INVAL) {
		conn_error(c, &req, PROTO_E_PERMISSION, "task %llu belongs to another user",
			   (unsigned long long)o->task);
	} else if (o->rc == -PGQ_E_STATE) {
		conn_error(c, &req, PROTO_E_STATE, "task %llu already ended (%s)",
			   (unsigned long long)o->task, pool_state_name(o->rec.state));
	} else if (o->rc < 0) {
		conn_error(c, &req, PROTO_E_STORE, "task %llu: %s", (unsigned long long)o->task,
			   o->err);
	} else {
		log_msg(LOG_INFO, "pool %s: task %llu cancelled in the shared queue by uid %u",
			o->rec.model ? o->rec.model : "?", (unsigned long long)o->task,
			(unsigned)o->uid);
		proto_msg_ok(&r, &req);
		r.u.cancelled.tasks = &o->task;
		r.u.cancelled.n_tasks = 1;
		conn_send(c, &r);
	}
	pgshare_op_free(o);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Loop: the reply to a cancel --all, the local pools' tasks and the
 * database's, each once (a task running here may be in both). */
static void on_cancelled_all(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	struct conn *c = live ? conn_by_num(ps->d->conns, o->conn_num) : NULL;
	struct proto_msg req, r;
	size_t n = 0;

	(void)key;
	if (o->nids)
		qsort(o->ids, o->nids, sizeof *o->ids, cmp_u64);
	for (size_t i = 0; i < o->nids; i++)
		if (!n || o->ids[n - 1] != o->ids[i])
			o->ids[n++] = o->ids[i];
	if (n)
		log_msg(LOG_INFO, "cancel --all by uid %u: %zu tasks, here and in the shared queue",
			(unsigned)o->uid, n);
	proto_msg_init(&req, PROTO_T_CANCEL, o->req_id);
	if (c && o->rc < 0) {
		conn_error(c, &req, PROTO_E_STORE, "cancel --all: %zu tasks cancelled, then the "
			   "shared queue failed: %s", n, o->err);
	} else if (c) {
		proto_msg_ok(&r, &req);
		r.u.cancelled.tasks = o->ids;
		r.u.cancelled.n_tasks = (uint32_t)n;
		conn_send(c, &r);
	}
	pgshare_op_free(o);
}

/* Loop: the stats reply: the local pools, then the shared queue's models
 * (those the filter selects) and every daemon's share. */
static void send_stats(struct pgshare *ps, struct conn *c, struct op *o,
		       const struct proto_msg *req)
{
	struct models *ms = ps->d->models;
	struct proto_model_stats *v = calloc(ms->n ? ms->n : 1, sizeof *v);
	struct proto_shared_stats *sh = calloc(o->nm ? o->nm : 1, sizeof *sh);
	struct proto_daemon_share *ds = calloc(o->nd ? o->nd : 1, sizeof *ds);
	struct proto_msg r;
	size_t n = 0, k = 0;

	if (v && sh && ds) {
		for (size_t i = 0; i < ms->n; i++)
			if (!o->model || !strcmp(o->model, ms->v[i].name))
				dispatch_model_stats(&ms->v[i], &v[n++]);
		for (size_t i = 0; i < o->nm; i++)
			if (!o->model || !strcmp(o->model, o->mstat[i].model))
				sh[k++] = (struct proto_shared_stats){
					o->mstat[i].model, o->mstat[i].queued, o->mstat[i].running,
					o->mstat[i].queued_units, o->mstat[i].running_units };
		for (size_t i = 0; i < o->nd; i++)
			ds[i] = (struct proto_daemon_share){ o->dstat[i].name, o->dstat[i].units,
							     o->dstat[i].running, o->dstat[i].holding,
							     o->dstat[i].seen_ms_ago };
		proto_msg_ok(&r, req);
		r.u.stats = (struct proto_stats){
			.models = v, .n_models = (uint32_t)n,
			.uptime_secs = (double)(conn_now_ms() - ps->d->start_ms) / 1e3,
			.clients = ps->d->conns->n, .rss_bytes = dispatch_rss_bytes(),
			.shared = sh, .n_shared = (uint32_t)k, .daemons = ds,
			.n_daemons = (uint32_t)o->nd };
		conn_send(c, &r);
	} else {
		conn_error(c, req, PROTO_E_NOMEM, "out of memory");
	}
	free(v);
	free(sh);
	free(ds);
}

/* post_send: the database's figures for a stats request. */
static void on_stats(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	struct conn *c = live ? conn_by_num(ps->d->conns, o->conn_num) : NULL;
	struct proto_msg req;

	(void)key;
	if (o->sh) { /* a front's callback (HTTP) */
		pgshare_read_answer(ps, o, live);
		return;
	}
	proto_msg_init(&req, PROTO_T_STATS, o->req_id);
	if (c && o->rc < 0)
		conn_error(c, &req, PROTO_E_STORE, "stats of the shared queue: %s", o->err);
	else if (c)
		send_stats(ps, c, o, &req);
	pgshare_op_free(o);
}

static int stats_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req)
{
	const char *name = req->u.filter.model;
	struct op *o;
	if (name && !models_find(ps->d->models, name))
		return 0; /* the local path says NOT_FOUND */
	if (!(o = calloc(1, sizeof *o)) || (name && !(o->model = strdup(name)))) {
		free(o);
		return 0;
	}
	o->kind = OP_STATS;
	o->conn_num = c->num;
	o->req_id = req->id;
	pgshare_push(ps, o);
	return 1;
}

/* post_send: plot queue / plot list of the whole database. */
static void on_listed(void *ctx, uint64_t key, void *arg, int live)
{
	struct pgshare *ps = ctx;
	struct op *o = arg;
	struct conn *c = live ? conn_by_num(ps->d->conns, o->conn_num) : NULL;
	struct proto_task_info *v = c && o->rc == 0 ? calloc(o->nrecs + 1, sizeof *v) : NULL;
	struct proto_msg req, r;

	(void)key;
	proto_msg_init(&req, PROTO_T_QUEUE, o->req_id);
	if (c && o->rc < 0) {
		conn_error(c, &req, PROTO_E_STORE, "the shared queue: %s", o->err);
	} else if (c && !v) {
		conn_error(c, &req, PROTO_E_NOMEM, "out of memory");
	} else if (c) {
		for (size_t i = 0; i < o->nrecs; i++) {
			pgshare_record_to_proto(&o->recs[i], &v[i]);
			v[i].position = o->pos[i];
			if (!o->owner && o->recs[i].owner_uid != o->uid)
				v[i].label = v[i].error = NULL; /* another user's: redacted */
		}
		proto_msg_ok(&r, &req);
		r.u.queue.tasks = v;
		r.u.queue.n_tasks = (uint32_t)o->nrecs;
		conn_send(c, &r);
	}
	free(v);
	pgshare_op_free(o);
}

/* Every model of the filter is on the shared queue: the database lists. */
static int all_pg(struct pgshare *ps, const char *name)
{
	struct models *ms = ps->d->models;
	struct model *m = name ? models_find(ms, name) : NULL;
	if (name)
		return m && !strcmp(m->name, name) && pgshare_serves(ps, m);
	for (size_t i = 0; i < ms->n; i++)
		if (!pgshare_serves(ps, &ms->v[i]))
			return 0;
	return ms->n > 0;
}

static int list_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req)
{
	const struct proto_filter *f = &req->u.filter;
	struct op *o = all_pg(ps, f->model) ? calloc(1, sizeof *o) : NULL;
	if (!o || (f->model && !(o->model = strdup(f->model)))) {
		free(o);
		return 0;
	}
	o->kind = OP_LIST;
	o->conn_num = c->num;
	o->req_id = req->id;
	o->uid = (uint32_t)c->peer.uid;
	o->owner = c->role == ROLE_OWNER;
	o->la = (struct pgq_list_args){ .model = o->model, .state = f->state, .all = f->all,
					.has_owner = !!(f->has & PROTO_HAS_F_OWNER),
					.owner = (uint32_t)f->owner,
					.since_secs = f->has & PROTO_HAS_F_SINCE ? f->since_secs : 0,
					.limit = f->has & PROTO_HAS_F_LIMIT && f->limit < PROTO_MAX_ARRAY
						 ? f->limit : PROTO_MAX_ARRAY };
	pgshare_push(ps, o);
	return 1;
}

int pgshare_local(struct pgshare *ps, uint64_t task)
{
	struct pool_task_info ti;
	struct model *m = models_for_task(ps->d->models, task);
	return m && m->pool && pool_task_info(m->pool, task, &ti) == 0;
}

/* The postgres models a cancel --all covers (only, or all served here). */
static int scope_models(struct pgshare *ps, const char *only, struct op *o)
{
	struct models *ms = ps->d->models;
	o->models = calloc(ms->n ? ms->n : 1, sizeof *o->models);
	if (!o->models)
		return -1;
	for (size_t i = 0; i < ms->n; i++) {
		struct model *m = &ms->v[i];
		if (!pgshare_serves(ps, m) || (only && strcmp(only, m->name) != 0))
			continue;
		if (!(o->models[o->nmodels] = strdup(m->name)))
			return -1;
		o->nmodels++;
	}
	return 0;
}

int pgshare_cancel_all(struct pgshare *ps, struct conn *c, const struct proto_msg *req,
		       uint64_t *done, size_t n)
{
	struct op *o = ps ? calloc(1, sizeof *o) : NULL;
	if (!o)
		return 0;
	if (scope_models(ps, req->u.cancel.model, o) < 0 || o->nmodels == 0) {
		pgshare_op_free(o);
		return 0; /* no postgres model: the local pools said it all */
	}
	o->kind = OP_CANCEL_ALL;
	o->conn_num = c->num;
	o->req_id = req->id;
	o->uid = (uint32_t)c->peer.uid;
	o->owner = c->role == ROLE_OWNER;
	o->ids = done;
	o->nids = n;
	pgshare_push(ps, o);
	return 1;
}

void pgshare_conn_closed(struct pgshare *ps, struct conn *c)
{
	for (size_t i = 0; ps && i < c->n_runs; i++) {
		uint64_t id = c->runs[i];
		struct model *m = models_for_task(ps->d->models, id);
		struct op *o;
		if (m && m->pool && pool_cancel(m->pool, id) == 0) {
			log_msg(LOG_INFO, "pool %s: task %llu cancelled: its run client %llu "
				"disconnected", m->name, (unsigned long long)id,
				(unsigned long long)c->num);
		} else if ((!m || !pgshare_local(ps, id)) && (o = calloc(1, sizeof *o))) {
			/* held elsewhere or still queued: in the database (no reply) */
			*o = (struct op){ .kind = OP_CANCEL, .conn_num = 0, .task = id,
					  .uid = (uint32_t)c->peer.uid,
					  .owner = c->role == ROLE_OWNER };
			pgshare_push(ps, o);
		}
	}
}

int pgshare_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req)
{
	struct pool_task_info ti;
	uint64_t task = req->u.task_ref.task;
	struct model *m;

	if (ps && req->type == PROTO_T_STATS)
		return stats_request(ps, c, req);
	if (ps && req->type == PROTO_T_QUEUE)
		return list_request(ps, c, req);
	if (ps && req->type == PROTO_T_SUBSCRIBE)
		return !pgshare_local(ps, task) && pgshare_tail_request(ps, c, req);
	if (ps && req->type == PROTO_T_CANCEL) {
		const struct proto_cancel *cr = &req->u.cancel;
		struct op *o;
		if (cr->all || cr->n_tasks != 1 || pgshare_local(ps, cr->tasks[0]) ||
		    !(o = calloc(1, sizeof *o)))
			return 0;
		*o = (struct op){ .kind = OP_CANCEL, .conn_num = c->num, .req_id = req->id,
				  .task = cr->tasks[0], .uid = (uint32_t)c->peer.uid,
				  .owner = c->role == ROLE_OWNER };
		pgshare_push(ps, o);
		return 1;
	}
	if (!ps || (req->type != PROTO_T_STATUS && req->type != PROTO_T_RESULT))
		return 0;
	m = models_for_task(ps->d->models, task);
	if (m && m->pool && pool_task_info(m->pool, task, &ti) == 0)
		return 0; /* here: the local pool answers (and follows it live) */
	struct op *o = calloc(1, sizeof *o);
	if (!o)
		return 0;
	*o = (struct op){ .kind = OP_GET, .conn_num = c->num, .req_id = req->id, .task = task,
			  .type = req->type, .wait = req->u.task_ref.wait };
	pgshare_push(ps, o);
	return 1;
}

/* ---- the claimer thread ------------------------------------------------------ */

/* Before a client's statement: a connection found broken is reset once now
 * (the beat's backoff is for the background work; a client would rather
 * not be refused for a server that is back). */
static void ensure_connected(struct pgshare *ps)
{
	char err[256];
	if (!pgq_connected(ps->q) && pgq_reconnect(ps->q, err, sizeof err) == 0) {
		log_msg(LOG_INFO, "postgres: reconnected");
		ps->backoff_ms = 0;
		ps->next_beat = 0; /* sweep and claim: notifications were lost */
	}
}

static void thread_submit(struct pgshare *ps, struct op *o)
{
	ensure_connected(ps);
	o->rc = pgq_submit(ps->q, &o->s, &o->id, o->err, sizeof o->err);
	if (o->rc == -PGQ_E_QUERY && !pgq_connected(ps->q)) {
		ensure_connected(ps); /* the server restarted since the last statement */
		o->rc = pgq_submit(ps->q, &o->s, &o->id, o->err, sizeof o->err);
	}
	if (post_send(ps->post, on_submitted, ps, o) < 0)
		log_msg(LOG_ERROR, "postgres: task %llu: its reply is lost: out of memory",
			(unsigned long long)o->id);
}

static void thread_claim(struct pgshare *ps, struct op *o)
{
	ps->units = o->units;
	ps->running = o->running;
	for (size_t i = 0; i < o->noffers && o->rc == 0; i++) {
		const struct offer *f = &o->offers[i];
		struct pgq_want w = { f->model, f->free_units, f->max_units, f->skip_limit };
		struct pgq_claimed *v = realloc(o->claimed, (o->nclaimed + f->slots) * sizeof *v);
		size_t n = 0;
		if (!v)
			break;
		o->claimed = v;
		memset(v + o->nclaimed, 0, f->slots * sizeof *v);
		o->rc = pgq_claim(ps->q, &w, 1, ps->lease_ms, v + o->nclaimed, f->slots, &n,
				  o->err, sizeof o->err);
		for (size_t k = 0; k < n; k++)
			if (store_pg_hold(ps->backend, v[o->nclaimed + k].id,
					  v[o->nclaimed + k].lease, v[o->nclaimed + k].model,
					  v[o->nclaimed + k].cost) < 0)
				log_msg(LOG_ERROR, "postgres: task %llu: lease not recorded: out "
					"of memory", (unsigned long long)v[o->nclaimed + k].id);
		o->nclaimed += n;
	}
	if (post_send(ps->post, on_claimed, ps, o) < 0)
		log_msg(LOG_ERROR, "postgres: claimed tasks lost: out of memory (their leases "
			"expire)");
}

/* Answer a read now, or keep it while it waits for the task's end. */
static void thread_get(struct pgshare *ps, struct op *o)
{
	store_record_clear(&o->rec);
	o->rc = pgq_get(ps->q, o->task, &o->rec, NULL, o->err, sizeof o->err);
	if (o->rc == 0 && o->wait && !POOL_STATE_TERMINAL(o->rec.state)) {
		o->next_ms = pgshare_mono_ms() + PGSHARE_WAIT_POLL_MS;
		o->next = ps->waiters;
		ps->waiters = o;
		return;
	}
	if (post_send(ps->post, on_got, ps, o) < 0)
		pgshare_op_free(o);
}

/* Cancel a task held elsewhere (or queued): its owner or the daemon's. */
static void thread_cancel(struct pgshare *ps, struct op *o)
{
	o->rc = pgq_get(ps->q, o->task, &o->rec, NULL, o->err, sizeof o->err);
	if (o->rc == 0 && !o->owner && o->rec.owner_uid != o->uid)
		o->rc = -PGQ_E_INVAL;
	else if (o->rc == 0)
		o->rc = pgq_cancel(ps->q, o->task, o->err, sizeof o->err);
	if (o->rc == -PGQ_E_STATE) { /* ended meanwhile: say how */
		store_record_clear(&o->rec);
		pgq_get(ps->q, o->task, &o->rec, NULL, o->err, sizeof o->err);
		o->rc = -PGQ_E_STATE;
	}
	if (post_send(ps->post, on_cancelled, ps, o) < 0)
		pgshare_op_free(o);
}

/* Cancel --all in the database: the requester's tasks (every one for the
 * daemon's owner), at most what one reply can list beside the local ones. */
static void thread_cancel_all(struct pgshare *ps, struct op *o)
{
	uint64_t *ids = NULL;
	size_t n = 0, room = o->nids < PROTO_MAX_ARRAY ? PROTO_MAX_ARRAY - o->nids : 0;
	ensure_connected(ps);
	o->rc = pgq_cancel_all(ps->q, (const char *const *)o->models, o->nmodels, !o->owner,
			       o->uid, room, &ids, &n, o->err, sizeof o->err);
	uint64_t *all = n ? realloc(o->ids, (o->nids + n) * sizeof *all) : o->ids;
	if (all) {
		memcpy(all + o->nids, ids, n * sizeof *ids);
		o->ids = all;
		o->nids += n;
	}
	free(ids);
	if (post_send(ps->post, on_cancelled_all, ps, o) < 0)
		pgshare_op_free(o);
}

static void thread_stats(struct pgshare *ps, struct op *o)
{
	o->mstat = calloc(PGSHARE_STATS_MAX, sizeof *o->mstat);
	o->dstat = calloc(PGSHARE_STATS_MAX, sizeof *o->dstat);
	if (!o->mstat || !o->dstat) {
		o->rc = -PGQ_E_NOMEM;
		snprintf(o->err, sizeof o->err, "out of memory");
	} else {
		o->rc = pgq_stats(ps->q, o->mstat, PGSHARE_STATS_MAX, &o->nm, o->dstat,
				  PGSHARE_STATS_MAX, &o->nd, o->err, sizeof o->err);
	}
	if (post_send(ps->post, on_stats, ps, o) < 0)
		pgshare_op_free(o);
}

static void thread_list(struct pgshare *ps, struct op *o)
{
	o->rc = pgq_list(ps->q, &o->la, &o->recs, &o->pos, &o->nrecs, o->err, sizeof o->err);
	if (post_send(ps->post, on_listed, ps, o) < 0)
		pgshare_op_free(o);
}

static void run_op(struct pgshare *ps, struct op *o)
{
	o->next = NULL;
	if (o->kind == OP_LIST)
		thread_list(ps, o);
	else if (o->kind == OP_STATS)
		thread_stats(ps, o);
	else if (o->kind == OP_CANCEL)
		thread_cancel(ps, o);
	else if (o->kind == OP_CANCEL_ALL)
		thread_cancel_all(ps, o);
	else if (o->kind == OP_SUBMIT)
		thread_submit(ps, o);
	else if (o->kind == OP_CLAIM)
		thread_claim(ps, o);
	else if (o->kind == OP_TAIL)
		pgshare_thread_tail(ps, o);
	else
		thread_get(ps, o);
}

static void fill_ids(struct op *due, uint64_t *ids)
{
	size_t i = 0;
	for (struct op *o = due; o; o = o->next)
		if (o->kind == OP_GET)
			ids[i++] = o->task;
}

/* Due reads waiting for their task's end: one statement for all their
 * states; those ended (or gone) are answered, the others wait again. */
static struct op *reads_ended(struct pgshare *ps, struct op *due)
{
	size_t n = 0, i = 0;
	for (struct op *o = due; o; o = o->next)
		n += o->kind == OP_GET;
	uint64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
	int *st = n ? malloc(n * sizeof *st) : NULL;
	char err[256];
	if (ids)
		fill_ids(due, ids);
	if (!n || !ids || !st || pgq_states(ps->q, ids, n, st, err, sizeof err) < 0) {
		free(ids);
		free(st);
		return due; /* read each on its own */
	}
	struct op *run = NULL;
	for (struct op *o = due, *nx; o; o = nx) {
		nx = o->next;
		if (o->kind == OP_GET && st[i++] >= 0 && !POOL_STATE_TERMINAL(st[i - 1])) {
			o->next_ms = pgshare_mono_ms() + PGSHARE_WAIT_POLL_MS;
			o->next = ps->waiters;
			ps->waiters = o;
		} else {
			o->next = run;
			run = o;
		}
	}
	free(ids);
	free(st);
	return run;
}

static void run_waiters(struct pgshare *ps)
{
	uint64_t now = pgshare_mono_ms();
	struct op *due = NULL, **pp = &ps->waiters;
	while (*pp) {
		struct op *o = *pp;
		if (o->next_ms <= now) {
			*pp = o->next;
			o->next = due;
			due = o;
		} else {
			pp = &o->next;
		}
	}
	due = reads_ended(ps, due);
	for (struct op *nx; due; due = nx) {
		nx = due->next;
		run_op(ps, due);
	}
}

/* A lease this daemon held is gone: forget it, stop the local task. */
static void lost(struct pgshare *ps, uint64_t id, uint64_t lease, const char *why)
{
	if (store_pg_drop(ps->backend, id, lease) < 0)
		return;
	log_msg(LOG_WARN, "postgres: task %llu: lease lost (%s)", (unsigned long long)id, why);
	if (post_send(ps->post, on_lost, ps, (void *)(uintptr_t)id) < 0)
		log_msg(LOG_ERROR, "postgres: task %llu keeps running here: out of memory",
			(unsigned long long)id);
}

static void renew(struct pgshare *ps)
{
	struct pgq_lease *held;
	size_t n = store_pg_leases(ps->backend, &held), nlost = 0;
	struct pgq_lost *v = n ? calloc(n, sizeof *v) : NULL;
	char err[256];

	if (n && !v) {
		free(held);
		return;
	}
	if (pgq_renew(ps->q, held, n, ps->lease_ms, ps->units, ps->running, v, &nlost, err,
		      sizeof err) < 0)
		log_msg(LOG_WARN, "postgres: heartbeat: %s", err);
	for (size_t i = 0; i < nlost; i++)
		lost(ps, v[i].id, v[i].lease, v[i].state < 0 ? "the task is gone"
		     : pool_state_name(v[i].state));
	free(held);
	free(v);
}

static void replay_done(void *ctx, void *arg, int ok)
{
	(void)ctx;
	(void)arg;
	(void)ok;
}

/* Writes that failed with the connection wait in the store: a batch of the
 * writer (an empty one will do) replays them; say when some were dropped. */
static void flush_pending(struct pgshare *ps)
{
	size_t n;
	uint64_t dropped, replayed;

	store_pg_pending(ps->backend, &n, &dropped, &replayed);
	if (replayed > ps->replayed) {
		log_msg(LOG_INFO, "postgres: %llu write(s) kept while the database was away are "
			"committed now", (unsigned long long)(replayed - ps->replayed));
		ps->replayed = replayed;
	}
	if (dropped > ps->dropped) {
		log_msg(LOG_ERROR, "postgres: the writes of %llu task(s) were dropped while the "
			"database was away (past the 64 MiB buffer): they run again once their "
			"leases expire", (unsigned long long)(dropped - ps->dropped));
		ps->dropped = dropped;
	}
	if (n && store_writer_sync(ps->d->durable->pg_writer, replay_done, ps, NULL) == 0)
		log_msg(LOG_INFO, "postgres: %zu write(s) waiting for the database: retrying", n);
}

/* The heartbeat: reconnect if down, sweep, renew, then ask for an offer. */
static void beat(struct pgshare *ps)
{
	struct pgq_swept sw = { 0 };
	char err[256];

	if (!pgq_connected(ps->q)) {
		if (pgq_reconnect(ps->q, err, sizeof err) < 0) {
			ps->backoff_ms = ps->backoff_ms ? ps->backoff_ms * 2 : ps->beat_ms;
			if (ps->backoff_ms > PGSHARE_BACKOFF_MAX_MS)
				ps->backoff_ms = PGSHARE_BACKOFF_MAX_MS;
			log_msg(LOG_WARN, "postgres: reconnect failed (next try in %llu ms): %s",
				(unsigned long long)ps->backoff_ms, err);
			ps->next_beat = pgshare_mono_ms() + ps->backoff_ms;
			return;
		}
		log_msg(LOG_INFO, "postgres: reconnected");
		ps->backoff_ms = 0;
	}
	renew(ps); /* first: our own sweep must not take leases we still hold */
	if (pgq_sweep(ps->q, &sw, err, sizeof err) < 0)
		log_msg(LOG_WARN, "postgres: sweep: %s", err);
	else if (sw.requeued || sw.failed || sw.expired || sw.timed_out)
		log_msg(LOG_INFO, "postgres: sweep: %zu requeued, %zu failed, %zu expired, "
			"%zu timed out", sw.requeued, sw.failed, sw.expired, sw.timed_out);
	flush_pending(ps);
	ps->next_beat = pgshare_mono_ms() + ps->beat_ms;
	post_note(ps->post, on_offer, ps, 0);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct pgshare *ps = arg;
	if (!strcmp(channel, "plot_submit")) {
		post_note(ps->post, on_offer, ps, 0);
	} else if (!strcmp(channel, "plot_cancel")) {
		uint64_t id = strtoull(payload, NULL, 10);
		if (id && pgshare_holds(ps, id))
			lost(ps, id, 0, "cancelled");
	}
}

static struct op *take_ops(struct pgshare *ps, int *stop)
{
	pthread_mutex_lock(&ps->mu);
	struct op *o = ps->head;
	ps->head = ps->tail = NULL;
	*stop = ps->stop;
	pthread_mutex_unlock(&ps->mu);
	return o;
}

static int poll_timeout(struct pgshare *ps)
{
	uint64_t now = pgshare_mono_ms(), until = ps->next_beat;
	for (struct op *o = ps->waiters; o; o = o->next)
		if (o->next_ms < until)
			until = o->next_ms;
	return until > now ? (int)(until - now) : 0;
}

/* Notifications that arrived while a statement ran were read by libpq with
 * its result: they wait in its queue, not on the socket, so they are taken
 * after every round of work, not only when poll() says readable. */
static void take_notifications(struct pgshare *ps)
{
	char err[256];
	if (pgq_connected(ps->q) && pgq_notifications(ps->q, on_notify, ps, err, sizeof err) < 0)
		log_msg(LOG_WARN, "postgres: notifications: %s", err);
}

static void wait_events(struct pgshare *ps)
{
	struct pollfd fds[2] = { { ps->wake_fd, POLLIN, 0 }, { pgq_fd(ps->q), POLLIN, 0 } };
	int nfds = fds[1].fd >= 0 && pgq_connected(ps->q) ? 2 : 1;

	take_notifications(ps);
	if (poll(fds, (nfds_t)nfds, poll_timeout(ps)) <= 0)
		return;
	if (fds[0].revents)
		loop_fd_drain(ps->wake_fd);
	if (nfds == 2 && fds[1].revents)
		take_notifications(ps);
}

static void *thread_main(void *arg)
{
	struct pgshare *ps = arg;
	int stop = 0;

	while (!stop) {
		for (struct op *o = take_ops(ps, &stop), *nx; o; o = nx) {
			nx = o->next;
			run_op(ps, o);
		}
		if (stop)
			break;
		if (pgshare_mono_ms() >= ps->next_beat)
			beat(ps);
		run_waiters(ps);
		wait_events(ps);
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------- */

int pgshare_open(struct pgshare **out, const struct cfg *c, struct store *backend, char *err,
		 size_t errlen)
{
	struct pgshare *ps = calloc(1, sizeof *ps);
	*out = NULL;
	if (!ps) {
		snprintf(err, errlen, "postgres: out of memory");
		return -1;
	}
	durable_pg_name(c, ps->name, sizeof ps->name);
	ps->backend = backend;
	ps->lease_ms = c->postgres.lease_ms;
	ps->beat_ms = ps->lease_ms / 3 ? ps->lease_ms / 3 : 1;
	ps->max_restarts = c->store.restart_policy == CFG_RESTART_FAIL ? 0 : 3;
	ps->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&ps->mu, NULL);
	if (ps->wake_fd < 0 || pgq_open(c->postgres.url, ps->name, &ps->q, err, errlen) < 0 ||
	    pgq_listen(ps->q, err, errlen) < 0) {
		if (ps->wake_fd < 0)
			snprintf(err, errlen, "postgres: eventfd: %s", strerror(errno));
		pgshare_free(ps);
		return -1;
	}
	*out = ps;
	return 0;
}

/* Store writer thread: a batch ended leases. */
static void released(void *ctx)
{
	pgshare_kick(ctx);
}

int pgshare_start(struct pgshare *ps, struct dispatch *d, char *err, size_t errlen)
{
	ps->d = d;
	ps->post = d->post;
	store_pg_on_release(ps->backend, released, ps);
	ps->next_beat = 0; /* sweep and claim at once */
	if (pthread_create(&ps->thread, NULL, thread_main, ps) != 0) {
		snprintf(err, errlen, "postgres: cannot start the claimer thread");
		return -1;
	}
	__atomic_store_n(&ps->started, 1, __ATOMIC_RELEASE);
	log_msg(LOG_INFO, "postgres: daemon %s claims from the shared queue (lease %llu ms, "
		"heartbeat %llu ms)", ps->name, (unsigned long long)ps->lease_ms,
		(unsigned long long)ps->beat_ms);
	return 0;
}

void pgshare_free(struct pgshare *ps)
{
	if (!ps)
		return;
	store_pg_on_release(ps->backend, NULL, NULL); /* the writer outlives ps */
	if (__atomic_load_n(&ps->started, __ATOMIC_ACQUIRE)) {
		uint64_t one = 1;
		pthread_mutex_lock(&ps->mu);
		ps->stop = 1;
		pthread_mutex_unlock(&ps->mu);
		if (write(ps->wake_fd, &one, sizeof one) < 0)
			log_msg(LOG_ERROR, "postgres: cannot wake the claimer: %s", strerror(errno));
		pthread_join(ps->thread, NULL);
	}
	for (struct op *o = ps->head, *nx; o; o = nx) {
		nx = o->next;
		if (o->kind == OP_SUBMIT)
			on_submitted(ps, 0, o, 0); /* the loop stopped: dropped */
		else
			pgshare_op_free(o);
	}
	for (struct op *o = ps->waiters, *nx; o; o = nx) {
		nx = o->next;
		pgshare_op_free(o);
	}
	pgq_free(ps->q);
	if (ps->wake_fd >= 0)
		close(ps->wake_fd);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}
