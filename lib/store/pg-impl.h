/*
 * pg-impl.h — private to lib/store/pg-*.c: the connection object and the
 * helpers every statement goes through (one place that turns a libpq
 * failure into an error message and a PGQ_E_* code).
 */
#ifndef PLOT_PG_IMPL_H
#define PLOT_PG_IMPL_H

#include <libpq-fe.h>

#include "plot/pgq.h"

#define PGQ_MAX_PREPARED 32

/* How long a session may sit idle inside a transaction before the server
 * ends it (pg-conn.c), and how long a claim waits for another daemon's
 * claim of the same model (pg-queue.c), in ms, as SQL text. */
#define PGQ_IDLE_TX_TIMEOUT_MS "10000"
#define PGQ_CLAIM_LOCK_TIMEOUT_MS "2000"
#define PGQ_LOCK_CLASS "1886154612" /* 'plot': the advisory locks' first key */

struct pgq {
	PGconn *conn;
	char name[64];     /* this daemon's name in leases and plot_daemons */
	char where[256];   /* the URL, password redacted: what errors name */
	int listening;     /* pgq_listen() was called: pgq_reconnect() listens again */
	/* Statements prepared on this session, keyed by their SQL text's address
	 * (every statement is a static string): parsed and planned once, not
	 * per call. Emptied when the session is reset. */
	const char *prepared[PGQ_MAX_PREPARED];
	int nprepared;
	char sqlstate[6];  /* the last failed statement's SQLSTATE, "" if none */
};

/* Run sql (a static string: it is prepared once per session, by address)
 * with text parameters. Returns the result when its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; else NULL, with err naming what
 * (what) failed and the server's message. */
PGresult *pgq_exec(struct pgq *q, const char *what, const char *sql, int nparams,
		   const char *const *params, char *err, size_t errlen);
/* pgq_exec with per-parameter lengths and formats (1: binary, for bytea). */
PGresult *pgq_exec_bin(struct pgq *q, const char *what, const char *sql, int nparams,
		       const char *const *params, const int *lengths, const int *formats,
		       char *err, size_t errlen);
/* The same for a statement whose result does not matter (BEGIN, COMMIT...). */
int pgq_exec_cmd(struct pgq *q, const char *what, const char *sql, int nparams,
		 const char *const *params, char *err, size_t errlen);
/* The server's message for a failed result (without libpq's "ERROR:  "
 * prefix), else the connection's. */
const char *pgq_result_error(struct pgq *q, const PGresult *r);
/* ROLLBACK after a failure inside a transaction (its own error ignored). */
void pgq_rollback(struct pgq *q);

/* a timestamptz as Unix epoch microseconds (exact: extract returns numeric) */
#define EPOCH_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* Reading result columns: NULL reads as 0 / NULL. */
uint64_t pgq_col_u64(const PGresult *r, int row, int col);
uint64_t pgq_col_ns(const PGresult *r, int row, int col);   /* EPOCH_US column, as ns */
char *pgq_col_str(const PGresult *r, int row, int col);     /* strdup, NULL if null */
/* A bytea column into a malloc'd, NUL-terminated buffer. 0 or -PGQ_E_NOMEM. */
int pgq_col_bytea(const PGresult *r, int row, int col, void **out, size_t *len);
/* v as decimal text into buf (room for 24). */
void pgq_u64s(char *buf, uint64_t v);

/* The migrations, in order (pg-schema.c). */
int pgq_migrate(struct pgq *q, char *err, size_t errlen);

#endif
