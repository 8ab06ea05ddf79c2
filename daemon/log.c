/*
 * log.c — plotd's log: one line per event, with a UTC timestamp and a level,
 * to stderr or to the --log-file.
 *
 * DESIGN
 *   Each line is formatted into a stack buffer and written with one write(2)
 *   on an O_APPEND descriptor, so lines from different threads never
 *   interleave and no lock is needed. The level and the descriptor are
 *   atomics: SIGHUP may reopen the file (log rotation) while other threads
 *   log. Lines longer than the buffer are cut and end with "...".
 *
 * INVARIANTS
 *   log_fd is always a valid descriptor (2 until a file is opened); the old
 *   file descriptor is closed only after the new one is published.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "plot/fsafe.h"

static _Atomic int log_fd = 2;
static _Atomic int log_level = LOG_INFO;
static char log_path[4096];

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_WARN;
	return -1;
}

const char *log_level_name(int level)
{
	return level >= 0 && level <= LOG_DEBUG ? level_names[level] : "?";
}

void log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int log_get_level(void)
{
	return atomic_load(&log_level);
}

int log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

/* Open (or reopen, when path is NULL and a file was opened before) the log
 * file. NULL with no earlier file keeps stderr. */
int log_open(const char *path, char *err, size_t errlen)
{
	if (path) {
		if (strlen(path) >= sizeof(log_path)) {
			snprintf(err, errlen, "log file path too long");
			return -1;
		}
		strcpy(log_path, path);
	}
	if (!log_path[0])
		return 0;
	/* never through a symlink or into someone else's file */
	int fd = fsafe_open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0600, err, errlen);
	if (fd < 0)
		return -1;
	int old = atomic_exchange(&log_fd, fd);
	if (old != 2)
		close(old);
	return 0;
}

int log_is_file(void)
{
	return atomic_load(&log_fd) != 2;
}

void log_close(void)
{
	int old = atomic_exchange(&log_fd, 2);
	if (old != 2)
		close(old);
}

static size_t log_stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = snprintf(buf + n, cap - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	return n + (size_t)(m > 0 ? m : 0);
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	if (!log_enabled(level))
		return;
	size_t n = log_stamp(buf, sizeof(buf));
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%-5s ", log_level_name(level));
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= sizeof(buf) - n - 1) { /* cut: mark it */
		n = sizeof(buf) - 5;
		memcpy(buf + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)m;
	}
	/* Control characters from clients never break the one-line rule. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20)
			buf[i] = ' ';
	buf[n++] = '\n';
	ssize_t w = write(atomic_load(&log_fd), buf, n);
	(void)w; /* nowhere left to report a failed log write */
}
