/*
 * test-threads.c — lib/llm/cpu/threads.c: every index runs exactly once per run,
 * thread count changes (between runs and concurrently with them), results
 * are visible to the caller, an idle pool sleeps. Runs clean under
 * SAN=thread and SAN=address,undefined.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "llm/cpu/threads.h"

#define MAXT 16

/* What one run saw: how often each index ran and with which nth. */
struct rec {
	_Atomic unsigned count[MAXT];
	_Atomic unsigned nth_seen[MAXT];
	_Atomic int bad;          /* ith >= nth, or ith 0 not on the caller */
	pthread_t caller;
};

static void rec_fn(void *ctx, unsigned ith, unsigned nth)
{
	struct rec *r = ctx;

	if (ith >= nth || ith >= MAXT ||
	    (ith == 0) != !!pthread_equal(pthread_self(), r->caller)) {
		atomic_store(&r->bad, 1);
		return;
	}
	atomic_fetch_add(&r->count[ith], 1);
	atomic_store(&r->nth_seen[ith], nth);
}

static void rec_reset(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->caller = pthread_self();
}

/* Asserts the run just finished called indices 0..n-1 once each with
 * nth == n and nothing else. */
static void rec_check(struct rec *r, unsigned n)
{
	assert_int_equal(atomic_load(&r->bad), 0);
	for (unsigned i = 0; i < MAXT; i++) {
		assert_int_equal(atomic_load(&r->count[i]), i < n ? 1 : 0);
		if (i < n)
			assert_int_equal(atomic_load(&r->nth_seen[i]), n);
	}
}

static struct thr_pool *pool_new_ok(unsigned n)
{
	char err[128] = "";
	struct thr_pool *p = thr_pool_new(n, err, sizeof(err));

	assert_non_null(p);
	assert_string_equal(err, "");
	return p;
}

static void run_checked(struct thr_pool *p, unsigned n)
{
	struct rec r;

	rec_reset(&r);
	thr_pool_run(p, rec_fn, &r);
	rec_check(&r, n);
}

static void test_each_index_once(void **state)
{
	for (unsigned n = 1; n <= 6; n++) {
		struct thr_pool *p = pool_new_ok(n);

		assert_int_equal(thr_pool_threads(p), n);
		run_checked(p, n);
		thr_pool_free(p);
	}
}

/* Many back-to-back runs, with spinning on and off. */
static void test_many_runs(void **state)
{
	unsigned spins[] = { 0, 50 };

	for (unsigned s = 0; s < 2; s++) {
		struct thr_pool *p = pool_new_ok(4);

		thr_pool_set_spin_us(p, spins[s]);
		for (int i = 0; i < 2000; i++)
			run_checked(p, 4);
		thr_pool_free(p);
	}
}

static void test_set_threads_up_down(void **state)
{
	unsigned seq[] = { 4, 2, 8, 1, 3, 3, 16, 5, 1, 2 };
	struct thr_pool *p = pool_new_ok(1);

	thr_pool_set_spin_us(p, 0);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		assert_int_equal(thr_pool_set_threads(p, seq[i]), 0);
		assert_int_equal(thr_pool_threads(p), seq[i]);
		for (int k = 0; k < 20; k++)
			run_checked(p, seq[i]);
	}
	thr_pool_free(p);
}

static void test_bad_counts(void **state)
{
	char err[128] = "";
	struct thr_pool *p;

	assert_null(thr_pool_new(0, err, sizeof(err)));
	assert_non_null(strstr(err, "got 0"));
	assert_null(thr_pool_new(THR_MAX_THREADS + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "[1, 512]"));
	p = pool_new_ok(2);
	assert_int_equal(thr_pool_set_threads(p, 0), -EINVAL);
	assert_int_equal(thr_pool_set_threads(p, THR_MAX_THREADS + 1), -EINVAL);
	assert_int_equal(thr_pool_threads(p), 2);
	run_checked(p, 2);
	thr_pool_free(p);
}

/* Each share writes plain (non-atomic) memory; the caller must see all of
 * it after the run (TSan checks the happens-before edge). */
struct fill {
	int64_t n;
	int *a;
	uint32_t round;
};

static void fill_fn(void *ctx, unsigned ith, unsigned nth)
{
	struct fill *f = ctx;
	int64_t lo, hi;

	thr_split(f->n, ith, nth, &lo, &hi);
	for (int64_t i = lo; i < hi; i++)
		f->a[i] = (int)(i * 7 + f->round);
}

static void test_results_visible(void **state)
{
	static int a[1001];
	struct fill f = { .n = 1001, .a = a };
	struct thr_pool *p = pool_new_ok(3);

	for (f.round = 0; f.round < 50; f.round++) {
		thr_pool_run(p, fill_fn, &f);
		for (int i = 0; i < 1001; i++)
			assert_int_equal(a[i], i * 7 + (int)f.round);
	}
	thr_pool_free(p);
}

static void test_split_covers(void **state)
{
	for (int64_t n = 0; n < 40; n++)
		for (unsigned nth = 1; nth <= 9; nth++) {
			int64_t prev = 0, lo, hi;

			for (unsigned i = 0; i < nth; i++) {
				thr_split(n, i, nth, &lo, &hi);
				assert_int_equal(lo, prev);
				assert_true(hi - lo == n / nth ||
					    hi - lo == n / nth + 1);
				prev = hi;
			}
			assert_int_equal(prev, n);
		}
}

/* Another thread changes the count while the owner runs. Every run must
 * still be self-consistent: indices 0..nth-1 once each, one nth. */
struct changer {
	struct thr_pool *p;
	_Atomic int stop;
	_Atomic int failed;      /* cmocka asserts only on the test thread */
};

static void *changer_main(void *arg)
{
	struct changer *c = arg;
	unsigned k = 0;

	while (!atomic_load(&c->stop)) {
		if (thr_pool_set_threads(c->p, 1 + (k * 5) % 7) != 0)
			atomic_store(&c->failed, 1);
		k++;
	}
	return NULL;
}

static void test_set_threads_concurrent(void **state)
{
	struct changer c = { .p = pool_new_ok(3) };
	pthread_t t;

	thr_pool_set_spin_us(c.p, 0);
	assert_int_equal(pthread_create(&t, NULL, changer_main, &c), 0);
	for (int i = 0; i < 300; i++) {
		struct rec r;
		unsigned n;

		rec_reset(&r);
		thr_pool_run(c.p, rec_fn, &r);
		n = atomic_load(&r.nth_seen[0]);
		assert_in_range(n, 1, 7);
		rec_check(&r, n);
	}
	atomic_store(&c.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&c.failed), 0);
	thr_pool_free(c.p);
}

/* Poll (bounded, 10 s) until every worker sleeps on the condvar. */
static int all_asleep(struct thr_pool *p)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0; i < 10000; i++) {
		if (thr_pool_sleeping(p) == thr_pool_threads(p) - 1)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

/* An idle pool sleeps: with spinning off at once, with the default spin
 * once its bound has passed. Guards against a worker that polls forever. */
static void test_idle_sleeps(void **state)
{
	struct thr_pool *p = pool_new_ok(4);

	thr_pool_set_spin_us(p, 50);
	assert_true(all_asleep(p));
	run_checked(p, 4);
	assert_true(all_asleep(p));
	thr_pool_set_spin_us(p, 0);
	run_checked(p, 4);
	assert_true(all_asleep(p));
	thr_pool_set_spin_us(p, 100000);
	assert_int_equal(thr_pool_spin_us(p), 1000);
	thr_pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_index_once),
		cmocka_unit_test(test_many_runs),
		cmocka_unit_test(test_set_threads_up_down),
		cmocka_unit_test(test_bad_counts),
		cmocka_unit_test(test_results_visible),
		cmocka_unit_test(test_split_covers),
		cmocka_unit_test(test_set_threads_concurrent),
		cmocka_unit_test(test_idle_sleeps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
