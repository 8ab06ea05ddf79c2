/*
 * test-pool.c — the pool's rules, one test each, fully deterministic.
 *
 * The executor here is a "manual" one: start() only records the task, and the
 * test itself emits output and finishes tasks from the test thread, so every
 * interleaving is chosen by the test. The clock is a fake (manual_tick), so
 * deadlines and retention move only when the test advances it and calls
 * pool_tick(). No threads, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/store.h"

/* ---- manual executor and fake clock ------------------------------------ */

#define MX_MAX 512

struct mx {
	struct pool_task *started[MX_MAX]; /* in start order */
	size_t nstarted;
	int start_rc;       /* returned by start() */
	unsigned nudges;    /* ops->cancel calls */
	unsigned threads;   /* last set_threads */
	unsigned ncalls;    /* set_threads calls */
	unsigned cap;       /* capacity set_threads reports; 0 = POOL_NO_CAP */
	int threads_rc;     /* returned by set_threads (after pool_new) */
	int stopped;
};

static int mx_start(void *ctx, struct pool_task *t)
{
	struct mx *m = ctx;
	if (m->start_rc)
		return m->start_rc;
	assert_true(m->nstarted < MX_MAX);
	pool_task_ref(t); /* so the test may look at it after pruning */
	m->started[m->nstarted++] = t;
	return 0;
}

static void mx_cancel(void *ctx, struct pool_task *t) { ((struct mx *)ctx)->nudges++; }

static int mx_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	struct mx *m = ctx;
	m->ncalls++;
	if (m->threads_rc)
		return m->threads_rc;
	m->threads = n;
	*capacity = m->cap ? m->cap : POOL_NO_CAP;
	return 0;
}

static void mx_stop(void *ctx) { ((struct mx *)ctx)->stopped = 1; }
static void mx_free(void *ctx)
{
	struct mx *m = ctx;
	for (size_t i = 0; i < m->nstarted; i++)
		pool_task_unref(m->started[i]);
	free(m);
}

static const struct pool_executor_ops mx_ops = {
	mx_start, mx_cancel, mx_set_threads, mx_stop, mx_free,
};

static uint64_t fake_now = 1000;
static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

struct fx {
	struct pool *p;
	struct mx *m;
	struct pool_config cfg;
};

static void cfg_default(struct pool_config *c)
{
	memset(c, 0, sizeof *c);
	c->name = "test";
	c->max_units = 100;
	c->max_queue_depth = 100;
	c->max_running = 1;
	c->retention_ns = 1000000;
	c->clock.now_ns = fake_clock;
	c->clock.ctx = &fake_now;
	c->manual_tick = 1;
}

static struct pool *mk(struct fx *f, const struct pool_config *c)
{
	char err[256] = "";
	f->m = calloc(1, sizeof *f->m);
	assert_non_null(f->m);
	f->p = pool_new(c, (struct pool_executor){ &mx_ops, f->m }, err, sizeof err);
	assert_non_null(f->p);
	return f->p;
}

/* The common case: a pool with cfg_default()'s settings. */
static struct pool *mk_default(struct fx *f)
{
	struct pool_config c;

	cfg_default(&c);
	return mk(f, &c);
}

static uint64_t sub(struct pool *p, int prio, uint64_t cost)
{
	struct pool_submit s = { .priority = prio, .cost = cost };
	uint64_t id = 0;
	assert_int_equal(pool_submit(p, &s, &id), 0);
	return id;
}

static int sub_rc(struct pool *p, int prio, uint64_t cost)
{
	struct pool_submit s = { .priority = prio, .cost = cost };
	uint64_t id = 0;
	return pool_submit(p, &s, &id);
}

static struct pool_task *mx_task(struct mx *m, uint64_t id)
{
	for (size_t i = 0; i < m->nstarted; i++)
		if (pool_task_id(m->started[i]) == id)
			return m->started[i];
	fail_msg("task %llu was never started", (unsigned long long)id);
	return NULL;
}

static int was_started(struct mx *m, uint64_t id)
{
	for (size_t i = 0; i < m->nstarted; i++)
		if (pool_task_id(m->started[i]) == id)
			return 1;
	return 0;
}

static void fin(struct fx *f, uint64_t id, int ok)
{
	pool_task_finish(mx_task(f->m, id), ok, ok ? NULL : "boom");
}

static int state_of(struct pool *p, uint64_t id)
{
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(p, id, &ti), 0);
	return ti.state;
}

static void check_inv(struct pool *p)
{
	char err[256] = "";
	if (pool_check_invariants(p, err, sizeof err) != 0)
		fail_msg("%s", err);
}

static void done(struct fx *f)
{
	check_inv(f->p);
	/* finish whatever still runs so pool_free's shutdown does not wait */
	pool_shutdown(f->p, POOL_SHUTDOWN_CANCEL, 0);
	for (size_t i = 0; i < f->m->nstarted; i++)
		pool_task_finish(f->m->started[i], 0, "teardown"); /* no-op if finished */
	pool_free(f->p);
}

/* ---- names ------------------------------------------------------------- */

static void t_names(void **st)
{
	assert_string_equal(pool_err_name(-POOL_E_QUEUE_FULL), "QUEUE_FULL");
	assert_string_equal(pool_err_name(POOL_E_CAPACITY), "CAPACITY");
	assert_string_equal(pool_prio_name(POOL_PRIO_CRITICAL), "critical");
	assert_int_equal(pool_prio_parse("high"), POOL_PRIO_HIGH);
	assert_int_equal(pool_prio_parse("urgent"), -1);
	assert_string_equal(pool_state_name(POOL_TIMEOUT), "timeout");
	assert_int_equal(pool_state_parse("expired"), POOL_EXPIRED);
	assert_int_equal(pool_state_parse(NULL), -1);
}

/* ---- ordering ------------------------------------------------------------ */

static void t_priority_order(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t blocker = sub(f.p, POOL_PRIO_LOW, 1);
	uint64_t lo = sub(f.p, POOL_PRIO_LOW, 1);
	uint64_t no = sub(f.p, POOL_PRIO_NORMAL, 1);
	uint64_t hi = sub(f.p, POOL_PRIO_HIGH, 1);
	uint64_t cr = sub(f.p, POOL_PRIO_CRITICAL, 1);
	assert_int_equal(f.m->nstarted, 1);
	uint64_t want[] = { cr, hi, no, lo };
	fin(&f, blocker, 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(f.m->nstarted, (size_t)i + 2);
		assert_int_equal(pool_task_id(f.m->started[i + 1]), want[i]);
		fin(&f, want[i], 1);
	}
	done(&f);
}

static void t_fifo_within_level(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t ids[6];
	for (int i = 0; i < 6; i++)
		ids[i] = sub(f.p, POOL_PRIO_NORMAL, 1);
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, ids[3], &ti), 0);
	assert_int_equal(ti.position, 3); /* ids[0] runs; 1, 2, 3 queued */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pool_task_id(f.m->started[i]), ids[i]);
		fin(&f, ids[i], 1);
	}
	done(&f);
}

/* ---- the big-task rule ------------------------------------------------------ */

/* max_units 10, skip_limit 3: A (6) runs, big B (8) does not fit. */
static void big_setup(struct fx *f, uint64_t *a, uint64_t *b, uint64_t s[5])
{
	struct pool_config c;
	cfg_default(&c);
	c.max_units = 10;
	c.max_running = 16;
	c.skip_limit = 3;
	mk(f, &c);
	*a = sub(f->p, POOL_PRIO_NORMAL, 6);
	*b = sub(f->p, POOL_PRIO_NORMAL, 8);
	for (int i = 0; i < 5; i++)
		s[i] = sub(f->p, POOL_PRIO_NORMAL, 1);
}

static void t_big_small_pass(void **st)
{
	struct fx f;
	uint64_t a, b, s[5];
	big_setup(&f, &a, &b, s);
	/* small tasks pass the blocked big one, exactly skip_limit of them */
	assert_true(was_started(f.m, s[0]) && was_started(f.m, s[1]) && was_started(f.m, s[2]));
	assert_false(was_started(f.m, b));
	/* s[3] would fit (6 + 3 + 1 <= 10) but B now reserves */
	assert_false(was_started(f.m, s[3]));
	assert_int_equal(state_of(f.p, s[3]), POOL_QUEUED);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.used_units, 9);
	assert_int_equal(ps.running, 4);
	done(&f);
}

static void t_big_reserves(void **st)
{
	struct fx f;
	uint64_t a, b, s[5];
	big_setup(&f, &a, &b, s);
	fin(&f, a, 1); /* used 3: B (8) still does not fit, and nothing passes it */
	assert_false(was_started(f.m, b));
	assert_false(was_started(f.m, s[3]));
	fin(&f, s[0], 1); /* used 2: B fits and starts before the later small ones */
	assert_int_equal(f.m->nstarted, 5);
	assert_int_equal(pool_task_id(f.m->started[4]), b);
	assert_false(was_started(f.m, s[3])); /* 10 of 10 used */
	fin(&f, s[1], 1);
	assert_int_equal(pool_task_id(f.m->started[5]), s[3]);
	fin(&f, s[2], 1);
	assert_int_equal(pool_task_id(f.m->started[6]), s[4]);
	done(&f);
}

/* A higher level is ahead in the order, so it still starts past a reservation. */
static void t_big_reservation_respects_priority(void **st)
{
	struct fx f;
	uint64_t a, b, s[5];
	big_setup(&f, &a, &b, s);
	uint64_t h = sub(f.p, POOL_PRIO_HIGH, 1);
	assert_true(was_started(f.m, h));
	assert_false(was_started(f.m, s[3]));
	done(&f);
}

/* A task bigger than a lowered max_units never reserves. */
static void t_oversized_never_reserves(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_units = 10;
	c.max_running = 16;
	c.skip_limit = 1;
	mk(&f, &c);
	uint64_t a = sub(f.p, POOL_PRIO_NORMAL, 6);
	uint64_t b = sub(f.p, POOL_PRIO_NORMAL, 8);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_UNITS, 7), 0);
	uint64_t s1 = sub(f.p, POOL_PRIO_NORMAL, 1);
	uint64_t s2 = sub(f.p, POOL_PRIO_NORMAL, 1);
	fin(&f, a, 1);
	assert_true(was_started(f.m, s1) && was_started(f.m, s2));
	assert_false(was_started(f.m, b));
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_UNITS, 10), 0);
	assert_true(was_started(f.m, b));
	done(&f);
}

/* ---- submit rejections at exactly the configured numbers ------------------------ */

static void t_capacity_exact(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_units = 4;
	mk(&f, &c);
	sub(f.p, POOL_PRIO_NORMAL, 4);
	assert_int_equal(sub_rc(f.p, POOL_PRIO_NORMAL, 5), -POOL_E_CAPACITY);
	assert_int_equal(sub_rc(f.p, POOL_PRIO_NORMAL, 0), -POOL_E_INVALID);
	assert_int_equal(sub_rc(f.p, 4, 1), -POOL_E_INVALID);
	assert_int_equal(sub_rc(f.p, -1, 1), -POOL_E_INVALID);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.rejected_capacity, 1);
	assert_int_equal(ps.rejected, 1);
	assert_int_equal(ps.submitted, 1);
	done(&f);
}

static void t_queue_full_exact(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_queue_depth = 3;
	mk(&f, &c);
	sub(f.p, POOL_PRIO_NORMAL, 1); /* runs: not in the queue */
	for (int i = 0; i < 3; i++)
		sub(f.p, POOL_PRIO_NORMAL, 1);
	assert_int_equal(sub_rc(f.p, POOL_PRIO_CRITICAL, 1), -POOL_E_QUEUE_FULL);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.queued, 3);
	assert_int_equal(ps.rejected_queue_full, 1);
	done(&f);
}

static int g_freed;
static void count_free(void *pl) { g_freed++; free(pl); }

/* A rejected submit still frees the payload (ownership always passes). */
static void t_reject_frees_payload(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_units = 2;
	mk(&f, &c);
	g_freed = 0;
	struct pool_submit s = { .priority = 1, .cost = 3, .payload = malloc(8),
				 .payload_free = count_free };
	uint64_t id;
	assert_int_equal(pool_submit(f.p, &s, &id), -POOL_E_CAPACITY);
	assert_int_equal(g_freed, 1);
	s.cost = 1;
	s.payload = malloc(8);
	assert_int_equal(pool_submit(f.p, &s, &id), 0);
	fin(&f, id, 1);
	assert_int_equal(g_freed, 2); /* freed when the task ends */
	done(&f);
}

static void t_ids_unique_first_id(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.first_id = 1000;
	mk(&f, &c);
	assert_int_equal(sub(f.p, 1, 1), 1000);
	assert_int_equal(sub_rc(f.p, 1, 1000), -POOL_E_CAPACITY);
	assert_int_equal(sub(f.p, 1, 1), 1001); /* a rejection uses no id */
	done(&f);
}

/* ---- deadlines ---------------------------------------------------------------- */

static void t_expiry_queued(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t run = sub(f.p, 1, 1);
	struct pool_submit s = { .priority = 1, .cost = 1, .timeout_ns = 100 };
	uint64_t q;
	assert_int_equal(pool_submit(f.p, &s, &q), 0);
	fake_now += 99;
	pool_tick(f.p);
	assert_int_equal(state_of(f.p, q), POOL_QUEUED);
	fake_now += 1;
	pool_tick(f.p);
	assert_int_equal(state_of(f.p, q), POOL_EXPIRED);
	fin(&f, run, 1);
	assert_false(was_started(f.m, q)); /* never ran */
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.expired, 1);
	done(&f);
}

/* Past its deadline a queued task never starts, even if no tick came. */
static void t_expiry_at_admission(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t run = sub(f.p, 1, 1);
	struct pool_submit s = { .priority = 1, .cost = 1, .deadline_ns = fake_now + 10 };
	uint64_t q;
	assert_int_equal(pool_submit(f.p, &s, &q), 0);
	fake_now += 10;
	fin(&f, run, 1);
	assert_false(was_started(f.m, q));
	assert_int_equal(state_of(f.p, q), POOL_EXPIRED);
	done(&f);
}

static void t_timeout_running(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.timeout_ns = 500; /* the pool default applies */
	mk(&f, &c);
	uint64_t id = sub(f.p, 1, 3);
	struct pool_task *t = mx_task(f.m, id);
	assert_int_equal(pool_task_emit(t, "part", 4), 0);
	fake_now += 499;
	pool_tick(f.p);
	assert_int_equal(pool_task_cancelled(t), 0);
	fake_now += 1;
	pool_tick(f.p);
	assert_int_equal(pool_task_cancelled(t), POOL_CANCEL_TIMEOUT);
	assert_int_equal(f.m->nudges, 1);
	assert_int_equal(state_of(f.p, id), POOL_RUNNING); /* until handed back */
	pool_task_finish(t, 1, NULL);
	char *out;
	size_t len;
	int state;
	assert_int_equal(pool_result(f.p, id, &out, &len, &state), 0);
	assert_int_equal(state, POOL_TIMEOUT);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "part", 4);
	free(out);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.used_units, 0);
	assert_int_equal(ps.timed_out, 1);
	done(&f);
}

/* ---- cancel in each state ----------------------------------------------------- */

static void t_cancel_states(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t r = sub(f.p, 1, 1), q = sub(f.p, 1, 1);
	assert_int_equal(pool_cancel(f.p, q), 0);
	assert_int_equal(state_of(f.p, q), POOL_CANCELLED);
	assert_int_equal(pool_cancel(f.p, r), 0);
	struct pool_task *t = mx_task(f.m, r);
	assert_int_equal(pool_task_cancelled(t), POOL_CANCEL_USER);
	assert_int_equal(f.m->nudges, 1);
	assert_int_equal(state_of(f.p, r), POOL_RUNNING);
	pool_task_finish(t, 1, NULL);
	assert_int_equal(state_of(f.p, r), POOL_CANCELLED);
	assert_int_equal(pool_cancel(f.p, r), -POOL_E_STATE);
	assert_int_equal(pool_cancel(f.p, 999999), -POOL_E_NOT_FOUND);
	assert_false(was_started(f.m, q));
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.cancelled, 2);
	assert_int_equal(ps.used_units, 0);
	done(&f);
}

/* Cancelling a queued task that reserved lets the tasks behind it run. */
static void t_cancel_reserved_unblocks(void **st)
{
	struct fx f;
	uint64_t a, b, s[5];
	big_setup(&f, &a, &b, s);
	assert_false(was_started(f.m, s[3]));
	assert_int_equal(pool_cancel(f.p, b), 0);
	assert_true(was_started(f.m, s[3]));
	done(&f);
}

/* ---- executor hand-back paths ---------------------------------------------------- */

static void t_failed_keeps_output(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t id = sub(f.p, 1, 2);
	struct pool_task *t = mx_task(f.m, id);
	assert_int_equal(pool_task_emit(t, "ab", 2), 0);
	pool_task_finish(t, 0, "exploded");
	assert_int_equal(pool_task_emit(t, "x", 1), -POOL_E_STATE);
	pool_task_finish(t, 1, NULL); /* second hand-back ignored */
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, id, &ti), 0);
	assert_int_equal(ti.state, POOL_FAILED);
	assert_string_equal(ti.error, "exploded");
	assert_int_equal(ti.output_bytes, 2);
	assert_int_equal(ti.chunks, 1);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.failed, 1);
	assert_int_equal(ps.used_units, 0);
	assert_int_equal(ps.running, 0);
	done(&f);
}

static int finish_of(struct pool *p, uint64_t id)
{
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(p, id, &ti), 0);
	return ti.finish;
}

/* Why a task stopped: the executor's word for DONE (EOS when it says
 * nothing), the state's for every other end; NONE while not ended. */
static void t_finish_reason(void **st)
{
	struct fx f;
	mk_default(&f);
	struct pool_task_info ti;
	uint64_t a = sub(f.p, 1, 1);
	assert_int_equal(finish_of(f.p, a), POOL_FINISH_NONE);
	pool_task_set_outcome(mx_task(f.m, a), POOL_FINISH_MAX_TOKENS, 7, 3);
	assert_int_equal(finish_of(f.p, a), POOL_FINISH_NONE);
	pool_task_finish(mx_task(f.m, a), 1, NULL);
	assert_int_equal(pool_task_info(f.p, a, &ti), 0);
	assert_int_equal(ti.finish, POOL_FINISH_MAX_TOKENS);
	assert_int_equal(ti.tokens, 7);
	assert_int_equal(ti.prompt_tokens, 3);
	uint64_t b = sub(f.p, 1, 1);
	pool_task_set_outcome(mx_task(f.m, b), POOL_FINISH_CANCEL, 2, 0); /* not the executor's */
	pool_task_finish(mx_task(f.m, b), 1, NULL);
	assert_int_equal(finish_of(f.p, b), POOL_FINISH_EOS);
	uint64_t c = sub(f.p, 1, 1);
	pool_task_set_outcome(mx_task(f.m, c), POOL_FINISH_STOP, 1, 0);
	assert_int_equal(pool_cancel(f.p, c), 0);
	pool_task_finish(mx_task(f.m, c), 1, NULL);
	assert_int_equal(finish_of(f.p, c), POOL_FINISH_CANCEL); /* a cancel wins */
	uint64_t d = sub(f.p, 1, 1);
	pool_task_finish(mx_task(f.m, d), 0, "boom");
	assert_int_equal(finish_of(f.p, d), POOL_FINISH_ERROR);
	assert_string_equal(pool_finish_name(POOL_FINISH_MAX_TOKENS), "max_tokens");
	assert_string_equal(pool_finish_name(POOL_FINISH_DEADLINE), "deadline");
	assert_string_equal(pool_finish_name(POOL_FINISH_NONE), "");
	done(&f);
}

static void t_start_error(void **st)
{
	struct fx f;
	mk_default(&f);
	f.m->start_rc = -POOL_E_NOMEM;
	uint64_t id = sub(f.p, 1, 5);
	assert_int_equal(state_of(f.p, id), POOL_FAILED);
	f.m->start_rc = 0;
	uint64_t id2 = sub(f.p, 1, 5); /* units and slot came back */
	assert_true(was_started(f.m, id2));
	done(&f);
}

static void t_output_limit(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_output_bytes = 4;
	mk(&f, &c);
	uint64_t id = sub(f.p, 1, 1);
	struct pool_task *t = mx_task(f.m, id);
	assert_int_equal(pool_task_emit(t, "abcd", 4), 0);
	assert_int_equal(pool_task_emit(t, "e", 1), -POOL_E_INVALID);
	pool_task_finish(t, 1, NULL);
	assert_int_equal(state_of(f.p, id), POOL_FAILED);
	done(&f);
}

/* A batch emit is pool_task_emit per entry: one chunk each, the same result
 * for a task that already ended or would overflow. */
static void t_emit_batch(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_running = 3;
	c.max_output_bytes = 4;
	mk(&f, &c);
	uint64_t a = sub(f.p, 1, 1), b = sub(f.p, 1, 1), d = sub(f.p, 1, 1);
	fin(&f, b, 1);
	struct pool_emit v[] = {
		{ .t = mx_task(f.m, a), .data = "ab", .len = 2 },
		{ .t = mx_task(f.m, b), .data = "x", .len = 1 },
		{ .t = mx_task(f.m, d), .data = "too long", .len = 8 },
		{ .t = mx_task(f.m, a), .data = "c", .len = 1 },
	};
	pool_emit_batch(v, 4);
	assert_int_equal(v[0].rc, 0);
	assert_int_equal(v[1].rc, -POOL_E_STATE);
	assert_int_equal(v[2].rc, -POOL_E_INVALID);
	assert_int_equal(v[3].rc, 0);
	assert_int_equal(v[0].id, a);
	struct pool_task_info ti;
	pool_task_info(f.p, a, &ti);
	assert_int_equal(ti.chunks, 2);
	assert_int_equal(ti.output_bytes, 3);
	pool_emit_batch(v, 0); /* nothing to do */
	done(&f);
}

/* ---- results and subscriptions ---------------------------------------------------- */

static void expect_chunk(struct pool_sub *s, const char *want)
{
	char *d = NULL;
	size_t len = 0;
	int state = -1;
	assert_int_equal(pool_sub_next(s, &d, &len, &state, 0), POOL_SUB_CHUNK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(d, want, len);
	free(d);
}

static void expect_end(struct pool_sub *s, int want_state)
{
	char *d = NULL;
	size_t len = 0;
	int state = -1;
	assert_int_equal(pool_sub_next(s, &d, &len, &state, 0), POOL_SUB_END);
	assert_int_equal(state, want_state);
	free(d);
}

static void expect_nothing(struct pool_sub *s)
{
	char *d = NULL;
	size_t len = 0;
	int state = -1;
	assert_int_equal(pool_sub_next(s, &d, &len, &state, 0), -POOL_E_TIMEDOUT);
}

static void t_late_subscriber_replay(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t id = sub(f.p, 1, 1);
	struct pool_task *t = mx_task(f.m, id);
	pool_task_emit(t, "a", 1);
	pool_task_emit(t, "bb", 2);
	struct pool_sub *s1, *s2, *s3;
	assert_int_equal(pool_subscribe(f.p, id, &s1), 0);
	assert_int_equal(pool_sub_task_id(s1), id);
	expect_chunk(s1, "a");
	expect_chunk(s1, "bb");
	expect_nothing(s1);
	assert_int_equal(pool_subscribe(f.p, id, &s2), 0);
	pool_task_emit(t, "ccc", 3);
	expect_chunk(s1, "ccc"); /* live */
	expect_chunk(s2, "a");   /* replay, independent of s1 */
	pool_task_finish(t, 1, NULL);
	expect_end(s1, POOL_DONE);
	expect_end(s1, POOL_DONE); /* END repeats */
	expect_chunk(s2, "bb");
	expect_chunk(s2, "ccc");
	expect_end(s2, POOL_DONE);
	assert_int_equal(pool_subscribe(f.p, id, &s3), 0); /* after the end */
	expect_chunk(s3, "a");
	expect_chunk(s3, "bb");
	expect_chunk(s3, "ccc");
	expect_end(s3, POOL_DONE);
	pool_sub_close(s1);
	pool_sub_close(s2);
	pool_sub_close(s3);
	struct pool_sub *x;
	assert_int_equal(pool_subscribe(f.p, 424242, &x), -POOL_E_NOT_FOUND);
	done(&f);
}

static void expect_take(struct pool_sub *s, size_t max_bytes, size_t max_chunks,
			const char *want, size_t want_n)
{
	char *d = NULL;
	size_t len = 0, n = 99;
	int state = -1;
	assert_int_equal(pool_sub_take(s, max_bytes, max_chunks, &d, &len, &n, &state),
			 POOL_SUB_CHUNK);
	assert_int_equal(n, want_n);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(d, want, len);
	free(d);
}

/* pool_sub_take: whole chunks in one copy within both bounds, at least one
 * (a chunk larger than max_bytes comes alone), then END or nothing. */
static void t_sub_take_batches(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t id = sub(f.p, 1, 1);
	struct pool_task *t = mx_task(f.m, id);
	const char *parts[] = { "a", "bb", "ccc", "dddd", "eeeee" };
	for (int i = 0; i < 5; i++)
		pool_task_emit(t, parts[i], strlen(parts[i]));
	struct pool_sub *s;
	char *d;
	size_t len, n;
	int state;
	assert_int_equal(pool_subscribe(f.p, id, &s), 0);
	expect_take(s, 3, 10, "abb", 2);   /* "ccc" would pass 3 bytes */
	expect_take(s, 1, 10, "ccc", 1);   /* bigger than max_bytes: alone */
	expect_take(s, 100, 1, "dddd", 1); /* max_chunks */
	assert_int_equal(pool_sub_take(s, 100, 0, &d, &len, &n, &state), POOL_SUB_CHUNK);
	assert_int_equal(n, 1); /* max_chunks 0 means 1 */
	free(d);
	assert_int_equal(pool_sub_take(s, 100, 10, &d, &len, &n, &state), -POOL_E_TIMEDOUT);
	assert_int_equal(n, 0);
	pool_task_emit(t, "f", 1);
	pool_task_emit(t, "g", 1);
	pool_task_finish(t, 1, NULL);
	expect_take(s, 100, 10, "fg", 2);
	assert_int_equal(pool_sub_take(s, 100, 10, &d, &len, &n, &state), POOL_SUB_END);
	assert_int_equal(state, POOL_DONE);
	free(d);
	pool_sub_close(s);
	done(&f);
}

static void t_result_many_times(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t id = sub(f.p, 1, 1);
	struct pool_task *t = mx_task(f.m, id);
	pool_task_emit(t, "he", 2);
	pool_task_emit(t, "llo", 3);
	int state;
	assert_int_equal(pool_wait(f.p, id, 0, &state), -POOL_E_TIMEDOUT);
	pool_task_finish(t, 1, NULL);
	for (int i = 0; i < 3; i++) {
		char *out;
		size_t len;
		assert_int_equal(pool_result(f.p, id, &out, &len, &state), 0);
		assert_int_equal(state, POOL_DONE);
		assert_string_equal(out, "hello");
		free(out);
		assert_int_equal(pool_wait(f.p, id, 0, &state), 0);
	}
	done(&f);
}

static void t_retention_prune(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.retention_ns = 1000;
	mk(&f, &c);
	uint64_t id = sub(f.p, 1, 1);
	struct pool_task *t = mx_task(f.m, id);
	pool_task_emit(t, "kept", 4);
	struct pool_sub *s;
	assert_int_equal(pool_subscribe(f.p, id, &s), 0);
	pool_task_finish(t, 1, NULL);
	fake_now += 999;
	pool_tick(f.p);
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, id, &ti), 0);
	fake_now += 1;
	pool_tick(f.p);
	char *out;
	size_t len;
	int state;
	assert_int_equal(pool_task_info(f.p, id, &ti), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_result(f.p, id, &out, &len, &state), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_wait(f.p, id, 0, &state), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_cancel(f.p, id), -POOL_E_NOT_FOUND);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.mailbox, 0);
	/* an open subscription still reads the whole stream */
	expect_chunk(s, "kept");
	expect_end(s, POOL_DONE);
	pool_sub_close(s);
	done(&f);
}

/* ---- runtime limits ------------------------------------------------------------ */

static void t_limit_max_units(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_units = 6;
	c.max_running = 8;
	mk(&f, &c);
	uint64_t a = sub(f.p, 1, 3), b = sub(f.p, 1, 3);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_UNITS, 4), 0);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_MAX_UNITS), 4);
	assert_int_equal(state_of(f.p, a), POOL_RUNNING); /* lowering kills nothing */
	assert_int_equal(state_of(f.p, b), POOL_RUNNING);
	check_inv(f.p);
	assert_int_equal(sub_rc(f.p, 1, 5), -POOL_E_CAPACITY);
	uint64_t q = sub(f.p, 1, 1);
	assert_false(was_started(f.m, q));
	fin(&f, a, 1);                  /* used 3 of 4: q fits */
	assert_true(was_started(f.m, q));
	uint64_t q2 = sub(f.p, 1, 4);
	assert_false(was_started(f.m, q2));
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_UNITS, 8), 0);
	assert_true(was_started(f.m, q2)); /* raising admits at once */
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_UNITS, 0), -POOL_E_INVALID);
	done(&f);
}

static void t_limit_queue_depth(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_queue_depth = 5;
	mk(&f, &c);
	sub(f.p, 1, 1);
	uint64_t q[3];
	for (int i = 0; i < 3; i++)
		q[i] = sub(f.p, 1, 1);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_QUEUE_DEPTH, 1), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(state_of(f.p, q[i]), POOL_QUEUED);
	assert_int_equal(sub_rc(f.p, 1, 1), -POOL_E_QUEUE_FULL);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_QUEUE_DEPTH, 4), 0);
	sub(f.p, 1, 1);
	assert_int_equal(sub_rc(f.p, 1, 1), -POOL_E_QUEUE_FULL);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_QUEUE_DEPTH, 0), 0);
	assert_int_equal(sub_rc(f.p, 1, 1), -POOL_E_QUEUE_FULL); /* 0 = reject all */
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_QUEUE_DEPTH, POOL_UNLIMITED), 0);
	sub(f.p, 1, 1);
	done(&f);
}

static void t_max_running_caps_admission(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_running = 2;
	mk(&f, &c);
	assert_int_equal(pool_set_capacity(f.p, 4), 0);
	uint64_t a = sub(f.p, 1, 1), b = sub(f.p, 1, 1), d = sub(f.p, 1, 1);
	assert_true(was_started(f.m, a) && was_started(f.m, b));
	assert_false(was_started(f.m, d)); /* 2 = max_running, below capacity 4 */
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.max_running, 2);
	assert_int_equal(ps.capacity, 4);
	assert_int_equal(ps.running_limit, 2);
	done(&f);
}

static void t_capacity_caps_admission(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_running = 8;
	mk(&f, &c);
	assert_int_equal(pool_set_capacity(f.p, 0), 0); /* loading: nothing runs */
	uint64_t a = sub(f.p, 1, 1), b = sub(f.p, 1, 1), d = sub(f.p, 1, 1);
	assert_false(was_started(f.m, a));
	assert_int_equal(pool_set_capacity(f.p, 2), 0);
	assert_true(was_started(f.m, a) && was_started(f.m, b));
	assert_false(was_started(f.m, d)); /* 2 = capacity, below max_running 8 */
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.running_limit, 2);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_MAX_RUNNING), 8);
	done(&f);
}

static void t_lower_max_running_keeps_work(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_running = 3;
	mk(&f, &c);
	uint64_t a = sub(f.p, 1, 1), b = sub(f.p, 1, 1), d = sub(f.p, 1, 1);
	uint64_t e = sub(f.p, 1, 1);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_RUNNING, 1), 0);
	assert_int_equal(state_of(f.p, a), POOL_RUNNING);
	assert_int_equal(state_of(f.p, b), POOL_RUNNING);
	assert_int_equal(state_of(f.p, d), POOL_RUNNING);
	assert_int_equal(f.m->nudges, 0); /* nothing was cancelled */
	check_inv(f.p);
	fin(&f, a, 1);
	fin(&f, b, 1);
	assert_false(was_started(f.m, e)); /* still 1 running = the new limit */
	fin(&f, d, 1);
	assert_true(was_started(f.m, e));
	check_inv(f.p);
	done(&f);
}

static void t_raise_max_running_admits(void **st)
{
	struct fx f;
	mk_default(&f); /* max_running 1 */
	uint64_t a = sub(f.p, 1, 1), b = sub(f.p, 1, 1), d = sub(f.p, 1, 1);
	assert_false(was_started(f.m, b));
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_RUNNING, 2), 0);
	assert_true(was_started(f.m, b)); /* raising admits at once */
	assert_false(was_started(f.m, d));
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_RUNNING, POOL_UNLIMITED), 0);
	assert_true(was_started(f.m, d));
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_MAX_RUNNING), POOL_UNLIMITED);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_MAX_RUNNING, 0), -POOL_E_INVALID);
	assert_int_equal(state_of(f.p, a), POOL_RUNNING);
	done(&f);
}

static void t_threads_reach_executor(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.threads = 3;
	c.max_running = 4;
	mk(&f, &c);
	assert_int_equal(f.m->threads, 3);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_THREADS, 5), 0);
	assert_int_equal(f.m->threads, 5);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_THREADS), 5);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_MAX_RUNNING), 4); /* untouched */
	f.m->cap = 1;       /* the executor's capacity follows its threads */
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_THREADS, 0), 0);
	assert_int_equal(f.m->threads, 0); /* 0 = the executor's default, passed as is */
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.threads, 0);
	assert_int_equal(ps.running_limit, 1);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_THREADS, POOL_MAX_THREADS + 1),
			 -POOL_E_INVALID);
	f.m->threads_rc = -POOL_E_NOMEM; /* a failing executor: the old value stands */
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_THREADS, 7), -POOL_E_NOMEM);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_THREADS), 0);
	done(&f);
}

static void t_limit_timeout(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t a = sub(f.p, 1, 1);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_TIMEOUT_NS, 50), 0);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_TIMEOUT_NS), 50);
	uint64_t b = sub(f.p, 1, 1);
	struct pool_task_info ti;
	pool_task_info(f.p, a, &ti);
	assert_int_equal(ti.deadline_ns, 0); /* earlier tasks keep theirs */
	pool_task_info(f.p, b, &ti);
	assert_int_equal(ti.deadline_ns, fake_now + 50);
	fake_now += 50;
	pool_tick(f.p);
	assert_int_equal(state_of(f.p, b), POOL_EXPIRED);
	assert_int_equal(state_of(f.p, a), POOL_RUNNING);
	done(&f);
}

static void t_limit_retention(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.retention_ns = 1000000;
	mk(&f, &c);
	uint64_t a = sub(f.p, 1, 1);
	fin(&f, a, 1);
	fake_now += 10;
	pool_tick(f.p);
	assert_int_equal(state_of(f.p, a), POOL_DONE);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_RETENTION_NS, 10), 0);
	pool_tick(f.p);
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, a, &ti), -POOL_E_NOT_FOUND);
	done(&f);
}

/* ---- stats ---------------------------------------------------------------------- */

static void t_stats_snapshot(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.max_running = 2;
	mk(&f, &c);
	uint64_t a = sub(f.p, POOL_PRIO_LOW, 2);
	fake_now += 100;
	uint64_t b = sub(f.p, POOL_PRIO_LOW, 3);
	sub(f.p, POOL_PRIO_HIGH, 1);
	sub(f.p, POOL_PRIO_CRITICAL, 1);
	sub(f.p, POOL_PRIO_CRITICAL, 1);
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.running, 2);
	assert_int_equal(ps.used_units, 5);
	assert_int_equal(ps.queued, 3);
	assert_int_equal(ps.queued_by_prio[POOL_PRIO_CRITICAL], 2);
	assert_int_equal(ps.queued_by_prio[POOL_PRIO_HIGH], 1);
	assert_int_equal(ps.queued_by_prio[POOL_PRIO_LOW], 0);
	assert_int_equal(ps.submitted, 5);
	assert_int_equal(ps.queue_wait_p50_ns, 0);
	fake_now += 400;
	fin(&f, a, 1); /* the first critical waited 400 */
	fin(&f, b, 0);
	pool_stats(f.p, &ps);
	assert_int_equal(ps.completed, 1);
	assert_int_equal(ps.failed, 1);
	assert_int_equal(ps.mailbox, 2);
	/* waits: 0, 0, 400, 400 -> p50 = 0 (nearest rank 2), p99 = 400 */
	assert_int_equal(ps.queue_wait_p50_ns, 0);
	assert_int_equal(ps.queue_wait_p99_ns, 400);
	done(&f);
}

/* p50/p99 cover the last 4096 admissions only. */
static void t_stats_wait_window(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.retention_ns = 0; /* pruned at each tick: the mx keeps its own refs */
	mk(&f, &c);
	uint64_t run = sub(f.p, 1, 1);
	for (int i = 0; i < 100; i++) { /* 100 admissions that waited 1000 */
		uint64_t next = sub(f.p, 1, 1);
		fake_now += 1000;
		fin(&f, run, 1);
		run = next;
	}
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.queue_wait_p99_ns, 1000);
	assert_int_equal(ps.queue_wait_p50_ns, 1000);
	fin(&f, run, 1);
	for (int i = 0; i < 4096; i++) { /* then 4096 that did not wait */
		if (f.m->nstarted == MX_MAX) { /* recycle the executor's log */
			for (size_t k = 0; k < f.m->nstarted; k++)
				pool_task_unref(f.m->started[k]);
			f.m->nstarted = 0;
		}
		fin(&f, sub(f.p, 1, 1), 1);
	}
	pool_tick(f.p);
	pool_stats(f.p, &ps);
	assert_int_equal(ps.queue_wait_p99_ns, 0);
	assert_int_equal(ps.completed, 4197);
	done(&f);
}

static void t_list(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t a = sub(f.p, POOL_PRIO_LOW, 1);
	uint64_t b = sub(f.p, POOL_PRIO_LOW, 1);
	uint64_t d = sub(f.p, POOL_PRIO_HIGH, 1);
	struct pool_task_info li[8];
	assert_int_equal(pool_list(f.p, li, 8), 3);
	assert_int_equal(li[0].id, a);
	assert_int_equal(li[0].state, POOL_RUNNING);
	assert_int_equal(li[1].id, d);
	assert_int_equal(li[1].position, 1);
	assert_int_equal(li[2].id, b);
	assert_int_equal(li[2].position, 2);
	assert_int_equal(pool_list(f.p, li, 1), 3);
	done(&f);
}

/* ---- shutdown -------------------------------------------------------------------- */

static void t_shutdown_cancel(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t r = sub(f.p, 1, 1), q1 = sub(f.p, 1, 1), q2 = sub(f.p, 3, 1);
	assert_int_equal(pool_shutdown(f.p, POOL_SHUTDOWN_CANCEL, 0), -POOL_E_TIMEDOUT);
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, q1, &ti), 0);
	assert_int_equal(ti.state, POOL_CANCELLED);
	assert_string_equal(ti.error, "cancelled by shutdown");
	assert_int_equal(state_of(f.p, q2), POOL_CANCELLED);
	struct pool_task *t = mx_task(f.m, r);
	assert_int_equal(pool_task_cancelled(t), POOL_CANCEL_SHUTDOWN);
	assert_int_equal(sub_rc(f.p, 1, 1), -POOL_E_SHUTDOWN);
	pool_task_finish(t, 1, NULL);
	assert_int_equal(state_of(f.p, r), POOL_CANCELLED);
	assert_int_equal(pool_shutdown(f.p, POOL_SHUTDOWN_CANCEL, 0), 0);
	assert_false(was_started(f.m, q1));
	struct pool_stats ps;
	pool_stats(f.p, &ps);
	assert_int_equal(ps.cancelled, 3);
	assert_int_equal(ps.shutting_down, 1);
	done(&f);
}

/* Drain with nobody finishing: bounded by the timeout, then cancels. */
static void t_shutdown_drain_bounded(void **st)
{
	struct fx f;
	mk_default(&f);
	uint64_t r = sub(f.p, 1, 1), q = sub(f.p, 1, 1);
	assert_int_equal(pool_shutdown(f.p, POOL_SHUTDOWN_DRAIN, 1000000), -POOL_E_TIMEDOUT);
	assert_int_equal(state_of(f.p, q), POOL_CANCELLED);
	assert_int_equal(pool_task_cancelled(mx_task(f.m, r)), POOL_CANCEL_SHUTDOWN);
	done(&f);
}

/* ---- store ------------------------------------------------------------------------ */

static void t_store_records(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.retention_ns = 100;
	c.store = store_memory_new();
	assert_non_null(c.store);
	mk(&f, &c);
	struct pool_submit s = { .priority = 2, .cost = 1, .owner_uid = 7, .label = "hi" };
	uint64_t a, b;
	assert_int_equal(pool_submit(f.p, &s, &a), 0);
	assert_int_equal(pool_submit(f.p, &s, &b), 0);
	struct store_record r;
	assert_int_equal(store_get(c.store, b, &r), 0);
	assert_int_equal(r.state, POOL_QUEUED);
	assert_string_equal(r.label, "hi");
	assert_string_equal(r.model, "test");
	assert_int_equal(r.owner_uid, 7);
	store_record_clear(&r);
	struct pool_task *t = mx_task(f.m, a);
	pool_task_emit(t, "out", 3);
	pool_task_finish(t, 1, NULL);
	assert_int_equal(store_get(c.store, a, &r), 0);
	assert_int_equal(r.state, POOL_DONE);
	assert_int_equal(r.output_len, 3);
	assert_memory_equal(r.output, "out", 3);
	store_record_clear(&r);
	assert_int_equal(store_get(c.store, b, &r), 0);
	assert_int_equal(r.state, POOL_RUNNING);
	store_record_clear(&r);
	fake_now += 100;
	pool_tick(f.p);
	assert_int_equal(store_get(c.store, a, &r), -1); /* pruned */
	assert_int_equal(c.store->ops->count(c.store->ctx), 1);
	done(&f);
	store_free(c.store);
}

/* ---- construction and notify ------------------------------------------------ */

static void t_new_rejects_bad_config(void **st)
{
	struct pool_config c;
	char err[256] = "";
	cfg_default(&c);
	c.max_running = 0;
	struct mx *m = calloc(1, sizeof *m);
	assert_null(pool_new(&c, (struct pool_executor){ &mx_ops, m }, err, sizeof err));
	assert_non_null(strstr(err, "max_running")); /* and m was freed (ASan would tell) */
	cfg_default(&c);
	c.max_units = 0;
	m = calloc(1, sizeof *m);
	assert_null(pool_new(&c, (struct pool_executor){ &mx_ops, m }, err, sizeof err));
	assert_non_null(strstr(err, "max_units"));
}

struct nlog {
	uint64_t ids[64];
	size_t n;
};

static void on_notify(void *ctx, uint64_t id)
{
	struct nlog *l = ctx;
	if (l->n < 64)
		l->ids[l->n++] = id;
}

/* The event loop learns of every change through notify. */
static void t_notify(void **st)
{
	struct fx f;
	struct pool_config c;
	struct nlog log = { { 0 }, 0 };
	cfg_default(&c);
	c.notify = on_notify;
	c.notify_ctx = &log;
	mk(&f, &c);
	uint64_t a = sub(f.p, 1, 1);            /* queued + running */
	assert_int_equal(log.n, 2);
	uint64_t b = sub(f.p, 1, 1);            /* queued */
	assert_int_equal(log.n, 3);
	pool_task_emit(mx_task(f.m, a), "x", 1); /* output */
	assert_int_equal(log.n, 4);
	assert_int_equal(pool_cancel(f.p, a), 0); /* cancel flag raised */
	assert_int_equal(log.n, 5);
	fin(&f, a, 1);                          /* a ended, b running */
	assert_int_equal(log.n, 7);
	assert_int_equal(log.ids[5], a);
	assert_int_equal(log.ids[6], b);
	done(&f);
}

struct evlog {
	struct pool_event ev[16];
	size_t n;
};

static void on_ev(void *ctx, const struct pool_event *ev)
{
	struct evlog *l = ctx;
	if (l->n < 16)
		l->ev[l->n++] = *ev;
}

static void check_ev(const struct evlog *l, size_t i, uint64_t id, int state,
		     uint64_t cost, uint64_t elapsed)
{
	assert_true(i < l->n);
	assert_int_equal(l->ev[i].id, id);
	assert_int_equal(l->ev[i].state, state);
	assert_int_equal(l->ev[i].cost, cost);
	assert_int_equal(l->ev[i].elapsed_ns, elapsed);
}

/* on_event reports each admission with its queue wait and each end with its
 * run time (or its queue time when it never ran), in order. */
static void t_events(void **st)
{
	struct fx f;
	struct pool_config c;
	struct evlog log = { .n = 0 };
	cfg_default(&c);
	c.on_event = on_ev;
	c.on_event_ctx = &log;
	mk(&f, &c);
	uint64_t a = sub(f.p, POOL_PRIO_NORMAL, 3);
	struct pool_submit s = { .priority = POOL_PRIO_HIGH, .cost = 2, .timeout_ns = 50,
				 .owner_uid = 42, .prompt_tokens = 17 };
	uint64_t b, x;
	assert_int_equal(pool_submit(f.p, &s, &b), 0);
	x = sub(f.p, POOL_PRIO_LOW, 1);
	assert_int_equal(log.n, 4);
	check_ev(&log, 0, a, POOL_QUEUED, 3, 0);  /* submitted, then admitted */
	check_ev(&log, 1, a, POOL_RUNNING, 3, 0);
	check_ev(&log, 2, b, POOL_QUEUED, 2, 0);
	assert_int_equal(log.ev[2].owner_uid, 42);
	assert_int_equal(log.ev[2].prompt_tokens, 17);
	check_ev(&log, 3, x, POOL_QUEUED, 1, 0);
	fake_now += 50;
	pool_tick(f.p);                      /* b expires while queued */
	check_ev(&log, 4, b, POOL_EXPIRED, 2, 50);
	fake_now += 10;
	fin(&f, a, 1);                       /* a done after 60 ns, x admitted */
	check_ev(&log, 5, a, POOL_DONE, 3, 60);
	check_ev(&log, 6, x, POOL_RUNNING, 1, 60);
	assert_int_equal(log.ev[6].priority, POOL_PRIO_LOW);
	fin(&f, x, 0);
	check_ev(&log, 7, x, POOL_FAILED, 1, 0);
	assert_int_equal(log.n, 8);
	done(&f);
}

/* ---- restart support: hold/confirm, restored ids and order, shared ids -- */

/* A held submit waits, unstarted, until confirmed; others pass it. */
static void t_hold_confirm(void **st)
{
	struct fx f;
	mk_default(&f);
	struct pool_submit s = { .priority = POOL_PRIO_HIGH, .cost = 1, .hold = 1 };
	uint64_t held = 0;
	assert_int_equal(pool_submit(f.p, &s, &held), 0);
	assert_false(was_started(f.m, held));
	uint64_t other = sub(f.p, POOL_PRIO_LOW, 1);
	assert_true(was_started(f.m, other)); /* the held one does not block */
	fin(&f, other, 1);
	assert_false(was_started(f.m, held));
	assert_int_equal(pool_confirm(f.p, held), 0);
	assert_true(was_started(f.m, held));
	assert_int_equal(pool_confirm(f.p, held), 0); /* again: no effect */
	assert_int_equal(pool_confirm(f.p, 999), -POOL_E_NOT_FOUND);
	/* a held task that is never confirmed is cancelled, never started */
	assert_int_equal(pool_submit(f.p, &s, &held), 0);
	assert_int_equal(pool_cancel(f.p, held), 0);
	assert_int_equal(state_of(f.p, held), POOL_CANCELLED);
	assert_false(was_started(f.m, held));
	done(&f);
}

/* Restored tasks keep their ids and go into FIFO order by id within their
 * level whatever order they arrive in; admission waits for pool_hold(0). */
static void t_restore_order(void **st)
{
	struct fx f;
	mk_default(&f);
	pool_hold(f.p, 1);
	uint64_t ids[] = { 9, 4, 7, 2 }, got;
	int prio[] = { POOL_PRIO_NORMAL, POOL_PRIO_NORMAL, POOL_PRIO_HIGH, POOL_PRIO_NORMAL };
	for (int i = 0; i < 4; i++) {
		struct pool_submit s = { .priority = prio[i], .cost = 1, .id = ids[i],
					 .created_ns = 10, .attempts = 1 };
		assert_int_equal(pool_submit(f.p, &s, &got), 0);
		assert_int_equal(got, ids[i]);
	}
	struct pool_submit dup = { .priority = POOL_PRIO_NORMAL, .cost = 1, .id = 4 };
	assert_int_equal(pool_submit(f.p, &dup, &got), -POOL_E_INVALID);
	assert_int_equal(f.m->nstarted, 0);
	pool_hold(f.p, 0);
	uint64_t want[] = { 7, 2, 4, 9 };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(f.m->nstarted, (size_t)i + 1);
		assert_int_equal(pool_task_id(f.m->started[i]), want[i]);
		fin(&f, want[i], 1);
	}
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, 9, &ti), 0);
	assert_int_equal(ti.created_ns, 10);
	done(&f);
}

/* A finished task read back sits in the mailbox with its output, and is
 * listed by pool_list_ended, newest first. */
static void t_restore_ended(void **st)
{
	struct fx f;
	mk_default(&f);
	struct store_record r = { .id = 40, .state = POOL_DONE, .priority = POOL_PRIO_LOW, .cost = 2,
				  .created_ns = 5, .started_ns = 6, .ended_ns = 7, .label = "old",
				  .output = "hello", .output_len = 5 };
	assert_int_equal(pool_restore_ended(f.p, &r), 0);
	assert_int_equal(pool_restore_ended(f.p, &r), -POOL_E_INVALID); /* id in use */
	r.state = POOL_QUEUED;
	r.id = 41;
	assert_int_equal(pool_restore_ended(f.p, &r), -POOL_E_INVALID); /* not finished */
	char *out;
	size_t len;
	int state;
	assert_int_equal(pool_result(f.p, 40, &out, &len, &state), 0);
	assert_int_equal(state, POOL_DONE);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	uint64_t id = sub(f.p, POOL_PRIO_NORMAL, 1);
	fin(&f, id, 1);
	struct pool_task_info v[4];
	assert_int_equal(pool_list_ended(f.p, v, 4), 2);
	assert_int_equal(v[0].id, id);
	assert_int_equal(v[1].id, 40);
	assert_string_equal(v[1].label, "old");
	done(&f);
}

static uint64_t shared_next;
static uint64_t next_shared(void *ctx)
{
	return (*(uint64_t *)ctx)++;
}

/* Two pools drawing ids from one counter never hand out the same id. */
static void t_shared_ids(void **st)
{
	struct fx a, b;
	struct pool_config c;
	cfg_default(&c);
	shared_next = 7;
	c.next_id = next_shared;
	c.next_id_ctx = &shared_next;
	mk(&a, &c);
	mk(&b, &c);
	assert_int_equal(sub(a.p, POOL_PRIO_NORMAL, 1), 7);
	assert_int_equal(sub(b.p, POOL_PRIO_NORMAL, 1), 8);
	assert_int_equal(sub(a.p, POOL_PRIO_NORMAL, 1), 9);
	done(&a);
	done(&b);
}

/* Retention by count and by output bytes, whichever comes first, prunes the
 * oldest finished tasks before their time is up. */
static void t_retention_count_bytes(void **st)
{
	struct fx f;
	struct pool_config c;
	cfg_default(&c);
	c.retention_ns = 1000000000000ull; /* time alone would keep them all */
	c.retention_tasks = 2;
	mk(&f, &c);
	uint64_t id[4];
	for (int i = 0; i < 4; i++) {
		id[i] = sub(f.p, POOL_PRIO_NORMAL, 1);
		assert_int_equal(pool_task_emit(mx_task(f.m, id[i]), "0123456789", 10), 0);
		fin(&f, id[i], 1);
		pool_tick(f.p);
	}
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(f.p, id[0], &ti), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_task_info(f.p, id[1], &ti), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_task_info(f.p, id[3], &ti), 0);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_RETENTION_TASKS), 2);
	/* bytes: 10 bytes each, a bound of 15 keeps one */
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_RETENTION_TASKS, 0), 0);
	assert_int_equal(pool_set_limit(f.p, POOL_LIMIT_RETENTION_BYTES, 15), 0);
	pool_tick(f.p);
	assert_int_equal(pool_task_info(f.p, id[2], &ti), -POOL_E_NOT_FOUND);
	assert_int_equal(pool_task_info(f.p, id[3], &ti), 0);
	assert_int_equal(pool_get_limit(f.p, POOL_LIMIT_RETENTION_BYTES), 15);
	done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_names),
		cmocka_unit_test(t_priority_order),
		cmocka_unit_test(t_fifo_within_level),
		cmocka_unit_test(t_big_small_pass),
		cmocka_unit_test(t_big_reserves),
		cmocka_unit_test(t_big_reservation_respects_priority),
		cmocka_unit_test(t_oversized_never_reserves),
		cmocka_unit_test(t_capacity_exact),
		cmocka_unit_test(t_queue_full_exact),
		cmocka_unit_test(t_reject_frees_payload),
		cmocka_unit_test(t_ids_unique_first_id),
		cmocka_unit_test(t_expiry_queued),
		cmocka_unit_test(t_expiry_at_admission),
		cmocka_unit_test(t_timeout_running),
		cmocka_unit_test(t_cancel_states),
		cmocka_unit_test(t_cancel_reserved_unblocks),
		cmocka_unit_test(t_failed_keeps_output),
		cmocka_unit_test(t_finish_reason),
		cmocka_unit_test(t_start_error),
		cmocka_unit_test(t_output_limit),
		cmocka_unit_test(t_emit_batch),
		cmocka_unit_test(t_late_subscriber_replay),
		cmocka_unit_test(t_sub_take_batches),
		cmocka_unit_test(t_result_many_times),
		cmocka_unit_test(t_retention_prune),
		cmocka_unit_test(t_limit_max_units),
		cmocka_unit_test(t_limit_queue_depth),
		cmocka_unit_test(t_max_running_caps_admission),
		cmocka_unit_test(t_capacity_caps_admission),
		cmocka_unit_test(t_lower_max_running_keeps_work),
		cmocka_unit_test(t_raise_max_running_admits),
		cmocka_unit_test(t_threads_reach_executor),
		cmocka_unit_test(t_limit_timeout),
		cmocka_unit_test(t_limit_retention),
		cmocka_unit_test(t_stats_snapshot),
		cmocka_unit_test(t_stats_wait_window),
		cmocka_unit_test(t_list),
		cmocka_unit_test(t_shutdown_cancel),
		cmocka_unit_test(t_shutdown_drain_bounded),
		cmocka_unit_test(t_store_records),
		cmocka_unit_test(t_new_rejects_bad_config),
		cmocka_unit_test(t_notify),
		cmocka_unit_test(t_events),
		cmocka_unit_test(t_hold_confirm),
		cmocka_unit_test(t_restore_order),
		cmocka_unit_test(t_restore_ended),
		cmocka_unit_test(t_shared_ids),
		cmocka_unit_test(t_retention_count_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
