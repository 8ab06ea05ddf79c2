/*
 * proto-codec.c — encode and decode every protocol message.
 *
 * DESIGN
 *   Each message body is described by a schema: a table of fields (wire key,
 *   kind, offset in the body struct, bounds, presence bit). One generic
 *   encoder and one generic decoder walk the schema, so adding a field is one
 *   table row and the daemon and CLI never hand-roll msgpack. Keys are flat
 *   in the top-level map next to "t", "id" and (replies) "op".
 *
 *   Encoding packs straight into the caller's proto_buf behind a 4-byte
 *   length prefix that is patched at the end. Decoding first runs
 *   proto_scan (bounds, before any allocation), then msgpack_unpack into a
 *   scratch zone, then copies fields into the message's own arena, so a
 *   decoded message owns NUL-terminated strings and nothing points into the
 *   frame.
 *
 *   Optional numbers carry a presence bit in the body's "has" mask; absent
 *   strings are NULL and are not sent; false booleans and empty arrays are not
 *   sent. nil is accepted for any optional field and means absent. Integer
 *   fields that mean "unlimited" at UINT64_MAX travel as nil (K_U64N).
 */
#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "plot/proto.h"
#include "proto/proto-impl.h"

enum kind {
	K_U64, K_U32, K_INT, K_BOOL, K_DBL, K_STR, K_BIN, K_U64N,
	K_STRARR, K_U64ARR, K_U64VEC, K_OBJARR, K_CODE,
};

struct schema;
/* Field flags: what validation asks of a value besides its kind. */
enum {
	F_REQ = 1u << 0,          /* required: absent (or nil) is INVALID */
	F_RANGE = 1u << 1,        /* K_U64: umin..umax; K_DBL: dmin..dmax */
};
struct field {
	const char *key;
	size_t klen;              /* strlen(key): keys are literals, sized at compile time */
	enum kind kind;
	size_t off;               /* value */
	size_t off_n;             /* K_BIN: size_t length; arrays: uint32_t count; K_U64VEC: fixed count */
	uint32_t has;             /* presence bit in the schema's has mask; 0 = always */
	int64_t min, max;         /* K_INT / K_U32 bounds (K_U32: 0,0 = the whole range) */
	const struct schema *sub; /* K_OBJARR element schema */
	unsigned flags;           /* F_* */
	uint64_t umin, umax;      /* K_U64 bounds with F_RANGE */
	double dmin, dmax;        /* K_DBL bounds with F_RANGE */
};

struct schema {
	const struct field *f;
	size_t n;
	size_t size;              /* element size, for K_OBJARR */
	size_t has_off;           /* offset of a uint32_t has mask, or NO_HAS */
};
#define NO_HAS ((size_t)-1)
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define U32MAX 4294967295LL

/* One table row per field. The suffixes say what the row adds:
 * H presence bit, R integer range, N count member, O object array,
 * Q required, D double range, U u64 range. Adding a validated field is
 * one row here (and its member in the struct in proto.h). */
#define FLD(k, kd, st, m) .key = k, .klen = sizeof(k) - 1, .kind = kd, .off = offsetof(st, m)
#define F(k, kind, st, m) { FLD(k, kind, st, m) }
#define FQ(k, kind, st, m) { FLD(k, kind, st, m), .flags = F_REQ }
#define FH(k, kind, st, m, bit) { FLD(k, kind, st, m), .has = bit }
#define FR(k, kind, st, m, lo, hi) { FLD(k, kind, st, m), .min = lo, .max = hi }
#define FN(k, kind, st, m, n) { FLD(k, kind, st, m), .off_n = offsetof(st, n) }
#define FO(k, st, m, n, sc) { FLD(k, K_OBJARR, st, m), .off_n = offsetof(st, n), .sub = sc }
#define FOQ(k, st, m, n, sc) \
	{ FLD(k, K_OBJARR, st, m), .off_n = offsetof(st, n), .sub = sc, .flags = F_REQ }
#define FHD(k, st, m, bit, lo, hi) \
	{ FLD(k, K_DBL, st, m), .has = bit, .flags = F_RANGE, .dmin = lo, .dmax = hi }
#define FD(k, st, m, lo, hi) { FLD(k, K_DBL, st, m), .flags = F_RANGE, .dmin = lo, .dmax = hi }
#define FHU(k, st, m, bit, lo, hi) \
	{ FLD(k, K_U64, st, m), .has = bit, .flags = F_RANGE, .umin = lo, .umax = hi }
#define SCHEMA(name, fields, st) \
	static const struct schema name = { fields, N(fields), sizeof(st), NO_HAS }
#define SCHEMA_HAS(name, fields, st, h) \
	static const struct schema name = { fields, N(fields), sizeof(st), offsetof(st, h) }

static const struct field f_hello[] = {
	FQ("v", K_U32, struct proto_hello, version),
	F("agent", K_STR, struct proto_hello, agent),
	F("pid", K_U32, struct proto_hello, pid),
};
SCHEMA(s_hello, f_hello, struct proto_hello);

static const struct field f_chat[] = {
	FQ("role", K_STR, struct proto_chat_msg, role),
	FQ("content", K_STR, struct proto_chat_msg, content),
};
SCHEMA(s_chat, f_chat, struct proto_chat_msg);

static const struct field f_submit[] = {
	F("model", K_STR, struct proto_submit, model),
	F("prompt", K_STR, struct proto_submit, prompt),
	FO("msgs", struct proto_submit, messages, n_messages, &s_chat),
	FR("prio", K_INT, struct proto_submit, priority, 0, POOL_PRIO_COUNT - 1),
	FH("max_tokens", K_U32, struct proto_submit, max_tokens, PROTO_HAS_MAX_TOKENS),
	FHD("temp", struct proto_submit, temperature, PROTO_HAS_TEMPERATURE, 0, 1e6),
	FH("top_k", K_U32, struct proto_submit, top_k, PROTO_HAS_TOP_K),
	FHD("top_p", struct proto_submit, top_p, PROTO_HAS_TOP_P, 0, 1),
	FHD("min_p", struct proto_submit, min_p, PROTO_HAS_MIN_P, 0, 1),
	FH("seed", K_U64, struct proto_submit, seed, PROTO_HAS_SEED),
	FHD("repetition_penalty", struct proto_submit, repetition_penalty,
	    PROTO_HAS_REPETITION_PENALTY, 0, 10),
	FHD("frequency_penalty", struct proto_submit, frequency_penalty,
	    PROTO_HAS_FREQUENCY_PENALTY, -2, 2),
	FHD("presence_penalty", struct proto_submit, presence_penalty,
	    PROTO_HAS_PRESENCE_PENALTY, -2, 2),
	FH("penalty_last_n", K_U32, struct proto_submit, penalty_last_n, PROTO_HAS_PENALTY_LAST_N),
	/* > 0: the smallest positive double is a deadline that expires */
	FHD("deadline", struct proto_submit, deadline_secs, PROTO_HAS_DEADLINE, DBL_TRUE_MIN, 1e9),
	FHU("cost", struct proto_submit, cost, PROTO_HAS_COST, 1, UINT64_MAX),
	FN("stop", K_STRARR, struct proto_submit, stop, n_stop),
	F("detach", K_BOOL, struct proto_submit, detach),
	F("raw", K_BOOL, struct proto_submit, raw),
	F("ignore_eos", K_BOOL, struct proto_submit, ignore_eos),
	F("key", K_STR, struct proto_submit, key),
};
SCHEMA_HAS(s_submit, f_submit, struct proto_submit, has);

static const struct field f_submitted[] = {
	F("task", K_U64, struct proto_submitted, task),
	F("model", K_STR, struct proto_submitted, model),
};
SCHEMA(s_submitted, f_submitted, struct proto_submitted);

static const struct field f_task_ref[] = {
	FQ("task", K_U64, struct proto_task_ref, task),
	F("wait", K_BOOL, struct proto_task_ref, wait),
	F("follow", K_BOOL, struct proto_task_ref, follow),
};
SCHEMA(s_task_ref, f_task_ref, struct proto_task_ref);

static const struct field f_task[] = {
	F("task", K_U64, struct proto_task_info, id),
	F("model", K_STR, struct proto_task_info, model),
	FR("prio", K_INT, struct proto_task_info, priority, 0, POOL_PRIO_COUNT - 1),
	FR("state", K_INT, struct proto_task_info, state, 0, POOL_STATE_COUNT - 1),
	F("cost", K_U64, struct proto_task_info, cost),
	F("pos", K_U64, struct proto_task_info, position),
	F("age", K_DBL, struct proto_task_info, age_secs),
	F("wait", K_DBL, struct proto_task_info, wait_secs),
	F("run", K_DBL, struct proto_task_info, run_secs),
	FH("dl", K_DBL, struct proto_task_info, deadline_in_secs, PROTO_HAS_DEADLINE),
	F("out", K_U64, struct proto_task_info, output_bytes),
	F("chunks", K_U64, struct proto_task_info, chunks),
	F("uid", K_U32, struct proto_task_info, owner_uid),
	F("error", K_STR, struct proto_task_info, error),
	F("label", K_STR, struct proto_task_info, label),
	F("finish", K_STR, struct proto_task_info, finish),
	F("tokens", K_U64, struct proto_task_info, tokens),
	F("ptokens", K_U64, struct proto_task_info, prompt_tokens),
};
SCHEMA_HAS(s_task, f_task, struct proto_task_info, has);

static const struct field f_result[] = {
	F("task", K_U64, struct proto_result, task),
	FR("state", K_INT, struct proto_result, state, 0, POOL_STATE_COUNT - 1),
	FN("data", K_BIN, struct proto_result, data, len),
	F("error", K_STR, struct proto_result, error),
};
SCHEMA(s_result, f_result, struct proto_result);

static const struct field f_cancel[] = {
	FN("tasks", K_U64ARR, struct proto_cancel, tasks, n_tasks),
	F("all", K_BOOL, struct proto_cancel, all),
	F("model", K_STR, struct proto_cancel, model),
};
SCHEMA(s_cancel, f_cancel, struct proto_cancel);

static const struct field f_cancelled[] = {
	FN("tasks", K_U64ARR, struct proto_cancelled, tasks, n_tasks),
};
SCHEMA(s_cancelled, f_cancelled, struct proto_cancelled);

static const struct field f_filter[] = {
	F("model", K_STR, struct proto_filter, model),
	FR("state", K_INT, struct proto_filter, state, -1, POOL_STATE_COUNT - 1),
	F("all", K_BOOL, struct proto_filter, all),
	FH("owner", K_U64, struct proto_filter, owner, PROTO_HAS_F_OWNER),
	FH("since", K_DBL, struct proto_filter, since_secs, PROTO_HAS_F_SINCE),
	FH("limit", K_U64, struct proto_filter, limit, PROTO_HAS_F_LIMIT),
};
SCHEMA_HAS(s_filter, f_filter, struct proto_filter, has);

#define MS(k, m) F(k, K_U64, struct proto_model_stats, m)
static const struct field f_mstats[] = {
	F("name", K_STR, struct proto_model_stats, name),
	MS("queued", queued), MS("running", running), MS("used_units", used_units),
	F("max_units", K_U64N, struct proto_model_stats, max_units),
	F("max_queue_depth", K_U64N, struct proto_model_stats, max_queue_depth),
	MS("threads", threads),
	F("max_running", K_U64N, struct proto_model_stats, max_running),
	F("running_limit", K_U64N, struct proto_model_stats, running_limit),
	MS("submitted", submitted), MS("completed", completed), MS("failed", failed),
	MS("cancelled", cancelled), MS("expired", expired), MS("timed_out", timed_out),
	MS("rejected", rejected), MS("rejected_queue_full", rejected_queue_full),
	MS("rejected_capacity", rejected_capacity),
	{ FLD("qprio", K_U64VEC, struct proto_model_stats, queued_by_prio), .off_n = 4 },
	F("wait_p50", K_DBL, struct proto_model_stats, queue_wait_p50_ms),
	F("wait_p99", K_DBL, struct proto_model_stats, queue_wait_p99_ms),
	MS("mailbox", mailbox), MS("timeout_secs", timeout_secs),
	MS("retention_secs", retention_secs),
	MS("model_ready", model_ready), MS("prompt_tokens", prompt_tokens),
	MS("generated_tokens", generated_tokens), MS("kv_bytes", kv_bytes),
	MS("mem_bytes", mem_bytes),
	F("device", K_STR, struct proto_model_stats, device),
	F("device_name", K_STR, struct proto_model_stats, device_name),
	MS("device_total_bytes", device_total_bytes), MS("device_free_bytes", device_free_bytes),
	F("llm", K_BOOL, struct proto_model_stats, has_engine),
	F("prefill_tps", K_DBL, struct proto_model_stats, prefill_tps),
	F("decode_tps", K_DBL, struct proto_model_stats, decode_tps),
	MS("batch", batch_size), MS("kv_used", kv_blocks_used), MS("kv_total", kv_blocks_total),
	F("ttft_p50", K_DBL, struct proto_model_stats, ttft_p50_ms),
	F("ttft_p99", K_DBL, struct proto_model_stats, ttft_p99_ms),
	F("itl_p50", K_DBL, struct proto_model_stats, itl_p50_ms),
	F("itl_p99", K_DBL, struct proto_model_stats, itl_p99_ms),
	F("wait_n", K_U64, struct proto_model_stats, queue_wait_count),
	F("wait_sum", K_DBL, struct proto_model_stats, queue_wait_sum_secs),
	F("ttft_n", K_U64, struct proto_model_stats, ttft_count),
	F("ttft_sum", K_DBL, struct proto_model_stats, ttft_sum_secs),
	F("itl_n", K_U64, struct proto_model_stats, itl_count),
	F("itl_sum", K_DBL, struct proto_model_stats, itl_sum_secs),
};
SCHEMA(s_mstats, f_mstats, struct proto_model_stats);

static const struct field f_shared[] = {
	F("model", K_STR, struct proto_shared_stats, model),
	F("queued", K_U64, struct proto_shared_stats, queued),
	F("running", K_U64, struct proto_shared_stats, running),
	F("queued_units", K_U64, struct proto_shared_stats, queued_units),
	F("running_units", K_U64, struct proto_shared_stats, running_units),
};
SCHEMA(s_shared, f_shared, struct proto_shared_stats);

static const struct field f_dshare[] = {
	F("name", K_STR, struct proto_daemon_share, name),
	F("units", K_U64, struct proto_daemon_share, units),
	F("running", K_U64, struct proto_daemon_share, running),
	F("holding", K_U64, struct proto_daemon_share, holding),
	F("seen_ms", K_U64, struct proto_daemon_share, seen_ms),
};
SCHEMA(s_dshare, f_dshare, struct proto_daemon_share);

static const struct field f_stats[] = {
	FO("models", struct proto_stats, models, n_models, &s_mstats),
	F("uptime", K_DBL, struct proto_stats, uptime_secs),
	F("clients", K_U64, struct proto_stats, clients),
	F("rss", K_U64, struct proto_stats, rss_bytes),
	FO("shared", struct proto_stats, shared, n_shared, &s_shared),
	FO("daemons", struct proto_stats, daemons, n_daemons, &s_dshare),
};
SCHEMA(s_stats, f_stats, struct proto_stats);

static const struct field f_queue[] = {
	FO("tasks", struct proto_queue, tasks, n_tasks, &s_task),
};
SCHEMA(s_queue, f_queue, struct proto_queue);

static const struct field f_kv[] = {
	FQ("k", K_STR, struct proto_kv, key),
	FQ("v", K_STR, struct proto_kv, value),
};
SCHEMA(s_kv, f_kv, struct proto_kv);

static const struct field f_mlimits[] = {
	F("name", K_STR, struct proto_model_limits, name),
	FO("kv", struct proto_model_limits, kv, n_kv, &s_kv),
};
SCHEMA(s_mlimits, f_mlimits, struct proto_model_limits);

static const struct field f_limits[] = {
	FO("models", struct proto_limits_reply, models, n_models, &s_mlimits),
};
SCHEMA(s_limits, f_limits, struct proto_limits_reply);

static const struct field f_limits_set[] = {
	F("model", K_STR, struct proto_limits_set, model),
	FOQ("kv", struct proto_limits_set, kv, n_kv, &s_kv),
};
SCHEMA(s_limits_set, f_limits_set, struct proto_limits_set);

static const struct field f_minfo[] = {
	F("name", K_STR, struct proto_model_info, name),
	F("executor", K_STR, struct proto_model_info, executor),
	F("path", K_STR, struct proto_model_info, path),
	F("default", K_BOOL, struct proto_model_info, is_default),
	F("state", K_STR, struct proto_model_info, state),
	F("progress", K_DBL, struct proto_model_info, progress),
	F("error", K_STR, struct proto_model_info, error),
	F("ctx", K_U64, struct proto_model_info, context_length),
	F("kv_blocks", K_U64, struct proto_model_info, kv_blocks),
	FD("idle_in", struct proto_model_info, idle_in_secs, 0, 1e12),
	F("adhoc", K_BOOL, struct proto_model_info, adhoc),
	F("mem", K_U64, struct proto_model_info, mem_bytes),
	F("device", K_STR, struct proto_model_info, device),
	F("device_name", K_STR, struct proto_model_info, device_name),
	F("device_total_bytes", K_U64, struct proto_model_info, device_total_bytes),
	F("device_free_bytes", K_U64, struct proto_model_info, device_free_bytes),
	F("gen_max_tokens", K_U64, struct proto_model_info, gen_max_tokens),
	F("gen_top_k", K_U64, struct proto_model_info, gen_top_k),
	F("gen_temp", K_DBL, struct proto_model_info, gen_temperature),
	F("gen_top_p", K_DBL, struct proto_model_info, gen_top_p),
	F("gen_min_p", K_DBL, struct proto_model_info, gen_min_p),
};
SCHEMA(s_minfo, f_minfo, struct proto_model_info);

static const struct field f_models[] = {
	FO("models", struct proto_models, models, n_models, &s_minfo),
};
SCHEMA(s_models, f_models, struct proto_models);

static const struct field f_models_req[] = {
	F("load", K_STR, struct proto_models_req, load),
	F("name", K_STR, struct proto_models_req, name),
	F("unload", K_STR, struct proto_models_req, unload),
};
SCHEMA(s_models_req, f_models_req, struct proto_models_req);

static const struct field f_config[] = {
	F("yaml", K_STR, struct proto_config, yaml),
	F("source", K_STR, struct proto_config, source),
};
SCHEMA(s_config, f_config, struct proto_config);

static const struct field f_stop[] = {
	FD("timeout", struct proto_stop, timeout_secs, 0, 1e9),
};
SCHEMA(s_stop, f_stop, struct proto_stop);

static const struct field f_error[] = {
	F("code", K_CODE, struct proto_error, code),
	F("msg", K_STR, struct proto_error, message),
};
SCHEMA(s_error, f_error, struct proto_error);

static const struct field f_chunk[] = {
	F("task", K_U64, struct proto_chunk, task),
	FN("data", K_BIN, struct proto_chunk, data, len),
};
SCHEMA(s_chunk, f_chunk, struct proto_chunk);

static const struct field f_end[] = {
	F("task", K_U64, struct proto_end, task),
	FR("state", K_INT, struct proto_end, state, 0, POOL_STATE_COUNT - 1),
	F("error", K_STR, struct proto_end, error),
	F("finish", K_STR, struct proto_end, finish),
	F("tokens", K_U64, struct proto_end, tokens),
	F("ptokens", K_U64, struct proto_end, prompt_tokens),
	F("wait", K_DBL, struct proto_end, wait_secs),
	F("run", K_DBL, struct proto_end, run_secs),
};
SCHEMA(s_end, f_end, struct proto_end);

static const struct field f_none[1] = { F("", K_BOOL, struct proto_stop, timeout_secs) };
static const struct schema s_none = { f_none, 0, 0, NO_HAS };

/* The body schema of a request (or of an event). */
static const struct schema *request_schema(int type)
{
	switch (type) {
	case PROTO_T_HELLO: return &s_hello;
	case PROTO_T_SUBMIT: return &s_submit;
	case PROTO_T_STATUS: case PROTO_T_RESULT: case PROTO_T_SUBSCRIBE: return &s_task_ref;
	case PROTO_T_CANCEL: return &s_cancel;
	case PROTO_T_STATS: case PROTO_T_QUEUE: case PROTO_T_LIMITS_GET: return &s_filter;
	case PROTO_T_LIMITS_SET: return &s_limits_set;
	case PROTO_T_MODELS: return &s_models_req;
	case PROTO_T_CONFIG: case PROTO_T_PING: return &s_none;
	case PROTO_T_DRAIN: case PROTO_T_SHUTDOWN: return &s_stop;
	case PROTO_T_ERR: return &s_error;
	case PROTO_T_CHUNK: return &s_chunk;
	case PROTO_T_END: return &s_end;
	default: return NULL;
	}
}

/* The body schema of an ok reply to op. */
static const struct schema *ok_schema(int op)
{
	switch (op) {
	case PROTO_T_HELLO: return &s_hello;
	case PROTO_T_SUBMIT: return &s_submitted;
	case PROTO_T_STATUS: case PROTO_T_SUBSCRIBE: return &s_task;
	case PROTO_T_RESULT: return &s_result;
	case PROTO_T_CANCEL: return &s_cancelled;
	case PROTO_T_STATS: return &s_stats;
	case PROTO_T_QUEUE: return &s_queue;
	case PROTO_T_LIMITS_GET: case PROTO_T_LIMITS_SET: return &s_limits;
	case PROTO_T_MODELS: return &s_models;
	case PROTO_T_CONFIG: return &s_config;
	case PROTO_T_PING: case PROTO_T_DRAIN: case PROTO_T_SHUTDOWN: return &s_none;
	default: return NULL;
	}
}

static int is_request(int type)
{
	return type >= PROTO_T_HELLO && type <= PROTO_T_SHUTDOWN;
}

static const struct schema *msg_schema(int type, int op)
{
	if (type == PROTO_T_OK && !is_request(op))
		return NULL;
	if (type == PROTO_T_ERR && op && !is_request(op))
		return NULL; /* an err may answer no request: a malformed frame */
	return type == PROTO_T_OK ? ok_schema(op) : request_schema(type);
}

static size_t schema_keys(const struct schema *s, const char **keys, size_t cap, size_t n)
{
	for (size_t i = 0; i < s->n; i++) {
		if (n < cap)
			keys[n] = s->f[i].key;
		n++;
		if (s->f[i].kind == K_OBJARR)
			n = schema_keys(s->f[i].sub, keys, cap, n);
	}
	return n;
}

size_t proto_msg_keys(int type, int op, const char **keys, size_t cap)
{
	const struct schema *s = msg_schema(type, op);
	return s ? schema_keys(s, keys, cap, 0) : 0;
}

/* ---- introspection ------------------------------------------------------ */

static const char *const kind_names[] = {
	[K_U64] = "u64", [K_U32] = "u32", [K_INT] = "int", [K_BOOL] = "bool",
	[K_DBL] = "double", [K_STR] = "str", [K_BIN] = "bin", [K_U64N] = "u64n",
	[K_STRARR] = "str[]", [K_U64ARR] = "u64[]", [K_U64VEC] = "u64[N]",
	[K_OBJARR] = "obj[]", [K_CODE] = "code",
};

static void field_info(const struct field *f, const char *parent, struct proto_field_info *fi)
{
	memset(fi, 0, sizeof *fi);
	fi->key = f->key;
	fi->parent = parent;
	fi->kind = kind_names[f->kind];
	fi->required = !!(f->flags & F_REQ);
	fi->has_range = f->kind == K_INT || f->kind == K_U32 || (f->flags & F_RANGE);
	fi->min = f->kind == K_U32 ? 0 : f->min;
	fi->max = f->kind == K_U32 ? U32MAX : f->max;
	fi->umin = f->umin;
	fi->umax = f->umax;
	fi->dmin = f->dmin;
	fi->dmax = f->dmax;
}

/* Find the *i-th field (depth first) in s; counts *i down. */
static int schema_nth(const struct schema *s, const char *parent, size_t *i,
		      struct proto_field_info *fi)
{
	for (size_t k = 0; k < s->n; k++) {
		if ((*i)-- == 0) {
			field_info(&s->f[k], parent, fi);
			return 1;
		}
		if (s->f[k].kind == K_OBJARR && schema_nth(s->f[k].sub, s->f[k].key, i, fi))
			return 1;
	}
	return 0;
}

int proto_schema_field(int type, int op, size_t i, struct proto_field_info *fi)
{
	const struct schema *s = msg_schema(type, op);
	return s ? schema_nth(s, NULL, &i, fi) : 0;
}

/* ---- encoding ----------------------------------------------------------- */

#define AT(base, off, T) ((T *)(void *)((char *)(base) + (off)))
#define CAT(base, off, T) ((T const *)(const void *)((const char *)(base) + (off)))

static int field_present(const struct schema *s, const struct field *f, const void *base)
{
	if (f->has)
		return s->has_off != NO_HAS && (*CAT(base, s->has_off, uint32_t) & f->has);
	switch (f->kind) {
	case K_STR: return *CAT(base, f->off, const char *) != NULL;
	case K_BOOL: return *CAT(base, f->off, int) != 0;
	case K_BIN: return *CAT(base, f->off, const void *) != NULL;
	default: return 1; /* numbers, and arrays even when empty */
	}
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_body(msgpack_packer *pk, const struct schema *s, const void *base,
		     int open_map, size_t extra);

static int pack_array(msgpack_packer *pk, const struct field *f, const void *base)
{
	uint32_t n = f->kind == K_U64VEC ? (uint32_t)f->off_n : *CAT(base, f->off_n, uint32_t);
	if (msgpack_pack_array(pk, n))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		int rc = 0;
		if (f->kind == K_STRARR) {
			const char *const *v = *CAT(base, f->off, const char *const *);
			rc = pack_str(pk, v[i] ? v[i] : "");
		} else if (f->kind == K_U64ARR) {
			rc = msgpack_pack_uint64(pk, (*CAT(base, f->off, const uint64_t *))[i]);
		} else if (f->kind == K_U64VEC) {
			rc = msgpack_pack_uint64(pk, CAT(base, f->off, uint64_t)[i]);
		} else {
			const char *el = *CAT(base, f->off, const char *);
			rc = pack_body(pk, f->sub, el + (size_t)i * f->sub->size, 1, 0);
		}
		if (rc)
			return -1;
	}
	return 0;
}

static int pack_value(msgpack_packer *pk, const struct field *f, const void *base)
{
	switch (f->kind) {
	case K_U64: return msgpack_pack_uint64(pk, *CAT(base, f->off, uint64_t));
	case K_U32: return msgpack_pack_uint32(pk, *CAT(base, f->off, uint32_t));
	case K_INT: return msgpack_pack_int(pk, *CAT(base, f->off, int));
	case K_BOOL: return msgpack_pack_true(pk);
	case K_DBL: return msgpack_pack_double(pk, *CAT(base, f->off, double));
	case K_STR: return pack_str(pk, *CAT(base, f->off, const char *));
	case K_CODE: return pack_str(pk, proto_code_name(*CAT(base, f->off, int)));
	case K_U64N: {
		uint64_t v = *CAT(base, f->off, uint64_t);
		return v == UINT64_MAX ? msgpack_pack_nil(pk) : msgpack_pack_uint64(pk, v);
	}
	case K_BIN: {
		size_t n = *CAT(base, f->off_n, size_t);
		return msgpack_pack_bin(pk, n) ||
		       msgpack_pack_bin_body(pk, *CAT(base, f->off, const void *), n);
	}
	default: return pack_array(pk, f, base);
	}
}

/* Pack the present fields of base; with open_map, first the map header
 * (with extra more pairs the caller packs before). */
static int pack_body(msgpack_packer *pk, const struct schema *s, const void *base,
		     int open_map, size_t extra)
{
	if (open_map) {
		size_t n = extra;
		for (size_t i = 0; i < s->n; i++)
			n += (size_t)field_present(s, &s->f[i], base);
		if (msgpack_pack_map(pk, n))
			return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct field *f = &s->f[i];
		if (!field_present(s, f, base))
			continue;
		if (msgpack_pack_str(pk, f->klen) || msgpack_pack_str_body(pk, f->key, f->klen) ||
		    pack_value(pk, f, base))
			return -1;
	}
	return 0;
}

static int buf_write(void *data, const char *buf, size_t len)
{
	return proto_buf_append(data, buf, len) ? -1 : 0;
}

int proto_encode(const struct proto_msg *m, const struct proto_limits *lim,
		 struct proto_buf *out, char *err, size_t errlen)
{
	struct proto_limits l = lim ? *lim : (struct proto_limits){ 0 };
	const struct schema *s = msg_schema(m->type, m->op);
	if (!s) {
		snprintf(err, errlen, "cannot encode message type %d (op %d)", m->type, m->op);
		return -PROTO_E_INVALID;
	}
	proto_limits_resolve(&l);
	/* Offsets are kept relative to the unsent data: appending may compact
	 * the buffer (drop consumed bytes), which moves everything by out->off. */
	size_t rel = out->len - out->off;
	static const unsigned char zero[4];
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, buf_write);
	int bad = proto_buf_append(out, zero, 4) || pack_body(&pk, s, &m->u, 1, 2 + (m->op != 0));
	bad = bad || pack_str(&pk, "t") || pack_str(&pk, proto_type_name(m->type));
	bad = bad || pack_str(&pk, "id") || msgpack_pack_uint64(&pk, m->id);
	if (!bad && m->op)
		bad = pack_str(&pk, "op") || pack_str(&pk, proto_type_name(m->op));
	size_t start = out->off + rel;
	if (bad) {
		out->len = start;
		snprintf(err, errlen, "out of memory encoding %s", proto_type_name(m->type));
		return -PROTO_E_NOMEM;
	}
	size_t n = out->len - start - 4;
	if (n > l.max_frame) {
		out->len = start;
		snprintf(err, errlen, "%s message of %zu bytes exceeds max_frame %u",
			 proto_type_name(m->type), n, (unsigned)l.max_frame);
		return -PROTO_E_TOO_LARGE;
	}
	unsigned char *p = (unsigned char *)out->data + start;
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
	return 0;
}

/* ---- arena -------------------------------------------------------------- */

void *proto_arena_alloc(struct proto_msg *m, size_t n)
{
	if (!m->arena_)
		m->arena_ = msgpack_zone_new(4096);
	if (!m->arena_)
		return NULL;
	return msgpack_zone_malloc(m->arena_, n ? n : 1);
}

char *proto_arena_strdup(struct proto_msg *m, const char *s, size_t len)
{
	char *p = proto_arena_alloc(m, len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}

void proto_arena_free(struct proto_msg *m)
{
	if (m->arena_)
		msgpack_zone_free(m->arena_);
	m->arena_ = NULL;
}

/* ---- decoding ----------------------------------------------------------- */

struct dec {
	struct proto_msg *m;
	char *err;
	size_t errlen;
	char path[128];           /* "models[2]." while inside an object array */
};

static const char *obj_type_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return "int";
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative int";
	case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: return "float";
	case MSGPACK_OBJECT_STR: return "str";
	case MSGPACK_OBJECT_BIN: return "bin";
	case MSGPACK_OBJECT_ARRAY: return "array";
	case MSGPACK_OBJECT_MAP: return "map";
	default: return "ext";
	}
}

static int bad_field(struct dec *d, const char *key, const char *want, const msgpack_object *o)
{
	snprintf(d->err, d->errlen, "field '%s%s': expected %s, got %s", d->path, key, want,
		 obj_type_name(o));
	return -PROTO_E_INVALID;
}

static int get_int(struct dec *d, const struct field *f, const msgpack_object *o,
		   int64_t lo, int64_t hi, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
		*v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		return bad_field(d, f->key, "an integer", o);
	if (*v < lo || *v > hi) {
		snprintf(d->err, d->errlen, "field '%s%s': %lld is out of range %lld..%lld",
			 d->path, f->key, (long long)*v, (long long)lo, (long long)hi);
		return -PROTO_E_INVALID;
	}
	return 0;
}

static int get_u64(struct dec *d, const char *key, const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return bad_field(d, key, "a non-negative integer", o);
	*v = o->via.u64;
	return 0;
}

static int get_str(struct dec *d, const char *key, const msgpack_object *o, const char **v)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return bad_field(d, key, "a string", o);
	const char *nul = memchr(o->via.str.ptr, 0, o->via.str.size);
	if (nul) {
		snprintf(d->err, d->errlen, "field '%s%s': embedded NUL at byte %zu", d->path, key,
			 (size_t)(nul - o->via.str.ptr));
		return -PROTO_E_INVALID;
	}
	*v = proto_arena_strdup(d->m, o->via.str.ptr, o->via.str.size);
	return *v ? 0 : -PROTO_E_NOMEM;
}

static int dec_body(struct dec *d, const struct schema *s, void *base,
		    const msgpack_object_map *map);

static int check_u64(struct dec *d, const struct field *f, uint64_t v)
{
	if (!(f->flags & F_RANGE) || (v >= f->umin && v <= f->umax))
		return 0;
	snprintf(d->err, d->errlen, "field '%s%s': %llu is out of range %llu..%llu", d->path,
		 f->key, (unsigned long long)v, (unsigned long long)f->umin,
		 (unsigned long long)f->umax);
	return -PROTO_E_INVALID;
}

static int check_dbl(struct dec *d, const struct field *f, double v)
{
	if (!isfinite(v)) {
		snprintf(d->err, d->errlen, "field '%s%s': expected a finite number", d->path,
			 f->key);
		return -PROTO_E_INVALID;
	}
	if (!(f->flags & F_RANGE) || (v >= f->dmin && v <= f->dmax))
		return 0;
	snprintf(d->err, d->errlen, "field '%s%s': %g is out of range %s%g..%g", d->path,
		 f->key, v, f->dmin > 0 && f->dmin < DBL_MIN ? "> " : "",
		 f->dmin > 0 && f->dmin < DBL_MIN ? 0.0 : f->dmin, f->dmax);
	return -PROTO_E_INVALID;
}

static int dec_objarr(struct dec *d, const struct field *f, void *base,
		      const msgpack_object_array *a)
{
	char *el = proto_arena_alloc(d->m, (size_t)a->size * f->sub->size);
	if (!el)
		return -PROTO_E_NOMEM;
	memset(el, 0, (size_t)a->size * f->sub->size);
	size_t plen = strlen(d->path);
	for (uint32_t i = 0; i < a->size; i++) {
		if (a->ptr[i].type != MSGPACK_OBJECT_MAP)
			return bad_field(d, f->key, "an array of maps", &a->ptr[i]);
		snprintf(d->path + plen, sizeof d->path - plen, "%s[%u].", f->key, (unsigned)i);
		int rc = dec_body(d, f->sub, el + (size_t)i * f->sub->size, &a->ptr[i].via.map);
		if (rc)
			return rc;
		d->path[plen] = 0;
	}
	*AT(base, f->off, void *) = el;
	*AT(base, f->off_n, uint32_t) = a->size;
	return 0;
}

static int dec_array(struct dec *d, const struct field *f, void *base, const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return bad_field(d, f->key, "an array", o);
	const msgpack_object_array *a = &o->via.array;
	if (f->kind == K_OBJARR)
		return dec_objarr(d, f, base, a);
	if (f->kind == K_U64VEC && a->size != f->off_n) {
		snprintf(d->err, d->errlen, "field '%s%s': expected an array of %zu, got %u",
			 d->path, f->key, f->off_n, (unsigned)a->size);
		return -PROTO_E_INVALID;
	}
	uint64_t *u = f->kind == K_U64VEC ? AT(base, f->off, uint64_t) : NULL;
	const char **sv = NULL;
	if (f->kind == K_U64ARR)
		u = proto_arena_alloc(d->m, (size_t)a->size * sizeof *u);
	else if (f->kind == K_STRARR)
		sv = proto_arena_alloc(d->m, (size_t)a->size * sizeof *sv);
	if (!u && !sv)
		return -PROTO_E_NOMEM;
	for (uint32_t i = 0; i < a->size; i++) {
		int rc = sv ? get_str(d, f->key, &a->ptr[i], &sv[i])
			    : get_u64(d, f->key, &a->ptr[i], &u[i]);
		if (rc)
			return rc;
	}
	if (f->kind == K_U64VEC)
		return 0;
	*AT(base, f->off, void *) = sv ? (void *)sv : (void *)u;
	*AT(base, f->off_n, uint32_t) = a->size;
	return 0;
}

static int dec_scalar(struct dec *d, const struct field *f, void *base, const msgpack_object *o)
{
	int64_t v;
	int rc;
	switch (f->kind) {
	case K_U64:
		if ((rc = get_u64(d, f->key, o, AT(base, f->off, uint64_t))))
			return rc;
		return check_u64(d, f, *AT(base, f->off, uint64_t));
	case K_U64N:
		if (o->type == MSGPACK_OBJECT_NIL) {
			*AT(base, f->off, uint64_t) = UINT64_MAX;
			return 0;
		}
		return get_u64(d, f->key, o, AT(base, f->off, uint64_t));
	case K_U32:
		if ((rc = get_int(d, f, o, 0, U32MAX, &v)))
			return rc;
		*AT(base, f->off, uint32_t) = (uint32_t)v;
		return 0;
	case K_INT:
		if ((rc = get_int(d, f, o, f->min, f->max, &v)))
			return rc;
		*AT(base, f->off, int) = (int)v;
		return 0;
	case K_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return bad_field(d, f->key, "a bool", o);
		*AT(base, f->off, int) = o->via.boolean;
		return 0;
	case K_DBL:
		if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
			*AT(base, f->off, double) = o->via.f64;
		else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			*AT(base, f->off, double) = (double)o->via.u64;
		else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			*AT(base, f->off, double) = (double)o->via.i64;
		else
			return bad_field(d, f->key, "a number", o);
		return check_dbl(d, f, *AT(base, f->off, double));
	default:
		return dec_array(d, f, base, o);
	}
}

static int dec_value(struct dec *d, const struct field *f, void *base, const msgpack_object *o)
{
	switch (f->kind) {
	case K_STR:
		return get_str(d, f->key, o, AT(base, f->off, const char *));
	case K_CODE: {
		const char *name = NULL;
		int rc = get_str(d, f->key, o, &name);
		if (rc)
			return rc;
		int code = proto_code_parse(name);
		/* an unknown code from a newer peer is still an error */
		*AT(base, f->off, int) = code > 0 ? code : PROTO_E_INTERNAL;
		return 0;
	}
	case K_BIN:
		if (o->type != MSGPACK_OBJECT_BIN && o->type != MSGPACK_OBJECT_STR)
			return bad_field(d, f->key, "bytes", o);
		/* str and bin share the layout of their (ptr, size) view */
		*AT(base, f->off, const void *) =
			proto_arena_strdup(d->m, o->via.bin.ptr, o->via.bin.size);
		*AT(base, f->off_n, size_t) = o->via.bin.size;
		return *AT(base, f->off, const void *) ? 0 : -PROTO_E_NOMEM;
	default:
		return dec_scalar(d, f, base, o);
	}
}

static const struct field *find_field(const struct schema *s, const msgpack_object *key)
{
	if (key->type != MSGPACK_OBJECT_STR)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->f[i].klen == key->via.str.size &&
		    memcmp(s->f[i].key, key->via.str.ptr, key->via.str.size) == 0)
			return &s->f[i];
	return NULL;
}

/* A key no schema row names: ignored (room for additions from a newer
 * peer), but counted and the first one named in the message, so a receiver
 * can say so (plotd logs it at debug level). t, id and op are the header. */
static void note_unknown(struct dec *d, const msgpack_object *k)
{
	struct proto_msg *m = d->m;
	int top = !d->path[0];
	if (k->type != MSGPACK_OBJECT_STR) {
		if (!m->n_unknown++)
			snprintf(m->unknown, sizeof m->unknown, "%.20s(a %s key)", d->path,
				 obj_type_name(k));
		return;
	}
	const char *s = k->via.str.ptr;
	uint32_t n = k->via.str.size;
	if (top && ((n == 1 && *s == 't') || (n == 2 && !memcmp(s, "id", 2)) ||
		    (n == 2 && !memcmp(s, "op", 2))))
		return;
	if (!m->n_unknown++)
		snprintf(m->unknown, sizeof m->unknown, "%.20s%.*s", d->path, (int)(n > 40 ? 40 : n), s);
}

/* A key that appears twice in one map is refused: which one a receiver
 * keeps would be a guess, and two parsers may guess differently. */
static int dup_key(struct dec *d, const msgpack_object_map *map, uint32_t i)
{
	const msgpack_object *k = &map->ptr[i].key;
	if (k->type != MSGPACK_OBJECT_STR)
		return 0;
	for (uint32_t j = 0; j < i; j++) {
		const msgpack_object *o = &map->ptr[j].key;
		if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == k->via.str.size &&
		    memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0) {
			snprintf(d->err, d->errlen, "field '%s%.*s': duplicate key", d->path,
				 (int)(k->via.str.size > 40 ? 40 : k->via.str.size),
				 k->via.str.ptr);
			return -PROTO_E_INVALID;
		}
	}
	return 0;
}

/* Every F_REQ field of s was seen (seen: bit i for field i). */
static int check_required(struct dec *d, const struct schema *s, uint64_t seen)
{
	for (size_t i = 0; i < s->n; i++)
		if ((s->f[i].flags & F_REQ) && !(seen >> i & 1)) {
			snprintf(d->err, d->errlen, "field '%s%s': missing", d->path, s->f[i].key);
			return -PROTO_E_INVALID;
		}
	return 0;
}

/* Schemas hold at most 64 fields (the seen mask; test-proto checks). */
static int dec_body(struct dec *d, const struct schema *s, void *base,
		    const msgpack_object_map *map)
{
	uint64_t seen = 0;
	for (uint32_t i = 0; i < map->size; i++) {
		int rc = dup_key(d, map, i);
		if (rc)
			return rc;
		const struct field *f = find_field(s, &map->ptr[i].key);
		const msgpack_object *v = &map->ptr[i].val;
		if (!f) {
			note_unknown(d, &map->ptr[i].key);
			continue;
		}
		if (v->type == MSGPACK_OBJECT_NIL && f->kind != K_U64N)
			continue; /* nil = absent */
		rc = dec_value(d, f, base, v);
		if (rc)
			return rc;
		seen |= (uint64_t)1 << (f - s->f);
		if (f->has && s->has_off != NO_HAS)
			*AT(base, s->has_off, uint32_t) |= f->has;
	}
	return check_required(d, s, seen);
}

static const msgpack_object *map_get(const msgpack_object_map *map, const char *key)
{
	size_t n = strlen(key);
	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &map->ptr[i].val;
	}
	return NULL;
}

/* Read t, id and op into d->m. */
static int dec_header(struct dec *d, const msgpack_object_map *map)
{
	const msgpack_object *t = map_get(map, "t");
	const msgpack_object *id = map_get(map, "id");
	const msgpack_object *op = map_get(map, "op");

	if (!t || t->type != MSGPACK_OBJECT_STR || t->via.str.size > 32) {
		snprintf(d->err, d->errlen, "field 't': missing or not a message type");
		return -PROTO_E_MALFORMED;
	}
	char name[40];
	memcpy(name, t->via.str.ptr, t->via.str.size);
	name[t->via.str.size] = 0;
	int type = proto_type_parse(name);
	if (type < 0) {
		snprintf(d->err, d->errlen, "field 't': unknown message type \"%.32s\"", name);
		return -PROTO_E_MALFORMED;
	}
	d->m->type = type;
	if (id && get_u64(d, "id", id, &d->m->id))
		return -PROTO_E_INVALID;
	if (type != PROTO_T_OK && type != PROTO_T_ERR)
		return 0;
	if (type == PROTO_T_ERR && !op)
		return 0;
	if (!op || op->type != MSGPACK_OBJECT_STR || op->via.str.size > 32) {
		snprintf(d->err, d->errlen, "field 'op': missing in a reply");
		return -PROTO_E_INVALID;
	}
	memcpy(name, op->via.str.ptr, op->via.str.size);
	name[op->via.str.size] = 0;
	d->m->op = proto_type_parse(name);
	if (!is_request(d->m->op)) {
		snprintf(d->err, d->errlen, "field 'op': \"%.32s\" is not a request type", name);
		d->m->op = 0;
		return -PROTO_E_INVALID;
	}
	return 0;
}

static int decode_obj(struct dec *d, const msgpack_object *root)
{
	if (root->type != MSGPACK_OBJECT_MAP) {
		snprintf(d->err, d->errlen, "offset 0: message is a %s, expected a map",
			 obj_type_name(root));
		return -PROTO_E_MALFORMED;
	}
	int rc = dec_header(d, &root->via.map);
	if (rc)
		return rc;
	int op = d->m->op;
	proto_msg_init(d->m, d->m->type, d->m->id); /* the type's field defaults */
	d->m->op = op;
	rc = dec_body(d, msg_schema(d->m->type, d->m->op), &d->m->u, &root->via.map);
	if (!rc && d->m->type == PROTO_T_ERR && d->m->u.error.code == PROTO_OK)
		d->m->u.error.code = PROTO_E_INTERNAL; /* an err without a code is still an error */
	return rc;
}

int proto_decode(const void *body, size_t len, const struct proto_limits *lim,
		 struct proto_msg *out, char *err, size_t errlen)
{
	struct proto_limits l = lim ? *lim : (struct proto_limits){ 0 };
	struct dec d = { out, err, errlen, "" };

	memset(out, 0, sizeof *out);
	proto_limits_resolve(&l);
	if (len > l.max_frame) {
		snprintf(err, errlen, "frame of %zu bytes exceeds max_frame %u", len,
			 (unsigned)l.max_frame);
		return -PROTO_E_TOO_LARGE;
	}
	if (len == 0) {
		snprintf(err, errlen, "offset 0: empty frame");
		return -PROTO_E_MALFORMED;
	}
	int rc = proto_scan(body, len, &l, err, errlen);
	if (rc)
		return rc;
	msgpack_unpacked up;
	size_t off = 0;
	msgpack_unpacked_init(&up);
	rc = msgpack_unpack_next(&up, body, len, &off);
	if (rc == MSGPACK_UNPACK_NOMEM_ERROR) {
		snprintf(err, errlen, "out of memory decoding a frame of %zu bytes", len);
		rc = -PROTO_E_NOMEM;
	} else if (rc != MSGPACK_UNPACK_SUCCESS || off != len) {
		snprintf(err, errlen, "offset %zu: msgpack could not be decoded", off);
		rc = -PROTO_E_MALFORMED;
	} else {
		rc = decode_obj(&d, &up.data);
	}
	msgpack_unpacked_destroy(&up);
	if (rc) {
		int type = out->type, op = out->op;
		uint64_t id = out->id;
		proto_msg_clear(out);
		out->type = type;
		out->op = op;
		out->id = id;
	}
	return rc;
}
