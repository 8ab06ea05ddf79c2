/*
 * threads.h — persistent compute thread pool (private to lib/llm).
 *
 * The forward pass splits each matmul across n threads with
 * thr_pool_run(pool, fn, ctx): fn(ctx, ith, nth) runs once for every
 * ith in [0, nth) — ith 0 on the caller's own thread, the others on
 * pool threads — and thr_pool_run returns when all of them are done.
 * A decode step issues a few hundred such runs, so dispatch is cheap: one
 * uncontended mutex round trip to publish the run, atomics to count the
 * finishers.
 *
 * Idle policy: by default (THR_SPIN_US_DEFAULT = 0) a worker sleeps on a
 * condition variable as soon as it has nothing to do, and the caller sleeps
 * while it waits for the workers, so an idle pool costs no CPU at all.
 * thr_pool_set_spin_us(pool, us) enables a bounded spin (at most 1000 us,
 * pause first, then sched_yield) before sleeping: on a dedicated machine it
 * cuts dispatch latency from ~4 us to ~0.4 us, but on an oversubscribed one
 * spinners lose their CPU share and runs get slower (see threads.c, SPIN).
 *
 * Ownership and threading rules:
 *   - One owner thread calls thr_pool_run (the engine thread). Two
 *     concurrent runs on one pool are a broken invariant (asserted). fn
 *     must not call thr_pool_run on the same pool.
 *   - thr_pool_set_threads and thr_pool_set_spin_us may be called from any
 *     thread at any time, also while a run is in progress. A run reads the
 *     thread count once when it starts; a change applies to every run that
 *     starts after the setter returned, never to one already running. When
 *     the count shrinks, the setter waits for the surplus threads to finish
 *     their share of a running run and exit.
 *   - thr_pool_free must not race with thr_pool_run or the setters.
 */
#ifndef PLOT_LLM_THREADS_H
#define PLOT_LLM_THREADS_H

#include <stddef.h>
#include <stdint.h>

#define THR_MAX_THREADS 512    /* upper bound for n, caller included */
#define THR_SPIN_US_DEFAULT 0  /* idle spin, microseconds: off (measured) */

struct thr_pool;

typedef void (*thr_fn)(void *ctx, unsigned ith, unsigned nth);

/* A pool of n threads, the caller's thread included (n = 1: no extra
 * threads; runs call fn inline). NULL on error, with err filled. */
struct thr_pool *thr_pool_new(unsigned n, char *err, size_t errlen);
void thr_pool_free(struct thr_pool *pool);

/* Run fn(ctx, ith, nth) for ith = 0..nth-1, nth = thr_pool_threads() at
 * the start of the run; returns when all calls have returned, with their
 * memory effects visible to the caller. */
void thr_pool_run(struct thr_pool *pool, thr_fn fn, void *ctx);

/* Change the thread count (1..THR_MAX_THREADS). 0 on success; -EINVAL for
 * an out-of-range n; -EAGAIN (or another -errno) if a thread could not be
 * created, in which case the count is unchanged. */
int thr_pool_set_threads(struct thr_pool *pool, unsigned n);
unsigned thr_pool_threads(const struct thr_pool *pool);

/* Bound of the idle spin in microseconds (0 = sleep at once); at most
 * 1000, larger values are clamped. */
void thr_pool_set_spin_us(struct thr_pool *pool, unsigned us);
unsigned thr_pool_spin_us(const struct thr_pool *pool);

/* Workers asleep on the condition variable right now (for tests and
 * stats: an idle pool reaches thr_pool_threads() - 1 once the spin bound
 * has passed). */
unsigned thr_pool_sleeping(struct thr_pool *pool);

/* The share [*lo, *hi) of n items that thread ith of nth owns: contiguous,
 * sizes differ by at most one, the same for the same (n, ith, nth). */
static inline void thr_split(int64_t n, unsigned ith, unsigned nth,
			     int64_t *lo, int64_t *hi)
{
	int64_t q = n / nth, r = n % nth;

	*lo = (int64_t)ith * q + ((int64_t)ith < r ? (int64_t)ith : r);
	*hi = *lo + q + ((int64_t)ith < r ? 1 : 0);
}

#endif
