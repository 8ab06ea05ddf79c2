/*
 * pg-schema.c — the shared queue's schema and its migrations.
 *
 * DESIGN
 *   Migrations are an ordered table of SQL strings; migration i (1-based)
 *   takes the schema from version i-1 to i. pgq_migrate() runs, in one
 *   transaction: take a transaction-scoped advisory lock (so daemons that
 *   start together migrate one at a time: the first applies, the others
 *   wait for its commit, then find nothing to do), create the version table
 *   if missing, read the version, apply every later migration, record the
 *   new version, commit. A failure rolls everything back: a database is
 *   never left half-migrated. Never edit a shipped migration; add one.
 *
 *   States and priorities are the pool's numbers (enum pool_state,
 *   enum pool_prio), stored as smallint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg-impl.h"

/* any constant: the key of the advisory lock that serialises migrations */
#define PGQ_MIGRATE_LOCK "7039112715"

static const char *const migrations[] = {
	/* 1: tasks, their output, the daemons' shares */
	"CREATE TABLE plot_tasks ("
	" id bigserial PRIMARY KEY,"
	" model text NOT NULL,"
	" priority smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),"
	" state smallint NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 6),"
	" cost bigint NOT NULL CHECK (cost >= 1),"
	" deadline timestamptz,"
	" owner_uid bigint NOT NULL,"
	" label text,"
	" error text,"
	" skips integer NOT NULL DEFAULT 0,"
	" attempts integer NOT NULL DEFAULT 0,"
	" max_restarts integer NOT NULL DEFAULT 0,"
	" lease bigint,"
	" lease_owner text,"
	" lease_expires timestamptz,"
	" created_at timestamptz NOT NULL DEFAULT now(),"
	" started_at timestamptz,"
	" ended_at timestamptz,"
	" request bytea NOT NULL DEFAULT ''::bytea);"
	"CREATE SEQUENCE plot_lease_seq;"
	"CREATE INDEX plot_tasks_queued ON plot_tasks (model, priority DESC, id) WHERE state = 0;"
	"CREATE INDEX plot_tasks_running ON plot_tasks (lease_expires) WHERE state = 1;"
	"CREATE INDEX plot_tasks_deadline ON plot_tasks (deadline) WHERE state <= 1;"
	"CREATE UNIQUE INDEX plot_tasks_lease ON plot_tasks (lease) WHERE lease IS NOT NULL;"
	"CREATE TABLE plot_output ("
	" task_id bigint NOT NULL REFERENCES plot_tasks (id) ON DELETE CASCADE,"
	" seq bigserial,"
	" data bytea NOT NULL,"
	" PRIMARY KEY (task_id, seq));"
	"CREATE TABLE plot_daemons ("
	" name text PRIMARY KEY,"
	" units bigint NOT NULL,"
	" running bigint NOT NULL,"
	" seen timestamptz NOT NULL)",
	/* 2: the submitter's idempotency key (store.h's record.key): one task
	 * per (owner, key) across every daemon */
	"ALTER TABLE plot_tasks ADD COLUMN key text;"
	"CREATE UNIQUE INDEX plot_tasks_key ON plot_tasks (owner_uid, key) WHERE key IS NOT NULL",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == PGQ_SCHEMA_VERSION, "PGQ_SCHEMA_VERSION is the last migration");

static int read_version(struct pgq *q, int *version, char *err, size_t errlen)
{
	PGresult *r = pgq_exec(q, "reading the schema version",
			       "SELECT version FROM plot_schema_version", 0, NULL, err, errlen);
	if (!r)
		return -PGQ_E_SCHEMA;
	*version = PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return 0;
}

/* Run migration i with the simple-query protocol: it holds several statements. */
static int apply(struct pgq *q, int i, char *err, size_t errlen)
{
	PGresult *r = PQexec(q->conn, migrations[i]);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		return 0;
	}
	const char *msg = pgq_result_error(q, r);
	snprintf(err, errlen, "postgres '%s': cannot create the schema (migration %d): %.*s%s",
		 q->where, i + 1, (int)strcspn(msg, "\n"), msg,
		 strstr(msg, "permission denied") ?
		 " (the role needs CREATE on the database's public schema)" : "");
	PQclear(r);
	return -PGQ_E_SCHEMA;
}

static int migrate_locked(struct pgq *q, char *err, size_t errlen)
{
	int v, rc;
	rc = read_version(q, &v, err, errlen);
	if (rc < 0)
		return rc;
	if (v > N_MIGRATIONS) {
		snprintf(err, errlen, "postgres '%s': the database's schema is version %d, newer "
			 "than this plotd's %d: upgrade plotd", q->where, v, N_MIGRATIONS);
		return -PGQ_E_SCHEMA;
	}
	for (int i = v; i < N_MIGRATIONS; i++)
		if ((rc = apply(q, i, err, errlen)) < 0)
			return rc;
	if (v == N_MIGRATIONS)
		return 0;
	char vs[16];
	snprintf(vs, sizeof vs, "%d", N_MIGRATIONS);
	const char *p[] = { vs };
	return pgq_exec_cmd(q, "recording the schema version",
			    "UPDATE plot_schema_version SET version = $1", 1, p, err, errlen)
		       ? -PGQ_E_SCHEMA : 0;
}

int pgq_migrate(struct pgq *q, char *err, size_t errlen)
{
	char e2[400];
	if (pgq_exec_cmd(q, "begin", "BEGIN", 0, NULL, e2, sizeof e2) ||
	    pgq_exec_cmd(q, "lock", "SELECT pg_advisory_xact_lock(" PGQ_MIGRATE_LOCK ")", 0, NULL,
			 e2, sizeof e2))
		goto fail;
	PGresult *r = PQexec(q->conn,
			     "CREATE TABLE IF NOT EXISTS plot_schema_version (version integer NOT NULL);"
			     "INSERT INTO plot_schema_version SELECT 0"
			     " WHERE NOT EXISTS (SELECT 1 FROM plot_schema_version)");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *msg = pgq_result_error(q, r);
		snprintf(e2, sizeof e2, "%.*s", (int)strcspn(msg, "\n"), msg);
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	int rc = migrate_locked(q, err, errlen);
	if (rc < 0) {
		pgq_rollback(q);
		return rc;
	}
	if (pgq_exec_cmd(q, "commit", "COMMIT", 0, NULL, e2, sizeof e2))
		goto fail;
	return 0;
fail:
	pgq_rollback(q);
	snprintf(err, errlen, "postgres '%s': cannot create the schema: %s%s", q->where, e2,
		 strstr(e2, "permission denied") ?
		 " (the role needs CREATE on the database's public schema)" : "");
	return -PGQ_E_SCHEMA;
}

int pgq_schema_version(struct pgq *q, int *version, char *err, size_t errlen)
{
	return read_version(q, version, err, errlen);
}
