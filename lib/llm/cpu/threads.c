/*
 * threads.c — persistent compute thread pool (see threads.h for the API).
 *
 * DESIGN
 *   The owner publishes a run by writing fn/ctx, setting `pending` to the
 *   number of helper threads taking part, and storing one 64-bit `word` =
 *   (generation << 32 | nth) under `mu`. Workers notice a new generation
 *   either while spinning (atomic load, no lock) or by being woken from
 *   `wake`. Worker i takes part iff i < nth of that word; it runs its share
 *   and decrements `pending`; the one that brings it to zero signals `done`
 *   under `mu`. The owner runs share 0 itself, then spins (bounded) and
 *   finally sleeps on `done` until `pending` is zero.
 *
 *   gen and nth travel in one atomic word so a worker that wakes late never
 *   pairs one run's generation with another run's thread count.
 *
 * INVARIANTS
 *   - fn/ctx are written only by the owner and only while no participant of
 *     the previous run is still reading them (the owner waited for it).
 *   - A participating worker never misses a generation: the owner cannot
 *     publish generation g+1 before every participant of g has finished.
 *   - `n` (threads alive, caller included) and the set of live workers
 *     change only under `ctl` and, for `n`, under `mu` too; a run reads `n`
 *     under `mu`, so a run never counts a thread that does not exist.
 *   - A new worker starts with `seen` = the generation current when it was
 *     created (passed in, not read later) so it cannot miss the first run
 *     that counts it.
 *   - A worker exits only when its index >= n and it owes no run: it loads
 *     n before word, so seeing the shrink implies seeing every run
 *     published before it.
 *
 * SPIN (measured with `make bench-threads`, 2 threads, trivial runs, on
 * the 2-core development box shared with ~5 other busy processes):
 *   sleep (spin 0):    120k-230k runs/s, p50 ~4-6 us, p99 ~10-50 us
 *   spin 50 us, pause: 4k-260k runs/s, p50 0.4-155 us, p99 0.1-2.9 ms
 *   spin 50 us, pause then sched_yield: 90k-140k runs/s, p50 0.35-8 us
 *   Spinning wins only when the threads own their cores (p50 0.4 us vs
 *   4 us); when the machine is oversubscribed, spinners burn their CFS
 *   share and get preempted in the middle of a run, which is far worse
 *   than a futex wake-up. Sleepers, by contrast, get wake-up preemption.
 *   So the default is 0 (never spin); a deployment with dedicated cores
 *   may turn on a bounded spin with thr_pool_set_spin_us.
 */
#include "llm/cpu/threads.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THR_SPIN_US_MAX 1000

struct thr_worker {
	struct thr_pool *pool;
	pthread_t tid;
	unsigned idx;
	uint32_t seen0;          /* generation current at creation */
};

struct thr_pool {
	pthread_mutex_t mu;      /* publishes runs, guards sleeping */
	pthread_cond_t wake;     /* workers: new run or exit */
	pthread_cond_t done;     /* owner: pending reached zero */
	pthread_mutex_t ctl;     /* serializes set_threads and free */
	_Atomic uint64_t word;   /* gen << 32 | nth of the latest run */
	_Atomic unsigned pending;/* helpers of the current run still working */
	_Atomic unsigned n;      /* threads alive, caller included */
	_Atomic unsigned spin_us;
	_Atomic int busy;        /* a run is in progress (asserts one owner) */
	unsigned n_sleep;        /* workers waiting on `wake`; under mu */
	thr_fn fn;               /* the current run; owner-written */
	void *ctx;
	struct thr_worker w[THR_MAX_THREADS]; /* w[0] unused: the caller */
};

static void *worker_main(void *arg);

static uint32_t word_gen(uint64_t w) { return (uint32_t)(w >> 32); }
static unsigned word_nth(uint64_t w) { return (unsigned)(w & 0xffffffffu); }

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One step of a bounded spin: pause for the first few hundred steps
 * (about a microsecond: the common case of back-to-back runs), then yield
 * so a spinner never keeps the core from a runnable thread, maybe our
 * own peer, when the machine is oversubscribed. */
static void spin_step(unsigned k)
{
	if (k > 256) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Start worker idx; signals are blocked in it so that only the daemon's
 * own threads handle them. Called with ctl and mu held. */
static int spawn(struct thr_pool *p, unsigned idx)
{
	sigset_t all, old;
	int rc;

	p->w[idx].pool = p;
	p->w[idx].idx = idx;
	p->w[idx].seen0 = word_gen(atomic_load(&p->word));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->w[idx].tid, NULL, worker_main, &p->w[idx]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Lower the count to n and join the surplus workers. Called with ctl held
 * and mu not held. */
static void shrink(struct thr_pool *p, unsigned n)
{
	unsigned old, i;

	pthread_mutex_lock(&p->mu);
	old = atomic_load(&p->n);
	atomic_store_explicit(&p->n, n, memory_order_release);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (i = n; i < old; i++)
		pthread_join(p->w[i].tid, NULL);
}

/* Raise the count to n. The new count is published before the workers
 * start (a worker that saw the old one would exit at once); no run can
 * start in between since mu is held. On failure the count goes back and
 * the workers already started see that and exit. Called with ctl held. */
static int grow(struct thr_pool *p, unsigned n)
{
	unsigned old, i;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	old = atomic_load(&p->n);
	atomic_store_explicit(&p->n, n, memory_order_release);
	for (i = old; i < n && rc == 0; i++)
		rc = spawn(p, i);
	if (rc != 0) {
		atomic_store_explicit(&p->n, old, memory_order_release);
		pthread_cond_broadcast(&p->wake);
	}
	pthread_mutex_unlock(&p->mu);
	if (rc == 0)
		return 0;
	for (unsigned j = old; j + 1 < i; j++) /* workers old..i-2 started */
		pthread_join(p->w[j].tid, NULL);
	return -rc;
}

int thr_pool_set_threads(struct thr_pool *p, unsigned n)
{
	int rc = 0;

	if (n < 1 || n > THR_MAX_THREADS)
		return -EINVAL;
	pthread_mutex_lock(&p->ctl);
	if (n > atomic_load(&p->n))
		rc = grow(p, n);
	else if (n < atomic_load(&p->n))
		shrink(p, n);
	pthread_mutex_unlock(&p->ctl);
	return rc;
}

unsigned thr_pool_threads(const struct thr_pool *p)
{
	return atomic_load_explicit(&((struct thr_pool *)p)->n,
				    memory_order_acquire);
}

void thr_pool_set_spin_us(struct thr_pool *p, unsigned us)
{
	atomic_store(&p->spin_us, us > THR_SPIN_US_MAX ? THR_SPIN_US_MAX : us);
}

unsigned thr_pool_spin_us(const struct thr_pool *p)
{
	return atomic_load(&((struct thr_pool *)p)->spin_us);
}

unsigned thr_pool_sleeping(struct thr_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->n_sleep;
	pthread_mutex_unlock(&p->mu);
	return n;
}

struct thr_pool *thr_pool_new(unsigned n, char *err, size_t errlen)
{
	struct thr_pool *p;
	int rc;

	if (n < 1 || n > THR_MAX_THREADS) {
		snprintf(err, errlen, "threads: count must be in [1, %d], got %u",
			 THR_MAX_THREADS, n);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "threads: out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->ctl, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->n, 1);
	atomic_init(&p->spin_us, THR_SPIN_US_DEFAULT);
	rc = thr_pool_set_threads(p, n);
	if (rc < 0) {
		snprintf(err, errlen, "threads: cannot start %u threads: %s",
			 n, strerror(-rc));
		thr_pool_free(p);
		return NULL;
	}
	return p;
}

void thr_pool_free(struct thr_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->ctl);
	shrink(p, 1);
	pthread_mutex_unlock(&p->ctl);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->ctl);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* What worker self should do next. RUN: *wd holds a run that counts it;
 * EXIT: it is surplus and owes nothing; WAIT: nothing new yet. Runs that
 * do not count the worker are consumed here. */
enum { WAIT, RUN, EXIT };

static int next_step(struct thr_pool *p, const struct thr_worker *self,
		     uint32_t *seen, uint64_t *wd)
{
	unsigned n = atomic_load_explicit(&p->n, memory_order_acquire);

	*wd = atomic_load_explicit(&p->word, memory_order_acquire);
	if (word_gen(*wd) != *seen) {
		*seen = word_gen(*wd);
		if (self->idx < word_nth(*wd))
			return RUN;
	}
	return self->idx >= n ? EXIT : WAIT;
}

/* Spin for at most spin_us, then sleep until there is something to do. */
static int wait_step(struct thr_pool *p, const struct thr_worker *self,
		     uint32_t *seen, uint64_t *wd)
{
	unsigned spin = atomic_load_explicit(&p->spin_us, memory_order_relaxed);
	uint64_t until = spin ? now_ns() + (uint64_t)spin * 1000u : 0;
	int st;

	for (unsigned k = 1; spin; k++) {
		if ((st = next_step(p, self, seen, wd)) != WAIT)
			return st;
		spin_step(k);
		if (k % 32 == 0 && now_ns() >= until)
			break;
	}
	pthread_mutex_lock(&p->mu);
	p->n_sleep++;
	while ((st = next_step(p, self, seen, wd)) == WAIT)
		pthread_cond_wait(&p->wake, &p->mu);
	p->n_sleep--;
	pthread_mutex_unlock(&p->mu);
	return st;
}

static void *worker_main(void *arg)
{
	struct thr_worker *self = arg;
	struct thr_pool *p = self->pool;
	uint32_t seen = self->seen0;
	uint64_t wd;

	while (wait_step(p, self, &seen, &wd) == RUN) {
		p->fn(p->ctx, self->idx, word_nth(wd));
		if (atomic_fetch_sub_explicit(&p->pending, 1,
					      memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
	return NULL;
}

/* Wait until every helper of the current run has finished. */
static void wait_done(struct thr_pool *p)
{
	unsigned spin = atomic_load_explicit(&p->spin_us, memory_order_relaxed);
	uint64_t until = spin ? now_ns() + (uint64_t)spin * 1000u : 0;

	for (unsigned k = 1; spin; k++) {
		if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
			return;
		spin_step(k);
		if (k % 32 == 0 && now_ns() >= until)
			break;
	}
	pthread_mutex_lock(&p->mu);
	while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void thr_pool_run(struct thr_pool *p, thr_fn fn, void *ctx)
{
	unsigned nth;
	uint64_t wd;
	int was_busy = atomic_exchange(&p->busy, 1);

	assert(!was_busy && "thr_pool_run: concurrent runs on one pool");
	(void)was_busy;
	pthread_mutex_lock(&p->mu);
	nth = atomic_load(&p->n);
	if (nth > 1) {
		p->fn = fn;
		p->ctx = ctx;
		atomic_store_explicit(&p->pending, nth - 1, memory_order_relaxed);
		wd = atomic_load(&p->word);
		wd = ((uint64_t)(word_gen(wd) + 1) << 32) | nth;
		atomic_store_explicit(&p->word, wd, memory_order_release);
		if (p->n_sleep)
			pthread_cond_broadcast(&p->wake);
	}
	pthread_mutex_unlock(&p->mu);
	fn(ctx, 0, nth);
	if (nth > 1)
		wait_done(p);
	atomic_store(&p->busy, 0);
}
