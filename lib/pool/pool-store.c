/*
 * pool-store.c — the pool's ordered store-write queue: snapshots of task
 * records taken under the pool lock, in the order the state changes
 * happened, written to the store outside it by one drainer at a time.
 *
 * DESIGN
 *   pool_store_put/del run under p->mu and only link a snapshot. After the
 *   lock is dropped, pool_store_drain hands everything queued to the store
 *   (the daemon's store writer facade only queues in turn). sq_mu makes the
 *   drainers take turns: a second one waits rather than returning, so when
 *   any pool call returns its records have reached the store and a caller
 *   may then ask the store writer for a sync that covers them. A record's
 *   request (how to resume it) goes with its first snapshot only. Output
 *   goes as it is emitted (pool_store_append, one piece per emit), so the
 *   end record carries none, unless a piece could not be queued (no
 *   memory): then the end record carries the whole output.
 */
#include <stdlib.h>
#include <string.h>

#include "plot/store.h"
#include "pool/pool-impl.h"

enum { SOP_PUT, SOP_DEL, SOP_APPEND };

struct store_op {
	struct store_op *next;
	int kind;
	uint64_t off;              /* SOP_APPEND: where rec.output goes */
	struct store_record rec;
};

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

static void store_op_link(struct pool *p, struct store_op *op)
{
	if (p->sq_tail)
		p->sq_tail->next = op;
	else
		p->sq_head = op;
	p->sq_tail = op;
}

/* Snapshot the record now (under the lock); written later, in order. A
 * snapshot that cannot be allocated is dropped: the store is best-effort and
 * the pool's state in memory stays authoritative. */
void pool_store_put(struct pool *p, struct pool_task *t, int with_output)
{
	struct store_op *op = calloc(1, sizeof *op);
	if (!op)
		return;
	struct store_record *r = &op->rec;
	r->id = t->id;
	r->priority = t->prio;
	r->state = t->state;
	r->cost = t->cost;
	r->created_ns = t->created_ns;
	r->started_ns = t->started_ns;
	r->ended_ns = t->ended_ns;
	r->deadline_ns = t->deadline_ns;
	r->owner_uid = t->owner_uid;
	r->model = dup_or_null(p->name);
	r->label = dup_or_null(t->label);
	r->error = dup_or_null(t->error);
	r->key = dup_or_null(t->key);
	r->attempts = t->attempts;
	r->request = t->request; /* written once: the first record takes it */
	r->request_len = t->request_len;
	t->request = NULL;
	t->request_len = 0;
	r->output_len = t->out_len; /* stored by the appends */
	if (with_output && t->out_len && (r->output = malloc(t->out_len)))
		memcpy(r->output, t->out, t->out_len);
	store_op_link(p, op);
}

int pool_store_append(struct pool *p, struct pool_task *t, uint64_t off, const void *data,
		      size_t len)
{
	struct store_op *op = calloc(1, sizeof *op);
	if (!op || !(op->rec.output = malloc(len ? len : 1))) {
		free(op);
		return -1;
	}
	op->kind = SOP_APPEND;
	op->off = off;
	op->rec.id = t->id;
	memcpy(op->rec.output, data, len);
	op->rec.output_len = len;
	store_op_link(p, op);
	return 0;
}

void pool_store_del(struct pool *p, uint64_t id)
{
	struct store_op *op = calloc(1, sizeof *op);
	if (!op)
		return;
	op->kind = SOP_DEL;
	op->rec.id = id;
	store_op_link(p, op);
}

/* One drainer at a time keeps the writes in queue order; a second one
 * waits, so that its own writes have been handed over when it returns. */
void pool_store_drain(struct pool *p)
{
	pthread_mutex_lock(&p->sq_mu);
	pthread_mutex_lock(&p->mu);
	while (p->sq_head) {
		struct store_op *op = p->sq_head;
		p->sq_head = p->sq_tail = NULL;
		pthread_mutex_unlock(&p->mu);
		for (struct store_op *nx; op; op = nx) {
			nx = op->next;
			if (op->kind == SOP_DEL)
				store_del(p->store, op->rec.id);
			else if (op->kind == SOP_APPEND)
				store_append(p->store, op->rec.id, op->off, op->rec.output,
					     op->rec.output_len);
			else
				store_put(p->store, &op->rec);
			store_record_clear(&op->rec);
			free(op);
		}
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->sq_mu);
}

void pool_store_free(struct pool *p)
{
	for (struct store_op *op = p->sq_head, *nx; op; op = nx) {
		nx = op->next;
		store_record_clear(&op->rec);
		free(op);
	}
	p->sq_head = p->sq_tail = NULL;
}
