/*
 * proto-io.c — moving frames over a socket: the incremental reader used by
 * the daemon's epoll loop, and blocking send/recv helpers for clients.
 *
 * The reader keeps unconsumed bytes in a proto_buf. It looks at a length
 * prefix as soon as four bytes are there and refuses an oversized frame at
 * once, before its body arrives, so a client cannot make the daemon buffer
 * more than max_frame + one read. A framing error (TOO_LARGE, MALFORMED) is
 * sticky: the byte stream cannot be resynchronised. A field error (INVALID)
 * consumes its frame and is not sticky.
 *
 * Blocking helpers never sleep to wait: they poll() the fd with the time
 * left, and report EINTR as -PROTO_E_INTR without losing buffered bytes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto-impl.h"

#define READ_CHUNK 65536

void proto_reader_init(struct proto_reader *r, const struct proto_limits *lim)
{
	memset(r, 0, sizeof *r);
	if (lim)
		r->lim = *lim;
	proto_limits_resolve(&r->lim);
	proto_buf_init(&r->buf);
}

void proto_reader_free(struct proto_reader *r)
{
	proto_buf_free(&r->buf);
	memset(r, 0, sizeof *r);
}

int proto_reader_feed(struct proto_reader *r, const void *data, size_t len)
{
	return proto_buf_append(&r->buf, data, len);
}

/* Bytes still missing from the frame being read (at least 1 when unknown). */
static size_t missing(const struct proto_reader *r)
{
	size_t have = proto_buf_pending(&r->buf);
	if (have < 4)
		return 4 - have;
	const unsigned char *p = (const unsigned char *)r->buf.data + r->buf.off;
	size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (n > r->lim.max_frame)
		return 1;
	return have >= 4 + n ? 1 : 4 + n - have;
}

int proto_reader_fill(struct proto_reader *r, int fd, char *err, size_t errlen)
{
	size_t want = missing(r);
	if (want < READ_CHUNK)
		want = READ_CHUNK;
	if (proto_buf_reserve(&r->buf, want)) {
		snprintf(err, errlen, "out of memory reading a frame");
		return -PROTO_E_NOMEM;
	}
	ssize_t n = read(fd, r->buf.data + r->buf.len, want);
	if (n > 0) {
		r->buf.len += (size_t)n;
		return (int)n;
	}
	if (n == 0) {
		snprintf(err, errlen, "connection closed by peer");
		return -PROTO_E_EOF;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -PROTO_E_AGAIN;
	if (errno == EINTR)
		return -PROTO_E_INTR;
	if (errno == ECONNRESET) {
		snprintf(err, errlen, "connection reset by peer");
		return -PROTO_E_EOF;
	}
	snprintf(err, errlen, "read: %s", strerror(errno));
	return -PROTO_E_IO;
}

int proto_reader_next(struct proto_reader *r, struct proto_msg *out,
		      char *err, size_t errlen)
{
	if (r->failed) {
		snprintf(err, errlen, "stream already failed: %s", proto_code_name(r->failed));
		return r->failed;
	}
	size_t have = proto_buf_pending(&r->buf);
	if (have < 4)
		return 0;
	const unsigned char *p = (const unsigned char *)r->buf.data + r->buf.off;
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (n > r->lim.max_frame) {
		snprintf(err, errlen, "frame at stream offset %llu: length %u exceeds max_frame %u",
			 (unsigned long long)r->offset, (unsigned)n, (unsigned)r->lim.max_frame);
		return r->failed = -PROTO_E_TOO_LARGE;
	}
	if (have - 4 < n)
		return 0;
	int rc = proto_decode(p + 4, n, &r->lim, out, err, errlen);
	proto_buf_consume(&r->buf, 4 + (size_t)n);
	r->offset += 4 + (uint64_t)n;
	if (rc == -PROTO_E_MALFORMED || rc == -PROTO_E_TOO_LARGE)
		r->failed = rc;
	return rc ? rc : 1;
}

/* ---- blocking ----------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll() fd for events with the time left until deadline (-1 = forever).
 * 1 ready, 0 timed out, -PROTO_E_INTR, -PROTO_E_IO. */
static int wait_fd(int fd, short events, int64_t deadline, char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int left = -1;
	if (deadline >= 0) {
		int64_t d = deadline - now_ms();
		left = d <= 0 ? 0 : d > 86400000 ? 86400000 : (int)d;
	}
	int rc = poll(&pfd, 1, left);
	if (rc > 0)
		return 1;
	if (rc == 0)
		return 0;
	if (errno == EINTR)
		return -PROTO_E_INTR;
	snprintf(err, errlen, "poll: %s", strerror(errno));
	return -PROTO_E_IO;
}

static ssize_t write_some(int fd, const char *p, size_t len)
{
	ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
	if (n < 0 && errno == ENOTSOCK)
		n = write(fd, p, len);
	return n;
}

int proto_write_all(int fd, const void *data, size_t len, char *err, size_t errlen)
{
	const char *p = data;
	while (len) {
		ssize_t n = write_some(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(fd, POLLOUT, -1, err, errlen);
			if (rc < 0 && rc != -PROTO_E_INTR)
				return rc;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			snprintf(err, errlen, "connection closed by peer");
			return -PROTO_E_EOF;
		}
		snprintf(err, errlen, "write: %s", n < 0 ? strerror(errno) : "wrote nothing");
		return -PROTO_E_IO;
	}
	return 0;
}

int proto_send(int fd, const struct proto_msg *m, const struct proto_limits *lim,
	       char *err, size_t errlen)
{
	struct proto_buf b;
	proto_buf_init(&b);
	int rc = proto_encode(m, lim, &b, err, errlen);
	if (!rc)
		rc = proto_write_all(fd, b.data, b.len, err, errlen);
	proto_buf_free(&b);
	return rc;
}

int proto_recv(int fd, struct proto_reader *r, struct proto_msg *out,
	       int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		int rc = proto_reader_next(r, out, err, errlen);
		if (rc == 1)
			return 0;
		if (rc < 0)
			return rc;
		rc = wait_fd(fd, POLLIN, deadline, err, errlen);
		if (rc == 0) {
			snprintf(err, errlen, "no reply within %d ms", timeout_ms);
			return -PROTO_E_TIMEOUT;
		}
		if (rc < 0)
			return rc;
		rc = proto_reader_fill(r, fd, err, errlen);
		if (rc < 0 && rc != -PROTO_E_AGAIN)
			return rc;
	}
}
