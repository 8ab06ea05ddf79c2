/*
 * test-pool-fair.c — fair units (lib/pool/pool-user.c): a per-user cap on
 * queued + running units, the owner's own cap off by default, and with
 * unlimited max_units a huge cost holds nothing back. The last test races
 * submitters of several uids against cancels from threads, for TSan
 * (make CC=clang SAN=thread check-threads). t_aging: optional priority
 * aging on a fake clock (manual_tick).
 *
 * The executor records started tasks; the test finishes them itself.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/pool.h"

#define OWNER 1000
#define GUEST 2000
#define MAXT 4096

struct rec {
	pthread_mutex_t mu;
	struct pool_task *t[MAXT];
	size_t n;
};

static int rec_start(void *ctx, struct pool_task *t)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	if (r->n < MAXT) {
		pool_task_ref(t);
		r->t[r->n++] = t;
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static void rec_cancel(void *ctx, struct pool_task *t)
{
	(void)ctx;
	pool_task_finish(t, 0, "cancelled");
}

static int rec_threads(void *ctx, unsigned n, unsigned *cap)
{
	(void)ctx;
	(void)n;
	*cap = POOL_NO_CAP;
	return 0;
}

static void rec_stop(void *ctx) { (void)ctx; }

static void rec_free(void *ctx)
{
	struct rec *r = ctx;
	for (size_t i = 0; i < r->n; i++)
		pool_task_unref(r->t[i]);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static const struct pool_executor_ops rec_ops = {
	rec_start, rec_cancel, rec_threads, rec_stop, rec_free,
};

static struct pool *mk(uint64_t max_units, unsigned max_running, uint64_t user_cap,
		       uint64_t owner_cap, struct rec **rp)
{
	char err[256];
	struct pool_config c = { .name = "fair", .max_units = max_units,
				 .max_queue_depth = POOL_UNLIMITED, .max_running = max_running,
				 .retention_ns = 1000000000ull, .max_user_units = user_cap,
				 .max_owner_units = owner_cap, .owner_uid = OWNER };
	struct rec *r = calloc(1, sizeof *r);
	assert_non_null(r);
	pthread_mutex_init(&r->mu, NULL);
	*rp = r;
	struct pool *p = pool_new(&c, (struct pool_executor){ &rec_ops, r }, err, sizeof err);
	assert_non_null(p);
	return p;
}

static int submit_as(struct pool *p, uint32_t uid, uint64_t cost, uint64_t *id)
{
	struct pool_submit s = { .priority = POOL_PRIO_NORMAL, .cost = cost, .owner_uid = uid };
	uint64_t dummy;
	return pool_submit(p, &s, id ? id : &dummy);
}

static void finish_all(struct pool *p, struct rec *r)
{
	pool_shutdown(p, POOL_SHUTDOWN_CANCEL, 0);
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		pool_task_finish(r->t[i], 0, "teardown");
	pthread_mutex_unlock(&r->mu);
	pool_free(p);
}

static void t_user_cap(void **st)
{
	struct rec *r;
	struct pool *p = mk(100, 1, 10, 0, &r);
	uint64_t a, b;
	assert_int_equal(submit_as(p, GUEST, 4, &a), 0);  /* runs */
	assert_int_equal(submit_as(p, GUEST, 4, &b), 0);  /* queued: 8 in all */
	assert_int_equal(submit_as(p, GUEST, 4, NULL), -POOL_E_USER_CAP);
	assert_int_equal(submit_as(p, GUEST, 2, NULL), 0); /* exactly 10 */
	assert_int_equal(submit_as(p, GUEST, 11, NULL), -POOL_E_USER_CAP);
	/* the owner is not capped by default, another user has its own count */
	assert_int_equal(submit_as(p, OWNER, 50, NULL), 0);
	assert_int_equal(submit_as(p, GUEST + 1, 10, NULL), 0);
	/* a cancelled queued task and a finished running one give units back */
	assert_int_equal(pool_cancel(p, b), 0);
	assert_int_equal(submit_as(p, GUEST, 4, NULL), 0);
	assert_int_equal(submit_as(p, GUEST, 1, NULL), -POOL_E_USER_CAP);
	pool_task_finish(r->t[0], 1, NULL);
	assert_int_equal(submit_as(p, GUEST, 4, NULL), 0);
	struct pool_stats ps;
	pool_stats(p, &ps);
	assert_int_equal(ps.rejected_queue_full, 3);
	finish_all(p, r);
}

static void t_owner_cap(void **st)
{
	struct rec *r;
	struct pool *p = mk(100, 1, 0, 5, &r);
	assert_int_equal(submit_as(p, OWNER, 5, NULL), 0);
	assert_int_equal(submit_as(p, OWNER, 1, NULL), -POOL_E_USER_CAP);
	assert_int_equal(submit_as(p, GUEST, 60, NULL), 0); /* user cap off */
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_MAX_OWNER_UNITS, POOL_UNLIMITED), 0);
	assert_int_equal(submit_as(p, OWNER, 1, NULL), 0);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_MAX_USER_UNITS, 3), 0);
	assert_int_equal(pool_get_limit(p, POOL_LIMIT_MAX_USER_UNITS), 3);
	assert_int_equal(submit_as(p, GUEST, 1, NULL), -POOL_E_USER_CAP);
	assert_string_equal(pool_err_name(-POOL_E_USER_CAP), "USER_CAP");
	finish_all(p, r);
}

/* max_units unlimited: a cost of 2^64-1 runs, and the owner's work runs too. */
static void t_unlimited_huge_cost(void **st)
{
	struct rec *r;
	struct pool *p = mk(POOL_UNLIMITED, 4, 0, 0, &r);
	uint64_t hog, mine, more;
	assert_int_equal(submit_as(p, GUEST, UINT64_MAX, &hog), 0);
	assert_int_equal(submit_as(p, OWNER, 1, &mine), 0);
	assert_int_equal(submit_as(p, OWNER, UINT64_MAX - 1, &more), 0);
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(p, hog, &ti), 0);
	assert_int_equal(ti.state, POOL_RUNNING);
	assert_int_equal(pool_task_info(p, mine, &ti), 0);
	assert_int_equal(ti.state, POOL_RUNNING);
	assert_int_equal(pool_task_info(p, more, &ti), 0);
	assert_int_equal(ti.state, POOL_RUNNING);
	char err[256] = "";
	if (pool_check_invariants(p, err, sizeof err))
		fail_msg("%s", err);
	finish_all(p, r);
}

static uint64_t fake_now = 1000;
static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

static struct pool *mk_aging(uint64_t aging_ns, struct rec **rp)
{
	char err[256];
	struct pool_config c = { .name = "aging", .max_units = 100,
				 .max_queue_depth = POOL_UNLIMITED, .max_running = 1,
				 .retention_ns = 1000000000ull, .aging_ns = aging_ns,
				 .clock = { fake_clock, &fake_now }, .manual_tick = 1 };
	struct rec *r = calloc(1, sizeof *r);
	assert_non_null(r);
	pthread_mutex_init(&r->mu, NULL);
	*rp = r;
	struct pool *p = pool_new(&c, (struct pool_executor){ &rec_ops, r }, err, sizeof err);
	assert_non_null(p);
	return p;
}

static uint64_t submit_prio(struct pool *p, int prio)
{
	struct pool_submit s = { .priority = prio, .cost = 1 };
	uint64_t id;
	assert_int_equal(pool_submit(p, &s, &id), 0);
	return id;
}

static int prio_of(struct pool *p, uint64_t id)
{
	struct pool_task_info ti;
	assert_int_equal(pool_task_info(p, id, &ti), 0);
	return ti.priority;
}

/* With aging a low task overtakes normal work submitted after it aged;
 * without aging it would wait behind all of it. */
static void t_aging(void **st)
{
	struct rec *r;
	struct pool *p = mk_aging(10, &r);
	uint64_t a = submit_prio(p, POOL_PRIO_NORMAL); /* runs */
	uint64_t low = submit_prio(p, POOL_PRIO_LOW);
	uint64_t n1 = submit_prio(p, POOL_PRIO_NORMAL);
	uint64_t h = submit_prio(p, POOL_PRIO_HIGH);
	fake_now += 9;
	pool_tick(p);
	assert_int_equal(prio_of(p, low), POOL_PRIO_LOW);
	fake_now += 1;
	pool_tick(p);
	assert_int_equal(prio_of(p, low), POOL_PRIO_NORMAL);
	assert_int_equal(prio_of(p, n1), POOL_PRIO_HIGH); /* waited 10 at normal too */
	uint64_t n2 = submit_prio(p, POOL_PRIO_NORMAL);
	fake_now += 10;
	pool_tick(p);
	assert_int_equal(prio_of(p, h), POOL_PRIO_HIGH); /* never to critical */
	assert_int_equal(prio_of(p, low), POOL_PRIO_HIGH);
	assert_int_equal(prio_of(p, n2), POOL_PRIO_HIGH);
	/* high order: h (submitted high), n1 (aged first), low, n2 */
	uint64_t want[] = { a, h, n1, low, n2 };
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(r->n, i + 1);
		assert_int_equal(pool_task_id(r->t[i]), want[i]);
		pool_task_finish(r->t[i], 1, NULL);
	}
	finish_all(p, r);

	/* aging off: nothing moves however long it waits */
	p = mk_aging(0, &r);
	submit_prio(p, POOL_PRIO_NORMAL);
	low = submit_prio(p, POOL_PRIO_LOW);
	fake_now += 1000000;
	pool_tick(p);
	assert_int_equal(prio_of(p, low), POOL_PRIO_LOW);
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_AGING_NS, 5), 0);
	assert_int_equal(pool_get_limit(p, POOL_LIMIT_AGING_NS), 5);
	pool_tick(p);
	assert_int_equal(prio_of(p, low), POOL_PRIO_NORMAL);
	finish_all(p, r);
}

struct racer {
	struct pool *p;
	uint32_t uid;
	unsigned ok, capped;
};

static void *race(void *arg)
{
	struct racer *x = arg;
	for (int i = 0; i < 500; i++) {
		uint64_t id;
		int rc = submit_as(x->p, x->uid, 1 + (uint64_t)(i % 3), &id);
		if (rc == 0) {
			x->ok++;
			pool_cancel(x->p, id);
		} else {
			assert_int_equal(rc, -POOL_E_USER_CAP);
			x->capped++;
		}
	}
	return NULL;
}

static void t_threads(void **st)
{
	struct rec *r;
	struct pool *p = mk(100, 2, 4, 0, &r);
	struct racer x[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		x[i] = (struct racer){ p, GUEST + (uint32_t)i, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, race, &x[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(x[i].ok + x[i].capped, 500);
	/* everything was cancelled: every user is back to 0 units */
	for (int i = 0; i < 4; i++)
		assert_int_equal(submit_as(p, GUEST + (uint32_t)i, 4, NULL), 0);
	char err[256] = "";
	if (pool_check_invariants(p, err, sizeof err))
		fail_msg("%s", err);
	finish_all(p, r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_user_cap),
		cmocka_unit_test(t_owner_cap),
		cmocka_unit_test(t_unlimited_huge_cost),
		cmocka_unit_test(t_aging),
		cmocka_unit_test(t_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
