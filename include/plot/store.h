/*
 * store.h — where task records live: the interface behind the pool's queue
 * and mailbox persistence.
 *
 * A task record is everything needed to show or resume a task: its id,
 * priority, state, cost, timings, owner, label, error and output. Records
 * serialise to msgpack (store_record_encode/decode), so a durable backend
 * (SQLite, PostgreSQL: a later issue) stores opaque blobs keyed by id.
 *
 * The pool writes a record at submit, at every state change, and at the end
 * (with the output); it deletes it when retention prunes the task. The memory
 * backend ships now; it keeps the encoded blobs in a hash table so that the
 * encode/decode path is exercised exactly as a durable backend would.
 *
 * Backends are called with the pool lock NOT held, from any thread; each
 * backend does its own locking.
 */
#ifndef PLOT_STORE_H
#define PLOT_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store_record {
	uint64_t id;
	int priority;      /* enum pool_prio */
	int state;         /* enum pool_state */
	uint64_t cost;
	uint64_t created_ns, started_ns, ended_ns, deadline_ns;
	uint32_t owner_uid;
	char *model;       /* NUL-terminated or NULL */
	char *label;
	char *error;
	char *output;      /* output_len bytes, may hold NULs */
	size_t output_len;
};

/* Encode to msgpack into a malloc'd buffer. Returns 0 or -1 (no memory). */
int store_record_encode(const struct store_record *r, char **buf, size_t *len);
/* Decode; every field is bounds-checked. Returns 0, or -1 with err naming the
 * bad field and its byte offset. On success r owns malloc'd strings. */
int store_record_decode(const void *buf, size_t len, struct store_record *r,
			char *err, size_t errlen);
void store_record_clear(struct store_record *r);

struct store_ops {
	int (*put)(void *ctx, const struct store_record *r);      /* insert or replace */
	int (*get)(void *ctx, uint64_t id, struct store_record *out); /* -1: not found */
	int (*del)(void *ctx, uint64_t id);                         /* -1: not found */
	size_t (*count)(void *ctx);
	void (*free)(void *ctx);
};

struct store {
	const struct store_ops *ops;
	void *ctx;
	char name[16]; /* "memory", "sqlite", ... */
};

struct store *store_memory_new(void);

/* The backend table (lib/store/backends.c): the config's queue.backend and
 * mailbox.backend name a row. open() fills *out with the store one model's
 * pool writes through, or NULL when the pool keeps its records in its own
 * memory (`memory`). Returns 0, or -1 with err naming the setting. */
struct store_backend {
	const char *name;
	int (*open)(const char *model, struct store **out, char *err, size_t errlen);
};
const struct store_backend *store_backend_find(const char *name);
int store_open_for(const char *queue, const char *mailbox, const char *model,
		   struct store **out, char *err, size_t errlen);
void store_free(struct store *s);

static inline int store_put(struct store *s, const struct store_record *r)
{ return s->ops->put(s->ctx, r); }
static inline int store_get(struct store *s, uint64_t id, struct store_record *out)
{ return s->ops->get(s->ctx, id, out); }
static inline int store_del(struct store *s, uint64_t id)
{ return s->ops->del(s->ctx, id); }

#endif
