/*
 * pg-impl.h — private to lib/store/pg-*.c: the connection object and the
 * helpers every statement goes through (one place that turns a libpq
 * failure into an error message and a PGQ_E_* code).
 */
#ifndef PLOT_PG_IMPL_H
#define PLOT_PG_IMPL_H

#include <libpq-fe.h>

#include "plot/pgq.h"

struct pgq {
	PGconn *conn;
	char name[64];     /* this daemon's name in leases and plot_daemons */
	char where[256];   /* the URL, password redacted: what errors name */
};

/* Run sql with text parameters. Returns the result when its status is
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
/* ROLLBACK after a failure inside a transaction (its own error ignored). */
void pgq_rollback(struct pgq *q);

/* The migrations, in order (pg-schema.c). */
int pgq_migrate(struct pgq *q, char *err, size_t errlen);

#endif
