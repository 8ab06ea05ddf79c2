/*
 * proto-torture.c — every request type × every field × every way to get it
 * wrong, against a live plotd (tests/cli/daemon-validate.bats).
 *
 * DESIGN
 *   The cases come from the codec's own schema table (proto_schema_field),
 *   so a field added to the table is tortured without touching this file.
 *   For each request type a base request holds every required field with a
 *   valid value; each case then changes one field (top level, or inside the
 *   one element of an object array): left out (required fields), every
 *   msgpack type the field does not take, each bound crossed, a string with
 *   an embedded NUL, and the key twice. "t" and "id" get the duplicate and
 *   wrong-type cases too. Every case must be answered by an err INVALID
 *   carrying its id, on the same connection (a bad field never closes it);
 *   a final ping must be answered ok. Nothing a case sends can act: each
 *   one fails validation before dispatch.
 *
 *   Usage: proto-torture SOCKET. Prints "N cases, all INVALID" and exits 0,
 *   or names the first case that was not answered INVALID and exits 1.
 */
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/client.h"
#include "plot/proto.h"

#define MAX_FIELDS 64

/* Sample values: one of each msgpack type, plus the special ones. */
enum val {
	V_NIL, V_TRUE, V_UINT, V_NEG, V_FLOAT, V_STR, V_BIN, V_ARR_EMPTY, V_ARR_BAD,
	V_MAP, V_N_TYPES,
	V_GOOD, V_NULSTR, V_INF, V_LO, V_HI, V_OMIT,
};
static const char *const val_names[] = {
	"nil", "true", "1", "-1", "0.5", "\"x\"", "bin", "[]", "[true]", "{}",
};

struct mutation {
	int target;            /* field index (fi[]), -1 = "t"/"id" */
	const char *key;       /* for target -1 */
	enum val v;            /* the value given to target */
	int dup;               /* the key twice */
};

struct torture {
	struct client *cl;
	int fd;
	uint64_t id;
	unsigned cases;
	int type;
	struct proto_field_info fi[MAX_FIELDS];
	size_t n;
};

static int pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int is_array(const struct proto_field_info *f)
{
	return f->kind[strlen(f->kind) - 1] == ']';
}

/* Whether the codec must accept sample v for field f (so it is no case). */
static int accepts(const struct proto_field_info *f, enum val v)
{
	const char *k = f->kind;
	if (v == V_NIL)
		return !f->required; /* nil = absent */
	if (!strcmp(k, "u64") || !strcmp(k, "u64n") || !strcmp(k, "u32"))
		return v == V_UINT;
	if (!strcmp(k, "int"))
		return v == V_UINT || (v == V_NEG && f->min <= -1);
	if (!strcmp(k, "bool"))
		return v == V_TRUE;
	if (!strcmp(k, "double"))
		return v == V_UINT || v == V_FLOAT || (v == V_NEG && !(f->has_range && f->dmin > -1));
	if (!strcmp(k, "str") || !strcmp(k, "code"))
		return v == V_STR;
	if (!strcmp(k, "bin"))
		return v == V_STR || v == V_BIN;
	return is_array(f) && v == V_ARR_EMPTY;
}

static int pack_sample(msgpack_packer *pk, enum val v)
{
	switch (v) {
	case V_NIL: return msgpack_pack_nil(pk);
	case V_TRUE: return msgpack_pack_true(pk);
	case V_UINT: return msgpack_pack_uint64(pk, 1);
	case V_NEG: return msgpack_pack_int64(pk, -1);
	case V_FLOAT: return msgpack_pack_double(pk, 0.5);
	case V_STR: return pk_str(pk, "x");
	case V_BIN: return msgpack_pack_bin(pk, 1) || msgpack_pack_bin_body(pk, "x", 1);
	case V_ARR_EMPTY: return msgpack_pack_array(pk, 0);
	case V_ARR_BAD: return msgpack_pack_array(pk, 1) || msgpack_pack_true(pk);
	case V_MAP: return msgpack_pack_map(pk, 0);
	default: return -1;
	}
}

static int pack_fields(struct torture *t, msgpack_packer *pk, const char *parent,
		       const struct mutation *mu);

/* A valid value of f (an object array: one element, its fields valid
 * unless mu targets one of them). */
static int pack_good(struct torture *t, msgpack_packer *pk, size_t i, const struct mutation *mu)
{
	const struct proto_field_info *f = &t->fi[i];
	const char *k = f->kind;
	if (!strcmp(k, "obj[]"))
		return msgpack_pack_array(pk, 1) || pack_fields(t, pk, f->key, mu);
	if (!strcmp(k, "str[]"))
		return msgpack_pack_array(pk, 1) || pk_str(pk, "x");
	if (!strcmp(k, "u64[]"))
		return msgpack_pack_array(pk, 1) || msgpack_pack_uint64(pk, 1);
	if (!strcmp(k, "bool"))
		return msgpack_pack_true(pk);
	if (!strcmp(k, "double"))
		return msgpack_pack_double(pk, f->has_range && f->dmax < 1 ? f->dmax : 1.0);
	if (!strcmp(k, "int"))
		return msgpack_pack_int64(pk, f->min);
	if (!strcmp(k, "str") || !strcmp(k, "code") || !strcmp(k, "bin"))
		return pk_str(pk, "x");
	return msgpack_pack_uint64(pk, 1);
}

/* Crossing a bound: lo = below the least valid value, else above the most. */
static int pack_bound(msgpack_packer *pk, const struct proto_field_info *f, int lo)
{
	if (!strcmp(f->kind, "double")) {
		if (lo)
			return msgpack_pack_double(pk, f->dmin > 0 ? 0.0 : f->dmin - 1);
		return msgpack_pack_double(pk, f->dmax * 2 + 1);
	}
	if (!strcmp(f->kind, "u64"))
		return msgpack_pack_uint64(pk, lo ? f->umin - 1 : f->umax + 1);
	return msgpack_pack_int64(pk, lo ? f->min - 1 : f->max + 1);
}

static int pack_value(struct torture *t, msgpack_packer *pk, size_t i,
		      const struct mutation *mu)
{
	const struct proto_field_info *f = &t->fi[i];
	if ((int)i != mu->target || mu->v == V_GOOD)
		return pack_good(t, pk, i, mu);
	switch (mu->v) {
	case V_NULSTR:
		if (is_array(f) && (msgpack_pack_array(pk, 1)))
			return -1;
		return msgpack_pack_str(pk, 3) || msgpack_pack_str_body(pk, "a\0b", 3);
	case V_INF: return msgpack_pack_double(pk, INFINITY);
	case V_LO: return pack_bound(pk, f, 1);
	case V_HI: return pack_bound(pk, f, 0);
	default: return pack_sample(pk, mu->v);
	}
}

/* Whether field i is in the map being packed: required ones always, the
 * target and the object array that holds it too. */
static int field_packed(struct torture *t, size_t i, const struct mutation *mu)
{
	if ((int)i == mu->target)
		return mu->v != V_OMIT;
	if (t->fi[i].required)
		return 1;
	return mu->target >= 0 && t->fi[mu->target].parent &&
	       !strcmp(t->fi[mu->target].parent, t->fi[i].key) && !t->fi[i].parent;
}

static int pack_fields(struct torture *t, msgpack_packer *pk, const char *parent,
		       const struct mutation *mu)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		if ((parent ? t->fi[i].parent && !strcmp(t->fi[i].parent, parent)
			    : !t->fi[i].parent) && field_packed(t, i, mu))
			n += 1 + ((int)i == mu->target && mu->dup);
	int extra = parent ? 0 : 2 + (mu->target < 0 && mu->dup);
	if (msgpack_pack_map(pk, n + (size_t)extra))
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		int mine = parent ? t->fi[i].parent && !strcmp(t->fi[i].parent, parent)
				  : !t->fi[i].parent;
		if (!mine || !field_packed(t, i, mu))
			continue;
		for (int r = 0; r <= ((int)i == mu->target && mu->dup); r++)
			if (pk_str(pk, t->fi[i].key) || pack_value(t, pk, i, mu))
				return -1;
	}
	return 0;
}

/* The frame of one case: the request's t and id, then its fields. */
static int pack_case(struct torture *t, msgpack_sbuffer *sb, const struct mutation *mu)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (pack_fields(t, &pk, NULL, mu))
		return -1;
	for (int r = 0; r <= (mu->target < 0 && mu->dup && !strcmp(mu->key, "t")); r++)
		if (pk_str(&pk, "t") || pk_str(&pk, proto_type_name(t->type)))
			return -1;
	for (int r = 0; r <= (mu->target < 0 && mu->dup && !strcmp(mu->key, "id")); r++) {
		if (pk_str(&pk, "id"))
			return -1;
		if (mu->target < 0 && !mu->dup ? pk_str(&pk, "x") : msgpack_pack_uint64(&pk, t->id))
			return -1;
	}
	return 0;
}

static void describe(const struct torture *t, const struct mutation *mu, char *out, size_t len)
{
	const char *key = mu->target < 0 ? mu->key : t->fi[mu->target].key;
	const char *parent = mu->target >= 0 && t->fi[mu->target].parent
				     ? t->fi[mu->target].parent : "";
	const char *what = mu->dup ? "twice" : mu->v == V_OMIT ? "missing"
		: mu->v == V_NULSTR ? "with a NUL" : mu->v == V_INF ? "= inf"
		: mu->v == V_LO ? "below its range" : mu->v == V_HI ? "above its range"
		: mu->v < V_N_TYPES ? val_names[mu->v] : "?";
	snprintf(out, len, "%s: %s%s%s %s%s", proto_type_name(t->type), parent, *parent ? "[0]." : "",
		 key, mu->v < V_N_TYPES && !mu->dup ? "= " : "", what);
}

/* Send one case and check it is answered INVALID with its id. */
static int run_case(struct torture *t, const struct mutation *mu)
{
	char err[512], what[160];
	msgpack_sbuffer sb;
	struct proto_msg rep;
	unsigned char hdr[4];

	t->id++;
	t->cases++;
	describe(t, mu, what, sizeof what);
	msgpack_sbuffer_init(&sb);
	int rc = pack_case(t, &sb, mu);
	hdr[0] = (unsigned char)(sb.size >> 24);
	hdr[1] = (unsigned char)(sb.size >> 16);
	hdr[2] = (unsigned char)(sb.size >> 8);
	hdr[3] = (unsigned char)sb.size;
	if (!rc)
		rc = proto_write_all(t->fd, hdr, 4, err, sizeof err) ||
		     proto_write_all(t->fd, sb.data, sb.size, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		fprintf(stderr, "proto-torture: %s: cannot send\n", what);
		return -1;
	}
	rc = client_recv(t->cl, &rep, 10000, err, sizeof err);
	if (rc) {
		fprintf(stderr, "proto-torture: %s: no reply: %s\n", what, err);
		return -1;
	}
	int ok = rep.type == PROTO_T_ERR && rep.u.error.code == PROTO_E_INVALID &&
		 (rep.id == t->id || (mu->target < 0 && !strcmp(mu->key, "id") && !mu->dup));
	if (!ok)
		fprintf(stderr, "proto-torture: %s: answered %s %s (id %llu): %s\n", what,
			proto_type_name(rep.type),
			rep.type == PROTO_T_ERR ? proto_code_name(rep.u.error.code) : "",
			(unsigned long long)rep.id,
			rep.type == PROTO_T_ERR && rep.u.error.message ? rep.u.error.message : "");
	proto_msg_clear(&rep);
	return ok ? 0 : -1;
}

/* Every case for field i. */
static int torture_field(struct torture *t, size_t i)
{
	const struct proto_field_info *f = &t->fi[i];
	struct mutation mu = { .target = (int)i };
	int bad = 0;

	if (f->required) {
		mu.v = V_OMIT;
		bad |= run_case(t, &mu);
	}
	for (int v = 0; v < V_N_TYPES; v++) {
		if (accepts(f, (enum val)v))
			continue;
		mu.v = (enum val)v;
		bad |= run_case(t, &mu);
	}
	static const enum val special[] = { V_NULSTR, V_INF, V_LO, V_HI };
	for (size_t s = 0; s < sizeof special / sizeof special[0]; s++) {
		int str = !strcmp(f->kind, "str") || !strcmp(f->kind, "str[]");
		int dbl = !strcmp(f->kind, "double");
		if ((special[s] == V_NULSTR && !str) || (special[s] == V_INF && !dbl))
			continue;
		if (special[s] == V_LO && !(f->has_range && (dbl || (!strcmp(f->kind, "u64")
				? f->umin > 0 : f->min > INT64_MIN))))
			continue;
		if (special[s] == V_HI && !(f->has_range && (dbl || (!strcmp(f->kind, "u64")
				? f->umax < UINT64_MAX : f->max < INT64_MAX))))
			continue;
		mu.v = special[s];
		bad |= run_case(t, &mu);
	}
	mu.v = V_GOOD;
	mu.dup = 1;
	bad |= run_case(t, &mu);
	return bad;
}

static int torture_type(struct torture *t, int type)
{
	int bad = 0;
	t->type = type;
	for (t->n = 0; t->n < MAX_FIELDS && proto_schema_field(type, 0, t->n, &t->fi[t->n]);)
		t->n++;
	for (size_t i = 0; i < t->n; i++)
		bad |= torture_field(t, i);
	struct mutation head[] = {
		{ .target = -1, .key = "t", .dup = 1, .v = V_GOOD },
		{ .target = -1, .key = "id", .dup = 1, .v = V_GOOD },
		{ .target = -1, .key = "id", .v = V_STR },
	};
	for (size_t h = 0; h < sizeof head / sizeof head[0]; h++)
		bad |= run_case(t, &head[h]);
	return bad;
}

int main(int argc, char **argv)
{
	char err[512];
	struct torture t = { 0 };
	struct proto_msg ping, rep;

	if (argc != 2) {
		fprintf(stderr, "usage: proto-torture SOCKET\n");
		return 2;
	}
	if (client_connect(argv[1], NULL, &t.cl, err, sizeof err)) {
		fprintf(stderr, "proto-torture: %s\n", err);
		return 1;
	}
	t.fd = client_fd(t.cl);
	t.id = 1000;
	int bad = 0;
	for (int type = PROTO_T_HELLO; type <= PROTO_T_SHUTDOWN; type++)
		bad |= torture_type(&t, type);
	proto_msg_init(&ping, PROTO_T_PING, 0);
	if (client_call(t.cl, &ping, &rep, 10000, err, sizeof err)) {
		fprintf(stderr, "proto-torture: the final ping failed: %s\n", err);
		bad = 1;
	}
	proto_msg_clear(&rep);
	client_free(t.cl);
	if (bad)
		return 1;
	printf("%u cases, all INVALID\n", t.cases);
	return 0;
}
