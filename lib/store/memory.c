/*
 * memory.c — the memory store backend: encoded task records in a hash table.
 *
 * Records are kept as msgpack blobs, not structs, so every put and get goes
 * through store_record_encode/decode exactly as a durable backend's would;
 * a codec bug shows up here first. One mutex guards the table; callers (the
 * pool) call in without their own locks held. It keeps store.h's put and
 * append rules as the sqlite backend does (a put without output or request
 * keeps the stored ones), decoding the old record to do so.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "plot/store.h"

struct mentry {
	struct mentry *next;
	uint64_t id;
	char *blob;
	size_t len;
};

struct mstore {
	pthread_mutex_t mu;
	struct mentry **b;
	size_t nb, n;
};

static size_t mslot(const struct mstore *m, uint64_t id)
{
	id ^= id >> 31;
	id *= 0x9e3779b97f4a7c15ull;
	return (size_t)(id >> 17) & (m->nb - 1);
}

static struct mentry **mfind(struct mstore *m, uint64_t id)
{
	struct mentry **pp = &m->b[mslot(m, id)];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

static int mgrow(struct mstore *m)
{
	size_t nb = m->nb * 2;
	struct mentry **b = calloc(nb, sizeof *b);
	if (!b)
		return -1;
	struct mentry **old = m->b;
	size_t oldn = m->nb;
	m->b = b;
	m->nb = nb;
	for (size_t i = 0; i < oldn; i++) {
		for (struct mentry *e = old[i], *nx; e; e = nx) {
			nx = e->next;
			size_t s = mslot(m, e->id);
			e->next = b[s];
			b[s] = e;
		}
	}
	free(old);
	return 0;
}

/* Under mu: r as it will be stored, with what a put keeps from the old
 * record (output, request) filled in from it; encoded into *blob. */
static int merged_blob(struct mstore *m, const struct store_record *r, char **blob,
		       size_t *len)
{
	struct mentry *e = *mfind(m, r->id);
	struct store_record old, rec = *r;
	char err[128];
	int have = e && (!r->output || !r->request_len) &&
		   store_record_decode(e->blob, e->len, &old, err, sizeof err) == 0;
	if (have && !r->output) {
		rec.output = old.output;
		rec.output_len = old.output_len;
	}
	if (have && !r->request_len) {
		rec.request = old.request;
		rec.request_len = old.request_len;
	}
	int rc = store_record_encode(&rec, blob, len);
	if (have)
		store_record_clear(&old);
	return rc;
}

static int mput(void *ctx, const struct store_record *r)
{
	struct mstore *m = ctx;
	char *blob;
	size_t len;
	pthread_mutex_lock(&m->mu);
	if (merged_blob(m, r, &blob, &len) < 0) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	struct mentry **pp = mfind(m, r->id);
	if (*pp) {
		free((*pp)->blob);
		(*pp)->blob = blob;
		(*pp)->len = len;
		pthread_mutex_unlock(&m->mu);
		return 0;
	}
	struct mentry *e = malloc(sizeof *e);
	if (!e || (m->n + 1 > m->nb && mgrow(m) < 0)) {
		pthread_mutex_unlock(&m->mu);
		free(e);
		free(blob);
		return -1;
	}
	pp = &m->b[mslot(m, r->id)];
	*e = (struct mentry){ *pp, r->id, blob, len };
	*pp = e;
	m->n++;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* The output from off on becomes data (what was past it is gone). */
static int mappend(void *ctx, uint64_t id, uint64_t off, const void *data, size_t len)
{
	struct mstore *m = ctx;
	struct store_record r;
	char err[128], *blob, *o;
	size_t blen;
	int rc = -1;
	pthread_mutex_lock(&m->mu);
	struct mentry *e = *mfind(m, id);
	if (!e || store_record_decode(e->blob, e->len, &r, err, sizeof err) < 0)
		goto out;
	if (off <= r.output_len && (o = realloc(r.output, (size_t)off + len + 1))) {
		memcpy(o + off, data, len);
		r.output = o;
		r.output_len = (size_t)off + len;
		if (store_record_encode(&r, &blob, &blen) == 0) {
			free(e->blob);
			e->blob = blob;
			e->len = blen;
			rc = 0;
		}
	}
	store_record_clear(&r);
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int mget(void *ctx, uint64_t id, struct store_record *out)
{
	struct mstore *m = ctx;
	char err[128];
	int rc = -1;
	pthread_mutex_lock(&m->mu);
	struct mentry *e = *mfind(m, id);
	if (e)
		rc = store_record_decode(e->blob, e->len, out, err, sizeof err);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static int mdel(void *ctx, uint64_t id)
{
	struct mstore *m = ctx;
	pthread_mutex_lock(&m->mu);
	struct mentry **pp = mfind(m, id), *e = *pp;
	if (e) {
		*pp = e->next;
		m->n--;
	}
	pthread_mutex_unlock(&m->mu);
	if (!e)
		return -1;
	free(e->blob);
	free(e);
	return 0;
}

static size_t mcount(void *ctx)
{
	struct mstore *m = ctx;
	pthread_mutex_lock(&m->mu);
	size_t n = m->n;
	pthread_mutex_unlock(&m->mu);
	return n;
}

static void mfree(void *ctx)
{
	struct mstore *m = ctx;
	for (size_t i = 0; i < m->nb; i++) {
		for (struct mentry *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e->blob);
			free(e);
		}
	}
	free(m->b);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static const struct store_ops memory_ops = {
	.put = mput, .get = mget, .del = mdel, .count = mcount, .free = mfree,
	.append = mappend,
};

struct store *store_memory_new(void)
{
	struct store *s = calloc(1, sizeof *s);
	struct mstore *m = calloc(1, sizeof *m);
	if (!s || !m || !(m->b = calloc(64, sizeof *m->b)) || pthread_mutex_init(&m->mu, NULL)) {
		if (m)
			free(m->b);
		free(m);
		free(s);
		return NULL;
	}
	m->nb = 64;
	s->ops = &memory_ops;
	s->ctx = m;
	strcpy(s->name, "memory");
	return s;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	s->ops->free(s->ctx);
	free(s);
}
