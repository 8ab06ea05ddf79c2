/*
 * http.h — plotd's optional HTTP front (http.c, http-oai.c): the
 * OpenAI-compatible API, the parking lot's routes and /metrics, served by
 * libmicrohttpd on the daemon's own event loop. See plotd(8), HTTP.
 *
 * It sits beside the socket front (client.c) above dispatch: submits go
 * through submit.c (the one submit path), streams are drained from the
 * pools' subscriptions when the pools' task notes arrive (http_task_event,
 * called with dispatch_task_event for every note).
 */
#ifndef PLOTD_HTTP_H
#define PLOTD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dispatch.h"
#include "plot/loop.h"

struct http_config {
	const char *addr;        /* "HOST:PORT"; PORT 0 picks a free one (logged) */
	const char *token;       /* bearer token; NULL = none (loopback only is advised) */
	uint64_t max_body;       /* request body bytes */
	uint64_t max_header;     /* header bytes (libmicrohttpd's per-connection memory) */
	uint64_t max_connections;
	uint64_t idle_secs;      /* a connection without traffic is closed (0 = never) */
	uint64_t max_output;     /* a stream's undelivered bytes before its reader is dropped */
	uid_t owner;             /* HTTP tasks belong to this uid (the daemon's) */
};

struct http;

/* Bind and start serving on l. NULL with err filled (naming the address). */
struct http *http_new(struct loop *l, struct dispatch *d, const struct http_config *c,
		      char *err, size_t errlen);
/* Close every connection (their tasks are cancelled unless detached). */
void http_free(struct http *h);
/* The address bound ("127.0.0.1:8080"): the port when 0 was asked. */
const char *http_address(const struct http *h);
/* Loop thread: task changed (a pool note); feed its HTTP waiters. */
void http_task_event(struct http *h, uint64_t task);
/* Loop thread: look at every waiting request once (after the pools stopped). */
void http_kick_all(struct http *h);
/* Loop thread, before every wait: run what libmicrohttpd left for now.
 * Nonzero when it still has work no descriptor will announce. */
int http_before_sleep(struct http *h);
/* Requests still waiting on tasks (a drain flushes them before exiting). */
size_t http_waiting(const struct http *h);

#endif
