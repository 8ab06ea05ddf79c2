/*
 * pool-aging.c — optional priority aging (pool.h, AGING).
 *
 * Priority is strict between levels, so under steady normal-priority load a
 * low task waits until its deadline. With aging_ns set, a task that waited
 * aging_ns at its level moves to the tail of the next level, up to high
 * (critical stays for what is submitted as critical). Within a level tasks
 * are in order of the time they joined it (submits and aged tasks are both
 * appended, at "now"), so the head of each level is the next to age and
 * pool_age_next is O(levels). Runs under the pool's mu, from tick_locked
 * (the timer thread, or pool_tick with manual_tick).
 */
#include <stdint.h>

#include "plot/pool.h"
#include "pool/pool-impl.h"

void pool_age(struct pool *p, uint64_t now)
{
	if (!p->aging_ns)
		return;
	/* highest first, so a task rises at most one level per call */
	for (int prio = POOL_PRIO_HIGH - 1; prio >= POOL_PRIO_LOW; prio--) {
		struct pool_task *t;
		while ((t = p->queue[prio].head) && now - t->level_ns >= p->aging_ns &&
		       now >= t->level_ns)
			pool_requeue(p, t, prio + 1, now);
	}
}

uint64_t pool_age_next(const struct pool *p)
{
	uint64_t at = UINT64_MAX;
	if (!p->aging_ns)
		return at;
	for (int prio = POOL_PRIO_LOW; prio < POOL_PRIO_HIGH; prio++) {
		const struct pool_task *t = p->queue[prio].head;
		if (!t)
			continue;
		uint64_t due = t->level_ns > UINT64_MAX - p->aging_ns ? UINT64_MAX
								       : t->level_ns + p->aging_ns;
		if (due < at)
			at = due;
	}
	return at;
}
