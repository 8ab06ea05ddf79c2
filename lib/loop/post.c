/*
 * post.c — the one way from other threads back to the event loop: a queue
 * of (fn, ctx, key, arg) items and an eventfd the loop watches.
 *
 * DESIGN
 *   Producers (pool notifications, executors' prepare callbacks, the
 *   stopper and reload threads) append under one mutex and write the
 *   eventfd only when the queue goes from empty to non-empty. Notes are
 *   coalesced: a set of the (fn, ctx, key) triples queued and not yet taken
 *   turns a repeat into a no-op. The set is open addressing with a
 *   generation per slot, so taking the queue clears it in O(1).
 *
 *   The loop swaps the whole queue out at once (one lock hold), then
 *   delivers from its private copy for at most budget_us; if items are
 *   left it wakes itself again and goes on with them first next time, so
 *   one flood never starves the other descriptors.
 *
 * INVARIANTS
 *   q/len/set are guarded by mu; run/run_len/run_pos belong to the loop
 *   thread. An item is delivered (live 1) or discarded (live 0) exactly once,
 *   except that a note taken but not yet delivered may be queued again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "plot/loop.h"

struct item {
	post_fn fn;
	void *ctx;
	uint64_t key;
	void *arg;
	int note;                   /* post_note: it is in the set */
};

struct slot {
	post_fn fn;
	void *ctx;
	uint64_t key;
	uint32_t gen;
};

struct post {
	struct loop_watch w;        /* first member: the eventfd */
	struct loop *l;
	uint64_t budget_us;
	pthread_mutex_t mu;
	struct item *q;             /* (cap) posted, in order */
	size_t len, cap;
	struct slot *set;           /* (set_cap) notes in q; power of two */
	size_t set_cap, n_notes;
	uint32_t gen;
	struct item *run;           /* (run_cap) taken, being delivered: loop only */
	size_t run_len, run_cap, run_pos;
};

static void wake(struct post *p)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is saturated, so the loop is woken already. */
	ssize_t w = write(p->w.fd, &one, sizeof(one));
	(void)w;
}

/* ---- the note set (under mu) ---------------------------------------------- */

static size_t slot_of(post_fn fn, void *ctx, uint64_t key, size_t cap)
{
	uint64_t h = key ^ (uint64_t)(uintptr_t)ctx ^ ((uint64_t)(uintptr_t)fn << 17);
	return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* 1: (fn, ctx, key) is queued already; 0: added now (or no room to add). */
static int set_add(struct post *p, post_fn fn, void *ctx, uint64_t key);

static void set_rebuild(struct post *p, size_t cap)
{
	struct slot *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return; /* keep the old set; repeats are then queued twice */
	free(p->set);
	p->set = ns;
	p->set_cap = cap;
	p->gen = 1;
	p->n_notes = 0;
	for (size_t i = 0; i < p->len; i++)
		if (p->q[i].note)
			set_add(p, p->q[i].fn, p->q[i].ctx, p->q[i].key);
}

static int set_add(struct post *p, post_fn fn, void *ctx, uint64_t key)
{
	if ((p->n_notes + 1) * 2 > p->set_cap)
		set_rebuild(p, p->set_cap ? p->set_cap * 2 : 1024);
	if ((p->n_notes + 1) * 2 > p->set_cap)
		return 0;
	for (size_t i = slot_of(fn, ctx, key, p->set_cap);; i = (i + 1) & (p->set_cap - 1)) {
		struct slot *s = &p->set[i];
		if (s->gen != p->gen) {
			*s = (struct slot){ fn, ctx, key, p->gen };
			p->n_notes++;
			return 0;
		}
		if (s->fn == fn && s->ctx == ctx && s->key == key)
			return 1;
	}
}

static void set_clear(struct post *p)
{
	p->n_notes = 0;
	if (++p->gen == 0) { /* wrapped: clear for real */
		if (p->set)
			memset(p->set, 0, p->set_cap * sizeof(*p->set));
		p->gen = 1;
	}
}

/* ---- producers ------------------------------------------------------------- */

/* Under mu: append; returns -1 when out of memory. */
static int push(struct post *p, const struct item *it)
{
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		struct item *nq = realloc(p->q, ncap * sizeof(*nq));
		if (!nq)
			return -1;
		p->q = nq;
		p->cap = ncap;
	}
	p->q[p->len++] = *it;
	return 0;
}

int post_send(struct post *p, post_fn fn, void *ctx, void *arg)
{
	struct item it = { fn, ctx, 0, arg, 0 };

	pthread_mutex_lock(&p->mu);
	int first = p->len == 0;
	int rc = push(p, &it);
	pthread_mutex_unlock(&p->mu);
	if (rc == 0 && first)
		wake(p);
	return rc;
}

void post_note(struct post *p, post_fn fn, void *ctx, uint64_t key)
{
	struct item it = { fn, ctx, key, NULL, 1 };

	pthread_mutex_lock(&p->mu);
	if (set_add(p, fn, ctx, key)) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	int first = p->len == 0;
	int rc = push(p, &it);
	pthread_mutex_unlock(&p->mu);
	if (rc < 0 || first)
		wake(p);
}

/* ---- the loop side ----------------------------------------------------------- */

/* Take everything queued into run (which is empty). */
static void take(struct post *p)
{
	pthread_mutex_lock(&p->mu);
	struct item *q = p->q;
	size_t len = p->len, cap = p->cap;
	p->q = p->run;
	p->cap = p->run_cap;
	p->len = 0;
	set_clear(p);
	pthread_mutex_unlock(&p->mu);
	p->run = q;
	p->run_cap = cap;
	p->run_len = len;
	p->run_pos = 0;
}

/* Deliver until run is empty or the budget is spent (budget 0: no bound).
 * Returns 1 if items are left. */
static int deliver(struct post *p, uint64_t budget_us, int live)
{
	uint64_t end = budget_us ? loop_now_ns() / 1000 + budget_us : 0;

	for (;;) {
		if (p->run_pos == p->run_len) {
			take(p);
			if (!p->run_len)
				return 0;
		}
		struct item it = p->run[p->run_pos++];
		it.fn(it.ctx, it.key, it.arg, live);
		if (end && (p->run_pos & 15) == 0 && loop_now_ns() / 1000 > end)
			return 1; /* maybe nothing is left: one spare wake-up */
	}
}

static void on_post(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct post *p = (struct post *)w;

	(void)l;
	(void)ev;
	loop_fd_drain(w->fd);
	if (deliver(p, p->budget_us, 1))
		wake(p); /* the rest after the other descriptors */
}

void post_flush(struct post *p)
{
	deliver(p, 0, 1);
}

struct post *post_new(struct loop *l, uint64_t budget_us)
{
	struct post *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->l = l;
	p->budget_us = budget_us;
	p->gen = 1;
	p->w.fn = on_post;
	p->w.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->w.fd < 0 || pthread_mutex_init(&p->mu, NULL) != 0) {
		int e = errno;
		if (p->w.fd >= 0)
			close(p->w.fd);
		free(p);
		errno = e;
		return NULL;
	}
	if (l && loop_add(l, &p->w, EPOLLIN) < 0) {
		int e = errno;
		post_free(p);
		errno = e;
		return NULL;
	}
	return p;
}

void post_free(struct post *p)
{
	if (!p)
		return;
	deliver(p, 0, 0);
	if (p->l)
		loop_del(p->l, &p->w);
	close(p->w.fd);
	pthread_mutex_destroy(&p->mu);
	free(p->q);
	free(p->run);
	free(p->set);
	free(p);
}
