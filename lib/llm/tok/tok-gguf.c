/*
 * tok-gguf.c — tok_from_gguf(): read the tokenizer.* keys of a GGUF file
 * into a struct tok_desc and build the tokenizer.
 *
 * Kept apart from tok.c so that code using hand-built vocabularies (unit
 * tests) links without the GGUF reader. Strings are referenced in place in
 * the mapping (tok_new copies them), so only pointer arrays are allocated.
 * Every count is checked against the token count and TOK_MAX_VOCAB; a key
 * of the wrong type is an error naming it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/gguf.h"
#include "llm/tok/tok-impl.h"

#define K_MODEL "tokenizer.ggml.model"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_SCORES "tokenizer.ggml.scores"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_MERGES "tokenizer.ggml.merges"

struct strs {
	const char **s;
	uint32_t *len;
	uint32_t n;
};

static void strs_free(struct strs *a)
{
	free(a->s);
	free(a->len);
}

/* A string array key, bounded; absent is an error only when required. */
static int read_strs(const struct gguf *g, const char *key, int required, struct strs *out,
                     char *err, size_t errlen)
{
	enum gguf_vtype et;
	uint64_t n;

	memset(out, 0, sizeof *out);
	if (gguf_find_key(g, key) < 0) {
		if (required)
			snprintf(err, errlen, "%s: missing", key);
		return required ? TOK_E_INVAL : 0;
	}
	if (gguf_get_arr(g, key, &et, &n) || et != GGUF_T_STRING || n > TOK_MAX_VOCAB) {
		snprintf(err, errlen, "%s: want an array of at most %u strings", key, TOK_MAX_VOCAB);
		return TOK_E_INVAL;
	}
	out->s = malloc((n ? n : 1) * sizeof *out->s);
	out->len = malloc((n ? n : 1) * sizeof *out->len);
	if (!out->s || !out->len) {
		snprintf(err, errlen, "%s: out of memory", key);
		return TOK_E_NOMEM;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct gguf_str s;
		if (gguf_arr_str(g, key, i, &s) || s.len > UINT32_MAX) {
			snprintf(err, errlen, "%s[%llu]: unreadable", key, (unsigned long long)i);
			return TOK_E_INVAL;
		}
		out->s[i] = s.s ? s.s : "";
		out->len[i] = (uint32_t)s.len;
	}
	out->n = (uint32_t)n;
	return 0;
}

/* A numeric per-token array (f32 scores or i32 types) of at least n entries. */
static const void *read_per_token(const struct gguf *g, const char *key, enum gguf_vtype want,
                                  enum gguf_vtype alt, uint32_t n, enum gguf_vtype *got,
                                  char *err, size_t errlen, int *rc)
{
	enum gguf_vtype et;
	uint64_t cnt;

	*rc = 0;
	if (gguf_find_key(g, key) < 0)
		return NULL;
	if (gguf_get_arr(g, key, &et, &cnt) || (et != want && et != alt) || cnt < n) {
		snprintf(err, errlen, "%s: want an array of %u numbers of type %d", key, n, (int)want);
		*rc = TOK_E_INVAL;
		return NULL;
	}
	*got = et;
	const void *p = gguf_arr_data(g, key);
	if (!p) {
		snprintf(err, errlen, "%s: no data", key);
		*rc = TOK_E_INVAL;
	}
	return p;
}

static int64_t opt_id(const struct gguf *g, const char *key)
{
	uint64_t v;
	return gguf_get_u64(g, key, &v) || v > INT32_MAX ? -1 : (int64_t)v;
}

static int opt_bool(const struct gguf *g, const char *key)
{
	int v;
	return gguf_get_bool(g, key, &v) ? -1 : !!v;
}

static int read_model(const struct gguf *g, struct tok_desc *d, char *pre, size_t presz,
                      char *err, size_t errlen)
{
	struct gguf_str s;

	if (gguf_get_str(g, K_MODEL, &s)) {
		snprintf(err, errlen, "%s: missing or not a string", K_MODEL);
		return TOK_E_INVAL;
	}
	if (s.len == 4 && !memcmp(s.s, "gpt2", 4)) {
		d->model = TOK_MODEL_BPE;
	} else if (s.len == 5 && !memcmp(s.s, "llama", 5)) {
		d->model = TOK_MODEL_SPM;
	} else {
		snprintf(err, errlen, "%s: unsupported tokenizer '%.*s'", K_MODEL,
		         (int)(s.len > 64 ? 64 : s.len), s.s);
		return TOK_E_INVAL;
	}
	if (!gguf_get_str(g, "tokenizer.ggml.pre", &s)) {
		if (s.len >= presz) {
			snprintf(err, errlen, "tokenizer.ggml.pre: %llu bytes", (unsigned long long)s.len);
			return TOK_E_INVAL;
		}
		memcpy(pre, s.s, s.len);
		pre[s.len] = 0;
		d->pre = pre;
	}
	return 0;
}

static void read_specials(const struct gguf *g, struct tok_desc *d)
{
	d->bos = opt_id(g, "tokenizer.ggml.bos_token_id");
	d->eos = opt_id(g, "tokenizer.ggml.eos_token_id");
	d->eot = opt_id(g, "tokenizer.ggml.eot_token_id");
	d->eom = opt_id(g, "tokenizer.ggml.eom_token_id");
	d->unk = opt_id(g, "tokenizer.ggml.unknown_token_id");
	d->pad = opt_id(g, "tokenizer.ggml.padding_token_id");
	d->add_bos = opt_bool(g, "tokenizer.ggml.add_bos_token");
	d->add_eos = opt_bool(g, "tokenizer.ggml.add_eos_token");
	d->add_space_prefix = opt_bool(g, "tokenizer.ggml.add_space_prefix");
}

/* Scores may be stored as i32 (llama.cpp accepts both). */
static float *scores_f32(const void *p, enum gguf_vtype et, uint32_t n)
{
	float *f = malloc((n ? n : 1) * sizeof *f);

	for (uint32_t i = 0; f && i < n; i++) {
		if (et == GGUF_T_F32) {
			memcpy(&f[i], (const char *)p + 4 * (size_t)i, 4);
		} else {
			int32_t v;
			memcpy(&v, (const char *)p + 4 * (size_t)i, 4);
			f[i] = (float)v;
		}
	}
	return f;
}

struct tok *tok_from_gguf(const struct gguf *g, char *err, size_t errlen)
{
	struct tok_desc d = { 0 };
	struct strs toks = { 0 }, merges = { 0 };
	char pre[128], dummy[1];
	float *scores = NULL;
	int32_t *types = NULL;
	struct tok *t = NULL;
	enum gguf_vtype et = GGUF_T_F32;
	int rc;

	if (!err || !errlen)
		err = dummy, errlen = sizeof dummy;
	if ((rc = read_model(g, &d, pre, sizeof pre, err, errlen)) ||
	    (rc = read_strs(g, K_TOKENS, 1, &toks, err, errlen)) ||
	    (rc = read_strs(g, K_MERGES, d.model == TOK_MODEL_BPE, &merges, err, errlen)))
		goto out;
	const void *sp = read_per_token(g, K_SCORES, GGUF_T_F32, GGUF_T_I32, toks.n, &et, err,
	                                errlen, &rc);
	if (!rc && sp && !(scores = scores_f32(sp, et, toks.n)))
		snprintf(err, errlen, "%s: out of memory", K_SCORES);
	if (rc || (sp && !scores))
		goto out;
	const void *tp = read_per_token(g, K_TYPES, GGUF_T_I32, GGUF_T_I32, toks.n, &et, err,
	                                errlen, &rc);
	if (!rc && tp && !(types = malloc((toks.n ? toks.n : 1) * sizeof *types)))
		snprintf(err, errlen, "%s: out of memory", K_TYPES);
	if (rc || (tp && !types))
		goto out;
	if (tp)
		memcpy(types, tp, (size_t)toks.n * sizeof *types);
	d.n_tokens = toks.n;
	d.tokens = toks.s;
	d.token_lens = toks.len;
	d.scores = scores;
	d.types = types;
	d.n_merges = merges.n;
	d.merges = merges.s;
	d.merge_lens = merges.len;
	read_specials(g, &d);
	t = tok_new(&d, err, errlen);
out:
	strs_free(&toks);
	strs_free(&merges);
	free(scores);
	free(types);
	return t;
}
