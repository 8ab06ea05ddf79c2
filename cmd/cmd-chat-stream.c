/*
 * cmd-chat-stream.c — one answer of `plot chat`: follow the task's chunks
 * to stdout, keep a copy for the conversation, and let Ctrl-C stop it.
 *
 * DESIGN
 *   Like cmd-stream.c (self-pipe, poll over the socket and the pipe, frames
 *   already buffered drained first), but the signal handlers live for the
 *   whole session, so a signal at the prompt is seen too, and a stopped
 *   answer is not the end of the program:
 *     - first SIGINT during an answer: a cancel is sent for the task and
 *       the loop waits (at most CANCEL_GRACE_MS) for its end event, so the
 *       copy of the answer is exactly what was printed;
 *     - a second signal, SIGTERM/SIGHUP, or the grace running out: exit
 *       130 at once (the task is attached, so the daemon cancels it when
 *       the connection goes).
 *
 * INVARIANTS
 *   - Chunks are written and flushed as they arrive; a->text is the same
 *     bytes, NUL-terminated.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd-chat.h"
#include "plot/pool.h"

#define CANCEL_GRACE_MS 5000

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t last_sig;
static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
#define N_CAUGHT (sizeof(caught) / sizeof(caught[0]))
static struct sigaction old_sa[N_CAUGHT];

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	last_sig = sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* pipe full: a signal is already pending */
	}
	errno = saved;
}

int chat_signals_install(void)
{
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask); /* no SA_RESTART: blocking calls return EINTR */
	for (size_t i = 0; i < N_CAUGHT; i++)
		sigaction(caught[i], &sa, &old_sa[i]);
	return 0;
}

void chat_signals_restore(void)
{
	for (size_t i = 0; i < N_CAUGHT; i++)
		sigaction(caught[i], &old_sa[i], NULL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

int chat_signal_fd(void)
{
	return sig_pipe[0];
}

int chat_signals_take(void)
{
	unsigned char b[16];
	ssize_t r;
	int n = 0;
	while ((r = read(sig_pipe[0], b, sizeof(b))) > 0)
		n += (int)r;
	return n;
}

double chat_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct cstream {
	struct plot_ctx *ctx;
	struct chat_answer *a;
	uint64_t task, sub_id;
	double t_submit, t_first;
	double grace_end;          /* after the cancel: give up at this time */
	int done, status;          /* status: 0, or the exit status to leave with */
	struct cmd_waitline wl;    /* the status line until the first chunk */
};

static int keep(struct chat_answer *a, const char *data, size_t len)
{
	if (a->len + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		while (cap < a->len + len + 1)
			cap *= 2;
		char *t = realloc(a->text, cap);
		if (!t)
			return -1;
		a->text = t;
		a->cap = cap;
	}
	memcpy(a->text + a->len, data, len);
	a->len += len;
	a->text[a->len] = '\0';
	return 0;
}

static void on_chunk(struct cstream *s, const struct proto_chunk *c)
{
	if (c->len == 0)
		return;
	cmd_waitline_end(&s->wl);
	if (s->a->chunks++ == 0) {
		s->t_first = chat_now();
		s->a->ttft = s->t_first - s->t_submit;
	}
	if (keep(s->a, c->data, c->len) < 0) {
		cmd_err(s->ctx, "out of memory");
		s->done = 1;
		s->status = CMD_EXIT_FAIL;
		return;
	}
	if (fwrite(c->data, 1, c->len, stdout) != c->len || fflush(stdout) != 0) {
		cmd_err(s->ctx, "writing the answer: %s", strerror(errno));
		s->done = 1;
		s->status = CMD_EXIT_FAIL;
	}
}

static void on_end(struct cstream *s, const struct proto_end *e)
{
	cmd_waitline_end(&s->wl);
	s->done = 1;
	s->a->state = e->state;
	if (s->a->chunks)
		s->a->secs = chat_now() - s->t_first;
	if (e->state == POOL_DONE || (e->state == POOL_CANCELLED && s->a->stopped))
		return;
	if (e->error && *e->error)
		cmd_err(s->ctx, "task %llu %s: %s", (unsigned long long)s->task,
			pool_state_name(e->state), e->error);
	else
		cmd_err(s->ctx, "task %llu %s", (unsigned long long)s->task,
			pool_state_name(e->state));
}

static void on_message(struct cstream *s, const struct proto_msg *m)
{
	if (cmd_waitline_take(&s->wl, m))
		return;
	switch (m->type) {
	case PROTO_T_CHUNK:
		on_chunk(s, &m->u.chunk);
		break;
	case PROTO_T_END:
		on_end(s, &m->u.end);
		break;
	case PROTO_T_ERR:
		if (m->id != s->sub_id)
			break; /* the cancel raced the end: no news */
		cmd_err(s->ctx, "%s", m->u.error.message ? m->u.error.message : "error");
		s->done = 1;
		s->status = client_exit_for_code(m->u.error.code);
		break;
	default:
		break;
	}
}

static int send_cancel(struct cstream *s)
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
	return 0;
}

static void on_interrupt(struct cstream *s)
{
	int n = chat_signals_take();
	if (n == 0)
		return;
	if (last_sig != SIGINT || s->a->stopped || n > 1 || send_cancel(s) < 0) {
		s->done = 1;
		s->status = CMD_EXIT_CANCELLED;
		return;
	}
	s->a->stopped = 1;
	s->grace_end = chat_now() + CANCEL_GRACE_MS / 1000.0;
}

static void on_frame(void *arg, const struct proto_msg *m)
{
	on_message(arg, m);
}

static int drain(struct cstream *s)
{
	return cmd_drain_frames(s->ctx, &s->done, on_frame, s);
}

static int wait_events(struct cstream *s)
{
	int timeout = -1, sig, rc;
	if (s->grace_end > 0) {
		double left = s->grace_end - chat_now();
		if (left <= 0) {
			s->done = 1;
			s->status = CMD_EXIT_CANCELLED;
			return 0;
		}
		timeout = (int)(left * 1000) + 1;
	}
	int wl = cmd_waitline_timeout(&s->wl);
	if (wl >= 0 && (timeout < 0 || wl < timeout))
		timeout = wl;
	if ((rc = cmd_wait_frames(s->ctx, sig_pipe[0], timeout, &sig)))
		return rc;
	on_interrupt(s); /* a no-op unless the pipe has bytes */
	cmd_waitline_tick(&s->wl);
	return 0;
}

int chat_stream(struct plot_ctx *ctx, uint64_t task, double t_submit,
		struct chat_answer *a)
{
	struct cstream s = {.ctx = ctx, .a = a, .task = task, .t_submit = t_submit};
	struct proto_msg m;
	char err[512];

	proto_msg_init(&m, PROTO_T_SUBSCRIBE, 0);
	m.u.task_ref.task = task;
	m.u.task_ref.follow = 1;
	if (client_send(ctx->cl, &m, err, sizeof(err)) < 0) {
		cmd_err(ctx, "%s", err);
		return CMD_EXIT_UNREACHABLE;
	}
	s.sub_id = m.id;
	cmd_waitline_init(&s.wl, ctx, task);
	on_interrupt(&s); /* Ctrl-C while the submit was on its way */
	int rc = 0;
	while (!s.done && rc == 0) {
		rc = drain(&s);
		if (rc == 0 && !s.done)
			rc = wait_events(&s);
	}
	cmd_waitline_end(&s.wl);
	return rc ? rc : s.status;
}
