/*
 * tok.c — building a tokenizer from a struct tok_desc, vocabulary lookups,
 * special tokens, and the encode driver shared by BPE and SPM.
 *
 * Design: the vocabulary is copied into one arena; an open-addressing hash
 * (FNV-1a, linear probing, power-of-two size >= 2n) maps text to id and
 * another maps a merge pair to its rank. Every llama.cpp rule that decides
 * ids lives here: default special ids per model, metadata overrides when in
 * range, eot/eom/fim detection by text when the metadata lacks them (those
 * tokens are forced to CONTROL, as llama.cpp does), the end-of-generation
 * set, and the special-token partition of the input (longest token first,
 * all occurrences, control tokens only when the caller asks).
 *
 * Invariants: after tok_new() every id field is TOK_NULL or < n; token texts
 * are unique and non-empty; nothing changes, so readers need no locks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/tok/tok-impl.h"
#include "util.h"

uint64_t tok_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int tok_buf_put(struct tok_buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return TOK_E_NOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

void *tok_grow(void *v, size_t *cap, size_t elem, size_t first)
{
	if (*cap > SIZE_MAX / 2 / elem)
		return NULL;
	size_t n = *cap ? *cap * 2 : first;
	v = realloc(v, n * elem);
	if (v)
		*cap = n;
	return v;
}

int tok_ids_push(struct tok_ids *ids, int32_t id)
{
	if (ids->n == ids->cap) {
		int32_t *v = tok_grow(ids->v, &ids->cap, sizeof *v, 64);
		if (!v)
			return TOK_E_NOMEM;
		ids->v = v;
	}
	ids->v[ids->n++] = id;
	return 0;
}

void tok_ids_free(struct tok_ids *ids)
{
	free(ids->v);
	ids->v = NULL;
	ids->n = ids->cap = 0;
}

/* ---- heap ---------------------------------------------------------------- */

static int cand_before(const struct tok_cand *a, const struct tok_cand *b)
{
	return a->key > b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(struct tok_heap *h, struct tok_cand c)
{
	if (h->n == h->cap) {
		struct tok_cand *v = tok_grow(h->v, &h->cap, sizeof *v, 64);
		if (!v)
			return TOK_E_NOMEM;
		h->v = v;
	}
	size_t i = h->n++;
	while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = c;
	return 0;
}

int tok_heap_pop(struct tok_heap *h, struct tok_cand *out)
{
	if (!h->n)
		return 0;
	*out = h->v[0];
	struct tok_cand last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!cand_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return 1;
}

size_t tok_sym_split(const char *w, size_t n, struct tok_sym *sym)
{
	size_t nsym = 0;

	for (size_t off = 0; off < n; nsym++) {
		size_t len = tok_utf8_len((unsigned char)w[off]);
		len = len < n - off ? len : n - off;
		sym[nsym] = (struct tok_sym){ (int32_t)nsym - 1, off + len == n ? -1 : (int32_t)nsym + 1,
		                              (uint32_t)off, (uint32_t)len };
		off += len;
	}
	return nsym;
}

/* A popped candidate is stale when either side was merged away or grew
 * since it was queued (size check); it is then skipped, not re-ranked. */
int tok_sym_merge(const struct tok *t, const char *w, struct tok_sym *sym, size_t nsym,
                  struct tok_heap *h, tok_pair_fn queue_pair)
{
	struct tok_cand c;
	int rc = 0;

	for (size_t i = 1; i < nsym && !rc; i++)
		rc = queue_pair(t, w, sym, (int32_t)i - 1, (int32_t)i, h);
	while (!rc && tok_heap_pop(h, &c)) {
		struct tok_sym *l = &sym[c.left], *r = &sym[c.right];
		if (!l->n || !r->n || l->n + r->n != c.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = c.left;
		rc = queue_pair(t, w, sym, l->prev, c.left, h);
		if (!rc)
			rc = queue_pair(t, w, sym, c.left, l->next, h);
	}
	return rc;
}

/* ---- lookups ------------------------------------------------------------- */

int32_t tok_lookup(const struct tok *t, const char *s, size_t n)
{
	uint64_t i = tok_fnv(TOK_FNV_INIT, s, n) & t->tmask;

	for (;; i = (i + 1) & t->tmask) {
		uint32_t v = t->tslot[i];
		if (!v)
			return TOK_NULL;
		uint32_t id = v - 1;
		if (t->len[id] == n && !memcmp(t->arena + t->off[id], s, n))
			return (int32_t)id;
	}
}

int32_t tok_merge_rank(const struct tok *t, const char *a, size_t an, const char *b, size_t bn)
{
	if (!t->n_merges)
		return -1;
	uint64_t h = tok_fnv(tok_fnv(tok_fnv(TOK_FNV_INIT, a, an), " ", 1), b, bn);
	for (uint64_t i = h & t->mmask;; i = (i + 1) & t->mmask) {
		uint32_t v = t->mslot[i];
		if (!v)
			return -1;
		uint32_t r = v - 1;
		const char *line = t->arena + t->moff[r];
		if (t->msplit[r] == an && t->mlen[r] == an + 1 + bn && !memcmp(line, a, an) &&
		    !memcmp(line + an + 1, b, bn))
			return (int32_t)r;
	}
}

/* ---- building ------------------------------------------------------------ */

static uint64_t table_size(uint64_t n)
{
	uint64_t s = 16;
	while (s < 2 * n)
		s *= 2;
	return s;
}

static uint8_t attr_of_type(int32_t type)
{
	switch (type) {
	case TOK_TYPE_NORMAL: return TOK_ATTR_NORMAL;
	case TOK_TYPE_UNKNOWN: return TOK_ATTR_UNKNOWN;
	case TOK_TYPE_CONTROL: return TOK_ATTR_CONTROL;
	case TOK_TYPE_USER_DEFINED: return TOK_ATTR_USER_DEFINED;
	case TOK_TYPE_UNUSED: return TOK_ATTR_UNUSED;
	case TOK_TYPE_BYTE: return TOK_ATTR_BYTE;
	default: return 0; /* undefined: rendered as nothing, never matched */
	}
}

static size_t desc_tok_len(const struct tok_desc *d, uint32_t i)
{
	return d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
}

static size_t desc_merge_len(const struct tok_desc *d, uint32_t i)
{
	return d->merge_lens ? d->merge_lens[i] : strlen(d->merges[i]);
}

/* Arena bytes for tokens (empty ones get "[EMPTY_<id>]") and merges. */
static int arena_size(const struct tok_desc *d, uint64_t *total, char *err, size_t errlen)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < d->n_tokens; i++) {
		if (!d->tokens[i]) {
			plot_seterr(err, errlen, "tokenizer.ggml.tokens[%u]: missing", i);
			return TOK_E_INVAL;
		}
		size_t n = desc_tok_len(d, i);
		if (n > TOK_MAX_TOKEN_LEN) {
			plot_seterr(err, errlen, "tokenizer.ggml.tokens[%u]: %zu bytes (max %d)", i, n,
			            TOK_MAX_TOKEN_LEN);
			return TOK_E_INVAL;
		}
		sum += n ? n : 24;
	}
	for (uint32_t i = 0; i < d->n_merges; i++) {
		size_t n = d->merges[i] ? desc_merge_len(d, i) : 0;
		if (n > 2 * TOK_MAX_TOKEN_LEN + 1) {
			plot_seterr(err, errlen, "tokenizer.ggml.merges[%u]: %zu bytes", i, n);
			return TOK_E_INVAL;
		}
		sum += n;
	}
	*total = sum + 1;
	return 0;
}

static int alloc_tables(struct tok *t, uint32_t n, uint32_t n_merges, uint64_t arena)
{
	t->arena = malloc(arena);
	t->off = calloc(n ? n : 1, sizeof *t->off);
	t->len = calloc(n ? n : 1, sizeof *t->len);
	t->score = calloc(n ? n : 1, sizeof *t->score);
	t->attr = calloc(n ? n : 1, 1);
	t->tmask = table_size(n) - 1;
	t->tslot = calloc(t->tmask + 1, sizeof *t->tslot);
	t->moff = calloc(n_merges ? n_merges : 1, sizeof *t->moff);
	t->mlen = calloc(n_merges ? n_merges : 1, sizeof *t->mlen);
	t->msplit = calloc(n_merges ? n_merges : 1, sizeof *t->msplit);
	t->mmask = table_size(n_merges) - 1;
	t->mslot = calloc(t->mmask + 1, sizeof *t->mslot);
	if (!t->arena || !t->off || !t->len || !t->score || !t->attr || !t->tslot ||
	    !t->moff || !t->mlen || !t->msplit || !t->mslot)
		return TOK_E_NOMEM;
	return 0;
}

static int add_tokens(struct tok *t, const struct tok_desc *d, uint64_t *pos, char *err,
                      size_t errlen)
{
	for (uint32_t i = 0; i < d->n_tokens; i++) {
		size_t n = desc_tok_len(d, i);
		t->off[i] = *pos;
		if (n)
			memcpy(t->arena + *pos, d->tokens[i], n);
		else /* as llama.cpp: an empty token can never match text */
			n = (size_t)sprintf(t->arena + *pos, "[EMPTY_%u]", i);
		t->len[i] = (uint32_t)n;
		*pos += n;
		t->score[i] = d->scores ? d->scores[i] : 0.0f;
		t->attr[i] = d->types ? attr_of_type(d->types[i]) : TOK_ATTR_NORMAL;
		if (tok_lookup(t, t->arena + t->off[i], n) != TOK_NULL) {
			plot_seterr(err, errlen, "tokenizer.ggml.tokens[%u]: duplicate of token %d", i,
			            tok_lookup(t, t->arena + t->off[i], n));
			return TOK_E_INVAL;
		}
		uint64_t h = tok_fnv(TOK_FNV_INIT, t->arena + t->off[i], n) & t->tmask;
		while (t->tslot[h])
			h = (h + 1) & t->tmask;
		t->tslot[h] = i + 1;
		t->n = i + 1;
	}
	return 0;
}

/* Merges split at the first space after position 0 (llama.cpp's rule); a
 * line without one can never apply and is skipped; a repeated pair keeps
 * its first (lowest) rank. */
static void add_merges(struct tok *t, const struct tok_desc *d, uint64_t *pos)
{
	for (uint32_t i = 0; i < d->n_merges; i++) {
		size_t n = d->merges[i] ? desc_merge_len(d, i) : 0;
		const char *line = d->merges[i];
		const char *sp = n > 1 ? memchr(line + 1, ' ', n - 1) : NULL;
		t->moff[i] = *pos;
		t->mlen[i] = (uint32_t)n;
		if (n)
			memcpy(t->arena + *pos, line, n);
		*pos += n;
		t->n_merges = i + 1;
		if (!sp)
			continue;
		size_t an = (size_t)(sp - line);
		if (tok_merge_rank(t, line, an, sp + 1, n - an - 1) >= 0)
			continue;
		t->msplit[i] = (uint32_t)an;
		uint64_t h = tok_fnv(TOK_FNV_INIT, line, n) & t->mmask;
		while (t->mslot[h])
			h = (h + 1) & t->mmask;
		t->mslot[h] = i + 1;
	}
}

static int32_t find_cstr(const struct tok *t, const char *s)
{
	return tok_lookup(t, s, strlen(s));
}

/* First of the texts present in the vocabulary; forces it to CONTROL. */
static int32_t detect(struct tok *t, const char *const *texts)
{
	for (; *texts; texts++) {
		int32_t id = find_cstr(t, *texts);
		if (id != TOK_NULL) {
			t->attr[id] |= TOK_ATTR_CONTROL;
			return id;
		}
	}
	return TOK_NULL;
}

static const char *const eot_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
	"<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
	"<end_of_utterance>", NULL,
};
static const char *const eom_texts[] = { "<|eom_id|>", NULL };
static const char *const fim_pre_texts[] = { "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
	"<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL };
static const char *const fim_suf_texts[] = { "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
	"<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL };
static const char *const fim_mid_texts[] = { "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
	"<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL };
static const char *const fim_pad_texts[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
	"[PAD]", NULL };
static const char *const fim_rep_texts[] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
	"<REPO>", "<reponame>", NULL };
static const char *const fim_sep_texts[] = { "<|file_sep|>", NULL };
static const char *const eog_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
	"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
	"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
	"<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[", NULL,
};

static void drop_eog(struct tok *t, int32_t id, uint8_t attr)
{
	for (uint32_t i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id) {
			t->eog[i] = t->eog[--t->n_eog];
			t->attr[id] = attr;
			return;
		}
}

/* llama.cpp's two exceptions: with <|return|> and <|call|> (or <|calls|>
 * and <|flush|>), <|end|> is not an end of generation; with
 * <|tool_response>, </s> is not one either. */
static void eog_exceptions(struct tok *t)
{
	int32_t end = find_cstr(t, "<|end|>"), s = find_cstr(t, "</s>");
	int ret = tok_is_eog(t, find_cstr(t, "<|return|>"));
	int call = tok_is_eog(t, find_cstr(t, "<|call|>"));
	int calls = tok_is_eog(t, find_cstr(t, "<|calls|>"));
	int flush = tok_is_eog(t, find_cstr(t, "<|flush|>"));

	if (tok_is_eog(t, end) && ((ret && (call || calls)) || ((call || calls) && flush)))
		drop_eog(t, end, TOK_ATTR_USER_DEFINED);
	if (tok_is_eog(t, s) && tok_is_eog(t, find_cstr(t, "<|tool_response>")))
		drop_eog(t, s, TOK_ATTR_NORMAL);
}

static int add_eog(struct tok *t, int32_t id)
{
	if (id == TOK_NULL)
		return 0;
	for (uint32_t i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return 0;
	int32_t *v = realloc(t->eog, (t->n_eog + 1) * sizeof *v);
	if (!v)
		return TOK_E_NOMEM;
	t->eog = v;
	t->eog[t->n_eog++] = id;
	return 0;
}

static int32_t meta_id(int64_t v, int32_t dflt, uint32_t n)
{
	if (dflt >= 0 && (uint32_t)dflt >= n)
		dflt = TOK_NULL;
	return v >= 0 && (uint64_t)v < n ? (int32_t)v : dflt;
}

/* llama.cpp's special-id rules: defaults per model, metadata when in range,
 * eot/eom/fim found by text, then the end-of-generation set. */
static int setup_specials(struct tok *t, const struct tok_desc *d)
{
	int spm = d->model == TOK_MODEL_SPM;
	t->bos = meta_id(d->bos, spm ? 1 : 11, t->n);
	t->eos = meta_id(d->eos, spm ? 2 : 11, t->n);
	t->unk = meta_id(d->unk, spm ? 0 : TOK_NULL, t->n);
	t->pad = meta_id(d->pad, TOK_NULL, t->n);
	t->eot = meta_id(d->eot, TOK_NULL, t->n);
	t->eom = meta_id(d->eom, TOK_NULL, t->n);
	if (t->eot == TOK_NULL)
		t->eot = detect(t, eot_texts);
	if (t->eom == TOK_NULL)
		t->eom = detect(t, eom_texts);
	detect(t, fim_pre_texts);
	detect(t, fim_suf_texts);
	detect(t, fim_mid_texts);
	int rc = add_eog(t, detect(t, fim_pad_texts));
	rc |= add_eog(t, detect(t, fim_rep_texts));
	rc |= add_eog(t, detect(t, fim_sep_texts));
	for (const char *const *s = eog_texts; *s; s++) {
		int32_t id = find_cstr(t, *s);
		if (id != TOK_NULL)
			t->attr[id] |= TOK_ATTR_CONTROL;
		rc |= add_eog(t, id);
	}
	rc |= add_eog(t, t->eos);
	rc |= add_eog(t, t->eot);
	rc |= add_eog(t, t->eom);
	if (!rc)
		eog_exceptions(t);
	return rc ? TOK_E_NOMEM : 0;
}

static void setup_flags(struct tok *t, const struct tok_desc *d)
{
	int spm = d->model == TOK_MODEL_SPM;
	const char *pre = d->pre ? d->pre : "default";
	int llama3 = !spm && (!strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") ||
	                      !strcmp(pre, "llama-bpe") || !strcmp(pre, "falcon3") ||
	                      !strcmp(pre, "pixtral") || !strcmp(pre, "lfm2"));
	t->ignore_merges = llama3;
	t->add_bos = d->add_bos >= 0 ? d->add_bos : (spm || llama3);
	t->add_eos = d->add_eos >= 0 ? d->add_eos : 0;
	t->add_space_prefix = d->add_space_prefix >= 0 ? d->add_space_prefix : spm;
}

/* Control-type tokens whose text mentions "unused" are UNUSED too. */
static void mark_unused(struct tok *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		if ((t->attr[i] & TOK_ATTR_CONTROL) &&
		    memmem(t->arena + t->off[i], t->len[i], "unused", 6))
			t->attr[i] |= TOK_ATTR_UNUSED;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
	const struct tok *t = ctx;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	uint32_t lx = t->len[x], ly = t->len[y];

	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int build_special_cache(struct tok *t)
{
	const unsigned mask = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;

	t->special = malloc((t->n ? t->n : 1) * sizeof *t->special);
	if (!t->special)
		return TOK_E_NOMEM;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->attr[i] & mask)
			t->special[t->n_special++] = (int32_t)i;
	qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
	return 0;
}

static int check_desc(const struct tok_desc *d, char *err, size_t errlen)
{
	if (d->model != TOK_MODEL_BPE && d->model != TOK_MODEL_SPM) {
		plot_seterr(err, errlen, "tokenizer.ggml.model: unsupported model %d", (int)d->model);
		return TOK_E_INVAL;
	}
	if (!d->n_tokens || d->n_tokens > TOK_MAX_VOCAB || !d->tokens) {
		plot_seterr(err, errlen, "tokenizer.ggml.tokens: %u tokens (need 1..%u)", d->n_tokens,
		            TOK_MAX_VOCAB);
		return TOK_E_INVAL;
	}
	if (d->n_merges > TOK_MAX_VOCAB || (d->n_merges && !d->merges)) {
		plot_seterr(err, errlen, "tokenizer.ggml.merges: %u merges (max %u)", d->n_merges,
		            TOK_MAX_VOCAB);
		return TOK_E_INVAL;
	}
	if (d->model == TOK_MODEL_BPE && !d->n_merges) {
		plot_seterr(err, errlen, "tokenizer.ggml.merges: missing for a gpt2 tokenizer");
		return TOK_E_INVAL;
	}
	return 0;
}

static int build(struct tok *t, const struct tok_desc *d, char *err, size_t errlen)
{
	uint64_t asize, pos = 0;
	int rc = arena_size(d, &asize, err, errlen);

	if (rc)
		return rc;
	t->model = d->model;
	if ((rc = alloc_tables(t, d->n_tokens, d->n_merges, asize))) {
		plot_seterr(err, errlen, "tokenizer: out of memory for %u tokens", d->n_tokens);
		return rc;
	}
	if ((rc = add_tokens(t, d, &pos, err, errlen)))
		return rc;
	add_merges(t, d, &pos);
	setup_flags(t, d);
	if ((rc = setup_specials(t, d)) || (rc = build_special_cache(t)) ||
	    (rc = tok_pieces_build(t))) {
		plot_seterr(err, errlen, "tokenizer: out of memory");
		return rc;
	}
	mark_unused(t);
	if (d->model == TOK_MODEL_BPE)
		return tok_bpe_init(t, d->pre, err, errlen);
	return 0;
}

struct tok *tok_new(const struct tok_desc *d, char *err, size_t errlen)
{
	if (!d || check_desc(d, err, errlen))
		return NULL;
	struct tok *t = calloc(1, sizeof *t);
	if (!t) {
		plot_seterr(err, errlen, "tokenizer: out of memory");
		return NULL;
	}
	if (build(t, d, err, errlen)) {
		tok_free(t);
		return NULL;
	}
	return t;
}

void tok_free(struct tok *t)
{
	if (!t)
		return;
	tok_bpe_free(t);
	free(t->arena);
	free(t->off);
	free(t->len);
	free(t->score);
	free(t->attr);
	free(t->tslot);
	free(t->moff);
	free(t->mlen);
	free(t->msplit);
	free(t->mslot);
	free(t->special);
	free(t->eog);
	free(t->pieces);
	free(t->poff);
	free(t->plen);
	free(t);
}

/* ---- accessors ----------------------------------------------------------- */

enum tok_model tok_model(const struct tok *t) { return t->model; }
uint32_t tok_n_vocab(const struct tok *t) { return t->n; }
int32_t tok_bos(const struct tok *t) { return t->bos; }
int32_t tok_eos(const struct tok *t) { return t->eos; }
int32_t tok_eot(const struct tok *t) { return t->eot; }
int32_t tok_unk(const struct tok *t) { return t->unk; }
int tok_add_bos(const struct tok *t) { return t->add_bos; }
int tok_add_eos(const struct tok *t) { return t->add_eos; }

int tok_is_eog(const struct tok *t, int32_t id)
{
	for (uint32_t i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return 1;
	return 0;
}

unsigned tok_attr(const struct tok *t, int32_t id)
{
	return id >= 0 && (uint32_t)id < t->n ? t->attr[id] : 0;
}

const char *tok_text(const struct tok *t, int32_t id, size_t *len)
{
	if (id < 0 || (uint32_t)id >= t->n)
		return NULL;
	if (len)
		*len = t->len[id];
	return t->arena + t->off[id];
}

int32_t tok_find(const struct tok *t, const char *text, size_t len)
{
	return tok_lookup(t, text, len);
}

/* ---- special-token partition ---------------------------------------------- */

/* A piece of the input: raw text [off, off+len) or a token (id >= 0). */
struct frag {
	int32_t id;
	uint32_t off, len;
};

struct frags {
	struct frag *v;
	size_t n, cap;
};

static int frag_push(struct frags *f, int32_t id, size_t off, size_t len)
{
	if (f->n == f->cap) {
		struct frag *v = tok_grow(f->v, &f->cap, sizeof *v, 16);
		if (!v)
			return TOK_E_NOMEM;
		f->v = v;
	}
	f->v[f->n++] = (struct frag){ id, (uint32_t)off, (uint32_t)len };
	return 0;
}

/* Split every raw fragment of in at each occurrence of token id, into out. */
static int split_on(const struct tok *t, const char *text, int32_t id, const struct frags *in,
                    struct frags *out)
{
	const char *st = t->arena + t->off[id];
	size_t sn = t->len[id];
	int rc = 0;

	out->n = 0;
	for (size_t i = 0; i < in->n && !rc; i++) {
		struct frag f = in->v[i];
		if (f.id >= 0) {
			rc = frag_push(out, f.id, 0, 0);
			continue;
		}
		size_t pos = f.off, end = (size_t)f.off + f.len;
		const char *m;
		while (!rc && (m = memmem(text + pos, end - pos, st, sn))) {
			size_t at = (size_t)(m - text);
			if (at > pos)
				rc = frag_push(out, -1, pos, at - pos);
			if (!rc)
				rc = frag_push(out, id, 0, 0);
			pos = at + sn;
		}
		if (!rc && pos < end)
			rc = frag_push(out, -1, pos, end - pos);
	}
	return rc;
}

/* Which bytes and byte pairs occur in the text: a token whose first one or
 * two bytes never occur cannot match, which skips most of a large special
 * set (Gemma: 6,000 <unusedN>) without searching. */
struct seen {
	uint64_t pair[65536 / 64];
	unsigned char byte[256];
};

static void seen_init(struct seen *sn, const unsigned char *s, size_t n)
{
	memset(sn, 0, sizeof *sn);
	for (size_t i = 0; i < n; i++) {
		sn->byte[s[i]] = 1;
		if (i + 1 < n) {
			unsigned p = (unsigned)s[i] << 8 | s[i + 1];
			sn->pair[p / 64] |= 1ull << (p % 64);
		}
	}
}

static int may_occur(const struct seen *sn, const unsigned char *s, size_t n)
{
	unsigned p = n > 1 ? (unsigned)s[0] << 8 | s[1] : 0;

	return n == 1 ? sn->byte[s[0]] : (int)(sn->pair[p / 64] >> (p % 64) & 1);
}

/* llama.cpp's tokenizer_st_partition: specials longest first, each one
 * splitting whatever raw text the longer ones left. */
static int partition(const struct tok *t, const char *text, size_t len, int parse_special,
                     struct frags *out)
{
	struct frags a = { 0 }, b = { 0 };
	struct seen *sn = malloc(sizeof *sn);
	int rc = !sn ? TOK_E_NOMEM : len ? frag_push(&a, -1, 0, len) : 0;

	if (sn)
		seen_init(sn, (const unsigned char *)text, len);
	for (uint32_t k = 0; k < t->n_special && !rc && len; k++) {
		int32_t id = t->special[k];
		if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
			continue;
		if (t->len[id] > len ||
		    !may_occur(sn, (const unsigned char *)t->arena + t->off[id], t->len[id]))
			continue;
		rc = split_on(t, text, id, &a, &b);
		struct frags tmp = a;
		a = b;
		b = tmp;
	}
	free(sn);
	free(b.v);
	if (rc) {
		free(a.v);
		return rc;
	}
	*out = a;
	return 0;
}

/* SPM: the space prefix goes before raw text at the start and after every
 * special token; spaces become U+2581. */
static int spm_fragment(const struct tok *t, const char *s, size_t n, int prefix,
                        struct tok_ids *out)
{
	struct tok_buf b = { 0 };
	int rc = 0;

	if (prefix)
		rc = tok_buf_put(&b, "\xe2\x96\x81", 3);
	for (size_t i = 0; i < n && !rc; i++)
		rc = s[i] == ' ' ? tok_buf_put(&b, "\xe2\x96\x81", 3) : tok_buf_put(&b, s + i, 1);
	if (!rc && b.n)
		rc = tok_spm_encode(t, b.p, b.n, out);
	free(b.p);
	return rc;
}

static int encode_frags(const struct tok *t, const char *text, const struct frags *f,
                        struct tok_ids *out)
{
	int prev_special = 1, rc = 0;

	for (size_t i = 0; i < f->n && !rc; i++) {
		const struct frag *g = &f->v[i];
		if (g->id >= 0) {
			rc = tok_ids_push(out, g->id);
			prev_special = 1;
		} else if (t->model == TOK_MODEL_SPM) {
			rc = spm_fragment(t, text + g->off, g->len, t->add_space_prefix && prev_special,
			                  out);
			prev_special = 0;
		} else {
			rc = tok_bpe_encode(t, text + g->off, g->len, out);
		}
	}
	return rc;
}

int tok_encode(const struct tok *t, const char *text, size_t len, unsigned flags,
               struct tok_ids *out, char *err, size_t errlen)
{
	struct frags f = { 0 };
	int rc;

	if (len > TOK_MAX_TEXT) {
		plot_seterr(err, errlen, "text: %zu bytes (max %u)", len, TOK_MAX_TEXT);
		return TOK_E_TOOBIG;
	}
	if ((flags & TOK_ADD_SPECIAL) && t->add_bos && t->bos != TOK_NULL &&
	    (rc = tok_ids_push(out, t->bos)))
		goto fail;
	if ((rc = partition(t, text, len, !!(flags & TOK_PARSE_SPECIAL), &f)))
		goto fail;
	rc = encode_frags(t, text, &f, out);
	free(f.v);
	if (rc)
		goto fail;
	if ((flags & TOK_ADD_SPECIAL) && t->add_eos && t->eos != TOK_NULL &&
	    (rc = tok_ids_push(out, t->eos)))
		goto fail;
	return 0;
fail:
	plot_seterr(err, errlen, rc == TOK_E_NOMEM ? "tokenizer: out of memory" :
	                                             "tokenizer: regex match failed");
	return rc;
}
