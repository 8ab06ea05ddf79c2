/*
 * proto.c — protocol vocabulary: error codes and their names, the
 * pool_err -> wire code table, message type names, limits, byte buffers and
 * the message lifecycle (init / ok / err / clear).
 *
 * Invariants: the name tables are indexed by enum value and cover every
 * value (checked by test-proto); names are the wire form and never change.
 * A message's arena_ is either NULL or a msgpack_zone owned by that message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "plot/proto.h"
#include "proto/proto-impl.h"

static const char *const code_names[PROTO_CODE_COUNT] = {
	[PROTO_OK] = "OK",
	[PROTO_E_QUEUE_FULL] = "QUEUE_FULL",
	[PROTO_E_CAPACITY] = "CAPACITY",
	[PROTO_E_NOT_FOUND] = "NOT_FOUND",
	[PROTO_E_PERMISSION] = "PERMISSION",
	[PROTO_E_INVALID] = "INVALID",
	[PROTO_E_SHUTDOWN] = "SHUTDOWN",
	[PROTO_E_VERSION] = "VERSION",
	[PROTO_E_TOO_LARGE] = "TOO_LARGE",
	[PROTO_E_CONTEXT] = "CONTEXT",
	[PROTO_E_INTERNAL] = "INTERNAL",
	[PROTO_E_MALFORMED] = "MALFORMED",
	[PROTO_E_TIMEOUT] = "TIMEOUT",
	[PROTO_E_STATE] = "STATE",
	[PROTO_E_CONFIG] = "CONFIG",
	[PROTO_E_NOMEM] = "NOMEM",
	[PROTO_E_CANCELLED] = "CANCELLED",
	[PROTO_E_IO] = "IO",
	[PROTO_E_EOF] = "EOF",
	[PROTO_E_AGAIN] = "AGAIN",
	[PROTO_E_INTR] = "INTR",
	[PROTO_E_UNREACHABLE] = "UNREACHABLE",
	[PROTO_E_STORE] = "STORE",
};

const char *proto_code_name(int code)
{
	if (code < 0)
		code = -code;
	if (code >= PROTO_CODE_COUNT)
		return "UNKNOWN";
	return code_names[code];
}

int proto_code_parse(const char *name)
{
	for (int i = 0; i < PROTO_CODE_COUNT; i++)
		if (name && strcmp(name, code_names[i]) == 0)
			return i;
	return -1;
}

/* The one mapping from pool errors to wire codes. */
static const struct {
	int pool;
	int code;
} pool_map[] = {
	{ POOL_OK, PROTO_OK },
	{ POOL_E_QUEUE_FULL, PROTO_E_QUEUE_FULL },
	{ POOL_E_CAPACITY, PROTO_E_CAPACITY },
	{ POOL_E_SHUTDOWN, PROTO_E_SHUTDOWN },
	{ POOL_E_INVALID, PROTO_E_INVALID },
	{ POOL_E_NOT_FOUND, PROTO_E_NOT_FOUND },
	{ POOL_E_TIMEDOUT, PROTO_E_TIMEOUT },
	{ POOL_E_NOMEM, PROTO_E_NOMEM },
	{ POOL_E_STATE, PROTO_E_STATE },
	{ POOL_E_USER_CAP, PROTO_E_QUEUE_FULL }, /* retry later, as a full queue */
};

int proto_code_from_pool(int pool_err)
{
	if (pool_err < 0)
		pool_err = -pool_err;
	for (size_t i = 0; i < sizeof pool_map / sizeof pool_map[0]; i++)
		if (pool_map[i].pool == pool_err)
			return pool_map[i].code;
	return PROTO_E_INTERNAL;
}

static const char *const type_names[PROTO_TYPE_COUNT] = {
	[PROTO_T_NONE] = "none",
	[PROTO_T_HELLO] = "hello",
	[PROTO_T_SUBMIT] = "submit",
	[PROTO_T_STATUS] = "status",
	[PROTO_T_RESULT] = "result",
	[PROTO_T_SUBSCRIBE] = "subscribe",
	[PROTO_T_CANCEL] = "cancel",
	[PROTO_T_STATS] = "stats",
	[PROTO_T_QUEUE] = "queue",
	[PROTO_T_LIMITS_GET] = "limits_get",
	[PROTO_T_LIMITS_SET] = "limits_set",
	[PROTO_T_MODELS] = "models",
	[PROTO_T_CONFIG] = "config",
	[PROTO_T_PING] = "ping",
	[PROTO_T_DRAIN] = "drain",
	[PROTO_T_SHUTDOWN] = "shutdown",
	[PROTO_T_OK] = "ok",
	[PROTO_T_ERR] = "err",
	[PROTO_T_CHUNK] = "chunk",
	[PROTO_T_END] = "end",
};

const char *proto_type_name(int type)
{
	if (type < 0 || type >= PROTO_TYPE_COUNT)
		return "unknown";
	return type_names[type];
}

int proto_type_parse(const char *name)
{
	for (int i = 1; i < PROTO_TYPE_COUNT; i++)
		if (name && strcmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

void proto_limits_resolve(struct proto_limits *l)
{
	if (!l->max_frame)
		l->max_frame = PROTO_MAX_FRAME;
	if (l->max_frame > PROTO_MAX_FRAME_HARD)
		l->max_frame = PROTO_MAX_FRAME_HARD;
	if (!l->max_str || l->max_str > l->max_frame)
		l->max_str = l->max_frame;
	if (!l->max_array)
		l->max_array = PROTO_MAX_ARRAY;
	if (!l->max_map)
		l->max_map = PROTO_MAX_MAP;
	if (!l->max_depth)
		l->max_depth = PROTO_MAX_DEPTH;
	if (l->max_depth > PROTO_DEPTH_HARD)
		l->max_depth = PROTO_DEPTH_HARD;
}

int proto_check_version(uint32_t peer, char *err, size_t errlen)
{
	if (peer == PROTO_VERSION)
		return 0;
	snprintf(err, errlen,
		 "protocol version mismatch: client speaks %u, plotd speaks %u",
		 (unsigned)peer, (unsigned)PROTO_VERSION);
	return -PROTO_E_VERSION;
}

/* ---- buffers ------------------------------------------------------------ */

void proto_buf_init(struct proto_buf *b)
{
	memset(b, 0, sizeof *b);
}

void proto_buf_free(struct proto_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* Make room for n more bytes at the end, compacting consumed space first. */
int proto_buf_reserve(struct proto_buf *b, size_t n)
{
	if (b->off && (b->off == b->len || b->len - b->off + n > b->cap - b->off)) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -PROTO_E_NOMEM;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return -PROTO_E_NOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

int proto_buf_append(struct proto_buf *b, const void *data, size_t len)
{
	if (!len)
		return 0;
	int rc = proto_buf_reserve(b, len);
	if (rc)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void proto_buf_consume(struct proto_buf *b, size_t n)
{
	if (n > b->len - b->off)
		n = b->len - b->off;
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

size_t proto_buf_pending(const struct proto_buf *b)
{
	return b->len - b->off;
}

/* ---- messages ----------------------------------------------------------- */

void proto_msg_init(struct proto_msg *m, int type, uint64_t id)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->id = id;
	if (type == PROTO_T_SUBMIT)
		m->u.submit.priority = POOL_PRIO_NORMAL;
	if (type == PROTO_T_STATS || type == PROTO_T_QUEUE || type == PROTO_T_LIMITS_GET)
		m->u.filter.state = -1;
}

void proto_msg_ok(struct proto_msg *m, const struct proto_msg *req)
{
	proto_msg_init(m, PROTO_T_OK, req ? req->id : 0);
	m->op = req ? req->type : PROTO_T_NONE;
}

int proto_msg_err(struct proto_msg *m, const struct proto_msg *req, int code,
		  const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	proto_msg_init(m, PROTO_T_ERR, req ? req->id : 0);
	m->op = req ? req->type : PROTO_T_NONE;
	m->u.error.code = code < 0 ? -code : code;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	m->u.error.message = proto_arena_strdup(m, text, strlen(text));
	return m->u.error.message ? 0 : -PROTO_E_NOMEM;
}

void proto_msg_clear(struct proto_msg *m)
{
	proto_arena_free(m);
	memset(m, 0, sizeof *m);
}
