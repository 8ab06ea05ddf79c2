/*
 * cmd-stream.c — following a task's output: `plot run` and `plot tail`.
 *
 * DESIGN
 *   A subscribe request replays the task's output from its first chunk and
 *   then follows it live until an "end" event carrying the final state;
 *   the exit status is that state's (client_exit_for_state).
 *
 *   Signals (SIGINT, SIGTERM, SIGHUP) use the self-pipe pattern: the
 *   handler only writes one byte to a non-blocking pipe. The read loop
 *   polls the socket and the pipe together, so a signal can never be lost
 *   between a check and a blocking call, and all real work (sending the
 *   cancel, printing) happens in the loop, not in the handler. Before each
 *   poll the loop drains frames the client has already buffered
 *   (client_recv with a zero timeout), since poll only sees the socket.
 *
 *   For `plot run` the first signal sends a cancel for the task on the
 *   same connection and waits (bounded, CANCEL_GRACE_MS) for the end event,
 *   so the output printed is complete up to the cancel; a second signal,
 *   or the grace running out, exits at once. The exit status is 130
 *   either way. `plot tail` only watches: a signal ends it with 130 and
 *   leaves the task alone.
 *
 *   Output that does not end with a newline gets one, on a tty or not
 *   (wc -l, `while read` and $(...) expect it). With --json the stream is
 *   JSON lines instead (cmd-events.c). When stdout is closed under us
 *   (`plot run ... | head -c 10`) the stream ends quietly with 141, as a
 *   process killed by SIGPIPE would; run cancels its task first.
 *
 * INVARIANTS
 *   - Chunks are written to stdout as they arrive and flushed per chunk.
 *   - The signal handlers are restored before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd-impl.h"
#include "plot/pool.h"

#define CANCEL_GRACE_MS 5000

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* pipe full: a signal is already pending, nothing to add */
	}
	errno = saved;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
#define N_CAUGHT (sizeof(caught) / sizeof(caught[0]))

static int signals_install(struct sigaction *old)
{
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask); /* no SA_RESTART: blocking calls return EINTR */
	for (size_t i = 0; i < N_CAUGHT; i++)
		sigaction(caught[i], &sa, &old[i]);
	return 0;
}

static void signals_restore(const struct sigaction *old)
{
	for (size_t i = 0; i < N_CAUGHT; i++)
		sigaction(caught[i], &old[i], NULL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct stream {
	struct plot_ctx *ctx;
	uint64_t task;
	uint64_t sub_id;           /* request id of the subscribe */
	int cancel_on_signal;
	int interrupted;           /* signals seen */
	long long grace_end;       /* after a cancel: give up waiting at this time */
	int done, status;          /* the exit status once done */
	int last_nl;               /* the last byte written was a newline */
	int wrote;
	struct cmd_waitline wl;    /* run: the status line until the first chunk */
	long long t0, t_first;     /* ms: the stream's start, its first chunk */
	uint64_t chunks;
};

static int send_cancel(struct stream *s);

/* 0, or the exit status once writing failed (stdout closed: 141). */
static int write_chunk(struct stream *s, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	cmd_waitline_end(&s->wl);
	if (s->chunks++ == 0)
		s->t_first = mono_ms();
	int rc = s->ctx->json ? cmd_event_chunk(s->ctx, s->task, data, len)
			      : cmd_write_out(s->ctx, data, len);
	if (rc) {
		if (s->cancel_on_signal)
			send_cancel(s); /* run: nobody reads the rest */
		return rc;
	}
	s->wrote = 1;
	s->last_nl = ((const char *)data)[len - 1] == '\n';
	return 0;
}

/* The end of the output: a newline if it lacks one, or the JSON end event.
 * 0 or an exit status. */
static int finish_output(struct stream *s, const struct proto_end *e)
{
	cmd_waitline_end(&s->wl);
	if (s->ctx->json)
		return cmd_event_end(s->ctx, e);
	if (s->wrote && !s->last_nl)
		return cmd_write_out(s->ctx, "\n", 1);
	return 0;
}

/* run --verbose: the figures chat --verbose prints, in the same words;
 * tokens as the daemon counted them when it did (else chunks). */
static void report_speed(struct stream *s, const struct proto_end *e)
{
	if (!s->ctx->verbose || !s->cancel_on_signal)
		return;
	double ttft = s->chunks ? (double)(s->t_first - s->t0) / 1000.0 : 0;
	double secs = s->chunks ? (double)(mono_ms() - s->t_first) / 1000.0 : 0;
	double tps = s->chunks > 1 && secs > 0 ? (double)(s->chunks - 1) / secs : 0;
	fprintf(stderr, "[task %llu: %llu tokens, time to first token %.3f s, %.1f tok/s%s]\n",
		(unsigned long long)s->task, (unsigned long long)(e->tokens ? e->tokens : s->chunks),
		ttft, tps,
		s->interrupted ? ", stopped" : "");
}

static void report_end(struct stream *s, const struct proto_end *e)
{
	const char *name = pool_state_name(e->state);
	cmd_waitline_end(&s->wl);
	report_speed(s, e);
	if (e->state == POOL_DONE || !POOL_STATE_TERMINAL(e->state))
		return;
	if (e->state == POOL_CANCELLED && s->interrupted && s->ctx->quiet)
		return;
	if (e->error && *e->error)
		cmd_err(s->ctx, "task %llu %s: %s", (unsigned long long)s->task, name, e->error);
	else
		cmd_err(s->ctx, "task %llu %s", (unsigned long long)s->task, name);
}

/* One message from the daemon. Sets s->done when the stream is over. */
static void on_message(struct stream *s, const struct proto_msg *m)
{
	int rc;
	if (cmd_waitline_take(&s->wl, m))
		return;
	switch (m->type) {
	case PROTO_T_CHUNK:
		if ((rc = write_chunk(s, m->u.chunk.data, m->u.chunk.len))) {
			s->done = 1;
			s->status = rc;
		}
		break;
	case PROTO_T_END:
		rc = finish_output(s, &m->u.end);
		if (rc != CMD_EXIT_PIPE)
			report_end(s, &m->u.end);
		s->done = 1;
		s->status = rc ? rc
			  : s->interrupted ? CMD_EXIT_CANCELLED
			  : POOL_STATE_TERMINAL(m->u.end.state) ? client_exit_for_state(m->u.end.state)
			  : CMD_EXIT_OK;
		break;
	case PROTO_T_ERR:
		/* An error for the cancel (the task ended meanwhile) is no news;
		 * one for the subscribe ends the stream. */
		if (m->id != s->sub_id)
			break;
		cmd_err(s->ctx, "%s", m->u.error.message ? m->u.error.message : "error");
		s->done = 1;
		s->status = client_exit_for_code(m->u.error.code);
		break;
	default:
		break; /* ok replies to subscribe and cancel */
	}
}

static int send_cancel(struct stream *s)
{
	struct proto_msg m;
	char err[512];
	proto_msg_init(&m, PROTO_T_CANCEL, 0);
	m.u.cancel.tasks = &s->task;
	m.u.cancel.n_tasks = 1;
	if (client_send(s->ctx->cl, &m, err, sizeof(err)) < 0) {
		cmd_err(s->ctx, "cannot cancel task %llu: %s", (unsigned long long)s->task, err);
		return -1;
	}
	if (s->interrupted)
		cmd_info(s->ctx, "cancelling task %llu", (unsigned long long)s->task);
	return 0;
}

/* A signal arrived: decide what it means. */
static void on_interrupt(struct stream *s)
{
	unsigned char b[16];
	while (read(sig_pipe[0], b, sizeof(b)) > 0)
		;
	s->interrupted++;
	if (!s->cancel_on_signal || s->interrupted > 1 || send_cancel(s) < 0) {
		s->done = 1;
		s->status = CMD_EXIT_CANCELLED;
		return;
	}
	s->grace_end = mono_ms() + CANCEL_GRACE_MS;
}

int cmd_drain_frames(struct plot_ctx *ctx, const int *done, cmd_frame_fn fn, void *arg)
{
	char err[512];
	while (!*done) {
		struct proto_msg m;
		memset(&m, 0, sizeof(m));
		int rc = client_recv(ctx->cl, &m, 0, err, sizeof(err));
		if (rc == -PROTO_E_TIMEOUT || rc == -PROTO_E_INTR || rc == -PROTO_E_AGAIN)
			return 0;
		if (rc < 0) {
			proto_msg_clear(&m);
			cmd_err(ctx, "%s", err);
			return rc == -PROTO_E_EOF ? CMD_EXIT_UNREACHABLE : client_exit_for_code(rc);
		}
		fn(arg, &m);
		proto_msg_clear(&m);
	}
	return 0;
}

static void on_frame(void *arg, const struct proto_msg *m)
{
	on_message(arg, m);
}

static int drain(struct stream *s)
{
	return cmd_drain_frames(s->ctx, &s->done, on_frame, s);
}

int cmd_wait_frames(struct plot_ctx *ctx, int sigfd, int timeout_ms, int *signalled)
{
	struct pollfd pfd[2] = {
		{.fd = client_fd(ctx->cl), .events = POLLIN},
		{.fd = sigfd, .events = POLLIN},
	};
	*signalled = 0;
	if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR) {
		cmd_err(ctx, "poll: %s", strerror(errno));
		return CMD_EXIT_FAIL;
	}
	*signalled = (pfd[1].revents & POLLIN) != 0;
	return 0;
}

static int wait_events(struct stream *s)
{
	int timeout = -1, sig, rc;
	if (s->grace_end) {
		long long left = s->grace_end - mono_ms();
		if (left <= 0) {
			s->done = 1;
			s->status = CMD_EXIT_CANCELLED;
			return 0;
		}
		timeout = (int)left;
	}
	int wl = cmd_waitline_timeout(&s->wl);
	if (wl >= 0 && (timeout < 0 || wl < timeout))
		timeout = wl;
	if ((rc = cmd_wait_frames(s->ctx, sig_pipe[0], timeout, &sig)))
		return rc;
	if (sig)
		on_interrupt(s);
	cmd_waitline_tick(&s->wl);
	return 0;
}

static int stream_loop(struct stream *s)
{
	while (!s->done) {
		int rc = drain(s);
		if (rc)
			return s->interrupted ? CMD_EXIT_CANCELLED : rc;
		if (s->done)
			break;
		rc = wait_events(s);
		if (rc)
			return rc;
	}
	return s->status;
}

int cmd_stream(struct plot_ctx *ctx, uint64_t task, int follow, int cancel_on_signal)
{
	struct stream s = {.ctx = ctx, .task = task, .cancel_on_signal = cancel_on_signal,
			   .last_nl = 1};
	struct sigaction old[N_CAUGHT];
	struct proto_msg m;
	char err[512];

	int rc = cmd_connect(ctx);
	if (rc)
		return rc;
	cmd_waitline_init(&s.wl, ctx, task);
	s.wl.on &= cancel_on_signal; /* tail only watches, silently */
	s.t0 = mono_ms();
	if (signals_install(old) < 0) {
		cmd_err(ctx, "pipe: %s", strerror(errno));
		return CMD_EXIT_FAIL;
	}
	proto_msg_init(&m, PROTO_T_SUBSCRIBE, 0);
	m.u.task_ref.task = task;
	m.u.task_ref.follow = follow;
	if (client_send(ctx->cl, &m, err, sizeof(err)) < 0) {
		cmd_err(ctx, "%s", err);
		rc = CMD_EXIT_UNREACHABLE;
	} else {
		s.sub_id = m.id;
		rc = stream_loop(&s);
	}
	cmd_waitline_end(&s.wl);
	signals_restore(old);
	return rc;
}
