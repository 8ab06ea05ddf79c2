/*
 * client-verify.c — the client trusts nothing about a socket path until it
 * has checked who made it and who answers on it (include/plot/client.h,
 * client_verify_dir / client_verify_peer).
 *
 * DESIGN
 *   When the default path falls back to /tmp/plot-$UID, another local user
 *   can create that directory and a socket in it first, and would receive
 *   our prompts. So, as tmux does for its socket directory: the directory
 *   must belong to us or root and others must not be able to write to it;
 *   and the process listening (SO_PEERCRED of the connected socket) must
 *   be us or root. A path the user named (--socket, $PLOT_SOCKET) may live
 *   in a shared daemon owner's directory: that owner is then trusted too,
 *   and no one else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/client.h"
#include "plot/fsafe.h"

int client_socket_named(const char *opt)
{
	const char *env = getenv("PLOT_SOCKET");
	return opt || (env && *env);
}

static int trusted_uid(uid_t u, uid_t extra)
{
	return u == getuid() || u == geteuid() || u == 0 || u == extra;
}

/* A sticky directory others may write to (/tmp): they cannot replace an
 * entry they do not own, so the socket itself must be trusted. */
static int sticky_ok(const char *dir, const char *sock, uid_t *trusted,
		     char *err, size_t errlen)
{
	struct stat d, s;
	if (lstat(dir, &d) < 0 || !S_ISDIR(d.st_mode) || !(d.st_mode & S_ISVTX) ||
	    !(d.st_mode & 022) ||
	    !trusted_uid(d.st_uid, d.st_uid == 0 ? 0 : (uid_t)-1))
		return 0;
	if (lstat(sock, &s) < 0)
		return 1; /* nothing there yet: connect will say so */
	if (!S_ISSOCK(s.st_mode) || !trusted_uid(s.st_uid, *trusted)) {
		snprintf(err, errlen, "%s: owned by uid %u, not by you or root, in the "
			 "shared directory %s", sock, (unsigned)s.st_uid, dir);
		return -1;
	}
	return 1;
}

int client_verify_dir(const char *sock, int named, uid_t *trusted, char *err, size_t errlen)
{
	char dir[4096], why[512];
	uid_t owners[3] = { getuid(), geteuid(), 0 };
	uid_t owner;

	*trusted = (uid_t)-1;
	if (fsafe_dirname(sock, dir, sizeof dir) < 0) {
		snprintf(err, errlen, "socket path is too long: %s", sock);
		return -PROTO_E_TOO_LARGE;
	}
	int st = sticky_ok(dir, sock, trusted, err, errlen);
	if (st)
		return st < 0 ? -PROTO_E_PERMISSION : 0;
	if (fsafe_check_dir(dir, owners, 3, &owner, why, sizeof why) == 0)
		return 0;
	if (errno == ENOENT) {
		snprintf(err, errlen, "no daemon at %s (%s)", sock, why);
		return -PROTO_E_UNREACHABLE;
	}
	if (named && errno == EPERM &&
	    fsafe_check_dir(dir, &owner, 1, &owner, why, sizeof why) == 0) {
		*trusted = owner; /* a shared daemon's directory, named by the user */
		return 0;
	}
	snprintf(err, errlen, "refusing to use %s: %s", sock, why);
	return -PROTO_E_PERMISSION;
}

int client_verify_peer(int fd, uid_t trusted, char *err, size_t errlen)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		snprintf(err, errlen, "cannot tell who runs the daemon: %s", strerror(errno));
		return -PROTO_E_PERMISSION;
	}
	if (trusted_uid(cr.uid, trusted))
		return 0;
	snprintf(err, errlen, "refusing to talk to the daemon: it runs as uid %u (pid %d), "
		 "not as you (uid %u) or root", (unsigned)cr.uid, (int)cr.pid, (unsigned)getuid());
	return -PROTO_E_PERMISSION;
}
