/*
 * test-proto.c — the wire protocol: every message round-trips; truncated,
 * oversized, malformed and wrong-type frames give the right code and a
 * message naming the offset or field; the incremental reader works byte by
 * byte and keeps framing errors sticky; blocking helpers over a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "plot/pool.h"
#include "plot/proto.h"

/* ---- fixtures: one fully populated message of every kind ----------------- */

static const struct proto_chat_msg chat[] = { { "system", "be brief" }, { "user", "hi" } };
static const char *const stops[] = { "\n\n", "END" };
static const uint64_t ids[] = { 3, 5, 18446744073709551615ull };
static const struct proto_task_info tasks[] = {
	{ 7, "echo", POOL_PRIO_HIGH, POOL_RUNNING, 4, 0, 1.5, 0.25, 1.25, PROTO_HAS_DEADLINE, -2.5,
	  11, 3, 1000, NULL, "hello wor", NULL, 3, 0 },
	{ 8, "echo", POOL_PRIO_LOW, POOL_QUEUED, 1, 1, 0.5, 0.5, 0, 0, 0, 0, 0, 1001, "err", NULL,
	  "max_tokens", 9, 5 },
};
static const struct proto_model_stats mstats[] = {
	{ "echo", 1, 2, 3, UINT64_MAX, 1000, 4, UINT64_MAX, 7, 10, 5, 1, 1, 1, 1, 1, 0, 1, { 1, 0, 0, 0 },
	  0.5, 9.25, 6, 120, 3600, 1, 70, 99, 8388608, 1, 812.5, 95.25, 3, 17, 1024, 40.5, 88, 10.25, 31,
	  12, 5, 300, 0.75, 2.5, 4.125, 98316800, "cuda:1", "NVIDIA H200", 150754820096ull,
	  120000000000ull },
	{ "big", 0, 0, 0, 8, UINT64_MAX, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, { 0, 0, 0, 0 }, 0, 0, 0, 0, 1,
	  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0 },
};
static const struct proto_shared_stats shared[] = { { "echo", 3, 2, 5, 4 } };
static const struct proto_daemon_share dshares[] = { { "d1", 8, 2, 2, 150 },
						     { "d2", 4, 0, 0, 9 } };
static const struct proto_kv kvs[] = { { "max_units", "8" }, { "max_running", "null" } };
static const struct proto_model_limits mlimits[] = { { "echo", kvs, 2 }, { "b", NULL, 0 } };
static const struct proto_model_info minfos[] = {
	{ "echo", "synthetic", NULL, 1, "ready", 1, NULL, 0, 0, 0, 0, 0, 40, 0.8, 0.95, 0.05, 0, NULL, NULL, 0, 0 },
	{ "l", "llm", "/m.gguf", 0, "failed", 0.5, "no such file", 8192, 1024, 12.5, 1, 512, 0,
	  0, 1, 0, 98316800, "cuda:1", "emulated", 268435456, 1000 },
};

static void fill_request(struct proto_msg *m, int type)
{
	proto_msg_init(m, type, 42 + (uint64_t)type);
	switch (type) {
	case PROTO_T_HELLO:
		m->u.hello = (struct proto_hello){ PROTO_VERSION, "plot test", 0 };
		break;
	case PROTO_T_SUBMIT: {
		struct proto_submit *s = &m->u.submit;
		s->model = "echo";
		s->prompt = "a b c";
		s->messages = chat;
		s->n_messages = 2;
		s->priority = POOL_PRIO_CRITICAL;
		s->has = PROTO_HAS_MAX_TOKENS | PROTO_HAS_TEMPERATURE | PROTO_HAS_TOP_K |
			 PROTO_HAS_TOP_P | PROTO_HAS_MIN_P | PROTO_HAS_SEED | PROTO_HAS_DEADLINE |
			 PROTO_HAS_COST;
		s->max_tokens = 64;
		s->temperature = 0.7;
		s->top_k = 40;
		s->top_p = 0.9;
		s->min_p = 0.05;
		s->seed = 1234567890123ull;
		s->deadline_secs = 2.5;
		s->cost = 3;
		s->stop = stops;
		s->n_stop = 2;
		s->detach = 1;
		s->ignore_eos = 1;
		break;
	}
	case PROTO_T_STATUS: case PROTO_T_RESULT: case PROTO_T_SUBSCRIBE:
		m->u.task_ref = (struct proto_task_ref){ 99, 1, 1 };
		break;
	case PROTO_T_CANCEL:
		m->u.cancel = (struct proto_cancel){ ids, 3, 1, "echo" };
		break;
	case PROTO_T_STATS: case PROTO_T_QUEUE: case PROTO_T_LIMITS_GET:
		m->u.filter = (struct proto_filter){ .model = "echo", .state = POOL_DONE, .all = 1,
						     .has = PROTO_HAS_F_OWNER | PROTO_HAS_F_SINCE |
							    PROTO_HAS_F_LIMIT,
						     .owner = 1000, .since_secs = 2.5, .limit = 10 };
		break;
	case PROTO_T_LIMITS_SET:
		m->u.limits_set = (struct proto_limits_set){ "echo", kvs, 2 };
		break;
	case PROTO_T_DRAIN: case PROTO_T_SHUTDOWN:
		m->u.stop.timeout_secs = 30;
		break;
	case PROTO_T_MODELS:
		m->u.models_req = (struct proto_models_req){ "/m/x.gguf", "x", "old" };
		break;
	default:
		break;
	}
}

static void fill_ok(struct proto_msg *m, int op)
{
	static const char out[] = "bytes\0with nul";
	struct proto_msg req;
	proto_msg_init(&req, op, 5);
	proto_msg_ok(m, &req);
	switch (op) {
	case PROTO_T_HELLO: m->u.hello = (struct proto_hello){ PROTO_VERSION, "plotd", 4242 }; break;
	case PROTO_T_SUBMIT: m->u.submitted = (struct proto_submitted){ 77, "echo" }; break;
	case PROTO_T_STATUS: case PROTO_T_SUBSCRIBE: m->u.task = tasks[0]; break;
	case PROTO_T_RESULT:
		m->u.result = (struct proto_result){ 7, POOL_TIMEOUT, out, sizeof out, "deadline" };
		break;
	case PROTO_T_CANCEL: m->u.cancelled = (struct proto_cancelled){ ids, 2 }; break;
	case PROTO_T_STATS:
		m->u.stats = (struct proto_stats){ mstats, 2, 12.5, 3, 123456, shared, 1, dshares, 2 };
		break;
	case PROTO_T_QUEUE: m->u.queue = (struct proto_queue){ tasks, 2 }; break;
	case PROTO_T_LIMITS_GET: case PROTO_T_LIMITS_SET:
		m->u.limits = (struct proto_limits_reply){ mlimits, 2 };
		break;
	case PROTO_T_MODELS: m->u.models = (struct proto_models){ minfos, 2 }; break;
	case PROTO_T_CONFIG: m->u.config = (struct proto_config){ "a: 1\n", "<built-in>" }; break;
	default: break;
	}
}

/* Encode m, decode it, encode again: the bytes must be identical (every
 * field survives), and the decoded message is returned for spot checks. */
static void roundtrip(const struct proto_msg *m, struct proto_msg *back)
{
	struct proto_buf a, b;
	char err[256] = "";
	proto_buf_init(&a);
	proto_buf_init(&b);
	assert_int_equal(proto_encode(m, NULL, &a, err, sizeof err), 0);
	assert_true(a.len > 4);
	uint32_t n = (uint32_t)(unsigned char)a.data[0] << 24 | (uint32_t)(unsigned char)a.data[1] << 16 |
		     (uint32_t)(unsigned char)a.data[2] << 8 | (unsigned char)a.data[3];
	assert_int_equal(n, a.len - 4);
	int rc = proto_decode(a.data + 4, n, NULL, back, err, sizeof err);
	if (rc)
		fail_msg("decode %s: %s", proto_type_name(m->type), err);
	assert_int_equal(back->type, m->type);
	assert_int_equal(back->id, m->id);
	assert_int_equal(back->op, m->op);
	assert_int_equal(proto_encode(back, NULL, &b, err, sizeof err), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	proto_buf_free(&a);
	proto_buf_free(&b);
}

static void test_names(void **state)
{
	for (int i = 0; i < PROTO_CODE_COUNT; i++) {
		assert_non_null(proto_code_name(i));
		assert_int_equal(proto_code_parse(proto_code_name(i)), i);
		assert_string_equal(proto_code_name(-i), proto_code_name(i));
	}
	assert_string_equal(proto_code_name(PROTO_E_QUEUE_FULL), "QUEUE_FULL");
	assert_int_equal(proto_code_parse("NOPE"), -1);
	for (int i = 1; i < PROTO_TYPE_COUNT; i++)
		assert_int_equal(proto_type_parse(proto_type_name(i)), i);
	assert_string_equal(proto_type_name(PROTO_T_LIMITS_SET), "limits_set");
}

static void test_pool_map(void **state)
{
	assert_int_equal(proto_code_from_pool(POOL_OK), PROTO_OK);
	assert_int_equal(proto_code_from_pool(-POOL_E_QUEUE_FULL), PROTO_E_QUEUE_FULL);
	assert_int_equal(proto_code_from_pool(POOL_E_CAPACITY), PROTO_E_CAPACITY);
	assert_int_equal(proto_code_from_pool(-POOL_E_SHUTDOWN), PROTO_E_SHUTDOWN);
	assert_int_equal(proto_code_from_pool(-POOL_E_INVALID), PROTO_E_INVALID);
	assert_int_equal(proto_code_from_pool(-POOL_E_NOT_FOUND), PROTO_E_NOT_FOUND);
	assert_int_equal(proto_code_from_pool(-POOL_E_TIMEDOUT), PROTO_E_TIMEOUT);
	assert_int_equal(proto_code_from_pool(-POOL_E_NOMEM), PROTO_E_NOMEM);
	assert_int_equal(proto_code_from_pool(-POOL_E_STATE), PROTO_E_STATE);
	assert_int_equal(proto_code_from_pool(-99), PROTO_E_INTERNAL);
}

static void test_roundtrip_requests(void **state)
{
	for (int t = PROTO_T_HELLO; t <= PROTO_T_SHUTDOWN; t++) {
		struct proto_msg m, back;
		fill_request(&m, t);
		roundtrip(&m, &back);
		assert_int_equal(back.n_unknown, 0); /* what we encode, we know */
		if (t == PROTO_T_SUBMIT) {
			const struct proto_submit *s = &back.u.submit;
			assert_string_equal(s->prompt, "a b c");
			assert_int_equal(s->n_messages, 2);
			assert_string_equal(s->messages[1].content, "hi");
			assert_int_equal(s->priority, POOL_PRIO_CRITICAL);
			assert_int_equal(s->has, m.u.submit.has);
			assert_true(s->temperature == 0.7);
			assert_int_equal(s->seed, 1234567890123ull);
			assert_int_equal(s->n_stop, 2);
			assert_string_equal(s->stop[0], "\n\n");
			assert_int_equal(s->detach, 1);
			assert_int_equal(s->ignore_eos, 1);
		}
		if (t == PROTO_T_CANCEL)
			assert_int_equal(back.u.cancel.tasks[2], 18446744073709551615ull);
		if (t == PROTO_T_QUEUE) {
			assert_int_equal(back.u.filter.state, POOL_DONE);
			assert_int_equal(back.u.filter.all, 1);
			assert_int_equal(back.u.filter.owner, 1000);
			assert_true(back.u.filter.since_secs == 2.5);
			assert_int_equal(back.u.filter.limit, 10);
			assert_int_equal(back.u.filter.has, PROTO_HAS_F_OWNER | PROTO_HAS_F_SINCE |
								   PROTO_HAS_F_LIMIT);
		}
		if (t == PROTO_T_MODELS) {
			assert_string_equal(back.u.models_req.load, "/m/x.gguf");
			assert_string_equal(back.u.models_req.name, "x");
			assert_string_equal(back.u.models_req.unload, "old");
		}
		proto_msg_clear(&back);
	}
}

static void test_roundtrip_replies(void **state)
{
	for (int op = PROTO_T_HELLO; op <= PROTO_T_SHUTDOWN; op++) {
		struct proto_msg m, back;
		fill_ok(&m, op);
		roundtrip(&m, &back);
		if (op == PROTO_T_RESULT) {
			assert_int_equal(back.u.result.len, 15);
			assert_memory_equal(back.u.result.data, "bytes\0with nul", 15);
		}
		if (op == PROTO_T_STATS) {
			assert_true(back.u.stats.models[0].max_units == UINT64_MAX);
			assert_int_equal(back.u.stats.models[1].max_units, 8);
			assert_true(back.u.stats.models[0].queue_wait_p99_ms == 9.25);
			assert_int_equal(back.u.stats.models[0].model_ready, 1);
			assert_int_equal(back.u.stats.models[0].generated_tokens, 99);
			assert_int_equal(back.u.stats.models[0].kv_bytes, 8388608);
			assert_int_equal(back.u.stats.rss_bytes, 123456);
			assert_int_equal(back.u.stats.n_shared, 1);
			assert_string_equal(back.u.stats.shared[0].model, "echo");
			assert_int_equal(back.u.stats.shared[0].running_units, 4);
			assert_int_equal(back.u.stats.n_daemons, 2);
			assert_string_equal(back.u.stats.daemons[1].name, "d2");
			assert_int_equal(back.u.stats.daemons[0].seen_ms, 150);
			assert_string_equal(back.u.stats.models[0].device, "cuda:1");
			assert_null(back.u.stats.models[1].device);
			assert_string_equal(back.u.stats.models[0].device_name, "NVIDIA H200");
			assert_true(back.u.stats.models[0].device_total_bytes == 150754820096ull &&
				    back.u.stats.models[0].device_free_bytes == 120000000000ull);
			assert_null(back.u.stats.models[1].device_name);
			assert_int_equal(back.u.stats.models[1].device_total_bytes, 0);
			const struct proto_model_stats *l = &back.u.stats.models[0];
			assert_true(l->has_engine && !back.u.stats.models[1].has_engine);
			assert_true(l->prefill_tps == 812.5 && l->decode_tps == 95.25);
			assert_int_equal(l->batch_size, 3);
			assert_int_equal(l->kv_blocks_used, 17);
			assert_int_equal(l->kv_blocks_total, 1024);
			assert_true(l->ttft_p50_ms == 40.5 && l->ttft_p99_ms == 88);
			assert_true(l->itl_p50_ms == 10.25 && l->itl_p99_ms == 31);
		}
		if (op == PROTO_T_MODELS) {
			const struct proto_model_info *k = &back.u.models.models[1];
			assert_true(k->progress == 0.5);
			assert_string_equal(k->error, "no such file");
			assert_int_equal(k->context_length, 8192);
			assert_int_equal(k->kv_blocks, 1024);
			assert_true(k->idle_in_secs == 12.5 && k->adhoc == 1);
			assert_int_equal(k->gen_max_tokens, 512);
			assert_string_equal(k->device_name, "emulated");
			assert_true(k->device_total_bytes == 268435456 && k->device_free_bytes == 1000);
			assert_null(back.u.models.models[0].device_name);
			assert_true(back.u.models.models[0].gen_temperature == 0.8 &&
				    back.u.models.models[0].gen_top_k == 40);
			assert_true(back.u.models.models[0].idle_in_secs == 0);
			assert_null(back.u.models.models[0].error);
		}
		if (op == PROTO_T_QUEUE) {
			assert_int_equal(back.u.queue.tasks[0].has, PROTO_HAS_DEADLINE);
			assert_true(back.u.queue.tasks[0].deadline_in_secs == -2.5);
			assert_int_equal(back.u.queue.tasks[1].has, 0);
			assert_string_equal(back.u.queue.tasks[1].error, "err");
		}
		if (op == PROTO_T_LIMITS_GET)
			assert_string_equal(back.u.limits.models[0].kv[1].value, "null");
		proto_msg_clear(&back);
	}
	struct proto_msg m, back, req;
	proto_msg_init(&req, PROTO_T_SUBMIT, 9);
	assert_int_equal(proto_msg_err(&m, &req, -PROTO_E_QUEUE_FULL, "queue of %s is full (%d)",
				       "echo", 100), 0);
	roundtrip(&m, &back);
	assert_int_equal(back.u.error.code, PROTO_E_QUEUE_FULL);
	assert_string_equal(back.u.error.message, "queue of echo is full (100)");
	assert_int_equal(back.op, PROTO_T_SUBMIT);
	proto_msg_clear(&back);
	proto_msg_clear(&m);

	proto_msg_init(&m, PROTO_T_CHUNK, 4);
	m.u.chunk = (struct proto_chunk){ 12, "tok ", 4 };
	roundtrip(&m, &back);
	assert_int_equal(back.u.chunk.len, 4);
	proto_msg_clear(&back);
	proto_msg_init(&m, PROTO_T_END, 4);
	m.u.end = (struct proto_end){ 12, POOL_FAILED, "boom", "error", 17, 5, 0.25, 1.5 };
	roundtrip(&m, &back);
	assert_int_equal(back.u.end.state, POOL_FAILED);
	assert_string_equal(back.u.end.error, "boom");
	assert_string_equal(back.u.end.finish, "error");
	assert_int_equal(back.u.end.tokens, 17);
	assert_int_equal(back.u.end.prompt_tokens, 5);
	assert_true(back.u.end.wait_secs == 0.25 && back.u.end.run_secs == 1.5);
	proto_msg_clear(&back);
}

/* ---- raw frames ------------------------------------------------------------ */

static int raw_write(void *data, const char *buf, size_t len)
{
	return proto_buf_append(data, buf, len);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* A submit frame body whose "temp" field is a string. */
static void bad_temp(struct proto_buf *b)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, b, raw_write);
	msgpack_pack_map(&pk, 3);
	pk_str(&pk, "t");
	pk_str(&pk, "submit");
	pk_str(&pk, "id");
	msgpack_pack_uint64(&pk, 17);
	pk_str(&pk, "temp");
	pk_str(&pk, "hot");
}

static void expect_decode(const void *p, size_t n, const struct proto_limits *lim, int code,
			  const char *msg)
{
	struct proto_msg m;
	char err[256] = "";
	int rc = proto_decode(p, n, lim, &m, err, sizeof err);
	if (rc != -code || (msg && strcmp(err, msg)))
		fail_msg("want %s \"%s\", got %s \"%s\"", proto_code_name(code), msg ? msg : "",
			 proto_code_name(rc), err);
	assert_null(m.arena_);
}

static void test_wrong_type(void **state)
{
	struct proto_buf b;
	struct proto_msg m;
	char err[256];
	proto_buf_init(&b);
	bad_temp(&b);
	assert_int_equal(proto_decode(b.data, b.len, NULL, &m, err, sizeof err), -PROTO_E_INVALID);
	assert_string_equal(err, "field 'temp': expected a number, got str");
	assert_int_equal(m.type, PROTO_T_SUBMIT);
	assert_int_equal(m.id, 17);
	proto_msg_clear(&m);
	proto_buf_free(&b);

	/* priority out of range, nested path in an object array */
	struct proto_msg q;
	fill_request(&q, PROTO_T_SUBMIT);
	q.u.submit.priority = 9;
	proto_buf_init(&b);
	assert_int_equal(proto_encode(&q, NULL, &b, err, sizeof err), 0);
	expect_decode(b.data + 4, b.len - 4, NULL, PROTO_E_INVALID,
		      "field 'prio': 9 is out of range 0..3");
	proto_buf_free(&b);
	struct proto_kv bad_kv[] = { { "max_units", "8" } };
	struct proto_model_limits ml[] = { { "a", bad_kv, 1 } };
	fill_ok(&q, PROTO_T_LIMITS_GET);
	q.u.limits = (struct proto_limits_reply){ ml, 1 };
	proto_buf_init(&b);
	assert_int_equal(proto_encode(&q, NULL, &b, err, sizeof err), 0);
	/* corrupt the "v" value "8" (a fixstr a1 38) into the integer 8 */
	char *p = memmem(b.data, b.len, "\xa1v\xa1\x38", 4);
	assert_non_null(p);
	memmove(p + 2, p + 3, (size_t)(b.data + b.len - (p + 3)));
	p[2] = 8;
	b.len--;
	expect_decode(b.data + 4, b.len - 4, NULL, PROTO_E_INVALID,
		      "field 'models[0].kv[0].v': expected a string, got int");
	proto_buf_free(&b);
}

/* A raw request body: t, id 5, then n more key/value pairs packed by fn. */
static void raw_req(struct proto_buf *b, const char *type, int n,
		    void (*fn)(msgpack_packer *pk))
{
	msgpack_packer pk;
	proto_buf_init(b);
	msgpack_packer_init(&pk, b, raw_write);
	msgpack_pack_map(&pk, 2 + (size_t)n);
	pk_str(&pk, "t");
	pk_str(&pk, type);
	pk_str(&pk, "id");
	msgpack_pack_uint64(&pk, 5);
	fn(&pk);
}

static void kv_nul(msgpack_packer *pk)
{
	pk_str(pk, "prompt");
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
}

static void kv_dup(msgpack_packer *pk)
{
	pk_str(pk, "model");
	pk_str(pk, "a");
	pk_str(pk, "model");
	pk_str(pk, "b");
}

static void kv_no_value(msgpack_packer *pk)
{
	pk_str(pk, "kv");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	pk_str(pk, "k");
	pk_str(pk, "max_units");
}

static void kv_cost0(msgpack_packer *pk)
{
	pk_str(pk, "cost");
	msgpack_pack_uint64(pk, 0);
}

static void kv_tiny_deadline(msgpack_packer *pk)
{
	pk_str(pk, "deadline");
	msgpack_pack_double(pk, 5e-324);
}

static void kv_none(msgpack_packer *pk)
{
	(void)pk;
}

static void expect_raw(const char *type, int n, void (*fn)(msgpack_packer *pk), int code,
		       const char *msg)
{
	struct proto_buf b;
	raw_req(&b, type, n, fn);
	expect_decode(b.data, b.len, NULL, code, msg);
	proto_buf_free(&b);
}

/* The schema's validation: NUL, duplicate keys, required fields, ranges. */
static void test_validation(void **state)
{
	expect_raw("submit", 1, kv_nul, PROTO_E_INVALID, "field 'prompt': embedded NUL at byte 1");
	expect_raw("submit", 2, kv_dup, PROTO_E_INVALID, "field 'model': duplicate key");
	expect_raw("limits_set", 1, kv_no_value, PROTO_E_INVALID, "field 'kv[0].v': missing");
	expect_raw("limits_set", 0, kv_none, PROTO_E_INVALID, "field 'kv': missing");
	expect_raw("status", 0, kv_none, PROTO_E_INVALID, "field 'task': missing");
	expect_raw("submit", 1, kv_cost0, PROTO_E_INVALID,
		   "field 'cost': 0 is out of range 1..18446744073709551615");

	struct proto_buf b;
	struct proto_msg m;
	char err[256];
	raw_req(&b, "submit", 1, kv_tiny_deadline);
	assert_int_equal(proto_decode(b.data, b.len, NULL, &m, err, sizeof err), 0);
	assert_true(m.u.submit.has & PROTO_HAS_DEADLINE);
	assert_true(m.u.submit.deadline_secs > 0);
	proto_msg_clear(&m);
	proto_buf_free(&b);

	/* the seen mask: no map of any schema has more than 64 fields */
	for (int t = 1; t < PROTO_TYPE_COUNT; t++)
		for (int op = 0; op < PROTO_TYPE_COUNT; op++) {
			struct proto_field_info fi;
			size_t top = 0;
			for (size_t i = 0; proto_schema_field(t, op, i, &fi); i++)
				top += !fi.parent;
			assert_true(top <= 64);
		}
}

/* Empty arrays travel: a queue reply with no tasks has "tasks": []. */
static void kv_unknown(msgpack_packer *pk)
{
	pk_str(pk, "temprature");
	msgpack_pack_double(pk, 0.5);
	pk_str(pk, "msgs");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 3);
	pk_str(pk, "role");
	pk_str(pk, "user");
	pk_str(pk, "content");
	pk_str(pk, "hi");
	pk_str(pk, "nmae");
	pk_str(pk, "x");
	msgpack_pack_uint64(pk, 7); /* a key that is not a string */
	msgpack_pack_nil(pk);
}

/* Unknown keys are ignored but counted, the first one named; t, id and op
 * are the header, not unknown. */
static void test_unknown_keys(void **state)
{
	struct proto_buf b;
	struct proto_msg m;
	char err[256];
	raw_req(&b, "submit", 3, kv_unknown);
	assert_int_equal(proto_decode(b.data, b.len, NULL, &m, err, sizeof err), 0);
	assert_int_equal(m.n_unknown, 3);
	assert_string_equal(m.unknown, "temprature");
	assert_int_equal(m.u.submit.n_messages, 1);
	assert_int_equal(m.u.submit.has & PROTO_HAS_TEMPERATURE, 0);
	proto_msg_clear(&m);
	assert_int_equal(m.n_unknown, 0);
	proto_buf_free(&b);
}

static void test_empty_array_sent(void **state)
{
	struct proto_msg q;
	struct proto_buf b;
	char err[256];
	fill_ok(&q, PROTO_T_QUEUE);
	q.u.queue = (struct proto_queue){ NULL, 0 };
	proto_buf_init(&b);
	assert_int_equal(proto_encode(&q, NULL, &b, err, sizeof err), 0);
	assert_non_null(memmem(b.data, b.len, "\xa5tasks\x90", 7));
	proto_buf_free(&b);
}

static void test_truncated(void **state)
{
	struct proto_msg m;
	struct proto_buf b;
	char err[256];
	fill_ok(&m, PROTO_T_STATS);
	proto_buf_init(&b);
	assert_int_equal(proto_encode(&m, NULL, &b, err, sizeof err), 0);
	for (size_t n = 0; n < b.len - 4; n++)
		expect_decode(b.data + 4, n, NULL, PROTO_E_MALFORMED, NULL);
	expect_decode(b.data + 4, 1, NULL, PROTO_E_MALFORMED,
		      "offset 0: value needs 19 bytes, frame has 1 left");
	proto_buf_free(&b);
}

static void test_malformed(void **state)
{
	expect_decode("", 0, NULL, PROTO_E_MALFORMED, "offset 0: empty frame");
	expect_decode("\x93\x01\x02\x03", 4, NULL, PROTO_E_MALFORMED,
		      "offset 0: message is a array, expected a map");
	expect_decode("\x80\x01", 2, NULL, PROTO_E_MALFORMED,
		      "offset 1: 1 trailing bytes after the message");
	expect_decode("\x82\xa1t\xa1x", 5, NULL, PROTO_E_MALFORMED,
		      "offset 5: frame ends inside a value");
	expect_decode("\x80", 1, NULL, PROTO_E_MALFORMED, "field 't': missing or not a message type");
	expect_decode("\x81\xa1t\xa3zap", 7, NULL, PROTO_E_MALFORMED,
		      "field 't': unknown message type \"zap\"");
	expect_decode("\x81\xa1t\xc1", 4, NULL, PROTO_E_MALFORMED,
		      "offset 3: type byte 0xc1 is not used by the protocol");
	expect_decode("\x81\xa1t\xd4\x01\x02", 6, NULL, PROTO_E_MALFORMED,
		      "offset 3: type byte 0xd4 is not used by the protocol");
	/* a count that the frame cannot hold: refused before any allocation */
	struct proto_limits big = { .max_array = 0xffffffffu };
	expect_decode("\x81\xa1t\xdd\xff\xff\xff\xff", 8, &big, PROTO_E_MALFORMED,
		      "offset 3: value needs 4294967300 bytes, frame has 5 left");
	expect_decode("\x81\xa1t\xdb\x7f\xff\xff\xff", 8, NULL, PROTO_E_TOO_LARGE,
		      "offset 3: str/bin length 2147483647 exceeds max_str 1048576");
	/* an err without a code is still an error (found by fuzz-proto) */
	struct proto_msg m;
	char err[256];
	assert_int_equal(proto_decode("\x82\xa1t\xa3" "err\xa3msg\xa1x", 13, NULL, &m, err,
				      sizeof err), 0);
	assert_int_equal(m.type, PROTO_T_ERR);
	assert_int_equal(m.op, PROTO_T_NONE);
	assert_int_equal(m.u.error.code, PROTO_E_INTERNAL);
	proto_msg_clear(&m);
	/* an ok reply must say what it answers */
	expect_decode("\x82\xa1t\xa2ok\xa2id\x05", 10, NULL, PROTO_E_INVALID,
		      "field 'op': missing in a reply");
}

static void test_bounds(void **state)
{
	struct proto_limits lim = { .max_frame = 64, .max_str = 8, .max_array = 2, .max_map = 3,
				    .max_depth = 2 };
	struct proto_msg m;
	struct proto_buf b;
	char err[256];

	expect_decode("\x81\xa1t\xa9submitxyz", 12, &lim, PROTO_E_TOO_LARGE,
		      "offset 3: str/bin length 9 exceeds max_str 8");
	expect_decode("\x81\xa1t\x93\x01\x02\x03", 7, &lim, PROTO_E_TOO_LARGE,
		      "offset 3: array of 3 exceeds max_array 2");
	expect_decode("\x84\x01\x01\x02\x02\x03\x03\x04\x04", 9, &lim, PROTO_E_TOO_LARGE,
		      "offset 0: map of 4 exceeds max_map 3");
	expect_decode("\x81\xa1t\x91\x91\x01", 6, &lim, PROTO_E_TOO_LARGE,
		      "offset 4: nesting deeper than max_depth 2");
	char big[100] = { 0 };
	expect_decode(big, sizeof big, &lim, PROTO_E_TOO_LARGE, "frame of 100 bytes exceeds max_frame 64");

	/* the encoder refuses to produce a frame the limits forbid */
	proto_msg_init(&m, PROTO_T_SUBMIT, 1);
	char prompt[200];
	memset(prompt, 'x', sizeof prompt - 1);
	prompt[sizeof prompt - 1] = 0;
	m.u.submit.prompt = prompt;
	proto_buf_init(&b);
	assert_int_equal(proto_encode(&m, &lim, &b, err, sizeof err), -PROTO_E_TOO_LARGE);
	assert_int_equal(b.len, 0);
	assert_non_null(strstr(err, "exceeds max_frame 64"));
	proto_buf_free(&b);

	struct proto_limits l0 = { 0 };
	proto_limits_resolve(&l0);
	assert_int_equal(l0.max_frame, PROTO_MAX_FRAME);
	assert_int_equal(l0.max_str, PROTO_MAX_FRAME);
	assert_int_equal(l0.max_array, PROTO_MAX_ARRAY);
	struct proto_limits huge = { .max_frame = 0xffffffffu };
	proto_limits_resolve(&huge);
	assert_int_equal(huge.max_frame, PROTO_MAX_FRAME_HARD);
}

/* ---- reader ---------------------------------------------------------------- */

static void test_reader_bytewise(void **state)
{
	struct proto_buf b;
	struct proto_reader r;
	struct proto_msg m, got;
	char err[256];
	proto_buf_init(&b);
	for (int t = PROTO_T_HELLO; t <= PROTO_T_SHUTDOWN; t++) {
		fill_request(&m, t);
		assert_int_equal(proto_encode(&m, NULL, &b, err, sizeof err), 0);
	}
	proto_reader_init(&r, NULL);
	int t = PROTO_T_HELLO;
	for (size_t i = 0; i < b.len; i++) {
		assert_int_equal(proto_reader_feed(&r, b.data + i, 1), 0);
		int rc = proto_reader_next(&r, &got, err, sizeof err);
		if (rc == 0)
			continue;
		assert_int_equal(rc, 1);
		assert_int_equal(got.type, t);
		assert_int_equal(got.id, 42 + (uint64_t)t);
		proto_msg_clear(&got);
		t++;
	}
	assert_int_equal(t, PROTO_T_SHUTDOWN + 1);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), 0);
	proto_reader_free(&r);

	/* all at once */
	proto_reader_init(&r, NULL);
	assert_int_equal(proto_reader_feed(&r, b.data, b.len), 0);
	int n = 0;
	while (proto_reader_next(&r, &got, err, sizeof err) == 1) {
		proto_msg_clear(&got);
		n++;
	}
	assert_int_equal(n, PROTO_T_SHUTDOWN);
	proto_reader_free(&r);
	proto_buf_free(&b);
}

static void test_reader_errors(void **state)
{
	struct proto_reader r;
	struct proto_msg got;
	struct proto_buf b;
	char err[256];
	struct proto_limits lim = { .max_frame = 1000 };

	/* oversized: refused from the prefix alone, sticky */
	proto_reader_init(&r, &lim);
	assert_int_equal(proto_reader_feed(&r, "\x00\x00\x03\xe9", 4), 0);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), -PROTO_E_TOO_LARGE);
	assert_string_equal(err, "frame at stream offset 0: length 1001 exceeds max_frame 1000");
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), -PROTO_E_TOO_LARGE);
	proto_reader_free(&r);

	/* invalid field: reported with the id, then the next frame reads fine */
	proto_buf_init(&b);
	proto_buf_append(&b, "\0\0\0\0", 4);
	bad_temp(&b);
	size_t n = b.len - 4;
	b.data[3] = (char)n;
	struct proto_msg ping;
	proto_msg_init(&ping, PROTO_T_PING, 18);
	assert_int_equal(proto_encode(&ping, NULL, &b, err, sizeof err), 0);
	proto_reader_init(&r, &lim);
	proto_reader_feed(&r, b.data, b.len);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), -PROTO_E_INVALID);
	assert_int_equal(got.id, 17);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), 1);
	assert_int_equal(got.type, PROTO_T_PING);
	assert_int_equal(got.id, 18);
	proto_msg_clear(&got);
	proto_reader_free(&r);
	proto_buf_free(&b);

	/* malformed: sticky */
	proto_reader_init(&r, &lim);
	proto_reader_feed(&r, "\x00\x00\x00\x01\xc1\x00\x00\x00\x01\x80", 10);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), -PROTO_E_MALFORMED);
	assert_int_equal(proto_reader_next(&r, &got, err, sizeof err), -PROTO_E_MALFORMED);
	proto_reader_free(&r);
}

/* ---- blocking helpers ------------------------------------------------------- */

static void test_socketpair(void **state)
{
	int sv[2];
	struct proto_reader r;
	struct proto_msg m, got;
	char err[256];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	proto_reader_init(&r, NULL);

	assert_int_equal(proto_recv(sv[1], &r, &got, 0, err, sizeof err), -PROTO_E_TIMEOUT);
	fill_request(&m, PROTO_T_SUBMIT);
	assert_int_equal(proto_send(sv[0], &m, NULL, err, sizeof err), 0);
	assert_int_equal(proto_recv(sv[1], &r, &got, 1000, err, sizeof err), 0);
	assert_int_equal(got.type, PROTO_T_SUBMIT);
	assert_string_equal(got.u.submit.model, "echo");
	proto_msg_clear(&got);

	/* partial frame then EOF */
	assert_int_equal(write(sv[0], "\x00\x00\x00\x05\x81", 5), 5);
	close(sv[0]);
	assert_int_equal(proto_recv(sv[1], &r, &got, 1000, err, sizeof err), -PROTO_E_EOF);
	proto_reader_free(&r);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(proto_send(sv[0], &m, NULL, err, sizeof err), -PROTO_E_EOF);
	close(sv[0]);
}

static void test_version(void **state)
{
	char err[128];
	assert_int_equal(proto_check_version(PROTO_VERSION, err, sizeof err), 0);
	assert_int_equal(proto_check_version(PROTO_VERSION + 1, err, sizeof err), -PROTO_E_VERSION);
	char want[128];
	snprintf(want, sizeof want, "protocol version mismatch: client speaks %d, plotd speaks %d",
		 PROTO_VERSION + 1, PROTO_VERSION);
	assert_string_equal(err, want);
}

static void test_buf(void **state)
{
	struct proto_buf b;
	proto_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(proto_buf_append(&b, "abcdefgh", 8), 0);
	assert_int_equal(proto_buf_pending(&b), 8000);
	proto_buf_consume(&b, 7999);
	assert_int_equal(proto_buf_pending(&b), 1);
	assert_int_equal(b.data[b.off], 'h');
	assert_int_equal(proto_buf_append(&b, "xy", 2), 0);
	assert_int_equal(proto_buf_pending(&b), 3);
	assert_memory_equal(b.data + b.off, "hxy", 3);
	proto_buf_consume(&b, 10);
	assert_int_equal(proto_buf_pending(&b), 0);
	assert_int_equal(b.off, 0);
	proto_buf_free(&b);
}

/* Encoding after a partial send: appending may compact the buffer (drop the
 * consumed prefix) in the middle of an encode; the frame must still come out
 * whole, with the right length, after the unsent bytes. */
static void test_encode_after_consume(void **state)
{
	struct proto_buf b;
	struct proto_msg m, back;
	char err[256], pad[200], big[600];

	memset(pad, 'p', sizeof pad);
	memset(big, 'x', sizeof big);
	proto_buf_init(&b);
	assert_int_equal(proto_buf_append(&b, pad, sizeof pad), 0);
	proto_buf_consume(&b, 100);
	proto_msg_init(&m, PROTO_T_CHUNK, 4);
	m.u.chunk = (struct proto_chunk){ 12, big, sizeof big };
	assert_int_equal(proto_encode(&m, NULL, &b, err, sizeof err), 0);
	assert_memory_equal(b.data + b.off, pad, 100);
	const unsigned char *f = (const unsigned char *)b.data + b.off + 100;
	size_t n = (size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | f[3];
	assert_int_equal(proto_buf_pending(&b), 100 + 4 + n);
	assert_int_equal(proto_decode(f + 4, n, NULL, &back, err, sizeof err), 0);
	assert_int_equal(back.u.chunk.len, sizeof big);
	assert_memory_equal(back.u.chunk.data, big, sizeof big);
	proto_msg_clear(&back);
	proto_msg_clear(&m);
	proto_buf_free(&b);
}

/* man/plot-protocol.7 documents every message type, wire error code and key. */
/* The stats walk (plot stats --json and GET /v1/queues): each key once, in
 * order; unlimited is null; off a GPU the device's memory is null; the llm
 * figures are null without an engine and numbers with one. */
struct walk_rec {
	char keys[80][32];
	int kinds[80];
	uint64_t u[80];
	size_t n;
};

static void rec_visit(void *ctx, const struct proto_stat_val *v)
{
	struct walk_rec *w = ctx;
	assert_true(w->n < 80);
	snprintf(w->keys[w->n], sizeof w->keys[0], "%s", v->key ? v->key : "}");
	w->kinds[w->n] = v->kind;
	w->u[w->n++] = v->u;
}

static int rec_find(const struct walk_rec *w, const char *key)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->keys[i], key))
			return (int)i;
	fail_msg("key %s not walked", key);
	return -1;
}

static void test_stats_walk(void **state)
{
	(void)state;
	struct proto_model_stats m = { .name = "m", .max_units = UINT64_MAX, .queued = 3,
				       .device = "cpu", .device_name = NULL };
	struct walk_rec a = {0}, b = {0};
	proto_stats_model_walk(&m, rec_visit, &a);
	assert_int_equal(a.kinds[rec_find(&a, "max_units")], PROTO_SV_NULL);
	assert_int_equal(a.u[rec_find(&a, "queued")], 3);
	assert_int_equal(a.kinds[rec_find(&a, "device")], PROTO_SV_STR);
	assert_int_equal(a.kinds[rec_find(&a, "device_total_bytes")], PROTO_SV_NULL);
	assert_int_equal(a.kinds[rec_find(&a, "kv_blocks_total")], PROTO_SV_NULL);
	assert_int_equal(a.kinds[rec_find(&a, "queued_by_priority")], PROTO_SV_OBJ);
	assert_int_equal(a.kinds[rec_find(&a, "queued_by_priority") + POOL_PRIO_COUNT + 1],
			 PROTO_SV_END);
	m.has_engine = 1;
	m.kv_blocks_total = 128;
	m.device = "cuda:0";
	m.device_name = "emulated";
	m.device_total_bytes = 1 << 30;
	m.device_free_bytes = 1 << 29;
	m.max_units = 128;
	proto_stats_model_walk(&m, rec_visit, &b);
	assert_int_equal(a.n, b.n); /* the same keys whatever the values */
	for (size_t i = 0; i < a.n; i++)
		assert_string_equal(a.keys[i], b.keys[i]);
	assert_int_equal(b.u[rec_find(&b, "kv_blocks_total")], 128);
	assert_int_equal(b.u[rec_find(&b, "device_free_bytes")], 1 << 29);
	assert_int_equal(b.kinds[rec_find(&b, "device_name")], PROTO_SV_STR);
	assert_int_equal(b.kinds[rec_find(&b, "ttft_count")], PROTO_SV_U64);
	assert_int_equal(b.kinds[rec_find(&b, "decode_tps")], PROTO_SV_DBL);
	assert_int_equal(b.u[rec_find(&b, "max_units")], 128);
}

static void test_man_page(void **state)
{
	FILE *f = fopen("man/plot-protocol.7", "rb");
	if (!f)
		fail_msg("man/plot-protocol.7 missing (run from the repository root)");
	static char page[1 << 16];
	size_t n = fread(page, 1, sizeof page - 1, f);
	fclose(f);
	page[n] = 0;
	char needle[64];
	for (int t = 1; t < PROTO_TYPE_COUNT; t++) {
		snprintf(needle, sizeof needle, "\n.B %s\n", proto_type_name(t));
		if (!strstr(page, needle))
			fail_msg("plot-protocol.7 does not document message type %s", proto_type_name(t));
		for (int op = 0; op < PROTO_TYPE_COUNT; op++) {
			const char *keys[128];
			size_t nk = proto_msg_keys(t, op, keys, 128);
			assert_true(nk <= 128);
			for (size_t i = 0; i < nk; i++) {
				snprintf(needle, sizeof needle, "\\fB%s\\fR", keys[i]);
				if (!strstr(page, needle))
					fail_msg("plot-protocol.7 does not document key %s of %s/%s",
						 keys[i], proto_type_name(t), proto_type_name(op));
			}
		}
	}
	for (int c = PROTO_E_QUEUE_FULL; c < PROTO_E_IO; c++) {
		snprintf(needle, sizeof needle, "\n.B %s\n", proto_code_name(c));
		if (!strstr(page, needle))
			fail_msg("plot-protocol.7 does not document code %s", proto_code_name(c));
	}
	const char *keys[128];
	assert_int_equal(proto_msg_keys(PROTO_T_OK, PROTO_T_STATS, keys, 128), 65);
	assert_int_equal(proto_msg_keys(PROTO_T_OK, PROTO_T_NONE, keys, 128), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_pool_map),
		cmocka_unit_test(test_roundtrip_requests),
		cmocka_unit_test(test_roundtrip_replies),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_empty_array_sent),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_reader_bytewise),
		cmocka_unit_test(test_reader_errors),
		cmocka_unit_test(test_socketpair),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_encode_after_consume),
		cmocka_unit_test(test_stats_walk),
		cmocka_unit_test(test_man_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
