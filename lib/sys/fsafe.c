/*
 * fsafe.c — open files and make directories without following a symlink or
 * hard link someone else planted. See include/plot/fsafe.h for the rules.
 *
 * DESIGN
 *   The parent directory is opened first (following symlinks in the
 *   directories above is fine: those belong to whoever made the path) and
 *   checked with fstat on that very fd; the file is then opened with openat
 *   relative to it and O_NOFOLLOW, so nothing can be swapped between the
 *   check and the open. The file's own checks (regular, ours, one link) run
 *   on the opened fd; O_TRUNC is applied only after them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/fsafe.h"
#include "util.h"

int fsafe_dirname(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;
	const char *src = slash ? path : ".";
	if (slash == path)
		n = 1;
	if (n >= cap)
		return -1;
	memcpy(dir, src, n);
	dir[n] = '\0';
	return 0;
}

static int fail(int e, char *err, size_t errlen, const char *what, const char *path)
{
	plot_seterr(err, errlen, "%s: %s", path, what ? what : strerror(e));
	errno = e;
	return -1;
}

/* The parent of a file we create: ours or root's, and others cannot plant
 * entries in it (unless it is sticky: they cannot replace ours). */
static int parent_ok(int dfd, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	char why[128];
	if (fstat(dfd, &st) < 0)
		return fail(errno, err, errlen, NULL, dir);
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(why, sizeof why, "directory owned by uid %u, not by us (uid %u) or root",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return fail(EPERM, err, errlen, why, dir);
	}
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		snprintf(why, sizeof why, "directory mode %03o lets others plant files in it",
			 (unsigned)(st.st_mode & 0777));
		return fail(EPERM, err, errlen, why, dir);
	}
	return 0;
}

/* An opened file: a regular file of ours with one link. */
static int file_ok(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char why[128];
	if (fstat(fd, &st) < 0)
		return fail(errno, err, errlen, NULL, path);
	if (!S_ISREG(st.st_mode))
		return fail(EPERM, err, errlen, "not a regular file", path);
	if (st.st_uid != geteuid()) {
		snprintf(why, sizeof why, "owned by uid %u, not by us (uid %u)",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return fail(EPERM, err, errlen, why, path);
	}
	if (st.st_nlink > 1)
		return fail(EPERM, err, errlen, "has other hard links", path);
	return 0;
}

int fsafe_open(const char *path, int flags, mode_t mode, char *err, size_t errlen)
{
	char dir[4096];
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base || fsafe_dirname(path, dir, sizeof dir) < 0)
		return fail(EINVAL, err, errlen, "not a file path", path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(errno, err, errlen, NULL, dir);
	if (parent_ok(dfd, dir, err, errlen) < 0) {
		int e = errno;
		close(dfd);
		errno = e;
		return -1;
	}
	int fd = openat(dfd, base, (flags & ~O_TRUNC) | O_NOFOLLOW | O_CLOEXEC, mode);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return fail(e, err, errlen, e == ELOOP ? "is a symbolic link" : NULL, path);
	if (file_ok(fd, path, err, errlen) < 0 ||
	    ((flags & O_TRUNC) && ftruncate(fd, 0) < 0 &&
	     fail(errno, err, errlen, NULL, path) < 0)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int fsafe_mkdir(const char *dir, mode_t mode, char *err, size_t errlen)
{
	struct stat st;
	char why[128];
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return fail(errno, err, errlen, NULL, dir);
	if (lstat(dir, &st) < 0)
		return fail(errno, err, errlen, NULL, dir);
	if (!S_ISDIR(st.st_mode))
		return fail(EPERM, err, errlen, "not a directory (a symlink?)", dir);
	if (st.st_uid != geteuid()) {
		snprintf(why, sizeof why, "directory owned by uid %u, not by us (uid %u)",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return fail(EPERM, err, errlen, why, dir);
	}
	if (st.st_mode & 022) {
		snprintf(why, sizeof why, "directory mode %03o is writable by others",
			 (unsigned)(st.st_mode & 0777));
		return fail(EPERM, err, errlen, why, dir);
	}
	return 0;
}

int fsafe_check_dir(const char *dir, const uid_t *owners, size_t n, uid_t *owner,
		    char *err, size_t errlen)
{
	struct stat st;
	char why[160];
	if (lstat(dir, &st) < 0)
		return fail(errno, err, errlen, NULL, dir);
	if (!S_ISDIR(st.st_mode))
		return fail(EPERM, err, errlen, "not a directory (a symlink?)", dir);
	*owner = st.st_uid;
	size_t i = 0;
	while (i < n && owners[i] != st.st_uid)
		i++;
	if (i == n) {
		snprintf(why, sizeof why, "socket directory owned by uid %u, not by you or root",
			 (unsigned)st.st_uid);
		return fail(EPERM, err, errlen, why, dir);
	}
	if (st.st_mode & 022) {
		snprintf(why, sizeof why, "socket directory mode %03o is writable by others",
			 (unsigned)(st.st_mode & 0777));
		return fail(EPERM, err, errlen, why, dir);
	}
	return 0;
}
