/*
 * conn.h — client connections (client.c): accepting, reading frames,
 * queuing replies and stream events, flushing, closing.
 *
 * Below dispatch; it knows no request but hello-before-anything: each
 * decoded request goes to the on_request hook, and closing a connection
 * tells on_close (which drops what the layer above hung on it). Who a
 * peer is (its role) is asked of the peer_role hook. So client.c includes
 * nothing above itself.
 */
#ifndef PLOTD_CONN_H
#define PLOTD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "listen.h"
#include "plot/loop.h"
#include "plot/proto.h"

enum { ROLE_NONE = 0, ROLE_ALLOWED = 1, ROLE_OWNER = 2 };

/* Default bounds on a connection (documented in plotd.8). */
#define CONN_OUT_CAP (4u << 20)     /* default pending output before a drop */
#define CONN_OUT_CAP_MIN (16u << 10)
#define CONN_CLOSE_GRACE_MS 2000    /* time to flush a final error */
#define CONN_SLICE_US 300           /* requests handled per loop iteration, all clients */

struct watch; /* the layer above's, listed per connection */
struct conns;

struct conn {
	struct loop_watch lw;
	struct conns *s;
	uint64_t num;               /* connection number, for logs */
	struct peer peer;
	int role;
	int hello;                  /* hello done */
	int closing;                /* flush, then close; read nothing more */
	int shut_wr;                /* closing: our side is half-closed */
	int dead;                   /* closed; freed before the next sleep */
	int want_out;               /* on the pending-write list */
	int blocked;                /* a write hit EAGAIN: waiting for EPOLLOUT */
	uint64_t closing_since_ms;
	uint32_t events;            /* epoll interest now */
	struct proto_reader rd;
	struct proto_buf out;
	struct watch *watches;      /* owned by the layer above (on_close frees) */
	uint64_t *runs;             /* every task submitted here, not detached */
	size_t n_runs, cap_runs;
	size_t in_acct, out_acct;   /* what this connection adds to conns' in/out_total */
	uint64_t partial_since_ms;  /* a frame started arriving; 0 = none pending */
	struct conn *next, *prev;   /* all connections */
	struct conn *wnext;         /* pending-write list */
	int backlog;                /* on the backlog list: frames wait in rd */
	struct conn *bnext;         /* backlog list */
};

/* The hooks the layer above installs. */
struct conn_hooks {
	int (*peer_role)(void *role_ctx, const struct peer *pr);
	void *role_ctx;
	void (*on_request)(void *ctx, struct conn *c, struct proto_msg *req);
	void (*on_close)(void *ctx, struct conn *c, int cancel_runs);
	void *ctx;                  /* of on_request and on_close */
};

/* Every connection of the daemon. Loop thread only. */
struct conns {
	struct loop *loop;
	struct lsn *lsn;
	struct loop_watch *lsn_w;   /* the listening socket's watch (accept pauses) */
	int accept_paused;          /* at the fd limit: the listen fd is not watched */
	int accept_warned;          /* logged once until an accept succeeds again */
	uint64_t accept_paused_ms;
	struct conn_hooks hooks;
	uid_t owner;                /* for the refusal message */
	uint64_t next_num;
	size_t n;
	struct conn *list;
	struct conn *pending_write;
	struct conn *dead;
	struct proto_limits in_lim;  /* requests */
	struct proto_limits out_lim; /* replies */
	size_t out_cap;             /* --max-client-output */
	size_t in_total, out_total; /* buffered input / pending output of all connections */
	size_t in_total_cap;        /* daemon.max_input_mb */
	size_t out_total_cap;       /* daemon.max_output_mb */
	uint64_t frame_timeout_ms;  /* daemon.frame_timeout_secs; 0 = none */
	/* Requests are handled for at most slice_us per loop iteration across
	 * all connections; the rest wait on the backlog list, in order. */
	uint64_t slice_us;          /* 0 = no bound */
	uint64_t slice_end_us;      /* 0 = the slice starts with the next request */
	struct conn *backlog, **backlog_tail;
};

uint64_t conn_now_ms(void);
void conn_accept_all(struct conns *s);
struct conn *conn_by_num(struct conns *s, uint64_t num); /* live, not closing */
int conn_send(struct conn *c, const struct proto_msg *m);
int conn_send_stream(struct conn *c, const struct proto_msg *m);
void conn_error(struct conn *c, const struct proto_msg *req, int code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conn_close(struct conn *c, const char *why, int cancel_runs);
void conn_close_after_flush(struct conn *c);
void conn_flush_pending(struct conns *s);
void conn_reap(struct conns *s);
/* Before the loop sleeps: a new slice, spent on the backlog first. Returns
 * 1 when work is left that needs no event (the loop must not block). */
int conn_run_backlog(struct conns *s);
int conn_backlog_runnable(const struct conns *s);
void conn_close_all(struct conns *s);
int conn_output_pending(const struct conns *s);
/* Set the daemon-wide bounds (config load and reload). */
void conn_set_caps(struct conns *s, uint64_t frame_timeout_secs, uint64_t max_input_mb,
		   uint64_t max_output_mb);
void conn_remember_run(struct conn *c, uint64_t task);
int conn_is_run(struct conn *c, uint64_t task);

#endif
