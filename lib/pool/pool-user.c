/*
 * pool-user.c — fair units: the queued + running units of each submitter.
 *
 * DESIGN
 *   Without a per-user bound one allowed user could fill the queue and the
 *   units with its own work while the daemon's owner waits. Each uid's
 *   units (the costs of its queued and running tasks) are counted here:
 *   raised at submit (pool_user_add, after pool_user_check under the same
 *   lock hold) and lowered at the task's end (pool_user_sub), the same two
 *   places the queue and the units change. The cap is max_user_units for
 *   every uid but owner_uid, which has max_owner_units (POOL_UNLIMITED, off,
 *   by default). Submitters are few (the allow lists), so a small array
 *   searched linearly is enough; a uid's entry is dropped at 0.
 *
 * All functions run under the pool's mu.
 */
#include <stdlib.h>

#include "plot/pool.h"
#include "pool/pool-impl.h"

static struct pool_user *find(struct pool *p, uint32_t uid)
{
	for (size_t i = 0; i < p->n_users; i++)
		if (p->users[i].uid == uid)
			return &p->users[i];
	return NULL;
}

static uint64_t cap_of(const struct pool *p, uint32_t uid)
{
	return uid == p->owner_uid ? p->max_owner_units : p->max_user_units;
}

int pool_user_check(struct pool *p, uint32_t uid, uint64_t cost)
{
	uint64_t cap = cap_of(p, uid);
	struct pool_user *u = find(p, uid);
	uint64_t have = u ? u->units : 0;
	if (cap != POOL_UNLIMITED && (cost > cap || have > cap - cost))
		return -POOL_E_USER_CAP;
	if (!u && p->n_users == p->cap_users) {
		size_t n = p->cap_users ? 2 * p->cap_users : 8;
		struct pool_user *v = realloc(p->users, n * sizeof *v);
		if (!v)
			return -POOL_E_NOMEM;
		p->users = v;
		p->cap_users = n;
	}
	return 0;
}

void pool_user_add(struct pool *p, uint32_t uid, uint64_t cost)
{
	struct pool_user *u = find(p, uid);
	if (!u) {
		if (p->n_users == p->cap_users)
			return; /* pool_user_check reserved room; a restored task may not */
		u = &p->users[p->n_users++];
		u->uid = uid;
		u->units = 0;
	}
	u->units = cost > UINT64_MAX - u->units ? UINT64_MAX : u->units + cost;
}

void pool_user_sub(struct pool *p, uint32_t uid, uint64_t cost)
{
	struct pool_user *u = find(p, uid);
	if (!u)
		return;
	u->units = cost >= u->units ? 0 : u->units - cost;
	if (!u->units)
		*u = p->users[--p->n_users];
}

void pool_user_free(struct pool *p)
{
	free(p->users);
	p->users = NULL;
	p->n_users = p->cap_users = 0;
}
