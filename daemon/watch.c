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

#include "plotd.h"

static struct watch **tab;
static size_t nbuckets, count;

static size_t slot(uint64_t task, size_t n)
{
	task *= 0x9e3779b97f4a7c15ull; /* Fibonacci hashing: ids are sequential */
	return (size_t)(task >> 32) & (n - 1);
}

int watch_table_init(size_t buckets)
{
	size_t n = 16;
	while (n < buckets)
		n <<= 1;
	tab = calloc(n, sizeof(*tab));
	if (!tab)
		return -1;
	nbuckets = n;
	count = 0;
	return 0;
}

void watch_table_free(void)
{
	free(tab);
	tab = NULL;
	nbuckets = count = 0;
}

static void grow(void)
{
	size_t n = nbuckets * 2;
	struct watch **nt = calloc(n, sizeof(*nt));
	if (!nt)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < nbuckets; i++) {
		struct watch *w = tab[i], *next;
		for (; w; w = next) {
			next = w->hash_next;
			size_t s = slot(w->task, n);
			w->hash_next = nt[s];
			nt[s] = w;
		}
	}
	free(tab);
	tab = nt;
	nbuckets = n;
}

void watch_link(struct watch *w)
{
	if (count + 1 > nbuckets * 2)
		grow();
	size_t s = slot(w->task, nbuckets);
	w->hash_next = tab[s];
	tab[s] = w;
	count++;
}

void watch_unlink(struct watch *w)
{
	struct watch **pp = &tab[slot(w->task, nbuckets)];
	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == w) {
			*pp = w->hash_next;
			w->hash_next = NULL;
			count--;
			return;
		}
	}
}

/* First watch of task; walk on with hash_next, skipping other tasks. */
struct watch *watch_first(uint64_t task)
{
	struct watch *w = tab[slot(task, nbuckets)];
	while (w && w->task != task)
		w = w->hash_next;
	return w;
}

size_t watch_count(void)
{
	return count;
}
