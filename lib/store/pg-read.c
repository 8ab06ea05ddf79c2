/*
 * pg-read.c — reading the shared queue from any daemon: one task with its
 * output (result/status), the output appended since a point (tail of a task
 * running elsewhere), and the queue's and daemons' figures (stats).
 *
 * DESIGN
 *   Plain reads, one statement each, no locks taken: a reader never slows a
 *   claimer. Output chunks are numbered by one bigserial (plot_output.seq),
 *   increasing in append order, so "everything after seq N" is a cursor a
 *   tail can hold across calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg-impl.h"


static const char SQL_GET[] =
	"SELECT id, model, priority, state, cost, " EPOCH_US("created_at") ","
	" " EPOCH_US("started_at") ", " EPOCH_US("ended_at") ", " EPOCH_US("deadline") ","
	" owner_uid, label, error, attempts, coalesce(lease_owner, ''),"
	" (SELECT string_agg(data, ''::bytea ORDER BY seq) FROM plot_output WHERE task_id = t.id),"
	" key, request"
	" FROM plot_tasks t WHERE id = $1";

static int fill_record(const PGresult *r, struct store_record *o)
{
	memset(o, 0, sizeof *o);
	o->id = pgq_col_u64(r, 0, 0);
	o->model = pgq_col_str(r, 0, 1);
	o->priority = atoi(PQgetvalue(r, 0, 2));
	o->state = atoi(PQgetvalue(r, 0, 3));
	o->cost = pgq_col_u64(r, 0, 4);
	o->created_ns = pgq_col_ns(r, 0, 5);
	o->started_ns = pgq_col_ns(r, 0, 6);
	o->ended_ns = pgq_col_ns(r, 0, 7);
	o->deadline_ns = pgq_col_ns(r, 0, 8);
	o->owner_uid = (uint32_t)pgq_col_u64(r, 0, 9);
	o->label = pgq_col_str(r, 0, 10);
	o->error = pgq_col_str(r, 0, 11);
	o->attempts = (uint32_t)pgq_col_u64(r, 0, 12);
	o->key = pgq_col_str(r, 0, 15);
	void *out, *req;
	int rc = pgq_col_bytea(r, 0, 14, &out, &o->output_len);
	o->output = out;
	if (rc == 0 && (rc = pgq_col_bytea(r, 0, 16, &req, &o->request_len)) == 0)
		o->request = req;
	if (rc == 0 && (!o->model || (!o->label && !PQgetisnull(r, 0, 10)) ||
			(!o->error && !PQgetisnull(r, 0, 11)) || (!o->key && !PQgetisnull(r, 0, 15))))
		rc = -PGQ_E_NOMEM;
	return rc;
}

int pgq_get(struct pgq *q, uint64_t id, struct store_record *out, char *runner, char *err,
	    size_t errlen)
{
	char is[24];
	pgq_u64s(is, id);
	const char *p[] = { is };
	memset(out, 0, sizeof *out);
	PGresult *r = pgq_exec(q, "get", SQL_GET, 1, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	if (PQntuples(r) == 0) {
		PQclear(r);
		snprintf(err, errlen, "get: no task %llu", (unsigned long long)id);
		return -PGQ_E_NOTFOUND;
	}
	int rc = fill_record(r, out);
	if (runner)
		snprintf(runner, 64, "%s", PQgetvalue(r, 0, 13));
	PQclear(r);
	if (rc < 0) {
		store_record_clear(out);
		snprintf(err, errlen, "get: out of memory");
	}
	return rc;
}

static const char SQL_SINCE[] =
	"SELECT t.state, o.seq, o.data, t.attempts FROM plot_tasks t"
	" LEFT JOIN plot_output o ON o.task_id = t.id AND o.seq > $2"
	" WHERE t.id = $1 ORDER BY o.seq";

int pgq_output_since(struct pgq *q, uint64_t id, uint64_t after_seq, pgq_chunk_fn fn, void *arg,
		     uint64_t *last_seq, int *state, int *attempts, char *err, size_t errlen)
{
	char is[24], as[24];
	pgq_u64s(is, id);
	pgq_u64s(as, after_seq);
	const char *p[] = { is, as };
	*last_seq = after_seq;
	PGresult *r = pgq_exec(q, "output", SQL_SINCE, 2, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int rc = 0, n = PQntuples(r);
	if (n == 0) {
		snprintf(err, errlen, "output: no task %llu", (unsigned long long)id);
		rc = -PGQ_E_NOTFOUND;
	}
	*state = n ? atoi(PQgetvalue(r, 0, 0)) : -1;
	if (attempts)
		*attempts = n ? atoi(PQgetvalue(r, 0, 3)) : -1;
	for (int i = 0; rc == 0 && i < n && !PQgetisnull(r, i, 1); i++) {
		void *data;
		size_t len;
		rc = pgq_col_bytea(r, i, 2, &data, &len);
		if (rc == 0) {
			*last_seq = pgq_col_u64(r, i, 1);
			fn(arg, *last_seq, data, len);
			free(data);
		}
	}
	PQclear(r);
	return rc;
}

static const char SQL_MODELS[] =
	"SELECT model, count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),"
	" coalesce(sum(cost) FILTER (WHERE state = 0), 0),"
	" coalesce(sum(cost) FILTER (WHERE state = 1), 0)"
	" FROM plot_tasks WHERE state <= 1 GROUP BY model ORDER BY model";

static const char SQL_DAEMONS[] =
	"SELECT d.name, d.units, d.running,"
	" greatest(0, (extract(epoch FROM now() - d.seen) * 1000)::bigint),"
	" (SELECT count(*) FROM plot_tasks t WHERE t.state = 1 AND t.lease_owner = d.name)"
	" FROM plot_daemons d ORDER BY d.name";

static int stats_models(struct pgq *q, struct pgq_model_stat *m, size_t cap, size_t *n,
			char *err, size_t errlen)
{
	PGresult *r = pgq_exec(q, "stats (models)", SQL_MODELS, 0, NULL, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++) {
		int i = (int)*n;
		snprintf(m[i].model, sizeof m[i].model, "%s", PQgetvalue(r, i, 0));
		m[i].queued = pgq_col_u64(r, i, 1);
		m[i].running = pgq_col_u64(r, i, 2);
		m[i].queued_units = pgq_col_u64(r, i, 3);
		m[i].running_units = pgq_col_u64(r, i, 4);
	}
	PQclear(r);
	return 0;
}

static int stats_daemons(struct pgq *q, struct pgq_daemon_stat *d, size_t cap, size_t *n,
			 char *err, size_t errlen)
{
	PGresult *r = pgq_exec(q, "stats (daemons)", SQL_DAEMONS, 0, NULL, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	for (*n = 0; *n < cap && *n < (size_t)PQntuples(r); (*n)++) {
		int i = (int)*n;
		snprintf(d[i].name, sizeof d[i].name, "%s", PQgetvalue(r, i, 0));
		d[i].units = pgq_col_u64(r, i, 1);
		d[i].running = pgq_col_u64(r, i, 2);
		d[i].seen_ms_ago = pgq_col_u64(r, i, 3);
		d[i].holding = pgq_col_u64(r, i, 4);
	}
	PQclear(r);
	return 0;
}

int pgq_stats(struct pgq *q, struct pgq_model_stat *m, size_t mcap, size_t *nm,
	      struct pgq_daemon_stat *d, size_t dcap, size_t *nd, char *err, size_t errlen)
{
	int rc = stats_models(q, m, mcap, nm, err, errlen);
	return rc ? rc : stats_daemons(q, d, dcap, nd, err, errlen);
}

static const char SQL_STATES[] =
	"SELECT id, state FROM plot_tasks WHERE id = ANY($1::bigint[])";

int pgq_states(struct pgq *q, const uint64_t *ids, size_t n, int *states, char *err,
	       size_t errlen)
{
	char *a = malloc(n * 22 + 3), *p = a;
	if (!a) {
		snprintf(err, errlen, "states: out of memory");
		return -PGQ_E_NOMEM;
	}
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		p += sprintf(p, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
		states[i] = -1;
	}
	strcpy(p, "}");
	const char *params[] = { a };
	PGresult *r = pgq_exec(q, "states", SQL_STATES, 1, params, err, errlen);
	free(a);
	if (!r)
		return -PGQ_E_QUERY;
	for (int row = 0; row < PQntuples(r); row++) {
		uint64_t id = pgq_col_u64(r, row, 0);
		for (size_t i = 0; i < n; i++)
			if (ids[i] == id)
				states[i] = atoi(PQgetvalue(r, row, 1));
	}
	PQclear(r);
	return 0;
}

/* Queued and running tasks (running first, then by priority and FIFO), or
 * with all every task newest first; positions count queued tasks per model
 * among those selected. */
static const char SQL_LIST[] =
	"SELECT id, model, priority, state, cost, " EPOCH_US("created_at") ","
	" " EPOCH_US("started_at") ", " EPOCH_US("ended_at") ", " EPOCH_US("deadline") ","
	" owner_uid, label, error,"
	" (SELECT coalesce(sum(length(data)), 0) FROM plot_output WHERE task_id = t.id),"
	" CASE WHEN state = 0 THEN row_number() OVER (PARTITION BY model, state = 0"
	"  ORDER BY priority DESC, id) ELSE 0 END"
	" FROM plot_tasks t"
	" WHERE ($1::text IS NULL OR model = $1) AND ($2::int < 0 OR state = $2)"
	" AND ($3::bool OR state <= 1) AND ($4::bigint IS NULL OR owner_uid = $4)"
	" AND ($5::float8 IS NULL OR created_at > now() - make_interval(secs => $5))"
	" ORDER BY CASE WHEN $3::bool THEN -id ELSE 0 END, state DESC, priority DESC, id"
	" LIMIT $6";

static int fill_row(const PGresult *r, int i, struct store_record *o, uint64_t *pos)
{
	memset(o, 0, sizeof *o);
	o->id = pgq_col_u64(r, i, 0);
	o->model = pgq_col_str(r, i, 1);
	o->priority = atoi(PQgetvalue(r, i, 2));
	o->state = atoi(PQgetvalue(r, i, 3));
	o->cost = pgq_col_u64(r, i, 4);
	o->created_ns = pgq_col_ns(r, i, 5);
	o->started_ns = pgq_col_ns(r, i, 6);
	o->ended_ns = pgq_col_ns(r, i, 7);
	o->deadline_ns = pgq_col_ns(r, i, 8);
	o->owner_uid = (uint32_t)pgq_col_u64(r, i, 9);
	o->label = pgq_col_str(r, i, 10);
	o->error = pgq_col_str(r, i, 11);
	o->output_len = pgq_col_u64(r, i, 12); /* the size only: output stays NULL */
	*pos = pgq_col_u64(r, i, 13);
	return o->model ? 0 : -PGQ_E_NOMEM;
}

int pgq_list(struct pgq *q, const struct pgq_list_args *a, struct store_record **out,
	     uint64_t **pos, size_t *n, char *err, size_t errlen)
{
	char st[24], ow[24], since[32], lim[24];
	snprintf(st, sizeof st, "%d", a->state);
	pgq_u64s(ow, a->owner);
	snprintf(since, sizeof since, "%.3f", a->since_secs);
	pgq_u64s(lim, a->limit ? a->limit : 1000);
	const char *p[] = { a->model, st, a->all ? "true" : "false", a->has_owner ? ow : NULL,
			    a->since_secs > 0 ? since : NULL, lim };
	*out = NULL;
	*pos = NULL;
	*n = 0;
	PGresult *r = pgq_exec(q, "list", SQL_LIST, 6, p, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	int rows = PQntuples(r), rc = 0;
	*out = calloc(rows ? (size_t)rows : 1, sizeof **out);
	*pos = calloc(rows ? (size_t)rows : 1, sizeof **pos);
	if (!*out || !*pos)
		rc = -PGQ_E_NOMEM;
	for (int i = 0; rc == 0 && i < rows; i++, (*n)++)
		rc = fill_row(r, i, &(*out)[i], &(*pos)[i]);
	PQclear(r);
	if (rc < 0)
		snprintf(err, errlen, "list: out of memory");
	return rc;
}
