/*
 * http-impl.h — what http.c (the server: listener, loop, routes, auth) and
 * http-oai.c (completions: submit, wait, stream) and http-pg.c (models on
 * the shared queue) share. Private to them.
 */
#ifndef PLOTD_HTTP_IMPL_H
#define PLOTD_HTTP_IMPL_H

#include <jansson.h>
#include <microhttpd.h>

#include "http.h"
#include "pgshare.h"
#include "plot/oai.h"

enum { H_READING = 0, H_SUBMITTING, H_WAITING, H_STREAMING, H_READY, H_SENT };

/* One HTTP request (MHD's per-request context). Owned by http.c: freed when
 * MHD says the request is over, or, when a submit is still preparing then
 * (in_submit), by the submit's done() (gone = 1 meanwhile). */
struct hreq {
	struct http *h;
	struct MHD_Connection *conn;
	int route;                  /* http.c's ROUTE_* */
	char *body;
	size_t len;
	int too_large;
	int phase;                  /* H_* */
	int suspended;
	int in_submit;              /* submit.c holds r until its done() */
	int gone;                   /* MHD finished the request meanwhile: done() frees r */
	/* a whole response, ready to queue (H_READY) */
	unsigned status;
	char *resp;
	const char *ctype;
	uint64_t retry_after;
	/* a completion's task */
	struct model *m;
	uint64_t task;
	int kind, stream, include_usage, detach;
	uint32_t max_tokens;        /* 0: not given */
	uint32_t prompt_tokens;
	int64_t created;
	struct pool_sub *sub;       /* H_STREAMING */
	char *out;                  /* SSE bytes not yet handed to MHD */
	size_t out_len, out_off;
	char hold[4];               /* the tail of an unfinished UTF-8 sequence */
	size_t hold_len;
	uint64_t delivered;         /* output bytes turned into SSE */
	int role_sent, ended;
	int drop;                   /* too far behind: the reader ends the stream with an error */
	int sse_queued;             /* the SSE response is queued (H_STREAMING) */
	struct hreq *next, *prev;   /* http's list of requests waiting on tasks */
	/* a model on the shared queue (http-pg.c): the task is followed in the
	 * database, wherever it runs, not in a local pool */
	int on_pg;
	struct pgshare_reader *pg;  /* the read in flight */
	char *pg_out;               /* streaming: output not yet made SSE; whole: all of it */
	size_t pg_len;
	uint64_t pg_bytes, pg_chunks; /* output read so far */
	int pg_state;               /* POOL_QUEUED until the end is read */
	char *pg_error;
	json_t *pg_json;            /* /v1/queues: the local figures, until the shared ones come */
};

struct http {
	struct http_config c;       /* addr and token point into addr_buf, tok */
	char addr_buf[256];
	char *tok;
	struct loop *loop;
	struct dispatch *d;
	struct MHD_Daemon *mhd;
	int lsn_fd;
	struct loop_watch mhd_w, timer_w;
	char addr[96];
	int64_t started;            /* wall clock at start: the models' "created" */
	int again;                  /* MHD has work ready: run it before sleeping */
	struct hreq *waiting;       /* requests with a task: H_WAITING, H_STREAMING */
	size_t n_waiting;
};

/* http.c */
void http_resume(struct hreq *r);
void http_wait_link(struct hreq *r);
void http_wait_unlink(struct hreq *r);
/* Make r's answer a JSON body (taken: freed by http.c), then resume it. */
void http_ready(struct hreq *r, unsigned status, char *json);
/* An OpenAI-shaped error as r's answer, from a PROTO_E_* code or an HTTP
 * status. */
void http_fail(struct hreq *r, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void http_fail_proto(struct hreq *r, int proto_code, const char *msg, uint64_t retry_after);

/* http-oai.c */
void http_oai_start(struct hreq *r, int kind);    /* POST body read: parse, submit */
int http_oai_queue(struct hreq *r);               /* queue a streaming response */
void http_oai_event(struct hreq *r);              /* its task changed */
void http_oai_cancel(struct hreq *r);             /* the client left: cancel unless detached */
void http_oai_free(struct hreq *r);

/* http-pg.c: models on the shared queue (PostgreSQL) */
int http_pg_model(const struct hreq *r);          /* r->m is on the shared queue */
int http_pg_follow(struct hreq *r);               /* submitted: follow the task; -1: no memory */
void http_pg_info(const struct hreq *r, struct pool_task_info *ti); /* what was read so far */
/* The output read and not yet handed out (streaming: new output; whole:
 * all of it), taken (the caller frees *out). */
void http_pg_take(struct hreq *r, char **out, size_t *len);
void http_pg_cancel(struct hreq *r);              /* the client left */
/* The parking lot's routes for a task no local pool has: 1 when the
 * database answers r (later), 0 when the local answer stands. */
int http_pg_mailbox(struct hreq *r, uint64_t id);
int http_pg_delete(struct hreq *r, uint64_t id);
/* /v1/queues: queues (a json_t array, taken) plus the shared queue. */
int http_pg_queues(struct hreq *r, json_t *queues);
void http_pg_free(struct hreq *r);

#endif
