/*
 * log.h — plotd's log (log.c): one line per event, any thread.
 * A leaf: it includes nothing of the daemon's.
 */
#ifndef PLOTD_LOG_H
#define PLOTD_LOG_H

#include <stddef.h>

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
int log_level_parse(const char *s);
const char *log_level_name(int level);
void log_set_level(int level);
int log_get_level(void);
int log_enabled(int level);
int log_open(const char *path, char *err, size_t errlen);
void log_close(void);
int log_is_file(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
