/*
 * submit.h — the daemon's one submit path (submit.c), shared by the socket
 * front (dispatch.c) and the HTTP front (http.c): a struct exec_request ->
 * exec_prepare() off the loop -> the post queue -> pool_submit() on the
 * loop -> one callback with the task id or the error (code and message).
 * With a durable store the callback waits for the task's record to be
 * committed (and the task waits to start until then); a failed commit is
 * PROTO_E_STORE, the task cancelled unstarted.
 */
#ifndef PLOTD_SUBMIT_H
#define PLOTD_SUBMIT_H

#include <stdint.h>

#include "dispatch.h"

/* done()'s code when the request was dropped unsubmitted: its client left
 * (wanted() said 0), or plotd exited with it still preparing. */
#define SUBMIT_DROPPED (-1)

/* The outcome, handed to done() on the loop thread exactly once. */
struct submit_out {
	int code;                   /* 0 submitted, PROTO_E_*, or SUBMIT_DROPPED */
	char msg[256];              /* the error, naming the model and the limit */
	uint64_t task;              /* code 0 */
	uint32_t prompt_tokens;     /* code 0; 0 without a tokenizer */
	uint32_t max_tokens;        /* code 0: the limit the task runs to; 0 = none */
	uint64_t retry_after_secs;  /* PROTO_E_QUEUE_FULL: a hint for HTTP's Retry-After */
};

/* A task read back from the store at a restart: its own id, times and
 * attempts (submit_start then neither waits for a commit nor starts it
 * before submit_restore_end). */
struct submit_restore {
	uint64_t id, created_ns, deadline_ns; /* pool clock */
	uint32_t attempts;
};

struct submit_cbs {
	/* Loop thread, just before pool_submit: whether the client is still
	 * there. When not, a detached request is submitted anyway, any other
	 * dropped. */
	int (*wanted)(void *ctx);
	/* Exactly once for every submit_start, on the loop thread; it owns ctx
	 * (frees it). */
	void (*done)(void *ctx, const struct submit_out *o);
	void *ctx;
	int detach;
	/* For the durable store (all optional, borrowed for submit_start): */
	const char *key;            /* idempotency key: a repeat gets the first id */
	const void *request;        /* how to resume it: a submit frame body */
	size_t request_len;
	const struct submit_restore *restore;
};

/* Start a submit to model m. done() runs on the loop thread, maybe before
 * this returns (an executor that prepares inline). r is borrowed for this
 * call only. */
void submit_start(struct dispatch *d, struct model *m, const struct exec_request *r,
		  const struct submit_cbs *cb);

/* Startup: hold admission in every pool until the tasks submitted with a
 * restore between begin and end are all back (the loop may have to run
 * first, for executors that prepare on their own threads), so they start
 * by priority and FIFO whatever order they come back in. */
void submit_restore_begin(struct dispatch *d);
void submit_restore_end(struct dispatch *d);

#endif
