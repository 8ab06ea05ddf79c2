/*
 * backends.c — the store table: which store keeps a pool's queued tasks
 * (parking_lot.queue.backend) and its finished ones (mailbox.backend).
 *
 * DESIGN
 *   One row per backend name, as the executor table has one per executor.
 *   `memory` opens no store at all: the pool's own queue and mailbox, in
 *   the daemon's memory, are that backend (nothing survives a restart).
 *   A durable backend (sqlite, postgres) is one more row whose
 *   open() returns the one struct store (store.h) the daemon opens for all
 *   its models; the pools write to it through the store writer.
 *
 *   Until a backend can hold one half alone, the queue and the mailbox
 *   must name the same one.
 */
#include <stdio.h>
#include <string.h>

#include "plot/store.h"

static int open_memory(const struct store_open_args *a, struct store **out, char *err,
		       size_t errlen)
{
	(void)a;
	(void)err;
	(void)errlen;
	*out = NULL; /* the pools keep their records themselves */
	return 0;
}

static const struct store_backend table[] = {
	{ "sqlite", store_sqlite_open },
	{ "postgres", store_pg_open },
	{ "memory", open_memory },
};
#define N_BACKENDS (sizeof table / sizeof table[0])

const struct store_backend *store_backend_find(const char *name)
{
	for (size_t i = 0; name && i < N_BACKENDS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

int store_backend_pick(const char *queue, const char *mailbox,
		       const struct store_backend **out, char *err, size_t errlen)
{
	const struct store_backend *b = store_backend_find(queue);

	*out = NULL;
	if (!b) {
		snprintf(err, errlen, "parking_lot.queue.backend: no store named '%s'",
			 queue ? queue : "(null)");
		return -1;
	}
	if (!mailbox || strcmp(queue, mailbox) != 0) {
		snprintf(err, errlen, "parking_lot.mailbox.backend '%s' differs from "
			 "queue.backend '%s': both halves must use the same store",
			 mailbox ? mailbox : "(null)", queue);
		return -1;
	}
	*out = b;
	return 0;
}
