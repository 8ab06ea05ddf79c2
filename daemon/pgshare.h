/*
 * pgshare.h — plotd's side of the shared queue on PostgreSQL (issue #15):
 * one claimer thread per daemon that owns a pgq connection, and the loop's
 * half that turns its answers into submits, starts and replies.
 * The design is in pgshare.c.
 */
#ifndef PLOTD_PGSHARE_H
#define PLOTD_PGSHARE_H

#include <stddef.h>
#include <stdint.h>

#include "plot/cfg.h"
#include "plot/pool.h"
#include "plot/proto.h"
#include "plot/store.h"

struct pgshare;
struct dispatch;
struct model;
struct conn;
struct submit_cbs;
struct pgq_model_stat;
struct pgq_daemon_stat;

/* Startup, before the loop runs: connect the claimer (a second connection
 * beside the store's), LISTEN. backend is the postgres store (its lease
 * table). Returns 0 or -1 with err naming the database without password. */
int pgshare_open(struct pgshare **out, const struct cfg *c, struct store *backend, char *err,
		 size_t errlen);
/* Start the thread; from now on claims may start tasks through d. */
int pgshare_start(struct pgshare *ps, struct dispatch *d, char *err, size_t errlen);
/* Stop the thread (what it held expires and is requeued by the others). */
void pgshare_free(struct pgshare *ps);

/* Loop: a prepared task into the shared queue, not into the local pool (the
 * claim brings it there, or elsewhere). cb->done runs on the loop with the
 * database's id, or QUEUE_FULL / STORE. Takes sub->payload (freed). */
void pgshare_submit(struct pgshare *ps, struct model *m, struct pool_submit *sub,
		    const char *key, const void *request, size_t request_len,
		    const struct submit_cbs *cb, uint32_t prompt_tokens, uint32_t max_tokens);
/* Loop: units were freed here (a local task ended): claim again. */
void pgshare_kick(struct pgshare *ps);
/* Whether this daemon holds a lease on task id (any thread). */
int pgshare_holds(struct pgshare *ps, uint64_t id);
/* Loop: status, result, subscribe (a tail) or the cancel of one task, when
 * this daemon does not hold the task: the database answers. Returns 1 when it took the request (a reply follows),
 * 0 when the local pools should answer. */
int pgshare_request(struct pgshare *ps, struct conn *c, const struct proto_msg *req);
/* Loop: a cancel --all whose scope (its model, or every model) holds
 * postgres models: done[0..n) (taken; malloc'd or NULL) are what the local
 * pools cancelled; the database's tasks of those models are cancelled too
 * (the requester's, or everyone's for the daemon's owner) and the reply
 * lists both. Returns 1 when it took the request, 0 (done still the
 * caller's) when no postgres model is in scope. */
int pgshare_cancel_all(struct pgshare *ps, struct conn *c, const struct proto_msg *req,
		       uint64_t *done, size_t n);
/* Loop: a client that ran tasks in the foreground (plot run) went away:
 * cancel them, here or in the database. */
void pgshare_conn_closed(struct pgshare *ps, struct conn *c);
/* Whether model m is on the shared queue (its pool writes to postgres). */
int pgshare_serves(const struct pgshare *ps, const struct model *m);
/* Loop: whether a local pool has task (claimed here, or ended here). */
int pgshare_local(struct pgshare *ps, uint64_t task);

/* ---- reads for a front other than the socket (HTTP: pgshare-read.c) ----
 * What the database says of a task, handed to the front's callback on the
 * loop thread, in order. Every database call runs on the claimer thread. */
enum {
	PGSHARE_READ_HEAD,      /* a follow's first look at the task: rec */
	PGSHARE_READ_CHUNK,     /* output appended since the last: data, len */
	PGSHARE_READ_END,       /* the task ended (or, without follow, now): rec */
	PGSHARE_READ_ERR,       /* code (PROTO_E_NOT_FOUND, PROTO_E_STORE), msg */
	PGSHARE_READ_CANCELLED, /* code 0, or NOT_FOUND, STATE (rec: how it
				 * ended), STORE (msg) */
	PGSHARE_READ_STATS,     /* the shared queue: models, daemons */
};
struct pgshare_read {
	int kind;
	uint64_t task;
	int code;
	const char *msg;
	const struct store_record *rec; /* with a whole read's END: the output */
	const char *data;
	size_t len;
	uint64_t chunks;        /* output chunks read so far (rows appended) */
	const struct pgq_model_stat *models;
	size_t n_models;
	const struct pgq_daemon_stat *daemons;
	size_t n_daemons;
};
typedef void (*pgshare_read_fn)(void *ctx, const struct pgshare_read *ev);
struct pgshare_reader; /* a handle on a read in flight */

/* Loop: follow task in the database: HEAD, the CHUNKs as they are
 * appended, then END when it ends (without follow: END at once, with the
 * state now). whole: no CHUNKs, END carries the whole output. A task
 * unknown or a database that fails at the start: ERR. Returns the handle
 * (stop it when the consumer leaves), or NULL when out of memory. */
struct pgshare_reader *pgshare_follow(struct pgshare *ps, uint64_t task, int follow, int whole,
				      pgshare_read_fn fn, void *ctx);
/* Loop: cancel task in the database, as the daemon's owner (HTTP's
 * requests are the owner's): one CANCELLED. */
struct pgshare_reader *pgshare_cancel_task(struct pgshare *ps, uint64_t task,
					   pgshare_read_fn fn, void *ctx);
/* Loop: the shared queue's figures: one STATS, or ERR. */
struct pgshare_reader *pgshare_stats_read(struct pgshare *ps, pgshare_read_fn fn, void *ctx);
/* Loop: the consumer leaves: fn is never called again. Takes r (NULL ok). */
void pgshare_reader_stop(struct pgshare_reader *r);
/* Loop: the consumer lets go of r but still wants its answers (fn's ctx
 * outlives them). Takes r (NULL ok). */
void pgshare_reader_drop(struct pgshare_reader *r);

#endif
