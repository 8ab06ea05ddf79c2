/*
 * pgshare-impl.h — what pgshare.c (the claimer thread: submits, claims,
 * leases, reads for socket clients) and pgshare-read.c (the reply sinks:
 * tails of tasks held elsewhere, for socket clients and for the HTTP
 * front) share. Private to them.
 */
#ifndef PLOTD_PGSHARE_IMPL_H
#define PLOTD_PGSHARE_IMPL_H

#include <pthread.h>

#include "dispatch.h"
#include "pgshare.h"
#include "plot/pgq.h"
#include "submit.h"

#define PGSHARE_MAX_OFFER 32  /* models per offer */
#define PGSHARE_CLAIM_CAP 64  /* tasks per model per claim */
#define PGSHARE_WAIT_POLL_MS 100
#define PGSHARE_TAIL_POLL_MS 50   /* a tail of a task running elsewhere */
#define PGSHARE_TAIL_FIRST_MS 5   /* its first wait, doubled up to the above */
#define PGSHARE_BACKOFF_MAX_MS 5000

enum { OP_SUBMIT, OP_CLAIM, OP_GET, OP_TAIL, OP_CANCEL, OP_CANCEL_ALL, OP_STATS, OP_LIST };
#define PGSHARE_STATS_MAX 64 /* models and daemons in one stats reply */
/* What a tail posts to the loop, in order. */
enum { TAIL_HEAD, TAIL_CHUNK, TAIL_END, TAIL_ERR };

/* The reply sink of a read (pgshare-read.c), shared by its op on the
 * thread and its messages in the post queue: a socket client (fn NULL: the
 * op's conn_num and req_id) or a front's callback (fn, ctx: HTTP). The
 * loop sets gone when the consumer left (a socket client gone, or one that
 * may not see the task; pgshare_reader_stop): no message reaches it then,
 * and a tail stops at its next round. */
struct pgshare_reader {
	int refs, gone; /* atomics */
	pgshare_read_fn fn;
	void *ctx;
};

struct offer {
	char model[64];
	uint64_t free_units, max_units;
	unsigned skip_limit;
	size_t slots;
};

struct op {
	struct op *next;
	int kind;
	int rc;                     /* answer: 0 or a negative PGQ_E_* */
	char err[256];
	/* OP_SUBMIT */
	struct pgq_submit s;
	char *model, *label, *key;
	void *request;
	struct submit_cbs cb;
	uint32_t prompt_tokens, max_tokens;
	uint64_t id;
	/* OP_CLAIM */
	struct offer offers[PGSHARE_MAX_OFFER];
	size_t noffers;
	uint64_t units, running;
	struct pgq_claimed *claimed;
	size_t nclaimed;
	/* OP_GET, OP_CANCEL */
	uint64_t conn_num, req_id, task;
	int type, wait;
	uint32_t uid;               /* OP_CANCEL: the requester, and */
	int owner;                  /* whether it is the daemon's owner */
	uint64_t next_ms;
	struct store_record rec;
	/* OP_LIST (model: the filter, or NULL) */
	struct pgq_list_args la;
	struct store_record *recs;
	uint64_t *pos;
	size_t nrecs;
	/* OP_CANCEL_ALL: the postgres models in scope; ids: what the local
	 * pools cancelled, then what the database did */
	char **models;
	size_t nmodels;
	uint64_t *ids;
	size_t nids;
	/* OP_STATS (model: the filter, or NULL) */
	struct pgq_model_stat *mstat;
	struct pgq_daemon_stat *dstat;
	size_t nm, nd;
	/* OP_TAIL, and its messages (msg: TAIL_*); a sink for OP_CANCEL, OP_STATS */
	struct pgshare_reader *sh;
	int follow, whole, started, msg, state;
	int attempts, attempts_known; /* the task's attempts at the last round */
	unsigned rounds;
	uint64_t seq, nchunks;
	char *data;
	size_t len, cap;
};

struct pgshare {
	struct pgq *q;
	struct store *backend;      /* the store's lease table */
	struct dispatch *d;
	struct post *post;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	struct op *head, *tail;
	int stop;
	int wake_fd;
	uint64_t lease_ms, beat_ms, next_beat, backoff_ms;
	int max_restarts;
	uint64_t units, running;    /* the last offer's totals, for the heartbeat */
	uint64_t dropped, replayed; /* the store's counts, logged so far */
	struct op *waiters;         /* OP_GET with wait, thread only */
	int claiming, again;        /* loop only */
	char name[64];
};

/* pgshare.c */
uint64_t pgshare_mono_ms(void);
/* Any thread: queue o for the claimer. */
void pgshare_push(struct pgshare *ps, struct op *o);
void pgshare_op_free(struct op *o);
void pgshare_record_to_proto(const struct store_record *r, struct proto_task_info *out);

/* pgshare-read.c */
void pgshare_reader_unref(struct pgshare_reader *sh);
/* Loop: a socket client's subscribe of a task held elsewhere. 1: taken. */
int pgshare_tail_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req);
/* Claimer thread: one round of tail o; it waits in ps->waiters while it
 * goes on (freed when it ends). */
void pgshare_thread_tail(struct pgshare *ps, struct op *o);
/* Loop: the answer of a cancel or stats op with a callback sink. */
void pgshare_read_answer(struct pgshare *ps, struct op *o, int live);

#endif
