/*
 * proto-impl.h — lib/proto private declarations shared by its files.
 */
#ifndef PLOT_PROTO_IMPL_H
#define PLOT_PROTO_IMPL_H

#include <stddef.h>

#include "plot/proto.h"

/* msgpack-c's unpacker keeps a fixed stack of 32 levels; stay below it. */
#define PROTO_DEPTH_HARD 24u

/* Room for n more bytes at b->data + b->len (may compact or grow). */
int proto_buf_reserve(struct proto_buf *b, size_t n);

/* Allocation in a message's arena (created on first use). NULL = no memory. */
void *proto_arena_alloc(struct proto_msg *m, size_t n);
char *proto_arena_strdup(struct proto_msg *m, const char *s, size_t len);
void proto_arena_free(struct proto_msg *m);

/* Walk a msgpack value checking every length against the frame and lim;
 * 0, or -PROTO_E_MALFORMED / -PROTO_E_TOO_LARGE naming the offset. */
int proto_scan(const unsigned char *p, size_t len, const struct proto_limits *lim,
	       char *err, size_t errlen);

#endif
