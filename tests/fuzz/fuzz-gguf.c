/*
 * fuzz-gguf.c — libFuzzer harness for the GGUF reader.
 *
 * Opens the input with gguf_open_mem and, when it opens, walks every
 * accessor over every key, array element and tensor, touching each
 * tensor's first and last data byte, so ASan sees any offset the validator
 * let through. The seed corpus is tests/fuzz/corpus/gguf (tests/fuzz/
 * make-gguf-corpus.py writes it).
 */
#include "plot/gguf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void touch_str(struct gguf_str s)
{
	if (s.len)
		sink += (uint8_t)s.s[0] + (uint8_t)s.s[s.len - 1];
}

static void walk_array(const struct gguf *g, const char *key)
{
	enum gguf_vtype et;
	uint64_t n;
	if (gguf_get_arr(g, key, &et, &n) < 0)
		__builtin_trap();
	const uint8_t *raw = gguf_arr_data(g, key);
	for (uint64_t i = 0; i < n && i < 4096; i++) {
		struct gguf_str s;
		float f;
		int32_t v;
		if (gguf_arr_str(g, key, i, &s) == 0)
			touch_str(s);
		if (gguf_arr_f32(g, key, i, &f) == 0)
			sink += (uint64_t)(f != f);
		if (gguf_arr_i32(g, key, i, &v) == 0)
			sink += (uint32_t)v;
	}
	if (raw && n)
		sink += raw[0];
}

static void walk_kv(const struct gguf *g, uint64_t k)
{
	struct gguf_str name = gguf_key_name(g, k);
	char key[256];
	if (name.len >= sizeof key || memchr(name.s, 0, name.len))
		return; /* cannot be named by a C string */
	memcpy(key, name.s, name.len);
	key[name.len] = 0;
	if (gguf_find_key(g, key) != (int64_t)k)
		__builtin_trap(); /* keys are unique, so lookup must return k */
	uint32_t u32;
	uint64_t u64;
	int64_t i64;
	float f;
	int b;
	struct gguf_str s;
	sink += (uint64_t)gguf_get_u32(g, key, &u32) + (uint64_t)gguf_get_u64(g, key, &u64) +
		(uint64_t)gguf_get_i64(g, key, &i64) + (uint64_t)gguf_get_f32(g, key, &f) +
		(uint64_t)gguf_get_bool(g, key, &b);
	if (gguf_get_str(g, key, &s) == 0)
		touch_str(s);
	if (gguf_key_type(g, k) == GGUF_T_ARRAY)
		walk_array(g, key);
}

static void walk_tensors(const struct gguf *g)
{
	for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor(g, i);
		if (gguf_find_tensor(g, t->name) != t)
			__builtin_trap();
		if (t->nbytes) {
			const uint8_t *p = t->data;
			sink += p[0] + p[t->nbytes - 1];
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct gguf *g = gguf_open_mem(data, size, err, sizeof err);
	if (!g) {
		if (!err[0])
			__builtin_trap(); /* every failure must say why */
		return 0;
	}
	sink += gguf_version(g) + gguf_alignment(g) + gguf_data_offset(g);
	for (uint64_t k = 0; k < gguf_n_kv(g); k++)
		walk_kv(g, k);
	walk_tensors(g);
	gguf_close(g);
	return 0;
}
