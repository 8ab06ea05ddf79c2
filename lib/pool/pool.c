/*
 * pool.c — the parking lot: queue, admission, units, deadlines, cancel,
 * executor hand-back, runtime limits, shutdown, the timer thread, and what a
 * restart needs (restored tasks, hold/confirm). (Reading side: pool-sub.c;
 * stats: pool-stats.c; the ordered store-write queue: pool-store.c.)
 *
 * DESIGN
 *   One mutex (p->mu) guards the whole pool. Every public operation follows
 *   the same shape: lock; change state; run admission; unlock; then do the
 *   things that must not run under the lock, collected in a struct post:
 *   executor start() calls for newly admitted tasks, cancel nudges, payload
 *   frees, notify callbacks and store writes.
 *
 *   Store writes are queued under the lock in the order the state changes
 *   happened and drained outside it by one thread at a time (sq_mu), so a
 *   durable backend never sees a task's records out of order. A drainer
 *   that finds another one at work waits for it: when any pool call
 *   returns, its records have reached the store (so a caller may then ask
 *   the store writer for a sync that covers them).
 *
 * INVARIANTS (pool_check_invariants verifies them)
 *   - used_units == sum of costs on the running list; running list length is
 *     the running count.
 *   - Units are reserved only in admit_one() after the fit check, and released
 *     only in end_task(), whatever the way out.
 *   - used_units <= max_units and running <= the running limit
 *     min(max_running, capacity), except that a
 *     lowered limit lets already-running work finish: then no task has been
 *     admitted since the lowering.
 *   - A task ends exactly once (end_task), moving to the mailbox.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plot/pool.h"
#include "plot/store.h"
#include "pool/pool-impl.h"

#define POOL_DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
/* Kept short so they fit struct pool_task_info. */
#define POOL_LABEL_MAX (sizeof(((struct pool_task_info *)0)->label) - 1)
#define POOL_ERROR_MAX (sizeof(((struct pool_task_info *)0)->error) - 1)
#define POOL_FREE_SHUTDOWN_NS (5ull * 1000000000ull)
/* The timer prunes the mailbox up to this late, so that under load it wakes
 * once per batch of expiries rather than once per finished task. Deadlines
 * get no slack. pool_tick() itself prunes exactly at retention. */
#define POOL_PRUNE_SLACK_NS (10ull * 1000000ull)

/* Work to do after the lock is dropped. */
struct post {
	struct pool_task *start, **start_tail; /* admitted, in order, for ops->start */
	struct pool_task *nudge;   /* cancel flag raised, for ops->cancel (walk_next, ref held) */
	struct pool_task *pruned;  /* out of the pool, pool ref to drop (prune_next) */
	uint64_t ids_inline[16];
	uint64_t *ids;             /* notify these */
	size_t nids, cap;
	struct {
		void *payload;
		pool_payload_free_fn fn;
	} frees_inline[8], *frees;
	size_t nfrees, fcap;
	struct pool_event events_inline[8], *events; /* for cfg->on_event */
	size_t nev, evcap;
	int oom;                   /* a post list could not grow: notifies dropped */
};

static void post_init(struct post *po);
static void post_run(struct pool *p, struct post *po);
static void post_notify(struct post *po, uint64_t id);
static void admit(struct pool *p, struct post *po, uint64_t now);
static void end_task(struct pool *p, struct pool_task *t, int state,
		     const char *why, struct post *po, uint64_t now);
static void *timer_main(void *arg);

/* ---- clock and timed waits --------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pool_now(struct pool *p)
{
	return p->clock.now_ns ? p->clock.now_ns(p->clock.ctx) : mono_ns();
}

/* Absolute CLOCK_MONOTONIC time timeout_ns from now, saturating. */
void pool_abs_timeout(uint64_t timeout_ns, struct timespec *ts)
{
	uint64_t now = mono_ns(), cap = (uint64_t)1 << 62;
	uint64_t at = timeout_ns > cap - now ? cap : now + timeout_ns;
	ts->tv_sec = (time_t)(at / 1000000000ull);
	ts->tv_nsec = (long)(at % 1000000000ull);
}

/* Wait on cv until *ts (NULL: forever). Returns 0 or ETIMEDOUT. */
int pool_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *ts)
{
	if (!ts)
		return pthread_cond_wait(cv, mu);
	return pthread_cond_timedwait(cv, mu, ts);
}

static pthread_condattr_t mono_attr;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;
static int mono_attr_rc;

static void mono_attr_init(void)
{
	mono_attr_rc = pthread_condattr_init(&mono_attr);
	if (!mono_attr_rc)
		mono_attr_rc = pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC);
}

/* Condvars time out against CLOCK_MONOTONIC (pool_abs_timeout). One shared
 * attribute object: tasks init a condvar each, so this is on the hot path. */
static int cond_init_mono(pthread_cond_t *cv)
{
	pthread_once(&mono_once, mono_attr_init);
	return mono_attr_rc ? mono_attr_rc : pthread_cond_init(cv, &mono_attr);
}

/* ---- lists, hash, heap ------------------------------------------------- */

static void list_push(struct tlist *l, struct pool_task *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
	l->n++;
}

static void list_remove(struct tlist *l, struct pool_task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NULL;
	l->n--;
}

/* Ids are handed out in sequence, so the identity spreads the live window
 * of ids over consecutive buckets: no collisions while the window is
 * smaller than the table, and neighbouring ids share cache lines. */
static size_t hash_slot(const struct pool *p, uint64_t id)
{
	return (size_t)id & (p->nbuckets - 1);
}

static void hash_link(struct pool_task **head, struct pool_task *t)
{
	t->hnext = *head;
	if (*head)
		(*head)->hpprev = &t->hnext;
	t->hpprev = head;
	*head = t;
}

static int hash_grow(struct pool *p)
{
	size_t n = p->nbuckets ? p->nbuckets * 2 : 256;
	struct pool_task **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	struct pool_task **old = p->buckets;
	size_t oldn = p->nbuckets;
	p->buckets = b;
	p->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct pool_task *t = old[i], *nx; t; t = nx) {
			nx = t->hnext;
			hash_link(&b[hash_slot(p, t->id)], t);
		}
	}
	free(old);
	return 0;
}

static void hash_insert(struct pool *p, struct pool_task *t)
{
	hash_link(&p->buckets[hash_slot(p, t->id)], t);
	p->ntasks++;
}

static void hash_remove(struct pool *p, struct pool_task *t)
{
	if (!t->hpprev)
		return;
	*t->hpprev = t->hnext;
	if (t->hnext)
		t->hnext->hpprev = t->hpprev;
	t->hnext = NULL;
	t->hpprev = NULL;
	p->ntasks--;
}

struct pool_task *pool_lookup(struct pool *p, uint64_t id)
{
	struct pool_task *t = p->buckets[hash_slot(p, id)];
	while (t && t->id != id)
		t = t->hnext;
	return t;
}

static void heap_set(struct pool *p, size_t i, struct pool_task *t)
{
	p->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct pool *p, size_t i)
{
	struct pool_task *t = p->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (p->heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(p, i, p->heap[parent]);
		i = parent;
	}
	heap_set(p, i, t);
}

static void heap_down(struct pool *p, size_t i)
{
	struct pool_task *t = p->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= p->heap_n)
			break;
		if (c + 1 < p->heap_n && p->heap[c + 1]->deadline_ns < p->heap[c]->deadline_ns)
			c++;
		if (p->heap[c]->deadline_ns >= t->deadline_ns)
			break;
		heap_set(p, i, p->heap[c]);
		i = c;
	}
	heap_set(p, i, t);
}

static int heap_reserve(struct pool *p)
{
	if (p->heap_n < p->heap_cap)
		return 0;
	size_t n = p->heap_cap ? p->heap_cap * 2 : 64;
	struct pool_task **h = realloc(p->heap, n * sizeof *h);
	if (!h)
		return -1;
	p->heap = h;
	p->heap_cap = n;
	return 0;
}

static void heap_push(struct pool *p, struct pool_task *t)
{
	heap_set(p, p->heap_n++, t);
	heap_up(p, t->heap_idx);
}

static void heap_remove(struct pool *p, struct pool_task *t)
{
	size_t i = t->heap_idx;
	if (i == SIZE_MAX)
		return;
	t->heap_idx = SIZE_MAX;
	struct pool_task *last = p->heap[--p->heap_n];
	if (last == t)
		return;
	heap_set(p, i, last);
	heap_up(p, i);
	heap_down(p, last->heap_idx);
}

/* ---- post: work done after unlocking ------------------------------------ */

static void post_init(struct post *po)
{
	memset(po, 0, offsetof(struct post, ids_inline));
	po->start_tail = &po->start;
	po->ids = po->ids_inline;
	po->cap = sizeof po->ids_inline / sizeof po->ids_inline[0];
	po->frees = po->frees_inline;
	po->fcap = sizeof po->frees_inline / sizeof po->frees_inline[0];
	po->events = po->events_inline;
	po->evcap = sizeof po->events_inline / sizeof po->events_inline[0];
	po->nids = po->nfrees = po->nev = 0;
	po->oom = 0;
}

/* Double a post list that starts in its inline array. 0, or -1 (no memory:
 * the list keeps what it has). */
static int post_grow(void **arr, const void *inl, size_t *cap, size_t elem)
{
	size_t n = *cap * 2;
	void *a = *arr == inl ? malloc(n * elem) : realloc(*arr, n * elem);
	if (!a)
		return -1;
	if (*arr == inl)
		memcpy(a, inl, *cap * elem);
	*arr = a;
	*cap = n;
	return 0;
}

static void post_notify(struct post *po, uint64_t id)
{
	if (po->nids == po->cap &&
	    post_grow((void **)&po->ids, po->ids_inline, &po->cap, sizeof *po->ids)) {
		po->oom = 1;
		return;
	}
	po->ids[po->nids++] = id;
}

/* A state change for cfg->on_event: a submission (QUEUED), an admission
 * (RUNNING) or an end. */
static void post_event(struct pool *p, struct post *po, const struct pool_task *t,
		       uint64_t now)
{
	if (!p->on_event)
		return;
	if (po->nev == po->evcap &&
	    post_grow((void **)&po->events, po->events_inline, &po->evcap, sizeof *po->events))
		return;
	uint64_t since = t->state == POOL_RUNNING || !t->started_ns ? t->created_ns
								     : t->started_ns;
	po->events[po->nev++] = (struct pool_event){
		.id = t->id, .state = t->state, .priority = t->prio, .cost = t->cost,
		.elapsed_ns = now >= since ? now - since : 0,
		.owner_uid = t->owner_uid, .prompt_tokens = (uint32_t)t->prompt_tokens,
	};
}

/* Detach the payload so it is freed outside the lock. */
static void post_free_payload(struct post *po, struct pool_task *t)
{
	if (!t->payload || !t->payload_free) {
		t->payload = NULL;
		return;
	}
	if (po->nfrees == po->fcap &&
	    post_grow((void **)&po->frees, po->frees_inline, &po->fcap, sizeof *po->frees))
		return; /* keep it on the task: freed with the task */
	po->frees[po->nfrees].payload = t->payload;
	po->frees[po->nfrees++].fn = t->payload_free;
	t->payload = NULL;
}

static void post_start(struct pool *p, struct post *po)
{
	struct pool_task *t = po->start;
	po->start = NULL;
	po->start_tail = &po->start;
	while (t) {
		struct pool_task *nx = t->start_next;
		t->start_next = NULL;
		int rc = p->exec.ops->start(p->exec.ctx, t);
		if (rc < 0) {
			char msg[96];
			snprintf(msg, sizeof msg, "executor start failed: %s", pool_err_name(rc));
			pool_task_finish(t, 0, msg);
		}
		t = nx;
	}
}

static void post_nudge(struct pool *p, struct post *po)
{
	struct pool_task *t = po->nudge;
	po->nudge = NULL;
	while (t) {
		struct pool_task *nx = t->walk_next;
		if (p->exec.ops->cancel)
			p->exec.ops->cancel(p->exec.ctx, t);
		pool_task_unref(t);
		t = nx;
	}
}

static void post_run(struct pool *p, struct post *po)
{
	for (size_t i = 0; i < po->nfrees; i++)
		po->frees[i].fn(po->frees[i].payload);
	for (struct pool_task *t = po->pruned, *nx; t; t = nx) {
		nx = t->prune_next;
		pool_task_unref(t);
	}
	if (p->store)
		pool_store_drain(p);
	if (p->notify)
		for (size_t i = 0; i < po->nids; i++)
			p->notify(p->notify_ctx, po->ids[i]);
	for (size_t i = 0; i < po->nev; i++)
		p->on_event(p->on_event_ctx, &po->events[i]);
	post_nudge(p, po);
	post_start(p, po);
	if (po->ids != po->ids_inline)
		free(po->ids);
	if (po->frees != po->frees_inline)
		free(po->frees);
	if (po->events != po->events_inline)
		free(po->events);
}

/* Unlock, then do the deferred work. */
static void unlock_post(struct pool *p, struct post *po)
{
	pthread_mutex_unlock(&p->mu);
	post_run(p, po);
}

/* ---- task lifetime ----------------------------------------------------- */

static struct pool_task *task_new(struct pool *p, const struct pool_submit *s)
{
	struct pool_task *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (cond_init_mono(&t->cv)) {
		free(t);
		return NULL;
	}
	t->pool = p;
	t->prio = s->priority;
	t->cost = s->cost;
	t->owner_uid = s->owner_uid;
	t->prompt_tokens = s->prompt_tokens;
	t->payload = s->payload;
	t->payload_free = s->payload_free;
	t->heap_idx = SIZE_MAX;
	atomic_init(&t->refs, 1);
	atomic_init(&t->cancel, POOL_CANCEL_NONE);
	if (s->label && s->label[0])
		t->label = strndup(s->label, POOL_LABEL_MAX); /* NULL on OOM: no label */
	t->attempts = s->attempts;
	t->unconfirmed = s->hold;
	if (s->key && s->key[0] && !(t->key = strdup(s->key)))
		goto oom;
	if (s->request_len && p->store) {
		if (!(t->request = malloc(s->request_len)))
			goto oom;
		memcpy(t->request, s->request, s->request_len);
		t->request_len = s->request_len;
	}
	return t;
oom:
	t->payload = NULL; /* the caller frees it */
	pthread_cond_destroy(&t->cv);
	free(t->label);
	free(t->key);
	free(t);
	return NULL;
}

static void task_destroy(struct pool_task *t)
{
	if (t->payload && t->payload_free)
		t->payload_free(t->payload);
	pthread_cond_destroy(&t->cv);
	free(t->error);
	free(t->label);
	free(t->key);
	free(t->request);
	free(t->out);
	free(t->chunk_end);
	free(t);
}

void pool_task_ref(struct pool_task *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void pool_task_unref(struct pool_task *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		task_destroy(t);
}

/* ---- ending a task: the one place units are released -------------------- */

static void count_end(struct pool *p, int state)
{
	switch (state) {
	case POOL_DONE: p->completed++; break;
	case POOL_FAILED: p->failed++; break;
	case POOL_CANCELLED: p->cancelled++; break;
	case POOL_EXPIRED: p->expired++; break;
	case POOL_TIMEOUT: p->timed_out++; break;
	default: break;
	}
}

/* When the timer should prune a task that ended at `ended`. */
/* The mailbox holds more tasks or output than retention allows. */
static int over_retention(const struct pool *p)
{
	return (p->retention_tasks && p->mailbox.n > p->retention_tasks) ||
	       (p->retention_bytes && p->mailbox_bytes > p->retention_bytes);
}

static uint64_t prune_at(const struct pool *p, uint64_t ended)
{
	uint64_t d = p->retention_ns + POOL_PRUNE_SLACK_NS;
	if (d < p->retention_ns || d > UINT64_MAX - ended)
		return UINT64_MAX;
	return ended + d;
}

static void end_task(struct pool *p, struct pool_task *t, int state,
		     const char *why, struct post *po, uint64_t now)
{
	if (t->state == POOL_QUEUED) {
		list_remove(&p->queue[t->prio], t);
	} else {
		list_remove(&p->running, t);
		p->used_units -= t->cost;
	}
	pool_user_sub(p, t->owner_uid, t->cost);
	heap_remove(p, t);
	t->state = state;
	atomic_store_explicit(&t->finished, 1, memory_order_release);
	t->ended_ns = now;
	if (why && !t->error)
		t->error = strndup(why, POOL_ERROR_MAX); /* NULL on OOM: no message */
	list_push(&p->mailbox, t);
	p->mailbox_bytes += t->out_len;
	count_end(p, state);
	p->tokens += t->tokens;
	p->prompt_tokens += t->prompt_tokens;
	post_free_payload(po, t);
	post_notify(po, t->id);
	post_event(p, po, t, now);
	if (p->store)
		pool_store_put(p, t, t->store_gap); /* the output went as it grew */
	pthread_cond_broadcast(&t->cv);
	pthread_cond_broadcast(&p->state_cv);
	if (!p->manual_tick && (prune_at(p, now) < p->timer_target || over_retention(p)))
		pthread_cond_signal(&p->timer_cv);
}

/* ---- admission ----------------------------------------------------------- */

static uint64_t queued_count(const struct pool *p)
{
	uint64_t n = 0;
	for (int i = 0; i < POOL_PRIO_COUNT; i++)
		n += p->queue[i].n;
	return n;
}

/* Unlimited units gate nothing: a huge cost must not stop the walk. */
static int fits(const struct pool *p, const struct pool_task *t)
{
	if (p->max_units == POOL_UNLIMITED)
		return 1;
	return p->used_units < p->max_units && t->cost <= p->max_units - p->used_units;
}

static void record_wait(struct pool *p, uint64_t wait)
{
	p->waits[p->wait_pos] = wait;
	p->wait_pos = (p->wait_pos + 1) % POOL_WAIT_RING;
	p->wait_n += p->wait_n < POOL_WAIT_RING;
	p->wait_count++;
	p->wait_sum_ns += wait;
}

/* Reserve units and hand the task to the start list: the one place units are
 * reserved, right after fits() under the same lock hold. */
static void admit_one(struct pool *p, struct pool_task *t, struct post *po, uint64_t now)
{
	list_remove(&p->queue[t->prio], t);
	p->used_units += t->cost;
	list_push(&p->running, t);
	t->state = POOL_RUNNING;
	t->started_ns = now;
	t->admit_seq = ++p->admits;
	record_wait(p, now >= t->created_ns ? now - t->created_ns : 0);
	t->start_next = NULL;
	*po->start_tail = t;
	po->start_tail = &t->start_next;
	post_notify(po, t->id);
	post_event(p, po, t, now);
	if (p->store)
		pool_store_put(p, t, 0);
}

/* The walk documented in pool.h (ADMISSION RULE). Skips are counted lazily:
 * a passed-over task remembers the admission count when it was passed, and
 * stop_at is the admission count at which the first of them reaches
 * skip_limit, after which it reserves and the walk stops. */
static void admit(struct pool *p, struct post *po, uint64_t now)
{
	uint64_t adm = 0, stop_at = UINT64_MAX;
	struct pool_task *passed = NULL;

	if (p->no_admit || p->held)
		return;
	for (int prio = POOL_PRIO_COUNT - 1; prio >= 0; prio--) {
		for (struct pool_task *t = p->queue[prio].head, *nx; t; t = nx) {
			nx = t->next;
			if (p->running.n >= pool_running_limit(p) ||
			    (p->max_units != POOL_UNLIMITED && p->used_units >= p->max_units))
				goto out;
			if (t->deadline_ns && t->deadline_ns <= now) {
				end_task(p, t, POOL_EXPIRED, "deadline passed while queued", po, now);
				continue;
			}
			if (t->unconfirmed)
				continue; /* not stored yet: as if it had not arrived */
			if (fits(p, t)) {
				admit_one(p, t, po, now);
				if (++adm >= stop_at)
					goto out;
				continue;
			}
			if (t->cost > p->max_units)
				continue; /* cannot fit until max_units is raised: never reserves */
			if (t->skips >= p->skip_limit)
				goto out; /* reserved: nothing behind it starts */
			t->walk_mark = adm;
			t->walk_next = passed;
			passed = t;
			if (adm + (p->skip_limit - t->skips) < stop_at)
				stop_at = adm + (p->skip_limit - t->skips);
		}
	}
out:
	for (struct pool_task *t = passed; t; t = t->walk_next)
		t->skips += (unsigned)(adm - t->walk_mark);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int pool_init_sync(struct pool *p)
{
	if (pthread_mutex_init(&p->mu, NULL))
		return -1;
	if (pthread_mutex_init(&p->limits_mu, NULL) || pthread_mutex_init(&p->sq_mu, NULL))
		return -1;
	if (cond_init_mono(&p->state_cv) || cond_init_mono(&p->timer_cv))
		return -1;
	return hash_grow(p);
}

static int pool_check_config(const struct pool_config *cfg, char *err, size_t errlen)
{
	if (cfg->max_units < 1) {
		snprintf(err, errlen, "pool %s: max_units must be >= 1", cfg->name ? cfg->name : "?");
		return -1;
	}
	if (cfg->max_running < 1) {
		snprintf(err, errlen, "pool %s: max_running must be >= 1 (POOL_NO_CAP: no cap)",
			 cfg->name ? cfg->name : "?");
		return -1;
	}
	if (cfg->threads > POOL_MAX_THREADS) {
		snprintf(err, errlen, "pool %s: threads must be 0..%u", cfg->name ? cfg->name : "?",
			 POOL_MAX_THREADS);
		return -1;
	}
	return 0;
}

static void pool_copy_config(struct pool *p, const struct pool_config *cfg)
{
	snprintf(p->name, sizeof p->name, "%s", cfg->name ? cfg->name : "");
	p->clock = cfg->clock;
	p->notify = cfg->notify;
	p->notify_ctx = cfg->notify_ctx;
	p->on_event = cfg->on_event;
	p->on_event_ctx = cfg->on_event_ctx;
	p->store = cfg->store;
	p->max_units = cfg->max_units;
	p->max_user_units = cfg->max_user_units ? cfg->max_user_units : POOL_UNLIMITED;
	p->max_owner_units = cfg->max_owner_units ? cfg->max_owner_units : POOL_UNLIMITED;
	p->owner_uid = cfg->owner_uid;
	p->aging_ns = cfg->aging_ns;
	p->max_queue_depth = cfg->max_queue_depth;
	p->max_running = cfg->max_running;
	p->timeout_ns = cfg->timeout_ns;
	p->retention_ns = cfg->retention_ns;
	p->retention_tasks = cfg->retention_tasks;
	p->retention_bytes = cfg->retention_bytes;
	p->skip_limit = cfg->skip_limit ? cfg->skip_limit : POOL_SKIP_LIMIT;
	p->max_output = cfg->max_output_bytes ? cfg->max_output_bytes : POOL_DEFAULT_MAX_OUTPUT;
	if (p->max_output > SIZE_MAX / 4)
		p->max_output = SIZE_MAX / 4; /* so buffer sizes never overflow */
	p->next_id = cfg->first_id ? cfg->first_id : 1;
	p->next_id_fn = cfg->next_id;
	p->next_id_ctx = cfg->next_id_ctx;
	p->manual_tick = cfg->manual_tick;
	p->timer_target = UINT64_MAX;
}

static int pool_start_executor(struct pool *p, unsigned threads, char *err, size_t errlen)
{
	unsigned cap = 0;
	int rc = p->exec.ops->set_threads(p->exec.ctx, threads, &cap);
	if (rc < 0) {
		snprintf(err, errlen, "pool %s: executor could not start %u threads: %s",
			 p->name, threads, pool_err_name(rc));
		return -1;
	}
	p->threads = threads;
	p->capacity = cap;
	return 0;
}

struct pool *pool_new(const struct pool_config *cfg, struct pool_executor exec,
		      char *err, size_t errlen)
{
	struct pool *p = NULL;
	if (pool_check_config(cfg, err, errlen) < 0)
		goto fail;
	p = calloc(1, sizeof *p);
	if (!p || pool_init_sync(p) < 0) {
		snprintf(err, errlen, "pool %s: out of memory", cfg->name ? cfg->name : "?");
		free(p);
		p = NULL;
		goto fail;
	}
	pool_copy_config(p, cfg);
	p->exec = exec;
	if (pool_start_executor(p, cfg->threads, err, errlen) < 0)
		goto fail_started;
	if (!p->manual_tick) {
		if (pthread_create(&p->timer, NULL, timer_main, p)) {
			snprintf(err, errlen, "pool %s: cannot start timer thread", p->name);
			goto fail_started;
		}
		p->timer_started = 1;
	}
	return p;
fail_started:
	if (exec.ops->stop)
		exec.ops->stop(exec.ctx);
	exec.ops->free(exec.ctx);
	free(p->buckets);
	free(p);
	return NULL;
fail:
	if (exec.ops && exec.ops->free)
		exec.ops->free(exec.ctx);
	return NULL;
}

static void pool_stop_timer(struct pool *p)
{
	if (!p->timer_started)
		return;
	pthread_mutex_lock(&p->mu);
	p->timer_stop = 1;
	pthread_cond_signal(&p->timer_cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->timer, NULL);
	p->timer_started = 0;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pool_shutdown(p, POOL_SHUTDOWN_CANCEL, POOL_FREE_SHUTDOWN_NS);
	pool_stop_timer(p);
	if (p->exec.ops->stop)
		p->exec.ops->stop(p->exec.ctx);
	p->exec.ops->free(p->exec.ctx);
	if (p->store)
		pool_store_drain(p);
	pool_store_free(p);
	for (size_t i = 0; i < p->nbuckets; i++) {
		for (struct pool_task *t = p->buckets[i], *nx; t; t = nx) {
			nx = t->hnext;
			pool_task_unref(t);
		}
	}
	free(p->buckets);
	free(p->heap);
	pool_user_free(p);
	pthread_cond_destroy(&p->state_cv);
	pthread_cond_destroy(&p->timer_cv);
	pthread_mutex_destroy(&p->limits_mu);
	pthread_mutex_destroy(&p->sq_mu);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- submit ---------------------------------------------------------------- */

static uint64_t task_deadline(const struct pool *p, const struct pool_submit *s, uint64_t now)
{
	if (s->deadline_ns)
		return s->deadline_ns;
	uint64_t rel = s->timeout_ns ? s->timeout_ns : p->timeout_ns;
	if (!rel)
		return 0;
	return rel > UINT64_MAX - now ? UINT64_MAX : now + rel;
}

static int submit_check(struct pool *p, const struct pool_submit *s)
{
	if (p->shutting_down) {
		p->rej_shutdown++;
		return -POOL_E_SHUTDOWN;
	}
	if (s->cost > p->max_units) {
		p->rej_capacity++;
		return -POOL_E_CAPACITY;
	}
	if (p->max_queue_depth != POOL_UNLIMITED && queued_count(p) >= p->max_queue_depth) {
		p->rej_queue_full++;
		return -POOL_E_QUEUE_FULL;
	}
	int rc = pool_user_check(p, s->owner_uid, s->cost);
	if (rc == -POOL_E_USER_CAP)
		p->rej_queue_full++; /* counted with QUEUE_FULL: both mean "retry later" */
	if (rc)
		return rc;
	if ((p->ntasks + 1 > p->nbuckets && hash_grow(p) < 0) || heap_reserve(p) < 0)
		return -POOL_E_NOMEM;
	if (s->id && pool_lookup(p, s->id))
		return -POOL_E_INVALID; /* a restored id must be unused */
	return 0;
}

/* A restored task goes behind the last queued task of its level with a
 * smaller id, so a restart keeps the FIFO order whatever order it comes in. */
static void queue_insert(struct tlist *l, struct pool_task *t)
{
	struct pool_task *at = l->tail;
	while (at && at->id > t->id)
		at = at->prev;
	if (!at || at == l->tail) {
		if (!at && l->head) { /* before the head */
			t->prev = NULL;
			t->next = l->head;
			l->head->prev = t;
			l->head = t;
			l->n++;
			return;
		}
		list_push(l, t);
		return;
	}
	t->prev = at;
	t->next = at->next;
	at->next->prev = t;
	at->next = t;
	l->n++;
}

static void submit_enqueue(struct pool *p, struct pool_task *t, const struct pool_submit *s,
			   uint64_t now)
{
	if (s->id)
		t->id = s->id;
	else
		t->id = p->next_id_fn ? p->next_id_fn(p->next_id_ctx) : p->next_id++;
	t->created_ns = s->created_ns ? s->created_ns : now;
	t->level_ns = t->created_ns;
	t->deadline_ns = task_deadline(p, s, t->created_ns);
	hash_insert(p, t);
	if (s->id)
		queue_insert(&p->queue[t->prio], t);
	else
		list_push(&p->queue[t->prio], t);
	pool_user_add(p, t->owner_uid, t->cost);
	p->submitted++;
	if (t->deadline_ns) {
		heap_push(p, t);
		if (!p->manual_tick && t->deadline_ns < p->timer_target)
			pthread_cond_signal(&p->timer_cv);
	}
	if (p->aging_ns && !p->manual_tick && t->prio < POOL_PRIO_HIGH &&
	    now + p->aging_ns < p->timer_target)
		pthread_cond_signal(&p->timer_cv); /* it will age before the timer wakes */
	if (p->store)
		pool_store_put(p, t, 0);
}

int pool_submit(struct pool *p, const struct pool_submit *s, uint64_t *id)
{
	struct pool_task *t = NULL;
	struct post po;
	int rc = -POOL_E_INVALID;

	if (!s || s->priority < 0 || s->priority >= POOL_PRIO_COUNT || s->cost < 1)
		goto reject;
	rc = -POOL_E_NOMEM;
	if (!(t = task_new(p, s)))
		goto reject;
	post_init(&po);
	pthread_mutex_lock(&p->mu);
	rc = submit_check(p, s);
	if (rc < 0) {
		pthread_mutex_unlock(&p->mu);
		t->payload = NULL; /* freed below, once */
		task_destroy(t);
		goto reject;
	}
	uint64_t now = pool_now(p);
	submit_enqueue(p, t, s, now);
	if (id)
		*id = t->id;
	post_event(p, &po, t, now); /* before its admission's, in the same post */
	post_notify(&po, t->id);
	admit(p, &po, now);
	unlock_post(p, &po);
	return 0;
reject:
	if (s && s->payload && s->payload_free)
		s->payload_free(s->payload);
	return rc;
}

/* ---- restore ---------------------------------------------------------------- */

int pool_confirm(struct pool *p, uint64_t id)
{
	struct post po;
	int rc = 0;

	post_init(&po);
	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (!t)
		rc = -POOL_E_NOT_FOUND;
	else if (t->unconfirmed) {
		t->unconfirmed = 0;
		admit(p, &po, pool_now(p));
	}
	unlock_post(p, &po);
	return rc;
}

int pool_hold(struct pool *p, int hold)
{
	struct post po;

	post_init(&po);
	pthread_mutex_lock(&p->mu);
	p->held = hold;
	if (!hold)
		admit(p, &po, pool_now(p));
	unlock_post(p, &po);
	return 0;
}

/* The output as one chunk (a restored task replays it in one piece). */
static int restore_output(struct pool_task *t, const struct store_record *r)
{
	if (!r->output_len)
		return 0;
	if (!(t->out = malloc(r->output_len + 1)) || !(t->chunk_end = malloc(sizeof(size_t))))
		return -1;
	memcpy(t->out, r->output, r->output_len);
	t->out[r->output_len] = '\0';
	t->out_len = t->out_cap = r->output_len;
	t->chunk_end[0] = r->output_len;
	t->nchunks = t->chunk_cap = 1;
	return 0;
}

int pool_restore_ended(struct pool *p, const struct store_record *r)
{
	struct pool_submit s = { .priority = r->priority, .cost = r->cost ? r->cost : 1,
				 .owner_uid = r->owner_uid, .label = r->label, .key = r->key };
	if (!POOL_STATE_TERMINAL(r->state) || r->state >= POOL_STATE_COUNT ||
	    r->priority < 0 || r->priority >= POOL_PRIO_COUNT || !r->id)
		return -POOL_E_INVALID;
	struct pool_task *t = task_new(p, &s);
	if (!t || restore_output(t, r) < 0 || (r->error && !(t->error = strdup(r->error)))) {
		if (t)
			task_destroy(t);
		return -POOL_E_NOMEM;
	}
	t->id = r->id;
	t->attempts = r->attempts;
	t->state = r->state;
	t->created_ns = r->created_ns;
	t->started_ns = r->started_ns;
	t->ended_ns = r->ended_ns;
	atomic_store_explicit(&t->finished, 1, memory_order_relaxed);
	pthread_mutex_lock(&p->mu);
	int rc = pool_lookup(p, t->id) ? -POOL_E_INVALID
		 : p->ntasks + 1 > p->nbuckets && hash_grow(p) < 0 ? -POOL_E_NOMEM : 0;
	if (rc == 0) {
		hash_insert(p, t);
		list_push(&p->mailbox, t);
		p->mailbox_bytes += t->out_len;
		if (!p->manual_tick)
			pthread_cond_signal(&p->timer_cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (rc < 0)
		task_destroy(t);
	return rc;
}

/* ---- cancel ---------------------------------------------------------------- */

/* Raise a running task's cancel flag once; the executor is nudged after
 * unlocking (a reference keeps the task alive until then). */
static void raise_cancel(struct pool_task *t, int reason, struct post *po)
{
	int none = POOL_CANCEL_NONE;
	if (!atomic_compare_exchange_strong(&t->cancel, &none, reason))
		return;
	pthread_cond_broadcast(&t->cv);
	pool_task_ref(t);
	t->walk_next = po->nudge;
	po->nudge = t;
	post_notify(po, t->id);
}

int pool_cancel(struct pool *p, uint64_t id)
{
	struct post po;
	int rc = 0;

	post_init(&po);
	pthread_mutex_lock(&p->mu);
	struct pool_task *t = pool_lookup(p, id);
	if (!t) {
		rc = -POOL_E_NOT_FOUND;
	} else if (POOL_STATE_TERMINAL(t->state)) {
		rc = -POOL_E_STATE;
	} else if (t->state == POOL_QUEUED) {
		uint64_t now = pool_now(p);
		end_task(p, t, POOL_CANCELLED, "cancelled while queued", &po, now);
		admit(p, &po, now);
	} else {
		raise_cancel(t, POOL_CANCEL_USER, &po);
	}
	unlock_post(p, &po);
	return rc;
}

/* ---- executor side ----------------------------------------------------------- */

uint64_t pool_task_id(const struct pool_task *t) { return t->id; }
void *pool_task_payload(const struct pool_task *t) { return t->payload; }
uint64_t pool_task_cost(const struct pool_task *t) { return t->cost; }
struct pool *pool_task_pool(const struct pool_task *t) { return t->pool; }

int pool_task_cancelled(const struct pool_task *t)
{
	return atomic_load_explicit(&((struct pool_task *)t)->cancel, memory_order_acquire);
}

int pool_task_wait_cancel(struct pool_task *t, uint64_t timeout_ns)
{
	struct pool *p = t->pool;
	struct timespec ts;
	int c = pool_task_cancelled(t);

	if (c || timeout_ns == 0)
		return c;
	pool_abs_timeout(timeout_ns, &ts);
	pthread_mutex_lock(&p->mu);
	while (!(c = pool_task_cancelled(t)))
		if (pool_cond_wait_until(&t->cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->mu);
	return pool_task_cancelled(t);
}

static int grow_output(struct pool_task *t, size_t len)
{
	size_t need = t->out_len + len + 1; /* len <= max_output - out_len: no overflow */
	if (need > t->out_cap) {
		size_t n = t->out_cap ? t->out_cap : 256;
		while (n < need)
			n = n > SIZE_MAX / 2 ? need : n * 2;
		char *o = realloc(t->out, n);
		if (!o)
			return -1;
		t->out = o;
		t->out_cap = n;
	}
	if (t->nchunks == t->chunk_cap) {
		size_t n = t->chunk_cap ? t->chunk_cap * 2 : 16;
		size_t *c = realloc(t->chunk_end, n * sizeof *c);
		if (!c)
			return -1;
		t->chunk_end = c;
		t->chunk_cap = n;
	}
	return 0;
}

/* Under mu: append one chunk to t's output. Returns 0 or -POOL_E_*. */
static int emit_locked(struct pool *p, struct pool_task *t, const void *data, size_t len)
{
	if (atomic_load_explicit(&t->finished, memory_order_relaxed))
		return -POOL_E_STATE;
	if (t->overflow || len > p->max_output - t->out_len) {
		t->overflow = 1;
		return -POOL_E_INVALID;
	}
	if (grow_output(t, len) < 0)
		return -POOL_E_NOMEM;
	if (len)
		memcpy(t->out + t->out_len, data, len);
	if (p->store && len && pool_store_append(p, t, t->out_len, data, len) < 0)
		t->store_gap = 1;
	t->out_len += len;
	t->out[t->out_len] = '\0';
	t->chunk_end[t->nchunks++] = t->out_len;
	pthread_cond_broadcast(&t->cv);
	return 0;
}

int pool_task_emit(struct pool_task *t, const void *data, size_t len)
{
	struct pool *p = t->pool;

	pthread_mutex_lock(&p->mu);
	int rc = emit_locked(p, t, data, len);
	uint64_t id = t->id;
	pthread_mutex_unlock(&p->mu);
	if (p->store)
		pool_store_drain(p);
	if (rc == 0 && p->notify)
		p->notify(p->notify_ctx, id);
	return rc;
}

/* One lock hold for a whole step of a batch executor: a reader of the pool
 * (the event loop draining streams) waits for one short hold per step
 * instead of contending for the lock once per chunk. */
void pool_emit_batch(struct pool_emit *v, size_t n)
{
	if (!n)
		return;
	struct pool *p = v[0].t->pool;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		v[i].rc = emit_locked(p, v[i].t, v[i].data, v[i].len);
		v[i].id = v[i].t->id;
	}
	pthread_mutex_unlock(&p->mu);
	if (p->store)
		pool_store_drain(p);
	for (size_t i = 0; i < n && p->notify; i++)
		if (v[i].rc == 0)
			p->notify(p->notify_ctx, v[i].id);
}

/* Terminal state of a handed-back task: a raised cancel flag wins. */
static int finish_state(const struct pool_task *t, int ok, const char **why)
{
	switch (pool_task_cancelled(t)) {
	case POOL_CANCEL_USER: *why = "cancelled"; return POOL_CANCELLED;
	case POOL_CANCEL_SHUTDOWN: *why = "cancelled by shutdown"; return POOL_CANCELLED;
	case POOL_CANCEL_TIMEOUT: *why = "deadline passed while running"; return POOL_TIMEOUT;
	default: break;
	}
	if (t->overflow) {
		*why = "output exceeds max_output_bytes";
		return POOL_FAILED;
	}
	return ok ? POOL_DONE : POOL_FAILED;
}

void pool_task_finish(struct pool_task *t, int ok, const char *errmsg)
{
	struct pool *p = t->pool;
	struct post po;
	const char *why = NULL;

	/* fast path for the thread executor's check after a job that finished
	 * its task itself (the caller holds a reference) */
	if (atomic_load_explicit(&t->finished, memory_order_acquire))
		return;
	post_init(&po);
	pthread_mutex_lock(&p->mu);
	if (atomic_load_explicit(&t->finished, memory_order_relaxed) || t->state != POOL_RUNNING) {
		pthread_mutex_unlock(&p->mu);
		return; /* handed back twice: ignored */
	}
	int state = finish_state(t, ok, &why);
	if (state == POOL_FAILED && !t->overflow)
		why = errmsg && errmsg[0] ? errmsg : "executor error";
	uint64_t now = pool_now(p);
	end_task(p, t, state, why, &po, now);
	admit(p, &po, now);
	unlock_post(p, &po);
}

/* ---- deadlines, retention, timer ------------------------------------------- */

#define PRUNE_BATCH 256 /* tasks pruned per lock hold */

/* The oldest finished task goes when its time is up, or when the mailbox
 * holds more tasks or output than retention allows. */
static int prune_due(const struct pool *p, const struct pool_task *t, uint64_t now)
{
	return t && ((now >= t->ended_ns && now - t->ended_ns >= p->retention_ns) ||
		     over_retention(p));
}

/* Drop up to PRUNE_BATCH expired tasks from the mailbox; their memory is
 * released after unlocking (post->pruned). Returns 1 if more are due, so a
 * big backlog is pruned in short lock holds. */
static int prune(struct pool *p, struct post *po, uint64_t now)
{
	struct pool_task *t;
	for (int n = 0; n < PRUNE_BATCH; n++) {
		if (!prune_due(p, t = p->mailbox.head, now))
			return 0;
		list_remove(&p->mailbox, t);
		p->mailbox_bytes -= t->out_len;
		hash_remove(p, t);
		if (p->store)
			pool_store_del(p, t->id);
		t->prune_next = po->pruned;
		po->pruned = t;
	}
	return prune_due(p, p->mailbox.head, now);
}

/* Returns 1 if more mailbox entries are due (call again after unlocking). */
static int tick_locked(struct pool *p, struct post *po, uint64_t now)
{
	while (p->heap_n && p->heap[0]->deadline_ns <= now) {
		struct pool_task *t = p->heap[0];
		heap_remove(p, t);
		if (t->state == POOL_QUEUED)
			end_task(p, t, POOL_EXPIRED, "deadline passed while queued", po, now);
		else
			raise_cancel(t, POOL_CANCEL_TIMEOUT, po);
	}
	int more = prune(p, po, now);
	pool_age(p, now);
	admit(p, po, now);
	return more;
}

/* A queued task moves to the tail of level prio (aging). */
void pool_requeue(struct pool *p, struct pool_task *t, int prio, uint64_t now)
{
	list_remove(&p->queue[t->prio], t);
	t->prio = prio;
	t->level_ns = now;
	t->skips = 0;
	list_push(&p->queue[prio], t);
	if (p->store)
		pool_store_put(p, t, 0);
}

void pool_tick(struct pool *p)
{
	struct post po;
	int more;
	do {
		post_init(&po);
		pthread_mutex_lock(&p->mu);
		more = tick_locked(p, &po, pool_now(p));
		unlock_post(p, &po);
	} while (more);
}

/* Pool-clock time of the next deadline or retention expiry. */
static uint64_t next_wake(const struct pool *p)
{
	uint64_t at = p->heap_n ? p->heap[0]->deadline_ns : UINT64_MAX;
	const struct pool_task *m = p->mailbox.head;
	if (m && prune_at(p, m->ended_ns) < at)
		at = prune_at(p, m->ended_ns);
	uint64_t age = pool_age_next(p);
	return age < at ? age : at;
}

/* Sleeps on timer_cv until the next deadline or retention expiry; whoever
 * creates an earlier one signals it (timer_target). Never polls. */
static void *timer_main(void *arg)
{
	struct pool *p = arg;
	struct post po;

	pthread_mutex_lock(&p->mu);
	while (!p->timer_stop) {
		post_init(&po);
		int more = tick_locked(p, &po, pool_now(p));
		unlock_post(p, &po);
		pthread_mutex_lock(&p->mu);
		if (p->timer_stop)
			break;
		if (more)
			continue;
		uint64_t now = pool_now(p), at = next_wake(p);
		p->timer_target = at;
		if (at == UINT64_MAX) {
			pthread_cond_wait(&p->timer_cv, &p->mu);
		} else if (at > now) {
			struct timespec ts;
			pool_abs_timeout(at - now, &ts);
			pthread_cond_timedwait(&p->timer_cv, &p->mu, &ts);
		}
		p->timer_target = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- runtime limits --------------------------------------------------------- */

unsigned pool_running_limit(const struct pool *p)
{
	return p->max_running < p->capacity ? p->max_running : p->capacity;
}

/* Under mu: the running limit is about to change; remember a lowering so
 * the invariant check lets already-running work finish. */
static void note_running_limit(struct pool *p, unsigned max_running, unsigned capacity)
{
	unsigned now = max_running < capacity ? max_running : capacity;
	if (now < pool_running_limit(p))
		p->running_lowered_at = p->admits;
	p->max_running = max_running;
	p->capacity = capacity;
}

/* The executor's capacity follows from its thread count, so both change
 * together under limits_mu, and the executor is called without mu. */
static int set_threads(struct pool *p, uint64_t value)
{
	unsigned cap = 0;
	struct post po;

	if (value > POOL_MAX_THREADS)
		return -POOL_E_INVALID;
	pthread_mutex_lock(&p->limits_mu);
	int rc = p->exec.ops->set_threads(p->exec.ctx, (unsigned)value, &cap);
	if (rc < 0) {
		pthread_mutex_unlock(&p->limits_mu);
		return rc;
	}
	post_init(&po);
	pthread_mutex_lock(&p->mu);
	p->threads = (unsigned)value;
	note_running_limit(p, p->max_running, cap);
	admit(p, &po, pool_now(p));
	unlock_post(p, &po);
	pthread_mutex_unlock(&p->limits_mu);
	return 0;
}

/* The executor's own capacity changed (a model finished loading). Shares
 * limits_mu with set_threads, so the value of whichever runs last stands. */
int pool_set_capacity(struct pool *p, unsigned n)
{
	struct post po;

	post_init(&po);
	pthread_mutex_lock(&p->limits_mu);
	pthread_mutex_lock(&p->mu);
	note_running_limit(p, p->max_running, n);
	admit(p, &po, pool_now(p));
	unlock_post(p, &po);
	pthread_mutex_unlock(&p->limits_mu);
	return 0;
}

static void set_locked(struct pool *p, enum pool_limit which, uint64_t value)
{
	switch (which) {
	case POOL_LIMIT_MAX_UNITS:
		if (value < p->max_units)
			p->units_lowered_at = p->admits;
		p->max_units = value;
		break;
	case POOL_LIMIT_MAX_QUEUE_DEPTH: p->max_queue_depth = value; break;
	case POOL_LIMIT_MAX_RUNNING:
		note_running_limit(p, value >= POOL_NO_CAP ? POOL_NO_CAP : (unsigned)value,
				   p->capacity);
		break;
	case POOL_LIMIT_TIMEOUT_NS: p->timeout_ns = value; break;
	case POOL_LIMIT_RETENTION_NS:
		p->retention_ns = value;
		pthread_cond_signal(&p->timer_cv);
		break;
	case POOL_LIMIT_RETENTION_TASKS:
		p->retention_tasks = value;
		pthread_cond_signal(&p->timer_cv);
		break;
	case POOL_LIMIT_RETENTION_BYTES:
		p->retention_bytes = value;
		pthread_cond_signal(&p->timer_cv);
		break;
	case POOL_LIMIT_MAX_USER_UNITS: p->max_user_units = value; break;
	case POOL_LIMIT_MAX_OWNER_UNITS: p->max_owner_units = value; break;
	case POOL_LIMIT_AGING_NS:
		p->aging_ns = value;
		pthread_cond_signal(&p->timer_cv);
		break;
	default: break;
	}
}

int pool_set_limit(struct pool *p, enum pool_limit which, uint64_t value)
{
	struct post po;

	if (which == POOL_LIMIT_THREADS)
		return set_threads(p, value);
	if ((unsigned)which > POOL_LIMIT_AGING_NS)
		return -POOL_E_INVALID;
	if ((which == POOL_LIMIT_MAX_UNITS || which == POOL_LIMIT_MAX_RUNNING) && value < 1)
		return -POOL_E_INVALID;
	post_init(&po);
	pthread_mutex_lock(&p->mu);
	set_locked(p, which, value);
	admit(p, &po, pool_now(p));
	unlock_post(p, &po);
	return 0;
}

uint64_t pool_get_limit(struct pool *p, enum pool_limit which)
{
	uint64_t v = 0;
	pthread_mutex_lock(&p->mu);
	switch (which) {
	case POOL_LIMIT_MAX_UNITS: v = p->max_units; break;
	case POOL_LIMIT_MAX_QUEUE_DEPTH: v = p->max_queue_depth; break;
	case POOL_LIMIT_MAX_RUNNING:
		v = p->max_running == POOL_NO_CAP ? POOL_UNLIMITED : p->max_running;
		break;
	case POOL_LIMIT_THREADS: v = p->threads; break;
	case POOL_LIMIT_TIMEOUT_NS: v = p->timeout_ns; break;
	case POOL_LIMIT_RETENTION_NS: v = p->retention_ns; break;
	case POOL_LIMIT_RETENTION_TASKS: v = p->retention_tasks; break;
	case POOL_LIMIT_RETENTION_BYTES: v = p->retention_bytes; break;
	case POOL_LIMIT_MAX_USER_UNITS: v = p->max_user_units; break;
	case POOL_LIMIT_MAX_OWNER_UNITS: v = p->max_owner_units; break;
	case POOL_LIMIT_AGING_NS: v = p->aging_ns; break;
	default: break;
	}
	pthread_mutex_unlock(&p->mu);
	return v;
}

/* ---- shutdown ------------------------------------------------------------------ */

static void cancel_all(struct pool *p, struct post *po)
{
	uint64_t now = pool_now(p);
	p->no_admit = 1;
	for (int prio = POOL_PRIO_COUNT - 1; prio >= 0; prio--)
		while (p->queue[prio].head)
			end_task(p, p->queue[prio].head, POOL_CANCELLED, "cancelled by shutdown",
				 po, now);
	for (struct pool_task *t = p->running.head; t; t = t->next)
		raise_cancel(t, POOL_CANCEL_SHUTDOWN, po);
}

int pool_shutdown(struct pool *p, enum pool_shutdown_mode mode, uint64_t timeout_ns)
{
	struct timespec ts;
	struct post po;
	int timed_out = 0;

	post_init(&po);
	pool_abs_timeout(timeout_ns, &ts);
	pthread_mutex_lock(&p->mu);
	p->shutting_down = 1;
	while (mode == POOL_SHUTDOWN_DRAIN && (queued_count(p) || p->running.n) && !timed_out)
		timed_out = pool_cond_wait_until(&p->state_cv, &p->mu, &ts) == ETIMEDOUT;
	cancel_all(p, &po);
	unlock_post(p, &po);

	pool_abs_timeout(timeout_ns, &ts);
	timed_out = 0;
	pthread_mutex_lock(&p->mu);
	while (p->running.n && !timed_out)
		timed_out = pool_cond_wait_until(&p->state_cv, &p->mu, &ts) == ETIMEDOUT;
	int rc = p->running.n ? -POOL_E_TIMEDOUT : 0;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

