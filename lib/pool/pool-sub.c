/*
 * pool-sub.c — the reading side of the mailbox: wait for a result, copy it,
 * subscribe to a task's stream, inspect and list tasks.
 *
 * DESIGN
 *   Output lives on the task: one growing byte buffer plus the end offset of
 *   every chunk, so a subscriber is just a task reference and the index of
 *   its next chunk. A late subscriber starts at chunk 0 (replay) and then
 *   waits on the task's condvar for more (live). Nothing is consumed, so a
 *   result can be read any number of times by any number of readers.
 *
 *   Every waiter holds a task reference for the length of its wait, so
 *   retention pruning can drop the task from the pool meanwhile without
 *   freeing it under the waiter; a waiter that times out just drops its
 *   reference and leaves nothing behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "pool/pool-impl.h"

struct pool_sub {
	struct pool_task *t; /* referenced */
	size_t next;         /* index of the next chunk to hand out */
};

/* timeout 0 (a poll, the event loop's case, once per chunk) needs no clock
 * read: a deadline in the past times out at once. */
static const struct timespec *wait_deadline(uint64_t timeout_ns, struct timespec *ts)
{
	if (timeout_ns == POOL_WAIT_FOREVER)
		return NULL;
	if (timeout_ns == 0) {
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
		return ts;
	}
	pool_abs_timeout(timeout_ns, ts);
	return ts;
}

int pool_wait(struct pool *p, uint64_t id, uint64_t timeout_ns, int *state)
{
	struct timespec ts;
	const struct timespec *at = wait_deadline(timeout_ns, &ts);
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (!t) {
		pthread_mutex_unlock(&p->mu);
		return -POOL_E_NOT_FOUND;
	}
	pool_task_ref(t);
	while (!POOL_STATE_TERMINAL(t->state)) {
		if (timeout_ns == 0 || pool_cond_wait_until(&t->cv, &p->mu, at) == ETIMEDOUT) {
			rc = -POOL_E_TIMEDOUT;
			break;
		}
	}
	if (POOL_STATE_TERMINAL(t->state)) {
		rc = 0;
		if (state)
			*state = t->state;
	}
	pthread_mutex_unlock(&p->mu);
	pool_task_unref(t);
	return rc;
}

static char *copy_bytes(const char *src, size_t len)
{
	char *d = malloc(len + 1);
	if (!d)
		return NULL;
	if (len)
		memcpy(d, src, len);
	d[len] = '\0';
	return d;
}

int pool_result(struct pool *p, uint64_t id, char **out, size_t *len, int *state)
{
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (!t) {
		rc = -POOL_E_NOT_FOUND;
	} else if (!(*out = copy_bytes(t->out, t->out_len))) {
		rc = -POOL_E_NOMEM;
	} else {
		*len = t->out_len;
		if (state)
			*state = t->state;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int pool_subscribe(struct pool *p, uint64_t id, struct pool_sub **out)
{
	struct pool_sub *s = calloc(1, sizeof *s);
	if (!s)
		return -POOL_E_NOMEM;
	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (t)
		pool_task_ref(t);
	pthread_mutex_unlock(&p->mu);
	if (!t) {
		free(s);
		return -POOL_E_NOT_FOUND;
	}
	s->t = t;
	*out = s;
	return 0;
}

/* Under the lock: hand out chunk s->next. */
static int sub_chunk(struct pool_sub *s, char **data, size_t *len)
{
	const struct pool_task *t = s->t;
	size_t from = s->next ? t->chunk_end[s->next - 1] : 0;
	size_t n = t->chunk_end[s->next] - from;
	if (!(*data = copy_bytes(t->out + from, n)))
		return -POOL_E_NOMEM;
	*len = n;
	s->next++;
	return POOL_SUB_CHUNK;
}

/* Under the lock: the final event, repeatable. */
static int sub_end(struct pool_sub *s, char **data, size_t *len, int *state)
{
	const struct pool_task *t = s->t;
	*state = t->state;
	*data = NULL;
	*len = 0;
	if (t->error && t->state != POOL_DONE) {
		*len = strlen(t->error);
		if (!(*data = copy_bytes(t->error, *len)))
			*len = 0;
	}
	return POOL_SUB_END;
}

int pool_sub_next(struct pool_sub *s, char **data, size_t *len, int *state,
		  uint64_t timeout_ns)
{
	struct pool *p = s->t->pool;
	struct timespec ts;
	const struct timespec *at = wait_deadline(timeout_ns, &ts);
	int rc;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (s->next < s->t->nchunks) {
			rc = sub_chunk(s, data, len);
			break;
		}
		if (POOL_STATE_TERMINAL(s->t->state)) {
			rc = sub_end(s, data, len, state);
			break;
		}
		if (timeout_ns == 0 || pool_cond_wait_until(&s->t->cv, &p->mu, at) == ETIMEDOUT) {
			rc = -POOL_E_TIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Under the lock: chunks s->next.. as one copy, at least one chunk, then
 * whole chunks while under max_bytes and max_chunks. */
static int sub_take(struct pool_sub *s, size_t max_bytes, size_t max_chunks, char **data,
		    size_t *len, size_t *nchunks)
{
	const struct pool_task *t = s->t;
	size_t from = s->next ? t->chunk_end[s->next - 1] : 0, last = s->next;
	while (last + 1 < t->nchunks && last + 1 - s->next < max_chunks &&
	       t->chunk_end[last + 1] - from <= max_bytes)
		last++;
	size_t n = t->chunk_end[last] - from;
	if (!(*data = copy_bytes(t->out + from, n)))
		return -POOL_E_NOMEM;
	*len = n;
	*nchunks = last + 1 - s->next;
	s->next = last + 1;
	return POOL_SUB_CHUNK;
}

int pool_sub_take(struct pool_sub *s, size_t max_bytes, size_t max_chunks, char **data,
		  size_t *len, size_t *nchunks, int *state)
{
	struct pool *p = s->t->pool;
	int rc;

	*nchunks = 0;
	pthread_mutex_lock(&p->mu);
	if (s->next < s->t->nchunks)
		rc = sub_take(s, max_bytes, max_chunks ? max_chunks : 1, data, len, nchunks);
	else if (POOL_STATE_TERMINAL(s->t->state))
		rc = sub_end(s, data, len, state);
	else
		rc = -POOL_E_TIMEDOUT;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

uint64_t pool_sub_task_id(const struct pool_sub *s)
{
	return s->t->id;
}

void pool_sub_close(struct pool_sub *s)
{
	if (!s)
		return;
	pool_task_unref(s->t);
	free(s);
}

/* ---- inspection ------------------------------------------------------------ */

/* 1-based position in admission order among queued tasks. */
static uint64_t queue_position(struct pool *p, const struct pool_task *t)
{
	uint64_t pos = 0;
	for (int prio = POOL_PRIO_COUNT - 1; prio > t->prio; prio--)
		pos += p->queue[prio].n;
	for (const struct pool_task *q = p->queue[t->prio].head; q; q = q->next) {
		pos++;
		if (q == t)
			break;
	}
	return pos;
}

/* Why a task in this state stopped; the executor's word counts for DONE. */
static int finish_of(const struct pool_task *t)
{
	switch (t->state) {
	case POOL_DONE: return t->finish ? t->finish : POOL_FINISH_EOS;
	case POOL_FAILED: return POOL_FINISH_ERROR;
	case POOL_CANCELLED: return POOL_FINISH_CANCEL;
	case POOL_EXPIRED: case POOL_TIMEOUT: return POOL_FINISH_DEADLINE;
	default: return POOL_FINISH_NONE;
	}
}

static void fill_info(const struct pool_task *t, struct pool_task_info *o)
{
	memset(o, 0, sizeof *o);
	o->id = t->id;
	o->priority = t->prio;
	o->state = t->state;
	o->cost = t->cost;
	o->created_ns = t->created_ns;
	o->started_ns = t->started_ns;
	o->ended_ns = t->ended_ns;
	o->deadline_ns = t->deadline_ns;
	o->output_bytes = t->out_len;
	o->chunks = t->nchunks;
	o->owner_uid = t->owner_uid;
	snprintf(o->error, sizeof o->error, "%s", t->error ? t->error : "");
	snprintf(o->label, sizeof o->label, "%s", t->label ? t->label : "");
	o->finish = finish_of(t);
	o->tokens = t->tokens;
	o->prompt_tokens = t->prompt_tokens;
}

void pool_task_set_outcome(struct pool_task *t, int finish, uint64_t tokens,
			   uint64_t prompt_tokens)
{
	struct pool *p = t->pool;
	pthread_mutex_lock(&p->mu);
	if (finish == POOL_FINISH_EOS || finish == POOL_FINISH_MAX_TOKENS ||
	    finish == POOL_FINISH_STOP)
		t->finish = finish;
	t->tokens = tokens;
	if (prompt_tokens)
		t->prompt_tokens = prompt_tokens;
	pthread_mutex_unlock(&p->mu);
}

int pool_task_info(struct pool *p, uint64_t id, struct pool_task_info *out)
{
	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (t) {
		fill_info(t, out);
		if (t->state == POOL_QUEUED)
			out->position = queue_position(p, t);
	}
	pthread_mutex_unlock(&p->mu);
	return t ? 0 : -POOL_E_NOT_FOUND;
}

size_t pool_list_ended(struct pool *p, struct pool_task_info *out, size_t cap)
{
	size_t n = 0;

	pthread_mutex_lock(&p->mu);
	for (struct pool_task *t = p->mailbox.tail; t; t = t->prev, n++)
		if (n < cap)
			fill_info(t, &out[n]);
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t pool_list(struct pool *p, struct pool_task_info *out, size_t cap)
{
	size_t n = 0;
	uint64_t pos = 0;

	pthread_mutex_lock(&p->mu);
	for (struct pool_task *t = p->running.head; t; t = t->next, n++)
		if (n < cap)
			fill_info(t, &out[n]);
	for (int prio = POOL_PRIO_COUNT - 1; prio >= 0; prio--) {
		for (struct pool_task *t = p->queue[prio].head; t; t = t->next, n++) {
			pos++;
			if (n < cap) {
				fill_info(t, &out[n]);
				out[n].position = pos;
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}
