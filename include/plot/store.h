/*
 * store.h — where task records live: the interface behind the pool's queue
 * and mailbox persistence.
 *
 * A task record is everything needed to show or resume a task: its id,
 * priority, state, cost, timings, owner, label, error and output. Records
 * serialise to msgpack (store_record_encode/decode), so a durable backend
 * (SQLite, PostgreSQL: a later issue) stores opaque blobs keyed by id.
 *
 * The pool writes a record at submit, at every state change, and at the end
 * (with the output); it deletes it when retention prunes the task. The memory
 * backend ships now; it keeps the encoded blobs in a hash table so that the
 * encode/decode path is exercised exactly as a durable backend would.
 *
 * Backends are called with the pool lock NOT held. A durable backend is
 * called from one thread only: the store writer (store_writer_new, below),
 * which owns it, batches every write it is posted into one transaction
 * (group commit) and tells the loop when a batch is durable. The pool
 * writes to the writer's facade, a struct store whose put/del only queue.
 *
 * TIMES in records the pool hands over are its monotonic clock; the writer
 * turns them into wall-clock nanoseconds (CLOCK_REALTIME) before they reach
 * a backend, and back at load, so they survive a reboot.
 */
#ifndef PLOT_STORE_H
#define PLOT_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store_record {
	uint64_t id;
	int priority;      /* enum pool_prio */
	int state;         /* enum pool_state */
	uint64_t cost;
	uint64_t created_ns, started_ns, ended_ns, deadline_ns;
	uint32_t owner_uid;
	char *model;       /* NUL-terminated or NULL */
	char *label;
	char *error;
	char *output;      /* output_len bytes, may hold NULs */
	size_t output_len;
	uint32_t attempts; /* runs started before this one (a requeue adds one) */
	char *key;         /* the submitter's idempotency key, or NULL */
	char *request;     /* request_len bytes: how to resume it (the submit frame) */
	size_t request_len;/* 0: unchanged (a put keeps the stored request) */
};

/* Encode to msgpack into a malloc'd buffer. Returns 0 or -1 (no memory). */
int store_record_encode(const struct store_record *r, char **buf, size_t *len);
/* Decode; every field is bounds-checked. Returns 0, or -1 with err naming the
 * bad field and its byte offset. On success r owns malloc'd strings. */
int store_record_decode(const void *buf, size_t len, struct store_record *r,
			char *err, size_t errlen);
void store_record_clear(struct store_record *r);

/* Called by scan for each record, in ascending id order; r is the callee's
 * to keep (it must store_record_clear it). Return nonzero to stop. */
typedef int (*store_scan_fn)(void *arg, struct store_record *r);

struct store_ops {
	/* Insert or replace. A record with output replaces the stored output
	 * (an empty one clears it); without (output NULL) it keeps what put or
	 * append stored, and output_len, when not 0, says how long that is.
	 * One without request keeps the stored request. */
	int (*put)(void *ctx, const struct store_record *r);
	int (*get)(void *ctx, uint64_t id, struct store_record *out); /* -1: not found */
	int (*del)(void *ctx, uint64_t id);                         /* -1: not found */
	size_t (*count)(void *ctx);
	void (*free)(void *ctx);
	/* Optional (NULL: every put stands alone): one transaction around a
	 * batch. commit returns 0 once the batch is as durable as the backend
	 * promises; -1 leaves nothing of the batch behind. */
	int (*begin)(void *ctx);
	int (*commit)(void *ctx);
	void (*rollback)(void *ctx);
	/* Every record, ascending id, output included. 0 or -1. */
	int (*scan)(void *ctx, store_scan_fn fn, void *arg);
	/* The id sequence: the smallest id never handed out (1 when new). */
	int (*seq_get)(void *ctx, uint64_t *next);
	int (*seq_put)(void *ctx, uint64_t next);
	/* What the last failing call failed on ("disk full: /x/plot.db"). */
	const char *(*error)(void *ctx);
	/* Optional: output as it grows, len bytes at byte offset off of task id's
	 * output (replacing what was there). 0 or -1. */
	int (*append)(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len);
};

struct store {
	const struct store_ops *ops;
	void *ctx;
	char name[16]; /* "memory", "sqlite", ... */
};

struct store *store_memory_new(void);

/* Where and how a durable backend keeps its data (the daemon's store.*
 * settings). path NULL: the backend's default place. */
struct store_open_args {
	const char *path;          /* sqlite: the database file */
	int sync_full;             /* 1: survive power loss (slower commits) */
	const char *url;           /* postgres: libpq URL; NULL = the PG* environment */
	const char *name;          /* postgres: this daemon's name in leases */
};

/* The backend table (lib/store/backends.c): the config's queue.backend and
 * mailbox.backend name a row. open() fills *out with the one store every
 * pool of that backend writes through (the daemon opens it once), or NULL
 * when the pools keep their records in their own memory (`memory`).
 * Returns 0, or -1 with err naming the setting or the file. */
struct store_backend {
	const char *name;
	int (*open)(const struct store_open_args *a, struct store **out, char *err,
		    size_t errlen);
};
const struct store_backend *store_backend_find(const char *name);
/* Check that queue and mailbox name the same known backend; *out = its row. */
int store_backend_pick(const char *queue, const char *mailbox,
		       const struct store_backend **out, char *err, size_t errlen);
void store_free(struct store *s);

/* The SQLite backend (lib/store/sqlite.c). */
int store_sqlite_open(const struct store_open_args *a, struct store **out, char *err,
		      size_t errlen);
/* The PostgreSQL backend (lib/store/pg-store.c; the lease table is in pgq.h):
 * connects and migrates the schema, or fails naming the URL. */
int store_pg_open(const struct store_open_args *a, struct store **out, char *err,
		  size_t errlen);
/* The default database path: $XDG_STATE_HOME/plot/plot.db, else
 * ~/.local/state/plot/plot.db. Returns 0 or -1 (no HOME, too long). */
int store_sqlite_default_path(char *buf, size_t len);

/* ---- the store writer (lib/store/writer.c) --------------------------------
 * One thread owns a durable store. Writers post; the thread takes everything
 * queued, writes it in one transaction, commits, then runs the completions
 * that were queued before the batch (store_writer_sync) with the outcome.
 * A failed batch is rolled back: its completions see failure, its writes are
 * lost (the error is kept for store_writer_error), and later batches try
 * again (a disk that was full may have room now). */
struct store_writer;
/* Called on the writer thread once everything queued before the matching
 * store_writer_sync is committed (ok 1) or failed (ok 0). Must be cheap: a
 * post to the loop. */
typedef void (*store_done_fn)(void *ctx, void *arg, int ok);
/* Takes ownership of backend (freed by store_writer_free). NULL and err on
 * failure (the backend is freed then too). */
struct store_writer *store_writer_new(struct store *backend, char *err, size_t errlen);
/* The facade the pools write through: put/del queue and return at once. */
struct store *store_writer_store(struct store_writer *w);
/* Queue a completion behind every write queued so far. 0 or -1 (no memory). */
int store_writer_sync(struct store_writer *w, store_done_fn fn, void *ctx, void *arg);
/* From now on writes are dropped (a clean stop: the cancellations that shut
 * the pools down must not reach the disk); what was queued is still written. */
void store_writer_freeze(struct store_writer *w);
/* Copy the last batch failure's message; returns 1 if the last batch failed. */
int store_writer_error(struct store_writer *w, char *buf, size_t len);
/* Batches and records committed so far (for the log and tests). */
void store_writer_counts(struct store_writer *w, uint64_t *batches, uint64_t *records);
/* Write what is queued, stop the thread, free the backend and w. */
void store_writer_free(struct store_writer *w);
/* Convert a record's times from the pool clock (monotonic) to wall clock
 * (to_wall 1) or back (0), all four with one offset; 0 stays 0, and a wall
 * time from before this boot comes back as 1 (long past). */
void store_record_times(struct store_record *r, int to_wall);

static inline int store_put(struct store *s, const struct store_record *r)
{ return s->ops->put(s->ctx, r); }
static inline int store_get(struct store *s, uint64_t id, struct store_record *out)
{ return s->ops->get(s->ctx, id, out); }
static inline int store_del(struct store *s, uint64_t id)
{ return s->ops->del(s->ctx, id); }
static inline int store_append(struct store *s, uint64_t id, uint64_t off, const void *data,
			       size_t len)
{ return s->ops->append ? s->ops->append(s->ctx, id, off, data, len) : 0; }

#endif
