/*
 * fuzz-tok.c — libFuzzer harness for the tokenizer: odd vocabularies and
 * odd text.
 *
 * Input layout: byte 0 picks the model (bit 0: SPM), the pre-tokenizer
 * (bits 1-2) and the encode flags (bits 3-4); then NUL-separated fields:
 * tokens up to an empty field, merges up to an empty field, and the rest is
 * the text. Token types cycle through every type, scores count down. When
 * the vocabulary builds, the text is encoded, the ids decoded whole and
 * streamed, and every id's piece touched, so ASan/UBSan see any slip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 512

static volatile size_t sink;

/* Next NUL-terminated field of [*p, end), or NULL at the end. */
static const char *field(const char **p, const char *end, uint32_t *len)
{
	if (*p >= end)
		return NULL;
	const char *s = *p, *z = memchr(s, 0, (size_t)(end - s));
	*len = (uint32_t)((z ? z : end) - s);
	*p = z ? z + 1 : end;
	return s;
}

static void exercise(const struct tok *t, const char *text, size_t n, unsigned flags)
{
	struct tok_ids ids = { 0 };
	char err[128], *s, *out = malloc(tok_stream_bound(t));
	size_t len;
	struct tok_stream st;

	if (out && !tok_encode(t, text, n, flags, &ids, err, sizeof err)) {
		if (!tok_decode(t, ids.v, ids.n, TOK_DECODE_SPECIAL, &s, &len)) {
			sink += len;
			free(s);
		}
		tok_stream_init(&st, TOK_DECODE_STRIP);
		for (size_t i = 0; i < ids.n; i++)
			sink += tok_stream_push(t, &st, ids.v[i], out);
		sink += tok_stream_flush(&st, out);
	}
	for (uint32_t id = 0; id < tok_n_vocab(t); id++) {
		const char *p;
		sink += tok_piece(t, (int32_t)id, TOK_DECODE_SPECIAL, &p);
	}
	free(out);
	tok_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pres[] = { "default", "smollm", "llama3", "qwen2" };
	const char *toks[MAXF], *merges[MAXF], *p, *end = (const char *)data + size, *f;
	uint32_t tlen[MAXF], mlen[MAXF], nt = 0, nm = 0, len;
	float scores[MAXF];
	int32_t types[MAXF];
	char err[256];

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	while (nt < MAXF && (f = field(&p, end, &len)) && len) {
		toks[nt] = f, tlen[nt] = len, scores[nt] = -(float)nt, types[nt] = (int32_t)(nt % 7);
		nt++;
	}
	while (nm < MAXF && (f = field(&p, end, &len)) && len)
		merges[nm] = f, mlen[nm++] = len;
	struct tok_desc d = {
		.model = (data[0] & 1) ? TOK_MODEL_SPM : TOK_MODEL_BPE, .pre = pres[(data[0] >> 1) & 3],
		.n_tokens = nt, .tokens = toks, .token_lens = tlen, .scores = scores, .types = types,
		.n_merges = nm, .merges = merges, .merge_lens = mlen,
		.bos = 0, .eos = 1, .eot = -1, .eom = -1, .unk = 2, .pad = -1,
		.add_bos = 1, .add_eos = 1, .add_space_prefix = -1,
	};
	struct tok *t = tok_new(&d, err, sizeof err);
	if (t) {
		exercise(t, p, (size_t)(end - p), (data[0] >> 3) & 3);
		tok_free(t);
	}
	return 0;
}
