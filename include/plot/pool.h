/*
 * pool.h — the parking lot: one resource-aware worker pool per model.
 *
 * A pool owns a priority queue of tasks, a budget of resource units
 * (max_units), a limit on running tasks, a bounded queue depth, a default
 * timeout, a mailbox of finished tasks kept for retention_ns, and an
 * executor that runs admitted tasks.
 *
 * TWO KNOBS, ONE MEANING EACH
 *   max_running  how many tasks may run at once. Enforced by the pool: the
 *                running limit is min(max_running, the executor's capacity),
 *                where capacity is how many tasks the executor can run at
 *                once (an llm batch: max_num_seqs; 0 while a model loads;
 *                POOL_NO_CAP when it has no bound of its own).
 *   threads      compute threads the executor uses (0 = its default). It
 *                is passed to the executor and nothing else; it may change
 *                the executor's capacity (the thread executor: n threads run
 *                n tasks), never max_running.
 *
 * DESIGN
 *   - Every piece of pool state is guarded by one mutex. Waiters (result
 *     readers, subscribers, shutdown) block on condition variables; nothing
 *     polls. An optional notify callback lets an event loop learn of new
 *     output without blocking (the daemon turns it into an eventfd write).
 *   - Units are reserved in exactly one place (admission, atomically with the
 *     fit check) and released in exactly one place (task end), whatever the
 *     way out: done, failed, cancelled, expired, timed out, executor error.
 *   - The executor owns its threads. The pool hands it admitted tasks through
 *     ops->start(); the executor reports output with pool_task_emit() (or
 *     pool_emit_batch(), a whole step of a batch under one lock hold) and the
 *     end with pool_task_finish(). One executor may run many tasks at once on
 *     one thread (continuous batching); pool_thread_executor_new() gives the
 *     simple one-OS-thread-per-running-task executor on top of this.
 *
 * ADMISSION RULE (the big-task rule)
 *   Tasks are ordered by priority (critical > high > normal > low), FIFO within
 *   a level. Admission walks that order while a running slot is free:
 *     - a task that fits (used + cost <= max_units) is admitted;
 *     - a task that does not fit is passed over, and every admission of a task
 *       behind it counts as one skip for it;
 *     - once a passed-over task has been skipped POOL_SKIP_LIMIT times (the
 *       pool's skip_limit) it *reserves*: admission stops at it, so nothing
 *       behind it starts until running work drains enough units for it.
 *   So a big task never blocks small ones forever (they pass it up to
 *   skip_limit times) and is never starved forever (after that it waits only
 *   for running work to end). A queued task whose cost exceeds max_units
 *   (possible only after max_units is lowered at runtime) never reserves; it
 *   stays queued until the limit is raised again or its deadline expires.
 *   Priority is strict between levels: the skip count only concerns tasks
 *   of any level that are admitted past the blocked one in this order.
 *   With max_units POOL_UNLIMITED units do not gate admission at all, so no
 *   cost, however large, holds the pool (only running limits apply).
 *
 * AGING (pool-aging.c; off unless aging_ns is set)
 *   A task queued at low or normal priority for aging_ns at its level rises
 *   one level (low -> normal -> high; never to critical), joining the tail
 *   of that level, so steady normal-priority load cannot keep a low task
 *   waiting until its deadline. The timer thread wakes for it; with
 *   manual_tick, pool_tick() ages. A task's reported priority is its level
 *   now.
 *
 * FAIR UNITS
 *   Each submitter uid may have at most max_user_units units queued and
 *   running together (max_owner_units for owner_uid, off by default); a
 *   submit past it is POOL_E_USER_CAP (the protocol's QUEUE_FULL: retry
 *   later). The count rises at submit and falls at the task's end, in the
 *   same places as the queue and the units.
 *
 * DEADLINES
 *   Every task has an absolute deadline (its own, or created + the pool's
 *   default timeout; timeout 0 means none). Queued past it: EXPIRED, never
 *   runs. Running past it: the cancel flag is raised with reason TIMEOUT;
 *   when the executor hands the task back it ends as TIMEOUT with its partial
 *   output kept. Deadlines and retention are checked by pool_tick(), which the
 *   pool's own timer thread calls (or the test calls, with a manual clock).
 *
 * THREADS
 *   pool_* functions are safe to call from any thread, except that
 *   ops->start/ops->cancel are invoked without the pool lock held and must not
 *   call pool_free(). pool_task_* functions are for the executor.
 *   ops->start, ops->cancel, notify, payload_free and store writes run on the
 *   thread whose call caused them (a submitter, a worker handing a task back,
 *   the timer thread), after the pool lock is dropped. ops->cancel may arrive
 *   for a task the executor has just handed back; ignore it then.
 *
 * DECISIONS WHERE THE SPEC WAS SILENT
 *   - max_queue_depth bounds tasks waiting (QUEUED), not running ones; a
 *     submit is checked against it before admission, so depth 0 rejects all.
 *   - stats.rejected counts QUEUE_FULL + CAPACITY + SHUTDOWN (not INVALID).
 *   - A changed default timeout applies to tasks submitted afterwards.
 *   - A task's payload is freed when the task ends (not at pruning).
 *   - The timer thread prunes the mailbox up to 10 ms after retention ends
 *     (batching wake-ups under load); pool_tick() prunes exactly on time.
 *   - After pool_shutdown() returns, executor threads may still be running
 *     their post-hand-back work (payload frees, notify) until pool_free()
 *     joins them.
 *   - A queued task whose deadline has passed is never admitted, even if no
 *     tick has run since.
 *   - max_running 0 is invalid (it would be a pause switch, which nobody
 *     asked for); no cap is POOL_NO_CAP in pool_config and POOL_UNLIMITED
 *     through pool_set_limit, like max_units.
 *   - threads is the value as set, 0 included; what 0 becomes is the
 *     executor's business (llm: one per online core, synthetic: 1).
 *   - A failing set_threads leaves threads, capacity and the executor's
 *     old thread count as they were (pool_new fails instead).
 *   - Whichever of set_threads and pool_set_capacity runs last sets the
 *     capacity; they are serialised, so a stale value never wins a race.
 */
#ifndef PLOT_POOL_H
#define PLOT_POOL_H

#include <stddef.h>
#include <limits.h>
#include <stdint.h>

/* Error codes returned (negated) by pool functions. Stable: the protocol and
 * the CLI map them to wire codes and exit statuses. */
enum pool_err {
	POOL_OK = 0,
	POOL_E_QUEUE_FULL = 1, /* queue is at max_queue_depth */
	POOL_E_CAPACITY = 2,   /* cost > max_units: never queued */
	POOL_E_SHUTDOWN = 3,   /* pool is shutting down */
	POOL_E_INVALID = 4,    /* bad argument (priority, cost 0, ...) */
	POOL_E_NOT_FOUND = 5,  /* no such task, or pruned after retention */
	POOL_E_TIMEDOUT = 6,   /* a wait gave up before the event */
	POOL_E_NOMEM = 7,      /* allocation failed */
	POOL_E_STATE = 8,      /* operation not valid in the task's state */
	POOL_E_USER_CAP = 9,   /* the submitter's queued + running units would pass
	                        * its per-user cap (max_user_units / max_owner_units) */
};
const char *pool_err_name(int err); /* "QUEUE_FULL", ...; err may be negated */

enum pool_prio {
	POOL_PRIO_LOW = 0,
	POOL_PRIO_NORMAL = 1,
	POOL_PRIO_HIGH = 2,
	POOL_PRIO_CRITICAL = 3,
};
#define POOL_PRIO_COUNT 4
const char *pool_prio_name(int prio);      /* "low" ... "critical" */
int pool_prio_parse(const char *s);        /* -1 if unknown */

/* Task states. DONE and everything after it are terminal. */
enum pool_state {
	POOL_QUEUED = 0,
	POOL_RUNNING = 1,
	POOL_DONE = 2,      /* executor finished ok */
	POOL_FAILED = 3,    /* executor reported an error */
	POOL_CANCELLED = 4, /* cancel() or shutdown(cancel) */
	POOL_EXPIRED = 5,   /* deadline passed while queued: never ran */
	POOL_TIMEOUT = 6,   /* deadline passed while running: partial output kept */
};
#define POOL_STATE_COUNT 7
const char *pool_state_name(int state);
int pool_state_parse(const char *s); /* -1 if unknown */
#define POOL_STATE_TERMINAL(s) ((s) >= POOL_DONE)

/* Why a task stopped, as status and the end of a stream say it. The
 * executor tells the pool EOS, MAX_TOKENS or STOP (pool_task_set_outcome);
 * the pool derives the rest from the terminal state (cancelled: CANCEL,
 * expired or timed out: DEADLINE, failed: ERROR). A task that ends DONE
 * without the executor saying why stopped at the end of its text (EOS). */
enum pool_finish {
	POOL_FINISH_NONE = 0,       /* not ended yet */
	POOL_FINISH_EOS = 1,        /* end of the text (end-of-generation token) */
	POOL_FINISH_MAX_TOKENS = 2, /* max_tokens reached */
	POOL_FINISH_STOP = 3,       /* a stop string matched */
	POOL_FINISH_CANCEL = 4,
	POOL_FINISH_DEADLINE = 5,
	POOL_FINISH_ERROR = 6,
};
#define POOL_FINISH_COUNT 7
const char *pool_finish_name(int finish); /* "eos", "max_tokens", ...; "" for NONE */

/* Why a running task's cancel flag was raised. 0 = not cancelled. */
enum pool_cancel_reason {
	POOL_CANCEL_NONE = 0,
	POOL_CANCEL_USER = 1,
	POOL_CANCEL_TIMEOUT = 2,
	POOL_CANCEL_SHUTDOWN = 3,
};

#define POOL_UNLIMITED UINT64_MAX /* max_units / max_queue_depth / max_running: no bound */
#define POOL_NO_CAP UINT_MAX      /* max_running / capacity (unsigned): no bound */
#define POOL_MAX_THREADS 4096     /* threads: the largest value accepted */
#define POOL_SKIP_LIMIT 8         /* default skip_limit, see ADMISSION RULE */

struct pool;
struct pool_task;
struct store; /* lib/store: where task records are persisted */

/* Injectable monotonic clock, nanoseconds. NULL now_ns = CLOCK_MONOTONIC. */
struct pool_clock {
	uint64_t (*now_ns)(void *ctx);
	void *ctx;
};

/* The executor interface. The pool calls these; the executor owns threads. */
struct pool_executor_ops {
	/* An admitted task, units already reserved. Must not block for long;
	 * typically enqueues and wakes a thread. Return 0, or a negative
	 * pool_err: the pool then ends the task FAILED and releases its units. */
	int (*start)(void *ctx, struct pool_task *t);
	/* Optional nudge after a running task's cancel flag is raised (the flag
	 * itself is already visible through pool_task_cancelled()). */
	void (*cancel)(void *ctx, struct pool_task *t);
	/* Use n compute threads (0 = the executor's default). The executor
	 * stores in *capacity how many tasks it can run at once from now on:
	 * POOL_NO_CAP = no bound of its own, 0 = none yet (nothing is admitted
	 * until it raises it with pool_set_capacity(): an llm executor whose
	 * model is still loading). The thread executor: n threads, capacity n.
	 * Lowering it never kills running work. Called once by pool_new(), then
	 * on every change of the threads limit. Return 0 or negative pool_err. */
	int (*set_threads)(void *ctx, unsigned n, unsigned *capacity);
	/* Stop and join every thread; called once, by pool_free(), after
	 * shutdown, when no task is running any more. */
	void (*stop)(void *ctx);
	/* Free ctx. Called once, last. */
	void (*free)(void *ctx);
};

struct pool_executor {
	const struct pool_executor_ops *ops;
	void *ctx;
};

/* Called (without the pool lock) whenever a task gains output or changes
 * state. Must be cheap and must not call back into the pool. */
typedef void (*pool_notify_fn)(void *ctx, uint64_t task_id);

/* A task was submitted (state QUEUED; elapsed_ns 0), admitted (state
 * RUNNING; elapsed_ns = its queue wait) or ended (a terminal state;
 * elapsed_ns = time since admission, or since submit if it never ran).
 * Delivered like notify, without the pool lock, in order per pool, so a
 * task's submission always comes before its admission. For logs and
 * metrics; must not call back into the pool. */
struct pool_event {
	uint64_t id;
	int state;
	int priority;
	uint64_t cost;
	uint64_t elapsed_ns;
	uint32_t owner_uid;
	uint32_t prompt_tokens;    /* as submitted; 0 = not counted */
};
typedef void (*pool_event_fn)(void *ctx, const struct pool_event *ev);

/* Task payload: opaque to the pool, owned by the task, freed with free_fn. */
typedef void (*pool_payload_free_fn)(void *payload);

struct pool_config {
	const char *name;          /* model name, for logs and stats */
	uint64_t max_units;        /* POOL_UNLIMITED for no bound; >= 1 */
	uint64_t max_queue_depth;  /* POOL_UNLIMITED for no bound; 0 = reject all */
	unsigned max_running;      /* tasks at once; >= 1, POOL_NO_CAP = as many as
	                            * the executor can (see TWO KNOBS) */
	unsigned threads;          /* executor compute threads; 0 = its default */
	uint64_t timeout_ns;       /* default timeout; 0 = none */
	uint64_t retention_ns;     /* finished tasks kept this long, */
	uint64_t retention_tasks;  /* and at most this many (0 = no bound), */
	uint64_t retention_bytes;  /* holding at most this much output (0 = no bound):
	                            * whichever comes first prunes the oldest */
	unsigned skip_limit;       /* 0 = POOL_SKIP_LIMIT */
	size_t max_output_bytes;   /* per task; 0 = 64 MiB. Emits past it fail the task */
	struct pool_clock clock;   /* zero = real monotonic clock */
	int manual_tick;           /* 1: no timer thread; caller drives pool_tick() */
	pool_notify_fn notify;     /* optional */
	void *notify_ctx;
	pool_event_fn on_event;    /* optional: admissions and ends */
	void *on_event_ctx;
	struct store *store;       /* optional; NULL = records are not persisted */
	uint64_t first_id;         /* first task id (0 = 1); ids are never reused */
	/* optional: where ids come from (called under the pool lock; must be
	 * cheap, e.g. an atomic counter shared by every pool of a daemon, so
	 * ids are unique across models). NULL: this pool's own counter. */
	uint64_t (*next_id)(void *ctx);
	void *next_id_ctx;
	/* Fair units (pool-user.c): a submitter's queued + running units are
	 * capped; 0 means POOL_UNLIMITED (off). owner_uid (the daemon's user)
	 * has its own cap, off unless configured. */
	uint64_t max_user_units, max_owner_units;
	uint32_t owner_uid;
	uint64_t aging_ns;         /* priority aging period; 0 = off (see AGING) */
};

/* Create a pool. Takes ownership of exec (ops->free is called by pool_free,
 * also when pool_new fails). Returns NULL and fills err on error. */
struct pool *pool_new(const struct pool_config *cfg, struct pool_executor exec,
		      char *err, size_t errlen);
/* Shut down (cancel mode, with timeout_ns = 5 s) if not already, stop the
 * executor, free everything. Subscriptions must be closed before. */
void pool_free(struct pool *p);

struct pool_submit {
	int priority;              /* enum pool_prio */
	uint64_t cost;             /* units, >= 1 */
	uint64_t deadline_ns;      /* absolute, pool clock; 0 = created + timeout */
	uint64_t timeout_ns;       /* relative alternative to deadline_ns; 0 = unused */
	void *payload;             /* opaque, for the executor */
	pool_payload_free_fn payload_free;
	uint32_t owner_uid;        /* who submitted (for permission checks upstream) */
	const char *label;         /* short text kept in the record (e.g. prompt head); may be NULL */
	uint32_t prompt_tokens;    /* the prompt's size, for status and logs; 0 = not counted */
	/* For a durable store (all optional): */
	const char *key;           /* the submitter's idempotency key, kept in the record */
	const void *request;       /* how to resume the task (the daemon: the submit frame), */
	size_t request_len;        /*   written with the first record only */
	/* Restoring a task after a restart (0 = a new task): */
	uint64_t id;               /* keep this id (it must be unused); queued in id order */
	uint64_t created_ns;       /* pool clock; 0 = now */
	uint32_t attempts;         /* runs started before this one */
	/* 1: the task waits in the queue, never admitted, until pool_confirm()
	 * (the daemon: until its record is committed; a task nobody was told
	 * about must not run). Cancel it if it is never confirmed. */
	int hold;
};

/* Submit a task. Never waits for work. On success returns 0 and stores the
 * new id; on error returns -POOL_E_* and the payload is freed with
 * payload_free (ownership always passes to the pool). */
int pool_submit(struct pool *p, const struct pool_submit *s, uint64_t *id);

/* A task submitted with hold may now be admitted. Returns 0 (also when it
 * was not held), or -POOL_E_NOT_FOUND. */
int pool_confirm(struct pool *p, uint64_t id);

/* Hold admission (hold 1) while a restart puts the stored tasks back, so
 * they start by priority and FIFO rather than in the order they return;
 * hold 0 admits at once. Returns 0. */
int pool_hold(struct pool *p, int hold);

/* A finished task read back from a store after a restart: put it in the
 * mailbox as it was (r's times are in the pool clock), output included,
 * without writing it back. Retention counts from r->ended_ns. Returns 0 or
 * -POOL_E_INVALID (not terminal, id in use), -POOL_E_NOMEM. */
struct store_record;
int pool_restore_ended(struct pool *p, const struct store_record *r);

/* Cancel a task in any state. Queued: ends CANCELLED at once. Running: the
 * flag is raised, the task ends CANCELLED when the executor hands it back.
 * Already terminal: returns -POOL_E_STATE. Unknown: -POOL_E_NOT_FOUND. */
int pool_cancel(struct pool *p, uint64_t id);

/* Process deadlines and retention against the pool clock now. Called by the
 * timer thread; call it yourself with manual_tick. */
void pool_tick(struct pool *p);

/* Runtime limits. Lowering never kills running work; raising admits at once.
 * Lowering max_queue_depth below the queue length keeps queued tasks.
 * MAX_RUNNING takes 1.. or POOL_UNLIMITED (any value >= POOL_NO_CAP: no
 * cap) and reads back POOL_UNLIMITED when uncapped. THREADS takes
 * 0..POOL_MAX_THREADS and goes to ops->set_threads; if the executor fails,
 * the old value stands and its error is returned. */
enum pool_limit {
	POOL_LIMIT_MAX_UNITS = 0,
	POOL_LIMIT_MAX_QUEUE_DEPTH = 1,
	POOL_LIMIT_MAX_RUNNING = 2,
	POOL_LIMIT_TIMEOUT_NS = 3,
	POOL_LIMIT_RETENTION_NS = 4,
	POOL_LIMIT_THREADS = 5,
	POOL_LIMIT_RETENTION_TASKS = 6, /* finished tasks kept at most; 0 = no bound */
	POOL_LIMIT_RETENTION_BYTES = 7, /* their output bytes at most; 0 = no bound */
	POOL_LIMIT_MAX_USER_UNITS = 8,  /* per submitter uid other than owner_uid:
	                                 * queued + running units; POOL_UNLIMITED = off */
	POOL_LIMIT_MAX_OWNER_UNITS = 9, /* the same for owner_uid; POOL_UNLIMITED = off */
	POOL_LIMIT_AGING_NS = 10,       /* priority aging period; 0 = off (see AGING) */
};
int pool_set_limit(struct pool *p, enum pool_limit which, uint64_t value);
uint64_t pool_get_limit(struct pool *p, enum pool_limit which);

/* For executors: the executor's capacity changed on its own side (e.g. a
 * model finished loading after set_threads reported 0). Same effect as a
 * set_threads call that reported n: raising admits at once, lowering never
 * kills running work. Safe from any thread except inside ops callbacks.
 * Returns 0. */
int pool_set_capacity(struct pool *p, unsigned n);

/* ---- task inspection --------------------------------------------------- */

struct pool_task_info {
	uint64_t id;
	int priority;
	int state;                 /* enum pool_state */
	uint64_t cost;
	uint64_t created_ns, started_ns, ended_ns; /* 0 = not yet */
	uint64_t deadline_ns;      /* 0 = none */
	uint64_t position;         /* 1-based queue position while queued, else 0 */
	uint64_t output_bytes;
	uint64_t chunks;
	uint32_t owner_uid;
	char error[256];           /* executor's message, or why it ended */
	char label[128];
	int finish;                /* enum pool_finish; NONE until terminal */
	uint64_t tokens;           /* tokens generated (pool_task_set_outcome) */
	uint64_t prompt_tokens;    /* tokens of the prompt; 0 = not counted */
};

int pool_task_info(struct pool *p, uint64_t id, struct pool_task_info *out);

/* Queued and running tasks in queue order (running first, then queued by
 * admission order). Fills up to cap entries, returns how many exist: that
 * may exceed cap (tasks arrive between a sizing call and the real one), so
 * read only min(returned, cap) entries. */
size_t pool_list(struct pool *p, struct pool_task_info *out, size_t cap);
/* Finished tasks still retained (the mailbox), most recently ended first;
 * the same contract as pool_list. */
size_t pool_list_ended(struct pool *p, struct pool_task_info *out, size_t cap);

/* ---- results and streams ----------------------------------------------- */

/* Wait until the task is terminal or timeout_ns passes (0 = do not wait,
 * POOL_WAIT_FOREVER = no limit). Returns 0 with *state set, -POOL_E_TIMEDOUT,
 * or -POOL_E_NOT_FOUND. A waiter that gives up leaves nothing behind. */
#define POOL_WAIT_FOREVER UINT64_MAX
int pool_wait(struct pool *p, uint64_t id, uint64_t timeout_ns, int *state);

/* Copy the whole output so far into a malloc'd buffer (*out, *len; NUL
 * terminated for convenience). Readable any number of times. */
int pool_result(struct pool *p, uint64_t id, char **out, size_t *len, int *state);

/* A subscription replays a task's stream from the first chunk and then
 * follows it live. Any number may exist per task; each holds a reference,
 * so retention pruning never frees a task out from under a reader. */
struct pool_sub;
int pool_subscribe(struct pool *p, uint64_t id, struct pool_sub **out);

enum pool_sub_event {
	POOL_SUB_CHUNK = 1, /* *data and *len hold the next chunk (malloc'd, caller frees) */
	POOL_SUB_END = 2,   /* stream over; *state is terminal, *data the error (or NULL) */
};
/* Next event, waiting up to timeout_ns (0 = poll, POOL_WAIT_FOREVER). Returns
 * POOL_SUB_CHUNK or POOL_SUB_END, or -POOL_E_TIMEDOUT. After END, further
 * calls return END again. */
int pool_sub_next(struct pool_sub *s, char **data, size_t *len, int *state,
		  uint64_t timeout_ns);
/* Like pool_sub_next with timeout 0, but hands out several chunks at once,
 * concatenated into one malloc'd buffer: at least one, then whole chunks
 * while the total stays <= max_bytes and their count <= max_chunks (0 = 1).
 * *nchunks says how many (0 for END or TIMEDOUT). For an event loop
 * forwarding streams: one lock hold and one copy per batch, not per chunk. */
int pool_sub_take(struct pool_sub *s, size_t max_bytes, size_t max_chunks, char **data,
		  size_t *len, size_t *nchunks, int *state);
uint64_t pool_sub_task_id(const struct pool_sub *s);
void pool_sub_close(struct pool_sub *s);

/* ---- stats ------------------------------------------------------------- */

struct pool_stats {
	uint64_t queued, running, used_units, max_units, max_queue_depth;
	unsigned threads;       /* the threads limit as set (0 = executor's default) */
	unsigned max_running;   /* the configured cap; POOL_NO_CAP = none */
	unsigned capacity;      /* what the executor can run; POOL_NO_CAP = no bound */
	unsigned running_limit; /* min(max_running, capacity): what admission uses */
	uint64_t timeout_ns, retention_ns;
	uint64_t submitted, completed, failed, cancelled, expired, timed_out, rejected;
	uint64_t tokens, prompt_tokens; /* generated / prompt tokens of ended tasks */
	uint64_t rejected_queue_full, rejected_capacity;
	uint64_t queued_by_prio[POOL_PRIO_COUNT];
	uint64_t queue_wait_p50_ns, queue_wait_p99_ns; /* over the last 4096 admissions */
	uint64_t queue_wait_count, queue_wait_sum_ns;  /* over every admission (a summary's
	                                                * _count and _sum) */
	uint64_t mailbox;                              /* finished tasks retained */
	int shutting_down;
};
/* A consistent snapshot: every field read under one lock hold. */
void pool_stats(struct pool *p, struct pool_stats *out);

/* Check the unit and running invariants now (under the lock): used_units =
 * sum of running costs, used_units <= max_units and running <= the running
 * limit min(max_running, capacity) (a lowered limit may be exceeded only
 * by work admitted before the lowering), every list holds tasks in the matching state. Returns 0, or -1
 * with err saying which broke. For tests and debugging. */
int pool_check_invariants(struct pool *p, char *err, size_t errlen);

/* ---- shutdown ---------------------------------------------------------- */

enum pool_shutdown_mode {
	POOL_SHUTDOWN_DRAIN = 0,  /* finish queued and running work */
	POOL_SHUTDOWN_CANCEL = 1, /* queued -> CANCELLED, running cancelled */
};
/* New submits get -POOL_E_SHUTDOWN from now on. Drain waits up to timeout_ns
 * for the queue and running work to finish, then cancels what is left.
 * Cancel mode cancels at once. Then waits up to timeout_ns more for running
 * tasks to be handed back. Returns 0 when nothing runs any more, else
 * -POOL_E_TIMEDOUT. Every task ends in a visible terminal state. */
int pool_shutdown(struct pool *p, enum pool_shutdown_mode mode, uint64_t timeout_ns);

/* ---- executor side ----------------------------------------------------- */

uint64_t pool_task_id(const struct pool_task *t);
void *pool_task_payload(const struct pool_task *t);
uint64_t pool_task_cost(const struct pool_task *t);
struct pool *pool_task_pool(const struct pool_task *t);
/* Nonzero (an enum pool_cancel_reason) once the task should stop. Lock-free. */
int pool_task_cancelled(const struct pool_task *t);
/* Wait up to timeout_ns (real time) or until the task is cancelled, whichever
 * first; for executors that pace output. Returns pool_task_cancelled(). */
int pool_task_wait_cancel(struct pool_task *t, uint64_t timeout_ns);
/* Append one output chunk. Returns 0, or -POOL_E_STATE if the task already
 * ended, or -POOL_E_NOMEM/-POOL_E_INVALID past max_output_bytes. */
int pool_task_emit(struct pool_task *t, const void *data, size_t len);
/* pool_task_emit for many tasks of one pool at once (a batch executor's
 * step: one chunk per running task), under one lock hold. Each entry's rc
 * is what pool_task_emit would have returned; id is filled for the caller's
 * convenience. */
struct pool_emit {
	struct pool_task *t;
	const void *data;
	size_t len;
	int rc;                    /* out */
	uint64_t id;               /* out */
};
void pool_emit_batch(struct pool_emit *v, size_t n);
/* Keep t alive past pool_task_finish() (e.g. to check after a job returns);
 * every pool_task_ref needs one pool_task_unref. */
void pool_task_ref(struct pool_task *t);
void pool_task_unref(struct pool_task *t);
/* Hand the task back: ok != 0 for success, else errmsg says why. Releases its
 * units, picks its terminal state (a raised cancel flag wins: CANCELLED or
 * TIMEOUT), wakes every waiter and admits more work. Exactly once per task;
 * the executor must not touch t afterwards (unless it holds a reference).
 * A second call is ignored. */
void pool_task_finish(struct pool_task *t, int ok, const char *errmsg);
/* What the executor knows about how the task went: why it stopped (EOS,
 * MAX_TOKENS or STOP; anything else is ignored, the pool decides those) and
 * the token counts so far (prompt_tokens 0 keeps the submitted count). Any time before pool_task_finish(), any number
 * of times; the last values stand. */
void pool_task_set_outcome(struct pool_task *t, int finish, uint64_t tokens,
			   uint64_t prompt_tokens);

/* ---- the per-task thread executor -------------------------------------- */

/* Runs each admitted task on one of n dedicated OS threads by calling job()
 * (set_threads(n): n threads, capacity n; n = 0 means 1).
 * job returns 0 for success or nonzero with errbuf filled; it should check
 * pool_task_cancelled() between steps. If job returns without the task being
 * finished, the executor finishes it (so a failing job never leaks the
 * worker or the units). */
typedef int (*pool_job_fn)(void *job_ctx, struct pool_task *t, char *errbuf, size_t errlen);
struct pool_executor pool_thread_executor_new(pool_job_fn job, void *job_ctx,
					     void (*job_ctx_free)(void *));

/* ---- the synthetic executor -------------------------------------------- */

/* Payload for synthetic tasks. The prompt's whitespace-separated words come
 * back as output chunks (word plus its following separator), one per step,
 * at tokens_per_sec (0 = as fast as possible), up to max_tokens (0 = all).
 * A prompt starting with "!fail" fails after its first chunk. The executor
 * is batch-style: `threads` driver threads (0 = 1) each step their own set
 * of running tasks round-robin, one chunk per due task per round; its
 * capacity is POOL_NO_CAP, so only max_running (and units) bound it. */
struct pool_synth_payload {
	char *prompt;
	uint32_t max_tokens;
};
struct pool_synth_payload *pool_synth_payload_new(const char *prompt, uint32_t max_tokens);
void pool_synth_payload_free(void *payload);
struct pool_executor pool_synthetic_executor_new(double tokens_per_sec);

#endif
