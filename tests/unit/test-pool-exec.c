/*
 * test-pool-exec.c — the pool with real executor threads: the per-task
 * thread executor (job errors, jobs that do not finish, threads up/down,
 * drain), the synthetic executor, a batching executor that runs many tasks
 * on one thread, live subscribers, and the timer thread.
 *
 * Jobs block on a test-owned latch until the test opens it, so what runs
 * when is decided by the test. Every wait is bounded (WAIT_NS) so a broken
 * pool fails the test instead of hanging it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "plot/pool.h"

#define WAIT_NS (10ull * 1000000000ull)
#define MS (1000000ull)

/* ---- latch ---------------------------------------------------------------- */

struct latch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int entered; /* jobs that reached the latch */
};

static struct latch g_latch = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

static void latch_reset(void)
{
	pthread_mutex_lock(&g_latch.mu);
	g_latch.open = 0;
	g_latch.entered = 0;
	pthread_mutex_unlock(&g_latch.mu);
}

static void latch_open(void)
{
	pthread_mutex_lock(&g_latch.mu);
	g_latch.open = 1;
	pthread_cond_broadcast(&g_latch.cv);
	pthread_mutex_unlock(&g_latch.mu);
}

/* Announce arrival without waiting for the latch. */
static void latch_enter(void)
{
	pthread_mutex_lock(&g_latch.mu);
	g_latch.entered++;
	pthread_cond_broadcast(&g_latch.cv);
	pthread_mutex_unlock(&g_latch.mu);
}

static void latch_pass(void)
{
	pthread_mutex_lock(&g_latch.mu);
	g_latch.entered++;
	pthread_cond_broadcast(&g_latch.cv);
	while (!g_latch.open)
		pthread_cond_wait(&g_latch.cv, &g_latch.mu);
	pthread_mutex_unlock(&g_latch.mu);
}

/* Wait until n jobs have reached the latch. */
static void latch_wait_entered(int n)
{
	pthread_mutex_lock(&g_latch.mu);
	while (g_latch.entered < n)
		pthread_cond_wait(&g_latch.cv, &g_latch.mu);
	pthread_mutex_unlock(&g_latch.mu);
}

/* ---- the job ----------------------------------------------------------------- */

enum mode {
	M_LATCH_OK,       /* wait on the latch, succeed */
	M_EMIT_FAIL,      /* emit "x", then return an error */
	M_NO_FINISH,      /* return 0 without finishing */
	M_FINISH_ITSELF,  /* emit, finish, return */
	M_WAIT_CANCEL,    /* wait for the cancel flag, return */
};

static int job(void *ctx, struct pool_task *t, char *err, size_t errlen)
{
	int mode = (int)(intptr_t)pool_task_payload(t);
	switch (mode) {
	case M_LATCH_OK:
		latch_pass();
		return pool_task_emit(t, "ok", 2);
	case M_EMIT_FAIL:
		pool_task_emit(t, "x", 1);
		snprintf(err, errlen, "job broke mid-way");
		return 1;
	case M_NO_FINISH:
		return 0;
	case M_FINISH_ITSELF:
		pool_task_emit(t, "self", 4);
		pool_task_finish(t, 1, NULL);
		return 0;
	case M_WAIT_CANCEL:
		latch_enter();
		while (!pool_task_wait_cancel(t, WAIT_NS))
			;
		pool_task_emit(t, "partial", 7);
		return 0;
	}
	return 1;
}

/* The thread executor's capacity is its thread count: no cap of our own. */
static struct pool *mk_thread(unsigned threads, uint64_t timeout_ns)
{
	struct pool_config c = { .name = "thr", .max_units = 100, .max_queue_depth = 1000,
				 .max_running = POOL_NO_CAP, .threads = threads,
				 .timeout_ns = timeout_ns,
				 .retention_ns = 60ull * 1000 * MS };
	char err[256];
	struct pool *p = pool_new(&c, pool_thread_executor_new(job, NULL, NULL), err, sizeof err);
	if (!p)
		fail_msg("%s", err);
	latch_reset();
	return p;
}

static uint64_t sub(struct pool *p, int mode, uint64_t cost)
{
	struct pool_submit s = { .priority = 1, .cost = cost, .payload = (void *)(intptr_t)mode };
	uint64_t id = 0;
	assert_int_equal(pool_submit(p, &s, &id), 0);
	return id;
}

static int wait_state(struct pool *p, uint64_t id)
{
	int state = -1;
	assert_int_equal(pool_wait(p, id, WAIT_NS, &state), 0);
	return state;
}

static void result_is(struct pool *p, uint64_t id, const char *want)
{
	char *out;
	size_t len;
	int state;
	assert_int_equal(pool_result(p, id, &out, &len, &state), 0);
	assert_string_equal(out, want);
	free(out);
}

static void check_inv(struct pool *p)
{
	char err[256] = "";
	if (pool_check_invariants(p, err, sizeof err) != 0)
		fail_msg("%s", err);
}

/* ---- thread executor ---------------------------------------------------------- */

static void t_job_error_midway(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t a = sub(p, M_EMIT_FAIL, 5);
	assert_int_equal(wait_state(p, a), POOL_FAILED);
	result_is(p, a, "x");
	struct pool_task_info ti;
	pool_task_info(p, a, &ti);
	assert_string_equal(ti.error, "job broke mid-way");
	/* the single worker survived and the units came back */
	latch_open();
	uint64_t b = sub(p, M_LATCH_OK, 100);
	assert_int_equal(wait_state(p, b), POOL_DONE);
	struct pool_stats ps;
	pool_stats(p, &ps);
	assert_int_equal(ps.used_units, 0);
	assert_int_equal(ps.failed, 1);
	pool_free(p);
}

static void t_job_without_finish(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t a = sub(p, M_NO_FINISH, 100);
	uint64_t b = sub(p, M_FINISH_ITSELF, 100);
	assert_int_equal(wait_state(p, a), POOL_DONE);
	assert_int_equal(wait_state(p, b), POOL_DONE);
	result_is(p, b, "self");
	struct pool_stats ps;
	pool_stats(p, &ps);
	assert_int_equal(ps.completed, 2);
	assert_int_equal(ps.used_units, 0);
	pool_free(p);
}

static void t_thread_threads_up_down(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t id[4];
	for (int i = 0; i < 4; i++)
		id[i] = sub(p, M_LATCH_OK, 1);
	latch_wait_entered(1);
	struct pool_stats ps;
	pool_stats(p, &ps);
	assert_int_equal(ps.running, 1);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 3), 0);
	latch_wait_entered(3); /* two more threads picked up work at once */
	pool_stats(p, &ps);
	assert_int_equal(ps.running, 3);
	assert_int_equal(ps.threads, 3);
	assert_int_equal(ps.running_limit, 3);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 1), 0);
	pool_stats(p, &ps);
	assert_int_equal(ps.running, 3); /* nothing killed */
	check_inv(p);
	latch_open();
	for (int i = 0; i < 4; i++)
		assert_int_equal(wait_state(p, id[i]), POOL_DONE);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 2), 0);
	uint64_t x = sub(p, M_NO_FINISH, 1);
	assert_int_equal(wait_state(p, x), POOL_DONE);
	pool_free(p);
}

/* Polls the snapshot (bounded) until shutdown has begun: the only way a test
 * thread can observe a shutdown running in another thread. */
static void wait_shutting_down(struct pool *p)
{
	struct pool_stats ps;
	struct timespec ts = { 0, 200000 };
	for (int i = 0; i < 50000; i++) {
		pool_stats(p, &ps);
		if (ps.shutting_down)
			return;
		nanosleep(&ts, NULL);
	}
	fail_msg("shutdown never began");
}

struct shut_arg {
	struct pool *p;
	int mode, rc;
};

static void *shut_main(void *a)
{
	struct shut_arg *sa = a;
	sa->rc = pool_shutdown(sa->p, sa->mode, WAIT_NS);
	return NULL;
}

static void t_shutdown_drain(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t id[5];
	for (int i = 0; i < 5; i++)
		id[i] = sub(p, M_LATCH_OK, 1);
	latch_wait_entered(1);
	struct shut_arg sa = { p, POOL_SHUTDOWN_DRAIN, -1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, shut_main, &sa), 0);
	wait_shutting_down(p);
	struct pool_submit s = { .priority = 1, .cost = 1 };
	uint64_t x;
	assert_int_equal(pool_submit(p, &s, &x), -POOL_E_SHUTDOWN);
	latch_open(); /* only now can anything finish: drain must run all five */
	pthread_join(th, NULL);
	assert_int_equal(sa.rc, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(wait_state(p, id[i]), POOL_DONE);
	pool_free(p);
}

static void t_shutdown_cancel_running(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t r = sub(p, M_WAIT_CANCEL, 1), q = sub(p, M_LATCH_OK, 1);
	latch_wait_entered(1);
	assert_int_equal(pool_shutdown(p, POOL_SHUTDOWN_CANCEL, WAIT_NS), 0);
	assert_int_equal(wait_state(p, r), POOL_CANCELLED);
	result_is(p, r, "partial");
	assert_int_equal(wait_state(p, q), POOL_CANCELLED);
	pool_free(p);
}

/* pool_free alone cancels and joins everything: no thread, task or unit leaks
 * (ASan/TSan would report). */
static void t_free_with_work(void **st)
{
	struct pool *p = mk_thread(2, 0);
	sub(p, M_WAIT_CANCEL, 1);
	sub(p, M_WAIT_CANCEL, 1);
	for (int i = 0; i < 10; i++)
		sub(p, M_LATCH_OK, 1);
	latch_wait_entered(2);
	pool_free(p);
}

static void t_waiter_gives_up(void **st)
{
	struct pool *p = mk_thread(1, 0);
	uint64_t a = sub(p, M_LATCH_OK, 1);
	int state;
	assert_int_equal(pool_wait(p, a, 1 * MS, &state), -POOL_E_TIMEDOUT);
	struct pool_sub *s;
	char *d;
	size_t len;
	assert_int_equal(pool_subscribe(p, a, &s), 0);
	assert_int_equal(pool_sub_next(s, &d, &len, &state, 1 * MS), -POOL_E_TIMEDOUT);
	latch_open();
	assert_int_equal(pool_sub_next(s, &d, &len, &state, WAIT_NS), POOL_SUB_CHUNK);
	assert_memory_equal(d, "ok", 2);
	free(d);
	assert_int_equal(pool_sub_next(s, &d, &len, &state, WAIT_NS), POOL_SUB_END);
	assert_int_equal(state, POOL_DONE);
	pool_sub_close(s);
	result_is(p, a, "ok");
	pool_free(p);
}

/* ---- timer thread (real clock) --------------------------------------------------- */

static void t_timer_thread(void **st)
{
	struct pool *p = mk_thread(1, 0);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now); /* the pool's default clock */
	/* one absolute deadline for both, so q cannot slip in between r's
	 * timeout and its own expiry */
	uint64_t at = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec + 20 * MS;
	struct pool_submit s = { .priority = 1, .cost = 1, .deadline_ns = at,
				 .payload = (void *)(intptr_t)M_WAIT_CANCEL };
	uint64_t r, q;
	assert_int_equal(pool_submit(p, &s, &r), 0);
	s.payload = (void *)(intptr_t)M_LATCH_OK;
	assert_int_equal(pool_submit(p, &s, &q), 0);
	latch_open();
	/* nobody ticks: the timer thread must wake at the deadline by itself */
	assert_int_equal(wait_state(p, q), POOL_EXPIRED);
	assert_int_equal(wait_state(p, r), POOL_TIMEOUT);
	result_is(p, r, "partial");
	pool_free(p);
}

/* ---- synthetic executor ----------------------------------------------------------- */

static struct pool *mk_synth(double tps)
{
	struct pool_config c = { .name = "syn", .max_units = 10, .max_queue_depth = 10,
				 .max_running = 2, .retention_ns = 60ull * 1000 * MS };
	char err[256];
	struct pool *p = pool_new(&c, pool_synthetic_executor_new(tps), err, sizeof err);
	if (!p)
		fail_msg("%s", err);
	return p;
}

static uint64_t sub_synth(struct pool *p, const char *prompt, uint32_t max_tokens)
{
	struct pool_submit s = { .priority = 1, .cost = 1,
				 .payload = pool_synth_payload_new(prompt, max_tokens),
				 .payload_free = pool_synth_payload_free };
	uint64_t id;
	assert_int_equal(pool_submit(p, &s, &id), 0);
	return id;
}

static void next_chunk_is(struct pool_sub *s, const char *want)
{
	char *d;
	size_t len;
	int state;
	assert_int_equal(pool_sub_next(s, &d, &len, &state, WAIT_NS), POOL_SUB_CHUNK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(d, want, len);
	free(d);
}

static void t_synthetic(void **st)
{
	struct pool *p = mk_synth(2000);
	uint64_t a = sub_synth(p, "  hello big\tworld", 0);
	struct pool_sub *s;
	assert_int_equal(pool_subscribe(p, a, &s), 0);
	next_chunk_is(s, "hello ");
	next_chunk_is(s, "big\t");
	next_chunk_is(s, "world");
	char *d;
	size_t len;
	int state;
	assert_int_equal(pool_sub_next(s, &d, &len, &state, WAIT_NS), POOL_SUB_END);
	assert_int_equal(state, POOL_DONE);
	pool_sub_close(s);

	uint64_t b = sub_synth(p, "one two three", 2);
	assert_int_equal(wait_state(p, b), POOL_DONE);
	result_is(p, b, "one two ");
	uint64_t c = sub_synth(p, "!fail after this", 0);
	assert_int_equal(wait_state(p, c), POOL_FAILED);
	result_is(p, c, "!fail ");
	uint64_t e = sub_synth(p, "", 0);
	assert_int_equal(wait_state(p, e), POOL_DONE);
	result_is(p, e, "");
	pool_free(p);
}

static void t_synthetic_cancel(void **st)
{
	struct pool *p = mk_synth(100); /* 5 s for all 500 words: the cancel must cut it short */
	char prompt[4096] = "";
	for (int i = 0; i < 500; i++)
		strcat(prompt, "w ");
	uint64_t a = sub_synth(p, prompt, 0);
	struct pool_sub *s;
	assert_int_equal(pool_subscribe(p, a, &s), 0);
	next_chunk_is(s, "w ");
	assert_int_equal(pool_cancel(p, a), 0);
	assert_int_equal(wait_state(p, a), POOL_CANCELLED);
	struct pool_task_info ti;
	pool_task_info(p, a, &ti);
	assert_true(ti.chunks >= 1 && ti.chunks < 500);
	pool_sub_close(s);
	pool_free(p);
}

/* Batch-style: many streams on few driver threads, drivers added and retired
 * while the streams run; every stream comes out whole, nothing is cut. */
static void t_synthetic_drivers(void **st)
{
	struct pool_config c = { .name = "syn", .max_units = 1000, .max_queue_depth = 1000,
				 .max_running = POOL_NO_CAP, .threads = 2,
				 .retention_ns = 60ull * 1000 * MS };
	char err[256], prompt[512] = "";
	struct pool *p = pool_new(&c, pool_synthetic_executor_new(500), err, sizeof err);
	assert_non_null(p);
	for (int i = 0; i < 40; i++) /* 80 ms per stream at 500 words/s */
		snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "w%d ", i);
	uint64_t id[50];
	for (int i = 0; i < 50; i++)
		id[i] = sub_synth(p, prompt, 0);
	struct pool_stats ps;
	pool_stats(p, &ps);
	assert_int_equal(ps.capacity, POOL_NO_CAP); /* no bound of its own */
	assert_int_equal(ps.running_limit, POOL_NO_CAP);
	assert_int_equal(ps.running + ps.completed, 50); /* all admitted at once */
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 5), 0);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 1), 0); /* 4 hand over */
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_THREADS, 3), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(wait_state(p, id[i]), POOL_DONE);
		result_is(p, id[i], prompt);
	}
	check_inv(p);
	pool_free(p);
}

/* A running stream past its deadline ends TIMEOUT with its partial output. */
static void t_synthetic_timeout(void **st)
{
	struct pool *p = mk_synth(100); /* 10 ms per word, 5 s for all */
	char prompt[4096] = "";
	for (int i = 0; i < 500; i++)
		strcat(prompt, "w ");
	struct pool_submit s = { .priority = 1, .cost = 1, .timeout_ns = 50 * MS,
				 .payload = pool_synth_payload_new(prompt, 0),
				 .payload_free = pool_synth_payload_free };
	uint64_t id;
	assert_int_equal(pool_submit(p, &s, &id), 0);
	assert_int_equal(wait_state(p, id), POOL_TIMEOUT);
	struct pool_task_info ti;
	pool_task_info(p, id, &ti);
	assert_true(ti.chunks >= 1 && ti.chunks < 500);
	pool_free(p);
}

/* ---- a batching executor: many tasks at once on ONE thread ------------------------ */

struct slot {
	struct pool_task *t;
	int steps;
};

struct batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_task *incoming[64]; /* started, not yet in the batch (under mu) */
	size_t nin;
	int stop, gate;                 /* the engine waits for gate before stepping */
	struct slot active[64];         /* engine thread only */
	size_t n;
	size_t max_active;              /* most tasks in one step */
	int threads_seen;               /* distinct threads that ran steps: must stay 1 */
	pthread_t runner;
	pthread_t th;
};

/* One step of every active task: emit its next token, finish after 3. Runs
 * without the executor lock: finish() may admit and call start() right here. */
static void batch_step(struct batch *b)
{
	if (b->n > b->max_active)
		b->max_active = b->n;
	if (!b->threads_seen || !pthread_equal(b->runner, pthread_self())) {
		b->threads_seen++;
		b->runner = pthread_self();
	}
	for (size_t i = 0; i < b->n;) {
		struct slot *sl = &b->active[i];
		if (pool_task_cancelled(sl->t) || sl->steps == 3) {
			pool_task_finish(sl->t, 1, NULL);
			*sl = b->active[--b->n];
			continue;
		}
		char tok[2] = { (char)('a' + sl->steps++), 0 };
		pool_task_emit(sl->t, tok, 1);
		i++;
	}
}

static void *batch_main(void *arg)
{
	struct batch *b = arg;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		while (b->gate && b->nin)
			b->active[b->n++] = (struct slot){ b->incoming[--b->nin], 0 };
		if (!b->n) {
			pthread_cond_wait(&b->cv, &b->mu);
			continue;
		}
		pthread_mutex_unlock(&b->mu);
		batch_step(b);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

static int batch_start(void *ctx, struct pool_task *t)
{
	struct batch *b = ctx;
	pthread_mutex_lock(&b->mu);
	b->incoming[b->nin++] = t;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static int batch_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	if (n > 1)
		return -POOL_E_INVALID; /* one engine thread, whatever is asked */
	*capacity = 8;            /* eight sequences in the batch */
	return 0;
}

static void batch_stop(void *ctx)
{
	struct batch *b = ctx;
	pthread_mutex_lock(&b->mu);
	b->stop = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->th, NULL);
}

static void batch_free(void *ctx) { free(ctx); }

static const struct pool_executor_ops batch_ops = {
	batch_start, NULL, batch_set_threads, batch_stop, batch_free,
};

static void t_batching_executor(void **st)
{
	struct batch *b = calloc(1, sizeof *b);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	assert_int_equal(pthread_create(&b->th, NULL, batch_main, b), 0);
	struct pool_config c = { .name = "batch", .max_units = 100, .max_queue_depth = 100,
				 .max_running = POOL_NO_CAP, .retention_ns = 60ull * 1000 * MS };
	char err[256];
	struct pool *p = pool_new(&c, (struct pool_executor){ &batch_ops, b }, err, sizeof err);
	assert_non_null(p);
	uint64_t id[20];
	for (int i = 0; i < 20; i++) {
		struct pool_submit s = { .priority = 1, .cost = 1 };
		assert_int_equal(pool_submit(p, &s, &id[i]), 0);
	}
	pthread_mutex_lock(&b->mu); /* everything admitted is queued: go */
	b->gate = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(wait_state(p, id[i]), POOL_DONE);
		result_is(p, id[i], "abc");
	}
	pthread_mutex_lock(&b->mu);
	assert_int_equal(b->max_active, 8); /* eight sequences in one batch */
	assert_int_equal(b->threads_seen, 1);
	pthread_mutex_unlock(&b->mu);
	pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_job_error_midway),
		cmocka_unit_test(t_job_without_finish),
		cmocka_unit_test(t_thread_threads_up_down),
		cmocka_unit_test(t_shutdown_drain),
		cmocka_unit_test(t_shutdown_cancel_running),
		cmocka_unit_test(t_free_with_work),
		cmocka_unit_test(t_waiter_gives_up),
		cmocka_unit_test(t_timer_thread),
		cmocka_unit_test(t_synthetic),
		cmocka_unit_test(t_synthetic_cancel),
		cmocka_unit_test(t_synthetic_drivers),
		cmocka_unit_test(t_synthetic_timeout),
		cmocka_unit_test(t_batching_executor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
