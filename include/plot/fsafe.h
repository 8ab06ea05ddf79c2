/*
 * fsafe.h — opening files and directories without following what someone
 * else planted (lib/sys/fsafe.c).
 *
 * A path under a directory another user can write to (/tmp/plot-$UID when
 * that user made it first, a shared spool) may hold a symlink or a hard
 * link to a victim's file. These helpers never follow a symlink in the last
 * component (O_NOFOLLOW, openat on the checked parent), refuse a parent
 * directory that others may write to unless it is sticky, and refuse an
 * existing file that is not a regular file owned by us with one link. The
 * SQLite database is the store's business (lib/store), not this module's.
 *
 * Errors: -1 with errno set and err naming the path and what is wrong.
 */
#ifndef PLOT_FSAFE_H
#define PLOT_FSAFE_H

#include <stddef.h>
#include <sys/types.h>

/* Open path for writing (flags: O_WRONLY or O_RDWR, with O_CREAT, O_APPEND,
 * O_TRUNC, O_EXCL as wanted; O_NOFOLLOW and O_CLOEXEC are added). The
 * parent directory must be owned by us or root and not writable by
 * group/other unless sticky; an existing file must be a regular file owned
 * by our euid with a single link. O_TRUNC happens after those checks.
 * Returns the fd or -1. */
int fsafe_open(const char *path, int flags, mode_t mode, char *err, size_t errlen);

/* Make directory dir (one level, with mode) if it is missing; then it must
 * be a real directory (not a symlink) owned by our euid with no
 * group/other write permission. Returns 0 or -1. */
int fsafe_mkdir(const char *dir, mode_t mode, char *err, size_t errlen);

/* Check an existing directory that holds a socket we are about to trust:
 * a real directory, owned by one of the n uids in owners, not writable by
 * group or other. *owner gets its owner. Returns 0 or -1 (errno EPERM for
 * a directory that fails the rules). */
int fsafe_check_dir(const char *dir, const uid_t *owners, size_t n, uid_t *owner,
		    char *err, size_t errlen);

/* The directory part of path ("." when it has none, "/" for "/x"); 0, or -1
 * when it does not fit in cap. */
int fsafe_dirname(const char *path, char *dir, size_t cap);

#endif
