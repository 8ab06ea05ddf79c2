/*
 * record.c — the task record's msgpack codec (msgpack-c).
 *
 * FORMAT
 *   One msgpack map with string keys: "v" (format version, 1), "id",
 *   "prio", "state", "cost", "created", "started", "ended", "deadline",
 *   "owner", "attempts" (unsigned ints), "model", "label", "error", "key"
 *   (str or nil), "output" and "request" (bin). Keys are looked up by name, so later versions may add
 *   keys; unknown keys are skipped, duplicate keys are an error.
 *
 * DECODE
 *   The input is hostile until proven otherwise. The map header is read by
 *   hand, then each key and value is unpacked one object at a time with
 *   msgpack_unpack_next() so every error names the field and its byte
 *   offset. Values must be scalars (no nested arrays or maps, which would
 *   make msgpack-c allocate by a declared count), strings are bounded and
 *   NUL-free, integers range-checked, and the map must end exactly at len.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/store.h"

#define REC_VERSION 1
#define REC_MAX_KEYS 64
#define REC_MAX_KEYLEN 32
#define REC_MAX_STR 4096
#define REC_MAX_OUTPUT ((uint64_t)256 << 20)

enum ftype { F_U64, F_U32, F_ENUM, F_STR, F_BIN };

struct field {
	const char *name;
	enum ftype type;
	uint64_t max;     /* value bound (ints) or length bound (str/bin) */
	size_t off;       /* offsetof in struct store_record */
	int required;
};

#define OFF(m) offsetof(struct store_record, m)
static const struct field fields[] = {
	{ "v", F_U64, REC_VERSION, 0, 1 }, /* checked, not stored */
	{ "id", F_U64, UINT64_MAX, OFF(id), 1 },
	{ "prio", F_ENUM, 3, OFF(priority), 1 },
	{ "state", F_ENUM, 6, OFF(state), 1 },
	{ "cost", F_U64, UINT64_MAX, OFF(cost), 1 },
	{ "created", F_U64, UINT64_MAX, OFF(created_ns), 0 },
	{ "started", F_U64, UINT64_MAX, OFF(started_ns), 0 },
	{ "ended", F_U64, UINT64_MAX, OFF(ended_ns), 0 },
	{ "deadline", F_U64, UINT64_MAX, OFF(deadline_ns), 0 },
	{ "owner", F_U32, UINT32_MAX, OFF(owner_uid), 0 },
	{ "model", F_STR, REC_MAX_STR, OFF(model), 0 },
	{ "label", F_STR, REC_MAX_STR, OFF(label), 0 },
	{ "error", F_STR, REC_MAX_STR, OFF(error), 0 },
	{ "output", F_BIN, REC_MAX_OUTPUT, OFF(output), 0 },
	{ "attempts", F_U32, UINT32_MAX, OFF(attempts), 0 },
	{ "key", F_STR, REC_MAX_STR, OFF(key), 0 },
	{ "request", F_BIN, REC_MAX_OUTPUT, OFF(request), 0 },
};
#define NFIELDS (sizeof fields / sizeof fields[0])

/* ---- encode --------------------------------------------------------------- */

static void pack_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, k, n);
}

static void pack_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	pack_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void pack_str(msgpack_packer *pk, const char *k, const char *s)
{
	pack_key(pk, k);
	if (!s) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int store_record_encode(const struct store_record *r, char **buf, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, NFIELDS);
	pack_u64(&pk, "v", REC_VERSION);
	pack_u64(&pk, "id", r->id);
	pack_u64(&pk, "prio", (uint64_t)r->priority);
	pack_u64(&pk, "state", (uint64_t)r->state);
	pack_u64(&pk, "cost", r->cost);
	pack_u64(&pk, "created", r->created_ns);
	pack_u64(&pk, "started", r->started_ns);
	pack_u64(&pk, "ended", r->ended_ns);
	pack_u64(&pk, "deadline", r->deadline_ns);
	pack_u64(&pk, "owner", r->owner_uid);
	pack_str(&pk, "model", r->model);
	pack_str(&pk, "label", r->label);
	pack_str(&pk, "error", r->error);
	pack_key(&pk, "output"); /* output NULL: none here (output_len says how long) */
	msgpack_pack_bin(&pk, r->output ? r->output_len : 0);
	if (r->output && r->output_len)
		msgpack_pack_bin_body(&pk, r->output, r->output_len);
	pack_u64(&pk, "attempts", r->attempts);
	pack_str(&pk, "key", r->key);
	pack_key(&pk, "request");
	msgpack_pack_bin(&pk, r->request_len);
	if (r->request_len)
		msgpack_pack_bin_body(&pk, r->request, r->request_len);
	if (!sb.data) { /* sbuffer write failed to allocate */
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*len = sb.size;
	*buf = msgpack_sbuffer_release(&sb);
	return 0;
}

/* ---- decode ----------------------------------------------------------------- */

struct dec {
	const unsigned char *b;
	size_t len, off;
	char *err;
	size_t errlen;
};

static int dec_fail(struct dec *d, const char *field, size_t at, const char *what)
{
	if (field)
		snprintf(d->err, d->errlen, "record: field \"%s\": %s at offset %zu", field, what, at);
	else
		snprintf(d->err, d->errlen, "record: %s at offset %zu", what, at);
	return -1;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int dec_map_header(struct dec *d, uint32_t *n)
{
	if (d->len < 1)
		return dec_fail(d, NULL, 0, "empty input");
	unsigned char c = d->b[0];
	int hl = (c & 0xf0) == 0x80 ? 1 : c == 0xde ? 3 : c == 0xdf ? 5 : 0;
	if (!hl)
		return dec_fail(d, NULL, 0, "not a msgpack map");
	if (d->len < (size_t)hl)
		return dec_fail(d, NULL, 0, "truncated map header");
	*n = hl == 1 ? (c & 0x0f) : (uint32_t)be(d->b + 1, hl - 1);
	if (*n > REC_MAX_KEYS)
		return dec_fail(d, NULL, 0, "too many keys");
	d->off = (size_t)hl;
	return 0;
}

static int is_container(unsigned char c)
{
	return (c & 0xf0) == 0x80 || (c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd ||
	       c == 0xde || c == 0xdf;
}

/* Unpack the next object at d->off into res; names field on error. */
static int dec_next(struct dec *d, msgpack_unpacked *res, const char *field)
{
	size_t at = d->off;
	if (at >= d->len)
		return dec_fail(d, field, at, "truncated");
	if (is_container(d->b[at]))
		return dec_fail(d, field, at, "nested array or map not allowed");
	msgpack_unpack_return rc = msgpack_unpack_next(res, (const char *)d->b, d->len, &d->off);
	if (rc == MSGPACK_UNPACK_CONTINUE)
		return dec_fail(d, field, at, "truncated");
	if (rc < 0)
		return dec_fail(d, field, at, "malformed msgpack");
	return 0;
}

static const struct field *find_field(const msgpack_object_str *k)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strlen(fields[i].name) == k->size && memcmp(fields[i].name, k->ptr, k->size) == 0)
			return &fields[i];
	return NULL;
}

static int dec_uint(struct dec *d, const struct field *f, const msgpack_object *o,
		    size_t at, struct store_record *r)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return dec_fail(d, f->name, at, "not an unsigned integer");
	uint64_t v = o->via.u64;
	if (f == &fields[0] && v != REC_VERSION)
		return dec_fail(d, f->name, at, "unsupported version");
	if (v > f->max)
		return dec_fail(d, f->name, at, "out of range");
	char *base = (char *)r;
	if (f->type == F_U64 && f != &fields[0])
		*(uint64_t *)(base + f->off) = v;
	else if (f->type == F_U32)
		*(uint32_t *)(base + f->off) = (uint32_t)v;
	else if (f->type == F_ENUM)
		*(int *)(base + f->off) = (int)v;
	return 0;
}

static int dec_bytes(struct dec *d, const struct field *f, const msgpack_object *o,
		     size_t at, struct store_record *r)
{
	char **dst = (char **)((char *)r + f->off);
	if (o->type == MSGPACK_OBJECT_NIL && f->type == F_STR)
		return 0;
	int want = f->type == F_STR ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
	if ((int)o->type != want)
		return dec_fail(d, f->name, at, f->type == F_STR ? "not a string" : "not binary");
	const char *p = f->type == F_STR ? o->via.str.ptr : o->via.bin.ptr;
	uint32_t n = f->type == F_STR ? o->via.str.size : o->via.bin.size;
	if (n > f->max)
		return dec_fail(d, f->name, at, "too long");
	if (f->type == F_STR && n && memchr(p, '\0', n))
		return dec_fail(d, f->name, at, "string holds a NUL byte");
	char *s = malloc((size_t)n + 1);
	if (!s)
		return dec_fail(d, f->name, at, "out of memory");
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	*dst = s;
	if (f->off == OFF(output))
		r->output_len = n;
	else if (f->off == OFF(request))
		r->request_len = n;
	return 0;
}

/* One key/value pair; seen is a bitmask of fields already decoded. */
static int dec_pair(struct dec *d, msgpack_unpacked *res, struct store_record *r,
		    uint32_t *seen)
{
	size_t at = d->off;
	if (dec_next(d, res, NULL) < 0)
		return -1;
	const msgpack_object *k = &res->data;
	if (k->type != MSGPACK_OBJECT_STR || k->via.str.size > REC_MAX_KEYLEN)
		return dec_fail(d, NULL, at, "key is not a short string");
	const struct field *f = find_field(&k->via.str);
	const char *name = f ? f->name : "(unknown)";
	at = d->off;
	if (dec_next(d, res, name) < 0)
		return -1;
	if (!f)
		return 0; /* a later version's key: skipped */
	uint32_t bit = 1u << (f - fields);
	if (*seen & bit)
		return dec_fail(d, f->name, at, "duplicate key");
	*seen |= bit;
	if (f->type == F_STR || f->type == F_BIN)
		return dec_bytes(d, f, &res->data, at, r);
	return dec_uint(d, f, &res->data, at, r);
}

static int dec_required(struct dec *d, uint32_t seen)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (fields[i].required && !(seen & (1u << i)))
			return dec_fail(d, fields[i].name, d->off, "missing");
	return 0;
}

int store_record_decode(const void *buf, size_t len, struct store_record *r,
			char *err, size_t errlen)
{
	struct dec d = { buf, len, 0, err, errlen };
	msgpack_unpacked res;
	uint32_t n, seen = 0;
	int rc = 0;

	memset(r, 0, sizeof *r);
	if (dec_map_header(&d, &n) < 0)
		return -1;
	msgpack_unpacked_init(&res);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = dec_pair(&d, &res, r, &seen);
	msgpack_unpacked_destroy(&res);
	if (rc == 0)
		rc = dec_required(&d, seen);
	if (rc == 0 && d.off != len)
		rc = dec_fail(&d, NULL, d.off, "trailing bytes after the record");
	if (rc < 0)
		store_record_clear(r);
	return rc;
}

void store_record_clear(struct store_record *r)
{
	free(r->model);
	free(r->label);
	free(r->error);
	free(r->output);
	free(r->key);
	free(r->request);
	memset(r, 0, sizeof *r);
}
