/*
 * plotd.c — the daemon's entry point: options, configuration, the socket,
 * the pools, the event loop, signals, drain and reload.
 *
 * DESIGN
 *   main() blocks SIGTERM/SIGINT/SIGHUP before any thread exists (so only
 *   the loop's signalfd sees them), loads the config, opens the socket,
 *   starts one pool per model and runs the loop until a drain ends.
 *
 *   Anything that may block runs off the loop thread and reports back
 *   through an eventfd:
 *     - drain/shutdown: a stopper thread calls pool_shutdown() on each pool
 *       (bounded by the drain timeout) while the loop goes on streaming;
 *       then the loop flushes what clients still have pending (bounded by
 *       FLUSH_GRACE_MS) and exits;
 *     - SIGHUP: a reload thread reads and parses the config and resolves
 *       allow_users/allow_groups (NSS lookups may touch disk); the loop then
 *       applies every runtime-changeable limit that differs, logs each
 *       change, and keeps the old config if the new one is bad.
 *
 * EXIT STATUS
 *   0 clean exit, 1 runtime failure (socket in use, drain left work
 *   running), 2 usage, 78 configuration error. See plotd.8.
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
#include <time.h>
#include <unistd.h>

#include "plot/client.h"
#include "plot/version.h"
#include "plotd.h"

#define EXIT_USAGE 2
#define EXIT_CONFIG 78
#define DRAIN_SECS_DEFAULT 30.0
#define FLUSH_GRACE_MS 2000
#define TICK_MS 250
#define NOTES_BUDGET_US 2000

struct opts {
	const char *config, *socket, *log_file, *log_level, *pid_file;
	double drain_secs;
	size_t out_cap;
	int check_config;
};

/* The reload thread's result, handed to the loop. */
struct reload_job {
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
	pthread_t thread;
	int running;
	int mode;               /* enum pool_shutdown_mode */
	uint64_t timeout_ns;
	int leftover;           /* some pool still had running work */
};

static struct plotd D;
static struct opts O = { .drain_secs = DRAIN_SECS_DEFAULT, .out_cap = CONN_OUT_CAP };
static struct reload_job R;
static struct stop_job S;
static char pid_path[4096];
static uint64_t *note_buf;
static size_t note_cap;
static int stop_efd = -1, reload_efd = -1;
static uint64_t flush_deadline_ms;

static uint64_t plotd_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t plotd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int plotd_can_submit(const struct plotd *d)
{
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

int plotd_peer_role(const struct plotd *d, const struct peer *pr)
{
	if (pr->uid == 0 || pr->uid == d->owner)
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

/* Resolve allow_users / allow_groups (names or numbers). May block (NSS):
 * never on the loop thread. */
static int resolve_allow(const struct cfg *c, uid_t **uids, size_t *nu, gid_t **gids,
			 size_t *ng, char *err, size_t errlen)
{
	const struct cfg_strlist *u = &c->daemon.allow_users, *g = &c->daemon.allow_groups;
	unsigned long v;

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
			snprintf(err, errlen, "%s: daemon.allow_users: no user '%s'", c->source,
				 u->v[i]);
			return -1;
		}
		(*uids)[(*nu)++] = pw ? pw->pw_uid : (uid_t)v;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct group *gr = parse_id(g->v[i], &v) == 0 ? NULL : getgrnam(g->v[i]);
		if (!gr && parse_id(g->v[i], &v) < 0) {
			snprintf(err, errlen, "%s: daemon.allow_groups: no group '%s'", c->source,
				 g->v[i]);
			return -1;
		}
		(*gids)[(*ng)++] = gr ? gr->gr_gid : (gid_t)v;
	}
	return 0;
}

/* ---- drain and shutdown ------------------------------------------------------ */

static void *stopper_main(void *arg)
{
	struct stop_job *sj = arg;
	uint64_t end = plotd_now_ms() * 1000000ull + sj->timeout_ns;

	for (size_t i = 0; i < D.models.n; i++) {
		struct pool *p = D.models.v[i].pool;
		if (!p)
			continue;
		uint64_t now = plotd_now_ms() * 1000000ull;
		uint64_t left = end > now ? end - now : 1000000ull;
		if (pool_shutdown(p, (enum pool_shutdown_mode)sj->mode, left) < 0)
			sj->leftover = 1;
	}
	loop_eventfd_signal(stop_efd);
	return NULL;
}

/* Cancel every queued and running task now (second signal, shutdown). */
static void cancel_everything(void)
{
	for (size_t i = 0; i < D.models.n; i++) {
		struct pool *p = D.models.v[i].pool;
		struct pool_task_info *v;
		size_t n = models_list(&D.models.v[i], &v);
		for (size_t k = 0; k < n; k++)
			pool_cancel(p, v[k].id);
		free(v);
	}
}

void plotd_start_stop(struct plotd *d, int cancel, double timeout_secs, const char *why)
{
	if (d->state != PLOTD_RUNNING) {
		log_msg(LOG_WARN, "%s while stopping: cancelling every task now", why);
		cancel_everything();
		return;
	}
	if (timeout_secs <= 0)
		timeout_secs = O.drain_secs;
	d->state = PLOTD_DRAINING;
	log_msg(LOG_INFO, "%s: %s (timeout %.1fs); new submits are refused", why,
		cancel ? "cancelling every task" : "draining queued and running tasks",
		timeout_secs);
	S.mode = cancel ? POOL_SHUTDOWN_CANCEL : POOL_SHUTDOWN_DRAIN;
	S.timeout_ns = (uint64_t)(timeout_secs * 1e9);
	if (pthread_create(&S.thread, NULL, stopper_main, &S) != 0) {
		log_msg(LOG_ERROR, "cannot start the stopper thread; exiting now");
		cancel_everything();
		loop_eventfd_signal(stop_efd);
		return;
	}
	S.running = 1;
}

/* Every task is terminal now, but the pools' last notes may not have reached
 * us (a note is sent after the task ends): feed every open watch once, so
 * each stream gets its end before we exit. */
static void kick_all_watches(void)
{
	size_t n = 0, cap = watch_count();
	uint64_t *ids = calloc(cap ? cap : 1, sizeof(*ids));

	for (struct conn *c = D.conns; ids && c; c = c->next)
		for (struct watch *w = c->watches; w && n < cap; w = w->conn_next)
			ids[n++] = w->task;
	for (size_t i = 0; i < n; i++)
		dispatch_task_event(&D, ids[i]);
	free(ids);
}

static void on_stopped(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	(void)l;
	(void)ev;
	loop_eventfd_drain(w->fd);
	if (S.running) {
		pthread_join(S.thread, NULL);
		S.running = 0;
	}
	if (S.leftover) {
		log_msg(LOG_ERROR, "drain: tasks still running after the timeout");
		D.exit_code = 1;
	}
	log_msg(LOG_INFO, "every pool is stopped; flushing clients");
	D.state = PLOTD_FLUSHING;
	flush_deadline_ms = plotd_now_ms() + FLUSH_GRACE_MS;
	kick_all_watches();
}

static int output_pending(void)
{
	for (struct conn *c = D.conns; c; c = c->next)
		if (proto_buf_pending(&c->out))
			return 1;
	return 0;
}

/* ---- notes, reload, signals, tick ------------------------------------------- */

static void on_prepared(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	(void)l;
	(void)ev;
	loop_eventfd_drain(w->fd);
	llm_on_prepared(&D);
}

/* Feed the watchers of every task the pools noted. Bounded to NOTES_BUDGET_MS
 * per loop iteration: what is left is noted again, so requests of other
 * clients are served in between however fast the streams run. */
static void on_notes(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	(void)l;
	(void)ev;
	loop_eventfd_drain(w->fd);
	size_t n = models_take_notes(&note_buf, &note_cap), i;
	uint64_t end = plotd_now_us() + NOTES_BUDGET_US;
	for (i = 0; i < n; i++) {
		if (i && note_buf[i] == note_buf[i - 1])
			continue;
		if ((i & 15) == 15 && plotd_now_us() > end)
			break;
		dispatch_task_event(&D, note_buf[i]);
	}
	for (; i < n; i++)
		models_renote(note_buf[i]);
}

static void *reload_main(void *arg)
{
	struct reload_job *rj = arg;
	size_t len;

	if (cfg_load(D.config_opt, &rj->cfg, rj->err, sizeof(rj->err)) < 0) {
		rj->cfg = NULL;
	} else if (resolve_allow(rj->cfg, &rj->uids, &rj->n_uids, &rj->gids, &rj->n_gids,
				 rj->err, sizeof(rj->err)) < 0 ||
		   cfg_dump(rj->cfg, &rj->text, &len) < 0) {
		if (!rj->err[0])
			snprintf(rj->err, sizeof(rj->err), "cannot dump the config");
		cfg_free(rj->cfg);
		rj->cfg = NULL;
	}
	loop_eventfd_signal(reload_efd);
	return NULL;
}

static void start_reload(void)
{
	if (R.running) {
		R.again = 1;
		return;
	}
	free(R.uids);
	free(R.gids);
	free(R.text);
	memset(&R, 0, sizeof(R));
	if (pthread_create(&R.thread, NULL, reload_main, &R) != 0) {
		log_msg(LOG_ERROR, "config reload: cannot start a thread");
		return;
	}
	R.running = 1;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Whether the executor would start the same: what a reload cannot change. */
static int same_model_shape(const struct cfg_model *a, const struct model *m)
{
	const struct cfg_params *p = &a->params, *q = &m->params;
	if (a->executor != m->executor)
		return 0;
	if (a->executor == CFG_EXEC_SYNTHETIC)
		return p->tokens_per_sec == q->tokens_per_sec;
	return same_str(a->path, m->path) && !strcmp(p->device, q->device) &&
	       p->kvcache_mem_mb == q->kvcache_mem_mb && p->block_size == q->block_size &&
	       p->max_num_seqs == q->max_num_seqs && p->max_batch_tokens == q->max_batch_tokens &&
	       p->context_length == q->context_length &&
	       p->kv_type == q->kv_type;
}

static void reload_models(const struct cfg *c)
{
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *cm = &c->models[i];
		struct model *m = models_find(&D.models, cm->name);
		if (!m) {
			log_msg(LOG_WARN, "config reload: new model %s needs a restart", cm->name);
			continue;
		}
		if (!same_model_shape(cm, m))
			log_msg(LOG_WARN, "config reload: executor, path or params of model %s "
				"changed; they apply only on restart", cm->name);
		models_set_lot(m, &cm->lot, "config reload");
	}
	for (size_t i = 0; i < D.models.n; i++)
		if (!cfg_model_find(c, D.models.v[i].name))
			log_msg(LOG_WARN, "config reload: model %s is gone from the config; it "
				"stays until a restart", D.models.v[i].name);
}

static void reload_daemon(struct cfg *c)
{
	if (!D.log_level_forced && c->daemon.log_level != log_get_level()) {
		log_msg(LOG_INFO, "config reload: log_level %s -> %s",
			log_level_name(log_get_level()), log_level_name(c->daemon.log_level));
		log_set_level(c->daemon.log_level);
	}
	if ((R.n_uids || R.n_gids) != (D.n_allow_uids || D.n_allow_gids))
		log_msg(LOG_WARN, "config reload: the socket's mode follows allow_users/"
			"allow_groups being empty or not; that changes only on restart");
	if (R.n_uids != D.n_allow_uids || R.n_gids != D.n_allow_gids ||
	    memcmp(R.uids, D.allow_uids, R.n_uids * sizeof(uid_t)) ||
	    memcmp(R.gids, D.allow_gids, R.n_gids * sizeof(gid_t)))
		log_msg(LOG_INFO, "config reload: allow_users/allow_groups now %zu users, "
			"%zu groups", R.n_uids, R.n_gids);
	free(D.allow_uids);
	free(D.allow_gids);
	D.allow_uids = R.uids;
	D.allow_gids = R.gids;
	D.n_allow_uids = R.n_uids;
	D.n_allow_gids = R.n_gids;
	R.uids = NULL;
	R.gids = NULL;
}

static void on_reloaded(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	char err[256];

	(void)l;
	(void)ev;
	loop_eventfd_drain(w->fd);
	pthread_join(R.thread, NULL);
	R.running = 0;
	if (!R.cfg) {
		log_msg(LOG_ERROR, "config reload failed, keeping the running config: %s", R.err);
	} else {
		reload_models(R.cfg);
		reload_daemon(R.cfg);
		cfg_free(D.cfg);
		D.cfg = R.cfg;
		R.cfg = NULL;
		free(D.config_text);
		D.config_text = R.text;
		R.text = NULL;
		log_msg(LOG_INFO, "config reloaded from %s", D.cfg->source);
	}
	if (log_open(NULL, err, sizeof(err)) < 0) /* reopen: log rotation */
		log_msg(LOG_ERROR, "log file: %s", err);
	if (R.again)
		start_reload();
}

static void on_signal(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)ev;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_msg(LOG_INFO, "SIGHUP: reloading the config");
			start_reload();
		} else {
			plotd_start_stop(&D, 0, O.drain_secs,
					 si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		}
	}
}

static void on_accept(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	(void)l;
	(void)w;
	(void)ev;
	conn_accept_all(&D);
}

static void on_tick(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	(void)l;
	(void)ev;
	loop_eventfd_drain(w->fd); /* a timerfd reads the same way */
}

static void before_sleep(struct loop *l, void *ctx)
{
	(void)ctx;
	conn_flush_pending(&D);
	conn_reap(&D);
	if (D.state == PLOTD_FLUSHING &&
	    ((!output_pending() && !watch_count()) || plotd_now_ms() > flush_deadline_ms))
		loop_stop(l);
}

/* ---- startup ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: plotd [--config F] [--socket P] [--log-file F] [--log-level L]\n"
		"             [--pid-file F] [--drain-timeout SECS] [--max-client-output BYTES]\n"
		"       plotd --check-config [--config F]\n"
		"       plotd --help | --version\n"
		"Runs in the foreground. See plotd(8).\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "drain-timeout", required_argument, NULL, 'd' },
		{ "max-client-output", required_argument, NULL, 'o' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	char *end;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': O.config = optarg; break;
		case 's': O.socket = optarg; break;
		case 'l': O.log_file = optarg; break;
		case 'L': O.log_level = optarg; break;
		case 'p': O.pid_file = optarg; break;
		case 'C': O.check_config = 1; break;
		case 'd':
			O.drain_secs = strtod(optarg, &end);
			if (*end || !(O.drain_secs > 0 && O.drain_secs <= 86400)) {
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
			O.out_cap = (size_t)v;
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
	if (O.log_level && log_level_parse(O.log_level) < 0) {
		fprintf(stderr, "plotd: --log-level: expected error|warn|info|debug, got '%s'\n",
			O.log_level);
		return EXIT_USAGE;
	}
	return 0;
}

static int check_config(void)
{
	struct cfg *c;
	char err[1024], *text;
	size_t len;

	if (cfg_load(O.config, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "plotd: %s\n", err);
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

static int write_pid_file(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(pid_path, sizeof(pid_path), "%s", path);
	return 0;
}

static int add_fd(struct loop_watch *w, int fd, loop_fn fn)
{
	w->fd = fd;
	w->fn = fn;
	return fd < 0 ? -1 : loop_add(D.loop, w, EPOLLIN);
}

static int setup_loop(const sigset_t *sigs)
{
	D.loop = loop_new();
	if (!D.loop)
		return -1;
	int nfd = loop_eventfd_new();
	models_notes_init(nfd);
	int pfd = loop_eventfd_new();
	llm_prepared_init(pfd);
	stop_efd = loop_eventfd_new();
	reload_efd = loop_eventfd_new();
	int tfd = loop_timerfd_new();
	if (add_fd(&D.sig_w, signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC), on_signal) < 0 ||
	    add_fd(&D.note_w, nfd, on_notes) < 0 ||
	    add_fd(&D.prep_w, pfd, on_prepared) < 0 ||
	    add_fd(&D.stop_w, stop_efd, on_stopped) < 0 ||
	    add_fd(&D.reload_w, reload_efd, on_reloaded) < 0 ||
	    add_fd(&D.tick_w, tfd, on_tick) < 0 ||
	    loop_timerfd_arm(tfd, TICK_MS, TICK_MS) < 0)
		return -1;
	loop_set_before_sleep(D.loop, before_sleep, NULL);
	return 0;
}

static const char *socket_path(char *buf, size_t len, char *err, size_t errlen)
{
	const char *opt = O.socket;
	if (!opt && !getenv("PLOT_SOCKET") && D.cfg->daemon.socket)
		opt = D.cfg->daemon.socket;
	return client_socket_path(opt, buf, len, err, errlen) < 0 ? NULL : buf;
}

static int startup(const sigset_t *sigs, char *err, size_t errlen)
{
	char path[4096];
	const char *lf = O.log_file ? O.log_file : D.cfg->daemon.log_file;

	if (lf && log_open(lf, err, errlen) < 0)
		return 1;
	if (O.log_level) {
		log_set_level(log_level_parse(O.log_level));
		D.log_level_forced = 1;
	} else {
		log_set_level(D.cfg->daemon.log_level);
	}
	if (resolve_allow(D.cfg, &D.allow_uids, &D.n_allow_uids, &D.allow_gids,
			  &D.n_allow_gids, err, errlen) < 0)
		return EXIT_CONFIG;
	if (!socket_path(path, sizeof(path), err, errlen))
		return 1;
	if (setup_loop(sigs) < 0 || watch_table_init(1024) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		return 1;
	}
	if (lsn_open(&D.lsn, path, D.n_allow_uids || D.n_allow_gids, err, errlen) < 0)
		return 1;
	if (add_fd(&D.lsn_w, D.lsn.fd, on_accept) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		return 1;
	}
	if (models_init(&D.models, D.cfg, &D, err, errlen) < 0)
		return 1;
	if ((O.pid_file || D.cfg->daemon.pid_file) &&
	    write_pid_file(O.pid_file ? O.pid_file : D.cfg->daemon.pid_file, err, errlen) < 0)
		return 1;
	return 0;
}

static int load_config(char *err, size_t errlen)
{
	size_t len;

	D.config_opt = O.config;
	if (cfg_load(O.config, &D.cfg, err, errlen) < 0)
		return EXIT_CONFIG;
	if (cfg_dump(D.cfg, &D.config_text, &len) < 0) {
		snprintf(err, errlen, "cannot dump the config");
		return 1;
	}
	return 0;
}

static void teardown(void)
{
	if (R.running)
		pthread_join(R.thread, NULL);
	if (S.running)
		pthread_join(S.thread, NULL);
	if (R.cfg)
		cfg_free(R.cfg);
	free(R.uids);
	free(R.gids);
	free(R.text);
	conn_close_all(&D);
	models_free(&D.models);
	lsn_close(&D.lsn);
	if (pid_path[0])
		unlink(pid_path);
	watch_table_free();
	models_notes_free();
	llm_prepared_free();
	free(note_buf);
	if (D.loop)
		loop_free(D.loop);
	free(D.allow_uids);
	free(D.allow_gids);
	free(D.config_text);
	if (D.cfg)
		cfg_free(D.cfg);
}

int main(int argc, char **argv)
{
	char err[1024] = "";
	sigset_t sigs;

	int rc = parse_args(argc, argv);
	if (rc)
		return rc;
	if (O.check_config)
		return check_config();
	/* Before any thread exists: only the loop's signalfd sees these. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	D.lsn.fd = D.lsn.lock_fd = -1;
	D.owner = geteuid();
	D.start_ms = plotd_now_ms();
	D.out_lim.max_frame = PROTO_MAX_FRAME_CLIENT;
	D.out_cap = O.out_cap;
	proto_limits_resolve(&D.in_lim);
	proto_limits_resolve(&D.out_lim);
	rc = load_config(err, sizeof(err));
	if (!rc)
		rc = startup(&sigs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "plotd: %s\n", err);
		if (log_is_file())
			log_msg(LOG_ERROR, "not started: %s", err);
		teardown();
		return rc;
	}
	log_msg(LOG_INFO, "plotd %s listening on %s (pid %d, uid %u, config %s)",
		PLOT_VERSION, D.lsn.path, (int)getpid(), (unsigned)D.owner, D.cfg->source);
	rc = loop_run(D.loop);
	if (rc < 0) {
		log_msg(LOG_ERROR, "event loop: %s", strerror(-rc));
		D.exit_code = 1;
	}
	teardown();
	log_msg(LOG_INFO, "plotd exited (status %d)", D.exit_code);
	log_close();
	return D.exit_code;
}
