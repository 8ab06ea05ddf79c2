/*
 * test-post.c — the post queue (lib/loop/post.c), the one way from other
 * threads into the event loop: order, coalesced notes, many producers at
 * once (run it under TSan), the delivery budget that lets other
 * descriptors in between, and discarding at free.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/loop.h"

struct rec {
	struct loop *l;
	uint64_t seen[64];          /* keys delivered, in order (first 64) */
	size_t n, live, dead;
	uint64_t sum;
	int other_at;               /* delivery count when the other fd fired */
};

static void on_item(void *ctx, uint64_t key, void *arg, int live)
{
	struct rec *r = ctx;
	uint64_t v = arg ? *(uint64_t *)arg : key;
	if (r->n < 64)
		r->seen[r->n] = v;
	r->n++;
	r->sum += v;
	if (live)
		r->live++;
	else
		r->dead++;
	free(arg);
}

static void on_stop(void *ctx, uint64_t key, void *arg, int live)
{
	struct rec *r = ctx;
	if (live)
		loop_stop(r->l);
}

static void *boxed(uint64_t v)
{
	uint64_t *p = malloc(sizeof(*p));
	*p = v;
	return p;
}

static void test_order_and_notes(void **state)
{
	struct rec r = { 0 };
	r.l = loop_new();
	struct post *p = post_new(r.l, 0);
	assert_non_null(p);
	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(post_send(p, on_item, &r, boxed(i)), 0);
	for (int k = 0; k < 1000; k++)
		post_note(p, on_item, &r, 100); /* coalesced to one */
	post_note(p, on_item, &r, 101);
	post_note(p, on_stop, &r, 0);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 7);
	uint64_t want[] = { 1, 2, 3, 4, 5, 100, 101 };
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(r.seen[i], want[i]);
	/* delivered notes may be queued again */
	post_note(p, on_item, &r, 100);
	post_note(p, on_stop, &r, 0);
	assert_int_equal(loop_run(r.l), 0);
	assert_int_equal(r.n, 8);
	post_free(p);
	loop_free(r.l);
}

#define PRODUCERS 4
#define PER 20000

struct prod {
	struct post *p;
	struct rec *r;
	int k;
};

static void *producer(void *arg)
{
	struct prod *pr = arg;
	for (uint64_t i = 0; i < PER; i++) {
		assert_int_equal(post_send(pr->p, on_item, pr->r, boxed(1)), 0);
		post_note(pr->p, on_item, pr->r, 1000000 + (uint64_t)pr->k); /* ignored in sum */
	}
	return NULL;
}

static void on_joined(void *ctx, uint64_t key, void *arg, int live);

struct mt {
	struct rec r;
	pthread_t t[PRODUCERS];
	struct prod pr[PRODUCERS];
	struct post *p;
	uint64_t notes;
};

static void *joiner(void *arg)
{
	struct mt *m = arg;
	for (int k = 0; k < PRODUCERS; k++)
		pthread_join(m->t[k], NULL);
	post_note(m->p, on_joined, m, 0);
	return NULL;
}

static void on_joined(void *ctx, uint64_t key, void *arg, int live)
{
	struct mt *m = ctx;
	post_note(m->p, on_stop, &m->r, 0); /* after everything queued before us */
}

static void test_many_producers(void **state)
{
	struct mt *m = calloc(1, sizeof(*m));
	pthread_t j;
	m->r.l = loop_new();
	m->p = post_new(m->r.l, 2000);
	for (int k = 0; k < PRODUCERS; k++) {
		m->pr[k] = (struct prod){ m->p, &m->r, k };
		pthread_create(&m->t[k], NULL, producer, &m->pr[k]);
	}
	pthread_create(&j, NULL, joiner, m);
	assert_int_equal(loop_run(m->r.l), 0);
	pthread_join(j, NULL);
	/* every send exactly once; notes: at least one per producer, never
	 * more than one per send */
	uint64_t sends = (uint64_t)PRODUCERS * PER;
	uint64_t notes = m->r.n - sends;
	assert_true(m->r.n >= sends + PRODUCERS);
	assert_true(notes <= sends);
	/* each note carries key >= 1000000, each send 1 */
	uint64_t note_sum = m->r.sum - sends;
	assert_true(note_sum >= 1000000ull * notes);
	assert_true(note_sum < 1000000ull * notes + PRODUCERS * notes);
	post_free(m->p);
	loop_free(m->r.l);
	free(m);
}

/* ---- the budget ------------------------------------------------------------- */

struct budget {
	struct rec r;
	struct loop_watch other;
	struct post *p;
};

static void spin_us(unsigned us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec -
		       (uint64_t)a.tv_nsec < us * 1000ull);
}

static void on_slow(void *ctx, uint64_t key, void *arg, int live)
{
	struct rec *r = ctx;
	spin_us(20);
	r->n++;
}

static void on_other(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	struct budget *b = (struct budget *)((char *)w - offsetof(struct budget, other));
	loop_fd_drain(w->fd);
	b->r.other_at = (int)b->r.n;
	post_note(b->p, on_stop, &b->r, 0);
}

static void test_budget_lets_others_in(void **state)
{
	struct budget b = { 0 };
	uint64_t one = 1;
	b.r.l = loop_new();
	b.r.other_at = -1;
	b.p = post_new(b.r.l, 1000); /* 1 ms per wake-up: about 50 items */
	b.other.fd = eventfd(0, EFD_NONBLOCK);
	b.other.fn = on_other;
	assert_int_equal(loop_add(b.r.l, &b.other, EPOLLIN), 0);
	for (int i = 0; i < 2000; i++)
		post_send(b.p, on_slow, &b.r, NULL);
	assert_int_equal(write(b.other.fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(loop_run(b.r.l), 0);
	/* the other descriptor was served long before the 2000 items were */
	assert_true(b.r.other_at >= 0);
	assert_true(b.r.other_at < 1000);
	loop_del(b.r.l, &b.other);
	close(b.other.fd);
	post_free(b.p); /* the rest is discarded */
	loop_free(b.r.l);
}

static void test_free_discards(void **state)
{
	struct rec r = { 0 };
	struct post *p = post_new(NULL, 0); /* no loop: nothing is delivered live */
	for (uint64_t i = 1; i <= 10; i++)
		post_send(p, on_item, &r, boxed(i));
	post_note(p, on_item, &r, 7);
	post_note(p, on_item, &r, 7);
	post_free(p);
	assert_int_equal(r.dead, 11);
	assert_int_equal(r.live, 0);
	assert_int_equal(r.sum, 55 + 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_notes),
		cmocka_unit_test(test_many_producers),
		cmocka_unit_test(test_budget_lets_others_in),
		cmocka_unit_test(test_free_discards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
