/*
 * cmd-daemon.c — `plot daemon start|stop|restart|reload|status`.
 *
 *   start   starts plotd unless one answers (same lock as autostart, so it
 *           cannot race with autostarting clients) and returns once the
 *           socket answers. Already running is success.
 *   stop    asks plotd to drain (finish queued and running work, bounded
 *           by its own drain timeout) or, with --now, to cancel everything,
 *           then waits until the process is gone. Not running is success.
 *           --json prints what happened as one object.
 *   restart stop (draining, or --now), then start, with this client's
 *           --config (or $PLOT_CONFIG ...), not the old daemon's.
 *   reload  sends SIGHUP to the daemon's pid (from its hello): it re-reads
 *           its config file (plotd(8) says what a reload changes). Only a
 *           process allowed to signal plotd (its user, root) may; others
 *           get 77. Not running is 69.
 *   status  says whether plotd answers: exit 0 if it does, 69 (daemon
 *           unreachable) if not, so `plot daemon status && ...` works.
 *
 * --timeout SECS bounds every wait here (default 30). Waiting for the pid
 * to vanish is a bounded poll with backoff: the daemon's end is not an
 * event this process can block on (it is not our child).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd-impl.h"

#define DEFAULT_TIMEOUT 30.0

static const char *const daemon_verbs[] = {"start", "stop", "restart", "reload", "status", NULL};

static const struct plot_opt daemon_opts[] = {
	{"timeout", 0, 1, "SECS", "how long start/stop wait (default 30, 0.1..3600)", CMD_OPT_TIMEOUT},
	{"now", 0, 0, NULL, "stop, restart: cancel queued and running tasks instead of draining them", CMD_OPT_NOW},
	{NULL, 0, 0, NULL, NULL, 0},
};

struct dargs {
	double timeout;
	int now;
	char sock[PATH_MAX];
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Gone: no such process, or only a zombie left for its parent to reap. */
static int pid_gone(pid_t pid)
{
	char path[64], buf[256];
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void print_state(struct plot_ctx *ctx, const struct dargs *a, int running)
{
	const struct proto_hello *h = running ? client_server_hello(ctx->cl) : NULL;
	if (ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_obj(&j);
		cmd_json_key(&j, "running");
		cmd_json_bool(&j, running);
		cmd_json_key(&j, "socket");
		cmd_json_str(&j, a->sock);
		if (h) {
			cmd_json_key(&j, "pid");
			cmd_json_u64(&j, h->pid);
			cmd_json_key(&j, "agent");
			cmd_json_str(&j, h->agent);
			cmd_json_key(&j, "protocol");
			cmd_json_u64(&j, h->version);
		}
		cmd_json_obj_end(&j);
		cmd_json_end(&j);
	} else if (h) {
		printf("plotd is running: pid %u, %s, socket %s\n", h->pid,
		       h->agent ? h->agent : "plotd", a->sock);
	} else {
		printf("plotd is not running (socket %s)\n", a->sock);
	}
}

/* Connect without starting anything: 0 connected, 1 nobody there, else an
 * exit status (printed). */
static int probe(struct plot_ctx *ctx, const struct dargs *a)
{
	char err[512];
	int rc = client_connect(a->sock, NULL, &ctx->cl, err, sizeof(err));
	if (rc == 0)
		return 0;
	ctx->cl = NULL;
	if (rc == -PROTO_E_UNREACHABLE)
		return 1;
	cmd_err(ctx, "%s", err);
	return client_exit_for_code(rc);
}

static int daemon_status(struct plot_ctx *ctx, struct dargs *a)
{
	int rc = probe(ctx, a);
	if (rc > 1)
		return rc;
	print_state(ctx, a, rc == 0);
	return rc == 0 ? CMD_EXIT_OK : CMD_EXIT_UNREACHABLE;
}

static int daemon_start(struct plot_ctx *ctx, struct dargs *a)
{
	int started;
	int rc = cmd_autostart(ctx, a->sock, (int)(a->timeout * 1000), &started);
	if (rc)
		return rc;
	const struct proto_hello *h = client_server_hello(ctx->cl);
	cmd_info(ctx, "%s plotd (pid %u) on %s", started ? "started" : "already running:",
		 h->pid, a->sock);
	if (ctx->json)
		print_state(ctx, a, 1);
	return CMD_EXIT_OK;
}

/* After the stop request: wait for the connection to close, then for the pid. */
static int wait_gone(struct plot_ctx *ctx, pid_t pid, long long deadline)
{
	char err[256];
	for (;;) {
		struct proto_msg m;
		memset(&m, 0, sizeof(m));
		long long left = deadline - mono_ms();
		int rc = client_recv(ctx->cl, &m, left > 0 ? (int)left : 0, err, sizeof(err));
		proto_msg_clear(&m);
		if (rc < 0 && rc != -PROTO_E_INTR)
			break; /* EOF (the daemon went away), or the time is up */
	}
	long delay = 1;
	while (!pid_gone(pid)) {
		if (mono_ms() >= deadline) {
			cmd_err(ctx, "plotd (pid %d) is still running", (int)pid);
			return CMD_EXIT_FAIL;
		}
		struct timespec ts = {0, delay * 1000000L};
		nanosleep(&ts, NULL);
		delay = delay * 2 > 100 ? 100 : delay * 2;
	}
	return CMD_EXIT_OK;
}

/* stop --json: {"stopped":BOOL,"was_running":BOOL,"pid":N|null,"mode":S,"socket":S} */
static void print_stopped(struct plot_ctx *ctx, const struct dargs *a, int was_running,
			  pid_t pid, int stopped)
{
	struct cmd_json j;
	if (!ctx->json)
		return;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "stopped");
	cmd_json_bool(&j, stopped);
	cmd_json_key(&j, "was_running");
	cmd_json_bool(&j, was_running);
	cmd_json_key(&j, "pid");
	if (was_running)
		cmd_json_u64(&j, (uint64_t)pid);
	else
		cmd_json_null(&j);
	cmd_json_key(&j, "mode");
	cmd_json_str(&j, a->now ? "now" : "drain");
	cmd_json_key(&j, "socket");
	cmd_json_str(&j, a->sock);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

static int daemon_stop(struct plot_ctx *ctx, struct dargs *a)
{
	struct proto_msg req, reply;
	long long deadline = mono_ms() + (long long)(a->timeout * 1000);
	int rc = probe(ctx, a);
	if (rc == 1) {
		cmd_info(ctx, "plotd is not running (socket %s)", a->sock);
		print_stopped(ctx, a, 0, 0, 1);
		return CMD_EXIT_OK;
	}
	if (rc)
		return rc;
	pid_t pid = (pid_t)client_server_hello(ctx->cl)->pid;
	proto_msg_init(&req, a->now ? PROTO_T_SHUTDOWN : PROTO_T_DRAIN, 0);
	memset(&reply, 0, sizeof(reply));
	rc = cmd_call(ctx, &req, &reply);
	proto_msg_clear(&reply);
	if (rc)
		return rc;
	rc = pid > 0 ? wait_gone(ctx, pid, deadline) : CMD_EXIT_OK;
	if (rc == 0)
		cmd_info(ctx, "stopped plotd (pid %d)", (int)pid);
	print_stopped(ctx, a, 1, pid, rc == 0);
	return rc;
}

static int daemon_restart(struct plot_ctx *ctx, struct dargs *a)
{
	int rc = daemon_stop(ctx, a);
	if (rc)
		return rc;
	if (ctx->cl) {
		client_free(ctx->cl);
		ctx->cl = NULL;
	}
	return daemon_start(ctx, a);
}

static int daemon_reload(struct plot_ctx *ctx, struct dargs *a)
{
	struct proto_msg req, reply;
	int rc = probe(ctx, a);
	if (rc == 1) {
		cmd_err(ctx, "plotd is not running (socket %s)", a->sock);
		return CMD_EXIT_UNREACHABLE;
	}
	if (rc)
		return rc;
	pid_t pid = (pid_t)client_server_hello(ctx->cl)->pid;
	proto_msg_init(&req, PROTO_T_CONFIG, 0);
	memset(&reply, 0, sizeof(reply));
	if ((rc = cmd_call(ctx, &req, &reply)) != 0)
		return rc;
	if (pid <= 0 || kill(pid, SIGHUP) < 0) {
		int e = pid <= 0 ? ESRCH : errno;
		cmd_err(ctx, "cannot signal plotd (pid %d): %s", (int)pid, strerror(e));
		proto_msg_clear(&reply);
		return e == EPERM ? CMD_EXIT_PERM : CMD_EXIT_FAIL;
	}
	cmd_info(ctx, "plotd (pid %d) re-reads %s; its log says what changed", (int)pid,
		 reply.u.config.source ? reply.u.config.source : "<built-in>");
	proto_msg_clear(&reply);
	return CMD_EXIT_OK;
}

static int daemon_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct dargs a = {.timeout = DEFAULT_TIMEOUT};
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == CMD_OPT_NOW)
			a.now = 1;
		else if (r == CMD_OPT_TIMEOUT &&
			 cmd_parse_double(ctx, "--timeout", arg, 0.1, 3600, &a.timeout))
			return CMD_EXIT_USAGE;
	}
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p);
	if (argc - i != 1)
		return cmd_usage_error(ctx, "needs one of start, stop, restart, reload, status");
	if (a.now && strcmp(argv[i], "stop") != 0 && strcmp(argv[i], "restart") != 0)
		return cmd_usage_error(ctx, "--now goes with stop or restart");
	if ((r = cmd_socket_path(ctx, a.sock, sizeof(a.sock))) != 0)
		return r;
	if (!strcmp(argv[i], "start"))
		return daemon_start(ctx, &a);
	if (!strcmp(argv[i], "stop"))
		return daemon_stop(ctx, &a);
	if (!strcmp(argv[i], "restart"))
		return daemon_restart(ctx, &a);
	if (!strcmp(argv[i], "reload"))
		return daemon_reload(ctx, &a);
	if (!strcmp(argv[i], "status"))
		return daemon_status(ctx, &a);
	return cmd_usage_error(ctx, "unknown verb '%s' (start, stop, restart, reload, status)", argv[i]);
}

const struct plot_cmd cmd_daemon_entry = {
	.name = "daemon",
	.args = "start | stop | restart | reload | status",
	.summary = "Start, stop, restart, reload or query plotd.",
	.opts = daemon_opts,
	.verbs = daemon_verbs,
	.exec = daemon_exec,
};
