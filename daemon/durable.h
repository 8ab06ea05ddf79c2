/*
 * durable.h — the daemon's one durable store (durable.c): opening it, the
 * daemon-wide id sequence, reading the tasks back at a restart, and the
 * idempotency keys of submits.
 *
 * Below dispatch (which restores through dispatch_restore and acknowledges
 * submits after the store writer's commit), beside models (whose pools
 * write through durable_store()).
 */
#ifndef PLOTD_DURABLE_H
#define PLOTD_DURABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "plot/cfg.h"
#include "plot/store.h"

struct durable_key; /* durable.c */
struct pgshare;     /* pgshare.c */

struct durable {
	struct store_writer *writer; /* NULL: no model uses a durable backend */
	_Atomic uint64_t next_id;    /* every pool's ids come from here */
	struct store_record *loaded; /* read at open, until durable_loaded_free */
	size_t n_loaded;
	int restart_fail;            /* store.restart_policy fail */
	char path[4096];             /* the database, for messages */
	struct durable_key **keys;   /* (owner, key) -> task id; loop thread only */
	size_t nkeys, nbuckets;
	/* postgres (any model with queue.backend postgres): */
	struct store_writer *pg_writer; /* the pools' writes about claimed tasks */
	struct pgshare *pg;          /* the claimer: submits, claims, leases, reads */
	char pg_where[256];          /* the database, password redacted */
};

/* Open the database if any model of c uses a durable backend and read every
 * record. Returns 0, or -1 with err naming the file and what is wrong. */
int durable_open(struct durable *du, const struct cfg *c, char *err, size_t errlen);
/* durable_open's return when the shared queue's database cannot be used
 * (a configuration error: exit 78) rather than the local store. */
#define DURABLE_E_PG (-2)
/* The facade a postgres model's pool writes through, or NULL. */
struct store *durable_pg_store(struct durable *du);
/* This daemon's name in the shared queue: postgres.name, else HOST:PID. */
void durable_pg_name(const struct cfg *c, char *buf, size_t len);
/* Start claiming (the loop and dispatch exist now). 0 or -1 with err. */
struct dispatch;
int durable_pg_start(struct durable *du, struct dispatch *d, char *err, size_t errlen);
/* pool_config.next_id: the next daemon-wide id (any thread). */
uint64_t durable_next_id(void *ctx);
/* The facade a durable model's pool writes through, or NULL. */
struct store *durable_store(struct durable *du);
/* Write a record as is (a task ended at restart); queued, not waited for. */
void durable_put(struct durable *du, const struct store_record *r);
void durable_loaded_free(struct durable *du);
/* A clean stop: no more writes (queued ones still go out). */
void durable_freeze(struct durable *du);
void durable_close(struct durable *du);

/* Idempotency keys (loop thread). lookup: the task id that key of uid
 * named, or 0. remember: key now names task (a copy is kept). */
uint64_t durable_key_lookup(struct durable *du, uint32_t uid, const char *key);
void durable_key_remember(struct durable *du, uint32_t uid, const char *key, uint64_t task);

#endif
