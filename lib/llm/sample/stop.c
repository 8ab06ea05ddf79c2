/*
 * stop.c — stop strings matched on streamed, detokenized text
 * (struct smp_stop in include/plot/sampler.h).
 *
 * DESIGN
 *   buf holds the text not yet emitted: the held-back tail of earlier
 *   pieces followed by the new piece. Each feed looks for the earliest
 *   complete stop string in buf (ties: the lower index); failing that it
 *   holds back the longest suffix of buf that is a proper prefix of some
 *   stop string and emits the rest. A stop string that started in an
 *   earlier piece is thus found once its last byte arrives, and bytes that
 *   only looked like the start of one are emitted, unchanged, as soon as
 *   they no longer can be.
 *
 *   The emitted bytes are handed out as a pointer into buf, valid until the
 *   next call; so the held tail is moved to the front of buf lazily, at the
 *   start of the next call (emit_len remembers where it starts).
 *
 * INVARIANTS
 *   - held < max stop length: a longer tail would contain a full stop.
 *   - buf[emit_len .. emit_len + held) never contains a complete stop.
 *   - matched >= 0 only after a match; then nothing more is emitted.
 */
#include "plot/sampler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smp_stop {
	size_t n;
	char *stop[SMP_MAX_STOPS];
	size_t len[SMP_MAX_STOPS];
	char *buf;               /* (cap) pending bytes; never NULL */
	size_t cap;
	size_t emit_len;         /* bytes handed out by the last call */
	size_t held;             /* bytes after those, kept back */
	int matched;             /* index of the stop that matched, or -1 */
};

struct smp_stop *smp_stop_new(const char *const *stops, size_t n, char *err,
			      size_t errlen)
{
	struct smp_stop *st;

	if (n > SMP_MAX_STOPS) {
		snprintf(err, errlen, "stop: at most %d stop strings, got %zu",
			 SMP_MAX_STOPS, n);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strnlen(stops[i], SMP_MAX_STOP_LEN + 1);

		if (l == 0 || l > SMP_MAX_STOP_LEN) {
			snprintf(err, errlen, "stop[%zu]: length must be in "
				 "[1, %d] bytes, got %s", i, SMP_MAX_STOP_LEN,
				 l ? "more" : "0");
			return NULL;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st && !(st->buf = malloc(st->cap = 64))) {
		free(st);
		st = NULL;
	}
	for (size_t i = 0; st && i < n; i++) {
		st->len[i] = strlen(stops[i]);
		if (!(st->stop[st->n++] = strdup(stops[i]))) {
			smp_stop_free(st);
			st = NULL;
		}
	}
	if (!st)
		snprintf(err, errlen, "stop: out of memory");
	else
		st->matched = -1;
	return st;
}

void smp_stop_free(struct smp_stop *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		free(st->stop[i]);
	free(st->buf);
	free(st);
}

/* Move the held tail to the front and append piece; buf is then
 * buf[0..held). */
static int append(struct smp_stop *st, const char *piece, size_t len)
{
	size_t need;

	memmove(st->buf, st->buf + st->emit_len, st->held);
	st->emit_len = 0;
	if (len > SIZE_MAX - st->held)
		return -ENOMEM;
	need = st->held + len;
	if (need > st->cap) {
		size_t cap = need + need / 2;
		char *b = realloc(st->buf, cap);

		if (!b)
			return -ENOMEM;
		st->buf = b;
		st->cap = cap;
	}
	if (len)
		memcpy(st->buf + st->held, piece, len);
	st->held = need;
	return 0;
}

/* Earliest complete stop in buf[0..n): its offset, *which its index. */
static size_t find_stop(const struct smp_stop *st, size_t n, int *which)
{
	size_t best = SIZE_MAX;

	*which = -1;
	for (size_t i = 0; i < st->n; i++) {
		const char *p = memmem(st->buf, n, st->stop[i], st->len[i]);

		if (p && (size_t)(p - st->buf) < best) {
			best = (size_t)(p - st->buf);
			*which = (int)i;
		}
	}
	return best;
}

/* Longest suffix of buf[0..n) that is a proper prefix of a stop. */
static size_t hold_len(const struct smp_stop *st, size_t n)
{
	for (size_t k = n < SMP_MAX_STOP_LEN ? n : SMP_MAX_STOP_LEN - 1; k > 0;
	     k--) {
		const char *tail = st->buf + n - k;

		for (size_t i = 0; i < st->n; i++)
			if (st->len[i] > k && tail[0] == st->stop[i][0] &&
			    memcmp(tail, st->stop[i], k) == 0)
				return k;
	}
	return 0;
}

long smp_stop_feed(struct smp_stop *st, const char *piece, size_t len,
		   const char **text, int *which)
{
	size_t n, at;

	*text = st->buf;
	*which = st->matched;
	if (st->matched >= 0)
		return 0;
	if (append(st, piece, len) < 0)
		return -ENOMEM;
	n = st->held;
	*text = st->buf;
	at = find_stop(st, n, which);
	if (*which >= 0) {
		st->matched = *which;
		st->held = 0;
		st->emit_len = 0;
		return (long)at;
	}
	st->held = hold_len(st, n);
	st->emit_len = n - st->held;
	return (long)st->emit_len;
}

long smp_stop_flush(struct smp_stop *st, const char **text)
{
	long n = st->matched >= 0 ? 0 : (long)st->held;

	*text = st->buf + st->emit_len;
	st->emit_len = 0;
	st->held = 0;
	st->matched = -1;
	return n;
}
