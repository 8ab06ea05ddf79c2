/*
 * dispatch.h — what plotd does with each request, and how task events reach
 * the clients that wait on them (dispatch.c).
 *
 * Dispatch sits above the connections, the watches and the models: it is
 * the only daemon file that turns requests into pool and executor calls
 * and the only one that sends replies for them. What it needs of the daemon
 * above it (drain, whether submits are open, the config text) comes through
 * struct dispatch_hooks, so nothing here includes plotd.c's state.
 */
#ifndef PLOTD_DISPATCH_H
#define PLOTD_DISPATCH_H

#include <pthread.h>
#include <stdint.h>

#include "conn.h"
#include "durable.h"
#include "models.h"
#include "plot/loop.h"
#include "watch.h"

struct dispatch_hooks {
	int (*can_submit)(void *ctx);
	/* drain (cancel 0) or shut down (1) within timeout_secs (0 = default) */
	void (*stop)(void *ctx, int cancel, double timeout_secs, const char *why);
	void *ctx;
};

struct dispatch {
	struct conns *conns;
	struct models *models;
	struct post *post;
	struct watch_table watches;
	struct dispatch_hooks hooks;
	const char *config_yaml;    /* the live config's dump (plotd.c updates it) */
	const char *config_source;
	const struct cfg_lot *lot_defaults; /* the live config's parking_lot (models load) */
	uint64_t start_ms;
	pthread_t loop_thread;
	void *preparing;            /* loop thread: the submit inside exec_prepare */
	struct durable *durable;    /* the store: submits are acknowledged after its
	                             * commit; idempotency keys */
	size_t restoring;           /* stored tasks still being prepared */
	int restore_open;           /* dispatch_restore calls may still come (submit.c) */
};

int dispatch_init(struct dispatch *d, struct conns *cs, struct models *ms,
		  struct post *post, const struct dispatch_hooks *h);
void dispatch_free(struct dispatch *d);
/* conn hooks */
void dispatch_request(void *ctx, struct conn *c, struct proto_msg *req);
void dispatch_conn_closed(void *ctx, struct conn *c, int cancel_runs);
/* post_fn for task notes: feed the watchers of task `key`. */
void dispatch_task_event(void *ctx, uint64_t key, void *arg, int live);
/* Feed every open watch once (after the pools stopped: their last notes
 * may still be in flight). */
void dispatch_kick_all(struct dispatch *d);
size_t dispatch_watch_count(const struct dispatch *d);
/* Startup: resume stored task r (queued, or running at the stop and
 * requeued) on m through the submit path (submit.c), keeping its id, times,
 * priority and attempts, between submit_restore_begin and _end. A task that
 * cannot be resumed ends FAILED, with the reason, in the store and the
 * mailbox. */
void dispatch_restore(struct dispatch *d, struct model *m, const struct store_record *r);
/* r as a socket submit to model, encoded into frame (what the store keeps
 * to resume a task; the HTTP front's requests). 0, or -1 with err. */
int dispatch_request_frame(const char *model, const struct exec_request *r,
			   struct proto_buf *frame, char *err, size_t errlen);
/* One model's figures, as the stats reply carries them (HTTP's /metrics
 * and /v1/queues too). */
void dispatch_model_stats(const struct model *m, struct proto_model_stats *o);
/* plotd's resident memory in bytes, for stats and /metrics; 0 = unknown. */
uint64_t dispatch_rss_bytes(void);

#endif
