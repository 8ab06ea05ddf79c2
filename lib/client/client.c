/*
 * client.c — the client side of the protocol: socket path resolution,
 * connect + hello, request/reply matching by id, stream reads, and the one
 * table from protocol codes / task states to the CLI's exit statuses.
 *
 * A struct client owns its fd and a proto_reader; it is used by one thread.
 * Request ids start at 1 and increase; 0 is never assigned by us.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "plot/pool.h"
#include "plot/client.h"
#include "plot/version.h"

struct client {
	int fd;
	uint64_t next_id;
	struct proto_limits lim;
	struct proto_reader rd;
	struct proto_hello server;
	char server_agent[128];
};

/* ---- exit codes --------------------------------------------------------- */

static const struct {
	int code;
	int exit;
} exit_map[] = {
	{ PROTO_OK, CLIENT_EXIT_OK },
	{ PROTO_E_QUEUE_FULL, CLIENT_EXIT_TEMPFAIL },
	{ PROTO_E_CAPACITY, CLIENT_EXIT_TEMPFAIL },
	{ PROTO_E_PERMISSION, CLIENT_EXIT_PERMISSION },
	{ PROTO_E_CONFIG, CLIENT_EXIT_CONFIG },
	{ PROTO_E_TIMEOUT, CLIENT_EXIT_TIMEOUT },
	{ PROTO_E_CANCELLED, CLIENT_EXIT_CANCELLED },
	{ PROTO_E_UNREACHABLE, CLIENT_EXIT_UNREACHABLE },
	{ PROTO_E_STORE, CLIENT_EXIT_STORE },
};

int client_exit_for_code(int code)
{
	if (code < 0)
		code = -code;
	for (size_t i = 0; i < sizeof exit_map / sizeof exit_map[0]; i++)
		if (exit_map[i].code == code)
			return exit_map[i].exit;
	return CLIENT_EXIT_FAIL;
}

int client_exit_for_state(int state)
{
	switch (state) {
	case POOL_DONE: return CLIENT_EXIT_OK;
	case POOL_CANCELLED: return CLIENT_EXIT_CANCELLED;
	case POOL_EXPIRED: case POOL_TIMEOUT: return CLIENT_EXIT_TIMEOUT;
	default: return CLIENT_EXIT_FAIL;
	}
}

/* ---- socket path -------------------------------------------------------- */

int client_socket_path(const char *opt, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *env = getenv("PLOT_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (opt)
		n = snprintf(out, outlen, "%s", opt);
	else if (env && *env)
		n = snprintf(out, outlen, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(out, outlen, "%s/plot/plotd.sock", xdg);
	else
		n = snprintf(out, outlen, "/tmp/plot-%u/plotd.sock", (unsigned)getuid());
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= max) {
		snprintf(err, errlen, "socket path is too long (%d bytes, at most %zu)", n, max - 1);
		return -PROTO_E_TOO_LARGE;
	}
	if (n == 0) {
		snprintf(err, errlen, "socket path is empty");
		return -PROTO_E_INVALID;
	}
	return 0;
}

/* ---- connection --------------------------------------------------------- */

int client_from_fd(int fd, const struct client_opts *o, struct client **out,
		   char *err, size_t errlen)
{
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -PROTO_E_NOMEM;
	}
	c->fd = fd;
	c->next_id = 1;
	if (o)
		c->lim = o->lim;
	if (!c->lim.max_frame)
		c->lim.max_frame = PROTO_MAX_FRAME_CLIENT;
	proto_limits_resolve(&c->lim);
	proto_reader_init(&c->rd, &c->lim);
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	close(c->fd);
	proto_reader_free(&c->rd);
	free(c);
}

int client_fd(const struct client *c)
{
	return c->fd;
}

const struct proto_hello *client_server_hello(const struct client *c)
{
	return &c->server;
}

/* connect() with a bound: the socket is non-blocking while connecting. */
static int open_socket(const char *path, int timeout_ms, int *fdp, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "socket path is too long: %s", path);
		return -PROTO_E_TOO_LARGE;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -PROTO_E_IO;
	}
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	while (rc < 0 && errno == EINTR)
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	if (rc == 0) {
		*fdp = fd;
		return 0;
	}
	int e = errno;
	close(fd);
	(void)timeout_ms; /* a Unix connect completes or fails at once */
	if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
		snprintf(err, errlen, "no daemon at %s (%s)", path, strerror(e));
		return -PROTO_E_UNREACHABLE;
	}
	if (e == EACCES || e == EPERM) {
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
		return -PROTO_E_PERMISSION;
	}
	snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
	return e == EAGAIN ? -PROTO_E_UNREACHABLE : -PROTO_E_IO;
}

static int say_hello(struct client *c, const struct client_opts *o, char *err, size_t errlen)
{
	char agent[64];
	struct proto_msg req, rep;
	int timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 5000;

	snprintf(agent, sizeof agent, "plot %s", plot_version());
	proto_msg_init(&req, PROTO_T_HELLO, 0);
	req.u.hello.version = PROTO_VERSION;
	req.u.hello.agent = o && o->agent ? o->agent : agent;
	int rc = client_call(c, &req, &rep, timeout, err, errlen);
	if (rc == 0) {
		c->server = rep.u.hello;
		snprintf(c->server_agent, sizeof c->server_agent, "%s",
			 rep.u.hello.agent ? rep.u.hello.agent : "");
		c->server.agent = c->server_agent;
		if (rep.u.hello.version != PROTO_VERSION) {
			snprintf(err, errlen,
				 "protocol version mismatch: client speaks %u, plotd speaks %u",
				 (unsigned)PROTO_VERSION, (unsigned)rep.u.hello.version);
			rc = -PROTO_E_VERSION;
		}
	}
	proto_msg_clear(&rep);
	return rc;
}

int client_connect(const char *path, const struct client_opts *o,
		   struct client **out, char *err, size_t errlen)
{
	int fd = -1;
	uid_t trusted;
	int rc = client_verify_dir(path, o && o->named, &trusted, err, errlen);
	if (rc)
		return rc;
	rc = open_socket(path, o ? o->timeout_ms : 0, &fd, err, errlen);
	if (rc)
		return rc;
	rc = client_verify_peer(fd, trusted, err, errlen);
	if (rc) {
		close(fd); /* nothing was sent */
		return rc;
	}
	struct client *c;
	rc = client_from_fd(fd, o, &c, err, errlen);
	if (rc)
		return rc;
	rc = say_hello(c, o, err, errlen);
	if (rc) {
		client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- messages ----------------------------------------------------------- */

int client_send(struct client *c, struct proto_msg *m, char *err, size_t errlen)
{
	if (!m->id)
		m->id = c->next_id++;
	return proto_send(c->fd, m, &c->lim, err, errlen);
}

int client_recv(struct client *c, struct proto_msg *out, int timeout_ms,
		char *err, size_t errlen)
{
	int rc = proto_recv(c->fd, &c->rd, out, timeout_ms, err, errlen);
	if (rc == -PROTO_E_EOF)
		snprintf(err, errlen, "the daemon closed the connection");
	return rc;
}

int client_call(struct client *c, struct proto_msg *req, struct proto_msg *reply,
		int timeout_ms, char *err, size_t errlen)
{
	memset(reply, 0, sizeof *reply);
	int rc = client_send(c, req, err, errlen);
	if (rc)
		return rc;
	for (;;) {
		rc = client_recv(c, reply, timeout_ms, err, errlen);
		if (rc == -PROTO_E_INVALID && reply->id != req->id)
			continue; /* a bad event for another request: skip it */
		if (rc)
			return rc;
		if (reply->id == req->id && (reply->type == PROTO_T_OK || reply->type == PROTO_T_ERR))
			break;
		if (reply->type == PROTO_T_ERR && reply->id == 0)
			break; /* answers no request of ours: the daemon refused us */
		proto_msg_clear(reply);
	}
	if (reply->type == PROTO_T_OK)
		return 0;
	snprintf(err, errlen, "%s", reply->u.error.message ? reply->u.error.message
							 : proto_code_name(reply->u.error.code));
	return -(reply->u.error.code ? reply->u.error.code : PROTO_E_INTERNAL);
}
