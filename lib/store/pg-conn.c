/*
 * pg-conn.c — the PostgreSQL connection of the shared queue: open, errors
 * that name the URL without its password, the statement helpers, and the
 * LISTEN/NOTIFY plumbing.
 *
 * DESIGN
 *   One PGconn per struct pgq, owned by one thread (the store thread). All
 *   statements go through pgq_exec(), which checks the result status once
 *   and writes the one error message format: "<what>: <server message>".
 *   Connection errors name the database as the user wrote it (URL, password
 *   replaced by ***) or, for the PG* environment, as libpq resolved it, so a
 *   bad URL or missing permission is a clear message at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg-impl.h"

/* ---- columns and parameters ------------------------------------------------ */

void pgq_u64s(char *buf, uint64_t v)
{
	snprintf(buf, 24, "%llu", (unsigned long long)v);
}

uint64_t pgq_col_u64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoull(PQgetvalue(r, row, col), NULL, 10);
}

uint64_t pgq_col_ns(const PGresult *r, int row, int col)
{
	return pgq_col_u64(r, row, col) * 1000u;
}

char *pgq_col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* A bytea column (text result, hex) into a malloc'd buffer; NULL + 0 if null. */
int pgq_col_bytea(const PGresult *r, int row, int col, void **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (PQgetisnull(r, row, col))
		return 0;
	unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), len);
	if (!b)
		return -PGQ_E_NOMEM;
	*out = malloc(*len + 1); /* +1: readers may treat output as a string */
	if (*out) {
		memcpy(*out, b, *len);
		((char *)*out)[*len] = 0;
	}
	PQfreemem(b);
	return *out ? 0 : -PGQ_E_NOMEM;
}


static const char *const err_names[] = {
	"ok", "connect", "schema", "query", "lost", "not found", "state", "invalid", "no memory",
	"queue full",
};

const char *pgq_err_name(int e)
{
	if (e < 0)
		e = -e;
	if (e >= (int)(sizeof err_names / sizeof err_names[0]))
		return "unknown";
	return err_names[e];
}

/* libpq messages end in a newline (sometimes several lines): keep the first */
static void first_line(const char *msg, char *out, size_t outlen)
{
	size_t n = strcspn(msg ? msg : "", "\n");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, msg ? msg : "", n);
	out[n] = 0;
	if (!out[0])
		snprintf(out, outlen, "unknown error");
}

/* key=value form: blank out the value of password=... */
static void redact_kv(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "password");
	if (!p || !strchr(p, '=')) {
		snprintf(out, outlen, "%s", url);
		return;
	}
	const char *v = strchr(p, '=') + 1;
	while (*v == ' ')
		v++;
	const char *end = v;
	if (*end == '\'') {
		for (end++; *end && *end != '\''; end++)
			if (*end == '\\' && end[1])
				end++;
		if (*end)
			end++;
	} else {
		end += strcspn(end, " \t");
	}
	snprintf(out, outlen, "%.*s***%s", (int)(v - url), url, end);
}

void pgq_redact_url(const char *url, char *out, size_t outlen)
{
	const char *scheme = url ? strstr(url, "://") : NULL;
	if (!url || !*url) {
		snprintf(out, outlen, "PG* environment");
		return;
	}
	if (!scheme) {
		redact_kv(url, out, outlen);
		return;
	}
	const char *auth = scheme + 3;
	const char *at = strchr(auth, '@');
	const char *slash = strpbrk(auth, "/?");
	const char *colon = strchr(auth, ':');
	if (!at || (slash && at > slash) || !colon || colon > at) {
		/* no password in the authority; a ?password= query param may hold one */
		const char *qp = strstr(url, "password=");
		if (qp) {
			const char *end = qp + 9 + strcspn(qp + 9, "&");
			snprintf(out, outlen, "%.*s***%s", (int)(qp + 9 - url), url, end);
		} else {
			snprintf(out, outlen, "%s", url);
		}
		return;
	}
	snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}

const char *pgq_result_error(struct pgq *q, const PGresult *r)
{
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	return m ? m : r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
						      : PQerrorMessage(q->conn);
}

PGresult *pgq_exec(struct pgq *q, const char *what, const char *sql, int nparams,
		   const char *const *params, char *err, size_t errlen)
{
	return pgq_exec_bin(q, what, sql, nparams, params, NULL, NULL, err, errlen);
}

/* The name of sql's prepared statement on this session, preparing it the
 * first time; NULL when it cannot be (table full: run it unprepared). */
static const char *prepared_name(struct pgq *q, const char *sql, int nparams, char *name)
{
	int i;
	for (i = 0; i < q->nprepared && q->prepared[i] != sql; i++)
		;
	snprintf(name, 16, "plot%d", i);
	if (i < q->nprepared)
		return name;
	if (i == PGQ_MAX_PREPARED)
		return NULL;
	PGresult *r = PQprepare(q->conn, name, sql, nparams, NULL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		return NULL; /* run it unprepared: its error then says what is wrong */
	q->prepared[q->nprepared++] = sql;
	return name;
}

PGresult *pgq_exec_bin(struct pgq *q, const char *what, const char *sql, int nparams,
		       const char *const *params, const int *lengths, const int *formats,
		       char *err, size_t errlen)
{
	char buf[16];
	const char *name = prepared_name(q, sql, nparams, buf);
	PGresult *r = name ? PQexecPrepared(q->conn, name, nparams, params, lengths, formats, 0)
			   : PQexecParams(q->conn, sql, nparams, NULL, params, lengths, formats, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	char line[512];
	const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(q->sqlstate, sizeof q->sqlstate, "%s", code ? code : "");
	first_line(pgq_result_error(q, r), line, sizeof line);
	if (PQstatus(q->conn) != CONNECTION_OK)
		snprintf(err, errlen, "%s: lost the connection to postgres '%s': %s", what,
			 q->where, line);
	else
		snprintf(err, errlen, "%s: %s", what, line);
	PQclear(r);
	return NULL;
}

int pgq_exec_cmd(struct pgq *q, const char *what, const char *sql, int nparams,
		 const char *const *params, char *err, size_t errlen)
{
	PGresult *r = pgq_exec(q, what, sql, nparams, params, err, errlen);
	if (!r)
		return -PGQ_E_QUERY;
	PQclear(r);
	return 0;
}

void pgq_rollback(struct pgq *q)
{
	PQclear(PQexec(q->conn, "ROLLBACK"));
}

/* Where we tried to connect, for messages: the URL as written (redacted), or
 * for the environment what libpq resolved. */
static void describe(struct pgq *q, const char *url)
{
	if (url && *url) {
		pgq_redact_url(url, q->where, sizeof q->where);
		return;
	}
	const char *h = PQhost(q->conn), *p = PQport(q->conn);
	const char *d = PQdb(q->conn), *u = PQuser(q->conn);
	snprintf(q->where, sizeof q->where, "PG* environment: host=%s port=%s dbname=%s user=%s",
		 h ? h : "", p ? p : "", d ? d : "", u ? u : "");
}

/* lib/ never prints: libpq's default notice processor writes to stderr */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A session stopped inside a transaction (a daemon frozen mid-claim, or cut
 * off by the network) would keep its row locks and the claim lock of its
 * models (pg-queue.c) until TCP gives up, hours later: the server ends such
 * a session instead. Every transaction of ours runs its statements back to
 * back, so none is ever idle inside one for this long. */
static int session_setup(struct pgq *q, char *err, size_t errlen)
{
	return pgq_exec_cmd(q, "session setup",
			    "SET idle_in_transaction_session_timeout = " PGQ_IDLE_TX_TIMEOUT_MS, 0,
			    NULL, err, errlen) ? -PGQ_E_CONNECT : 0;
}

static int connect_db(struct pgq *q, const char *url, char *err, size_t errlen)
{
	/* expand_dbname: a URL or key=value string; "" takes everything from PG* */
	const char *keys[] = { "dbname", "application_name", "connect_timeout", NULL };
	const char *vals[] = { url ? url : "", "plotd", "10", NULL };
	q->conn = PQconnectdbParams(keys, vals, 1);
	if (!q->conn) {
		snprintf(err, errlen, "postgres: out of memory");
		return -PGQ_E_NOMEM;
	}
	describe(q, url);
	if (PQstatus(q->conn) == CONNECTION_OK) {
		PQsetNoticeProcessor(q->conn, quiet, NULL);
		return session_setup(q, err, errlen);
	}
	char line[512];
	first_line(PQerrorMessage(q->conn), line, sizeof line);
	snprintf(err, errlen, "postgres.url '%s': cannot connect: %s", q->where, line);
	return -PGQ_E_CONNECT;
}

int pgq_open(const char *url, const char *name, struct pgq **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!name || !*name || strlen(name) >= sizeof((struct pgq *)0)->name) {
		snprintf(err, errlen, "postgres: daemon name '%s' must be 1 to 63 bytes",
			 name ? name : "(null)");
		return -PGQ_E_INVAL;
	}
	struct pgq *q = calloc(1, sizeof *q);
	if (!q) {
		snprintf(err, errlen, "postgres: out of memory");
		return -PGQ_E_NOMEM;
	}
	snprintf(q->name, sizeof q->name, "%s", name);
	int rc = connect_db(q, url, err, errlen);
	if (rc == 0)
		rc = pgq_migrate(q, err, errlen);
	if (rc < 0) {
		pgq_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

void pgq_free(struct pgq *q)
{
	if (!q)
		return;
	if (q->conn)
		PQfinish(q->conn);
	free(q);
}

int pgq_listen(struct pgq *q, char *err, size_t errlen)
{
	if (pgq_exec_cmd(q, "listen", "LISTEN plot_submit", 0, NULL, err, errlen) ||
	    pgq_exec_cmd(q, "listen", "LISTEN plot_cancel", 0, NULL, err, errlen))
		return -PGQ_E_QUERY;
	q->listening = 1;
	return 0;
}

int pgq_connected(const struct pgq *q)
{
	return PQstatus(q->conn) == CONNECTION_OK;
}

int pgq_reconnect(struct pgq *q, char *err, size_t errlen)
{
	PQreset(q->conn);
	q->nprepared = 0; /* they died with the old session */
	if (PQstatus(q->conn) != CONNECTION_OK) {
		char line[512];
		first_line(PQerrorMessage(q->conn), line, sizeof line);
		snprintf(err, errlen, "postgres.url '%s': cannot reconnect: %s", q->where, line);
		return -PGQ_E_CONNECT;
	}
	if (session_setup(q, err, errlen) < 0)
		return -PGQ_E_CONNECT;
	return q->listening ? pgq_listen(q, err, errlen) : 0;
}

int pgq_fd(const struct pgq *q)
{
	return PQsocket(q->conn);
}

int pgq_notifications(struct pgq *q, pgq_notify_fn fn, void *arg, char *err, size_t errlen)
{
	if (!PQconsumeInput(q->conn)) {
		char line[512];
		first_line(PQerrorMessage(q->conn), line, sizeof line);
		snprintf(err, errlen, "postgres '%s': reading notifications: %s", q->where, line);
		return -PGQ_E_QUERY;
	}
	int n = 0;
	PGnotify *nt;
	while ((nt = PQnotifies(q->conn)) != NULL) {
		fn(arg, nt->relname, nt->extra);
		PQfreemem(nt);
		n++;
	}
	return n;
}
