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

#endif
