/*
 * test-tok.c — the tokenizer on tiny hand-built vocabularies: BPE merge
 * order by rank, SPM merge order by score with byte fallback, special
 * tokens with parsing on and off, eot detection, the streaming detokenizer
 * never splitting a UTF-8 character, odd vocabularies failing cleanly, and
 * tok_from_gguf naming the bad key of a GGUF file written here.
 * Real models are compared with llama.cpp in tests/ref (make check-peer).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/gguf.h"
#include "plot/tok.h"

#define MAXV 400

struct vocab {
	const char *tok[MAXV];
	char store[MAXV][16];
	float score[MAXV];
	int32_t type[MAXV];
	uint32_t n;
	const char *merges[8];
	uint32_t n_merges;
};

static uint32_t add(struct vocab *v, const char *text, float score, int32_t type)
{
	snprintf(v->store[v->n], sizeof v->store[v->n], "%s", text);
	v->tok[v->n] = v->store[v->n];
	v->score[v->n] = score;
	v->type[v->n] = type;
	return v->n++;
}

static struct tok_desc desc_of(struct vocab *v, enum tok_model model, const char *pre)
{
	return (struct tok_desc){
		.model = model, .pre = pre, .n_tokens = v->n, .tokens = v->tok, .scores = v->score,
		.types = v->type, .n_merges = v->n_merges, .merges = v->merges,
		.bos = -1, .eos = -1, .eot = -1, .eom = -1, .unk = -1, .pad = -1,
		.add_bos = -1, .add_eos = -1, .add_space_prefix = -1,
	};
}

/* GPT-2's byte -> printable code point map, written out independently of
 * lib/llm/tok/tok-bpe.c: printable Latin-1 bytes map to themselves, the other
 * 68 to U+0100.. in byte order. */
static void byte_char(unsigned b, char *out)
{
	unsigned cp = b, k = 0;

	if (!((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)) {
		for (unsigned x = 0; x < b; x++)
			if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || x >= 0xae))
				k++;
		cp = 256 + k;
	}
	if (cp < 0x80) {
		out[0] = (char)cp, out[1] = 0;
	} else {
		out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
	}
}

/* 256 byte tokens (id = byte), then the given merges' results. */
static void bpe_vocab(struct vocab *v, const char *const *merges, uint32_t n_merges)
{
	memset(v, 0, sizeof *v);
	for (unsigned b = 0; b < 256; b++) {
		char c[3];
		byte_char(b, c);
		add(v, c, 0, 1);
	}
	for (uint32_t i = 0; i < n_merges; i++) {
		char joined[16];
		const char *sp = strchr(merges[i], ' ');
		snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
		add(v, joined, 0, 1);
		v->merges[v->n_merges++] = merges[i];
	}
}

static struct tok *bpe_tok(struct vocab *v, const char *const *merges, uint32_t n)
{
	char err[256] = "";
	bpe_vocab(v, merges, n);
	add(v, "<|im_end|>", 0, 3);  /* control */
	add(v, "<tool>", 0, 4);      /* user-defined */
	struct tok_desc d = desc_of(v, TOK_MODEL_BPE, "gpt-2");
	struct tok *t = tok_new(&d, err, sizeof err);
	if (!t)
		fail_msg("tok_new: %s", err);
	return t;
}

static void expect_ids(const struct tok *t, const char *text, unsigned flags, const int32_t *want,
                       size_t n)
{
	struct tok_ids ids = { 0 };
	char err[256];

	assert_int_equal(tok_encode(t, text, strlen(text), flags, &ids, err, sizeof err), 0);
	if (ids.n != n)
		fail_msg("'%s': %zu ids, want %zu", text, ids.n, n);
	for (size_t i = 0; i < n; i++)
		if (ids.v[i] != want[i])
			fail_msg("'%s': id[%zu] = %d, want %d", text, i, ids.v[i], want[i]);
	tok_ids_free(&ids);
}

static const char *const merges_ab[] = { "a b", "ab c", "\xc4\xa0 a" };

static void test_bpe_merges_by_rank(void **state)
{
	struct vocab v;
	struct tok *t = bpe_tok(&v, merges_ab, 3);
	/* "abc" -> a b first (rank 0) then ab c; " ab" -> a b beats Ġ a */
	const int32_t want[] = { 257, ' ', 256 };

	expect_ids(t, "abc ab", 0, want, 3);
	tok_free(t);

	static const char *const bc_first[] = { "b c", "a b" };
	t = bpe_tok(&v, bc_first, 2);
	const int32_t want2[] = { 'a', 256 };  /* b c has the better rank */
	expect_ids(t, "abc", 0, want2, 2);
	tok_free(t);

	static const char *const aa[] = { "a a" };
	t = bpe_tok(&v, aa, 1);
	const int32_t want3[] = { 256, 'a' };  /* equal ranks: leftmost pair first */
	expect_ids(t, "aaa", 0, want3, 2);
	tok_free(t);
}

static void test_bpe_special_parsing(void **state)
{
	struct vocab v;
	struct tok *t = bpe_tok(&v, merges_ab, 3);
	const int32_t on[] = { 'x', 259, 'y' };
	const int32_t off[] = { 'x', '<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>', 'y' };
	const int32_t user[] = { 256, 260, 'c' }; /* user-defined always matches */

	expect_ids(t, "x<|im_end|>y", TOK_PARSE_SPECIAL, on, 3);
	expect_ids(t, "x<|im_end|>y", 0, off, 12);
	expect_ids(t, "ab<tool>c", 0, user, 3);
	assert_int_equal(tok_eot(t), 259);  /* found by text, no metadata */
	assert_true(tok_is_eog(t, 259));
	assert_false(tok_is_eog(t, 'x'));
	tok_free(t);
}

static void test_bpe_invalid_utf8(void **state)
{
	struct vocab v;
	struct tok *t = bpe_tok(&v, merges_ab, 3);
	const int32_t want[] = { 0xef, 0xbf, 0xbd, 'a' }; /* U+FFFD's bytes */

	expect_ids(t, "\xff" "a", 0, want, 4);
	tok_free(t);
}

static void test_bpe_decode(void **state)
{
	struct vocab v;
	struct tok *t = bpe_tok(&v, merges_ab, 3);
	const int32_t ids[] = { 258, 'b', 259, 0xc3, 0xa9 };
	char *s;
	size_t n;

	assert_int_equal(tok_decode(t, ids, 5, 0, &s, &n), 0);
	assert_string_equal(s, " ab\xc3\xa9");
	free(s);
	assert_int_equal(tok_decode(t, ids, 5, TOK_DECODE_SPECIAL, &s, &n), 0);
	assert_string_equal(s, " ab<|im_end|>\xc3\xa9");
	free(s);
	tok_free(t);
}

/* SPM: <unk> <s> </s>, pieces with scores, then 256 byte tokens at 9.. */
static struct tok *spm_tok(struct vocab *v, int with_ab_word)
{
	char err[256] = "";

	memset(v, 0, sizeof *v);
	add(v, "<unk>", 0, 2);
	add(v, "<s>", 0, 3);
	add(v, "</s>", 0, 3);
	add(v, "\xe2\x96\x81", -1, 1);            /* 3: ▁ */
	add(v, "a", -2, 1);                       /* 4 */
	add(v, "b", -2, 1);                       /* 5 */
	add(v, "\xe2\x96\x81" "a", -1.5f, 1);     /* 6: ▁a */
	add(v, "ab", -0.5f, 1);                   /* 7 */
	add(v, with_ab_word ? "\xe2\x96\x81" "ab" : "zz", -0.1f, 1); /* 8 */
	for (unsigned b = 0; b < 256; b++) {
		char hex[8];
		snprintf(hex, sizeof hex, "<0x%02X>", b);
		add(v, hex, 0, 6);
	}
	struct tok_desc d = desc_of(v, TOK_MODEL_SPM, NULL);
	struct tok *t = tok_new(&d, err, sizeof err);
	if (!t)
		fail_msg("tok_new: %s", err);
	return t;
}

static void test_spm_merges_by_score(void **state)
{
	struct vocab v;
	struct tok *t = spm_tok(&v, 1);
	const int32_t whole[] = { 1, 8 };     /* bos, ▁ab: a+b (-0.5) beats ▁+a (-1.5) */
	const int32_t split[] = { 3, 7, 6 }; /* without ▁ab: ▁ ab ▁a */

	expect_ids(t, "ab", TOK_ADD_SPECIAL, whole, 2);
	tok_free(t);
	t = spm_tok(&v, 0);
	expect_ids(t, "ab a", 0, split, 3);
	tok_free(t);
}

static void test_spm_byte_fallback(void **state)
{
	struct vocab v;
	struct tok *t = spm_tok(&v, 1);
	const int32_t want[] = { 3, 9 + 0xc3, 9 + 0xa9, 4 }; /* ▁ é as bytes, then a */
	char *s;
	size_t n;

	expect_ids(t, "\xc3\xa9" "a", 0, want, 4);
	assert_int_equal(tok_decode(t, want, 4, 0, &s, &n), 0);
	assert_string_equal(s, " \xc3\xa9" "a");
	free(s);
	assert_int_equal(tok_decode(t, want, 4, TOK_DECODE_STRIP, &s, &n), 0);
	assert_string_equal(s, "\xc3\xa9" "a");
	free(s);
	assert_int_equal(tok_bos(t), 1);
	assert_int_equal(tok_unk(t), 0);
	tok_free(t);
}

static void test_stream_holds_partial_utf8(void **state)
{
	struct vocab v;
	struct tok *t = spm_tok(&v, 1);
	struct tok_stream s;
	char *out = malloc(tok_stream_bound(t));
	const unsigned char emoji[4] = { 0xf0, 0x9f, 0x98, 0x80 }; /* U+1F600 */

	tok_stream_init(&s, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tok_stream_push(t, &s, 9 + emoji[i], out), 0);
	assert_int_equal(tok_stream_push(t, &s, 9 + emoji[3], out), 4);
	assert_memory_equal(out, emoji, 4);

	/* a byte that cannot start a character, and one cut off by another */
	assert_int_equal(tok_stream_push(t, &s, 9 + 0xff, out), 3);
	assert_memory_equal(out, "\xef\xbf\xbd", 3);
	assert_int_equal(tok_stream_push(t, &s, 9 + 0xf0, out), 0);
	assert_int_equal(tok_stream_push(t, &s, 4, out), 4);
	assert_memory_equal(out, "\xef\xbf\xbd" "a", 4);

	/* an unfinished character at the end becomes U+FFFD */
	assert_int_equal(tok_stream_push(t, &s, 9 + 0xe2, out), 0);
	assert_int_equal(tok_stream_flush(&s, out), 3);
	assert_int_equal(tok_stream_flush(&s, out), 0);
	free(out);
	tok_free(t);
}

static void test_odd_vocabularies(void **state)
{
	struct vocab v;
	char err[256];

	bpe_vocab(&v, merges_ab, 3);
	add(&v, "a", 0, 1); /* duplicate of id 'a' */
	struct tok_desc d = desc_of(&v, TOK_MODEL_BPE, "gpt-2");
	assert_null(tok_new(&d, err, sizeof err));
	assert_non_null(strstr(err, "tokenizer.ggml.tokens["));

	bpe_vocab(&v, merges_ab, 3);
	d = desc_of(&v, TOK_MODEL_BPE, "no-such-pre");
	assert_null(tok_new(&d, err, sizeof err));
	assert_non_null(strstr(err, "tokenizer.ggml.pre"));

	d = desc_of(&v, TOK_MODEL_BPE, "gpt-2");
	d.n_merges = 0;
	assert_null(tok_new(&d, err, sizeof err));
	assert_non_null(strstr(err, "tokenizer.ggml.merges"));

	/* out-of-range ids fall back to the model default, a merge without a space is ignored,
	 * an empty token never matches */
	static const char *const odd[] = { "nospace", "a b", " ", "" };
	bpe_vocab(&v, odd + 1, 1);
	add(&v, "", 0, 1);
	v.merges[0] = odd[0], v.merges[1] = odd[1], v.merges[2] = odd[2], v.merges[3] = odd[3];
	v.n_merges = 4;
	d = desc_of(&v, TOK_MODEL_BPE, "gpt-2");
	d.bos = 1 << 30, d.eos = 5;
	struct tok *t = tok_new(&d, err, sizeof err);
	assert_non_null(t);
	assert_int_equal(tok_bos(t), 11); /* llama.cpp's BPE default, in range here */
	assert_int_equal(tok_eos(t), 5);
	const int32_t want[] = { 256 };
	expect_ids(t, "ab", TOK_ADD_SPECIAL, want, 1);
	assert_null(tok_text(t, -1, NULL));
	assert_int_equal(tok_attr(t, 1 << 30), 0);
	tok_free(t);
}

/* ---- tok_from_gguf on GGUF files written here --------------------------- */

struct wbuf {
	unsigned char p[4096];
	size_t n;
};

static void wput(struct wbuf *w, const void *src, size_t n)
{
	assert_true(w->n + n <= sizeof w->p);
	memcpy(w->p + w->n, src, n);
	w->n += n;
}

static void wu32(struct wbuf *w, uint32_t v) { wput(w, &v, 4); }
static void wu64(struct wbuf *w, uint64_t v) { wput(w, &v, 8); }

static void wstr(struct wbuf *w, const char *s)
{
	wu64(w, strlen(s));
	wput(w, s, strlen(s));
}

static void wkey_str(struct wbuf *w, const char *k, const char *v)
{
	wstr(w, k);
	wu32(w, 8);
	wstr(w, v);
}

static void wkey_strs(struct wbuf *w, const char *k, const char *const *v, uint64_t n)
{
	wstr(w, k);
	wu32(w, 9);
	wu32(w, 8);
	wu64(w, n);
	for (uint64_t i = 0; i < n; i++)
		wstr(w, v[i]);
}

static void wkey_f32s(struct wbuf *w, const char *k, uint64_t n)
{
	wstr(w, k);
	wu32(w, 9);
	wu32(w, 6);
	wu64(w, n);
	for (uint64_t i = 0; i < n; i++) {
		float f = -(float)i;
		wput(w, &f, 4);
	}
}

/* A v3 file with no tensors; bad picks the fault: 0 none, 1 no model key,
 * 2 tokens not strings, 3 too few scores, 4 unknown model. */
static struct tok *from_gguf(int bad, struct wbuf *w, char *err, size_t errlen)
{
	static const char *const toks[] = { "<unk>", "<s>", "</s>", ("\xe2\x96\x81" "a"), "a" };
	w->n = 0;
	wput(w, "GGUF", 4);
	wu32(w, 3);
	wu64(w, 0);
	wu64(w, bad == 1 ? 2 : 3);
	if (bad != 1)
		wkey_str(w, "tokenizer.ggml.model", bad == 4 ? "bert" : "llama");
	if (bad == 2)
		wkey_f32s(w, "tokenizer.ggml.tokens", 5);
	else
		wkey_strs(w, "tokenizer.ggml.tokens", toks, 5);
	wkey_f32s(w, "tokenizer.ggml.scores", bad == 3 ? 4 : 5);
	struct gguf *g = gguf_open_mem(w->p, w->n, err, errlen);
	assert_non_null(g);
	struct tok *t = tok_from_gguf(g, err, errlen);
	gguf_close(g);
	return t;
}

static void test_from_gguf(void **state)
{
	static struct wbuf w;
	char err[256];
	struct tok *t = from_gguf(0, &w, err, sizeof err);
	const int32_t want[] = { 1, 3 }; /* SPM defaults: bos 1, add_bos, space prefix */

	assert_non_null(t);
	expect_ids(t, "a", TOK_ADD_SPECIAL, want, 2);
	tok_free(t);
	static const char *const key[] = { NULL, "tokenizer.ggml.model", "tokenizer.ggml.tokens",
	                                   "tokenizer.ggml.scores", "tokenizer.ggml.model" };
	for (int bad = 1; bad <= 4; bad++) {
		err[0] = 0;
		assert_null(from_gguf(bad, &w, err, sizeof err));
		if (!strstr(err, key[bad]))
			fail_msg("fault %d: '%s' does not name %s", bad, err, key[bad]);
	}
}

/* One tokenizer, several threads encoding and decoding at once: the same
 * ids as a lone encode (TSan watches for races in make SAN=thread). */
struct worker {
	const struct tok *t;
	const char *text;
	struct tok_ids ids;
	int rc;
};

static void *encode_many(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20 && !w->rc; i++) {
		char *s;
		size_t n;
		w->ids.n = 0;
		w->rc = tok_encode(w->t, w->text, strlen(w->text), TOK_PARSE_SPECIAL, &w->ids, NULL, 0);
		if (!w->rc && !tok_decode(w->t, w->ids.v, w->ids.n, TOK_DECODE_SPECIAL, &s, &n)) {
			w->rc = strcmp(s, w->text) != 0;
			free(s);
		}
	}
	return NULL;
}

static void test_threads_share_a_tokenizer(void **state)
{
	struct vocab v;
	struct tok *t = bpe_tok(&v, merges_ab, 3);
	const char *text = "abc ab<|im_end|> 123 \xc3\xa9 <tool>";
	struct worker w[4];
	pthread_t th[4];
	struct tok_ids alone = { 0 };

	assert_int_equal(tok_encode(t, text, strlen(text), TOK_PARSE_SPECIAL, &alone, NULL, 0), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .t = t, .text = text };
		assert_int_equal(pthread_create(&th[i], NULL, encode_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		assert_int_equal(w[i].ids.n, alone.n);
		assert_memory_equal(w[i].ids.v, alone.v, alone.n * sizeof *alone.v);
		tok_ids_free(&w[i].ids);
	}
	tok_ids_free(&alone);
	tok_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bpe_merges_by_rank),
		cmocka_unit_test(test_bpe_special_parsing),
		cmocka_unit_test(test_bpe_invalid_utf8),
		cmocka_unit_test(test_bpe_decode),
		cmocka_unit_test(test_spm_merges_by_score),
		cmocka_unit_test(test_spm_byte_fallback),
		cmocka_unit_test(test_stream_holds_partial_utf8),
		cmocka_unit_test(test_odd_vocabularies),
		cmocka_unit_test(test_from_gguf),
		cmocka_unit_test(test_threads_share_a_tokenizer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
