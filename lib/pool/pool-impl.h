/*
 * pool-impl.h — private to lib/pool: the pool and task structures shared by
 * pool.c (queue, admission, units, deadlines, limits, shutdown) and
 * pool-sub.c (results, subscriptions, inspection).
 *
 * Ownership: every field of struct pool and every non-atomic field of a task
 * is guarded by pool->mu. A task is on exactly one of: a priority queue list
 * (QUEUED), the running list (RUNNING), the mailbox list (terminal, retained),
 * or none (pruned, kept alive only by references).
 *
 * References: the pool holds one from submit until retention prunes the task
 * (or pool_free); each subscription, waiter and in-flight cancel nudge holds
 * one. The last unref frees the task; freeing touches nothing but the task.
 */
#ifndef PLOT_POOL_IMPL_H
#define PLOT_POOL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "plot/pool.h"

#define POOL_WAIT_RING 4096 /* queue-wait samples kept for p50/p99 */

struct tlist {
	struct pool_task *head, *tail;
	uint64_t n;
};

/* Field order: the first 64 bytes are what pruning touches (list, hash and
 * end time), so pruning a cold task takes few cache misses under the lock. */
struct pool_task {
	struct pool_task *prev, *next; /* queue level, running or mailbox list */
	struct pool_task *hnext;       /* id hash chain */
	struct pool_task **hpprev;     /* the pointer that points at us: O(1) removal */
	uint64_t ended_ns;
	struct pool_task *prune_next;
	uint64_t id;
	atomic_uint refs;
	int state;
	/* -- second line onwards */
	struct pool *pool;
	int prio;
	uint32_t owner_uid;
	uint64_t cost;
	uint64_t created_ns, started_ns, deadline_ns;
	uint64_t level_ns;   /* when it joined its queue level (aging) */
	atomic_int cancel;   /* enum pool_cancel_reason; read lock-free */
	atomic_int finished; /* ended (handed back, or ended by the pool); set under mu */
	int overflow;        /* an emit went past max_output_bytes */
	unsigned skips;      /* admissions past it while it did not fit */
	uint64_t walk_mark;  /* admission walk bookkeeping */
	uint64_t admit_seq;  /* pool->admits when admitted, for invariant checks */
	struct pool_task *walk_next, *start_next;
	size_t heap_idx;     /* deadline heap slot, SIZE_MAX if none */
	void *payload;
	pool_payload_free_fn payload_free;
	char *error;         /* why it ended (not DONE), malloc'd, or NULL */
	char *label;         /* submitter's short text, malloc'd, or NULL */
	int finish;          /* enum pool_finish as the executor said it (under mu) */
	uint64_t tokens, prompt_tokens; /* pool_task_set_outcome (under mu) */
	char *key;           /* idempotency key for the store, malloc'd, or NULL */
	char *request;       /* (request_len) how to resume it: until its first record */
	size_t request_len;
	uint32_t attempts;   /* runs started before this one (restored tasks) */
	int unconfirmed;     /* submitted with hold: not admitted before pool_confirm */
	int store_gap;       /* an output piece was not queued for the store: the end
	                      * record carries the whole output */
	char *out;           /* (out_len) output bytes, NUL after the last */
	size_t out_len, out_cap;
	size_t *chunk_end;   /* (nchunks) end offset of each chunk in out */
	size_t nchunks, chunk_cap;
	pthread_cond_t cv;   /* output, state or cancel changed */
};

struct store_op; /* pending store write, pool-store.c */

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t state_cv;   /* running/queued counts fell: shutdown */
	pthread_cond_t timer_cv;   /* timer thread: earlier deadline, stop */
	pthread_mutex_t limits_mu; /* serialises set_threads and pool_set_capacity */
	char name[64];
	struct pool_clock clock;
	struct pool_executor exec;
	pool_notify_fn notify;
	void *notify_ctx;
	pool_event_fn on_event;
	void *on_event_ctx;
	struct store *store;

	uint64_t max_units, max_queue_depth, timeout_ns, retention_ns;
	uint64_t retention_tasks, retention_bytes; /* 0 = no bound */
	uint64_t mailbox_bytes;    /* output bytes of the tasks in the mailbox */
	unsigned threads;          /* as set; 0 = the executor's default */
	unsigned max_running;      /* configured cap; POOL_NO_CAP = none */
	unsigned capacity;         /* the executor's; POOL_NO_CAP = no bound */
	unsigned skip_limit;
	size_t max_output;

	struct tlist queue[POOL_PRIO_COUNT], running, mailbox;
	uint64_t used_units;

	struct pool_task **buckets; /* id -> task, chained */
	size_t nbuckets, ntasks;
	struct pool_task **heap;    /* min-heap on deadline_ns */
	size_t heap_n, heap_cap;

	uint64_t next_id, admits;
	uint64_t units_lowered_at, running_lowered_at; /* admits at lowering */
	uint64_t submitted, completed, failed, cancelled, expired, timed_out;
	uint64_t tokens, prompt_tokens; /* summed over ended tasks (their outcome) */
	uint64_t rej_queue_full, rej_capacity, rej_shutdown;
	uint64_t waits[POOL_WAIT_RING];
	size_t wait_n, wait_pos;
	uint64_t wait_count, wait_sum_ns; /* every admission since pool_new */

	int shutting_down, no_admit;
	int held;                  /* pool_hold: admission waits (a restart restoring) */
	int manual_tick, timer_started, timer_stop;
	uint64_t timer_target; /* pool-clock time the timer thread sleeps to */
	pthread_t timer;

	struct store_op *sq_head, *sq_tail; /* pending store writes, in order */
	pthread_mutex_t sq_mu;     /* held while draining: one drainer, in order */
	uint64_t (*next_id_fn)(void *ctx); /* cfg->next_id: ids shared with other pools */
	void *next_id_ctx;

	/* pool-user.c: queued + running units per submitter uid */
	struct pool_user *users;
	size_t n_users, cap_users;
	uint64_t max_user_units, max_owner_units;
	uint32_t owner_uid;
	uint64_t aging_ns;         /* 0 = no priority aging */
};

struct pool_user {
	uint32_t uid;
	uint64_t units;            /* costs of its queued and running tasks */
};

/* pool-user.c, under mu */
int pool_user_check(struct pool *p, uint32_t uid, uint64_t cost); /* 0 or -POOL_E_USER_CAP/NOMEM */
void pool_user_add(struct pool *p, uint32_t uid, uint64_t cost);  /* after a check */
void pool_user_sub(struct pool *p, uint32_t uid, uint64_t cost);
void pool_user_free(struct pool *p);

/* pool-aging.c, under mu */
void pool_age(struct pool *p, uint64_t now);        /* raise what waited long enough */
uint64_t pool_age_next(const struct pool *p);       /* when next to; UINT64_MAX = never */

/* pool.c, used by pool-sub.c and pool-stats.c */
void pool_requeue(struct pool *p, struct pool_task *t, int prio, uint64_t now); /* under mu */
unsigned pool_running_limit(const struct pool *p); /* under mu: min(max_running, capacity) */
uint64_t pool_now(struct pool *p);
struct pool_task *pool_lookup(struct pool *p, uint64_t id);
void pool_abs_timeout(uint64_t timeout_ns, struct timespec *ts);
int pool_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *ts);

/* pool-store.c: the ordered store-write queue. put/del under mu; drain and
 * free without it. */
void pool_store_put(struct pool *p, struct pool_task *t, int with_output);
/* len bytes emitted at byte off of t's output; -1: not queued (no memory). */
int pool_store_append(struct pool *p, struct pool_task *t, uint64_t off, const void *data,
		      size_t len);
void pool_store_del(struct pool *p, uint64_t id);
void pool_store_drain(struct pool *p);
void pool_store_free(struct pool *p);

#endif
