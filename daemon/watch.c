/*
 * watch.c — the index from task id to the connections waiting on it: stream
 * subscriptions and result waiters.
 *
 * DESIGN
 *   A chained hash table keyed by task id, doubled when it holds more than
 *   two entries per bucket on average, so a pool notification finds its
 *   watchers in O(1) however many streams are open. Each watch is also on
 *   its connection's list (conn_next), so closing a connection unlinks all
 *   of its watches. Loop thread only.
 *
 * INVARIANTS
 *   A watch is in the table iff it is linked (watch_link .. watch_unlink).
 */
#include <stdlib.h>

#include "watch.h"

static size_t slot(uint64_t task, size_t n)
{
	task *= 0x9e3779b97f4a7c15ull; /* Fibonacci hashing: ids are sequential */
	return (size_t)(task >> 32) & (n - 1);
}

int watch_table_init(struct watch_table *t, size_t buckets)
{
	size_t n = 16;
	while (n < buckets)
		n <<= 1;
	t->tab = calloc(n, sizeof(*t->tab));
	if (!t->tab)
		return -1;
	t->nbuckets = n;
	t->count = 0;
	return 0;
}

void watch_table_free(struct watch_table *t)
{
	free(t->tab);
	t->tab = NULL;
	t->nbuckets = t->count = 0;
}

static void grow(struct watch_table *t)
{
	size_t n = t->nbuckets * 2;
	struct watch **nt = calloc(n, sizeof(*nt));
	if (!nt)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct watch *w = t->tab[i], *next;
		for (; w; w = next) {
			next = w->hash_next;
			size_t s = slot(w->task, n);
			w->hash_next = nt[s];
			nt[s] = w;
		}
	}
	free(t->tab);
	t->tab = nt;
	t->nbuckets = n;
}

void watch_link(struct watch_table *t, struct watch *w)
{
	if (t->count + 1 > t->nbuckets * 2)
		grow(t);
	size_t s = slot(w->task, t->nbuckets);
	w->hash_next = t->tab[s];
	t->tab[s] = w;
	t->count++;
}

void watch_unlink(struct watch_table *t, struct watch *w)
{
	struct watch **pp = &t->tab[slot(w->task, t->nbuckets)];
	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == w) {
			*pp = w->hash_next;
			w->hash_next = NULL;
			t->count--;
			return;
		}
	}
}

/* First watch of task; walk on with hash_next, skipping other tasks. */
struct watch *watch_first(const struct watch_table *t, uint64_t task)
{
	struct watch *w = t->tab[slot(task, t->nbuckets)];
	while (w && w->task != task)
		w = w->hash_next;
	return w;
}
