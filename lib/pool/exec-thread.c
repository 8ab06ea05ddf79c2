/*
 * exec-thread.c — the per-task thread executor: n dedicated OS threads, each
 * running one admitted task at a time by calling job().
 *
 * DESIGN
 *   start() appends the task to a ring of pending tasks and signals one idle
 *   thread; a thread pops a task, calls job() without any lock, and hands the
 *   task back with pool_task_finish() if job() did not (finish is idempotent
 *   and a reference keeps the task alive across the job), so a failing job
 *   loses neither the thread nor the units.
 *
 *   set_threads(n) (0 means 1) raises by spawning threads at once; lowering
 *   lets surplus threads exit when they are idle and nothing is pending
 *   (never killing a running job). The capacity it reports is the thread
 *   count: one task per thread. Exited threads are joined at the next
 *   set_threads or at stop, so no thread outlives pool_free.
 *
 * INVARIANTS (under x->mu)
 *   alive = threads started and not yet exited; a thread exits only when
 *   alive > target and the pending ring is empty, or at stop.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"

struct worker {
	pthread_t tid;
	int exited, joined;
};

struct texec {
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* pending work, target lowered, stop */
	struct pool_task **ring;        /* (cap) pending tasks, FIFO */
	size_t cap, head, len;
	struct worker *w;               /* (nw) every thread ever started */
	size_t nw, wcap;
	unsigned alive, target;
	int stopping;
	pool_job_fn job;
	void *job_ctx;
	void (*job_ctx_free)(void *);
};

static int ring_push(struct texec *x, struct pool_task *t)
{
	if (x->len == x->cap) {
		size_t n = x->cap ? x->cap * 2 : 64;
		struct pool_task **r = malloc(n * sizeof *r);
		if (!r)
			return -1;
		for (size_t i = 0; i < x->len; i++)
			r[i] = x->ring[(x->head + i) % x->cap];
		free(x->ring);
		x->ring = r;
		x->cap = n;
		x->head = 0;
	}
	x->ring[(x->head + x->len++) % x->cap] = t;
	return 0;
}

static struct pool_task *ring_pop(struct texec *x)
{
	struct pool_task *t = x->ring[x->head];
	x->head = (x->head + 1) % x->cap;
	x->len--;
	return t;
}

/* The worker thread this code runs on, and whether it is handing a task
 * back after its job returned: then the first task the pool admits from that
 * hand-back goes straight to this same thread (tls_next), which runs it
 * next: no ring, no executor lock, no waking an idle thread to race it. */
static _Thread_local struct texec *tls_self;
static _Thread_local int tls_claim;
static _Thread_local struct pool_task *tls_next;

static void run_one(struct texec *x, struct pool_task *t)
{
	char err[256] = "";
	pool_task_ref(t);
	int rc = x->job(x->job_ctx, t, err, sizeof err);
	if (rc != 0 && !err[0])
		strcpy(err, "job failed");
	tls_claim = 1;
	pool_task_finish(t, rc == 0, err); /* no-op if the job already did */
	tls_claim = 0;
	pool_task_unref(t);
}

struct worker_arg {
	struct texec *x;
	size_t slot;
};

static void *worker_main(void *arg)
{
	struct worker_arg wa = *(struct worker_arg *)arg;
	struct texec *x = wa.x;
	free(arg);
	tls_self = x;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (!x->len && !x->stopping && x->alive <= x->target)
			pthread_cond_wait(&x->cv, &x->mu);
		if (!x->len)
			break; /* stopping, or surplus after a lowering */
		struct pool_task *t = ring_pop(x);
		pthread_mutex_unlock(&x->mu);
		do {
			tls_next = NULL;
			run_one(x, t);
		} while ((t = tls_next)); /* handed over by our own hand-back */
		pthread_mutex_lock(&x->mu);
	}
	x->alive--;
	x->w[wa.slot].exited = 1;
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static int texec_start(void *ctx, struct pool_task *t)
{
	struct texec *x = ctx;
	if (tls_self == x && tls_claim) {
		tls_claim = 0;
		tls_next = t; /* this worker runs it next (see run_one) */
		return 0;
	}
	pthread_mutex_lock(&x->mu);
	int rc = ring_push(x, t);
	if (rc == 0)
		pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return rc < 0 ? -POOL_E_NOMEM : 0;
}

/* Join threads that have exited; called without x->mu. */
static void join_exited(struct texec *x)
{
	pthread_mutex_lock(&x->mu);
	size_t nw = x->nw;
	pthread_mutex_unlock(&x->mu);
	for (size_t i = 0; i < nw; i++) {
		pthread_mutex_lock(&x->mu);
		int ready = x->w[i].exited && !x->w[i].joined;
		pthread_t tid = x->w[i].tid;
		if (ready)
			x->w[i].joined = 1;
		pthread_mutex_unlock(&x->mu);
		if (ready)
			pthread_join(tid, NULL);
	}
}

/* Under x->mu: start one more thread. */
static int spawn(struct texec *x)
{
	if (x->nw == x->wcap) {
		size_t n = x->wcap ? x->wcap * 2 : 8;
		struct worker *w = realloc(x->w, n * sizeof *w);
		if (!w)
			return -1;
		x->w = w;
		x->wcap = n;
	}
	struct worker_arg *a = malloc(sizeof *a);
	if (!a)
		return -1;
	a->x = x;
	a->slot = x->nw;
	memset(&x->w[x->nw], 0, sizeof x->w[0]);
	if (pthread_create(&x->w[x->nw].tid, NULL, worker_main, a)) {
		free(a);
		return -1;
	}
	x->nw++;
	x->alive++;
	return 0;
}

static int texec_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	struct texec *x = ctx;
	int rc = 0;

	if (n == 0)
		n = 1;
	join_exited(x);
	pthread_mutex_lock(&x->mu);
	x->target = n;
	while (x->alive < n && rc == 0)
		rc = spawn(x);
	if (rc < 0)
		x->target = x->alive; /* keep what we have */
	pthread_cond_broadcast(&x->cv); /* surplus threads re-check */
	*capacity = x->target;
	pthread_mutex_unlock(&x->mu);
	return x->target ? 0 : -POOL_E_NOMEM;
}

static void texec_stop(void *ctx)
{
	struct texec *x = ctx;
	pthread_mutex_lock(&x->mu);
	x->stopping = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	for (size_t i = 0; i < x->nw; i++) {
		if (!x->w[i].joined) {
			pthread_join(x->w[i].tid, NULL);
			x->w[i].joined = 1;
		}
	}
}

static void texec_free(void *ctx)
{
	struct texec *x = ctx;
	if (!x)
		return;
	if (x->job_ctx_free)
		x->job_ctx_free(x->job_ctx);
	free(x->ring);
	free(x->w);
	pthread_cond_destroy(&x->cv);
	pthread_mutex_destroy(&x->mu);
	free(x);
}

static const struct pool_executor_ops texec_ops = {
	.start = texec_start,
	.cancel = NULL, /* jobs poll pool_task_cancelled() / pool_task_wait_cancel() */
	.set_threads = texec_set_threads,
	.stop = texec_stop,
	.free = texec_free,
};

/* Failure to allocate yields an executor whose set_threads fails, so
 * pool_new reports it; ops is never NULL. */
static int nil_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	*capacity = 0;
	return -POOL_E_NOMEM;
}
static int nil_start(void *ctx, struct pool_task *t) { return -POOL_E_NOMEM; }
static void nil_free(void *ctx) {}
static const struct pool_executor_ops nil_ops = {
	.start = nil_start, .set_threads = nil_set_threads, .free = nil_free,
};

struct pool_executor pool_thread_executor_new(pool_job_fn job, void *job_ctx,
					     void (*job_ctx_free)(void *))
{
	struct pool_executor e = { &nil_ops, NULL };
	struct texec *x = job ? calloc(1, sizeof *x) : NULL;
	if (!x || pthread_mutex_init(&x->mu, NULL)) {
		free(x);
		goto fail;
	}
	if (pthread_cond_init(&x->cv, NULL)) {
		pthread_mutex_destroy(&x->mu);
		free(x);
		goto fail;
	}
	x->job = job;
	x->job_ctx = job_ctx;
	x->job_ctx_free = job_ctx_free;
	e.ops = &texec_ops;
	e.ctx = x;
	return e;
fail:
	if (job_ctx_free)
		job_ctx_free(job_ctx);
	return e;
}
