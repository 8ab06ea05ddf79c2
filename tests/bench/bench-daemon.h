/*
 * bench-daemon.h — shared by the plotd benchmarks (header-only, static):
 * start a private plotd on a temporary socket with a given config, stop it,
 * and a pipelined non-blocking frame client.
 *
 * The daemon is started from the bin dir given on the command line (the
 * Makefile passes the build under test) with --log-level warn, so the
 * figures measure the control plane rather than the log.
 */
#ifndef BENCH_DAEMON_H
#define BENCH_DAEMON_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plot/proto.h"

struct bench_daemon {
	char dir[64];
	char sock[100];
	pid_t pid;
};

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t bench_child; /* the plotd we started, killed if we die */

static inline void bench_die(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	if (bench_child > 0)
		kill(bench_child, SIGKILL);
	exit(1);
}

static inline int bench_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Start plotd with config text; returns once it accepts connections
 * (bounded: 10 s). */
static inline void bench_daemon_start(struct bench_daemon *bd, const char *plotd,
				      const char *config)
{
	char cfg[128], log[128];

	snprintf(bd->dir, sizeof(bd->dir), "/tmp/plot-bench.XXXXXX");
	if (!mkdtemp(bd->dir))
		bench_die("mkdtemp");
	if (snprintf(bd->sock, sizeof(bd->sock), "%s/run/plotd.sock", bd->dir) >= (int)sizeof(bd->sock))
		bench_die("path too long");
	snprintf(cfg, sizeof(cfg), "%s/plot.yaml", bd->dir);
	snprintf(log, sizeof(log), "%s/plotd.log", bd->dir);
	FILE *f = fopen(cfg, "w");
	if (!f || fputs(config, f) < 0 || fclose(f) != 0)
		bench_die("cannot write the config");
	bd->pid = fork();
	bench_child = bd->pid;
	if (bd->pid == 0) {
		/* a sqlite store in the bench's own directory: never the user's
		 * database, which the user's plotd may hold locked */
		setenv("XDG_STATE_HOME", bd->dir, 1);
		execl(plotd, plotd, "--config", cfg, "--socket", bd->sock, "--log-level", "warn",
		      "--log-file", log, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) { /* bounded poll for startup */
		int fd = bench_connect(bd->sock);
		if (fd >= 0) {
			close(fd);
			return;
		}
		if (waitpid(bd->pid, NULL, WNOHANG) == bd->pid)
			bench_die("plotd exited at startup (see its log in /tmp/plot-bench.*)");
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	bench_die("plotd did not start in 10 s");
}

static inline void bench_daemon_stop(struct bench_daemon *bd)
{
	char cmd[600];

	kill(bd->pid, SIGTERM);
	kill(bd->pid, SIGINT); /* second signal: cancel whatever is left */
	waitpid(bd->pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bd->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", bd->dir);
}

/* ---- a pipelined client: one fd, an output buffer, a frame reader ------- */

struct pclient {
	int fd;
	struct proto_reader rd;
	struct proto_buf out;
};

static inline void pc_init(struct pclient *pc, int fd)
{
	struct proto_limits lim = { .max_frame = PROTO_MAX_FRAME_CLIENT };
	pc->fd = fd;
	proto_reader_init(&pc->rd, &lim);
	proto_buf_init(&pc->out);
}

static inline void pc_free(struct pclient *pc)
{
	proto_reader_free(&pc->rd);
	proto_buf_free(&pc->out);
	close(pc->fd);
}

static inline void pc_queue(struct pclient *pc, const struct proto_msg *m)
{
	char err[256];
	struct proto_limits lim = { .max_frame = PROTO_MAX_FRAME_CLIENT };
	if (proto_encode(m, &lim, &pc->out, err, sizeof(err)) < 0)
		bench_die(err);
}

/* Write what can be written without blocking. */
static inline void pc_flush(struct pclient *pc)
{
	while (proto_buf_pending(&pc->out)) {
		ssize_t n = send(pc->fd, pc->out.data + pc->out.off, proto_buf_pending(&pc->out),
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			proto_buf_consume(&pc->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		bench_die("send failed");
	}
}

/* Wait for input (or writability) up to timeout_ms, read once. Returns 1 if
 * bytes were read, 0 on timeout. */
static inline int pc_poll_read(struct pclient *pc, int timeout_ms)
{
	char err[256];
	struct pollfd p = { pc->fd, POLLIN | (proto_buf_pending(&pc->out) ? POLLOUT : 0), 0 };

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (p.revents & POLLOUT)
		pc_flush(pc);
	if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	int rc = proto_reader_fill(&pc->rd, pc->fd, err, sizeof(err));
	if (rc == -PROTO_E_AGAIN || rc == -PROTO_E_INTR)
		return 0;
	if (rc < 0)
		bench_die(rc == -PROTO_E_EOF ? "the server closed the connection" : err);
	return 1;
}

/* Next decoded frame: 1 and *m filled (clear it), 0 if none buffered. */
static inline int pc_next(struct pclient *pc, struct proto_msg *m)
{
	char err[256];
	int rc = proto_reader_next(&pc->rd, m, err, sizeof(err));
	if (rc < 0)
		bench_die(err);
	return rc;
}

static inline void pc_hello(struct pclient *pc)
{
	struct proto_msg m, r;

	proto_msg_init(&m, PROTO_T_HELLO, 1);
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.agent = "bench";
	pc_queue(pc, &m);
	pc_flush(pc);
	for (;;) {
		if (pc_next(pc, &r)) {
			if (r.type == PROTO_T_ERR)
				bench_die("hello refused");
			proto_msg_clear(&r);
			return;
		}
		pc_poll_read(pc, 1000);
	}
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of n samples, sorting them in place. */
static inline double bench_pct(double *v, size_t n, double q)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

#endif
