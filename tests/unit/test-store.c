/*
 * test-store.c — the task record codec and the memory store.
 *
 * Round trips keep every field (output with NUL bytes, NULL strings).
 * Hostile inputs are built with msgpack-c's packer and must fail with a
 * message naming the field and the byte offset; every truncation and many
 * bit flips of a valid record must fail cleanly or decode (never crash,
 * which ASan/UBSan would report).
 */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/store.h"

static void sample(struct store_record *r)
{
	memset(r, 0, sizeof *r);
	r->id = UINT64_MAX - 5;
	r->priority = POOL_PRIO_CRITICAL;
	r->state = POOL_TIMEOUT;
	r->cost = 12345678901ull;
	r->created_ns = 1;
	r->started_ns = 2;
	r->ended_ns = 3;
	r->deadline_ns = UINT64_MAX;
	r->owner_uid = UINT32_MAX;
	r->model = "qwen";
	r->label = "label text";
	r->error = NULL;
	r->output = "a\0b";
	r->output_len = 3;
}

static void t_roundtrip(void **st)
{
	struct store_record in, out;
	char *buf, err[200];
	size_t len;
	sample(&in);
	assert_int_equal(store_record_encode(&in, &buf, &len), 0);
	assert_int_equal(store_record_decode(buf, len, &out, err, sizeof err), 0);
	assert_int_equal(out.id, in.id);
	assert_int_equal(out.priority, in.priority);
	assert_int_equal(out.state, in.state);
	assert_int_equal(out.cost, in.cost);
	assert_int_equal(out.created_ns, 1);
	assert_int_equal(out.started_ns, 2);
	assert_int_equal(out.ended_ns, 3);
	assert_int_equal(out.deadline_ns, UINT64_MAX);
	assert_int_equal(out.owner_uid, UINT32_MAX);
	assert_string_equal(out.model, "qwen");
	assert_string_equal(out.label, "label text");
	assert_null(out.error);
	assert_int_equal(out.output_len, 3);
	assert_memory_equal(out.output, "a\0b", 3);
	store_record_clear(&out);
	free(buf);
}

/* ---- hostile inputs ---------------------------------------------------------- */

struct mp {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void mp_init(struct mp *m, uint32_t nkeys)
{
	msgpack_sbuffer_init(&m->sb);
	msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&m->pk, nkeys);
}

static void mp_key(struct mp *m, const char *k)
{
	msgpack_pack_str(&m->pk, strlen(k));
	msgpack_pack_str_body(&m->pk, k, strlen(k));
}

static void mp_u(struct mp *m, const char *k, uint64_t v)
{
	mp_key(m, k);
	msgpack_pack_uint64(&m->pk, v);
}

/* The required keys, 5 entries, valid except key bad (if any) = bad_v. */
static void mp_required_but(struct mp *m, const char *bad, uint64_t bad_v)
{
	static const struct { const char *k; uint64_t v; } req[] = {
		{ "v", 1 }, { "id", 7 }, { "prio", 1 }, { "state", 2 }, { "cost", 1 },
	};

	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
		mp_u(m, req[i].k, bad && !strcmp(bad, req[i].k) ? bad_v : req[i].v);
}

/* The required keys, 5 entries. */
static void mp_required(struct mp *m)
{
	mp_required_but(m, NULL, 0);
}

/* Decoding must fail and the message must contain each of the needles. */
static void expect_err(struct mp *m, const char *needle1, const char *needle2)
{
	struct store_record r;
	char err[200] = "";
	assert_int_equal(store_record_decode(m->sb.data, m->sb.size, &r, err, sizeof err), -1);
	if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
		fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err, needle1, needle2 ? needle2 : "");
	assert_null(r.model); /* cleared on failure */
	msgpack_sbuffer_destroy(&m->sb);
}

static void t_bad_type(void **st)
{
	struct mp m;
	mp_init(&m, 5);
	mp_u(&m, "v", 1);
	mp_u(&m, "id", 7);
	mp_u(&m, "prio", 1);
	mp_key(&m, "state"); /* offset of the value: 1 + 3*2 + 3*2... computed below */
	size_t at = m.sb.size;
	msgpack_pack_str(&m.pk, 4);
	msgpack_pack_str_body(&m.pk, "done", 4);
	mp_u(&m, "cost", 1);
	char off[32];
	snprintf(off, sizeof off, "offset %zu", at);
	expect_err(&m, "field \"state\": not an unsigned integer", off);
}

static void t_out_of_range(void **st)
{
	struct mp m;
	mp_init(&m, 5);
	mp_required_but(&m, "prio", 4);
	expect_err(&m, "field \"prio\": out of range", "offset");
	mp_init(&m, 5);
	mp_required_but(&m, "state", 7);
	expect_err(&m, "field \"state\": out of range", NULL);
	mp_init(&m, 6);
	mp_required(&m);
	mp_u(&m, "owner", (uint64_t)UINT32_MAX + 1);
	expect_err(&m, "field \"owner\": out of range", NULL);
	mp_init(&m, 5);
	mp_required_but(&m, "v", 2);
	expect_err(&m, "field \"v\": unsupported version", "offset 3");
}

static void t_structure(void **st)
{
	struct mp m;
	mp_init(&m, 6);
	mp_required(&m);
	mp_u(&m, "id", 8);
	expect_err(&m, "field \"id\": duplicate key", NULL);

	mp_init(&m, 4);
	mp_u(&m, "v", 1);
	mp_u(&m, "prio", 1);
	mp_u(&m, "state", 2);
	mp_u(&m, "cost", 1);
	expect_err(&m, "field \"id\": missing", NULL);

	mp_init(&m, 6);
	mp_required(&m);
	mp_key(&m, "label");
	msgpack_pack_array(&m.pk, 0xffffffffu); /* would make msgpack-c allocate */
	expect_err(&m, "field \"label\": nested array or map", NULL);

	mp_init(&m, 5);
	mp_required(&m);
	msgpack_pack_nil(&m.pk);
	expect_err(&m, "trailing bytes", NULL);

	mp_init(&m, 6);
	mp_required(&m);
	msgpack_pack_uint8(&m.pk, 3);
	msgpack_pack_nil(&m.pk);
	expect_err(&m, "key is not a short string", NULL);

	mp_init(&m, 0xffff);
	expect_err(&m, "too many keys", "offset 0");

	msgpack_sbuffer_init(&m.sb);
	msgpack_packer_init(&m.pk, &m.sb, msgpack_sbuffer_write);
	msgpack_pack_array(&m.pk, 2);
	expect_err(&m, "not a msgpack map", "offset 0");
}

static void t_strings(void **st)
{
	struct mp m;
	mp_init(&m, 6);
	mp_required(&m);
	mp_key(&m, "model");
	msgpack_pack_str(&m.pk, 3);
	msgpack_pack_str_body(&m.pk, "a\0b", 3);
	expect_err(&m, "field \"model\": string holds a NUL", NULL);

	char big[5000];
	memset(big, 'x', sizeof big);
	mp_init(&m, 6);
	mp_required(&m);
	mp_key(&m, "error");
	msgpack_pack_str(&m.pk, sizeof big);
	msgpack_pack_str_body(&m.pk, big, sizeof big);
	expect_err(&m, "field \"error\": too long", NULL);

	mp_init(&m, 6);
	mp_required(&m);
	mp_key(&m, "output");
	msgpack_pack_str(&m.pk, 1);
	msgpack_pack_str_body(&m.pk, "x", 1);
	expect_err(&m, "field \"output\": not binary", NULL);

	/* a declared length far past the end of the buffer */
	mp_init(&m, 6);
	mp_required(&m);
	mp_key(&m, "label");
	size_t at = m.sb.size;
	unsigned char hdr[5] = { 0xdb, 0x7f, 0xff, 0xff, 0xff };
	msgpack_sbuffer_write(&m.sb, (const char *)hdr, sizeof hdr);
	char off[32];
	snprintf(off, sizeof off, "offset %zu", at);
	expect_err(&m, "field \"label\": truncated", off);
}

static void t_unknown_key_skipped(void **st)
{
	struct mp m;
	struct store_record r;
	char err[200];
	mp_init(&m, 6);
	mp_required(&m);
	mp_u(&m, "future", 99);
	assert_int_equal(store_record_decode(m.sb.data, m.sb.size, &r, err, sizeof err), 0);
	assert_int_equal(r.id, 7);
	store_record_clear(&r);
	msgpack_sbuffer_destroy(&m.sb);
}

static void t_truncations_and_flips(void **st)
{
	struct store_record in, out;
	char *buf, err[200];
	size_t len;
	sample(&in);
	assert_int_equal(store_record_encode(&in, &buf, &len), 0);
	for (size_t i = 0; i < len; i++) {
		err[0] = 0;
		assert_int_equal(store_record_decode(buf, i, &out, err, sizeof err), -1);
		assert_non_null(strstr(err, "offset"));
	}
	unsigned char *b = malloc(len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, buf, len);
			b[i] ^= (unsigned char)(1u << bit);
			if (store_record_decode(b, len, &out, err, sizeof err) == 0)
				store_record_clear(&out);
		}
	}
	free(b);
	free(buf);
}

/* ---- memory store -------------------------------------------------------------- */

static void t_memory_store(void **st)
{
	struct store *s = store_memory_new();
	struct store_record r, out;
	assert_non_null(s);
	assert_string_equal(s->name, "memory");
	sample(&r);
	for (uint64_t id = 1; id <= 300; id++) { /* past the initial table size */
		r.id = id;
		assert_int_equal(store_put(s, &r), 0);
	}
	assert_int_equal(s->ops->count(s->ctx), 300);
	r.id = 5;
	r.state = POOL_DONE;
	assert_int_equal(store_put(s, &r), 0); /* replace */
	assert_int_equal(s->ops->count(s->ctx), 300);
	assert_int_equal(store_get(s, 5, &out), 0);
	assert_int_equal(out.state, POOL_DONE);
	assert_memory_equal(out.output, "a\0b", 3);
	store_record_clear(&out);
	assert_int_equal(store_del(s, 5), 0);
	assert_int_equal(store_del(s, 5), -1);
	assert_int_equal(store_get(s, 5, &out), -1);
	assert_int_equal(store_get(s, 301, &out), -1);
	assert_int_equal(s->ops->count(s->ctx), 299);
	store_free(s);
}

/* The backend table: sqlite and memory are rows; an unknown name or two
 * different halves are refused, naming the setting. */
static void t_backend_table(void **state)
{
	const struct store_backend *b = (const void *)1;
	char err[256] = "";
	assert_non_null(store_backend_find("memory"));
	assert_non_null(store_backend_find("sqlite"));
	assert_null(store_backend_find("yaque"));
	assert_int_equal(store_backend_pick("sqlite", "sqlite", &b, err, sizeof(err)), 0);
	assert_string_equal(b->name, "sqlite");
	assert_int_equal(store_backend_pick("nope", "memory", &b, err, sizeof(err)), -1);
	assert_null(b);
	assert_non_null(strstr(err, "queue.backend"));
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(store_backend_pick("memory", "sqlite", &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mailbox.backend"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_backend_table),
		cmocka_unit_test(t_roundtrip),
		cmocka_unit_test(t_bad_type),
		cmocka_unit_test(t_out_of_range),
		cmocka_unit_test(t_structure),
		cmocka_unit_test(t_strings),
		cmocka_unit_test(t_unknown_key_skipped),
		cmocka_unit_test(t_truncations_and_flips),
		cmocka_unit_test(t_memory_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
