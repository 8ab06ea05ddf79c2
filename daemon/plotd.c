/*
 * plotd.c — the daemon's entry point: options, configuration, the socket,
 * the pools, the event loop, signals, drain and reload.
 *
 * DESIGN
 *   main() blocks SIGTERM/SIGINT/SIGHUP before any thread exists (so only
 *   the loop's signalfd sees them), loads the config, opens the socket,
 *   starts one pool per model and runs the loop until a drain ends.
 *
 *   The daemon's files form layers, each including only those below it:
 *     plotd.c (main) -> client.c (connections) -> dispatch.c (requests,
 *     replies, streams) -> models.c (one executor + pool per model) ->
 *     lib/exec (the executor table) -> lib/pool, lib/llm.
 *   Lower layers reach upper ones only through hooks they are given
 *   (conn_hooks, dispatch_hooks) and through the post queue: every thread
 *   that is not the loop's comes back through post_send/post_note
 *   (plot/loop.h), the only cross-thread path into loop state.
 *
 *   All state is in one struct plotd, made in main() and passed to every
 *   callback as its context; there are no other globals but the log.
 *
 *   Anything that may block runs off the loop thread and posts back:
 *     - drain/shutdown: a stopper thread calls pool_shutdown() on each pool
 *       (bounded by the drain timeout) while the loop goes on streaming;
 *       then the loop flushes what clients still have pending (bounded by
 *       FLUSH_GRACE_MS) and exits;
 *     - SIGHUP: a reload thread reads and parses the config and resolves
 *       allow_users/allow_groups (NSS lookups may touch disk); the loop then
 *       applies every runtime-changeable limit that differs, logs each
 *       change, and keeps the old config if the new one is bad.
 *
 *   The durable store (durable.c) is opened before the pools start; its
 *   stored tasks are resumed (dispatch_restore) before the loop runs. A
 *   stop that cancels freezes the store first, so the cancellations that
 *   shut the pools down never reach the disk: queued tasks survive it.
 *
 * EXIT STATUS
 *   0 clean exit, 1 runtime failure (socket in use, drain left work
 *   running), 2 usage, 74 the store cannot be used (disk full, read-only,
 *   corrupted, locked), 78 configuration error. See plotd.8.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "cuda-env.h"
#include "check.h"
#include "dispatch.h"
#include "durable.h"
#include "http.h"
#include "submit.h"
#include "listen.h"
#include "log.h"
#include "models.h"
#include "plot/client.h"
#include "plot/fsafe.h"
#include "plot/loop.h"
#include "plot/version.h"

#define EXIT_USAGE 2
#define EXIT_STORE 74
#define EXIT_CONFIG 78
#define DRAIN_SECS_DEFAULT 30.0
#define FLUSH_GRACE_MS 2000
#define TICK_MS 250
#define POST_BUDGET_US 300 /* per loop wake-up: other clients are served between */

struct plotd;

struct opts {
	const char *config, *socket, *log_file, *log_level, *pid_file, *http;
	double drain_secs;
	size_t out_cap;
	int check_config;
};

/* The reload thread's result, handed to the loop. */
struct reload_job {
	struct plotd *d;
	pthread_t thread;
	int running;            /* thread started, not yet joined */
	int again;              /* SIGHUP arrived while running */
	struct cfg *cfg;        /* NULL on error */
	char *text;             /* cfg_dump of cfg */
	uid_t *uids;
	gid_t *gids;
	size_t n_uids, n_gids;
	char err[512];
};

/* The stopper thread: pool_shutdown on every pool. */
struct stop_job {
	struct plotd *d;
	pthread_t thread;
	int running;
	int mode;               /* enum pool_shutdown_mode */
	uint64_t timeout_ns;
	int leftover;           /* some pool still had running work */
};

enum { PLOTD_RUNNING = 0, PLOTD_DRAINING = 1, PLOTD_FLUSHING = 2 };

struct plotd {
	struct opts o;
	struct loop *loop;
	struct post *post;
	struct lsn lsn;
	struct loop_watch lsn_w, sig_w, tick_w;
	struct conns conns;
	struct dispatch dispatch;
	struct models models;
	struct durable durable;
	struct http *http;          /* the HTTP front; NULL when off */
	struct cfg *first_cfg;      /* the models were started from it: kept */
	struct cfg *cfg;            /* live (reloads replace it) */
	char *config_text;          /* cfg_dump of the live config */
	uid_t *allow_uids;
	size_t n_allow_uids;
	gid_t *allow_gids;
	size_t n_allow_gids;
	int state;                  /* PLOTD_* */
	int log_level_forced;       /* --log-level given: config does not change it */
	uint64_t flush_deadline_ms;
	struct reload_job reload;
	struct stop_job stop;
	char pid_path[4096];
	int exit_code;
};

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static int can_submit(void *ctx)
{
	const struct plotd *d = ctx;
	return d->state == PLOTD_RUNNING;
}

/* ---- permissions ---------------------------------------------------------- */

static int in_gids(const struct plotd *d, gid_t g)
{
	for (size_t i = 0; i < d->n_allow_gids; i++)
		if (d->allow_gids[i] == g)
			return 1;
	return 0;
}

static int peer_role(void *ctx, const struct peer *pr)
{
	const struct plotd *d = ctx;
	if (pr->uid == 0 || pr->uid == d->conns.owner)
		return ROLE_OWNER;
	for (size_t i = 0; i < d->n_allow_uids; i++)
		if (d->allow_uids[i] == pr->uid)
			return ROLE_ALLOWED;
	if (in_gids(d, pr->gid))
		return ROLE_ALLOWED;
	for (unsigned i = 0; i < pr->ngroups; i++)
		if (in_gids(d, pr->groups[i]))
			return ROLE_ALLOWED;
	return ROLE_NONE;
}

static int parse_id(const char *s, unsigned long *out)
{
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || *out > 0xfffffffeul ? -1 : 0;
}

/* "FILE:LINE:COL" of list entry i, or just the file. */
static const char *entry_at(const struct cfg *c, const struct cfg_strlist *l, size_t i,
			    char *buf, size_t len)
{
	if (l->line && l->line[i])
		snprintf(buf, len, "%s:%d:%d", c->source, l->line[i], l->col[i]);
	else
		snprintf(buf, len, "%s", c->source);
	return buf;
}

/* Resolve allow_users / allow_groups (names or numbers). May block (NSS):
 * never on the loop thread. --check-config runs it too. */
static int resolve_allow(const struct cfg *c, uid_t **uids, size_t *nu, gid_t **gids,
			 size_t *ng, char *err, size_t errlen)
{
	const struct cfg_strlist *u = &c->daemon.allow_users, *g = &c->daemon.allow_groups;
	unsigned long v;
	char at[1024];

	*uids = calloc(u->n + 1, sizeof(**uids));
	*gids = calloc(g->n + 1, sizeof(**gids));
	*nu = *ng = 0;
	if (!*uids || !*gids) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < u->n; i++) {
		struct passwd *pw = parse_id(u->v[i], &v) == 0 ? NULL : getpwnam(u->v[i]);
		if (!pw && parse_id(u->v[i], &v) < 0) {
			snprintf(err, errlen, "%s: daemon.allow_users: no user '%s'",
				 entry_at(c, u, i, at, sizeof at), u->v[i]);
			return -1;
		}
		(*uids)[(*nu)++] = pw ? pw->pw_uid : (uid_t)v;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct group *gr = parse_id(g->v[i], &v) == 0 ? NULL : getgrnam(g->v[i]);
		if (!gr && parse_id(g->v[i], &v) < 0) {
			snprintf(err, errlen, "%s: daemon.allow_groups: no group '%s'",
				 entry_at(c, g, i, at, sizeof at), g->v[i]);
			return -1;
		}
		(*gids)[(*ng)++] = gr ? gr->gr_gid : (gid_t)v;
	}
	return 0;
}

/* ---- drain and shutdown ------------------------------------------------------ */

static void on_stopped(void *ctx, uint64_t key, void *arg, int live);

static void *stopper_main(void *arg)
{
	struct stop_job *sj = arg;
	struct plotd *d = sj->d;

	if (models_shutdown(&d->models, sj->mode == POOL_SHUTDOWN_CANCEL, sj->timeout_ns) < 0)
		sj->leftover = 1;
	post_note(d->post, on_stopped, d, 0);
	return NULL;
}

static void start_stop(void *ctx, int cancel, double timeout_secs, const char *why)
{
	struct plotd *d = ctx;

	if (d->state != PLOTD_RUNNING) {
		log_msg(LOG_WARN, "%s while stopping: cancelling every task now", why);
		durable_freeze(&d->durable); /* the stored tasks resume at the next start */
		models_cancel_all(&d->models);
		return;
	}
	if (cancel)
		durable_freeze(&d->durable);
	if (timeout_secs <= 0)
		timeout_secs = d->o.drain_secs;
	d->state = PLOTD_DRAINING;
	log_msg(LOG_INFO, "%s: %s (timeout %.1fs); new submits are refused", why,
		cancel ? "cancelling every task" : "draining queued and running tasks",
		timeout_secs);
	d->stop.d = d;
	d->stop.mode = cancel ? POOL_SHUTDOWN_CANCEL : POOL_SHUTDOWN_DRAIN;
	d->stop.timeout_ns = (uint64_t)(timeout_secs * 1e9);
	if (pthread_create(&d->stop.thread, NULL, stopper_main, &d->stop) != 0) {
		log_msg(LOG_ERROR, "cannot start the stopper thread; exiting now");
		models_cancel_all(&d->models);
		post_note(d->post, on_stopped, d, 0);
		return;
	}
	d->stop.running = 1;
}

/* post_fn: every pool is stopped. Every task is terminal now, but the
 * pools' last notes may still be queued: deliver them, then feed every open
 * watch once, so each stream gets its end before we exit. */
static void on_stopped(void *ctx, uint64_t key, void *arg, int live)
{
	struct plotd *d = ctx;

	(void)key;
	(void)arg;
	if (!live)
		return;
	if (d->stop.running) {
		pthread_join(d->stop.thread, NULL);
		d->stop.running = 0;
	}
	if (d->stop.leftover) {
		log_msg(LOG_ERROR, "drain: tasks still running after the timeout");
		d->exit_code = 1;
	}
	log_msg(LOG_INFO, "every pool is stopped; flushing clients");
	d->state = PLOTD_FLUSHING;
	d->flush_deadline_ms = conn_now_ms() + FLUSH_GRACE_MS;
	dispatch_kick_all(&d->dispatch);
	http_kick_all(d->http);
}

/* ---- reload ------------------------------------------------------------------ */

static void on_reloaded(void *ctx, uint64_t key, void *arg, int live);

static void *reload_main(void *arg)
{
	struct reload_job *rj = arg;
	struct plotd *d = rj->d;
	size_t len;

	if (cfg_load(d->o.config, &rj->cfg, rj->err, sizeof(rj->err)) < 0) {
		rj->cfg = NULL;
	} else if (resolve_allow(rj->cfg, &rj->uids, &rj->n_uids, &rj->gids, &rj->n_gids,
				 rj->err, sizeof(rj->err)) < 0 ||
		   cfg_dump(rj->cfg, &rj->text, &len) < 0) {
		if (!rj->err[0])
			snprintf(rj->err, sizeof(rj->err), "cannot dump the config");
		cfg_free(rj->cfg);
		rj->cfg = NULL;
	}
	post_note(d->post, on_reloaded, d, 0);
	return NULL;
}

static void start_reload(struct plotd *d)
{
	struct reload_job *r = &d->reload;

	if (r->running) {
		r->again = 1;
		return;
	}
	free(r->uids);
	free(r->gids);
	free(r->text);
	memset(r, 0, sizeof(*r));
	r->d = d;
	if (pthread_create(&r->thread, NULL, reload_main, r) != 0) {
		log_msg(LOG_ERROR, "config reload: cannot start a thread");
		return;
	}
	r->running = 1;
}

static void reload_models(struct plotd *d, const struct cfg *c)
{
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *cm = &c->models[i];
		struct model *m = models_find(&d->models, cm->name);
		if (!m) {
			log_msg(LOG_WARN, "config reload: new model %s needs a restart", cm->name);
			continue;
		}
		if (!models_same_shape(m, cm))
			log_msg(LOG_WARN, "config reload: executor, path or params of model %s "
				"changed; they apply only on restart", cm->name);
		models_set_lot(m, &cm->lot, "config reload");
	}
	for (size_t i = 0; i < d->models.n; i++)
		if (!cfg_model_find(c, d->models.v[i].name))
			log_msg(LOG_WARN, "config reload: model %s is gone from the config; it "
				"stays until a restart", d->models.v[i].name);
}

static void reload_daemon(struct plotd *d, struct cfg *c)
{
	struct reload_job *r = &d->reload;

	if (!d->log_level_forced && c->daemon.log_level != log_get_level()) {
		log_msg(LOG_INFO, "config reload: log_level %s -> %s",
			log_level_name(log_get_level()), log_level_name(c->daemon.log_level));
		log_set_level(c->daemon.log_level);
	}
	if ((r->n_uids || r->n_gids) != (d->n_allow_uids || d->n_allow_gids))
		log_msg(LOG_WARN, "config reload: the socket's mode follows allow_users/"
			"allow_groups being empty or not; that changes only on restart");
	if (r->n_uids != d->n_allow_uids || r->n_gids != d->n_allow_gids ||
	    memcmp(r->uids, d->allow_uids, r->n_uids * sizeof(uid_t)) ||
	    memcmp(r->gids, d->allow_gids, r->n_gids * sizeof(gid_t)))
		log_msg(LOG_INFO, "config reload: allow_users/allow_groups now %zu users, "
			"%zu groups", r->n_uids, r->n_gids);
	conn_set_caps(&d->conns, c->daemon.frame_timeout_secs, c->daemon.max_input_mb,
		      c->daemon.max_output_mb);
	if (!d->o.out_cap) /* --max-client-output wins over the config */
		d->conns.out_cap = (size_t)c->daemon.max_client_output;
	free(d->allow_uids);
	free(d->allow_gids);
	d->allow_uids = r->uids;
	d->allow_gids = r->gids;
	d->n_allow_uids = r->n_uids;
	d->n_allow_gids = r->n_gids;
	r->uids = NULL;
	r->gids = NULL;
}

/* Make c the live config (the first one stays: the models point into it). */
static void set_live_config(struct plotd *d, struct cfg *c, char *text)
{
	if (d->cfg && d->cfg != d->first_cfg)
		cfg_free(d->cfg);
	d->cfg = c;
	free(d->config_text);
	d->config_text = text;
	d->dispatch.config_yaml = text;
	d->dispatch.config_source = c->source;
	d->dispatch.lot_defaults = &c->lot;
}

/* post_fn: the reload thread is done. */
static void on_reloaded(void *ctx, uint64_t key, void *arg, int live)
{
	struct plotd *d = ctx;
	struct reload_job *r = &d->reload;
	char err[256];

	(void)key;
	(void)arg;
	if (!live)
		return;
	pthread_join(r->thread, NULL);
	r->running = 0;
	if (!r->cfg) {
		log_msg(LOG_ERROR, "config reload failed, keeping the running config: %s", r->err);
	} else {
		reload_models(d, r->cfg);
		reload_daemon(d, r->cfg);
		set_live_config(d, r->cfg, r->text);
		r->cfg = NULL;
		r->text = NULL;
		log_msg(LOG_INFO, "config reloaded from %s", d->cfg->source);
	}
	if (log_open(NULL, err, sizeof(err)) < 0) /* reopen: log rotation */
		log_msg(LOG_ERROR, "log file: %s", err);
	if (r->again)
		start_reload(d);
}

/* ---- signals, accept, tick, before sleep -------------------------------------- */

static void on_signal(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct plotd *d = CONTAINER(w, struct plotd, sig_w);
	struct signalfd_siginfo si;

	(void)l;
	(void)ev;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_msg(LOG_INFO, "SIGHUP: reloading the config");
			start_reload(d);
		} else {
			start_stop(d, 0, d->o.drain_secs,
				   si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		}
	}
}

static void on_accept(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct plotd *d = CONTAINER(w, struct plotd, lsn_w);

	(void)l;
	(void)ev;
	conn_accept_all(&d->conns);
}

/* The tick wakes the loop so before_sleep runs: close grace periods and
 * the flush deadline are checked there; and models idle past their
 * idle_unload_secs are unloaded (so that is accurate to TICK_MS). */
static void on_tick(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct plotd *d = CONTAINER(w, struct plotd, tick_w);
	(void)l;
	(void)ev;
	loop_fd_drain(w->fd);
	models_idle_check(&d->models, loop_now_ns() / 1000000); /* idle_unload_secs */
}

static int before_sleep(struct loop *l, void *ctx)
{
	struct plotd *d = ctx;
	int busy = conn_run_backlog(&d->conns); /* its replies are flushed below */

	busy |= http_before_sleep(d->http);
	conn_flush_pending(&d->conns);
	busy |= conn_backlog_runnable(&d->conns); /* the flush may have drained one */
	conn_reap(&d->conns);
	if (d->state == PLOTD_FLUSHING &&
	    ((!conn_output_pending(&d->conns) && !dispatch_watch_count(&d->dispatch) &&
	      !http_waiting(d->http)) ||
	     conn_now_ms() > d->flush_deadline_ms))
		loop_stop(l);
	return busy;
}

/* ---- startup ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: plotd [--config F] [--socket P] [--log-file F] [--log-level L]\n"
		"             [--pid-file F] [--drain-timeout SECS] [--max-client-output BYTES]\n"
		"             [--http HOST:PORT]\n"
		"       plotd --check-config [--config F]\n"
		"       plotd --help | --version\n"
		"Runs in the foreground. See plotd(8).\n");
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "drain-timeout", required_argument, NULL, 'd' },
		{ "max-client-output", required_argument, NULL, 'o' },
		{ "http", required_argument, NULL, 'H' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	char *end;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 's': o->socket = optarg; break;
		case 'l': o->log_file = optarg; break;
		case 'L': o->log_level = optarg; break;
		case 'p': o->pid_file = optarg; break;
		case 'H': o->http = optarg; break;
		case 'C': o->check_config = 1; break;
		case 'd':
			o->drain_secs = strtod(optarg, &end);
			if (*end || !(o->drain_secs > 0 && o->drain_secs <= 86400)) {
				fprintf(stderr, "plotd: --drain-timeout: expected 0 < SECS <= 86400, "
					"got '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o': {
			unsigned long long v = strtoull(optarg, &end, 10);
			if (*end || optarg[0] == '-' || v < CONN_OUT_CAP_MIN || v > (1ull << 32)) {
				fprintf(stderr, "plotd: --max-client-output: expected bytes %u..%llu, "
					"got '%s'\n", CONN_OUT_CAP_MIN, 1ull << 32, optarg);
				return EXIT_USAGE;
			}
			o->out_cap = (size_t)v;
			break;
		}
		case 'h': usage(stdout); exit(0);
		case 'V': printf("plotd %s\n", PLOT_VERSION); exit(0);
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "plotd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o->log_level && log_level_parse(o->log_level) < 0) {
		fprintf(stderr, "plotd: --log-level: expected error|warn|info|debug, got '%s'\n",
			o->log_level);
		return EXIT_USAGE;
	}
	return 0;
}

/* --check-config: the file, then what it names (users, groups, model
 * files: check.c), without loading a model. Errors exit 78 with nothing on
 * stdout; warnings go to stderr and the effective config is printed. */
static int check_config(const struct opts *o)
{
	struct cfg *c;
	char err[1024], *text;
	size_t len, nu, ng;
	uid_t *uids = NULL;
	gid_t *gids = NULL;

	if (cfg_load(o->config, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "plotd: %s\n", err);
		return EXIT_CONFIG;
	}
	int bad = resolve_allow(c, &uids, &nu, &gids, &ng, err, sizeof(err)) < 0;
	if (bad)
		fprintf(stderr, "plotd: %s\n", err);
	free(uids);
	free(gids);
	bad += check_models(c, stderr);
	if (bad) {
		cfg_free(c);
		return EXIT_CONFIG;
	}
	if (cfg_dump(c, &text, &len) < 0) {
		fprintf(stderr, "plotd: cannot print the config\n");
		cfg_free(c);
		return 1;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	cfg_free(c);
	return 0;
}

static int write_pid_file(struct plotd *d, const char *path, char *err, size_t errlen)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	char why[512];
	/* never through a symlink or into someone else's file */
	int fd = fsafe_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, why, sizeof why);
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		snprintf(err, errlen, "pid file %s", fd < 0 ? why : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(d->pid_path, sizeof(d->pid_path), "%s", path);
	return 0;
}

static int add_fd(struct plotd *d, struct loop_watch *w, int fd, loop_fn fn)
{
	w->fd = fd;
	w->fn = fn;
	return fd < 0 ? -1 : loop_add(d->loop, w, EPOLLIN);
}

static int setup_loop(struct plotd *d, const sigset_t *sigs)
{
	d->loop = loop_new();
	if (!d->loop)
		return -1;
	d->post = post_new(d->loop, POST_BUDGET_US);
	if (!d->post)
		return -1;
	int tfd = loop_timerfd_new();
	if (add_fd(d, &d->sig_w, signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC), on_signal) < 0 ||
	    add_fd(d, &d->tick_w, tfd, on_tick) < 0 ||
	    loop_timerfd_arm(tfd, TICK_MS, TICK_MS) < 0)
		return -1;
	loop_set_before_sleep(d->loop, before_sleep, d);
	return 0;
}

static const char *socket_path(const struct plotd *d, char *buf, size_t len, char *err,
			       size_t errlen)
{
	const char *opt = d->o.socket;
	if (!opt && !getenv("PLOT_SOCKET") && d->cfg->daemon.socket)
		opt = d->cfg->daemon.socket;
	return client_socket_path(opt, buf, len, err, errlen) < 0 ? NULL : buf;
}

/* Connections and dispatch wired to each other and to the daemon. */
static int setup_layers(struct plotd *d)
{
	static const struct dispatch_hooks dh_proto = { .can_submit = can_submit,
							.stop = start_stop };
	struct dispatch_hooks dh = dh_proto;

	dh.ctx = d;
	d->conns.loop = d->loop;
	d->conns.lsn = &d->lsn;
	d->conns.lsn_w = &d->lsn_w;
	d->conns.hooks = (struct conn_hooks){ peer_role, d, dispatch_request,
					      dispatch_conn_closed, &d->dispatch };
	if (dispatch_init(&d->dispatch, &d->conns, &d->models, d->post, &dh) < 0)
		return -1;
	d->dispatch.config_yaml = d->config_text;
	d->dispatch.config_source = d->cfg->source;
	d->dispatch.lot_defaults = &d->cfg->lot;
	d->dispatch.durable = &d->durable;
	return 0;
}

/* Resume what the store holds, oldest id first: finished tasks into the
 * mailboxes; queued ones (and, by store.restart_policy, the ones that were
 * running) through the submit path. Times come back to the loop's clock; a
 * deadline that passed while plotd was down expires at once. */
static void restore_tasks(struct plotd *d)
{
	struct durable *du = &d->durable;

	submit_restore_begin(&d->dispatch);
	for (size_t i = 0; i < du->n_loaded; i++) {
		struct store_record r = du->loaded[i];
		struct model *m = r.model ? models_find(&d->models, r.model) : NULL;
		if (!m || !m->store || !m->pool)
			continue; /* not ours now: left in the store as it is */
		store_record_times(&r, 0);
		if (POOL_STATE_TERMINAL(r.state)) {
			pool_restore_ended(m->pool, &r);
			durable_key_remember(du, r.owner_uid, r.key, r.id);
			continue;
		}
		if (r.state == POOL_RUNNING && du->restart_fail) {
			r.state = POOL_FAILED;
			r.error = "plotd stopped while it ran (store.restart_policy: fail)";
			r.ended_ns = loop_now_ns();
			r.output = ""; /* partial output is not kept: cleared */
			r.output_len = 0;
			r.request = NULL;
			r.request_len = 0;
			durable_put(du, &r);
			pool_restore_ended(m->pool, &r);
			continue;
		}
		if (r.state == POOL_RUNNING) { /* requeued: from the start, partial output gone */
			r.attempts++;
			r.output = "";
			r.output_len = 0;
			r.request = NULL;
			r.request_len = 0;
			durable_put(du, &r);
			r.request = du->loaded[i].request;
			r.request_len = du->loaded[i].request_len;
		}
		dispatch_restore(&d->dispatch, m, &r);
	}
	durable_loaded_free(du);
	submit_restore_end(&d->dispatch);
}

/* post_fn for the pools' task notes: both fronts' waiters. */
static void on_task_note(void *ctx, uint64_t task, void *arg, int live)
{
	struct plotd *d = ctx;

	dispatch_task_event(&d->dispatch, task, arg, live);
	if (live)
		http_task_event(d->http, task);
}

/* The first line of the token file (read once, at startup). */
static int read_token(const char *path, char **out, char *err, size_t errlen)
{
	char buf[1024];
	FILE *f = fopen(path, "re");

	if (!f || !fgets(buf, sizeof(buf), f)) {
		snprintf(err, errlen, "daemon.http_token_file %s: %s", path,
			 f ? "empty" : strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = 0;
	if (!buf[0]) {
		snprintf(err, errlen, "daemon.http_token_file %s: the first line is empty", path);
		return -1;
	}
	*out = strdup(buf);
	return *out ? 0 : -1;
}

/* The HTTP front, when --http or daemon.http asks for it. */
static int start_http(struct plotd *d, char *err, size_t errlen)
{
	const struct cfg_daemon *cd = &d->cfg->daemon;
	const char *addr = d->o.http ? d->o.http : cd->http;
	char *token = NULL;

	if (!addr)
		return 0;
	if (cd->http_token_file && read_token(cd->http_token_file, &token, err, errlen) < 0)
		return EXIT_CONFIG;
	struct http_config hc = { addr, token ? token : cd->http_token, cd->http_max_body,
				  cd->http_max_header, cd->http_max_connections, cd->http_idle_secs,
				  cd->http_max_output, d->conns.owner };
	if (hc.token && !hc.token[0])
		hc.token = NULL;
	d->http = http_new(d->loop, &d->dispatch, &hc, err, errlen);
	free(token);
	if (!d->http)
		return 1;
	log_msg(LOG_INFO, "http: listening on %s%s", http_address(d->http),
		hc.token ? " (bearer token required)" : "");
	return 0;
}

static int startup(struct plotd *d, const sigset_t *sigs, char *err, size_t errlen)
{
	char path[4096];
	int rc;
	const char *lf = d->o.log_file ? d->o.log_file : d->cfg->daemon.log_file;

	if (lf && log_open(lf, err, errlen) < 0)
		return 1;
	if (d->o.log_level) {
		log_set_level(log_level_parse(d->o.log_level));
		d->log_level_forced = 1;
	} else {
		log_set_level(d->cfg->daemon.log_level);
	}
	conn_set_caps(&d->conns, d->cfg->daemon.frame_timeout_secs, d->cfg->daemon.max_input_mb,
		      d->cfg->daemon.max_output_mb);
	if (!d->o.out_cap) /* --max-client-output wins over the config */
		d->conns.out_cap = (size_t)d->cfg->daemon.max_client_output;
	if (resolve_allow(d->cfg, &d->allow_uids, &d->n_allow_uids, &d->allow_gids,
			  &d->n_allow_gids, err, errlen) < 0)
		return EXIT_CONFIG;
	if (!socket_path(d, path, sizeof(path), err, errlen))
		return 1;
	if (setup_loop(d, sigs) < 0 || setup_layers(d) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		return 1;
	}
	if (lsn_open(&d->lsn, path, d->n_allow_uids || d->n_allow_gids, err, errlen) < 0)
		return 1;
	if (add_fd(d, &d->lsn_w, d->lsn.fd, on_accept) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		return 1;
	}
	if ((rc = durable_open(&d->durable, d->first_cfg, err, errlen)) < 0)
		return rc == DURABLE_E_PG ? EXIT_CONFIG : EXIT_STORE;
	if (models_init(&d->models, d->first_cfg, d->post, on_task_note, d, &d->durable, err,
			errlen) < 0)
		return 1;
	restore_tasks(d);
	if (durable_pg_start(&d->durable, &d->dispatch, err, errlen) < 0)
		return 1;
	if ((rc = start_http(d, err, errlen)) != 0)
		return rc;
	const char *pf = d->o.pid_file ? d->o.pid_file : d->cfg->daemon.pid_file;
	if (pf && write_pid_file(d, pf, err, errlen) < 0)
		return 1;
	return 0;
}

static int load_config(struct plotd *d, char *err, size_t errlen)
{
	size_t len;

	if (cfg_load(d->o.config, &d->cfg, err, errlen) < 0)
		return EXIT_CONFIG;
	d->first_cfg = d->cfg;
	if (cfg_dump(d->cfg, &d->config_text, &len) < 0) {
		snprintf(err, errlen, "cannot dump the config");
		return 1;
	}
	return 0;
}

static void teardown(struct plotd *d)
{
	struct reload_job *r = &d->reload;

	if (r->running)
		pthread_join(r->thread, NULL);
	if (d->stop.running)
		pthread_join(d->stop.thread, NULL);
	if (r->cfg)
		cfg_free(r->cfg);
	free(r->uids);
	free(r->gids);
	free(r->text);
	conn_close_all(&d->conns);
	http_free(d->http);      /* before the pools: its subscriptions close */
	durable_freeze(&d->durable); /* what is left is cancelled by the stop only */
	models_free(&d->models); /* executors answer queued prepares: posted */
	durable_close(&d->durable);
	post_free(d->post);      /* ... and discarded here */
	lsn_close(&d->lsn);
	if (d->pid_path[0])
		unlink(d->pid_path);
	dispatch_free(&d->dispatch);
	if (d->loop)
		loop_free(d->loop);
	free(d->allow_uids);
	free(d->allow_gids);
	free(d->config_text);
	if (d->cfg && d->cfg != d->first_cfg)
		cfg_free(d->cfg);
	if (d->first_cfg)
		cfg_free(d->first_cfg);
}

static struct plotd *plotd_new(void)
{
	struct plotd *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->o.drain_secs = DRAIN_SECS_DEFAULT;
	d->lsn.fd = d->lsn.lock_fd = -1;
	d->conns.owner = geteuid();
	d->conns.out_lim.max_frame = PROTO_MAX_FRAME_CLIENT;
	d->conns.slice_us = CONN_SLICE_US;
	proto_limits_resolve(&d->conns.in_lim);
	proto_limits_resolve(&d->conns.out_lim);
	return d;
}

int main(int argc, char **argv)
{
	char err[1024] = "";
	sigset_t sigs;
	struct plotd *d = plotd_new();

	if (!d) {
		fprintf(stderr, "plotd: out of memory\n");
		return 1;
	}
	int rc = parse_args(&d->o, argc, argv);
	if (rc || d->o.check_config) {
		rc = rc ? rc : check_config(&d->o);
		free(d);
		return rc;
	}
	d->conns.out_cap = d->o.out_cap ? d->o.out_cap : CONN_OUT_CAP; /* config may change it */
	/* Before any thread exists: only the loop's signalfd sees these. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *emu = plotd_cuda_env(); /* before any model loads */
	rc = load_config(d, err, sizeof(err));
	if (!rc)
		rc = startup(d, &sigs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "plotd: %s\n", err);
		if (log_is_file())
			log_msg(LOG_ERROR, "not started: %s", err);
		teardown(d);
		free(d);
		return rc;
	}
	log_msg(LOG_INFO, "plotd %s listening on %s (pid %d, uid %u, config %s)",
		PLOT_VERSION, d->lsn.path, (int)getpid(), (unsigned)d->conns.owner,
		d->cfg->source);
	if (emu)
		log_msg(LOG_WARN, "%s", emu);
	rc = loop_run(d->loop);
	if (rc < 0) {
		log_msg(LOG_ERROR, "event loop: %s", strerror(-rc));
		d->exit_code = 1;
	}
	teardown(d);
	log_msg(LOG_INFO, "plotd exited (status %d)", d->exit_code);
	log_close();
	rc = d->exit_code;
	free(d);
	return rc;
}
