/*
 * client.h — the client side of the protocol, for cmd/ (and the daemon's
 * socket path resolution).
 *
 * DESIGN
 *   A struct client is one connected Unix socket plus a proto_reader. It
 *   speaks hello on connect, then request/reply: client_call() sends a
 *   request with a fresh request id and returns the reply with the same id.
 *   For subscribe, client_call() returns the first reply and client_recv()
 *   then yields the CHUNK events and the final END event. Every blocking
 *   call returns -PROTO_E_INTR when a signal interrupts it (install SIGINT
 *   without SA_RESTART) with no partial frame lost, so `plot run` can send a
 *   cancel on Ctrl-C and go on reading.
 *
 *   Exit codes: one table maps proto codes and task states to the CLI's
 *   documented exit statuses (client_exit_for_code/_for_state).
 *
 * ERRORS
 *   Negative enum proto_code with a message in the caller's buffer. An err
 *   reply from the daemon becomes its code, its message copied to err.
 */
#ifndef PLOT_CLIENT_H
#define PLOT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "plot/proto.h"

/* The CLI's exit statuses (documented in plot.1). */
enum client_exit {
	CLIENT_EXIT_OK = 0,
	CLIENT_EXIT_FAIL = 1,         /* the task failed, or any other error */
	CLIENT_EXIT_USAGE = 2,
	CLIENT_EXIT_UNREACHABLE = 69, /* no daemon */
	CLIENT_EXIT_STORE = 74,       /* STORE: the durable store refused the task */
	CLIENT_EXIT_TEMPFAIL = 75,    /* QUEUE_FULL or CAPACITY: retry later */
	CLIENT_EXIT_PERMISSION = 77,
	CLIENT_EXIT_CONFIG = 78,
	CLIENT_EXIT_TIMEOUT = 124,    /* the task expired or timed out */
	CLIENT_EXIT_CANCELLED = 130,
};
/* Exit status for a proto code (positive or negated): QUEUE_FULL/CAPACITY 75,
 * PERMISSION 77, CONFIG 78, TIMEOUT 124, CANCELLED 130, UNREACHABLE 69,
 * OK 0, anything else 1. */
int client_exit_for_code(int code);
/* Exit status for a task's final state: DONE 0, FAILED 1, CANCELLED 130,
 * EXPIRED/TIMEOUT 124; non-terminal 1. */
int client_exit_for_state(int pool_state);

/* Socket path resolution, shared with plotd: opt (--socket) if non-NULL,
 * then $PLOT_SOCKET if set and non-empty, then
 * $XDG_RUNTIME_DIR/plot/plotd.sock if XDG_RUNTIME_DIR is set, then
 * /tmp/plot-$UID/plotd.sock. Returns 0, or -PROTO_E_TOO_LARGE if the path
 * does not fit in outlen or in sockaddr_un.sun_path. */
int client_socket_path(const char *opt, char *out, size_t outlen,
		       char *err, size_t errlen);

/* Whether the socket path is one the user named (opt, i.e. --socket, or
 * $PLOT_SOCKET) rather than a default location. */
int client_socket_named(const char *opt);

/* Before anything is sent the client verifies the daemon (client-verify.c,
 * modelled on tmux's socket checks):
 *   - the socket's directory is a real directory owned by us or root, not
 *     writable by group/other (a sticky one such as /tmp is accepted when
 *     the socket file itself is ours or root's);
 *   - the peer (SO_PEERCRED) runs as our uid or root.
 * For a named path (client_opts.named) the directory may instead belong to
 * another user U, the owner of a shared daemon (allow_users), and a peer
 * running as U is then trusted too: naming the path is the user's choice;
 * a default path never trusts anyone but us and root. A failure is
 * -PROTO_E_PERMISSION naming what is wrong. */
int client_verify_dir(const char *sock, int named, uid_t *trusted, char *err, size_t errlen);
int client_verify_peer(int fd, uid_t trusted, char *err, size_t errlen);

struct client_opts {
	int named;                    /* the path was named: see client_verify_dir */
	const char *agent;            /* hello agent; NULL = "plot <version>" */
	int timeout_ms;               /* connect + hello; <= 0 = 5000 */
	struct proto_limits lim;      /* zero = client defaults (max_frame PROTO_MAX_FRAME_CLIENT) */
};

struct client;

/* Connect to path and say hello. Returns 0, -PROTO_E_UNREACHABLE (no socket,
 * refused: "no daemon at PATH"), -PROTO_E_PERMISSION (EACCES, or the daemon
 * refused our uid), -PROTO_E_VERSION, -PROTO_E_TIMEOUT, -PROTO_E_IO. o may
 * be NULL. The server's hello reply is kept (client_server_hello). */
int client_connect(const char *path, const struct client_opts *o,
		   struct client **out, char *err, size_t errlen);
/* Wrap an already connected fd (tests: socketpair); no hello is sent.
 * Takes ownership of fd. */
int client_from_fd(int fd, const struct client_opts *o, struct client **out,
		   char *err, size_t errlen);
void client_free(struct client *c); /* closes the socket */

int client_fd(const struct client *c);
/* The server's hello (version, agent, pid); zero if no hello was done. */
const struct proto_hello *client_server_hello(const struct client *c);

/* Send m. If m->id is 0 a fresh request id is assigned and stored in m->id. */
int client_send(struct client *c, struct proto_msg *m, char *err, size_t errlen);
/* Read the next message (reply or event), waiting up to timeout_ms (-1 =
 * forever). Returns 0, -PROTO_E_TIMEOUT, -PROTO_E_INTR, -PROTO_E_EOF ("the
 * daemon closed the connection"), or a decode error. out must be cleared
 * with proto_msg_clear by the caller. */
int client_recv(struct client *c, struct proto_msg *out, int timeout_ms,
		char *err, size_t errlen);
/* Send req and wait for the reply carrying its id (stream events of other
 * requests that arrive meanwhile are dropped). Returns 0 with an ok reply
 * in *reply; or, for an err reply, its negated code with the daemon's
 * message in err (reply holds the err message too); or a local error. The
 * caller clears *reply in every case. */
int client_call(struct client *c, struct proto_msg *req, struct proto_msg *reply,
		int timeout_ms, char *err, size_t errlen);

#endif
