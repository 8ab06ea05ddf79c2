/*
 * listen.c — the daemon's Unix socket: where it lives, who may reach it, and
 * never stealing it from a live daemon.
 *
 * DESIGN
 *   Path: chosen by plotd.c with client_socket_path() (--socket, then
 *   $PLOT_SOCKET, then daemon.socket, then $XDG_RUNTIME_DIR/plot/plotd.sock,
 *   then /tmp/plot-$UID/plotd.sock).
 *
 *   Directory: created 0700 if missing (its parent must exist). An existing
 *   one must be a real directory (not a symlink) owned by our euid with no
 *   group/other permission bits. When allow_users/allow_groups are set, other
 *   users must be able to reach the socket, so the directory is made 0711
 *   (search only, nobody can list or replace entries) and the socket 0666;
 *   access is then decided per connection with SO_PEERCRED. Without them the
 *   socket is 0600 and the directory 0700.
 *
 *   Ownership of the path: an exclusive flock on "<socket>.lock", held for
 *   the daemon's life, serialises daemons starting at once. Under the lock,
 *   an existing socket that accepts a connection belongs to a live daemon
 *   (refused, never unlinked); one that refuses is stale and replaced.
 *
 * INVARIANTS
 *   The socket file is only unlinked while holding the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"

static int dir_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;
	const char *src = slash ? path : ".";
	if (slash == path)
		n = 1; /* "/x.sock": the root directory */
	if (n >= cap)
		return -1;
	memcpy(dir, src, n);
	dir[n] = '\0';
	return 0;
}

/* Create or check the socket directory; see DESIGN for the rules. */
static int check_dir(const char *dir, int shared, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0) {
		snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "socket directory %s: not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "socket directory %s: owned by uid %u, not %u",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	mode_t bad = shared ? 066 : 077;
	if (st.st_mode & bad) {
		snprintf(err, errlen, "socket directory %s: mode %03o has group/other "
			 "permission bits (want 0700)", dir, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	mode_t want = shared ? 0711 : 0700;
	if ((st.st_mode & 0777) != want && chmod(dir, want) < 0) {
		snprintf(err, errlen, "socket directory %s: chmod: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

/* 1: a daemon answers on path; 0: nothing there or stale; -1: not a socket. */
static int probe_live(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct sockaddr_un sa;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || fill_addr(path, &sa) < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "%s: cannot probe", path);
		return -1;
	}
	int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	if (live)
		snprintf(err, errlen, "another plotd is listening on %s", path);
	return live;
}

static int take_lock(const char *path, char *err, size_t errlen)
{
	char lock[PATH_MAX];

	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)) {
		snprintf(err, errlen, "socket path too long");
		return -1;
	}
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "another plotd holds %s", lock);
		close(fd);
		return -1;
	}
	return fd;
}

static int bind_socket(const char *path, int shared, char *err, size_t errlen)
{
	struct sockaddr_un sa;

	if (fill_addr(path, &sa) < 0) {
		snprintf(err, errlen, "socket path too long (max %zu): %s",
			 sizeof(sa.sun_path) - 1, path);
		return -1;
	}
	/* Bind and listen on a temporary name, then rename it into place: the
	 * path appears only once it accepts connections, and replacing a stale
	 * socket is atomic. */
	char tmp[sizeof(sa.sun_path)];
	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp) ||
	    fill_addr(tmp, &sa) < 0) {
		snprintf(err, errlen, "socket path too long (max %zu): %s",
			 sizeof(sa.sun_path) - 5, path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	unlink(tmp); /* a leftover of a crash; we hold the lock */
	mode_t old = umask(0177); /* never a moment with a wider mode */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(tmp, shared ? 0666 : 0600) < 0 || listen(fd, 128) < 0 ||
	    rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	return fd;
}

int lsn_open(struct lsn *ls, const char *path, int shared, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	ls->fd = ls->lock_fd = -1;
	if (snprintf(ls->path, sizeof(ls->path), "%s", path) >= (int)sizeof(ls->path) ||
	    dir_of(path, dir, sizeof(dir)) < 0) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	if (check_dir(dir, shared, err, errlen) < 0)
		return -1;
	ls->lock_fd = take_lock(path, err, errlen);
	if (ls->lock_fd < 0)
		return -1;
	int live = probe_live(path, err, errlen);
	if (live != 0)
		goto fail;
	if (access(path, F_OK) == 0)
		log_msg(LOG_WARN, "replacing stale socket %s", path);
	ls->fd = bind_socket(path, shared, err, errlen);
	if (ls->fd < 0)
		goto fail;
	return 0;
fail:
	close(ls->lock_fd);
	ls->lock_fd = -1;
	return -1;
}

/* Close and remove the socket (we hold the lock, so it is ours). */
void lsn_close(struct lsn *ls)
{
	if (ls->fd >= 0) {
		unlink(ls->path);
		close(ls->fd);
		ls->fd = -1;
	}
	if (ls->lock_fd >= 0) {
		close(ls->lock_fd);
		ls->lock_fd = -1;
	}
}

/* Accept one client; fills its credentials. -1 with errno EAGAIN when none. */
int lsn_accept(struct lsn *ls, struct peer *pr)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(pr, 0, sizeof(*pr));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	pr->pid = uc.pid;
	pr->uid = uc.uid;
	pr->gid = uc.gid;
	len = sizeof(pr->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, pr->groups, &len) == 0)
		pr->ngroups = (unsigned)(len / sizeof(gid_t));
	return fd;
}
