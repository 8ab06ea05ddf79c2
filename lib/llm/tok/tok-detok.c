/*
 * tok-detok.c — token → bytes (pieces) and the streaming detokenizer.
 *
 * Pieces are computed once per vocabulary (tok_pieces_build), following
 * llama.cpp's token_to_piece: control, unknown and user-defined tokens are
 * their text; normal tokens are byte-decoded (BPE: GPT-2 byte map back to
 * bytes) or have U+2581 turned back into spaces (SPM); byte tokens <0xXX>
 * are that byte; unused and undefined tokens are empty. A BPE code point
 * outside the byte map is kept as its UTF-8 (llama.cpp writes a marker).
 *
 * The stream holds at most 3 bytes of an unfinished character between
 * pushes; its output is always valid UTF-8: a byte that cannot begin or
 * continue a character (strictly: no overlongs, no surrogates, <= U+10FFFF)
 * is written as U+FFFD and scanning resumes at the next byte.
 */
#include <stdlib.h>
#include <string.h>

#include "llm/tok/tok-impl.h"

static const char fffd[3] = { (char)0xef, (char)0xbf, (char)0xbd };

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* BPE: every code point of the token text back to its byte. */
static int bpe_decode(const char *s, size_t n, struct tok_buf *b)
{
	int rc = 0;

	for (size_t i = 0; i < n && !rc;) {
		size_t len = tok_utf8_len((unsigned char)s[i]);
		len = len < n - i ? len : n - i;
		uint32_t cp = len == 1 ? (unsigned char)s[i] :
		              len == 2 ? ((uint32_t)(s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f) : 0x110000;
		int byte = tok_bpe_char_byte(cp);
		if (byte >= 0) {
			unsigned char c = (unsigned char)byte;
			rc = tok_buf_put(b, &c, 1);
		} else {
			rc = tok_buf_put(b, s + i, len);
		}
		i += len;
	}
	return rc;
}

static int spm_decode(const char *s, size_t n, struct tok_buf *b)
{
	int rc = 0;

	for (size_t i = 0; i < n && !rc;) {
		if (n - i >= 3 && !memcmp(s + i, "\xe2\x96\x81", 3)) {
			rc = tok_buf_put(b, " ", 1);
			i += 3;
		} else {
			rc = tok_buf_put(b, s + i, 1);
			i++;
		}
	}
	return rc;
}

static int piece_of(const struct tok *t, int32_t id, struct tok_buf *b)
{
	const char *s = t->arena + t->off[id];
	size_t n = t->len[id];
	unsigned a = t->attr[id];

	if (a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_USER_DEFINED))
		return tok_buf_put(b, s, n);
	if (a & TOK_ATTR_NORMAL)
		return t->model == TOK_MODEL_BPE ? bpe_decode(s, n, b) : spm_decode(s, n, b);
	if (a & TOK_ATTR_BYTE) {
		if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hexval(s[3]) >= 0 &&
		    hexval(s[4]) >= 0) {
			unsigned char c = (unsigned char)(hexval(s[3]) * 16 + hexval(s[4]));
			return tok_buf_put(b, &c, 1);
		}
		return tok_buf_put(b, s, n);
	}
	return 0;
}

int tok_pieces_build(struct tok *t)
{
	struct tok_buf b = { 0 };
	int rc = 0;

	t->poff = malloc(t->n * sizeof *t->poff);
	t->plen = malloc(t->n * sizeof *t->plen);
	if (!t->poff || !t->plen)
		return TOK_E_NOMEM;
	for (uint32_t i = 0; i < t->n && !rc; i++) {
		size_t before = b.n;
		rc = piece_of(t, (int32_t)i, &b);
		t->poff[i] = before;
		t->plen[i] = (uint32_t)(b.n - before);
		if (t->plen[i] > t->max_piece)
			t->max_piece = t->plen[i];
	}
	if (rc || (!b.p && (rc = tok_buf_put(&b, "", 0)))) {
		free(b.p);
		return rc;
	}
	t->pieces = b.p;
	return 0;
}

size_t tok_piece(const struct tok *t, int32_t id, unsigned flags, const char **bytes)
{
	*bytes = "";
	if (id < 0 || (uint32_t)id >= t->n)
		return 0;
	if (!(flags & TOK_DECODE_SPECIAL) && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
		return 0;
	*bytes = t->pieces + t->poff[id];
	return t->plen[id];
}

size_t tok_max_piece(const struct tok *t)
{
	return t->max_piece;
}

/* ---- streaming ------------------------------------------------------------ */

void tok_stream_init(struct tok_stream *s, unsigned flags)
{
	memset(s, 0, sizeof *s);
	s->flags = flags;
}

size_t tok_stream_bound(const struct tok *t)
{
	return 3 * ((size_t)t->max_piece + 4) + 1;
}

/* Bytes a lead byte needs (0: cannot start a character). */
static unsigned need_of(unsigned char b)
{
	return b < 0x80 ? 1 : b < 0xc2 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf5 ? 4 : 0;
}

/* Is c a valid k-th byte (k >= 1) after lead? */
static int cont_ok(unsigned char lead, unsigned k, unsigned char c)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (k == 1) {
		if (lead == 0xe0)
			lo = 0xa0;
		else if (lead == 0xed)
			hi = 0x9f;
		else if (lead == 0xf0)
			lo = 0x90;
		else if (lead == 0xf4)
			hi = 0x8f;
	}
	return c >= lo && c <= hi;
}

/* Emit the whole characters of buf; keep an unfinished tail in s->pend. */
static size_t drain(struct tok_stream *s, const unsigned char *buf, size_t n, char *out)
{
	size_t o = 0, i = 0;

	while (i < n) {
		unsigned need = need_of(buf[i]), k = 1;
		while (need > 1 && k < need && i + k < n && cont_ok(buf[i], k, buf[i + k]))
			k++;
		if (need && k == need) {
			memcpy(out + o, buf + i, need);
			o += need, i += need;
		} else if (need && i + k == n) {
			break; /* valid so far, waits for more bytes */
		} else {
			memcpy(out + o, fffd, 3);
			o += 3, i++;
		}
	}
	s->n_pend = (unsigned)(n - i);
	memcpy(s->pend, buf + i, n - i);
	return o;
}

size_t tok_stream_push(const struct tok *t, struct tok_stream *s, int32_t id, char *out)
{
	const char *p;
	size_t n = tok_piece(t, id, s->flags, &p);
	unsigned char stackbuf[256], *buf = stackbuf;

	if (!n)
		return 0;
	if ((s->flags & TOK_DECODE_STRIP) && t->add_space_prefix && !s->started && p[0] == ' ')
		p++, n--;
	s->started = 1;
	if (s->n_pend + n > sizeof stackbuf && !(buf = malloc(s->n_pend + n)))
		return 0; /* out of memory: the piece is lost, the stream stays valid */
	memcpy(buf, s->pend, s->n_pend);
	memcpy(buf + s->n_pend, p, n);
	size_t o = drain(s, buf, s->n_pend + n, out);
	if (buf != stackbuf)
		free(buf);
	return o;
}

size_t tok_stream_flush(struct tok_stream *s, char *out)
{
	size_t o = s->n_pend ? 3 : 0;

	if (o)
		memcpy(out, fffd, 3);
	s->n_pend = 0;
	return o;
}

int tok_decode(const struct tok *t, const int32_t *ids, size_t n, unsigned flags, char **out,
               size_t *len)
{
	struct tok_stream s;
	struct tok_buf b = { 0 };
	char *chunk = malloc(tok_stream_bound(t));
	int rc = chunk ? tok_buf_put(&b, "", 0) : TOK_E_NOMEM;

	tok_stream_init(&s, flags);
	for (size_t i = 0; i < n && !rc; i++)
		rc = tok_buf_put(&b, chunk, tok_stream_push(t, &s, ids[i], chunk));
	if (!rc)
		rc = tok_buf_put(&b, chunk, tok_stream_flush(&s, chunk));
	free(chunk);
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	if (len)
		*len = b.n;
	return 0;
}
