/*
 * pgq.h — the shared queue and mailbox on PostgreSQL (issue #15): many plotd,
 * one database, one global priority order.
 *
 * WHAT IT IS
 *   One struct pgq is one libpq connection of one daemon. Every call is
 *   synchronous (a few round trips, one short transaction each) and is meant
 *   to run on the store thread of the durable store (store.h), never on the
 *   event loop. A struct pgq is not thread-safe: one thread owns it. To wait
 *   for notifications without blocking anything else, that thread polls
 *   pgq_fd() beside its own wake-up fd and calls pgq_notifications().
 *
 * SCHEMA (lib/store/pg-schema.c)
 *   Versioned: plot_schema_version holds one row, the version applied. At
 *   open, the migrations past it run in order in one transaction that first
 *   takes a transaction-scoped advisory lock, so daemons starting together
 *   migrate once and the others wait, then see the new version. A database
 *   newer than this binary is refused. Tables: plot_tasks (one row per task;
 *   ids from one bigserial shared by every daemon), plot_output (the output
 *   chunks of a task, in order), plot_daemons (each daemon's share, written
 *   by its heartbeat).
 *
 * CLOCK
 *   Every time that matters across daemons (lease expiry, deadlines, created
 *   /started/ended) is the database server's clock (now()): daemons on
 *   different machines never compare their own clocks. Times handed out are
 *   Unix epoch nanoseconds (microsecond resolution, PostgreSQL's).
 *
 * CLAIMING (the pool's admission rule, store-wide)
 *   pgq_claim() takes, per model a daemon serves, its free and its total
 *   units. In one transaction it first takes the model's claim lock (a
 *   transaction-level advisory lock, held to COMMIT), so claims of one model
 *   by different daemons run one after the other and each sees the whole
 *   head of the queue: the priority order is global, not merely per daemon.
 *   (Locking rows with SKIP LOCKED alone would let a second claimer pass the
 *   rows a first one has locked and take lower ones.) Then it locks up to
 *   PGQ_CLAIM_WINDOW queued, not yet expired tasks of that model in priority
 *   then FIFO (id) order with FOR UPDATE SKIP LOCKED (what it still skips are
 *   rows a cancel or a deadline sweep is ending), and walks them as lib/pool
 *   does: a task that fits the free
 *   units is claimed; one that does not is passed over and counts one skip
 *   for every task claimed behind it; a passed-over task skipped skip_limit
 *   times (and not bigger than the daemon's total units) reserves: nothing
 *   behind it is claimed. A claimed task becomes RUNNING with a lease: the
 *   daemon's name, a lease token unique in the database, and an expiry
 *   now() + lease_ms.
 *   A claim waits at most 2 s for another's claim lock, then claims nothing
 *   (the caller's next heartbeat tries again); a session idle inside a
 *   transaction for 10 s (a daemon frozen mid-claim) is ended by the server,
 *   which frees its locks. Claims are short (a few statements), so the lock
 *   costs throughput only when many daemons claim one model at once.

 * LEASES
 *   The lease token, not the daemon's name, is what every later write checks
 *   (appending output, finishing): a daemon whose task was requeued and then
 *   claimed again by itself holds a new token, so the old run's writes are
 *   refused too. pgq_renew() (the heartbeat) pushes back the expiry of every
 *   lease the daemon still holds and names the ones it lost, with the state
 *   the task is now in (requeued, failed, cancelled, timed out, gone): the
 *   daemon stops those and discards their output. pgq_sweep(), called by any
 *   daemon, ends expired leases: the task is requeued with attempts + 1 and
 *   its partial output deleted while attempts < max_restarts (the task's
 *   restart policy, fixed at submit), else it FAILS naming the daemon that
 *   lost it. A task therefore completes at most once: only the holder of the
 *   current token can finish it. A lease past its expiry that no sweep has
 *   taken yet is still held (a late heartbeat renews it): what ends a lease
 *   is another daemon's sweep, never a clock read by the holder.
 *
 * DEADLINES
 *   A deadline is absolute on the database clock. Claims never take a task
 *   past it; pgq_sweep() ends queued tasks past it as EXPIRED and running ones
 *   as TIMEOUT (partial output kept; the holder learns it on its next renew),
 *   whichever daemon sweeps first.
 *
 * NOTIFY
 *   A submit (and a requeue by the sweep) notifies channel plot_submit with
 *   the model's name; a cancel of a running task notifies plot_cancel with
 *   the task id. pgq_listen() subscribes; idle daemons wake on a submit
 *   instead of polling, and a periodic pgq_sweep()+pgq_claim() covers a lost
 *   notification (LISTEN is not durable across reconnects).
 *
 * ERRORS
 *   Every call returns 0 or a negative PGQ_E_* and fills err with a message.
 *   Connection failures name the URL with any password replaced by "***"
 *   (or "PG* environment" and the host/db/user libpq resolved from it).
 *
 * HOW PLOTD USES IT (daemon/pgshare.c, lib/store/pg-store.c; the store
 * writer thread owns a second connection for appends and finishes)
 *   The store thread owns one struct pgq and polls its eventfd (posts from
 *   the loop) beside pgq_fd(), with a timeout of the heartbeat interval:
 *     - a posted submit runs pgq_submit and posts the id back (the database
 *       hands out ids, shared by every daemon); cancel, get, tail and stats
 *       are posts answered the same way;
 *     - a plot_submit notification, a local task ending (units freed) or
 *       the timer runs pgq_claim with each local pool's free units; claimed
 *       tasks are posted to the loop, which starts them in the local pool
 *       under their database id and lease;
 *     - output and ends of those tasks come back as posts: pgq_append,
 *       pgq_finish; PGQ_E_LOST (or a lost lease in pgq_renew, or a
 *       plot_cancel naming a task held here) cancels the local task and
 *       drops its output;
 *     - the timer runs pgq_renew (lease = 3 heartbeats) and pgq_sweep;
 *     - PGQ_E_QUERY with !pgq_connected(): reconnect with backoff, then
 *       sweep and claim (notifications sent meanwhile are lost).
 *   The restart policy maps to max_restarts: fail is 0, requeue a bound
 *   (so a task that kills every daemon that runs it ends failed).
 *
 * DECISIONS WHERE THE ISSUE WAS SILENT
 *   - skips are counted store-wide (a column), so the big-task rule holds
 *     across daemons, not per daemon.
 *   - the sweep deletes a requeued task's partial output: the rerun starts
 *     from nothing and a reader never sees two runs spliced together.
 *   - cancelling a running task ends it at once in the database (CANCELLED,
 *     lease cleared); the running daemon learns it by NOTIFY or its next
 *     renew and stops; output appended before the cancel is kept.
 */
#ifndef PLOT_PGQ_H
#define PLOT_PGQ_H

#include <stddef.h>
#include <stdint.h>

#include "plot/store.h"

enum pgq_err {
	PGQ_OK = 0,
	PGQ_E_CONNECT = 1,  /* cannot connect (bad URL, server down, auth) */
	PGQ_E_SCHEMA = 2,   /* cannot create/migrate the schema (permissions, newer db) */
	PGQ_E_QUERY = 3,    /* a statement failed (connection lost, server error) */
	PGQ_E_LOST = 4,     /* the lease is no longer held: stop, discard output */
	PGQ_E_NOTFOUND = 5, /* no task with that id */
	PGQ_E_STATE = 6,    /* the task is in a state that does not allow this */
	PGQ_E_INVAL = 7,    /* bad argument (named in err) */
	PGQ_E_NOMEM = 8,
	PGQ_E_FULL = 9,     /* the model's shared queue holds max_queued tasks */
};
const char *pgq_err_name(int e); /* "lost", "connect", ... */

#define PGQ_SCHEMA_VERSION 2    /* what this binary migrates up to */
#define PGQ_CLAIM_WINDOW 64     /* queued tasks looked at per model per claim */
#define PGQ_MAX_MODELS 64       /* models per claim */

struct pgq;

/* Connect (url NULL or "": the PG* environment variables), then create or
 * migrate the schema. name is this daemon's name in leases and stats (at
 * most 63 bytes). */
int pgq_open(const char *url, const char *name, struct pgq **out, char *err, size_t errlen);
void pgq_free(struct pgq *q);
/* url with the password replaced by "***" (URI or key=value form). */
void pgq_redact_url(const char *url, char *out, size_t outlen);
int pgq_schema_version(struct pgq *q, int *version, char *err, size_t errlen);

/* A new task, QUEUED. request is the opaque blob the running daemon needs to
 * run it (the encoded request); timeout_ms 0 means no deadline. */
struct pgq_submit {
	const char *model;
	int priority;          /* enum pool_prio */
	uint64_t cost;         /* units, >= 1 */
	uint64_t timeout_ms;   /* deadline = now() + timeout_ms; 0 = none */
	uint32_t owner_uid;
	const char *label;     /* may be NULL */
	int max_restarts;      /* lease losses that requeue; past it the task fails */
	uint64_t max_queued;   /* the shared queue depth of this model; 0 = no limit */
	const char *key;       /* idempotency key, or NULL (see pgq_submit) */
	const void *request;
	size_t request_len;
};
/* Returns 0 and the new task's id, or 1 and the id of the task this owner
 * already submitted with this key (from any daemon: a retried submit is not
 * queued twice), or a negative PGQ_E_*. */
int pgq_submit(struct pgq *q, const struct pgq_submit *s, uint64_t *id, char *err, size_t errlen);

/* One model's offer to pgq_claim(). */
struct pgq_want {
	const char *model;
	uint64_t free_units;
	uint64_t max_units;
	unsigned skip_limit;   /* 0: POOL_SKIP_LIMIT */
};

/* A claimed task: what the daemon needs to run it. */
struct pgq_claimed {
	uint64_t id;
	uint64_t lease;        /* the token every later write presents */
	char model[64];
	int priority;
	uint64_t cost;
	uint64_t deadline_ns;  /* epoch ns, 0 = none */
	uint32_t owner_uid;
	int attempts;          /* lease losses before this claim */
	void *request;         /* malloc'd copy; pgq_claimed_clear() frees it */
	size_t request_len;
};
void pgq_claimed_clear(struct pgq_claimed *c);

/* Claim for every model in want[0..nwant). out has room for cap tasks; *n is
 * how many were claimed (in claim order: model by model, priority then FIFO). */
int pgq_claim(struct pgq *q, const struct pgq_want *want, size_t nwant, uint64_t lease_ms,
	      struct pgq_claimed *out, size_t cap, size_t *n, char *err, size_t errlen);

/* A lease a daemon holds: the task and the token its claim returned. */
struct pgq_lease {
	uint64_t id;
	uint64_t lease;
};
/* A lease the heartbeat found gone, and the state its task is in now
 * (enum pool_state; POOL_QUEUED: requeued; -1: the task no longer exists). */
struct pgq_lost {
	uint64_t id;
	uint64_t lease;
	int state;
};
/* Heartbeat: extend every lease in held[0..n) by lease_ms, record this
 * daemon's share (units, running) in plot_daemons, and list in lost (room for
 * n) the leases that are no longer held. */
int pgq_renew(struct pgq *q, const struct pgq_lease *held, size_t n, uint64_t lease_ms,
	      uint64_t units, uint64_t running, struct pgq_lost *lost, size_t *nlost,
	      char *err, size_t errlen);

/* Output of a running task, appended in order; refused with PGQ_E_LOST unless
 * lease is the task's current token and the task is RUNNING. */
int pgq_append(struct pgq *q, uint64_t id, uint64_t lease, const void *data, size_t len,
	       char *err, size_t errlen);
/* End a running task (state DONE, FAILED, CANCELLED or TIMEOUT; error may be
 * NULL). PGQ_E_LOST when the lease is not held: the run does not count. */
int pgq_finish(struct pgq *q, uint64_t id, uint64_t lease, int state, const char *error,
	       char *err, size_t errlen);
/* Cancel from any daemon: a queued or running task becomes CANCELLED (a
 * running one's holder is notified). PGQ_E_STATE when already ended. */
int pgq_cancel(struct pgq *q, uint64_t id, char *err, size_t errlen);
/* Cancel every queued or running task of models[0..nmodels) (with has_owner,
 * only owner's), oldest first, at most max, each as pgq_cancel does (one
 * statement per task). *ids (malloc'd, *n of them) lists those cancelled,
 * also when a later one fails (the connection: the call returns its error). */
int pgq_cancel_all(struct pgq *q, const char *const *models, size_t nmodels, int has_owner,
		   uint32_t owner, size_t max, uint64_t **ids, size_t *n, char *err, size_t errlen);

/* What a sweep did. */
struct pgq_swept {
	size_t requeued, failed, expired, timed_out;
};
/* End expired leases and passed deadlines (see LEASES, DEADLINES). */
int pgq_sweep(struct pgq *q, struct pgq_swept *done, char *err, size_t errlen);

/* A task by id from any daemon: the record (store.h; times in epoch ns;
 * attempts = lease losses; key and request as submitted;
 * store_record_clear() frees it) with its whole output, and the name of the
 * daemon that last claimed it (runner: room for 64 bytes, "" if never
 * claimed; may be NULL). */
int pgq_get(struct pgq *q, uint64_t id, struct store_record *out, char *runner, char *err,
	    size_t errlen);

/* Output appended after chunk after_seq (0: from the start), for a tail of a
 * task running on any daemon: fn gets each chunk in order; *last_seq is the
 * last chunk's number (after_seq if none: pass it back next time) and *state
 * the task's state now (stop once it is terminal and nothing came);
 * *attempts (if not NULL) its attempts now: a change means the run that
 * wrote the chunks read before was lost and its output deleted, and what
 * came is the new run's from its start (a follower must not splice). A tail
 * is a short poll of this (say every 50-100 ms while the task runs): no
 * NOTIFY per chunk, which would serialise every appending commit on the
 * server's notify queue lock. */
typedef void (*pgq_chunk_fn)(void *arg, uint64_t seq, const void *data, size_t len);
int pgq_output_since(struct pgq *q, uint64_t id, uint64_t after_seq, pgq_chunk_fn fn, void *arg,
		     uint64_t *last_seq, int *state, int *attempts, char *err, size_t errlen);

/* What plot queue / plot list ask of the whole database. */
struct pgq_list_args {
	const char *model;     /* NULL: every model */
	int state;             /* enum pool_state, -1: any */
	int all;               /* 0: queued and running (running first, then priority,
	                        * FIFO); 1: every task, newest first */
	int has_owner;
	uint32_t owner;        /* with has_owner: only this uid's tasks */
	double since_secs;     /* > 0: only tasks submitted this recently */
	uint64_t limit;        /* at most this many; 0: 1000 */
};
/* Tasks as records without output (output_len is its size) or request, and
 * the 1-based queue position of each queued one (0 for the others), in
 * malloc'd arrays (*n of each; store_record_clear each record). */
int pgq_list(struct pgq *q, const struct pgq_list_args *a, struct store_record **out,
	     uint64_t **pos, size_t *n, char *err, size_t errlen);

/* The state now (enum pool_state; -1: no such task) of each of ids[0..n), in
 * one statement: what a reader waiting for many tasks' ends polls. */
int pgq_states(struct pgq *q, const uint64_t *ids, size_t n, int *states, char *err,
	       size_t errlen);

/* The shared queue per model and each daemon's share, for `plot stats`. */
struct pgq_model_stat {
	char model[64];
	uint64_t queued, running, queued_units, running_units;
};
struct pgq_daemon_stat {
	char name[64];
	uint64_t units, running;   /* as its last heartbeat said */
	uint64_t seen_ms_ago;      /* since that heartbeat, database clock */
	uint64_t holding;          /* tasks it holds a lease on now */
};
/* Fill up to mcap models (by name) and dcap daemons (by name). */
int pgq_stats(struct pgq *q, struct pgq_model_stat *m, size_t mcap, size_t *nm,
	      struct pgq_daemon_stat *d, size_t dcap, size_t *nd, char *err, size_t errlen);

/* The connection: 1 while it is up. After a PGQ_E_QUERY the caller may
 * reconnect (its own backoff, on its own timer): pgq_reconnect() resets the
 * connection and, if pgq_listen() was called, listens again. Notifications
 * sent while it was down are lost: sweep and claim after a reconnect. */
int pgq_connected(const struct pgq *q);
int pgq_reconnect(struct pgq *q, char *err, size_t errlen);

/* LISTEN on plot_submit and plot_cancel. */
int pgq_listen(struct pgq *q, char *err, size_t errlen);
/* The connection's socket, readable when a notification (or anything) came. */
int pgq_fd(const struct pgq *q);
/* Read what the socket has, without blocking, and call fn for each
 * notification: channel "plot_submit" (payload: model) or "plot_cancel"
 * (payload: task id). Returns the number delivered or a negative PGQ_E_*. */
typedef void (*pgq_notify_fn)(void *arg, const char *channel, const char *payload);
int pgq_notifications(struct pgq *q, pgq_notify_fn fn, void *arg, char *err, size_t errlen);

/* ---- the postgres store's lease table (lib/store/pg-store.c) ----------------
 * s is the struct store store_pg_open returned (not the writer's facade).
 * hold: the claimer took task id (of model, cost units) with token lease; the
 * store's writes for id present it; its finish ends it once the batch holding
 * the finish is committed (or rolled back). drop: forget id's lease (lease 0: whichever), so the task's
 * later writes are discarded; -1 when not held. leases: a malloc'd snapshot
 * for the heartbeat, returns the count. Any thread. */
int store_pg_hold(struct store *s, uint64_t id, uint64_t lease, const char *model,
		  uint64_t cost);
/* The units and tasks of model whose leases are held here, ending ones too
 * (a finish not yet committed): what the database counts as this daemon's. */
void store_pg_held(struct store *s, const char *model, uint64_t *units, uint64_t *count);
/* fn(ctx) runs on the store writer's thread after a batch that ended leases
 * (their units are free in the database too): claim again. It runs under the
 * table's lock: cheap, and never calling back into the table. fn NULL stops
 * the calls (once it returns, none is running). */
void store_pg_on_release(struct store *s, void (*fn)(void *ctx), void *ctx);
int store_pg_drop(struct store *s, uint64_t id, uint64_t lease);
size_t store_pg_leases(struct store *s, struct pgq_lease **out);
/* Writes (appends, finishes) waiting for the database to come back, how
 * many tasks' writes were dropped past the bound so far, and how many waiting
 * writes were committed later (see pg-store.c). A batch of the store writer
 * replays the waiting ones. */
void store_pg_pending(struct store *s, size_t *writes, uint64_t *dropped, uint64_t *replayed);

#endif
