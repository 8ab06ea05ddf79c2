/*
 * test-gguf.c — the GGUF reader against files built here byte by byte.
 *
 * A tiny writer (struct wbuf) emits a valid v3 file with every metadata type
 * and three tensors, remembering where each interesting field sits. Tests
 * then read it back, truncate it at every byte, and patch single fields with
 * hostile values, checking that open fails with a message that names the
 * field and its byte offset. Real models are compared with the gguf Python
 * package in tests/ref/test_gguf.py instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/gguf.h"
#include "llm/quant/quant.h"

struct wbuf {
	uint8_t *p;
	size_t n, cap;
};

/* where the fixture's fields were written */
struct layout {
	size_t n_tensors, n_kv, key0_len, align_val, nested_n, str_arr_n;
	size_t t0_name_len, t0_ndims, t0_ne0, t0_ne1, t0_type, t0_off, t1_off, t2_type;
	size_t header_end, data_start;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->n + n > w->cap) {
		w->cap = (w->n + n) * 2;
		w->p = realloc(w->p, w->cap);
		assert_non_null(w->p);
	}
	memcpy(w->p + w->n, src, n);
	w->n += n;
}

static void u32(struct wbuf *w, uint32_t v) { put(w, &v, 4); }
static void u64(struct wbuf *w, uint64_t v) { put(w, &v, 8); }

static void str(struct wbuf *w, const char *s)
{
	u64(w, strlen(s));
	put(w, s, strlen(s));
}

static void key(struct wbuf *w, const char *k, uint32_t type)
{
	str(w, k);
	u32(w, type);
}

static void patch32(struct wbuf *w, size_t at, uint32_t v) { memcpy(w->p + at, &v, 4); }
static void patch64(struct wbuf *w, size_t at, uint64_t v) { memcpy(w->p + at, &v, 8); }

static void scalars(struct wbuf *w)
{
	uint8_t b;
	int8_t c = -5;
	uint16_t h = 65000;
	int16_t sh = -1234;
	int32_t i = -70000;
	float f = 1.5f;
	double d = 0.25;
	int64_t l = -(1ll << 40);
	key(w, "t.u8", GGUF_T_U8); b = 200; put(w, &b, 1);
	key(w, "t.i8", GGUF_T_I8); put(w, &c, 1);
	key(w, "t.u16", GGUF_T_U16); put(w, &h, 2);
	key(w, "t.i16", GGUF_T_I16); put(w, &sh, 2);
	key(w, "t.u32", GGUF_T_U32); u32(w, 4000000000u);
	key(w, "t.i32", GGUF_T_I32); put(w, &i, 4);
	key(w, "t.f32", GGUF_T_F32); put(w, &f, 4);
	key(w, "t.bool", GGUF_T_BOOL); b = 1; put(w, &b, 1);
	key(w, "t.u64", GGUF_T_U64); u64(w, 1ull << 63);
	key(w, "t.i64", GGUF_T_I64); put(w, &l, 8);
	key(w, "t.f64", GGUF_T_F64); put(w, &d, 8);
	key(w, "t.str", GGUF_T_STRING); str(w, "hello");
}

#define N_SCALARS 12

static void arrays(struct wbuf *w, struct layout *L)
{
	float fa[3] = { 0.5f, -2.0f, 3.25f };
	int32_t ia[4] = { 7, -8, 9, 2147483647 };
	key(w, "t.strs", GGUF_T_ARRAY); u32(w, GGUF_T_STRING);
	L->str_arr_n = w->n; u64(w, 3);
	str(w, "a"); str(w, ""); str(w, "ccc");
	key(w, "t.f32s", GGUF_T_ARRAY); u32(w, GGUF_T_F32); u64(w, 3); put(w, fa, sizeof fa);
	key(w, "t.i32s", GGUF_T_ARRAY); u32(w, GGUF_T_I32); u64(w, 4); put(w, ia, sizeof ia);
	/* array of 2 arrays of u8 */
	key(w, "t.nested", GGUF_T_ARRAY); u32(w, GGUF_T_ARRAY);
	L->nested_n = w->n; u64(w, 2);
	u32(w, GGUF_T_U8); u64(w, 2); put(w, "\1\2", 2);
	u32(w, GGUF_T_U8); u64(w, 1); put(w, "\3", 1);
}

#define N_KV (2 + N_SCALARS + 4)
#define F16_OFF (64 + 6 * 34 + 52)  /* w.f16's data offset: next multiple of 64 */
#define DATA_END (F16_OFF + 16)

static void tensor_info(struct wbuf *w, const char *name, uint32_t nd, const uint64_t *ne,
			uint32_t type, uint64_t off)
{
	str(w, name);
	u32(w, nd);
	for (uint32_t d = 0; d < nd; d++)
		u64(w, ne[d]);
	u32(w, type);
	u64(w, off);
}

/* The fixture: v3, 18 kvs, 3 tensors (F32 4x2, Q8_0 64x3, F16 8) with
 * alignment 64 so padding matters. Tensor data is filled with a pattern. */
static void build(struct wbuf *w, struct layout *L)
{
	free(w->p); /* rebuilding over a previous fixture */
	memset(w, 0, sizeof *w);
	u32(w, 0x46554747u);
	u32(w, 3);
	L->n_tensors = w->n; u64(w, 3);
	L->n_kv = w->n; u64(w, N_KV);
	L->key0_len = w->n;
	key(w, "general.architecture", GGUF_T_STRING); str(w, "llama");
	key(w, "general.alignment", GGUF_T_U32); L->align_val = w->n; u32(w, 64);
	scalars(w);
	arrays(w, L);
	const uint64_t ne0[2] = { 4, 2 }, ne1[2] = { 64, 3 }, ne2[1] = { 8 };
	L->t0_name_len = w->n;
	L->t0_ndims = L->t0_name_len + 8 + strlen("w.f32");
	L->t0_ne0 = L->t0_ndims + 4;
	L->t0_ne1 = L->t0_ne0 + 8;
	L->t0_type = L->t0_ne1 + 8;
	L->t0_off = L->t0_type + 4;
	tensor_info(w, "w.f32", 2, ne0, Q_F32, 0);
	L->t1_off = w->n + 8 + strlen("w.q8") + 4 + 16 + 4;
	tensor_info(w, "w.q8", 2, ne1, Q_Q8_0, 64);
	L->t2_type = w->n + 8 + strlen("w.f16") + 4 + 8;
	tensor_info(w, "w.f16", 1, ne2, Q_F16, F16_OFF);
	L->header_end = w->n;
	while (w->n % 64)
		put(w, "\0", 1);
	L->data_start = w->n;
	/* tensor data ends at DATA_END; 16 spare bytes follow */
	for (size_t i = 0; i < DATA_END + 16; i++) {
		uint8_t b = (uint8_t)(i * 7 + 1);
		put(w, &b, 1);
	}
}

/* The valid file of build(), opened; the caller closes g and frees w->p. */
static struct gguf *open_built(struct wbuf *w)
{
	struct layout L;

	build(w, &L);
	struct gguf *g = gguf_open_mem(w->p, w->n, NULL, 0);
	assert_non_null(g);
	return g;
}

static void test_valid(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	char err[256];
	build(&w, &L);
	struct gguf *g = gguf_open_mem(w.p, w.n, err, sizeof err);
	assert_non_null(g);
	assert_int_equal(gguf_version(g), 3);
	assert_int_equal(gguf_n_kv(g), N_KV);
	assert_int_equal(gguf_n_tensors(g), 3);
	assert_int_equal(gguf_alignment(g), 64);
	assert_int_equal(gguf_data_offset(g), L.data_start);
	int64_t k = gguf_find_key(g, "t.str");
	assert_true(k >= 0);
	assert_int_equal(gguf_key_type(g, k), GGUF_T_STRING);
	struct gguf_str s = gguf_key_name(g, k);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.s, "t.str", 5);
	assert_int_equal(gguf_find_key(g, "t.st"), -1);
	assert_int_equal(gguf_find_key(g, "absent"), -1);
	gguf_close(g);
	free(w.p);
}

static void test_int_getters(void **state)
{
	struct wbuf w = { 0 };
	struct gguf *g = open_built(&w);
	uint32_t u;
	uint64_t u6;
	int64_t i6;
	assert_int_equal(gguf_get_u32(g, "t.u8", &u), 0); assert_int_equal(u, 200);
	assert_int_equal(gguf_get_u32(g, "t.u16", &u), 0); assert_int_equal(u, 65000);
	assert_int_equal(gguf_get_u32(g, "t.u32", &u), 0); assert_true(u == 4000000000u);
	assert_int_equal(gguf_get_i64(g, "t.i8", &i6), 0); assert_int_equal(i6, -5);
	assert_int_equal(gguf_get_i64(g, "t.i16", &i6), 0); assert_int_equal(i6, -1234);
	assert_int_equal(gguf_get_i64(g, "t.i32", &i6), 0); assert_int_equal(i6, -70000);
	assert_int_equal(gguf_get_i64(g, "t.i64", &i6), 0); assert_true(i6 == -(1ll << 40));
	assert_int_equal(gguf_get_u64(g, "t.u64", &u6), 0); assert_true(u6 == 1ull << 63);
	assert_int_equal(gguf_get_i64(g, "t.u32", &i6), 0); assert_int_equal(i6, 4000000000ll);
	/* not representable: negative into unsigned, 2^63 into i64, 2^63 into u32 */
	assert_int_equal(gguf_get_u32(g, "t.i8", &u), -1);
	assert_int_equal(gguf_get_u64(g, "t.i64", &u6), -1);
	assert_int_equal(gguf_get_i64(g, "t.u64", &i6), -1);
	assert_int_equal(gguf_get_u32(g, "t.u64", &u), -1);
	/* wrong kinds */
	assert_int_equal(gguf_get_u32(g, "t.f32", &u), -1);
	assert_int_equal(gguf_get_u32(g, "t.str", &u), -1);
	assert_int_equal(gguf_get_u32(g, "t.bool", &u), -1);
	assert_int_equal(gguf_get_u32(g, "t.i32s", &u), -1);
	assert_int_equal(gguf_get_u32(g, "absent", &u), -1);
	gguf_close(g);
	free(w.p);
}

static void test_other_getters(void **state)
{
	struct wbuf w = { 0 };
	struct gguf *g = open_built(&w);
	float f;
	int b;
	struct gguf_str s;
	assert_int_equal(gguf_get_f32(g, "t.f32", &f), 0); assert_true(f == 1.5f);
	assert_int_equal(gguf_get_f32(g, "t.f64", &f), 0); assert_true(f == 0.25f);
	assert_int_equal(gguf_get_f32(g, "t.u8", &f), -1);
	assert_int_equal(gguf_get_bool(g, "t.bool", &b), 0); assert_int_equal(b, 1);
	assert_int_equal(gguf_get_bool(g, "t.u8", &b), -1);
	assert_int_equal(gguf_get_str(g, "t.str", &s), 0);
	assert_int_equal(s.len, 5); assert_memory_equal(s.s, "hello", 5);
	assert_int_equal(gguf_get_str(g, "general.architecture", &s), 0);
	assert_int_equal(s.len, 5); assert_memory_equal(s.s, "llama", 5);
	assert_int_equal(gguf_get_str(g, "t.u8", &s), -1);
	assert_int_equal(gguf_get_str(g, "t.strs", &s), -1);
	gguf_close(g);
	free(w.p);
}

static void test_arrays(void **state)
{
	struct wbuf w = { 0 };
	struct gguf *g = open_built(&w);
	enum gguf_vtype et;
	uint64_t n;
	struct gguf_str s;
	float f;
	int32_t v;
	assert_int_equal(gguf_get_arr(g, "t.strs", &et, &n), 0);
	assert_int_equal(et, GGUF_T_STRING); assert_int_equal(n, 3);
	assert_int_equal(gguf_arr_str(g, "t.strs", 2, &s), 0);
	assert_int_equal(s.len, 3); assert_memory_equal(s.s, "ccc", 3);
	assert_int_equal(gguf_arr_str(g, "t.strs", 1, &s), 0); assert_int_equal(s.len, 0);
	assert_int_equal(gguf_arr_str(g, "t.strs", 3, &s), -1);
	assert_int_equal(gguf_arr_f32(g, "t.strs", 0, &f), -1);
	assert_null(gguf_arr_data(g, "t.strs"));
	assert_int_equal(gguf_arr_f32(g, "t.f32s", 2, &f), 0); assert_true(f == 3.25f);
	assert_int_equal(gguf_arr_i32(g, "t.f32s", 0, &v), -1);
	assert_int_equal(gguf_arr_i32(g, "t.i32s", 1, &v), 0); assert_int_equal(v, -8);
	assert_int_equal(gguf_arr_i32(g, "t.i32s", 3, &v), 0); assert_int_equal(v, 2147483647);
	assert_int_equal(gguf_arr_i32(g, "t.i32s", 4, &v), -1);
	const uint8_t *raw = gguf_arr_data(g, "t.i32s"); /* unaligned: memcpy */
	assert_non_null(raw);
	memcpy(&v, raw + 8, 4);
	assert_int_equal(v, 9);
	assert_int_equal(gguf_get_arr(g, "t.nested", &et, &n), 0);
	assert_int_equal(et, GGUF_T_ARRAY); assert_int_equal(n, 2);
	assert_int_equal(gguf_arr_i32(g, "t.nested", 0, &v), -1);
	assert_null(gguf_arr_data(g, "t.nested"));
	assert_int_equal(gguf_get_arr(g, "t.u8", &et, &n), -1);
	assert_int_equal(gguf_arr_str(g, "absent", 0, &s), -1);
	gguf_close(g);
	free(w.p);
}

static void test_tensors(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	build(&w, &L);
	struct gguf *g = gguf_open_mem(w.p, w.n, NULL, 0);
	assert_non_null(g);
	const struct gguf_tensor *t = gguf_find_tensor(g, "w.q8");
	assert_non_null(t);
	assert_ptr_equal(t, gguf_tensor(g, 1));
	assert_int_equal(t->type, Q_Q8_0);
	assert_int_equal(t->n_dims, 2);
	assert_int_equal(t->ne[0], 64); assert_int_equal(t->ne[1], 3);
	assert_int_equal(t->ne[2], 1); assert_int_equal(t->ne[3], 1);
	assert_int_equal(t->nbytes, 6 * 34);
	assert_ptr_equal(t->data, w.p + L.data_start + 64);
	t = gguf_find_tensor(g, "w.f32");
	assert_non_null(t);
	assert_int_equal(t->nbytes, 32);
	assert_ptr_equal(t->data, w.p + L.data_start);
	t = gguf_find_tensor(g, "w.f16");
	assert_non_null(t);
	assert_int_equal(t->nbytes, 16);
	assert_null(gguf_find_tensor(g, "w"));
	assert_null(gguf_tensor(g, 3));
	gguf_close(g);
	free(w.p);
}

/* Every prefix of the file must be rejected, with an error message. */
static void test_truncated(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	char err[256];
	build(&w, &L);
	for (size_t len = 0; len < L.data_start + DATA_END; len++) {
		/* a private copy so ASan catches a read past len */
		uint8_t *cp = malloc(len ? len : 1);
		memcpy(cp, w.p, len);
		err[0] = 0;
		struct gguf *g = gguf_open_mem(cp, len, err, sizeof err);
		if (g)
			fail_msg("prefix of %zu bytes opened", len);
		assert_true(strlen(err) > 0);
		assert_non_null(strstr(err, "at offset"));
		free(cp);
	}
	free(w.p);
}

/* Patch one field, expect open to fail with `field` and "at offset <off>". */
static void expect_fail(struct wbuf *w, const char *field, size_t off)
{
	char err[256], want[64];
	err[0] = 0;
	struct gguf *g = gguf_open_mem(w->p, w->n, err, sizeof err);
	if (g)
		fail_msg("opened despite a bad %s", field);
	if (!strstr(err, field))
		fail_msg("error '%s' does not name '%s'", err, field);
	snprintf(want, sizeof want, "at offset %zu", off);
	if (!strstr(err, want))
		fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_hostile_header(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	build(&w, &L);
	patch32(&w, 0, 0x46554746u);
	expect_fail(&w, "header.magic", 0);
	build(&w, &L);
	patch32(&w, 4, 1);
	expect_fail(&w, "v1", 4);
	patch32(&w, 4, 4);
	expect_fail(&w, "header.version", 4);
	patch32(&w, 4, 0x03000000u);
	expect_fail(&w, "big-endian", 4);
	build(&w, &L);
	patch64(&w, L.n_kv, UINT64_MAX);
	expect_fail(&w, "header.n_kv", L.n_kv);
	patch64(&w, L.n_kv, 1u << 20);  /* within the limit but cannot fit */
	expect_fail(&w, "header.n_kv", L.n_kv);
	build(&w, &L);
	patch64(&w, L.n_tensors, 1ull << 40);
	expect_fail(&w, "header.n_tensors", L.n_tensors);
	build(&w, &L);
	patch64(&w, L.key0_len, UINT64_MAX - 3);
	expect_fail(&w, "kv[0].key", L.key0_len);
	free(w.p);
}

static void test_hostile_kv(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	build(&w, &L);
	patch32(&w, L.align_val, 48);
	expect_fail(&w, "general.alignment", L.align_val);
	patch32(&w, L.align_val, 0);
	expect_fail(&w, "general.alignment", L.align_val);
	build(&w, &L);
	patch32(&w, L.align_val - 4, GGUF_T_I32);
	expect_fail(&w, "general.alignment", L.align_val - 4);
	build(&w, &L);
	patch32(&w, L.align_val - 4, 13);
	expect_fail(&w, "unknown value type 13", L.align_val - 4);
	build(&w, &L);
	patch64(&w, L.str_arr_n, 1ull << 62);
	expect_fail(&w, "'t.strs'", L.str_arr_n - 4);
	build(&w, &L);
	patch64(&w, L.nested_n, UINT64_MAX / 2);
	expect_fail(&w, "'t.nested'", L.nested_n + 8);
	build(&w, &L);
	/* rename t.i16 to t.u16: duplicate key */
	uint8_t *p = memmem(w.p, w.n, "t.i16", 5);
	p[2] = 'u';
	expect_fail(&w, "duplicate key", (size_t)(p - w.p) - 8);
	free(w.p);
}

static void test_hostile_tensor(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	build(&w, &L);
	patch32(&w, L.t0_ndims, 5);
	expect_fail(&w, "n_dims", L.t0_ndims);
	build(&w, &L);
	patch64(&w, L.t0_ne1, 0);
	expect_fail(&w, "ne[1]", L.t0_ne1);
	build(&w, &L);
	patch64(&w, L.t0_ne0, 1ull << 40);
	patch64(&w, L.t0_ne1, 1ull << 40);
	expect_fail(&w, "ne[1]", L.t0_ne1);
	build(&w, &L);
	patch32(&w, L.t0_type, 99);
	expect_fail(&w, "unknown tensor type 99", L.t0_type);
	build(&w, &L);
	patch32(&w, L.t0_type, Q_Q4_0); /* ne[0]=4 is not a multiple of 32 */
	expect_fail(&w, "'w.f32': ne[0]=4", L.t0_type);
	build(&w, &L);
	patch64(&w, L.t0_off, 32);
	expect_fail(&w, "alignment 64", L.t0_off);
	build(&w, &L);
	patch64(&w, L.t1_off, 1ull << 20);
	expect_fail(&w, "'w.q8': data offset 1048576", L.data_start);
	build(&w, &L);
	patch64(&w, L.t1_off, UINT64_MAX - 63);
	expect_fail(&w, "past end of file", L.data_start);
	build(&w, &L);
	patch64(&w, L.t0_name_len, 200);
	expect_fail(&w, "tensor[0].name", L.t0_name_len);
	build(&w, &L);
	/* w.f16 renamed to w.f32: duplicate tensor */
	memcpy(w.p + L.t2_type - 8 - 4 - 5, "w.f32", 5);
	expect_fail(&w, "duplicate tensor", L.t2_type - 8 - 4 - 5 - 8);
	free(w.p);
}

static void test_tensor_at_eof(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	char err[256];
	build(&w, &L);
	/* last tensor ends 16 bytes before the end: dropping 16 still opens, 17 fails */
	struct gguf *g = gguf_open_mem(w.p, w.n - 16, err, sizeof err);
	assert_non_null(g);
	gguf_close(g);
	w.n -= 17;
	expect_fail(&w, "'w.f16'", L.data_start + F16_OFF);
	free(w.p);
}

static void test_open_file(void **state)
{
	struct wbuf w = { 0 };
	struct layout L;
	char err[256], path[] = "/tmp/test-gguf-XXXXXX";
	build(&w, &L);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, w.p, w.n), (ssize_t)w.n);
	close(fd);
	struct gguf *g = gguf_open(path, err, sizeof err);
	assert_non_null(g);
	const struct gguf_tensor *t = gguf_find_tensor(g, "w.q8");
	assert_memory_equal(t->data, w.p + L.data_start + 64, t->nbytes);
	gguf_close(g);
	/* error messages carry the path */
	patch32(&w, 4, 7);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, w.p, w.n), (ssize_t)w.n);
	close(fd);
	assert_null(gguf_open(path, err, sizeof err));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "header.version"));
	unlink(path);
	assert_null(gguf_open(path, err, sizeof err));
	assert_non_null(strstr(err, path));
	free(w.p);
}

/* general.alignment 1: tensor data at odd offsets is copied to aligned
 * memory, so reading floats is never a misaligned load (UBSan). */
static void test_alignment_one(void **state)
{
	struct wbuf w = { 0 };
	const uint64_t ne[1] = { 4 };
	u32(&w, 0x46554747u);
	u32(&w, 3);
	u64(&w, 2);
	u64(&w, 1);
	key(&w, "general.alignment", GGUF_T_U32);
	u32(&w, 1);
	tensor_info(&w, "a", 1, ne, Q_F32, 0);
	tensor_info(&w, "b", 1, ne, Q_F32, 17);
	/* with alignment 1 the data section starts right where the header ends */
	const float fa[4] = { 1, 2, 3, 4 }, fb[4] = { -1, -2, -3, -4 };
	size_t start = w.n;
	put(&w, fa, sizeof fa);
	put(&w, "x", 1); /* b at offset 17: odd */
	put(&w, fb, sizeof fb);
	char err[256] = "";
	struct gguf *g = gguf_open_mem(w.p, w.n, err, sizeof err);
	if (!g)
		fail_msg("%s", err);
	assert_int_equal(gguf_alignment(g), 1);
	assert_int_equal(gguf_data_offset(g), start);
	const struct gguf_tensor *a = gguf_find_tensor(g, "a"), *b = gguf_find_tensor(g, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal((uintptr_t)a->data % 32, 0);
	assert_int_equal((uintptr_t)b->data % 32, 0);
	const float *pa = a->data, *pb = b->data;
	for (int i = 0; i < 4; i++) {
		assert_true(pa[i] == fa[i]);
		assert_true(pb[i] == fb[i]);
	}
	gguf_close(g);
	free(w.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignment_one),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_int_getters),
		cmocka_unit_test(test_other_getters),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_tensors),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_header),
		cmocka_unit_test(test_hostile_kv),
		cmocka_unit_test(test_hostile_tensor),
		cmocka_unit_test(test_tensor_at_eof),
		cmocka_unit_test(test_open_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
