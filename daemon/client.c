/*
 * client.c — one client connection: accepting it, reading frames, queuing
 * replies and stream events, flushing, closing.
 *
 * DESIGN
 *   Input goes through a proto_reader bounded by the daemon's input limits
 *   (frame, string, array, map, depth). A frame that breaks them, or that is
 *   not msgpack, gets one err reply; once it is flushed our side is
 *   half-closed (the peer reads the error, then EOF, and a write of its own
 *   racing our refusal does not fail), and the connection is closed when the
 *   peer closes or after CONN_CLOSE_GRACE_MS; a well-formed request
 *   with a bad field gets an err reply and the connection goes on. Nothing a
 *   client sends can affect another client.
 *
 *   Output is appended to a per-connection buffer and written at the end of
 *   each loop iteration (the pending-write list), or when the socket becomes
 *   writable. Replies are always queued, but while more than the cap (--max-client-output) is
 *   pending we stop reading requests (so a pipelining client throttles
 *   itself). Stream events (chunk/end) that would go past the cap drop
 *   the client instead: a subscriber that stops reading must not hold the
 *   daemon's memory, and its task goes on.
 *
 *   client.c knows no request: each decoded frame goes to the on_request
 *   hook (dispatch), who a peer is comes from the peer_role hook, and a
 *   closing connection tells on_close, which drops what dispatch hung on it
 *   (watches, and the cancel of a run client's task). So nothing here
 *   includes a layer above it.
 *
 *   Memory: besides the per-connection bounds (max_frame for a request,
 *   --max-client-output for pending output) all connections together may
 *   hold at most daemon.max_input_mb of request bytes (counted as what the
 *   readers have reserved beyond BUF_KEEP each, so small requests always
 *   get through) and daemon.max_output_mb of output buffers. A
 *   connection whose input would pass the total gets TOO_LARGE and is
 *   closed; past the output total requests wait (the backlog) and a
 *   subscriber that would add more is dropped. A frame that has started
 *   arriving must be complete within daemon.frame_timeout_secs, else
 *   TIMEOUT and close: 200 stalled partial frames cannot pin 200 MiB.
 *   Emptied buffers over BUF_KEEP are released at once.
 *
 *   At the fd limit (EMFILE/ENFILE) accept stops: the listen fd leaves the
 *   epoll set (no spin on a level-triggered event that cannot be served),
 *   one warning is logged, and it is watched again when a connection
 *   closes or, for fds freed elsewhere, ACCEPT_RETRY_MS later (the tick).
 *
 *   Closing never frees at once: the connection is marked dead and freed in
 *   the before-sleep hook (conn_reap), so an event batch or the
 *   pending-write list never points at freed memory.
 *
 * INVARIANTS
 *   A live connection is on s->list; a dead one only on the reap list.
 *   EPOLLOUT is in c->events iff a write hit EAGAIN (c->blocked) and has
 *   not been completed since; c->want_out iff c is on the pending-write list.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

#define CONN_READS_PER_EVENT 16
#define BUF_KEEP (64u << 10)  /* an empty buffer larger than this is released */
#define ACCEPT_RETRY_MS 1000

static void conn_event(struct loop *l, struct loop_watch *w, uint32_t events);
static void conn_update_events(struct conn *c);
static void backlog_remove(struct conn *c);
static void partial_mark(struct conn *c, uint64_t before);

static void conn_link(struct conns *s, struct conn *c)
{
	c->next = s->list;
	c->prev = NULL;
	if (s->list)
		s->list->prev = c;
	s->list = c;
	s->n++;
}

static void conn_unlink(struct conns *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	s->n--;
}

static struct conn *conn_new(struct conns *s, int fd, const struct peer *pr)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->lw.fd = fd;
	c->lw.fn = conn_event;
	c->peer = *pr;
	c->num = ++s->next_num;
	c->role = s->hooks.peer_role(s->hooks.role_ctx, pr);
	proto_reader_init(&c->rd, &s->in_lim);
	proto_buf_init(&c->out);
	c->events = EPOLLIN;
	if (loop_add(s->loop, &c->lw, c->events) < 0) {
		proto_reader_free(&c->rd);
		free(c);
		return NULL;
	}
	conn_link(s, c);
	return c;
}

static void conn_accept_one(struct conns *s, int fd, const struct peer *pr)
{
	struct conn *c = conn_new(s, fd, pr);
	if (!c) {
		log_msg(LOG_ERROR, "client: out of memory, closing a new connection");
		close(fd);
		return;
	}
	if (c->role == ROLE_NONE) {
		log_msg(LOG_WARN, "client %llu: refused uid %u (pid %d): not the daemon's "
			"user, not in allow_users/allow_groups",
			(unsigned long long)c->num, (unsigned)pr->uid, (int)pr->pid);
		struct proto_msg req;
		proto_msg_init(&req, PROTO_T_HELLO, 0);
		conn_error(c, &req, PROTO_E_PERMISSION,
			   "permission denied: uid %u may not use this plotd (owner uid %u)",
			   (unsigned)pr->uid, (unsigned)s->owner);
		conn_close_after_flush(c);
		return;
	}
	log_msg(LOG_DEBUG, "client %llu: connected (uid %u pid %d%s)",
		(unsigned long long)c->num, (unsigned)pr->uid, (int)pr->pid,
		c->role == ROLE_OWNER ? "" : ", allowed user");
}

/* Out of fds: stop watching the listen fd until a connection closes. */
static void accept_pause(struct conns *s, int e)
{
	if (!s->accept_paused && s->lsn_w && loop_mod(s->loop, s->lsn_w, 0) == 0) {
		s->accept_paused = 1;
		s->accept_paused_ms = conn_now_ms();
	}
	if (!s->accept_warned)
		log_msg(LOG_WARN, "accept: %s with %zu clients connected: new connections wait "
			"until one closes", strerror(e), s->n);
	s->accept_warned = 1;
}

static void accept_resume(struct conns *s)
{
	if (s->accept_paused && loop_mod(s->loop, s->lsn_w, EPOLLIN) == 0)
		s->accept_paused = 0;
}

void conn_accept_all(struct conns *s)
{
	struct peer pr;

	for (int i = 0; i < 64; i++) {
		int fd = lsn_accept(s->lsn, &pr);
		if (fd < 0) {
			int e = errno;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
				accept_pause(s, e);
			else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR &&
				 e != ECONNABORTED)
				log_msg(LOG_WARN, "accept: %s", strerror(e));
			return;
		}
		if (s->accept_warned)
			log_msg(LOG_INFO, "accept: accepting connections again");
		s->accept_warned = 0;
		conn_accept_one(s, fd, &pr);
	}
}

static void want_write(struct conn *c)
{
	if (c->want_out || c->blocked || c->dead)
		return; /* listed already, or EPOLLOUT will flush */
	c->want_out = 1;
	c->wnext = c->s->pending_write;
	c->s->pending_write = c;
}

/* Keep s->in_total / s->out_total equal to the sum over connections. */
static void in_account(struct conn *c)
{
	if (!proto_buf_pending(&c->rd.buf) && c->rd.buf.cap > BUF_KEEP) {
		free(c->rd.buf.data);
		proto_buf_init(&c->rd.buf);
	}
	/* Each connection's first BUF_KEEP are free: small requests always get
	 * through, only large frames compete for daemon.max_input_mb. */
	size_t now = c->dead || c->rd.buf.cap <= BUF_KEEP ? 0 : c->rd.buf.cap;
	c->s->in_total = c->s->in_total - c->in_acct + now;
	c->in_acct = now;
}

static void out_account(struct conn *c)
{
	if (!proto_buf_pending(&c->out) && c->out.cap > BUF_KEEP)
		proto_buf_free(&c->out);
	size_t now = c->dead ? 0 : c->out.cap;
	c->s->out_total = c->s->out_total - c->out_acct + now;
	c->out_acct = now;
}

static int out_full(const struct conns *s)
{
	return s->out_total_cap && s->out_total > s->out_total_cap;
}

void conn_set_caps(struct conns *s, uint64_t frame_timeout_secs, uint64_t max_input_mb,
		   uint64_t max_output_mb)
{
	s->frame_timeout_ms = frame_timeout_secs * 1000;
	s->in_total_cap = (size_t)max_input_mb << 20;
	s->out_total_cap = (size_t)max_output_mb << 20;
}

int conn_send(struct conn *c, const struct proto_msg *m)
{
	char err[256];

	if (c->dead)
		return -1;
	int rc = proto_encode(m, &c->s->out_lim, &c->out, err, sizeof(err));
	if (rc < 0) {
		log_msg(LOG_ERROR, "client %llu: cannot encode %s reply: %s",
			(unsigned long long)c->num, proto_type_name(m->type), err);
		if (m->type == PROTO_T_ERR)
			return rc; /* never recurse on a failing error */
		struct proto_msg req;
		proto_msg_init(&req, m->op ? m->op : PROTO_T_PING, m->id);
		conn_error(c, &req, -rc == PROTO_E_TOO_LARGE ? PROTO_E_TOO_LARGE
							     : PROTO_E_INTERNAL,
			   "reply not sent: %s", err);
		return rc;
	}
	out_account(c);
	want_write(c);
	return 0;
}

/* Queue a stream event; a subscriber that is too far behind is dropped. */
int conn_send_stream(struct conn *c, const struct proto_msg *m)
{
	if (c->dead)
		return -1;
	if (proto_buf_pending(&c->out) > c->s->out_cap) {
		log_msg(LOG_WARN, "client %llu: dropped: %zu bytes of output pending "
			"(cap %zu); it stopped reading its stream, the task goes on",
			(unsigned long long)c->num, proto_buf_pending(&c->out), c->s->out_cap);
		conn_close(c, NULL, 0);
		return -1;
	}
	if (out_full(c->s)) {
		log_msg(LOG_WARN, "client %llu: dropped: plotd's pending output of all clients "
			"is over daemon.max_output_mb (%zu MiB); the task goes on",
			(unsigned long long)c->num, c->s->out_total_cap >> 20);
		conn_close(c, NULL, 0);
		return -1;
	}
	if (conn_send(c, m) < 0) { /* keep "-1 means c is closed" for callers */
		conn_close(c, "stream event not encodable", 0);
		return -1;
	}
	return 0;
}

void conn_error(struct conn *c, const struct proto_msg *req, int code,
		const char *fmt, ...)
{
	struct proto_msg m;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (proto_msg_err(&m, req, code, "%s", msg) < 0) {
		conn_close(c, "out of memory", 0);
		return;
	}
	log_msg(LOG_DEBUG, "client %llu: %s -> %s: %s", (unsigned long long)c->num,
		proto_type_name(req->type), proto_code_name(code), msg);
	conn_send(c, &m);
	proto_msg_clear(&m);
}

uint64_t conn_now_ms(void)
{
	return loop_now_ns() / 1000000;
}

struct conn *conn_by_num(struct conns *s, uint64_t num)
{
	for (struct conn *c = s->list; c; c = c->next)
		if (c->num == num && !c->dead && !c->closing)
			return c;
	return NULL;
}

int conn_output_pending(const struct conns *s)
{
	for (const struct conn *c = s->list; c; c = c->next)
		if (proto_buf_pending(&c->out))
			return 1;
	return 0;
}

/* Tasks this connection submitted without detach: a subscription to one of
 * them makes this a `run` client, whose disconnect cancels the task. */
void conn_remember_run(struct conn *c, uint64_t task)
{
	if (c->n_runs == c->cap_runs) {
		size_t cap = c->cap_runs ? 2 * c->cap_runs : 16;
		uint64_t *r = realloc(c->runs, cap * sizeof *r);
		if (!r) {
			log_msg(LOG_ERROR, "client %llu: out of memory: task %llu will not be "
				"cancelled when the client goes", (unsigned long long)c->num,
				(unsigned long long)task);
			return;
		}
		c->runs = r;
		c->cap_runs = cap;
	}
	c->runs[c->n_runs++] = task;
}

/* Newest first: a run client subscribes right after it submits. */
int conn_is_run(struct conn *c, uint64_t task)
{
	for (size_t i = c->n_runs; i-- > 0;)
		if (c->runs[i] == task)
			return 1;
	return 0;
}

/* Close now. cancel_runs: the client went away, so cancel the tasks it was
 * running (not when we drop it for being slow). why NULL: already logged. */
void conn_close(struct conn *c, const char *why, int cancel_runs)
{
	if (c->dead)
		return;
	if (why)
		log_msg(LOG_DEBUG, "client %llu: closed: %s", (unsigned long long)c->num, why);
	c->s->hooks.on_close(c->s->hooks.ctx, c, cancel_runs);
	if (c->backlog)
		backlog_remove(c);
	loop_del(c->s->loop, &c->lw);
	close(c->lw.fd);
	c->lw.fd = -1;
	accept_resume(c->s); /* an fd is free again */
	c->dead = 1;
	in_account(c);
	out_account(c);
	conn_unlink(c->s, c);
	c->next = c->s->dead;
	c->s->dead = c;
}

void conn_close_after_flush(struct conn *c)
{
	if (c->closing || c->dead)
		return;
	c->closing = 1;
	c->closing_since_ms = conn_now_ms();
	conn_update_events(c);
	want_write(c);
}

static void conn_update_events(struct conn *c)
{
	uint32_t ev = 0;
	if (c->closing || proto_buf_pending(&c->out) <= c->s->out_cap)
		ev |= EPOLLIN; /* closing: read to discard and to see the EOF */
	if (c->blocked)
		ev |= EPOLLOUT;
	if (ev != c->events) {
		c->events = ev;
		loop_mod(c->s->loop, &c->lw, ev);
	}
}

/* Write what is pending. Returns 0, or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (proto_buf_pending(&c->out)) {
		ssize_t n = send(c->lw.fd, c->out.data + c->out.off,
				 proto_buf_pending(&c->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			proto_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			out_account(c);
			c->blocked = 1; /* EPOLLOUT resumes */
			conn_update_events(c);
			return 0;
		}
		conn_close(c, n < 0 ? strerror(errno) : "write returned 0", 1);
		return -1;
	}
	c->blocked = 0;
	out_account(c);
	if (c->closing && !c->shut_wr) {
		/* Half-close: the peer reads our error and EOF, and its own pending
		 * writes (a hello racing our refusal) still succeed. We close when
		 * it does, or after the grace period. */
		shutdown(c->lw.fd, SHUT_WR);
		c->shut_wr = 1;
	}
	conn_update_events(c);
	return 0;
}

void conn_flush_pending(struct conns *s)
{
	struct conn *c = s->pending_write;
	s->pending_write = NULL;
	while (c) {
		struct conn *next = c->wnext;
		c->wnext = NULL;
		c->want_out = 0;
		if (!c->dead)
			conn_flush(c);
		c = next;
	}
}

/* Answer a frame the reader refused, then close (the stream cannot be
 * resynchronised), except for INVALID: that request alone was bad. */
static void conn_bad_frame(struct conn *c, const struct proto_msg *m, int rc,
			   const char *err)
{
	struct proto_msg req;
	int code = -rc;

	proto_msg_init(&req, m->type > PROTO_T_NONE && m->type < PROTO_T_OK ? m->type
									   : PROTO_T_HELLO,
		       m->id);
	if (code != PROTO_E_INVALID)
		log_msg(LOG_WARN, "client %llu: bad frame, closing: %s: %s",
			(unsigned long long)c->num, proto_code_name(code), err);
	conn_error(c, &req, code, "%s", err);
	if (code != PROTO_E_INVALID)
		conn_close_after_flush(c);
}

static void conn_handle(struct conn *c, struct proto_msg *m)
{
	if (!c->hello && m->type != PROTO_T_HELLO) {
		conn_error(c, m, PROTO_E_INVALID,
			   "the first message must be hello, got %s", proto_type_name(m->type));
		conn_close_after_flush(c);
		return;
	}
	if (m->n_unknown) /* ignored, as the protocol says; a debug log shows them */
		log_msg(LOG_DEBUG, "client %llu: %s: ignored %u unknown key%s, the first '%s'",
			(unsigned long long)c->num, proto_type_name(m->type), m->n_unknown,
			m->n_unknown == 1 ? "" : "s", m->unknown);
	c->s->hooks.on_request(c->s->hooks.ctx, c, m);
}

static void backlog_add(struct conn *c)
{
	struct conns *s = c->s;
	if (c->backlog)
		return;
	c->backlog = 1;
	c->bnext = NULL;
	if (!s->backlog)
		s->backlog_tail = &s->backlog;
	*s->backlog_tail = c;
	s->backlog_tail = &c->bnext;
}

static void backlog_remove(struct conn *c)
{
	struct conns *s = c->s;
	struct conn **pp = &s->backlog, *prev = NULL;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->bnext;
	}
	if (*pp)
		*pp = c->bnext;
	if (s->backlog_tail == &c->bnext)
		s->backlog_tail = prev ? &prev->bnext : &s->backlog;
	c->backlog = 0;
	c->bnext = NULL;
}

/* Whether this iteration's request slice is spent (it starts with the
 * first request handled after the loop last slept). */
static int slice_spent(struct conns *s)
{
	uint64_t now;
	if (!s->slice_us)
		return 0;
	now = loop_now_ns() / 1000;
	if (!s->slice_end_us)
		s->slice_end_us = now + s->slice_us;
	return now > s->slice_end_us;
}

/* Decode and dispatch the complete frames in the reader while the slice
 * lasts (but at least min frames: a connection on the backlog gets one
 * request per round however busy the others are); what is left waits on
 * the backlog, also when the output is over its cap (the flush that drains
 * it lets the backlog go on). */
static void conn_process_min(struct conn *c, int min)
{
	char err[256];

	for (int done = 0; !c->dead && !c->closing; done++) {
		if ((done >= min && slice_spent(c->s)) ||
		    proto_buf_pending(&c->out) > c->s->out_cap || out_full(c->s)) {
			backlog_add(c);
			return;
		}
		struct proto_msg m;
		memset(&m, 0, sizeof(m));
		int rc = proto_reader_next(&c->rd, &m, err, sizeof(err));
		if (rc == 0)
			return;
		if (rc < 0) {
			conn_bad_frame(c, &m, rc, err);
			proto_msg_clear(&m);
			continue;
		}
		conn_handle(c, &m);
		proto_msg_clear(&m);
	}
}

static void conn_process(struct conn *c)
{
	conn_process_min(c, 0);
}

int conn_run_backlog(struct conns *s)
{
	struct conn *c = s->backlog;

	s->slice_end_us = 0;
	s->backlog = NULL;
	s->backlog_tail = &s->backlog;
	while (c) { /* each once: one put back goes on the new list */
		struct conn *next = c->bnext;
		c->backlog = 0;
		c->bnext = NULL;
		if (!c->dead) {
			uint64_t before = c->rd.offset;
			conn_process_min(c, 1);
			partial_mark(c, before);
			if (!c->dead)
				conn_update_events(c);
		}
		c = next;
	}
	s->slice_end_us = 0;
	return conn_backlog_runnable(s);
}

/* Whether a connection on the backlog can go on now: its output is under
 * the cap (an over-cap one waits for its flush). Asked again after the
 * pending writes: a flush that drained the output must not leave the
 * loop asleep with frames still buffered (the pipelining stall). */
int conn_backlog_runnable(const struct conns *s)
{
	if (out_full(s))
		return 0; /* a flush or a drop brings it down */
	for (const struct conn *c = s->backlog; c; c = c->bnext)
		if (!c->dead && proto_buf_pending(&c->out) <= s->out_cap)
			return 1;
	return 0;
}

/* Input over daemon.max_input_mb: TOO_LARGE, close, and its buffer goes. */
static int input_over_cap(struct conn *c)
{
	in_account(c);
	if (!c->s->in_total_cap || c->s->in_total <= c->s->in_total_cap)
		return 0;
	log_msg(LOG_WARN, "client %llu: closed: its partial frame of %zu bytes would put "
		"plotd's buffered input over daemon.max_input_mb (%zu MiB)",
		(unsigned long long)c->num, proto_buf_pending(&c->rd.buf),
		c->s->in_total_cap >> 20);
	struct proto_msg req;
	proto_msg_init(&req, PROTO_T_PING, 0);
	conn_error(c, &req, PROTO_E_TOO_LARGE, "plotd's input memory for all clients "
		   "(daemon.max_input_mb %zu MiB) is full: frame refused",
		   c->s->in_total_cap >> 20);
	conn_close_after_flush(c);
	proto_buf_consume(&c->rd.buf, proto_buf_pending(&c->rd.buf));
	in_account(c);
	return 1;
}

/* When the frame now arriving started (for daemon.frame_timeout_secs):
 * reset when a frame completed since before (a stream offset). Complete
 * frames waiting on the backlog are plotd's delay, not the client's. */
static void partial_mark(struct conn *c, uint64_t before)
{
	if (c->dead || !proto_buf_pending(&c->rd.buf) || c->backlog)
		c->partial_since_ms = 0;
	else if (!c->partial_since_ms || c->rd.offset != before)
		c->partial_since_ms = conn_now_ms();
}

static void conn_read(struct conn *c)
{
	char err[256];

	for (int i = 0; i < CONN_READS_PER_EVENT && !c->dead && !c->closing; i++) {
		if (c->backlog || proto_buf_pending(&c->out) > c->s->out_cap)
			break; /* its buffered frames go first (conn_run_backlog) */
		int rc = proto_reader_fill(&c->rd, c->lw.fd, err, sizeof(err));
		if (rc == -PROTO_E_AGAIN || rc == -PROTO_E_INTR)
			break;
		if (rc == -PROTO_E_EOF) {
			conn_process(c); /* frames that arrived before the EOF */
			conn_close(c, "client disconnected", 1);
			return;
		}
		if (rc < 0) {
			conn_close(c, err, 1);
			return;
		}
		if (input_over_cap(c))
			return;
		uint64_t before = c->rd.offset;
		conn_process(c);
		partial_mark(c, before);
	}
	if (!c->dead)
		conn_update_events(c);
}

static void conn_event(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct conn *c = (struct conn *)w; /* lw is the first member */

	(void)l;
	if (c->dead)
		return;
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->closing) { /* discard; we only wait to flush our error */
			char sink[4096];
			ssize_t n = read(c->lw.fd, sink, sizeof(sink));
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				conn_close(c, "closed after error", 0);
			return;
		}
		conn_read(c);
	}
}

static void conn_free(struct conn *c)
{
	proto_reader_free(&c->rd);
	proto_buf_free(&c->out);
	free(c->runs);
	free(c);
}

static void frame_timed_out(struct conn *c)
{
	struct proto_msg req;
	log_msg(LOG_WARN, "client %llu: closed: a frame (%zu bytes so far) was not completed "
		"within daemon.frame_timeout_secs (%llu s)", (unsigned long long)c->num,
		proto_buf_pending(&c->rd.buf), (unsigned long long)(c->s->frame_timeout_ms / 1000));
	proto_msg_init(&req, PROTO_T_PING, 0);
	conn_error(c, &req, PROTO_E_TIMEOUT, "frame not completed within %llu s: closing",
		   (unsigned long long)(c->s->frame_timeout_ms / 1000));
	conn_close_after_flush(c);
	proto_buf_consume(&c->rd.buf, proto_buf_pending(&c->rd.buf));
	in_account(c);
}

/* Free dead connections; close those that could not flush their final error
 * within the grace period. Called before the loop sleeps. */
void conn_reap(struct conns *s)
{
	uint64_t now = conn_now_ms();
	if (s->accept_paused && now - s->accept_paused_ms >= ACCEPT_RETRY_MS)
		accept_resume(s); /* fds may have been freed outside our connections */
	for (struct conn *c = s->list, *next; c; c = next) {
		next = c->next;
		if (c->closing && now - c->closing_since_ms > CONN_CLOSE_GRACE_MS)
			conn_close(c, "final error not read in time", 0);
		else if (!c->closing && !c->backlog && c->partial_since_ms && s->frame_timeout_ms &&
			 now - c->partial_since_ms > s->frame_timeout_ms)
			frame_timed_out(c);
	}
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->next;
		conn_free(c);
	}
}

void conn_close_all(struct conns *s)
{
	while (s->list)
		conn_close(s->list, "daemon exiting", 0);
	conn_reap(s);
}
