/*
 * tok-tool — the tokenizer (lib/llm/tok/tok*.c) on a GGUF file, for the pytest
 * oracle and peer tests (tests/ref/test_tok.py, tests/ref/peer_tok.py).
 *
 *   tok-tool encode MODEL [special] [add]  < text   ids, one line, space-separated
 *   tok-tool decode MODEL [special]        < ids    the text, streamed token by token
 *   tok-tool pieces MODEL [special]                 every token's piece, hex, one a line
 *   tok-tool bench MODEL [special]  < text          encode/decode timing (make bench-tok)
 *   tok-tool info MODEL                             "bos N eos N ... eog N,N,..."
 *
 * "special" turns on TOK_PARSE_SPECIAL (encode) or TOK_DECODE_SPECIAL
 * (decode); "add" turns on TOK_ADD_SPECIAL. Errors go to stderr, exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plot/gguf.h"
#include "plot/tok.h"

static char *slurp(size_t *n)
{
	size_t cap = 1 << 16;
	char *p = malloc(cap);

	*n = 0;
	while (p) {
		size_t r = fread(p + *n, 1, cap - *n, stdin);
		*n += r;
		if (*n < cap)
			break;
		char *q = realloc(p, cap *= 2);
		if (!q)
			free(p);
		p = q;
	}
	return p;
}

static int has(int argc, char **argv, const char *word)
{
	for (int i = 3; i < argc; i++)
		if (!strcmp(argv[i], word))
			return 1;
	return 0;
}

static int do_encode(const struct tok *t, unsigned flags)
{
	size_t n;
	char *text = slurp(&n), err[256];
	struct tok_ids ids = { 0 };

	if (!text || tok_encode(t, text, n, flags, &ids, err, sizeof err)) {
		fprintf(stderr, "tok-tool: encode: %s\n", text ? err : "out of memory");
		return 1;
	}
	for (size_t i = 0; i < ids.n; i++)
		printf(i ? " %d" : "%d", ids.v[i]);
	printf("\n");
	free(text);
	tok_ids_free(&ids);
	return 0;
}

static int do_decode(const struct tok *t, unsigned flags)
{
	struct tok_stream s;
	char *out = malloc(tok_stream_bound(t));
	long id;

	if (!out)
		return 1;
	tok_stream_init(&s, flags);
	while (scanf("%ld", &id) == 1)
		fwrite(out, 1, tok_stream_push(t, &s, (int32_t)id, out), stdout);
	fwrite(out, 1, tok_stream_flush(&s, out), stdout);
	free(out);
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Encode the text, then decode its ids through a stream, each for at least
 * a second; prints per-pass seconds (the best of the passes). */
static int do_bench(const struct tok *t, unsigned flags)
{
	size_t n;
	char *text = slurp(&n), *out = malloc(tok_stream_bound(t)), err[256];
	struct tok_ids ids = { 0 };
	double best_enc = 1e30, best_dec = 1e30, start = now();

	for (int pass = 0; text && out && (pass < 3 || now() - start < 1.0); pass++) {
		double t0 = now();
		ids.n = 0;
		if (tok_encode(t, text, n, flags, &ids, err, sizeof err))
			return 1;
		double t1 = now();
		struct tok_stream s;
		size_t bytes = 0;
		tok_stream_init(&s, TOK_DECODE_SPECIAL);
		for (size_t i = 0; i < ids.n; i++)
			bytes += tok_stream_push(t, &s, ids.v[i], out);
		double t2 = now();
		best_enc = t1 - t0 < best_enc ? t1 - t0 : best_enc;
		best_dec = t2 - t1 < best_dec ? t2 - t1 : best_dec;
		if (bytes + tok_stream_flush(&s, out) != n)
			return 1;
	}
	printf("bytes %zu tokens %zu encode_s %.6f decode_s %.6f\n", n, ids.n, best_enc, best_dec);
	free(text);
	free(out);
	tok_ids_free(&ids);
	return 0;
}

static int do_info(const struct tok *t)
{
	printf("n_vocab %u bos %d eos %d eot %d unk %d add_bos %d add_eos %d eog", tok_n_vocab(t),
	       tok_bos(t), tok_eos(t), tok_eot(t), tok_unk(t), tok_add_bos(t), tok_add_eos(t));
	for (uint32_t id = 0, first = 1; id < tok_n_vocab(t); id++)
		if (tok_is_eog(t, (int32_t)id)) {
			printf("%s%u", first ? " " : ",", id);
			first = 0;
		}
	printf("\n");
	return 0;
}

static int do_pieces(const struct tok *t, unsigned flags)
{
	for (uint32_t id = 0; id < tok_n_vocab(t); id++) {
		const char *p;
		size_t n = tok_piece(t, (int32_t)id, flags, &p);
		for (size_t i = 0; i < n; i++)
			printf("%02x", (unsigned char)p[i]);
		printf("%s\n", n ? "" : "-");
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[512];
	int rc = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: tok-tool encode|decode|pieces|bench|info MODEL [special] [add]\n");
		return 2;
	}
	struct gguf *g = gguf_open(argv[2], err, sizeof err);
	struct tok *t = g ? tok_from_gguf(g, err, sizeof err) : NULL;
	if (!t) {
		fprintf(stderr, "tok-tool: %s: %s\n", argv[2], err);
		gguf_close(g);
		return 1;
	}
	if (!strcmp(argv[1], "encode"))
		rc = do_encode(t, (has(argc, argv, "special") ? TOK_PARSE_SPECIAL : 0) |
		                      (has(argc, argv, "add") ? TOK_ADD_SPECIAL : 0));
	else if (!strcmp(argv[1], "decode"))
		rc = do_decode(t, has(argc, argv, "special") ? TOK_DECODE_SPECIAL : 0);
	else if (!strcmp(argv[1], "pieces"))
		rc = do_pieces(t, has(argc, argv, "special") ? TOK_DECODE_SPECIAL : 0);
	else if (!strcmp(argv[1], "bench"))
		rc = do_bench(t, has(argc, argv, "special") ? TOK_PARSE_SPECIAL : 0);
	else if (!strcmp(argv[1], "info"))
		rc = do_info(t);
	tok_free(t);
	gguf_close(g);
	return rc;
}
