/*
 * sqlite.c — the SQLite store backend: task records in one database file
 * for the whole daemon, the id sequence beside them.
 *
 * DESIGN
 *   Columns, not blobs: tasks(id, model, state, prio, cost, created, started,
 *   ended, deadline, owner, label, error, attempts, key, request,
 *   output_len), the output in chunks(task, seq, data) keyed by byte
 *   offset (appended as the task runs, or written whole in pieces of at
 *   most CHUNK_BYTES), and meta(k, v) for the id sequence and the schema
 *   version. A put is an UPSERT that keeps the stored request and output
 *   when the record brings none, so the pool's state-change records stay
 *   small. uint64 values are stored as their int64 bit pattern.
 *
 *   The database runs in WAL mode with locking_mode=EXCLUSIVE: the daemon
 *   holds the write lock from open to close, so a second plotd (or any
 *   other writer) on the same file is refused at its start, and nothing
 *   else can change the file under us. synchronous is NORMAL (a commit
 *   survives a crash of the process) or FULL (also a power loss).
 *
 *   Only the store writer thread calls in (store.h), so there is no lock
 *   here. Every failure leaves a message naming the file and what is wrong
 *   (disk full, read-only, corrupted, locked) for ops->error.
 *
 * HARDENING
 *   The directory is created 0700 if missing and must be owned by us and
 *   not writable by group or others; the file is opened with
 *   SQLITE_OPEN_NOFOLLOW (a symlink is refused) and must be a regular file
 *   owned by us. At open the file is checked (quick_check), so a corrupted
 *   one is named before the daemon serves anything.
 */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/store.h"

#define SCHEMA_VERSION 1
#define CHUNK_BYTES (64u << 10)

enum { S_PUT, S_CHUNK_DEL, S_CHUNK_ADD, S_APPEND, S_DEL, S_GET, S_CHUNKS, S_SCAN, S_SEQ_GET,
       S_SEQ_PUT, S_COUNT, S_BEGIN, S_COMMIT, S_ROLLBACK, S_N };

static const char *const sql_text[S_N] = {
	[S_PUT] = "INSERT INTO tasks(id,model,state,prio,cost,created,started,ended,deadline,"
		  "owner,label,error,attempts,key,request,output_len) "
		  "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,COALESCE(?16,0)) "
		  "ON CONFLICT(id) DO UPDATE SET model=excluded.model, state=excluded.state, "
		  "prio=excluded.prio, cost=excluded.cost, created=excluded.created, "
		  "started=excluded.started, ended=excluded.ended, deadline=excluded.deadline, "
		  "owner=excluded.owner, label=excluded.label, error=excluded.error, "
		  "attempts=excluded.attempts, key=excluded.key, "
		  "request=COALESCE(excluded.request, tasks.request), "
		  "output_len=COALESCE(?16, tasks.output_len)",
	[S_CHUNK_DEL] = "DELETE FROM chunks WHERE task=?1",
	[S_CHUNK_ADD] = "INSERT INTO chunks(task,seq,data) VALUES(?1,?2,?3)",
	[S_APPEND] = "INSERT OR REPLACE INTO chunks(task,seq,data) VALUES(?1,?2,?3)",
	[S_DEL] = "DELETE FROM tasks WHERE id=?1",
	[S_GET] = "SELECT id,model,state,prio,cost,created,started,ended,deadline,owner,label,"
		  "error,attempts,key,request,output_len FROM tasks WHERE id=?1",
	[S_CHUNKS] = "SELECT seq, data FROM chunks WHERE task=?1 ORDER BY seq",
	[S_SCAN] = "SELECT id,model,state,prio,cost,created,started,ended,deadline,owner,label,"
		   "error,attempts,key,request,output_len FROM tasks ORDER BY id",
	[S_SEQ_GET] = "SELECT v FROM meta WHERE k='next_id'",
	[S_SEQ_PUT] = "INSERT INTO meta(k,v) VALUES('next_id',?1) "
		      "ON CONFLICT(k) DO UPDATE SET v=MAX(v, excluded.v)",
	[S_COUNT] = "SELECT COUNT(*) FROM tasks",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS tasks(id INTEGER PRIMARY KEY, model TEXT, "
	"state INTEGER NOT NULL, prio INTEGER NOT NULL, cost INTEGER NOT NULL, "
	"created INTEGER, started INTEGER, ended INTEGER, deadline INTEGER, "
	"owner INTEGER, label TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
	"key TEXT, request BLOB, output_len INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS chunks(task INTEGER NOT NULL, seq INTEGER NOT NULL, "
	"data BLOB NOT NULL, PRIMARY KEY(task, seq)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta(k,v) VALUES('schema', 1);"
	"INSERT OR IGNORE INTO meta(k,v) VALUES('next_id', 1);";

struct sq {
	sqlite3 *db;
	sqlite3_stmt *st[S_N];
	char path[PATH_MAX];
	char err[512];
};

/* ---- errors ----------------------------------------------------------------- */

/* What a SQLite result code means for a user, in words. */
static const char *what_failed(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL: return "disk full";
	case SQLITE_READONLY: return "read-only";
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return "locked by another process";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return "corrupted (not a plot database)";
	case SQLITE_CANTOPEN: return "cannot open";
	case SQLITE_IOERR: return "I/O error";
	case SQLITE_NOMEM: return "out of memory";
	default: return "database error";
	}
}

static int sq_fail(struct sq *q, int rc, const char *doing)
{
	snprintf(q->err, sizeof q->err, "store %.300s: %s (%s: %s)", q->path, what_failed(rc),
		 doing, q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
	return -1;
}

/* Run a statement to completion and reset it. */
static int step_done(struct sq *q, sqlite3_stmt *s, const char *doing)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_fail(q, rc, doing);
	return 0;
}

/* ---- put / get / del ---------------------------------------------------------- */

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
	if (t)
		sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static void bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	sqlite3_bind_int64(s, i, (sqlite3_int64)v);
}

static void bind_record(sqlite3_stmt *s, const struct store_record *r)
{
	bind_u64(s, 1, r->id);
	bind_text(s, 2, r->model);
	sqlite3_bind_int(s, 3, r->state);
	sqlite3_bind_int(s, 4, r->priority);
	bind_u64(s, 5, r->cost);
	bind_u64(s, 6, r->created_ns);
	bind_u64(s, 7, r->started_ns);
	bind_u64(s, 8, r->ended_ns);
	bind_u64(s, 9, r->deadline_ns);
	sqlite3_bind_int64(s, 10, r->owner_uid);
	bind_text(s, 11, r->label);
	bind_text(s, 12, r->error);
	sqlite3_bind_int64(s, 13, r->attempts);
	bind_text(s, 14, r->key);
	if (r->request_len)
		sqlite3_bind_blob(s, 15, r->request, (int)r->request_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 15);
	if (r->output || r->output_len)
		bind_u64(s, 16, r->output_len);
	else
		sqlite3_bind_null(s, 16);
}

/* Replace the task's chunks with output, CHUNK_BYTES at a time. */
static int put_output(struct sq *q, const struct store_record *r)
{
	sqlite3_stmt *del = q->st[S_CHUNK_DEL], *add = q->st[S_CHUNK_ADD];
	bind_u64(del, 1, r->id);
	if (step_done(q, del, "clearing output") < 0)
		return -1;
	for (size_t off = 0; off < r->output_len; off += CHUNK_BYTES) {
		size_t n = r->output_len - off < CHUNK_BYTES ? r->output_len - off : CHUNK_BYTES;
		bind_u64(add, 1, r->id);
		bind_u64(add, 2, off);
		sqlite3_bind_blob(add, 3, r->output + off, (int)n, SQLITE_STATIC);
		if (step_done(q, add, "writing output") < 0)
			return -1;
	}
	return 0;
}

static int sq_put(void *ctx, const struct store_record *r)
{
	struct sq *q = ctx;
	if (r->request_len > INT_MAX)
		return sq_fail(q, SQLITE_TOOBIG, "request too large");
	bind_record(q->st[S_PUT], r);
	if (step_done(q, q->st[S_PUT], "writing a task") < 0)
		return -1;
	return r->output ? put_output(q, r) : 0;
}

static int sq_append(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len)
{
	struct sq *q = ctx;
	sqlite3_stmt *s = q->st[S_APPEND];
	if (len > INT_MAX)
		return sq_fail(q, SQLITE_TOOBIG, "output chunk too large");
	bind_u64(s, 1, id);
	bind_u64(s, 2, off);
	sqlite3_bind_blob(s, 3, len ? data : "", (int)len, SQLITE_STATIC);
	return step_done(q, s, "appending output");
}

static char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? strdup((const char *)t) : NULL;
}

static char *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
	const void *b = sqlite3_column_blob(s, i);
	int n = sqlite3_column_bytes(s, i);
	char *c = b && n > 0 ? malloc((size_t)n) : NULL;
	*len = c ? (size_t)n : 0;
	if (c)
		memcpy(c, b, (size_t)n);
	return c;
}

static void row_to_record(sqlite3_stmt *s, struct store_record *r)
{
	memset(r, 0, sizeof *r);
	r->id = (uint64_t)sqlite3_column_int64(s, 0);
	r->model = col_text(s, 1);
	r->state = sqlite3_column_int(s, 2);
	r->priority = sqlite3_column_int(s, 3);
	r->cost = (uint64_t)sqlite3_column_int64(s, 4);
	r->created_ns = (uint64_t)sqlite3_column_int64(s, 5);
	r->started_ns = (uint64_t)sqlite3_column_int64(s, 6);
	r->ended_ns = (uint64_t)sqlite3_column_int64(s, 7);
	r->deadline_ns = (uint64_t)sqlite3_column_int64(s, 8);
	r->owner_uid = (uint32_t)sqlite3_column_int64(s, 9);
	r->label = col_text(s, 10);
	r->error = col_text(s, 11);
	r->attempts = (uint32_t)sqlite3_column_int64(s, 12);
	r->key = col_text(s, 13);
	r->request = col_blob(s, 14, &r->request_len);
}

/* The task's chunks, in offset order, into r->output (at most
 * REC_OUTPUT_MAX bytes; a gap or overlap ends it: what is whole is kept). */
#define REC_OUTPUT_MAX ((size_t)256 << 20)
static int load_output(struct sq *q, struct store_record *r)
{
	sqlite3_stmt *s = q->st[S_CHUNKS];
	size_t cap = 256;
	int rc;
	if (!(r->output = malloc(cap)))
		return sq_fail(q, SQLITE_NOMEM, "reading output");
	r->output_len = 0;
	bind_u64(s, 1, r->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 1);
		uint64_t off = (uint64_t)sqlite3_column_int64(s, 0);
		if (off != r->output_len || n > REC_OUTPUT_MAX - r->output_len)
			break;
		while (r->output_len + n + 1 > cap)
			cap *= 2;
		char *o = realloc(r->output, cap);
		if (!o) {
			sqlite3_reset(s);
			return sq_fail(q, SQLITE_NOMEM, "reading output");
		}
		r->output = o;
		memcpy(r->output + r->output_len, sqlite3_column_blob(s, 1), n);
		r->output_len += n;
	}
	sqlite3_reset(s);
	r->output[r->output_len] = '\0';
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(q, rc, "reading output");
	return 0;
}

/* The row s is on, with its output, into r. */
static int read_row(struct sq *q, sqlite3_stmt *s, struct store_record *r)
{
	row_to_record(s, r);
	if (load_output(q, r) < 0) {
		store_record_clear(r);
		return -1;
	}
	return 0;
}

static int sq_get(void *ctx, uint64_t id, struct store_record *out)
{
	struct sq *q = ctx;
	sqlite3_stmt *s = q->st[S_GET];
	bind_u64(s, 1, id);
	int rc = sqlite3_step(s), ret = -1;
	if (rc == SQLITE_ROW)
		ret = read_row(q, s, out);
	else if (rc != SQLITE_DONE)
		sq_fail(q, rc, "reading a task");
	sqlite3_reset(s);
	return ret;
}

static int sq_del(void *ctx, uint64_t id)
{
	struct sq *q = ctx;
	bind_u64(q->st[S_CHUNK_DEL], 1, id);
	if (step_done(q, q->st[S_CHUNK_DEL], "deleting output") < 0)
		return -1;
	bind_u64(q->st[S_DEL], 1, id);
	if (step_done(q, q->st[S_DEL], "deleting a task") < 0)
		return -1;
	return sqlite3_changes(q->db) ? 0 : -1;
}

static int sq_scan(void *ctx, store_scan_fn fn, void *arg)
{
	struct sq *q = ctx;
	sqlite3_stmt *s = q->st[S_SCAN];
	int rc, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_record r;
		if (read_row(q, s, &r) < 0) {
			ret = -1;
			break;
		}
		if (fn(arg, &r))
			break;
	}
	if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sq_fail(q, rc, "reading the tasks");
	sqlite3_reset(s);
	return ret;
}

static size_t sq_count(void *ctx)
{
	struct sq *q = ctx;
	sqlite3_stmt *s = q->st[S_COUNT];
	size_t n = sqlite3_step(s) == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return n;
}

/* ---- transactions, sequence ------------------------------------------------- */

static int sq_begin(void *ctx)
{
	struct sq *q = ctx;
	return step_done(q, q->st[S_BEGIN], "starting a transaction");
}

static int sq_commit(void *ctx)
{
	struct sq *q = ctx;
	int rc = step_done(q, q->st[S_COMMIT], "committing");
	if (rc < 0 && !sqlite3_get_autocommit(q->db))
		step_done(q, q->st[S_ROLLBACK], "rolling back");
	return rc;
}

static void sq_rollback(void *ctx)
{
	struct sq *q = ctx;
	if (!sqlite3_get_autocommit(q->db)) {
		char keep[sizeof q->err];
		memcpy(keep, q->err, sizeof keep); /* the reason, not the rollback */
		step_done(q, q->st[S_ROLLBACK], "rolling back");
		memcpy(q->err, keep, sizeof keep);
	}
}

static int sq_seq_get(void *ctx, uint64_t *next)
{
	struct sq *q = ctx;
	sqlite3_stmt *s = q->st[S_SEQ_GET];
	int rc = sqlite3_step(s);
	*next = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 1;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(q, rc, "reading the id sequence");
	if (*next < 1)
		*next = 1;
	return 0;
}

static int sq_seq_put(void *ctx, uint64_t next)
{
	struct sq *q = ctx;
	bind_u64(q->st[S_SEQ_PUT], 1, next);
	return step_done(q, q->st[S_SEQ_PUT], "writing the id sequence");
}

static const char *sq_error(void *ctx)
{
	return ((struct sq *)ctx)->err;
}

static void sq_free(void *ctx)
{
	struct sq *q = ctx;
	for (int i = 0; i < S_N; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q);
}

static const struct store_ops sqlite_ops = {
	.put = sq_put, .get = sq_get, .del = sq_del, .count = sq_count, .free = sq_free,
	.begin = sq_begin, .commit = sq_commit, .rollback = sq_rollback, .scan = sq_scan,
	.seq_get = sq_seq_get, .seq_put = sq_seq_put, .error = sq_error, .append = sq_append,
};

/* ---- open ---------------------------------------------------------------------- */

int store_sqlite_default_path(char *buf, size_t len)
{
	const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	if (st && st[0] == '/')
		n = snprintf(buf, len, "%s/plot/plot.db", st);
	else if (home && home[0])
		n = snprintf(buf, len, "%s/.local/state/plot/plot.db", home);
	else
		return -1;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* mkdir -p of path's directory, new parts 0700. */
static int make_dirs(char *dir)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(dir, 0700);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(dir, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* The directory exists (made if need be), is ours and closed to others. */
static int check_dir(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		snprintf(err, errlen, "store %s: give an absolute path below a directory", path);
		return -1;
	}
	*slash = '\0';
	if (make_dirs(dir) < 0 || stat(dir, &st) < 0) {
		snprintf(err, errlen, "store %s: cannot create directory %s: %s", path, dir,
			 strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		snprintf(err, errlen, "store %s: directory %s must be owned by uid %u and not "
			 "writable by group or others (it is uid %u, mode %03o)", path, dir,
			 (unsigned)geteuid(), (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

/* An existing database file is a regular file we own and may write. */
static int check_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "store %s: must be a regular file (not a symlink) owned "
			 "by uid %u", path, (unsigned)geteuid());
		return -1;
	}
	if (access(path, R_OK | W_OK) < 0) {
		snprintf(err, errlen, "store %s: read-only (%s)", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int exec_sql(struct sq *q, const char *sql, const char *doing)
{
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_fail(q, rc, doing);
}

/* The file is a sound SQLite database: the first word of quick_check. */
static int check_sound(struct sq *q)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(q->db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(q, rc, "checking the file");
	rc = sqlite3_step(s);
	const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
	int ok = t && strcmp((const char *)t, "ok") == 0;
	if (!ok && rc == SQLITE_ROW)
		snprintf(q->err, sizeof q->err, "store %.300s: corrupted (%.100s)", q->path, t ? (const char *)t : "?");
	else if (!ok)
		sq_fail(q, rc, "checking the file");
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}

static int sq_setup(struct sq *q, int sync_full)
{
	if (exec_sql(q, "PRAGMA locking_mode=EXCLUSIVE", "locking") < 0 ||
	    exec_sql(q, "PRAGMA journal_mode=WAL", "switching to WAL") < 0 ||
	    exec_sql(q, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
		     "setting synchronous") < 0 ||
	    check_sound(q) < 0 || exec_sql(q, "BEGIN IMMEDIATE", "taking the write lock") < 0)
		return -1;
	if (exec_sql(q, schema, "creating the tables") < 0 || exec_sql(q, "COMMIT", "committing") < 0)
		return -1;
	if (sqlite3_db_readonly(q->db, "main") == 1) {
		snprintf(q->err, sizeof q->err, "store %.400s: read-only", q->path);
		return -1;
	}
	for (int i = 0; i < S_N; i++) {
		int rc = sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &q->st[i], NULL);
		if (rc != SQLITE_OK)
			return sq_fail(q, rc, "preparing statements");
	}
	return 0;
}

int store_sqlite_open(const struct store_open_args *a, struct store **out, char *err,
		      size_t errlen)
{
	struct sq *q = calloc(1, sizeof *q);
	struct store *s = calloc(1, sizeof *s);
	*out = NULL;
	if (!q || !s) {
		snprintf(err, errlen, "store: out of memory");
		goto fail;
	}
	if (a && a->path)
		snprintf(q->path, sizeof q->path, "%s", a->path);
	else if (store_sqlite_default_path(q->path, sizeof q->path) < 0) {
		snprintf(err, errlen, "store: no database path: set store.path, "
			 "XDG_STATE_HOME or HOME");
		goto fail;
	}
	if (check_dir(q->path, err, errlen) < 0 || check_file(q->path, err, errlen) < 0)
		goto fail;
	int rc = sqlite3_open_v2(q->path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK || sq_setup(q, a && a->sync_full) < 0) {
		if (rc != SQLITE_OK)
			sq_fail(q, rc, "opening");
		snprintf(err, errlen, "%s", q->err);
		goto fail;
	}
	s->ops = &sqlite_ops;
	s->ctx = q;
	strcpy(s->name, "sqlite");
	*out = s;
	return 0;
fail:
	if (q)
		sq_free(q);
	free(s);
	return -1;
}
