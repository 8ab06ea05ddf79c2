/*
 * pool-stats.c — the pool's read-only views: names of codes, the stats
 * snapshot and the invariant check.
 *
 * The snapshot copies every counter and the queue-wait samples under one
 * hold of the pool lock, so the figures agree with each other; the samples
 * are sorted for p50/p99 after unlocking. The invariant check walks the
 * lists under the lock and compares them with the counters (see pool.c,
 * INVARIANTS); tests and the stress test call it continuously.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "pool/pool-impl.h"

/* ---- names ------------------------------------------------------------ */

static const char *const err_names[] = {
	"OK", "QUEUE_FULL", "CAPACITY", "SHUTDOWN", "INVALID",
	"NOT_FOUND", "TIMEDOUT", "NOMEM", "STATE", "USER_CAP",
};
static const char *const prio_names[] = { "low", "normal", "high", "critical" };
static const char *const state_names[] = {
	"queued", "running", "done", "failed", "cancelled", "expired", "timeout",
};

const char *pool_err_name(int err)
{
	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof err_names / sizeof err_names[0])
		return "UNKNOWN";
	return err_names[err];
}

const char *pool_prio_name(int prio)
{
	return prio >= 0 && prio < POOL_PRIO_COUNT ? prio_names[prio] : "unknown";
}

int pool_prio_parse(const char *s)
{
	for (int i = 0; s && i < POOL_PRIO_COUNT; i++)
		if (strcmp(s, prio_names[i]) == 0)
			return i;
	return -1;
}

const char *pool_state_name(int state)
{
	return state >= 0 && state < POOL_STATE_COUNT ? state_names[state] : "unknown";
}

const char *pool_finish_name(int finish)
{
	static const char *const names[POOL_FINISH_COUNT] = {
		"", "eos", "max_tokens", "stop", "cancel", "deadline", "error",
	};
	return finish >= 0 && finish < POOL_FINISH_COUNT ? names[finish] : "";
}

int pool_state_parse(const char *s)
{
	for (int i = 0; s && i < POOL_STATE_COUNT; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

/* ---- stats and invariants ---------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted samples. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
	if (!n)
		return 0;
	size_t rank = (n * pct + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

static void stats_locked(struct pool *p, struct pool_stats *o)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < POOL_PRIO_COUNT; i++) {
		o->queued_by_prio[i] = p->queue[i].n;
		o->queued += p->queue[i].n;
	}
	o->running = p->running.n;
	o->used_units = p->used_units;
	o->max_units = p->max_units;
	o->max_queue_depth = p->max_queue_depth;
	o->threads = p->threads;
	o->max_running = p->max_running;
	o->capacity = p->capacity;
	o->running_limit = pool_running_limit(p);
	o->timeout_ns = p->timeout_ns;
	o->retention_ns = p->retention_ns;
	o->submitted = p->submitted;
	o->completed = p->completed;
	o->tokens = p->tokens;
	o->prompt_tokens = p->prompt_tokens;
	o->failed = p->failed;
	o->cancelled = p->cancelled;
	o->expired = p->expired;
	o->timed_out = p->timed_out;
	o->rejected_queue_full = p->rej_queue_full;
	o->rejected_capacity = p->rej_capacity;
	o->rejected = p->rej_queue_full + p->rej_capacity + p->rej_shutdown;
	o->mailbox = p->mailbox.n;
	o->shutting_down = p->shutting_down;
	o->queue_wait_count = p->wait_count;
	o->queue_wait_sum_ns = p->wait_sum_ns;
}

void pool_stats(struct pool *p, struct pool_stats *out)
{
	uint64_t w[POOL_WAIT_RING]; /* 32 KiB */
	size_t n;

	pthread_mutex_lock(&p->mu);
	stats_locked(p, out);
	n = p->wait_n;
	memcpy(w, p->waits, n * sizeof w[0]);
	pthread_mutex_unlock(&p->mu);
	/* sorted outside the lock: the samples were copied in the same hold */
	qsort(w, n, sizeof w[0], cmp_u64);
	out->queue_wait_p50_ns = percentile(w, n, 50);
	out->queue_wait_p99_ns = percentile(w, n, 99);
}

static const char *check_locked(struct pool *p)
{
	uint64_t sum = 0, n = 0;
	for (struct pool_task *t = p->running.head; t; t = t->next, n++) {
		if (t->state != POOL_RUNNING)
			return "a task on the running list is not RUNNING";
		sum += t->cost;
	}
	if (n != p->running.n)
		return "running count differs from the running list";
	if (sum != p->used_units)
		return "used_units differs from the sum of running costs";
	if (p->used_units > p->max_units && p->admits != p->units_lowered_at)
		return "used_units > max_units after an admission";
	if (p->running.n > pool_running_limit(p) && p->admits != p->running_lowered_at)
		return "running > running limit after an admission";
	for (int i = 0; i < POOL_PRIO_COUNT; i++)
		for (struct pool_task *t = p->queue[i].head; t; t = t->next)
			if (t->state != POOL_QUEUED || t->prio != i)
				return "a task on a queue list is not QUEUED at that priority";
	for (struct pool_task *t = p->mailbox.head; t; t = t->next)
		if (!POOL_STATE_TERMINAL(t->state))
			return "a task in the mailbox is not terminal";
	return NULL;
}

int pool_check_invariants(struct pool *p, char *err, size_t errlen)
{
	pthread_mutex_lock(&p->mu);
	const char *why = check_locked(p);
	if (why)
		snprintf(err, errlen, "pool %s: %s (used=%llu max=%llu running=%llu limit=%u)",
			 p->name, why, (unsigned long long)p->used_units,
			 (unsigned long long)p->max_units, (unsigned long long)p->running.n,
			 pool_running_limit(p));
	pthread_mutex_unlock(&p->mu);
	return why ? -1 : 0;
}

