/*
 * tok-spm.c — SentencePiece-style tokenizer ("llama" tokenizer model, used
 * by Gemma), as llama.cpp's llm_tokenizer_spm runs it.
 *
 * The input arrives with spaces already escaped to U+2581 (tok.c). It is
 * split into one symbol per UTF-8 character (by lead byte, clamped at the
 * end); every adjacent pair whose concatenation is a vocabulary token is
 * queued by that token's score; the best pair (highest score, leftmost on
 * ties) merges, and the pairs around it are queued afresh. Stale entries
 * are skipped by length. A final symbol that is not a token falls back to
 * byte tokens <0xXX> (else the byte itself as a token, else <unk>).
 *
 * Because a pair is only queued when its concatenation is a token, every
 * merged symbol is a token; llama.cpp's rev_merge re-segmentation can never
 * trigger and is not needed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llm/tok/tok-impl.h"

static int queue_pair(const struct tok *t, const char *w, const struct tok_sym *sym,
                      int32_t l, int32_t r, struct tok_heap *h)
{
	if (l < 0 || r < 0)
		return 0;
	int32_t id = tok_lookup(t, w + sym[l].off, sym[l].n + sym[r].n);
	if (id == TOK_NULL)
		return 0;
	return tok_heap_push(h, (struct tok_cand){ t->score[id], l, r, sym[l].n + sym[r].n });
}

static int push_byte(const struct tok *t, unsigned char b, struct tok_ids *out)
{
	char hex[7];
	int32_t id;

	snprintf(hex, sizeof hex, "<0x%02X>", b);
	id = tok_lookup(t, hex, 6);
	if (id == TOK_NULL)
		id = tok_lookup(t, (const char *)&b, 1);
	if (id == TOK_NULL)
		id = t->unk; /* llama.cpp would throw here */
	return id == TOK_NULL ? 0 : tok_ids_push(out, id);
}

static int emit(const struct tok *t, const char *w, const struct tok_sym *sym,
                struct tok_ids *out)
{
	int rc = 0;

	for (int32_t i = 0; i != -1 && !rc; i = sym[i].next) {
		int32_t id = tok_lookup(t, w + sym[i].off, sym[i].n);
		if (id != TOK_NULL) {
			rc = tok_ids_push(out, id);
			continue;
		}
		for (uint32_t j = 0; j < sym[i].n && !rc; j++)
			rc = push_byte(t, (unsigned char)w[sym[i].off + j], out);
	}
	return rc;
}

int tok_spm_encode(const struct tok *t, const char *w, size_t n, struct tok_ids *out)
{
	struct tok_sym *sym = malloc((n ? n : 1) * sizeof *sym);
	struct tok_heap h = { 0 };
	size_t nsym;
	int rc;

	if (!sym)
		return TOK_E_NOMEM;
	nsym = tok_sym_split(w, n, sym);
	rc = tok_sym_merge(t, w, sym, nsym, &h, queue_pair);
	if (!rc && nsym)
		rc = emit(t, w, sym, out);
	free(sym);
	free(h.v);
	return rc;
}
