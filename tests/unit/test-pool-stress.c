/*
 * test-pool-stress.c — many threads against one pool for a bounded time:
 * submitters (random priority, cost, deadline, job behaviour: ok, failing
 * mid-way, returning without finishing, slow and cancellable), a canceller,
 * a limit changer (units, queue depth, max_running, threads, timeout), subscribers, and a
 * checker that verifies pool_check_invariants() continuously.
 *
 * The pool persists records to a memory store meanwhile.
 *
 * At the end (after a drain shutdown) every accepted task must have reached
 * exactly one terminal state: the pool frees a task's payload when it ends,
 * so each payload must have been freed exactly once, no job ran twice, the
 * terminal counters add up to the accepted submits, and all units are back.
 *
 * Runs POOL_STRESS_SECS seconds (default 2; set it higher to soak).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/store.h"

#define MAX_TASKS (1u << 20)
#define MS 1000000ull
#define N_SUBMIT 4

enum { J_OK, J_FAIL, J_NOFINISH, J_SLOW, J_MODES };

struct payload {
	uint32_t idx;
	int mode;
};

static atomic_uchar g_freed[MAX_TASKS];
static atomic_uchar g_ran[MAX_TASKS];
static atomic_uint g_next_idx;
static atomic_ullong g_accepted, g_rejected;
static atomic_int g_stop;
static atomic_int g_bad; /* first failure seen by a helper thread */
static char g_bad_msg[256];
static pthread_mutex_t g_ids_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_ids[4096]; /* recent accepted ids, for cancel and subscribe */
static size_t g_nids;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void bad(const char *msg)
{
	int zero = 0;
	if (atomic_compare_exchange_strong(&g_bad, &zero, 1))
		snprintf(g_bad_msg, sizeof g_bad_msg, "%s", msg);
	atomic_store(&g_stop, 1);
}

static void payload_free(void *pl)
{
	struct payload *p = pl;
	if (atomic_fetch_add(&g_freed[p->idx], 1) != 0)
		bad("a payload was freed twice: a task ended twice");
	free(p);
}

static int job(void *ctx, struct pool_task *t, char *err, size_t errlen)
{
	struct payload *p = pool_task_payload(t);
	if (atomic_fetch_add(&g_ran[p->idx], 1) != 0)
		bad("a task ran twice");
	switch (p->mode) {
	case J_OK:
		pool_task_emit(t, "a", 1);
		pool_task_emit(t, "b", 1);
		return 0;
	case J_FAIL:
		pool_task_emit(t, "x", 1);
		snprintf(err, errlen, "failing job");
		return 1;
	case J_NOFINISH:
		return 0;
	default: /* J_SLOW: a few paced steps, stops when cancelled */
		for (int i = 0; i < 3; i++) {
			if (pool_task_wait_cancel(t, 1 * MS))
				return 0;
			pool_task_emit(t, "s", 1);
		}
		return 0;
	}
}

static void remember(uint64_t id)
{
	pthread_mutex_lock(&g_ids_mu);
	g_ids[g_nids++ % 4096] = id;
	pthread_mutex_unlock(&g_ids_mu);
}

static uint64_t pick(uint64_t *seed)
{
	pthread_mutex_lock(&g_ids_mu);
	size_t n = g_nids < 4096 ? g_nids : 4096;
	uint64_t id = n ? g_ids[rnd(seed) % n] : 0;
	pthread_mutex_unlock(&g_ids_mu);
	return id;
}

static void nap(void)
{
	struct timespec ts = { 0, 200000 };
	nanosleep(&ts, NULL);
}

/* ---- the threads ---------------------------------------------------------- */

static void submit_one(struct pool *p, uint64_t *seed)
{
	uint32_t idx = atomic_fetch_add(&g_next_idx, 1);
	if (idx >= MAX_TASKS) {
		atomic_store(&g_stop, 1);
		return;
	}
	struct payload *pl = malloc(sizeof *pl);
	pl->idx = idx;
	pl->mode = (int)(rnd(seed) % J_MODES);
	struct pool_submit s = {
		.priority = (int)(rnd(seed) % POOL_PRIO_COUNT),
		.cost = 1 + rnd(seed) % 12, /* sometimes above max_units: CAPACITY */
		.timeout_ns = rnd(seed) % 4 == 0 ? (1 + rnd(seed) % 5) * MS : 0,
		.payload = pl,
		.payload_free = payload_free,
	};
	uint64_t id;
	int rc = pool_submit(p, &s, &id);
	if (rc == 0) {
		atomic_fetch_add(&g_accepted, 1);
		remember(id);
	} else if (rc == -POOL_E_QUEUE_FULL || rc == -POOL_E_CAPACITY) {
		atomic_fetch_add(&g_rejected, 1);
		nap(); /* pacing, so a full queue does not turn into a spin */
	} else {
		bad("unexpected submit error");
	}
}

static void *submitter(void *arg)
{
	struct pool *p = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
	while (!atomic_load(&g_stop))
		submit_one(p, &seed);
	return NULL;
}

static void *canceller(void *arg)
{
	struct pool *p = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	while (!atomic_load(&g_stop)) {
		uint64_t id = pick(&seed);
		int rc = id ? pool_cancel(p, id) : 0;
		if (rc != 0 && rc != -POOL_E_STATE && rc != -POOL_E_NOT_FOUND)
			bad("unexpected cancel error");
		nap();
	}
	return NULL;
}

static void *limiter(void *arg)
{
	struct pool *p = arg;
	uint64_t seed = 0x123456789ull;
	while (!atomic_load(&g_stop)) {
		int rc = 0;
		switch (rnd(&seed) % 5) {
		case 0: rc = pool_set_limit(p, POOL_LIMIT_MAX_UNITS, 4 + rnd(&seed) % 20); break;
		case 1: rc = pool_set_limit(p, POOL_LIMIT_MAX_QUEUE_DEPTH, rnd(&seed) % 128); break;
		case 2: rc = pool_set_limit(p, POOL_LIMIT_MAX_RUNNING, 1 + rnd(&seed) % 6); break;
		case 3: rc = pool_set_limit(p, POOL_LIMIT_TIMEOUT_NS, rnd(&seed) % 2 * 3 * MS); break;
		case 4: rc = pool_set_limit(p, POOL_LIMIT_THREADS, rnd(&seed) % 6); break;
		}
		if (rc != 0)
			bad("set_limit failed");
		nap();
	}
	return NULL;
}

/* Follow random tasks to their end; a stream must end with END. */
static void *reader(void *arg)
{
	struct pool *p = arg;
	uint64_t seed = 0xabcdefull;
	while (!atomic_load(&g_stop)) {
		struct pool_sub *s;
		uint64_t id = pick(&seed);
		if (!id || pool_subscribe(p, id, &s) != 0) {
			nap();
			continue;
		}
		for (;;) {
			char *d = NULL;
			size_t len;
			int state = -1;
			int ev = pool_sub_next(s, &d, &len, &state, 2 * MS);
			free(d);
			if (ev == POOL_SUB_END && !POOL_STATE_TERMINAL(state))
				bad("END with a non-terminal state");
			if (ev != POOL_SUB_CHUNK)
				break;
		}
		pool_sub_close(s);
	}
	return NULL;
}

static void *checker(void *arg)
{
	struct pool *p = arg;
	char err[256];
	while (!atomic_load(&g_stop)) {
		if (pool_check_invariants(p, err, sizeof err) != 0)
			bad(err);
		nap();
	}
	return NULL;
}

/* ---- the test --------------------------------------------------------------- */

static double stress_secs(void)
{
	const char *e = getenv("POOL_STRESS_SECS");
	double s = e ? atof(e) : 2.0;
	return s > 0 ? s : 2.0;
}

static void run_for(double secs)
{
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	/* the test thread only waits for the run to end; the helpers do the work */
	while (nanosleep(&ts, &ts) != 0 && !atomic_load(&g_stop))
		;
}

static void final_checks(struct pool *p)
{
	struct pool_stats ps;
	char err[256];
	pool_stats(p, &ps);
	assert_int_equal(pool_check_invariants(p, err, sizeof err), 0);
	assert_int_equal(ps.queued, 0);
	assert_int_equal(ps.running, 0);
	assert_int_equal(ps.used_units, 0);
	assert_int_equal(ps.submitted, atomic_load(&g_accepted));
	assert_int_equal(ps.rejected, atomic_load(&g_rejected));
	assert_int_equal(ps.completed + ps.failed + ps.cancelled + ps.expired + ps.timed_out,
			 ps.submitted);
	print_message("stress: %llu accepted, %llu rejected; done %llu failed %llu "
		      "cancelled %llu expired %llu timeout %llu\n",
		      (unsigned long long)ps.submitted, (unsigned long long)ps.rejected,
		      (unsigned long long)ps.completed, (unsigned long long)ps.failed,
		      (unsigned long long)ps.cancelled, (unsigned long long)ps.expired,
		      (unsigned long long)ps.timed_out);
	assert_true(ps.completed > 0 && ps.failed > 0 && ps.cancelled > 0);
}

/* What the pool holds once pruning is stopped: the store must agree. */
struct snap {
	uint64_t mailbox;
	int state[4096];  /* -1: not in the pool */
	uint64_t bytes[4096];
	size_t n;
};

static void snap_take(struct pool *p, struct snap *sn)
{
	struct pool_stats ps;
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_RETENTION_NS, UINT64_MAX / 2), 0);
	pool_stats(p, &ps);
	sn->mailbox = ps.mailbox;
	sn->n = g_nids < 4096 ? g_nids : 4096;
	for (size_t i = 0; i < sn->n; i++) {
		struct pool_task_info ti;
		sn->state[i] = pool_task_info(p, g_ids[i], &ti) == 0 ? ti.state : -1;
		sn->bytes[i] = ti.output_bytes;
	}
}

/* After pool_free (every write drained): the store saw the writes in order,
 * so a retained task's record holds its terminal state, not an older
 * QUEUED/RUNNING snapshot, and a pruned task has no record. */
static void store_checks(struct store *sto, const struct snap *sn)
{
	assert_int_equal(sto->ops->count(sto->ctx), sn->mailbox);
	for (size_t i = 0; i < sn->n; i++) {
		struct store_record r;
		int in_store = store_get(sto, g_ids[i], &r) == 0;
		assert_int_equal(in_store, sn->state[i] >= 0);
		if (!in_store)
			continue;
		assert_int_equal(r.state, sn->state[i]);
		assert_int_equal(r.output_len, sn->bytes[i]);
		store_record_clear(&r);
	}
}

static void t_stress(void **st)
{
	struct store *sto = store_memory_new();
	assert_non_null(sto);
	struct pool_config c = { .name = "stress", .max_units = 16, .max_queue_depth = 64,
				 .max_running = 4, .threads = 4, .retention_ns = 20 * MS, .store = sto };
	char err[256];
	struct pool *p = pool_new(&c, pool_thread_executor_new(job, NULL, NULL), err, sizeof err);
	assert_non_null(p);
	void *(*fns[])(void *) = { canceller, limiter, reader, checker };
	pthread_t th[N_SUBMIT + 4];
	for (int i = 0; i < N_SUBMIT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, submitter, p), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[N_SUBMIT + i], NULL, fns[i], p), 0);
	run_for(stress_secs());
	atomic_store(&g_stop, 1);
	for (int i = 0; i < N_SUBMIT + 4; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&g_bad))
		fail_msg("%s", g_bad_msg);
	/* units may have been lowered below some queued cost: raise, then drain */
	assert_int_equal(pool_set_limit(p, POOL_LIMIT_MAX_UNITS, 100), 0);
	assert_int_equal(pool_shutdown(p, POOL_SHUTDOWN_DRAIN, 30000 * MS), 0);
	final_checks(p);
	static struct snap sn;
	snap_take(p, &sn);
	/* after pool_free: executor threads may still be in their post-unlock
	 * work (payload frees) until pool_free joins them */
	pool_free(p);
	uint32_t n = atomic_load(&g_next_idx);
	if (n > MAX_TASKS)
		n = MAX_TASKS;
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load(&g_freed[i]) != 1)
			fail_msg("task #%u: payload freed %u times", i, atomic_load(&g_freed[i]));
	store_checks(sto, &sn);
	store_free(sto);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
