/*
 * tok.h — tokenizer built from GGUF metadata: byte-level BPE (`gpt2`) and
 * SentencePiece-style (`llama`, used by Gemma), token for token what
 * llama.cpp produces for the same file and text.
 *
 * A struct tok is immutable once built, so any number of threads may encode
 * and decode with it at once; every call allocates its own scratch. Streaming
 * detokenization keeps its state in a caller-owned struct tok_stream, one per
 * sequence.
 *
 * Error convention: functions returning int give 0 (or a count) on success
 * and a negative TOK_E_* code on failure, filling err when one is passed.
 */
#ifndef PLOT_TOK_H
#define PLOT_TOK_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct tok;

#define TOK_NULL (-1)              /* "no such token" (absent bos, eot, ...) */
#define TOK_MAX_VOCAB (1u << 24)   /* bound on tokenizer.ggml.tokens */
#define TOK_MAX_TOKEN_LEN 4096     /* bound on one token's text, in bytes */
#define TOK_MAX_TEXT (256u << 20)  /* bound on the text given to tok_encode */

enum tok_err {
	TOK_E_INVAL = -1,  /* bad argument or bad vocabulary (err says which) */
	TOK_E_NOMEM = -2,
	TOK_E_TOOBIG = -3, /* input past TOK_MAX_TEXT */
	TOK_E_REGEX = -4,  /* PCRE2 failed to compile or match */
};

/* The tokenizer algorithm (tokenizer.ggml.model). */
enum tok_model {
	TOK_MODEL_BPE, /* "gpt2": byte-level BPE with merges */
	TOK_MODEL_SPM, /* "llama": SentencePiece-style, scores, byte fallback */
};

/* Token types as stored in tokenizer.ggml.token_type (llama.cpp numbering). */
enum tok_type {
	TOK_TYPE_UNDEFINED = 0, TOK_TYPE_NORMAL = 1, TOK_TYPE_UNKNOWN = 2,
	TOK_TYPE_CONTROL = 3, TOK_TYPE_USER_DEFINED = 4, TOK_TYPE_UNUSED = 5,
	TOK_TYPE_BYTE = 6,
};

/* Per-token attribute bits derived from the type (tok_attr()). */
enum tok_attr_bits {
	TOK_ATTR_NORMAL = 1 << 0, TOK_ATTR_UNKNOWN = 1 << 1, TOK_ATTR_CONTROL = 1 << 2,
	TOK_ATTR_USER_DEFINED = 1 << 3, TOK_ATTR_UNUSED = 1 << 4, TOK_ATTR_BYTE = 1 << 5,
};

/*
 * Everything a tokenizer is built from. tok_from_gguf() fills one from the
 * file; tests fill one by hand. Strings need not be NUL-terminated (lens);
 * token_lens or merge_lens NULL means strlen(). Integer fields set to -1 mean
 * "absent from the metadata": tok_new() then applies llama.cpp's defaults
 * for the model (SPM: bos 1, eos 2, unk 0, add_bos, add_space_prefix; BPE:
 * no bos/eos default, no add_bos except for llama3-style pre-tokenizers).
 * tok_new() copies everything; the desc may be freed afterwards.
 */
struct tok_desc {
	enum tok_model model;
	const char *pre;               /* tokenizer.ggml.pre; NULL = "default" */
	uint32_t n_tokens;
	const char *const *tokens;
	const uint32_t *token_lens;
	const float *scores;           /* NULL: all 0 */
	const int32_t *types;          /* enum tok_type; NULL: all NORMAL */
	uint32_t n_merges;             /* BPE only: "left right" strings */
	const char *const *merges;
	const uint32_t *merge_lens;
	int64_t bos, eos, eot, eom, unk, pad; /* ids or -1 */
	int add_bos, add_eos, add_space_prefix; /* 0/1 or -1 */
};

struct tok *tok_new(const struct tok_desc *d, char *err, size_t errlen);
/* Build from a GGUF file's tokenizer.* keys. Errors name the bad key
 * ("tokenizer.ggml.merges[17]: no space separating the pair"). */
struct tok *tok_from_gguf(const struct gguf *g, char *err, size_t errlen);
void tok_free(struct tok *t);

enum tok_model tok_model(const struct tok *t);
uint32_t tok_n_vocab(const struct tok *t);
int32_t tok_bos(const struct tok *t);
int32_t tok_eos(const struct tok *t);
/* End of turn: metadata, else found by text as llama.cpp does (<|eot_id|>,
 * <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, ...). */
int32_t tok_eot(const struct tok *t);
int32_t tok_unk(const struct tok *t);
int tok_add_bos(const struct tok *t);
int tok_add_eos(const struct tok *t);
/* True for every token that ends generation (eos, eot, eom and the
 * end-of-generation texts llama.cpp recognises). */
int tok_is_eog(const struct tok *t, int32_t id);
unsigned tok_attr(const struct tok *t, int32_t id); /* 0 when out of range */
/* The vocabulary text of a token (not NUL-terminated), NULL when out of range. */
const char *tok_text(const struct tok *t, int32_t id, size_t *len);
/* Id of an exact vocabulary text, or TOK_NULL. */
int32_t tok_find(const struct tok *t, const char *text, size_t len);

/* ---- encoding ----------------------------------------------------------- */

enum tok_encode_flags {
	TOK_ADD_SPECIAL = 1 << 0,   /* add bos/eos where the vocabulary says so */
	TOK_PARSE_SPECIAL = 1 << 1, /* control tokens written in the text become
	                               those tokens; without it they are text.
	                               User-defined tokens always match, as in
	                               llama.cpp and HF tokenizers. */
};

/* A growable id array; zero-initialise, release with tok_ids_free(). */
struct tok_ids {
	int32_t *v;
	size_t n, cap;
};
void tok_ids_free(struct tok_ids *ids);

/* Tokenize len bytes of text, appending to out. Invalid UTF-8 is tolerated
 * (BPE sees U+FFFD for each bad byte, as llama.cpp does). Returns 0 or a
 * negative TOK_E_*. */
int tok_encode(const struct tok *t, const char *text, size_t len, unsigned flags,
               struct tok_ids *out, char *err, size_t errlen);

/* ---- decoding ----------------------------------------------------------- */

enum tok_decode_flags {
	TOK_DECODE_SPECIAL = 1 << 0, /* render control/unknown tokens' text */
	TOK_DECODE_STRIP = 1 << 1,   /* drop the leading space SPM's
	                                add_space_prefix put before the text */
};

/* The raw bytes one token stands for (byte-level decoded, ▁ → space, <0xXX>
 * → that byte); may be part of a UTF-8 character. Returns the length, which
 * is 0 for a control token without TOK_DECODE_SPECIAL or an id out of range. */
size_t tok_piece(const struct tok *t, int32_t id, unsigned flags, const char **bytes);
/* The longest piece in the vocabulary, in bytes. */
size_t tok_max_piece(const struct tok *t);

/*
 * Streaming detokenizer for one sequence. Push ids one at a time; each push
 * writes only whole UTF-8 characters and holds back an incomplete tail until
 * the bytes that finish it arrive. A byte that cannot start or continue a
 * valid character is written as U+FFFD, so the output is always valid UTF-8.
 */
struct tok_stream {
	unsigned flags;    /* enum tok_decode_flags */
	unsigned n_pend;   /* held bytes of an incomplete character */
	unsigned char pend[4];
	int started;       /* a non-empty piece has been seen (for STRIP) */
};
void tok_stream_init(struct tok_stream *s, unsigned flags);
/* Output capacity that always suffices for one tok_stream_push/flush. */
size_t tok_stream_bound(const struct tok *t);
/* Feed one token; writes at most tok_stream_bound() bytes to out and
 * returns how many. */
size_t tok_stream_push(const struct tok *t, struct tok_stream *s, int32_t id, char *out);
/* End of sequence: an incomplete held character becomes U+FFFD. */
size_t tok_stream_flush(struct tok_stream *s, char *out);

/* Whole-sequence convenience over the stream: a malloc'd NUL-terminated
 * string in *out (length in *len). Returns 0 or TOK_E_NOMEM. */
int tok_decode(const struct tok *t, const int32_t *ids, size_t n, unsigned flags,
               char **out, size_t *len);

#endif
