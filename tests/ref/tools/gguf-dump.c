/*
 * gguf-dump — print what lib/llm/gguf/gguf.c reads from a GGUF file, one fact per
 * line, so tests/ref/test_gguf.py can compare it with the gguf Python
 * package (the oracle). Not a user tool.
 *
 *   kv <key> <type> <value>           scalars (floats as %.9g, strings hex)
 *   arr <key> <etype> <n> <first> <last>   arrays (elements as above; "-" if empty)
 *   tensor <name> <type> <n_dims> <ne0..ne3> <offset> <nbytes> <file offset>
 * Exit status 1 with the reader's error on stderr if the file does not open.
 */
#include "plot/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void put_hex(const char *s, uint64_t n)
{
	if (!n)
		fputs("-", stdout);
	for (uint64_t i = 0; i < n; i++)
		printf("%02x", (unsigned char)s[i]);
}

static void put_scalar(const struct gguf *g, const char *key, enum gguf_vtype t)
{
	struct gguf_str s;
	uint64_t u;
	int64_t i;
	float f;
	int b;
	if (t == GGUF_T_STRING && gguf_get_str(g, key, &s) == 0)
		put_hex(s.s, s.len);
	else if ((t == GGUF_T_F32 || t == GGUF_T_F64) && gguf_get_f32(g, key, &f) == 0)
		printf("%.9g", f);
	else if (t == GGUF_T_BOOL && gguf_get_bool(g, key, &b) == 0)
		printf("%d", b);
	else if (gguf_get_u64(g, key, &u) == 0)
		printf("%" PRIu64, u);
	else if (gguf_get_i64(g, key, &i) == 0)
		printf("%" PRId64, i);
	else
		printf("?");
}

static void put_elem(const struct gguf *g, const char *key, enum gguf_vtype et, uint64_t i)
{
	struct gguf_str s;
	float f;
	int32_t v;
	if (et == GGUF_T_STRING && gguf_arr_str(g, key, i, &s) == 0)
		put_hex(s.s, s.len);
	else if ((et == GGUF_T_F32 || et == GGUF_T_F64) && gguf_arr_f32(g, key, i, &f) == 0)
		printf("%.9g", f);
	else if (gguf_arr_i32(g, key, i, &v) == 0)
		printf("%" PRId32, v);
	else
		printf("?");
}

static void put_kv(const struct gguf *g, uint64_t k)
{
	struct gguf_str name = gguf_key_name(g, k);
	char key[512];
	snprintf(key, sizeof key, "%.*s", (int)name.len, name.s);
	enum gguf_vtype t = gguf_key_type(g, k);
	if (t != GGUF_T_ARRAY) {
		printf("kv %s %d ", key, (int)t);
		put_scalar(g, key, t);
	} else {
		enum gguf_vtype et;
		uint64_t n;
		gguf_get_arr(g, key, &et, &n);
		printf("arr %s %d %" PRIu64 " ", key, (int)et, n);
		if (n == 0 || et == GGUF_T_ARRAY) {
			printf("- -");
		} else {
			put_elem(g, key, et, 0);
			putchar(' ');
			put_elem(g, key, et, n - 1);
		}
	}
	putchar('\n');
}

int main(int argc, char **argv)
{
	char err[512];
	if (argc != 2) {
		fprintf(stderr, "usage: gguf-dump FILE\n");
		return 2;
	}
	struct gguf *g = gguf_open(argv[1], err, sizeof err);
	if (!g) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("version %u\nalignment %u\n", gguf_version(g), gguf_alignment(g));
	for (uint64_t k = 0; k < gguf_n_kv(g); k++)
		put_kv(g, k);
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor(g, i);
		printf("tensor %s %u %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		       " %" PRIu64 " %" PRIu64 "\n", t->name, t->type, t->n_dims, t->ne[0], t->ne[1],
		       t->ne[2], t->ne[3], t->offset, t->nbytes, gguf_data_offset(g) + t->offset);
		if (gguf_find_tensor(g, t->name) != t) {
			fprintf(stderr, "gguf_find_tensor('%s') did not find it\n", t->name);
			return 1;
		}
	}
	gguf_close(g);
	return 0;
}
