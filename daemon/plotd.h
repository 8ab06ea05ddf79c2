/*
 * plotd.h — private interfaces between the daemon's files.
 *
 *   plotd.c     main: options, config, startup, signals, drain, reload
 *   loop.c      epoll loop and descriptor helpers (loop_*)
 *   listen.c    socket path, directory rules, stale socket, accept (lsn_*)
 *   client.c    one connection: buffers, limits, flushing (conn_*)
 *   dispatch.c  one switch over the request type (dispatch_*)
 *   watch.c     task id -> subscriptions and result waiters (watch_*)
 *   models.c    one pool per configured model (models_*)
 *   llm.c       llm models: executor start, submit via the prep thread (llm_*)
 *   log.c       one line per event (log_*)
 *
 * Everything here runs on the loop thread unless it says otherwise.
 */
#ifndef PLOTD_H
#define PLOTD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plot/cfg.h"
#include "plot/llm-exec.h"
#include "plot/pool.h"
#include "plot/proto.h"

/* ---- log.c -------------------------------------------------------------- */

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
int log_level_parse(const char *s);
const char *log_level_name(int level);
void log_set_level(int level);
int log_get_level(void);
int log_enabled(int level);
int log_open(const char *path, char *err, size_t errlen);
void log_close(void);
int log_is_file(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- loop.c ------------------------------------------------------------- */

struct loop;
struct loop_watch;
typedef void (*loop_fn)(struct loop *l, struct loop_watch *w, uint32_t events);
typedef void (*loop_hook_fn)(struct loop *l, void *ctx);
struct loop_watch {
	int fd;
	loop_fn fn;
};

struct loop *loop_new(void);
void loop_free(struct loop *l);
void loop_set_before_sleep(struct loop *l, loop_hook_fn fn, void *ctx);
int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
int loop_eventfd_new(void);
void loop_eventfd_signal(int fd); /* any thread */
void loop_eventfd_drain(int fd);
int loop_timerfd_new(void);
int loop_timerfd_arm(int fd, uint64_t ms, uint64_t interval_ms);

/* ---- listen.c ----------------------------------------------------------- */

#define PEER_MAX_GROUPS 64
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[PEER_MAX_GROUPS]; /* supplementary (SO_PEERGROUPS) */
	unsigned ngroups;
};

struct lsn {
	int fd, lock_fd;
	char path[4096];
};
int lsn_open(struct lsn *ls, const char *path, int shared, char *err, size_t errlen);
void lsn_close(struct lsn *ls);
int lsn_accept(struct lsn *ls, struct peer *pr);

/* ---- models.c ----------------------------------------------------------- */

/* Task ids are global: model k's pool numbers its tasks from
 * k * MODEL_ID_SPAN + 1, so an id names its model. */
#define MODEL_ID_SPAN 1000000000000ull

struct model {
	char *name;
	unsigned index;
	struct pool *pool;          /* NULL when the executor failed to start */
	struct llm_exec *llm;       /* executor llm: its handle (owned by pool) */
	struct cfg_lot lot;         /* live limits (config + runtime sets) */
	int executor;               /* enum cfg_executor */
	double tokens_per_sec;
	struct cfg_params params;   /* as started (a reload compares them) */
	char *path;                 /* model file as configured; NULL for synthetic */
	char error[256];            /* why pool is NULL */
};

struct models {
	struct model *v;
	size_t n;
	size_t default_index;
};
struct plotd;
int models_init(struct models *ms, const struct cfg *c, struct plotd *d,
		char *err, size_t errlen);
void models_free(struct models *ms);
struct model *models_find(struct models *ms, const char *name); /* NULL = default */
struct model *models_for_task(struct models *ms, uint64_t task);
size_t models_list(const struct model *m, struct pool_task_info **out);
int models_set_lot(struct model *m, const struct cfg_lot *want, const char *why);
void models_notes_init(int eventfd);
size_t models_take_notes(uint64_t **out, size_t *cap);
void models_notes_free(void);
void models_renote(uint64_t task);

/* ---- llm.c --------------------------------------------------------------- */

struct conn;
int llm_model_start(struct model *m, const struct cfg_model *cm, const struct pool_config *pc,
		    char *err, size_t errlen);
const char *llm_model_state(struct model *m); /* "loading", "ready", "failed" */
void llm_model_info(struct model *m, struct proto_model_info *o, struct llm_exec_status *st);
void llm_model_stats(const struct model *m, struct proto_model_stats *o);
void llm_submit(struct conn *c, const struct proto_msg *req, struct model *m);
void llm_prepared_init(int eventfd);
void llm_on_prepared(struct plotd *d);
void llm_prepared_free(void);

/* ---- watch.c: task id -> watchers ---------------------------------------- */

struct conn;
enum { WATCH_SUB = 1, WATCH_RESULT = 2 };
struct watch {
	int kind;
	struct conn *c;
	struct model *m;
	uint64_t task, req_id;
	struct pool_sub *sub;       /* WATCH_SUB */
	int follow;                 /* WATCH_SUB: live until end */
	int run;                    /* WATCH_SUB: cancel the task if c disconnects */
	struct watch *conn_next;    /* c's list */
	struct watch *hash_next;    /* bucket chain */
};
int watch_table_init(size_t buckets);
void watch_table_free(void);
void watch_link(struct watch *w);
void watch_unlink(struct watch *w);
struct watch *watch_first(uint64_t task);
size_t watch_count(void);

/* ---- client.c ----------------------------------------------------------- */

enum { ROLE_NONE = 0, ROLE_ALLOWED = 1, ROLE_OWNER = 2 };

/* Default bounds on a connection (documented in plotd.8). */
#define CONN_OUT_CAP (4u << 20)     /* default pending output before a drop */
#define CONN_OUT_CAP_MIN (16u << 10)
#define CONN_RUN_RING 16            /* recent non-detached submits remembered */
#define CONN_CLOSE_GRACE_MS 2000    /* time to flush a final error */

struct conn {
	struct loop_watch lw;
	struct plotd *d;
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
	struct watch *watches;
	uint64_t runs[CONN_RUN_RING]; /* submitted here, not detached */
	unsigned run_pos;
	struct conn *next, *prev;   /* all connections */
	struct conn *wnext;         /* pending-write list */
};

void conn_accept_all(struct plotd *d);
int conn_send(struct conn *c, const struct proto_msg *m);
int conn_send_stream(struct conn *c, const struct proto_msg *m);
void conn_error(struct conn *c, const struct proto_msg *req, int code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conn_close(struct conn *c, const char *why, int cancel_runs);
void conn_close_after_flush(struct conn *c);
void conn_flush_pending(struct plotd *d);
void conn_reap(struct plotd *d);
void conn_close_all(struct plotd *d);
void conn_remember_run(struct conn *c, uint64_t task);
int conn_is_run(struct conn *c, uint64_t task);

/* ---- dispatch.c --------------------------------------------------------- */

void dispatch(struct conn *c, struct proto_msg *req);
void dispatch_task_event(struct plotd *d, uint64_t task);
void dispatch_watch_free(struct watch *w);

/* ---- plotd.c: the daemon ------------------------------------------------ */

enum { PLOTD_RUNNING = 0, PLOTD_DRAINING = 1, PLOTD_FLUSHING = 2 };

struct plotd {
	struct loop *loop;
	struct lsn lsn;
	struct loop_watch lsn_w, sig_w, note_w, reload_w, stop_w, tick_w;
	struct loop_watch prep_w;   /* llm.c: prepared submits */
	struct cfg *cfg;
	const char *config_opt;     /* --config as given (reload reads it again) */
	char *config_text;          /* cfg_dump of the live config */
	struct models models;
	uid_t owner;
	uid_t *allow_uids;
	size_t n_allow_uids;
	gid_t *allow_gids;
	size_t n_allow_gids;
	int state;                  /* PLOTD_* */
	int log_level_forced;       /* --log-level given: config does not change it */
	uint64_t start_ms;
	uint64_t drain_deadline_ms;
	uint64_t next_conn;
	size_t n_conns;
	struct conn *conns;
	struct conn *pending_write;
	struct proto_limits in_lim;  /* requests */
	struct proto_limits out_lim; /* replies */
	size_t out_cap;             /* --max-client-output */
	int exit_code;
};

uint64_t plotd_now_ms(void);
int plotd_peer_role(const struct plotd *d, const struct peer *pr);
void plotd_start_stop(struct plotd *d, int cancel, double timeout_secs, const char *why);
int plotd_can_submit(const struct plotd *d);

#endif
