/*
 * cmd-connect.c — reaching plotd: connect, autostart, request/reply.
 *
 * DESIGN
 *   - A command that needs the daemon calls cmd_connect(). When no daemon
 *     answers and autostart is allowed (no --no-autostart, no
 *     PLOT_NO_AUTOSTART=1), plot starts one, as tmux does: take an flock on
 *     "<socket>.start.lock" (plotd itself holds "<socket>.lock" while it runs, so
 *     the client's lock is a different file), try to connect again (another client may have
 *     started it while we waited for the lock), and only then spawn plotd.
 *     The lock is held until the new daemon answers, so two clients racing
 *     start exactly one daemon; the loser finds it on its second try.
 *   - plotd is looked for next to the running plot binary first (so a build
 *     tree and an install both work), then on PATH. It is started in its
 *     own session (Ctrl-C in the terminal does not reach it) with stdin
 *     from /dev/null and stdout/stderr appended to "<socket>.log", and with
 *     --socket (the path we resolved) and --config passed through.
 *   - Readiness is a bounded poll: connect attempts with backoff (1 ms
 *     doubling to 50 ms) until the socket answers, the child exits (its
 *     log is shown and its status mapped: 78 stays 78), or the timeout.
 *
 * INVARIANTS
 *   - Every error is printed here once and returned as an exit status.
 *   - The lock file descriptor is closed on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd-impl.h"
#include "plot/fsafe.h"

#define START_TIMEOUT_MS 10000

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cmd_socket_path(struct plot_ctx *ctx, char *out, size_t len)
{
	char err[256];
	if (client_socket_path(ctx->socket_opt, out, len, err, sizeof(err)) < 0) {
		cmd_err(ctx, "%s", err);
		return CMD_EXIT_USAGE;
	}
	return 0;
}

/* Create the socket's directory (one level, 0700) so the lock can live in
 * it; an existing one must be ours, a real directory, not writable by
 * others (someone else's directory is never written to). Returns 0 or an
 * exit status (printed). */
static int ensure_dir(struct plot_ctx *ctx, const char *sock)
{
	char dir[PATH_MAX], err[512];
	if (fsafe_dirname(sock, dir, sizeof dir) < 0 || !strcmp(dir, "/"))
		return 0;
	if (fsafe_mkdir(dir, 0700, err, sizeof err) < 0) {
		cmd_err(ctx, "cannot start plotd: %s", err);
		return errno == EPERM ? CLIENT_EXIT_PERMISSION : CMD_EXIT_UNREACHABLE;
	}
	return 0;
}

/* The plotd to run: next to /proc/self/exe if there is one, else "plotd"
 * (looked up on PATH by execvp). */
static void find_plotd(char *out, size_t len)
{
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/plotd", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "plotd");
}

/* In the child: detach and exec plotd. Never returns. A private daemon
 * (-m PATH) gets SIGTERM when plot dies, however it dies. */
static void exec_plotd(const char *plotd, const char *sock, const char *config, int logfd,
		       pid_t adhoc_parent)
{
	const char *argv[8];
	int i = 0;
	argv[i++] = plotd;
	argv[i++] = "--socket";
	argv[i++] = sock;
	if (config) {
		argv[i++] = "--config";
		argv[i++] = config;
	}
	argv[i] = NULL;
	setsid();
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0)
		dup2(nul, STDIN_FILENO);
	if (logfd >= 0) {
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
	}
	signal(SIGPIPE, SIG_DFL);
	if (adhoc_parent && (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != adhoc_parent))
		_exit(1); /* plot is already gone: nobody would stop this daemon */
	execvp(plotd, (char *const *)argv);
	dprintf(STDERR_FILENO, "plot: cannot run %s: %s\n", plotd, strerror(errno));
	_exit(127);
}

/* Copy what the daemon wrote to its log since offset to our stderr. */
static void show_log(const char *logpath, off_t from)
{
	char buf[4096];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (lseek(fd, from, SEEK_SET) == from) {
		ssize_t n;
		size_t total = 0;
		while ((n = read(fd, buf, sizeof(buf))) > 0 && total < 65536) {
			total += (size_t)n;
			if (write(STDERR_FILENO, buf, (size_t)n) < 0)
				break;
		}
	}
	close(fd);
}

/* Try to connect once. 0 connected, NOBODY nobody there, else an exit
 * status (printed). NOBODY is not an exit status: a failure that maps to
 * exit 1 (a daemon that died during the handshake) must not read as
 * "nobody there", or plot would autostart a daemon it was told not to. */
#define NOBODY (-1)
static int try_connect(struct plot_ctx *ctx, const char *sock, int quiet_unreachable)
{
	char err[512];
	struct client_opts o = { .named = client_socket_named(ctx->socket_opt) };
	int rc = client_connect(sock, &o, &ctx->cl, err, sizeof(err));
	if (rc == 0)
		return 0;
	ctx->cl = NULL;
	if (rc == -PROTO_E_UNREACHABLE && quiet_unreachable)
		return NOBODY;
	cmd_err(ctx, "%s", err);
	return client_exit_for_code(rc);
}

struct spawn {
	pid_t pid;
	char log[PATH_MAX];
	off_t log_off;
};

/* The config path made absolute, so a SIGHUP reload of the daemon reads
 * the same file whatever its working directory; as given if that fails
 * (a missing file is for plotd to report). */
static const char *config_abs(const char *path, char *buf, size_t len)
{
	if (!path || len < PATH_MAX || !realpath(path, buf))
		return path;
	return buf;
}

static int spawn_plotd(struct plot_ctx *ctx, const char *sock, struct spawn *sp)
{
	char plotd[PATH_MAX], cfg[PATH_MAX];
	find_plotd(plotd, sizeof(plotd));
	snprintf(sp->log, sizeof(sp->log), "%s.log", sock);
	char err[512];
	int logfd = fsafe_open(sp->log, O_WRONLY | O_CREAT | O_APPEND, 0600, err, sizeof err);
	if (logfd < 0) {
		cmd_err(ctx, "cannot start plotd: log %s", err);
		return errno == EPERM || errno == ELOOP ? CLIENT_EXIT_PERMISSION : CMD_EXIT_UNREACHABLE;
	}
	sp->log_off = logfd >= 0 ? lseek(logfd, 0, SEEK_END) : 0;
	if (ctx->verbose)
		cmd_info(ctx, "starting %s --socket %s", plotd, sock);
	fflush(NULL);
	pid_t parent = getpid();
	sp->pid = fork();
	if (sp->pid == 0)
		exec_plotd(plotd, sock, config_abs(ctx->config_opt, cfg, sizeof(cfg)), logfd,
			   ctx->adhoc ? parent : 0);
	if (logfd >= 0)
		close(logfd);
	if (sp->pid < 0) {
		cmd_err(ctx, "cannot start plotd: fork: %s", strerror(errno));
		return CMD_EXIT_UNREACHABLE;
	}
	return 0;
}

/* The child ended before answering: say why and map its status. */
static int spawn_died(struct plot_ctx *ctx, const struct spawn *sp, int status)
{
	show_log(sp->log, sp->log_off);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CMD_EXIT_CONFIG) {
		cmd_err(ctx, "plotd refused its configuration");
		return CMD_EXIT_CONFIG;
	}
	if (WIFEXITED(status))
		cmd_err(ctx, "plotd exited with status %d before it answered", WEXITSTATUS(status));
	else
		cmd_err(ctx, "plotd died of signal %d before it answered", WTERMSIG(status));
	return CMD_EXIT_UNREACHABLE;
}

/* Poll until the new daemon answers, dies, or timeout_ms passes. */
static int wait_ready(struct plot_ctx *ctx, const char *sock, const struct spawn *sp,
		      int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	long delay = 1;
	for (;;) {
		int rc = try_connect(ctx, sock, 1);
		if (rc != NOBODY)
			return rc;
		int status;
		if (waitpid(sp->pid, &status, WNOHANG) == sp->pid) {
			/* Another plotd (not started by a plot) may have won. */
			if (try_connect(ctx, sock, 1) == 0)
				return 0;
			return spawn_died(ctx, sp, status);
		}
		if (now_ms() >= deadline) {
			cmd_err(ctx, "plotd (pid %d) did not answer on %s within %d ms; see %s",
				(int)sp->pid, sock, timeout_ms, sp->log);
			return CMD_EXIT_UNREACHABLE;
		}
		sleep_ms(delay);
		delay = delay * 2 > 50 ? 50 : delay * 2;
	}
}

/* Under the lock: connect if someone else started it, else start it. */
static int start_locked(struct plot_ctx *ctx, const char *sock, int timeout_ms, int *started)
{
	struct spawn sp;
	int rc = try_connect(ctx, sock, 1);
	if (rc != NOBODY)
		return rc;
	rc = spawn_plotd(ctx, sock, &sp);
	if (rc)
		return rc;
	*started = 1;
	if (cmd_waitline_wanted(ctx))
		cmd_waitline_show("starting plotd (pid %d) on %s", (int)sp.pid, sock);
	rc = wait_ready(ctx, sock, &sp, timeout_ms);
	cmd_waitline_clear();
	return rc;
}

int cmd_autostart(struct plot_ctx *ctx, const char *sock, int timeout_ms, int *started)
{
	char lock[PATH_MAX];
	char err[512];
	*started = 0;
	int rc = ensure_dir(ctx, sock);
	if (rc)
		return rc;
	snprintf(lock, sizeof(lock), "%s.start.lock", sock);
	int fd = fsafe_open(lock, O_RDWR | O_CREAT, 0600, err, sizeof err);
	if (fd < 0) {
		cmd_err(ctx, "cannot start plotd: lock %s", err);
		return errno == EPERM || errno == ELOOP ? CLIENT_EXIT_PERMISSION : CMD_EXIT_UNREACHABLE;
	}
	/* Blocking is bounded: the holder gives up after its own timeout. */
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			cmd_err(ctx, "cannot lock %s: %s", lock, strerror(errno));
			close(fd);
			return CMD_EXIT_UNREACHABLE;
		}
	}
	rc = start_locked(ctx, sock, timeout_ms > 0 ? timeout_ms : START_TIMEOUT_MS, started);
	close(fd); /* releases the lock */
	return rc;
}

/* --config names one file and the daemon that answers runs with another:
 * its settings, not the file's, apply, and the user should know. The check
 * costs a round trip, so only with --config; a daemon this call started
 * has the file already. */
static void check_config(struct plot_ctx *ctx)
{
	struct proto_msg req, reply;
	char err[256], want[PATH_MAX], have[PATH_MAX];
	proto_msg_init(&req, PROTO_T_CONFIG, 0);
	if (client_call(ctx->cl, &req, &reply, 5000, err, sizeof(err)) < 0) {
		proto_msg_clear(&reply);
		return; /* the command's own request will meet the problem */
	}
	const char *src = reply.u.config.source ? reply.u.config.source : "<built-in>";
	const char *w = config_abs(ctx->config_opt, want, sizeof(want));
	const char *h = *src == '/' && realpath(src, have) ? have : src;
	if (strcmp(w, h))
		cmd_info(ctx, "note: plotd (pid %u) already runs with the config %s, not %s; "
			 "plot daemon restart --config %s uses it",
			 client_server_hello(ctx->cl)->pid, src, ctx->config_opt, ctx->config_opt);
	proto_msg_clear(&reply);
}

int cmd_connect(struct plot_ctx *ctx)
{
	char sock[PATH_MAX];
	int started;
	if (ctx->cl)
		return 0;
	int rc = cmd_socket_path(ctx, sock, sizeof(sock));
	if (rc)
		return rc;
	rc = try_connect(ctx, sock, !ctx->no_autostart);
	if (rc == 0 && ctx->config_opt)
		check_config(ctx);
	if (rc != NOBODY)
		return rc;
	rc = cmd_autostart(ctx, sock, 0, &started);
	if (rc == 0 && started && ctx->verbose)
		cmd_info(ctx, "started plotd on %s", sock);
	return rc;
}

int cmd_call(struct plot_ctx *ctx, struct proto_msg *req, struct proto_msg *reply)
{
	char err[512];
	int rc = cmd_connect(ctx);
	if (rc)
		return rc;
	rc = client_call(ctx->cl, req, reply, -1, err, sizeof(err));
	if (rc == 0)
		return 0;
	if (rc == -PROTO_E_INTR)
		return CMD_EXIT_CANCELLED;
	cmd_err(ctx, "%s", err);
	return client_exit_for_code(rc);
}
