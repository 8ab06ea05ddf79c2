/*
 * gguf.c — GGUF v2/v3 reader: validate once at open, then O(1) accessors.
 *
 * Design: the file is mmapped read-only (or a caller buffer is borrowed) and
 * parsed once by a bounds-checked cursor. Metadata values are not copied;
 * each key records where its value starts in the mapping. String arrays get
 * a table of element offsets so element i is O(1). Keys and tensor names are
 * indexed by open-addressing hash tables (hundreds of tensors, up to 2^20
 * hostile entries), so lookups do not scan.
 *
 * Invariants after a successful open: every recorded offset + length lies
 * inside the buffer; every tensor's data range lies inside the data section,
 * is aligned to general.alignment and has ne[0] a multiple of its block size;
 * every tensor's data pointer is 32-byte aligned in memory (align_tensors);
 * keys and tensor names are unique. The accessors therefore only check their
 * arguments, never the file.
 *
 * Layout (v2 and v3 are identical, little-endian, 64-bit counts; v1 used
 * 32-bit counts and is rejected):
 *   u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv × (string key, u32 type, value),
 *   n_tensors × (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset),
 *   padding to alignment, tensor data.
 * A string is u64 length + bytes; an array is u32 elem type + u64 count + elems.
 */
#include "plot/gguf.h"
#include "llm/quant/quant.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian fields with memcpy; big-endian hosts are not supported"
#endif

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define MAX_KV (1u << 20)
#define MAX_TENSORS (1u << 20)
#define MAX_ARRAY_DEPTH 4
#define DEFAULT_ALIGNMENT 32u
#define MAX_ALIGNMENT (1u << 30)

struct kv {
	struct gguf_str key;
	uint32_t type;
	uint64_t off;       /* value payload: scalar, string length field, or first array element */
	uint32_t etype;     /* arrays: element type */
	uint64_t n;         /* arrays: element count */
	uint64_t *str_off;  /* string arrays: offset of each element's length field */
};

struct index {
	uint32_t *slot; /* entry index + 1; 0 = empty */
	uint32_t mask;
};

struct gguf {
	const uint8_t *base;
	size_t size;
	int mapped;
	uint32_t version;
	uint32_t alignment;
	uint64_t data_off;
	uint64_t n_kv, n_tensors;
	struct kv *kv;
	struct gguf_tensor *tensors;
	struct index kv_idx, t_idx;
	void *copy;         /* aligned copy of the tensor data, when the file's is not */
};

/* Bounds-checked cursor over the buffer; the first error sticks. */
struct cur {
	struct gguf *g;
	uint64_t pos;
	char *err;
	size_t errlen;
	int failed;
};

static void fail(struct cur *c, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct cur *c, uint64_t off, const char *fmt, ...)
{
	if (c->failed)
		return;
	c->failed = 1;
	if (!c->err || !c->errlen)
		return;
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s at offset %llu", msg, (unsigned long long)off);
}

static uint64_t remaining(const struct cur *c)
{
	return c->g->size - c->pos;
}

/* Read n raw bytes of field `what`; on a short buffer name the field. */
static int rd(struct cur *c, void *out, size_t n, const char *what)
{
	if (c->failed)
		return -1;
	if (remaining(c) < n) {
		fail(c, c->pos, "%s: truncated (need %zu bytes, %llu left)", what, n,
		     (unsigned long long)remaining(c));
		return -1;
	}
	memcpy(out, c->g->base + c->pos, n);
	c->pos += n;
	return 0;
}

static int rd_u32(struct cur *c, uint32_t *v, const char *what)
{
	return rd(c, v, sizeof *v, what);
}

static int rd_u64(struct cur *c, uint64_t *v, const char *what)
{
	return rd(c, v, sizeof *v, what);
}

/* A string: u64 length (bounded by the bytes left) then the bytes. */
static int rd_str(struct cur *c, struct gguf_str *s, const char *what)
{
	uint64_t at = c->pos;
	if (rd_u64(c, &s->len, what) < 0)
		return -1;
	if (s->len > remaining(c)) {
		fail(c, at, "%s: string length %llu exceeds the %llu bytes left", what,
		     (unsigned long long)s->len, (unsigned long long)remaining(c));
		return -1;
	}
	s->s = (const char *)c->g->base + c->pos;
	c->pos += s->len;
	return 0;
}

/* Size of a fixed-width value type; 0 for string/array/unknown. */
static size_t scalar_size(uint32_t t)
{
	switch (t) {
	case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
	case GGUF_T_U16: case GGUF_T_I16: return 2;
	case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
	case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
	default: return 0;
	}
}

static int type_known(uint32_t t)
{
	return t <= GGUF_T_F64;
}

static int skip_value(struct cur *c, uint32_t type, int depth, const char *what);

/* Skip an array's elements (used for nested arrays, which we parse but do
 * not expose). Each element takes at least `min` bytes, so the count is
 * checked against the bytes left before looping. */
static int skip_array_elems(struct cur *c, uint32_t et, uint64_t n, int depth, const char *what)
{
	size_t es = scalar_size(et);
	uint64_t min = es ? es : (et == GGUF_T_STRING ? 8 : 12);
	if (n > remaining(c) / min) {
		fail(c, c->pos, "%s: array of %llu elements exceeds the %llu bytes left", what,
		     (unsigned long long)n, (unsigned long long)remaining(c));
		return -1;
	}
	if (es) {
		c->pos += n * es;
		return 0;
	}
	for (uint64_t i = 0; i < n; i++)
		if (skip_value(c, et, depth, what) < 0)
			return -1;
	return 0;
}

static int skip_value(struct cur *c, uint32_t type, int depth, const char *what)
{
	if (type == GGUF_T_STRING) {
		struct gguf_str s;
		return rd_str(c, &s, what);
	}
	if (type == GGUF_T_ARRAY) {
		uint64_t at = c->pos;
		uint32_t et;
		uint64_t n;
		if (depth >= MAX_ARRAY_DEPTH) {
			fail(c, at, "%s: arrays nested deeper than %d", what, MAX_ARRAY_DEPTH);
			return -1;
		}
		if (rd_u32(c, &et, what) < 0 || rd_u64(c, &n, what) < 0)
			return -1;
		if (!type_known(et)) {
			fail(c, at, "%s: unknown array element type %u", what, et);
			return -1;
		}
		return skip_array_elems(c, et, n, depth + 1, what);
	}
	size_t sz = scalar_size(type);
	if (remaining(c) < sz) {
		fail(c, c->pos, "%s: truncated (need %zu bytes, %llu left)", what, sz,
		     (unsigned long long)remaining(c));
		return -1;
	}
	c->pos += sz;
	return 0;
}

/* FNV-1a over a byte range. */
static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static int index_init(struct index *ix, uint64_t n)
{
	uint32_t cap = 16;
	while (cap < 2 * n)
		cap <<= 1;
	ix->slot = calloc(cap, sizeof *ix->slot);
	ix->mask = cap - 1;
	return ix->slot ? 0 : -1;
}

static const char *key_bytes(const struct gguf *g, uint32_t i, size_t *n)
{
	*n = g->kv[i].key.len;
	return g->kv[i].key.s;
}

static const char *tname_bytes(const struct gguf *g, uint32_t i, size_t *n)
{
	*n = strlen(g->tensors[i].name);
	return g->tensors[i].name;
}

typedef const char *(*name_fn)(const struct gguf *, uint32_t, size_t *);

/* Look up s in ix; returns the entry index or -1. With insert >= 0, adds it
 * when absent and returns -2 if it was already there. */
static int64_t index_find(const struct gguf *g, const struct index *ix, name_fn name,
			  const char *s, size_t n, int64_t insert)
{
	for (uint32_t h = hash_bytes(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
		uint32_t e = ix->slot[h];
		if (!e) {
			if (insert >= 0)
				ix->slot[h] = (uint32_t)insert + 1;
			return -1;
		}
		size_t en;
		const char *es = name(g, e - 1, &en);
		if (en == n && memcmp(es, s, n) == 0)
			return insert >= 0 ? -2 : (int64_t)(e - 1);
	}
}

/* Record the offsets of each string element; n was already bounded. */
static int parse_str_array(struct cur *c, struct kv *kv, const char *what)
{
	kv->str_off = malloc((kv->n ? kv->n : 1) * sizeof *kv->str_off);
	if (!kv->str_off) {
		fail(c, c->pos, "%s: out of memory for %llu strings", what, (unsigned long long)kv->n);
		return -1;
	}
	for (uint64_t i = 0; i < kv->n; i++) {
		struct gguf_str s;
		kv->str_off[i] = c->pos;
		if (rd_str(c, &s, what) < 0)
			return -1;
	}
	return 0;
}

static int parse_array(struct cur *c, struct kv *kv, const char *what)
{
	uint64_t at = c->pos;
	if (rd_u32(c, &kv->etype, what) < 0 || rd_u64(c, &kv->n, what) < 0)
		return -1;
	if (!type_known(kv->etype)) {
		fail(c, at, "%s: unknown array element type %u", what, kv->etype);
		return -1;
	}
	kv->off = c->pos;
	if (kv->etype == GGUF_T_STRING) {
		if (kv->n > remaining(c) / 8) {
			fail(c, at, "%s: array of %llu strings exceeds the %llu bytes left", what,
			     (unsigned long long)kv->n, (unsigned long long)remaining(c));
			return -1;
		}
		return parse_str_array(c, kv, what);
	}
	return skip_array_elems(c, kv->etype, kv->n, 1, what);
}

static int parse_kv(struct cur *c, uint64_t i)
{
	struct gguf *g = c->g;
	struct kv *kv = &g->kv[i];
	char what[160];
	uint64_t at = c->pos;
	snprintf(what, sizeof what, "kv[%llu].key", (unsigned long long)i);
	if (rd_str(c, &kv->key, what) < 0)
		return -1;
	snprintf(what, sizeof what, "kv[%llu] '%.*s'", (unsigned long long)i,
		 (int)(kv->key.len > 100 ? 100 : kv->key.len), kv->key.s);
	if (index_find(g, &g->kv_idx, key_bytes, kv->key.s, kv->key.len, (int64_t)i) == -2) {
		fail(c, at, "%s: duplicate key", what);
		return -1;
	}
	uint64_t tat = c->pos;
	if (rd_u32(c, &kv->type, what) < 0)
		return -1;
	if (!type_known(kv->type)) {
		fail(c, tat, "%s: unknown value type %u", what, kv->type);
		return -1;
	}
	kv->off = c->pos;
	if (kv->type == GGUF_T_ARRAY)
		return parse_array(c, kv, what);
	return skip_value(c, kv->type, 0, what);
}

static int parse_header(struct cur *c)
{
	struct gguf *g = c->g;
	uint32_t magic;
	if (rd_u32(c, &magic, "header.magic") < 0)
		return -1;
	if (magic != GGUF_MAGIC) {
		fail(c, 0, "header.magic: not a GGUF file (magic 0x%08x)", magic);
		return -1;
	}
	if (rd_u32(c, &g->version, "header.version") < 0)
		return -1;
	if (g->version == 1) {
		fail(c, 4, "header.version: GGUF v1 (32-bit counts) is not supported; "
			   "convert the file to v3");
		return -1;
	}
	if (g->version != 2 && g->version != 3) {
		uint32_t sw = __builtin_bswap32(g->version);
		fail(c, 4, "header.version: unsupported version %u (want 2 or 3)%s", g->version,
		     sw == 2 || sw == 3 ? "; this is a big-endian GGUF, which is not supported" : "");
		return -1;
	}
	if (rd_u64(c, &g->n_tensors, "header.n_tensors") < 0)
		return -1;
	if (g->n_tensors > MAX_TENSORS) {
		fail(c, 8, "header.n_tensors: %llu exceeds the limit %u",
		     (unsigned long long)g->n_tensors, MAX_TENSORS);
		return -1;
	}
	if (rd_u64(c, &g->n_kv, "header.n_kv") < 0)
		return -1;
	if (g->n_kv > MAX_KV) {
		fail(c, 16, "header.n_kv: %llu exceeds the limit %u", (unsigned long long)g->n_kv,
		     MAX_KV);
		return -1;
	}
	return 0;
}

/* The n-entry array of a header count found at offset at, and its name
 * index. n is bounded first by the bytes left (each entry needs at least
 * min_bytes), so a hostile count cannot make us allocate; NULL after fail(). */
static void *alloc_table(struct cur *c, uint64_t n, uint64_t min_bytes, size_t elem,
                         struct index *ix, uint64_t at, const char *field)
{
	if (n > remaining(c) / min_bytes) {
		fail(c, at, "%s: %llu entries cannot fit in the %llu bytes left", field,
		     (unsigned long long)n, (unsigned long long)remaining(c));
		return NULL;
	}
	void *v = calloc(n ? n : 1, elem);
	if (!v || index_init(ix, n) < 0) {
		fail(c, at, "%s: out of memory for %llu entries", field, (unsigned long long)n);
		free(v);
		return NULL;
	}
	return v;
}

static int parse_kvs(struct cur *c)
{
	struct gguf *g = c->g;
	/* a kv takes at least 8 (key len) + 4 (type) + 1 bytes */
	g->kv = alloc_table(c, g->n_kv, 13, sizeof *g->kv, &g->kv_idx, 16, "header.n_kv");
	if (!g->kv)
		return -1;
	for (uint64_t i = 0; i < g->n_kv; i++)
		if (parse_kv(c, i) < 0)
			return -1;
	return 0;
}

/* general.alignment, if present, must be a u32 power of two. */
static int read_alignment(struct cur *c)
{
	struct gguf *g = c->g;
	g->alignment = DEFAULT_ALIGNMENT;
	int64_t i = gguf_find_key(g, "general.alignment");
	if (i < 0)
		return 0;
	const struct kv *kv = &g->kv[i];
	if (kv->type != GGUF_T_U32) {
		fail(c, kv->off - 4, "general.alignment: type %u, want u32", kv->type);
		return -1;
	}
	uint32_t a;
	memcpy(&a, g->base + kv->off, 4);
	if (a == 0 || (a & (a - 1)) || a > MAX_ALIGNMENT) {
		fail(c, kv->off, "general.alignment: %u is not a power of two in [1, 2^30]", a);
		return -1;
	}
	g->alignment = a;
	return 0;
}

/* nbytes = row bytes × ne[1] × ne[2] × ne[3], each step overflow-checked. */
static int tensor_nbytes(struct cur *c, struct gguf_tensor *t, uint64_t at, const char *what)
{
	uint32_t be = quant_block_elems(t->type);
	if (!be || !quant_block_bytes(t->type)) {
		fail(c, at, "%s: unknown tensor type %u", what, t->type);
		return -1;
	}
	if (t->ne[0] % be) {
		fail(c, at, "%s: ne[0]=%llu is not a multiple of the %s block size %u", what,
		     (unsigned long long)t->ne[0], quant_name(t->type), be);
		return -1;
	}
	uint64_t nb = (t->ne[0] / be) * quant_block_bytes(t->type);
	for (int d = 1; d < GGUF_MAX_DIMS; d++) {
		if (__builtin_mul_overflow(nb, t->ne[d], &nb)) {
			fail(c, at, "%s: size overflows 64 bits", what);
			return -1;
		}
	}
	t->nbytes = nb;
	return 0;
}

static int parse_dims(struct cur *c, struct gguf_tensor *t, const char *what)
{
	uint64_t at = c->pos;
	if (rd_u32(c, &t->n_dims, what) < 0)
		return -1;
	if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
		fail(c, at, "%s: n_dims=%u not in [1, %d]", what, t->n_dims, GGUF_MAX_DIMS);
		return -1;
	}
	uint64_t elems = 1;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
		t->ne[d] = 1;
		if (d >= t->n_dims)
			continue;
		uint64_t dat = c->pos;
		if (rd_u64(c, &t->ne[d], what) < 0)
			return -1;
		if (t->ne[d] == 0 || t->ne[d] > INT64_MAX ||
		    __builtin_mul_overflow(elems, t->ne[d], &elems) || elems > INT64_MAX) {
			fail(c, dat, "%s: ne[%u]=%llu is zero or makes the element count overflow",
			     what, d, (unsigned long long)t->ne[d]);
			return -1;
		}
	}
	return 0;
}

static int parse_tensor_info(struct cur *c, uint64_t i)
{
	struct gguf *g = c->g;
	struct gguf_tensor *t = &g->tensors[i];
	char what[200];
	struct gguf_str name;
	uint64_t at = c->pos;
	snprintf(what, sizeof what, "tensor[%llu].name", (unsigned long long)i);
	if (rd_str(c, &name, what) < 0)
		return -1;
	if (name.len == 0 || name.len >= sizeof t->name || memchr(name.s, 0, name.len)) {
		fail(c, at, "%s: length %llu not in [1, %zu] or contains NUL", what,
		     (unsigned long long)name.len, sizeof t->name - 1);
		return -1;
	}
	memcpy(t->name, name.s, name.len);
	t->name[name.len] = 0;
	snprintf(what, sizeof what, "tensor[%llu] '%s'", (unsigned long long)i, t->name);
	if (index_find(g, &g->t_idx, tname_bytes, t->name, name.len, (int64_t)i) == -2) {
		fail(c, at, "%s: duplicate tensor name", what);
		return -1;
	}
	if (parse_dims(c, t, what) < 0)
		return -1;
	uint64_t tat = c->pos;
	if (rd_u32(c, &t->type, what) < 0 || tensor_nbytes(c, t, tat, what) < 0)
		return -1;
	uint64_t oat = c->pos;
	if (rd_u64(c, &t->offset, what) < 0)
		return -1;
	if (t->offset % g->alignment) {
		fail(c, oat, "%s: data offset %llu is not a multiple of the alignment %u", what,
		     (unsigned long long)t->offset, g->alignment);
		return -1;
	}
	return 0;
}

static int parse_tensors(struct cur *c)
{
	struct gguf *g = c->g;
	/* a tensor info takes at least 8+1 (name) + 4 + 8 + 4 + 8 bytes */
	g->tensors = alloc_table(c, g->n_tensors, 33, sizeof *g->tensors, &g->t_idx, 8,
	                         "header.n_tensors");
	if (!g->tensors)
		return -1;
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (parse_tensor_info(c, i) < 0)
			return -1;
	return 0;
}

/* Place the data section and check every tensor's range lies inside it. */
static int place_data(struct cur *c)
{
	struct gguf *g = c->g;
	uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
	g->data_off = c->pos + pad;
	if (g->n_tensors && g->data_off > g->size) {
		fail(c, c->pos, "data section: aligned start %llu is past end of file (size %zu)",
		     (unsigned long long)g->data_off, g->size);
		return -1;
	}
	uint64_t avail = g->data_off <= g->size ? g->size - g->data_off : 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		if (t->offset > avail || t->nbytes > avail - t->offset) {
			fail(c, g->data_off + (t->offset < avail ? t->offset : 0),
			     "tensor[%llu] '%s': data offset %llu + %llu bytes past end of file (size %zu)",
			     (unsigned long long)i, t->name, (unsigned long long)t->offset,
			     (unsigned long long)t->nbytes, g->size);
			return -1;
		}
		t->data = g->base + g->data_off + t->offset;
	}
	return 0;
}

/* general.alignment below 32 (1 is legal) leaves tensor data where a
 * float or a SIMD load would be misaligned. Then each tensor is copied into
 * one 64-byte aligned buffer (its size in RAM, for such files only); the
 * engine only ever sees aligned data. */
static int align_tensors(struct cur *c)
{
	struct gguf *g = c->g;
	uint64_t total = 0;
	int need = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		need |= ((uintptr_t)g->tensors[i].data % DEFAULT_ALIGNMENT) != 0;
		uint64_t n = (g->tensors[i].nbytes + 63) / 64 * 64;
		if (n > UINT64_MAX - total || total + n > SIZE_MAX / 2) {
			fail(c, g->data_off, "tensor data of %llu+ bytes cannot be copied aligned",
			     (unsigned long long)total);
			return -1;
		}
		total += n;
	}
	if (!need)
		return 0;
	uint8_t *buf = aligned_alloc(64, total ? (size_t)total : 64);
	if (!buf) {
		fail(c, g->data_off, "out of memory copying %llu bytes of misaligned tensor data",
		     (unsigned long long)total);
		return -1;
	}
	g->copy = buf;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		memcpy(buf, t->data, (size_t)t->nbytes);
		t->data = buf;
		buf += (t->nbytes + 63) / 64 * 64;
	}
	return 0;
}

static int parse(struct gguf *g, char *err, size_t errlen)
{
	struct cur c = { .g = g, .pos = 0, .err = err, .errlen = errlen };
	if (parse_header(&c) < 0 || parse_kvs(&c) < 0 || read_alignment(&c) < 0 ||
	    parse_tensors(&c) < 0 || place_data(&c) < 0 || align_tensors(&c) < 0)
		return -1;
	return 0;
}

struct gguf *gguf_open_mem(const void *buf, size_t len, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	struct gguf *g = calloc(1, sizeof *g);
	if (!g) {
		plot_seterr(err, errlen, "out of memory");
		return NULL;
	}
	g->base = buf;
	g->size = len;
	if (parse(g, err, errlen) < 0) {
		gguf_close(g);
		return NULL;
	}
	return g;
}

/* Prefix err (already holding the parse message) with the path. */
static void prefix_path(const char *path, char *err, size_t errlen)
{
	if (!err || !errlen)
		return;
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", err);
	snprintf(err, errlen, "%s: %s", path, tmp);
}

static void *map_file(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	void *p = NULL;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		snprintf(err, errlen, "%s: not a regular non-empty file", path);
	} else {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
			p = NULL;
		}
		*len = (size_t)st.st_size;
	}
	close(fd);
	return p;
}

struct gguf *gguf_open(const char *path, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	size_t len = 0;
	void *p = map_file(path, &len, err, errlen);
	if (!p)
		return NULL;
	struct gguf *g = gguf_open_mem(p, len, err, errlen);
	if (!g) {
		munmap(p, len);
		prefix_path(path, err, errlen);
		return NULL;
	}
	g->mapped = 1;
	return g;
}

void gguf_release(const struct gguf *g, const void *p, size_t len)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, b = a + len;
	uintptr_t base = (uintptr_t)g->base;
	if (!g->mapped || a < base || b > base + g->size || b < a)
		return;
	a = (a + pg - 1) / pg * pg; /* whole pages inside the range only */
	b = b / pg * pg;
	if (a < b)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

void gguf_close(struct gguf *g)
{
	if (!g)
		return;
	if (g->kv)
		for (uint64_t i = 0; i < g->n_kv; i++)
			free(g->kv[i].str_off);
	free(g->kv);
	free(g->tensors);
	free(g->kv_idx.slot);
	free(g->t_idx.slot);
	free(g->copy);
	if (g->mapped)
		munmap((void *)g->base, g->size);
	free(g);
}

uint32_t gguf_version(const struct gguf *g) { return g->version; }
uint64_t gguf_n_kv(const struct gguf *g) { return g->n_kv; }
uint64_t gguf_n_tensors(const struct gguf *g) { return g->n_tensors; }
uint32_t gguf_alignment(const struct gguf *g) { return g->alignment; }
uint64_t gguf_data_offset(const struct gguf *g) { return g->data_off; }

int64_t gguf_find_key(const struct gguf *g, const char *key)
{
	if (!key || !g->kv_idx.slot)
		return -1;
	return index_find(g, &g->kv_idx, key_bytes, key, strlen(key), -1);
}

struct gguf_str gguf_key_name(const struct gguf *g, uint64_t i)
{
	struct gguf_str none = { "", 0 };
	return i < g->n_kv ? g->kv[i].key : none;
}

enum gguf_vtype gguf_key_type(const struct gguf *g, uint64_t i)
{
	return i < g->n_kv ? (enum gguf_vtype)g->kv[i].type : (enum gguf_vtype)-1;
}

static const struct kv *find_kv(const struct gguf *g, const char *key)
{
	int64_t i = gguf_find_key(g, key);
	return i < 0 ? NULL : &g->kv[i];
}

/* Read an integer-typed value at p. Returns 0 and sets exactly one of
 * *u (unsigned types) or *s (signed types) via the flag. */
static int read_int(uint32_t type, const uint8_t *p, int *is_signed, uint64_t *u, int64_t *s)
{
	*is_signed = 0;
	switch (type) {
	case GGUF_T_U8: *u = p[0]; return 0;
	case GGUF_T_U16: { uint16_t v; memcpy(&v, p, 2); *u = v; return 0; }
	case GGUF_T_U32: { uint32_t v; memcpy(&v, p, 4); *u = v; return 0; }
	case GGUF_T_U64: memcpy(u, p, 8); return 0;
	default: break;
	}
	*is_signed = 1;
	switch (type) {
	case GGUF_T_I8: *s = (int8_t)p[0]; return 0;
	case GGUF_T_I16: { int16_t v; memcpy(&v, p, 2); *s = v; return 0; }
	case GGUF_T_I32: { int32_t v; memcpy(&v, p, 4); *s = v; return 0; }
	case GGUF_T_I64: memcpy(s, p, 8); return 0;
	default: return -1;
	}
}

/* Integer value of any integer type, range-checked into [lo, hi]. */
static int int_in_range(uint32_t type, const uint8_t *p, int64_t lo, uint64_t hi,
			uint64_t *uo, int64_t *so)
{
	int sg;
	uint64_t u = 0;
	int64_t s = 0;
	if (read_int(type, p, &sg, &u, &s) < 0)
		return -1;
	if (sg) {
		if (s < lo || (s >= 0 && (uint64_t)s > hi))
			return -1;
		*so = s;
		*uo = (uint64_t)s;
	} else {
		if (u > hi)
			return -1;
		*uo = u;
		*so = (int64_t)u;
	}
	return 0;
}

/* The integer at key, if there is one and it lies in [lo, hi]; -1 if not. */
static int get_int(const struct gguf *g, const char *key, int64_t lo, uint64_t hi,
                   uint64_t *u, int64_t *s)
{
	const struct kv *kv = find_kv(g, key);

	return kv ? int_in_range(kv->type, g->base + kv->off, lo, hi, u, s) : -1;
}

int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out)
{
	uint64_t u;
	int64_t s;
	if (get_int(g, key, 0, UINT32_MAX, &u, &s) < 0)
		return -1;
	*out = (uint32_t)u;
	return 0;
}

int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out)
{
	uint64_t u;
	int64_t s;
	if (get_int(g, key, 0, UINT64_MAX, &u, &s) < 0)
		return -1;
	*out = u;
	return 0;
}

int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out)
{
	uint64_t u;
	int64_t s;
	if (get_int(g, key, INT64_MIN, INT64_MAX, &u, &s) < 0)
		return -1;
	*out = s;
	return 0;
}

/* F32 as is; F64 narrowed to float. */
static int read_float(uint32_t type, const uint8_t *p, float *out)
{
	if (type == GGUF_T_F32) {
		memcpy(out, p, 4);
		return 0;
	}
	if (type == GGUF_T_F64) {
		double d;
		memcpy(&d, p, 8);
		*out = (float)d;
		return 0;
	}
	return -1;
}

int gguf_get_f32(const struct gguf *g, const char *key, float *out)
{
	const struct kv *kv = find_kv(g, key);
	return kv ? read_float(kv->type, g->base + kv->off, out) : -1;
}

int gguf_get_bool(const struct gguf *g, const char *key, int *out)
{
	const struct kv *kv = find_kv(g, key);
	if (!kv || kv->type != GGUF_T_BOOL)
		return -1;
	*out = g->base[kv->off] != 0;
	return 0;
}

/* The string whose u64 length field sits at off (validated at open). */
static struct gguf_str str_at(const struct gguf *g, uint64_t off)
{
	struct gguf_str s;
	memcpy(&s.len, g->base + off, 8);
	s.s = (const char *)g->base + off + 8;
	return s;
}

int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out)
{
	const struct kv *kv = find_kv(g, key);
	if (!kv || kv->type != GGUF_T_STRING)
		return -1;
	*out = str_at(g, kv->off);
	return 0;
}

int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype *etype, uint64_t *n)
{
	const struct kv *kv = find_kv(g, key);
	if (!kv || kv->type != GGUF_T_ARRAY)
		return -1;
	if (etype)
		*etype = (enum gguf_vtype)kv->etype;
	if (n)
		*n = kv->n;
	return 0;
}

static const struct kv *find_arr(const struct gguf *g, const char *key, uint64_t i)
{
	const struct kv *kv = find_kv(g, key);
	return kv && kv->type == GGUF_T_ARRAY && i < kv->n ? kv : NULL;
}

int gguf_arr_str(const struct gguf *g, const char *key, uint64_t i, struct gguf_str *out)
{
	const struct kv *kv = find_arr(g, key, i);
	if (!kv || kv->etype != GGUF_T_STRING)
		return -1;
	*out = str_at(g, kv->str_off[i]);
	return 0;
}

int gguf_arr_f32(const struct gguf *g, const char *key, uint64_t i, float *out)
{
	const struct kv *kv = find_arr(g, key, i);
	if (!kv || !scalar_size(kv->etype))
		return -1;
	return read_float(kv->etype, g->base + kv->off + i * scalar_size(kv->etype), out);
}

int gguf_arr_i32(const struct gguf *g, const char *key, uint64_t i, int32_t *out)
{
	const struct kv *kv = find_arr(g, key, i);
	uint64_t u;
	int64_t s;
	if (!kv || !scalar_size(kv->etype) ||
	    int_in_range(kv->etype, g->base + kv->off + i * scalar_size(kv->etype), INT32_MIN,
			 INT32_MAX, &u, &s) < 0)
		return -1;
	*out = (int32_t)s;
	return 0;
}

const void *gguf_arr_data(const struct gguf *g, const char *key)
{
	const struct kv *kv = find_kv(g, key);
	if (!kv || kv->type != GGUF_T_ARRAY || !scalar_size(kv->etype))
		return NULL;
	return g->base + kv->off;
}

const struct gguf_tensor *gguf_tensor(const struct gguf *g, uint64_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
	if (!name || !g->t_idx.slot)
		return NULL;
	int64_t i = index_find(g, &g->t_idx, tname_bytes, name, strlen(name), -1);
	return i < 0 ? NULL : &g->tensors[i];
}
