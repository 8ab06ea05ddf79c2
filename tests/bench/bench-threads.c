/*
 * bench-threads.c — dispatch cost of the compute thread pool.
 *
 * Usage: bench-threads [threads [runs [spin_us]]]
 *        (default 2 threads, 20000 runs, spin_us 50 for the spin config)
 *
 * A run of a trivial function (each share bumps its own cache line) measures
 * pure dispatch + join cost. Three configurations in the same process:
 *   baseline  the function called inline nth times (no pool)
 *   sleep     the pool with spinning off (every run wakes sleeping workers)
 *   spin      the pool with a bounded idle spin of spin_us
 * Prints runs/s and per-run p50/p99 latency for each; the last line is
 *   threads: runs_per_sec=N p50_us=X p99_us=X ...
 * where the first three figures are for the pool's default
 * (THR_SPIN_US_DEFAULT) and spin_* / sleep_* for the two configurations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llm/cpu/threads.h"

struct slot {
	_Alignas(64) volatile uint64_t v;
};

static struct slot slots[THR_MAX_THREADS];

static void trivial(void *ctx, unsigned ith, unsigned nth)
{
	slots[ith].v++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double runs_per_sec, p50_us, p99_us;
};

/* Time `runs` runs; pool NULL = the inline baseline with nth calls. */
static struct result measure(struct thr_pool *pool, unsigned nth, int runs,
			     uint64_t *lat)
{
	struct result r;
	uint64_t t0 = now_ns();

	for (int i = 0; i < runs; i++) {
		uint64_t a = now_ns();

		if (pool)
			thr_pool_run(pool, trivial, NULL);
		else
			for (unsigned k = 0; k < nth; k++)
				trivial(NULL, k, nth);
		lat[i] = now_ns() - a;
	}
	r.runs_per_sec = runs / ((now_ns() - t0) / 1e9);
	qsort(lat, (size_t)runs, sizeof(*lat), cmp_u64);
	r.p50_us = lat[runs / 2] / 1e3;
	r.p99_us = lat[(size_t)runs * 99 / 100] / 1e3;
	return r;
}

static void show(const char *name, struct result r)
{
	printf("%-9s runs/s %12.0f   p50 %8.2f us   p99 %8.2f us\n", name,
	       r.runs_per_sec, r.p50_us, r.p99_us);
}

static struct result run_config(struct thr_pool *pool, unsigned nth,
				int runs, uint64_t *lat, unsigned spin_us)
{
	thr_pool_set_spin_us(pool, spin_us);
	measure(pool, nth, runs / 10, lat); /* warm up: threads running */
	return measure(pool, nth, runs, lat);
}

int main(int argc, char **argv)
{
	unsigned nth = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
	int runs = argc > 2 ? atoi(argv[2]) : 20000;
	unsigned spin_us = argc > 3 ? (unsigned)atoi(argv[3]) : 50;
	char err[256];
	struct thr_pool *pool;
	uint64_t *lat;
	struct result base, spin, sleep, dflt;

	if (runs < 100 || runs > 10000000 || spin_us == 0) {
		fprintf(stderr, "bench-threads: runs in [100, 1e7], spin_us > 0\n");
		return 2;
	}
	pool = thr_pool_new(nth, err, sizeof(err));
	lat = malloc(sizeof(*lat) * (size_t)runs);
	if (!pool || !lat) {
		fprintf(stderr, "bench-threads: %s\n", pool ? "out of memory" : err);
		return 1;
	}
	base = measure(NULL, nth, runs, lat);
	sleep = run_config(pool, nth, runs, lat, 0);
	spin = run_config(pool, nth, runs, lat, spin_us);
	spin_us = thr_pool_spin_us(pool); /* clamped */
	dflt = THR_SPIN_US_DEFAULT ? spin : sleep;
	printf("threads=%u runs=%d default spin_us=%d\n", nth, runs,
	       THR_SPIN_US_DEFAULT);
	show("baseline", base);
	show("sleep", sleep);
	show("spin", spin);
	printf("threads: runs_per_sec=%.0f p50_us=%.2f p99_us=%.2f threads=%u "
	       "sleep_runs_per_sec=%.0f sleep_p50_us=%.2f sleep_p99_us=%.2f "
	       "spin_us=%u spin_runs_per_sec=%.0f spin_p50_us=%.2f "
	       "spin_p99_us=%.2f baseline_p50_us=%.3f spin_vs_sleep=%.2f\n",
	       dflt.runs_per_sec, dflt.p50_us, dflt.p99_us, nth,
	       sleep.runs_per_sec, sleep.p50_us, sleep.p99_us, spin_us,
	       spin.runs_per_sec, spin.p50_us, spin.p99_us, base.p50_us,
	       spin.runs_per_sec / sleep.runs_per_sec);
	thr_pool_free(pool);
	free(lat);
	return 0;
}
