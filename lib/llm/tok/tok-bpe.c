/*
 * tok-bpe.c — byte-level BPE ("gpt2" tokenizer model), as llama.cpp runs it.
 *
 * Pipeline for one raw fragment (special tokens already cut out by tok.c):
 *   1. UTF-8 clean-up: what llama.cpp's decoder rejects becomes U+FFFD, an
 *      overlong form becomes its canonical encoding (llama.cpp re-encodes
 *      code points), so PCRE2 always sees valid UTF-8.
 *   2. Pre-tokenizer: the regexes for tokenizer.ggml.pre, applied in order;
 *      each splits every piece the previous one left, and text between two
 *      matches stays a piece of its own (llama.cpp's unicode_regex_split).
 *      PCRE2 with UTF+UCP; \s is spelled out as llama.cpp's whitespace set
 *      (Unicode White_Space, which includes U+0085 unlike PCRE2's \s).
 *   3. Each word is byte-encoded (GPT-2's byte → printable code point map),
 *      split into one symbol per byte, and merged by rank: a heap of
 *      candidate pairs, lowest rank first, leftmost on ties; stale entries
 *      are skipped by length (symbols only grow while alive).
 *   4. A final symbol that is not a token falls back to its single bytes
 *      when those are tokens (llama.cpp's rule), else it is dropped.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "llm/tok/tok-impl.h"
#include "util.h"

/* llama.cpp's whitespace set, inside a character class. */
#define WS "\\t\\n\\x{0b}\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}" \
           "\\x{202f}\\x{205f}\\x{3000}"
#define S "[" WS "]"
#define NS "[^" WS "]"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" \
                S "+(?!" NS ")"
#define RE_CONTR "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3 RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+" \
                  "[\\r\\n]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
#define RE_QWEN2 RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+" \
                 "[\\r\\n]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"

struct pre_family {
	const char *names[10];
	const char *re[TOK_MAX_REGEX];
};

/* tokenizer.ggml.pre names → regex lists, from llama.cpp's llama-vocab.cpp. */
static const struct pre_family families[] = {
	{ { "default", NULL },
	  { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" } },
	{ { "gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "gigachat", NULL },
	  { RE_GPT2 } },
	{ { "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b",
	    NULL },
	  { "\\p{N}", RE_GPT2 } },
	{ { "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "lfm2", "dbrx", "smaug-bpe",
	    NULL },
	  { RE_LLAMA3 } },
	{ { "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", NULL }, { RE_QWEN2 } },
};

static const struct pre_family *find_family(const char *pre)
{
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
		for (const char *const *n = families[f].names; *n; n++)
			if (!strcmp(*n, pre))
				return &families[f];
	return NULL;
}

int tok_bpe_init(struct tok *t, const char *pre, char *err, size_t errlen)
{
	const struct pre_family *fam = find_family(pre ? pre : "default");

	if (!fam) {
		plot_seterr(err, errlen, "tokenizer.ggml.pre: unknown pre-tokenizer '%s'", pre);
		return TOK_E_INVAL;
	}
	for (int i = 0; i < TOK_MAX_REGEX && fam->re[i]; i++) {
		int ecode;
		PCRE2_SIZE eoff;
		pcre2_code *re = pcre2_compile((PCRE2_SPTR)fam->re[i], PCRE2_ZERO_TERMINATED,
		                               PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ecode,
		                               &eoff, NULL);
		if (!re) {
			plot_seterr(err, errlen, "tokenizer.ggml.pre '%s': regex %d: error %d at %zu",
			            pre, i, ecode, (size_t)eoff);
			return TOK_E_REGEX;
		}
		pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
		t->re[t->n_re++] = re;
	}
	return 0;
}

void tok_bpe_free(struct tok *t)
{
	for (int i = 0; i < t->n_re; i++)
		pcre2_code_free(t->re[i]);
	t->n_re = 0;
}

/* ---- byte <-> printable code point (GPT-2's bytes_to_unicode) ------------- */

static int byte_is_printable(unsigned b)
{
	return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

static uint32_t byte_cp(unsigned b)
{
	if (byte_is_printable(b))
		return b;
	if (b <= 0x20)
		return 256 + b;
	if (b <= 0xa0)
		return 256 + 33 + (b - 0x7f);
	return 256 + 67; /* 0xad */
}

size_t tok_bpe_byte_char(unsigned char b, char out[2])
{
	uint32_t cp = byte_cp(b);

	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

int tok_bpe_char_byte(uint32_t cp)
{
	if (cp < 256)
		return byte_is_printable(cp) ? (int)cp : -1;
	if (cp < 256 + 33)
		return (int)(cp - 256);
	if (cp < 256 + 67)
		return (int)(cp - 256 - 33 + 0x7f);
	if (cp == 256 + 67)
		return 0xad;
	return -1;
}

/* ---- UTF-8 clean-up ----------------------------------------------------- */

/* Decode one character with llama.cpp's rules; 0 when it rejects the bytes. */
static size_t lenient_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0x40) == 0 ? 0 : (s[0] & 0x20) == 0 ? 2 :
	             (s[0] & 0x10) == 0 ? 3 : (s[0] & 0x08) == 0 ? 4 : 0;

	if (!len || len > n)
		return 0;
	*cp = len == 1 ? s[0] : s[0] & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return len;
}

static int put_cp(struct tok_buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* PCRE2 refuses surrogates; llama.cpp would keep them */
	if (cp < 0x80) {
		u[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6)), u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
	} else if (cp <= 0x10ffff) {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
	} else {
		return put_cp(b, 0xfffd);
	}
	return tok_buf_put(b, u, n);
}

static int clean_utf8(const char *s, size_t n, struct tok_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;
	int rc = 0;

	for (size_t i = 0; i < n && !rc;) {
		uint32_t cp;
		size_t len = lenient_decode(u + i, n - i, &cp);
		if (!len) {
			rc = put_cp(out, 0xfffd);
			i++;
		} else {
			rc = put_cp(out, cp);
			i += len;
		}
	}
	return rc;
}

/* ---- pre-tokenizer -------------------------------------------------------- */

struct span {
	size_t off, len;
};

struct spans {
	struct span *v;
	size_t n, cap;
};

static int span_push(struct spans *s, size_t off, size_t len)
{
	if (!len)
		return 0;
	if (s->n == s->cap) {
		struct span *v = tok_grow(s->v, &s->cap, sizeof *v, 64);
		if (!v)
			return TOK_E_NOMEM;
		s->v = v;
	}
	s->v[s->n++] = (struct span){ off, len };
	return 0;
}

/* Split one span by one regex: matches and the gaps between them. */
static int split_span(const pcre2_code *re, pcre2_match_data *md, const char *text,
                      struct span sp, struct spans *out)
{
	PCRE2_SPTR subj = (PCRE2_SPTR)(text + sp.off);
	size_t pos = 0, last = 0;
	int rc = 0;

	while (pos < sp.len && !rc) {
		int m = pcre2_match(re, subj, sp.len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
		if (m == PCRE2_ERROR_NOMATCH)
			break;
		if (m < 0)
			return TOK_E_REGEX;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		if (ov[1] == ov[0]) { /* empty match: step one character */
			pos = ov[0] + tok_utf8_len(subj[ov[0]]);
			continue;
		}
		rc = span_push(out, sp.off + last, ov[0] - last);
		if (!rc)
			rc = span_push(out, sp.off + ov[0], ov[1] - ov[0]);
		pos = last = ov[1];
	}
	if (!rc)
		rc = span_push(out, sp.off + last, sp.len - last);
	return rc;
}

static int pretokenize(const struct tok *t, const char *text, size_t n, struct spans *words)
{
	struct spans a = { 0 }, b = { 0 };
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	int rc = md ? span_push(&a, 0, n) : TOK_E_NOMEM;

	for (int r = 0; r < t->n_re && !rc; r++) {
		b.n = 0;
		for (size_t i = 0; i < a.n && !rc; i++)
			rc = split_span(t->re[r], md, text, a.v[i], &b);
		struct spans tmp = a;
		a = b;
		b = tmp;
	}
	pcre2_match_data_free(md);
	free(b.v);
	if (rc) {
		free(a.v);
		return rc;
	}
	*words = a;
	return 0;
}

/* ---- merges --------------------------------------------------------------- */

static int queue_pair(const struct tok *t, const char *w, const struct tok_sym *sym,
                      int32_t l, int32_t r, struct tok_heap *h)
{
	if (l < 0 || r < 0)
		return 0;
	int32_t rank = tok_merge_rank(t, w + sym[l].off, sym[l].n, w + sym[r].off, sym[r].n);
	if (rank < 0)
		return 0;
	return tok_heap_push(h, (struct tok_cand){ -(double)rank, l, r, sym[l].n + sym[r].n });
}

static int emit_symbols(const struct tok *t, const char *w, const struct tok_sym *sym,
                        size_t nsym, struct tok_ids *out)
{
	int rc = 0;

	for (size_t i = 0; i < nsym && !rc; i++) {
		if (!sym[i].n)
			continue;
		int32_t id = tok_lookup(t, w + sym[i].off, sym[i].n);
		if (id != TOK_NULL) {
			rc = tok_ids_push(out, id);
			continue;
		}
		for (uint32_t j = 0; j < sym[i].n && !rc; j++) {
			id = tok_lookup(t, w + sym[i].off + j, 1);
			if (id != TOK_NULL)
				rc = tok_ids_push(out, id);
		}
	}
	return rc;
}

static int merge_word(const struct tok *t, const char *w, size_t n, struct tok_sym *sym,
                      struct tok_heap *h, struct tok_ids *out)
{
	size_t nsym = tok_sym_split(w, n, sym);
	int rc;

	h->n = 0;
	rc = tok_sym_merge(t, w, sym, nsym, h, queue_pair);
	return rc ? rc : emit_symbols(t, w, sym, nsym, out);
}

static int encode_word(const struct tok *t, const char *s, size_t n, struct tok_buf *w,
                       struct tok_sym **sym, size_t *symcap, struct tok_heap *h,
                       struct tok_ids *out)
{
	int rc = 0;

	w->n = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char c[2];
		rc = tok_buf_put(w, c, tok_bpe_byte_char((unsigned char)s[i], c));
	}
	if (rc)
		return rc;
	if (t->ignore_merges) {
		int32_t id = tok_lookup(t, w->p, w->n);
		if (id != TOK_NULL)
			return tok_ids_push(out, id);
	}
	if (*symcap < n) {
		struct tok_sym *v = realloc(*sym, n * sizeof *v);
		if (!v)
			return TOK_E_NOMEM;
		*sym = v;
		*symcap = n;
	}
	return merge_word(t, w->p, w->n, *sym, h, out);
}

int tok_bpe_encode(const struct tok *t, const char *s, size_t n, struct tok_ids *out)
{
	struct tok_buf clean = { 0 }, w = { 0 };
	struct spans words = { 0 };
	struct tok_heap h = { 0 };
	struct tok_sym *sym = NULL;
	size_t symcap = 0;
	int rc = clean_utf8(s, n, &clean);

	if (!rc && clean.n)
		rc = pretokenize(t, clean.p, clean.n, &words);
	for (size_t i = 0; i < words.n && !rc; i++)
		rc = encode_word(t, clean.p + words.v[i].off, words.v[i].len, &w, &sym, &symcap, &h,
		                 out);
	free(clean.p);
	free(w.p);
	free(words.v);
	free(h.v);
	free(sym);
	return rc;
}
