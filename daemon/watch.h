/*
 * watch.h — the index from task id to the connections waiting on it
 * (watch.c): stream subscriptions, result and status waiters. Used by
 * dispatch.
 */
#ifndef PLOTD_WATCH_H
#define PLOTD_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "models.h"

enum { WATCH_SUB = 1, WATCH_RESULT = 2, WATCH_STATUS = 3 /* status with wait */ };
struct watch {
	int kind;
	struct conn *c;
	struct model *m;
	uint64_t task, req_id;
	struct pool_sub *sub;       /* WATCH_SUB */
	int follow;                 /* WATCH_SUB: live until end */
	int run;                    /* WATCH_SUB: cancel the task if c disconnects */
	struct watch *conn_next;    /* c's list */
	struct watch *hash_next;    /* bucket chain */
};

struct watch_table {
	struct watch **tab;         /* (nbuckets) chains; a power of two */
	size_t nbuckets, count;
};

int watch_table_init(struct watch_table *t, size_t buckets);
void watch_table_free(struct watch_table *t);
void watch_link(struct watch_table *t, struct watch *w);
void watch_unlink(struct watch_table *t, struct watch *w);
struct watch *watch_first(const struct watch_table *t, uint64_t task);

#endif
