/*
 * durable.c — the daemon's one durable store: open it at start (refusing to
 * start, naming the file, when it cannot be used), read every record back,
 * hand out daemon-wide ids, and keep the submitters' idempotency keys.
 *
 * DESIGN
 *   One database for every model whose queue.backend is durable (sqlite):
 *   opened once here, read in full before the loop runs (startup, not the
 *   loop thread), then owned by the store writer thread. Models whose
 *   backend is memory get no store; their ids still come from the same
 *   counter, so an id names one task in the whole daemon and stays short.
 *
 *   The counter starts past both the database's sequence and every stored
 *   id, so no id is handed out twice across restarts.
 *
 *   Keys: (uid, key) -> task id in a chained hash, loop thread only. A key
 *   is remembered when its submit is acknowledged and when a stored task
 *   that had one is restored; a key whose task was pruned is free again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "pgshare.h"
#include "plot/pgq.h"

struct durable_key {
	struct durable_key *next;
	uint32_t uid;
	uint64_t task;
	char key[];
};

static int any_durable(const struct cfg *c)
{
	for (size_t i = 0; i < c->n_models; i++)
		if (c->models[i].lot.queue_backend == CFG_BACKEND_SQLITE)
			return 1;
	return 0;
}

struct load {
	struct durable *du;
	size_t cap;
	int oom;
};

static int load_one(void *arg, struct store_record *r)
{
	struct load *l = arg;
	struct durable *du = l->du;
	if (du->n_loaded == l->cap) {
		size_t n = l->cap ? l->cap * 2 : 256;
		struct store_record *v = realloc(du->loaded, n * sizeof *v);
		if (!v) {
			store_record_clear(r);
			l->oom = 1;
			return 1;
		}
		du->loaded = v;
		l->cap = n;
	}
	du->loaded[du->n_loaded++] = *r;
	return 0;
}

/* Read every record; the counter starts past them and the sequence. */
static int load_all(struct durable *du, struct store *s, char *err, size_t errlen)
{
	struct load l = { du, 0, 0 };
	uint64_t next = 1;
	if (s->ops->seq_get(s->ctx, &next) < 0 || s->ops->scan(s->ctx, load_one, &l) < 0) {
		snprintf(err, errlen, "%s", s->ops->error(s->ctx));
		return -1;
	}
	if (l.oom) {
		snprintf(err, errlen, "store %s: out of memory reading the tasks", du->path);
		return -1;
	}
	for (size_t i = 0; i < du->n_loaded; i++)
		if (du->loaded[i].id >= next)
			next = du->loaded[i].id + 1;
	atomic_store(&du->next_id, next);
	return 0;
}

static int any_pg(const struct cfg *c)
{
	for (size_t i = 0; i < c->n_models; i++)
		if (c->models[i].lot.queue_backend == CFG_BACKEND_POSTGRES)
			return 1;
	return 0;
}

void durable_pg_name(const struct cfg *c, char *buf, size_t len)
{
	char host[64] = "localhost";

	if (c->postgres.name) {
		snprintf(buf, len, "%s", c->postgres.name);
		return;
	}
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = 0;
	snprintf(buf, len, "%.40s:%ld", host, (long)getpid());
}

/* The shared queue: the store (writer thread) and the claimer, two
 * connections; either failing is a configuration error naming the URL. */
static int open_pg(struct durable *du, const struct cfg *c, char *err, size_t errlen)
{
	char name[64];
	struct store_open_args a = { .url = c->postgres.url, .name = name };
	struct store *s;

	durable_pg_name(c, name, sizeof name);
	if (c->postgres.url)
		pgq_redact_url(c->postgres.url, du->pg_where, sizeof du->pg_where);
	else
		snprintf(du->pg_where, sizeof du->pg_where, "PG* environment");
	if (store_pg_open(&a, &s, err, errlen) < 0)
		return DURABLE_E_PG;
	if (pgshare_open(&du->pg, c, s, err, errlen) < 0) {
		store_free(s);
		return DURABLE_E_PG;
	}
	if (!(du->pg_writer = store_writer_new(s, err, errlen)))
		return DURABLE_E_PG;
	log_msg(LOG_INFO, "postgres %s: shared queue open as daemon %s", du->pg_where, name);
	return 0;
}

int durable_pg_start(struct durable *du, struct dispatch *d, char *err, size_t errlen)
{
	return du->pg ? pgshare_start(du->pg, d, err, errlen) : 0;
}

struct store *durable_pg_store(struct durable *du)
{
	return du->pg_writer ? store_writer_store(du->pg_writer) : NULL;
}

int durable_open(struct durable *du, const struct cfg *c, char *err, size_t errlen)
{
	struct store_open_args a = { c->store.path, c->store.synchronous == CFG_SYNC_FULL,
				     NULL, NULL };
	struct store *s;
	int rc;

	memset(du, 0, sizeof *du);
	atomic_init(&du->next_id, 1);
	du->restart_fail = c->store.restart_policy == CFG_RESTART_FAIL;
	if (any_pg(c) && (rc = open_pg(du, c, err, errlen)) < 0)
		return rc;
	if (!any_durable(c))
		return 0;
	if (c->store.path)
		snprintf(du->path, sizeof du->path, "%s", c->store.path);
	else
		store_sqlite_default_path(du->path, sizeof du->path);
	if (store_sqlite_open(&a, &s, err, errlen) < 0)
		return -1;
	if (load_all(du, s, err, errlen) < 0) {
		store_free(s);
		return -1;
	}
	if (!(du->writer = store_writer_new(s, err, errlen)))
		return -1;
	log_msg(LOG_INFO, "store %s: %zu tasks read back, next id %llu (synchronous %s)",
		du->path, du->n_loaded, (unsigned long long)atomic_load(&du->next_id),
		a.sync_full ? "full" : "normal");
	return 0;
}

uint64_t durable_next_id(void *ctx)
{
	struct durable *du = ctx;
	return atomic_fetch_add_explicit(&du->next_id, 1, memory_order_relaxed);
}

struct store *durable_store(struct durable *du)
{
	return du->writer ? store_writer_store(du->writer) : NULL;
}

void durable_put(struct durable *du, const struct store_record *r)
{
	struct store *s = du->pg && pgshare_holds(du->pg, r->id) ? durable_pg_store(du)
			  : durable_store(du);
	if (s && store_put(s, r) < 0)
		log_msg(LOG_ERROR, "store: task %llu not written: out of memory",
			(unsigned long long)r->id);
}

void durable_loaded_free(struct durable *du)
{
	for (size_t i = 0; i < du->n_loaded; i++)
		store_record_clear(&du->loaded[i]);
	free(du->loaded);
	du->loaded = NULL;
	du->n_loaded = 0;
}

void durable_freeze(struct durable *du)
{
	if (du->writer)
		store_writer_freeze(du->writer);
	if (du->pg_writer)
		store_writer_freeze(du->pg_writer);
}

void durable_close(struct durable *du)
{
	durable_loaded_free(du);
	pgshare_free(du->pg); /* before the store: the claimer uses its lease table */
	du->pg = NULL;
	if (du->pg_writer) {
		store_writer_free(du->pg_writer);
		du->pg_writer = NULL;
	}
	if (du->writer) {
		uint64_t b, n;
		store_writer_counts(du->writer, &b, &n);
		log_msg(LOG_INFO, "store %s: closed (%llu records in %llu commits)", du->path,
			(unsigned long long)n, (unsigned long long)b);
		store_writer_free(du->writer);
		du->writer = NULL;
	}
	for (size_t i = 0; i < du->nbuckets; i++)
		for (struct durable_key *k = du->keys[i], *nx; k; k = nx) {
			nx = k->next;
			free(k);
		}
	free(du->keys);
	du->keys = NULL;
	du->nbuckets = du->nkeys = 0;
}

/* ---- idempotency keys ---------------------------------------------------------- */

static size_t key_slot(const struct durable *du, uint32_t uid, const char *key)
{
	uint64_t h = 1469598103934665603ull ^ uid;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)h & (du->nbuckets - 1);
}

uint64_t durable_key_lookup(struct durable *du, uint32_t uid, const char *key)
{
	if (!du->nbuckets || !key)
		return 0;
	for (struct durable_key *k = du->keys[key_slot(du, uid, key)]; k; k = k->next)
		if (k->uid == uid && strcmp(k->key, key) == 0)
			return k->task;
	return 0;
}

static int keys_grow(struct durable *du)
{
	size_t n = du->nbuckets ? du->nbuckets * 2 : 256;
	struct durable_key **b = calloc(n, sizeof *b), **old = du->keys;
	size_t oldn = du->nbuckets;
	if (!b)
		return -1;
	du->keys = b;
	du->nbuckets = n;
	for (size_t i = 0; i < oldn; i++)
		for (struct durable_key *k = old[i], *nx; k; k = nx) {
			nx = k->next;
			size_t s = key_slot(du, k->uid, k->key);
			k->next = b[s];
			b[s] = k;
		}
	free(old);
	return 0;
}

void durable_key_remember(struct durable *du, uint32_t uid, const char *key, uint64_t task)
{
	if (!key || !key[0])
		return;
	if (du->nbuckets) {
		for (struct durable_key *k = du->keys[key_slot(du, uid, key)]; k; k = k->next)
			if (k->uid == uid && strcmp(k->key, key) == 0) {
				k->task = task;
				return;
			}
	}
	if (du->nkeys + 1 > du->nbuckets && keys_grow(du) < 0)
		return;
	size_t n = strlen(key);
	struct durable_key *k = malloc(sizeof *k + n + 1);
	if (!k)
		return;
	k->uid = uid;
	k->task = task;
	memcpy(k->key, key, n + 1);
	size_t s = key_slot(du, uid, key);
	k->next = du->keys[s];
	du->keys[s] = k;
	du->nkeys++;
}
