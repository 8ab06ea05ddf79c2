/*
 * pg-queue.c — the shared queue's operations: submit, claim, renew, append,
 * finish, cancel, sweep (the rules are in include/plot/pgq.h).
 *
 * DESIGN
 *   Each operation is one statement (autocommit, so one short transaction),
 *   except the claim, which is BEGIN, per model one locking SELECT ... FOR
 *   UPDATE SKIP LOCKED and one UPDATE, COMMIT: the admission walk (fit,
 *   skips, reservation) runs in C between them, on rows this transaction
 *   holds, so no other daemon can claim them meanwhile and none waits.
 *   Every write to a running task is guarded by "lease = $token AND
 *   state = RUNNING"; the row lock the statement takes (UPDATE, or FOR SHARE
 *   for an append) orders it against the sweep, so a write either lands
 *   before the lease is taken away or sees it gone.
 *   Parameters go as text except bytea (binary); numbers are formatted here.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "store/pg-impl.h"

/* "{1,2,3}": a bigint[] parameter */
static char *u64_array(const uint64_t *v, size_t n, size_t stride)
{
	char *s = malloc(n * 22 + 3), *p = s;
	if (!s)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		const uint64_t *x = (const uint64_t *)((const char *)v + i * stride);
		p += sprintf(p, "%s%llu", i ? "," : "", (unsigned long long)*x);
	}
	strcpy(p, "}");
	return s;
}

/* ---- submit ------------------------------------------------------------------ */

/* A key already used by this owner: ON CONFLICT leaves the row alone and
 * the second branch finds its id (existed = 1). */
static const char SQL_SUBMIT[] =
	"WITH ins AS (INSERT INTO plot_tasks (model, priority, cost, deadline, owner_uid, label,"
	"  max_restarts, request, key)"
	" VALUES ($1, $2, $3, CASE WHEN $4::bigint > 0"
	"   THEN now() + $4::bigint * interval '1 millisecond' END, $5, $6, $7, $8, $9)"
	" ON CONFLICT (owner_uid, key) WHERE key IS NOT NULL DO NOTHING"
	" RETURNING id, model)"
	"SELECT id, 0, pg_notify('plot_submit', model) FROM ins"
	" UNION ALL SELECT id, 1, NULL FROM plot_tasks"
	"  WHERE owner_uid = $5 AND key = $9 AND NOT EXISTS (SELECT 1 FROM ins)";

static int submit_check(const struct pgq_submit *s, char *err, size_t errlen)
{
	const char *why = !s->model || !*s->model ? "no model" :
			  s->cost < 1 ? "cost must be >= 1" :
			  s->max_restarts < 0 ? "max_restarts must be >= 0" :
			  s->priority < 0 || s->priority >= POOL_PRIO_COUNT ? "priority out of range" :
			  s->request_len > INT_MAX || (!s->request && s->request_len) ?
			  "request must be 0 to 2 GiB bytes" : NULL;
	if (!why)
		return 0;
	snprintf(err, errlen, "submit: %s", why);
	return -PGQ_E_INVAL;
}

static int submit_insert(struct pgq *q, const struct pgq_submit *s, uint64_t *id, char *err,
			 size_t errlen)
{
	char prio[24], cost[24], tmo[24], uid[24], mr[24];
	snprintf(prio, sizeof prio, "%d", s->priority);
	pgq_u64s(cost, s->cost);
	pgq_u64s(tmo, s->timeout_ms);
	pgq_u64s(uid, s->owner_uid);
	snprintf(mr, sizeof mr, "%d", s->max_restarts);
	const char *p[] = { s->model, prio, cost, tmo, uid, s->label, mr,
			    s->request ? s->request : "", s->key };
	int len[] = { 0, 0, 0, 0, 0, 0, 0, (int)s->request_len, 0 };
	int fmt[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	PGresult *r = pgq_exec_bin(q, "submit", SQL_SUBMIT, 9, p, len, fmt, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	if (PQntuples(r) != 1) { /* the keyed row went away between the two branches */
		PQclear(r);
		snprintf(err, errlen, "submit: key '%s' raced with a delete: retry", s->key);
		return -PGQ_E_QUERY;
	}
	*id = pgq_col_u64(r, 0, 0);
	int existed = atoi(PQgetvalue(r, 0, 1));
	PQclear(r);
	return existed;
}

/* With a shared depth: count and insert under a per-model advisory lock, so
 * two daemons submitting at once cannot both take the last place. The count
 * is its own statement: READ COMMITTED takes a statement's snapshot when it
 * starts, so a count in the locking statement would miss the insert of the
 * holder it waited for. */
static const char SQL_DEPTH_LOCK[] =
	"SELECT pg_advisory_xact_lock(hashtext('plot_submit:' || $1))";
static const char SQL_DEPTH[] =
	"SELECT count(*) FROM plot_tasks WHERE model = $1 AND state = 0";

static const char SQL_KEY[] = "SELECT id FROM plot_tasks WHERE owner_uid = $1 AND key = $2";

/* A full queue still answers a retried submit: 1 and the key's task, else 0. */
static int known_key(struct pgq *q, const struct pgq_submit *s, uint64_t *id, char *err,
		     size_t errlen)
{
	char uid[24];
	pgq_u64s(uid, s->owner_uid);
	const char *p[] = { uid, s->key };
	PGresult *r = pgq_exec(q, "submit (key)", SQL_KEY, 2, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int found = PQntuples(r) == 1;
	if (found)
		*id = pgq_col_u64(r, 0, 0);
	PQclear(r);
	return found;
}

static int submit_bounded(struct pgq *q, const struct pgq_submit *s, uint64_t *id, char *err,
			  size_t errlen)
{
	if (pgq_exec_cmd(q, "submit (begin)", "BEGIN", 0, NULL, err, errlen))
		return -PGQ_E_QUERY;
	const char *p[] = { s->model };
	PGresult *r = NULL;
	if (pgq_exec_cmd(q, "submit (lock)", SQL_DEPTH_LOCK, 1, p, err, errlen) == 0)
		r = pgq_exec(q, "submit (depth)", SQL_DEPTH, 1, p, err, errlen);
	int rc = r ? 0 : -PGQ_E_QUERY;
	uint64_t depth = r ? pgq_col_u64(r, 0, 0) : 0;
	PQclear(r);
	if (rc == 0 && depth >= s->max_queued && s->key)
		rc = known_key(q, s, id, err, errlen);
	if (rc == 0 && depth >= s->max_queued) {
		snprintf(err, errlen, "submit: the shared queue of model '%s' is full (%llu queued, "
			 "max_queued %llu)", s->model, (unsigned long long)depth,
			 (unsigned long long)s->max_queued);
		rc = -PGQ_E_FULL;
	}
	if (rc == 0)
		rc = submit_insert(q, s, id, err, errlen);
	if (rc >= 0 && pgq_exec_cmd(q, "submit (commit)", "COMMIT", 0, NULL, err, errlen))
		rc = -PGQ_E_QUERY;
	if (rc < 0)
		pgq_rollback(q);
	return rc;
}

int pgq_submit(struct pgq *q, const struct pgq_submit *s, uint64_t *id, char *err, size_t errlen)
{
	int rc = submit_check(s, err, errlen);
	if (rc < 0)
		return rc;
	return s->max_queued ? submit_bounded(q, s, id, err, errlen)
			     : submit_insert(q, s, id, err, errlen);
}

/* ---- claim ------------------------------------------------------------------- */

static const char SQL_CANDIDATES[] =
	"SELECT id, cost, skips FROM plot_tasks"
	" WHERE state = 0 AND model = $1 AND (deadline IS NULL OR deadline > now())"
	" ORDER BY priority DESC, id LIMIT " "64" " FOR UPDATE SKIP LOCKED";
_Static_assert(PGQ_CLAIM_WINDOW == 64, "SQL_CANDIDATES's LIMIT");

static const char SQL_TAKE[] =
	"UPDATE plot_tasks SET state = 1, lease = nextval('plot_lease_seq'), lease_owner = $2,"
	" lease_expires = now() + $3::bigint * interval '1 millisecond', started_at = now()"
	" WHERE id = ANY($1::bigint[])"
	" RETURNING id, lease, model, priority, cost, " EPOCH_US("deadline") ", owner_uid,"
	" attempts, request";

static const char SQL_SKIPS[] =
	"UPDATE plot_tasks t SET skips = t.skips + v.n"
	" FROM unnest($1::bigint[], $2::bigint[]) AS v(id, n) WHERE t.id = v.id";

/* One candidate of the admission walk. */
struct cand {
	uint64_t id, cost, skips, bump;
	int take;
};

/* lib/pool's admission rule over one model's locked candidates (pgq.h),
 * taking at most room tasks. */
static void admit(struct cand *c, size_t n, const struct pgq_want *w, size_t room)
{
	uint64_t free_u = w->free_units;
	unsigned limit = w->skip_limit ? w->skip_limit : POOL_SKIP_LIMIT;
	for (size_t i = 0; i < n && free_u > 0 && room > 0; i++) {
		if (c[i].cost <= free_u) {
			c[i].take = 1;
			free_u -= c[i].cost;
			room--;
			for (size_t j = 0; j < i; j++)
				if (!c[j].take)
					c[j].bump++;
			continue;
		}
		if (c[i].skips + c[i].bump >= limit && c[i].cost <= w->max_units)
			break; /* it reserves: nothing behind it starts */
	}
}

static int fill_claimed(const PGresult *r, int row, struct pgq_claimed *c)
{
	memset(c, 0, sizeof *c);
	c->id = pgq_col_u64(r, row, 0);
	c->lease = pgq_col_u64(r, row, 1);
	snprintf(c->model, sizeof c->model, "%s", PQgetvalue(r, row, 2));
	c->priority = atoi(PQgetvalue(r, row, 3));
	c->cost = pgq_col_u64(r, row, 4);
	c->deadline_ns = pgq_col_ns(r, row, 5);
	c->owner_uid = (uint32_t)pgq_col_u64(r, row, 6);
	c->attempts = atoi(PQgetvalue(r, row, 7));
	return pgq_col_bytea(r, row, 8, &c->request, &c->request_len);
}

/* Write the skip counts of passed-over candidates. */
static int write_skips(struct pgq *q, const struct cand *c, size_t n, char *err, size_t errlen)
{
	uint64_t ids[PGQ_CLAIM_WINDOW], bumps[PGQ_CLAIM_WINDOW];
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].bump) {
			ids[m] = c[i].id;
			bumps[m++] = c[i].bump;
		}
	if (!m)
		return 0;
	char *a = u64_array(ids, m, sizeof ids[0]), *b = u64_array(bumps, m, sizeof bumps[0]);
	const char *p[] = { a, b };
	int rc = a && b ? pgq_exec_cmd(q, "claim (skips)", SQL_SKIPS, 2, p, err, errlen)
			: -PGQ_E_NOMEM;
	free(a);
	free(b);
	return rc;
}

/* Take the admitted candidates; returned rows go to out in claim order. */
static int take(struct pgq *q, const struct cand *c, size_t n, uint64_t lease_ms,
		struct pgq_claimed *out, size_t *got, char *err, size_t errlen)
{
	uint64_t ids[PGQ_CLAIM_WINDOW];
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].take)
			ids[m++] = c[i].id;
	if (!m)
		return 0;
	char ms[24], *a = u64_array(ids, m, sizeof ids[0]);
	if (!a)
		return -PGQ_E_NOMEM;
	pgq_u64s(ms, lease_ms);
	const char *p[] = { a, q->name, ms };
	PGresult *r = pgq_exec(q, "claim", SQL_TAKE, 3, p, err, errlen);
	free(a);
	if (!r)
		return -PGQ_E_QUERY;
	int rc = 0;
	for (size_t k = 0; k < m && rc == 0; k++)      /* claim order: by ids[] */
		for (int row = 0; row < PQntuples(r); row++)
			if (pgq_col_u64(r, row, 0) == ids[k])
				rc = fill_claimed(r, row, &out[(*got)++]);
	PQclear(r);
	return rc;
}

static int claim_model(struct pgq *q, const struct pgq_want *w, uint64_t lease_ms,
		       struct pgq_claimed *out, size_t cap, size_t *got, char *err, size_t errlen)
{
	const char *p[] = { w->model };
	PGresult *r = pgq_exec(q, "claim (select)", SQL_CANDIDATES, 1, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	struct cand c[PGQ_CLAIM_WINDOW];
	size_t n = (size_t)PQntuples(r);
	for (size_t i = 0; i < n; i++)
		c[i] = (struct cand){ pgq_col_u64(r, i, 0), pgq_col_u64(r, i, 1), pgq_col_u64(r, i, 2), 0, 0 };
	PQclear(r);
	admit(c, n, w, cap - *got);
	int rc = write_skips(q, c, n, err, errlen);
	return rc ? rc : take(q, c, n, lease_ms, out, got, err, errlen);
}

/* The claim lock of a model: FNV-1a of its name, as the int4 key of a
 * transaction-level advisory lock in class PGQ_LOCK_CLASS. Two models that
 * share a key only share a lock. */
static int32_t lock_key(const char *model)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)model; *p; p++)
		h = (h ^ *p) * 16777619u;
	return (int32_t)h;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

static const char SQL_LOCK_TIMEOUT[] =
	"SELECT set_config('lock_timeout', '" PGQ_CLAIM_LOCK_TIMEOUT_MS "', true)";
static const char SQL_LOCK[] =
	"SELECT pg_advisory_xact_lock(" PGQ_LOCK_CLASS ", k) FROM unnest($1::int[]) AS k";

/* Take the claim lock of every model with free units, in key order (so two
 * claims over overlapping models never deadlock), each held to COMMIT.
 * Returns 1 when another claim held one past the lock timeout. */
static int lock_models(struct pgq *q, const struct pgq_want *want, size_t nwant, char *err,
		       size_t errlen)
{
	int32_t k[PGQ_MAX_MODELS];
	size_t m = 0;
	for (size_t i = 0; i < nwant && m < PGQ_MAX_MODELS; i++)
		if (want[i].free_units > 0)
			k[m++] = lock_key(want[i].model);
	if (!m)
		return 0;
	qsort(k, m, sizeof k[0], cmp_i32);
	char *a = malloc(m * 13 + 3), *p = a;
	if (!a)
		return -PGQ_E_NOMEM;
	*p++ = '{';
	for (size_t i = 0; i < m; i++)
		p += sprintf(p, "%s%d", i ? "," : "", (int)k[i]);
	strcpy(p, "}");
	const char *par[] = { a };
	int rc = pgq_exec_cmd(q, "claim (timeout)", SQL_LOCK_TIMEOUT, 0, NULL, err, errlen);
	if (rc == 0)
		rc = pgq_exec_cmd(q, "claim (lock)", SQL_LOCK, 1, par, err, errlen);
	free(a);
	return rc < 0 && !strcmp(q->sqlstate, "55P03") ? 1 : rc; /* lock_not_available */
}

int pgq_claim(struct pgq *q, const struct pgq_want *want, size_t nwant, uint64_t lease_ms,
	      struct pgq_claimed *out, size_t cap, size_t *n, char *err, size_t errlen)
{
	*n = 0;
	if (lease_ms == 0) {
		snprintf(err, errlen, "claim: lease_ms must be > 0");
		return -PGQ_E_INVAL;
	}
	if (nwant > PGQ_MAX_MODELS) {
		snprintf(err, errlen, "claim: %zu models, at most %d", nwant, PGQ_MAX_MODELS);
		return -PGQ_E_INVAL;
	}
	if (pgq_exec_cmd(q, "claim (begin)", "BEGIN", 0, NULL, err, errlen))
		return -PGQ_E_QUERY;
	int rc = lock_models(q, want, nwant, err, errlen);
	if (rc == 1) { /* another claim is stuck: nothing now; the next beat retries */
		pgq_rollback(q);
		return 0;
	}
	for (size_t i = 0; i < nwant && rc == 0 && *n < cap; i++)
		if (want[i].free_units > 0)
			rc = claim_model(q, &want[i], lease_ms, out, cap, n, err, errlen);
	if (rc == 0 && pgq_exec_cmd(q, "claim (commit)", "COMMIT", 0, NULL, err, errlen))
		rc = -PGQ_E_QUERY;
	if (rc < 0) {
		pgq_rollback(q);
		for (size_t i = 0; i < *n; i++)
			pgq_claimed_clear(&out[i]);
		*n = 0;
	}
	return rc;
}

void pgq_claimed_clear(struct pgq_claimed *c)
{
	free(c->request);
	c->request = NULL;
	c->request_len = 0;
}

/* ---- renew ------------------------------------------------------------------- */

static const char SQL_RENEW[] =
	"WITH held AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS h(id, lease)),"
	" ren AS (UPDATE plot_tasks t"
	"  SET lease_expires = now() + $3::bigint * interval '1 millisecond'"
	"  FROM held WHERE t.id = held.id AND t.lease = held.lease AND t.state = 1"
	"  RETURNING t.id),"
	" dm AS (INSERT INTO plot_daemons (name, units, running, seen) VALUES ($4, $5, $6, now())"
	"  ON CONFLICT (name) DO UPDATE"
	"  SET units = EXCLUDED.units, running = EXCLUDED.running, seen = now())"
	"SELECT h.id, h.lease, coalesce(t.state, -1) FROM held h"
	" LEFT JOIN plot_tasks t ON t.id = h.id"
	" WHERE h.id NOT IN (SELECT id FROM ren)";

int pgq_renew(struct pgq *q, const struct pgq_lease *held, size_t n, uint64_t lease_ms,
	      uint64_t units, uint64_t running, struct pgq_lost *lost, size_t *nlost,
	      char *err, size_t errlen)
{
	*nlost = 0;
	char *ids = u64_array(n ? &held->id : NULL, n, sizeof *held);
	char *leases = u64_array(n ? &held->lease : NULL, n, sizeof *held);
	char ms[24], un[24], rn[24];
	pgq_u64s(ms, lease_ms);
	pgq_u64s(un, units);
	pgq_u64s(rn, running);
	const char *p[] = { ids, leases, ms, q->name, un, rn };
	PGresult *r = ids && leases ? pgq_exec(q, "renew", SQL_RENEW, 6, p, err, errlen) : NULL;
	int rc = r ? 0 : ids && leases ? -PGQ_E_QUERY : -PGQ_E_NOMEM;
	free(ids);
	free(leases);
	for (int i = 0; r && i < PQntuples(r) && *nlost < n; i++)
		lost[(*nlost)++] = (struct pgq_lost){ pgq_col_u64(r, i, 0), pgq_col_u64(r, i, 1),
						       atoi(PQgetvalue(r, i, 2)) };
	PQclear(r);
	return rc;
}

/* ---- append, finish, cancel ----------------------------------------------------- */

static const char SQL_APPEND[] =
	"INSERT INTO plot_output (task_id, data)"
	" SELECT id, $3 FROM plot_tasks WHERE id = $1 AND lease = $2 AND state = 1 FOR SHARE";

int pgq_append(struct pgq *q, uint64_t id, uint64_t lease, const void *data, size_t len,
	       char *err, size_t errlen)
{
	char is[24], ls[24];
	if (len > INT_MAX || (!data && len)) {
		snprintf(err, errlen, "append: task %llu: a chunk is 0 to 2 GiB bytes",
			 (unsigned long long)id);
		return -PGQ_E_INVAL;
	}
	pgq_u64s(is, id);
	pgq_u64s(ls, lease);
	const char *p[] = { is, ls, data ? data : "" };
	int lens[] = { 0, 0, (int)len }, fmt[] = { 0, 0, 1 };
	PGresult *r = pgq_exec_bin(q, "append", SQL_APPEND, 3, p, lens, fmt, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int ok = atoi(PQcmdTuples(r)) == 1;
	PQclear(r);
	if (!ok) {
		snprintf(err, errlen, "append: task %llu: lease %llu is not held any more",
			 (unsigned long long)id, (unsigned long long)lease);
		return -PGQ_E_LOST;
	}
	return 0;
}

static const char SQL_FINISH[] =
	"UPDATE plot_tasks SET state = $3, error = $4, ended_at = now(), lease = NULL,"
	" lease_expires = NULL WHERE id = $1 AND lease = $2 AND state = 1";

int pgq_finish(struct pgq *q, uint64_t id, uint64_t lease, int state, const char *error,
	       char *err, size_t errlen)
{
	if (state != POOL_DONE && state != POOL_FAILED && state != POOL_CANCELLED &&
	    state != POOL_TIMEOUT) {
		snprintf(err, errlen, "finish: state %d is not an end of a running task", state);
		return -PGQ_E_INVAL;
	}
	char is[24], ls[24], ss[8];
	pgq_u64s(is, id);
	pgq_u64s(ls, lease);
	snprintf(ss, sizeof ss, "%d", state);
	const char *p[] = { is, ls, ss, error };
	PGresult *r = pgq_exec(q, "finish", SQL_FINISH, 4, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int ok = atoi(PQcmdTuples(r)) == 1;
	PQclear(r);
	if (!ok) {
		snprintf(err, errlen, "finish: task %llu: lease %llu is not held any more",
			 (unsigned long long)id, (unsigned long long)lease);
		return -PGQ_E_LOST;
	}
	return 0;
}

static const char SQL_CANCEL[] =
	"WITH o AS (SELECT id, state FROM plot_tasks WHERE id = $1 FOR UPDATE),"
	" c AS (UPDATE plot_tasks t SET state = 4, ended_at = now(), lease = NULL,"
	"  lease_expires = NULL, error = 'cancelled through daemon ' || $2"
	"  FROM o WHERE t.id = o.id AND o.state <= 1 RETURNING o.state AS was)"
	"SELECT (SELECT state FROM o), (SELECT was FROM c),"
	" (SELECT count(*) FROM (SELECT pg_notify('plot_cancel', $1::text) FROM c WHERE was = 1) n)";

int pgq_cancel(struct pgq *q, uint64_t id, char *err, size_t errlen)
{
	char is[24];
	pgq_u64s(is, id);
	const char *p[] = { is, q->name };
	PGresult *r = pgq_exec(q, "cancel", SQL_CANCEL, 2, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int exists = !PQgetisnull(r, 0, 0), done = !PQgetisnull(r, 0, 1);
	int state = exists ? atoi(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	if (done)
		return 0;
	if (!exists) {
		snprintf(err, errlen, "cancel: no task %llu", (unsigned long long)id);
		return -PGQ_E_NOTFOUND;
	}
	snprintf(err, errlen, "cancel: task %llu already ended (%s)", (unsigned long long)id,
		 pool_state_name(state));
	return -PGQ_E_STATE;
}

/* The unended tasks of some models (and one owner), oldest first. */
static const char SQL_UNENDED[] =
	"SELECT id FROM plot_tasks WHERE state <= 1 AND model = ANY($1::text[])"
	" AND ($2::bigint IS NULL OR owner_uid = $2) ORDER BY id LIMIT $3";

/* '{"a","b"}': a text[] parameter (names are checked model names, but quote
 * them anyway: a quote or backslash is escaped) */
static char *text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *c = v[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	strcpy(p, "}");
	return s;
}

int pgq_cancel_all(struct pgq *q, const char *const *models, size_t nmodels, int has_owner,
		   uint32_t owner, size_t max, uint64_t **ids, size_t *n, char *err, size_t errlen)
{
	*ids = NULL;
	*n = 0;
	char *ms = text_array(models, nmodels), us[24], lim[24];
	snprintf(us, sizeof us, "%u", (unsigned)owner);
	pgq_u64s(lim, max);
	const char *p[] = { ms, has_owner ? us : NULL, lim };
	PGresult *r = ms ? pgq_exec(q, "cancel all", SQL_UNENDED, 3, p, err, errlen) : NULL;
	free(ms);
	if (!r)
		return ms ? -PGQ_E_QUERY : -PGQ_E_NOMEM;
	size_t m = (size_t)PQntuples(r);
	uint64_t *v = m ? malloc(m * sizeof *v) : NULL;
	int rc = m && !v ? -PGQ_E_NOMEM : 0;
	for (size_t i = 0; v && i < m; i++)
		v[i] = pgq_col_u64(r, (int)i, 0);
	PQclear(r);
	/* One task per statement: each locks one row, so this never deadlocks
	 * with a writer ending several tasks in one transaction. */
	for (size_t i = 0; v && i < m && rc == 0; i++) {
		int one = pgq_cancel(q, v[i], err, errlen);
		if (one == 0)
			v[(*n)++] = v[i];
		else if (one != -PGQ_E_STATE && one != -PGQ_E_NOTFOUND)
			rc = one; /* the connection: stop; what was cancelled stays */
	}
	*ids = v;
	return rc;
}

/* ---- sweep -------------------------------------------------------------------- */

static const char SQL_DEADLINES[] =
	"WITH due AS (SELECT id, state FROM plot_tasks WHERE state <= 1 AND deadline <= now()"
	"  FOR UPDATE SKIP LOCKED),"
	" upd AS (UPDATE plot_tasks t SET state = CASE WHEN due.state = 0 THEN 5 ELSE 6 END,"
	"  ended_at = now(), lease = NULL, lease_expires = NULL,"
	"  error = CASE WHEN due.state = 0 THEN 'deadline passed while queued'"
	"   ELSE 'deadline passed while running on daemon ' || t.lease_owner END"
	"  FROM due WHERE t.id = due.id RETURNING t.state)"
	"SELECT count(*) FILTER (WHERE state = 5), count(*) FILTER (WHERE state = 6) FROM upd";

static const char SQL_LEASES[] =
	"WITH lost AS (SELECT id FROM plot_tasks WHERE state = 1 AND lease_expires < now()"
	"  FOR UPDATE SKIP LOCKED),"
	" upd AS (UPDATE plot_tasks t"
	"  SET state = CASE WHEN t.attempts < t.max_restarts THEN 0 ELSE 3 END,"
	"  attempts = t.attempts + 1, lease = NULL, lease_expires = NULL,"
	"  started_at = CASE WHEN t.attempts < t.max_restarts THEN NULL ELSE t.started_at END,"
	"  ended_at = CASE WHEN t.attempts < t.max_restarts THEN NULL ELSE now() END,"
	"  error = CASE WHEN t.attempts < t.max_restarts THEN NULL"
	"   ELSE format('the lease of daemon %s expired (lost %s times, restart limit %s)',"
	"    t.lease_owner, t.attempts + 1, t.max_restarts) END"
	"  FROM lost WHERE t.id = lost.id RETURNING t.id, t.state, t.model),"
	" del AS (DELETE FROM plot_output o USING upd WHERE o.task_id = upd.id AND upd.state = 0)"
	"SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 3),"
	" (SELECT count(*) FROM (SELECT pg_notify('plot_submit', m) FROM"
	"  (SELECT DISTINCT model AS m FROM upd WHERE state = 0) s) n) FROM upd";

int pgq_sweep(struct pgq *q, struct pgq_swept *done, char *err, size_t errlen)
{
	memset(done, 0, sizeof *done);
	PGresult *r = pgq_exec(q, "sweep (deadlines)", SQL_DEADLINES, 0, NULL, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	done->expired = pgq_col_u64(r, 0, 0);
	done->timed_out = pgq_col_u64(r, 0, 1);
	PQclear(r);
	r = pgq_exec(q, "sweep (leases)", SQL_LEASES, 0, NULL, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	done->requeued = pgq_col_u64(r, 0, 0);
	done->failed = pgq_col_u64(r, 0, 1);
	PQclear(r);
	return 0;
}
