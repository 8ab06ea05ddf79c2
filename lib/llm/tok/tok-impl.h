/*
 * tok-impl.h — the tokenizer's private state, shared by tok.c (building,
 * lookups, special-token partition, encode driver), tok-bpe.c (byte-level
 * BPE), tok-spm.c (SentencePiece-style) and tok-detok.c (pieces, streams).
 *
 * All token and merge strings live in one arena owned by the struct; hash
 * tables hold ids into it. Nothing here changes after tok_new() returns.
 */
#ifndef PLOT_TOK_IMPL_H
#define PLOT_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "plot/tok.h"

#define TOK_MAX_REGEX 4

struct tok {
	enum tok_model model;
	uint32_t n;               /* vocabulary size */
	char *arena;              /* every token text, then every merge text */
	uint64_t *off;            /* (n) token text offset in arena */
	uint32_t *len;            /* (n) token text length */
	float *score;             /* (n) */
	uint8_t *attr;            /* (n) enum tok_attr_bits */
	uint32_t *tslot;          /* text -> id+1 hash table (0 = empty) */
	uint64_t tmask;

	uint32_t n_merges;
	uint64_t *moff;           /* (n_merges) merge line offset in arena */
	uint32_t *mlen;           /* (n_merges) whole line length */
	uint32_t *msplit;         /* (n_merges) length of the left part */
	uint32_t *mslot;          /* (left,right) -> rank+1 hash table */
	uint64_t mmask;

	int32_t bos, eos, eot, eom, unk, pad;
	int add_bos, add_eos, add_space_prefix;
	int ignore_merges;        /* llama3-style: a word that is a token stays whole */

	int32_t *special;         /* control/user-defined/unknown ids, longest first */
	uint32_t n_special;
	int32_t *eog;             /* end-of-generation ids, sorted */
	uint32_t n_eog;

	pcre2_code *re[TOK_MAX_REGEX]; /* BPE pre-tokenizer, applied in order */
	int n_re;

	char *pieces;             /* decoded bytes of every token */
	uint64_t *poff;           /* (n) */
	uint32_t *plen;           /* (n) */
	uint32_t max_piece;
};

/* FNV-1a, continued from h (start with TOK_FNV_INIT). */
#define TOK_FNV_INIT 0xcbf29ce484222325ull
uint64_t tok_fnv(uint64_t h, const void *p, size_t n);

/* Token id of exact text, or TOK_NULL. */
int32_t tok_lookup(const struct tok *t, const char *s, size_t n);
/* Merge rank of the pair (a, b), or -1. */
int32_t tok_merge_rank(const struct tok *t, const char *a, size_t an, const char *b, size_t bn);

/* Length of the UTF-8 sequence a lead byte announces, as llama.cpp counts
 * it (continuation and invalid bytes count 1). */
static inline size_t tok_utf8_len(unsigned char c)
{
	static const unsigned char lut[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
	return lut[c >> 4];
}

/* A growable byte buffer for scratch strings. */
struct tok_buf {
	char *p;
	size_t n, cap;
};
int tok_buf_put(struct tok_buf *b, const void *p, size_t n);
int tok_ids_push(struct tok_ids *ids, int32_t id);

/*
 * Max-heap of candidate merges: larger key first, then smaller left index —
 * llama.cpp's order for both BPE (key = -rank) and SPM (key = score).
 */
struct tok_cand {
	double key;
	int32_t left, right;
	uint32_t size;            /* bytes of left + right when queued */
};
struct tok_heap {
	struct tok_cand *v;
	size_t n, cap;
};
/* realloc v to twice *cap elements (first when *cap is 0) and update
 * *cap; NULL (v and *cap untouched) on overflow or out of memory. The one
 * growth rule behind every push in the tokenizer. */
void *tok_grow(void *v, size_t *cap, size_t elem, size_t first);
int tok_heap_push(struct tok_heap *h, struct tok_cand c);
int tok_heap_pop(struct tok_heap *h, struct tok_cand *out); /* 0 = empty */

/* A symbol in the merge loops: a byte range of the word, linked to its
 * neighbours; n == 0 once merged into its left neighbour. */
struct tok_sym {
	int32_t prev, next;
	uint32_t off, n;
};
/* Split w[0..n) into one linked symbol per UTF-8 character (a truncated
 * tail is one short symbol); sym holds n entries. Returns the count. */
size_t tok_sym_split(const char *w, size_t n, struct tok_sym *sym);
/* Queues the merge of symbols l and r on h if the vocabulary allows it
 * (BPE: by merge rank; SPM: by token score); 0 or TOK_E_NOMEM. */
typedef int (*tok_pair_fn)(const struct tok *t, const char *w, const struct tok_sym *sym,
                           int32_t l, int32_t r, struct tok_heap *h);
/* The merge loop shared by BPE and SPM: queue adjacent pairs, then merge
 * the best candidate still valid and queue its new neighbours. */
int tok_sym_merge(const struct tok *t, const char *w, struct tok_sym *sym, size_t nsym,
                  struct tok_heap *h, tok_pair_fn queue_pair);

/* Pre-tokenizer regexes for a tokenizer.ggml.pre name; 0 or TOK_E_*. */
int tok_bpe_init(struct tok *t, const char *pre, char *err, size_t errlen);
void tok_bpe_free(struct tok *t);
/* Tokenize one raw-text fragment (no special tokens inside). */
int tok_bpe_encode(const struct tok *t, const char *s, size_t n, struct tok_ids *out);
int tok_spm_encode(const struct tok *t, const char *s, size_t n, struct tok_ids *out);
/* Byte-level BPE: the UTF-8 (1–2 bytes) standing for byte b. */
size_t tok_bpe_byte_char(unsigned char b, char out[2]);
/* Inverse: the byte a code point stands for, or -1. */
int tok_bpe_char_byte(uint32_t cp);

/* Fill pieces/poff/plen/max_piece; 0 or TOK_E_NOMEM. */
int tok_pieces_build(struct tok *t);

#endif
