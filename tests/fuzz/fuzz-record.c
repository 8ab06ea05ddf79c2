/*
 * fuzz-record.c — libFuzzer harness for the task record codec. Any input
 * must decode cleanly or fail with a message naming an offset; whatever
 * decodes must encode, and that encoding must decode to a record that
 * encodes to the same bytes (the codec is lossless on its own output).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_record r, back;
	char err[256] = "", *a, *b;
	size_t alen, blen;

	if (store_record_decode(data, size, &r, err, sizeof err) != 0) {
		if (!strstr(err, "offset"))
			abort(); /* every error names where */
		return 0;
	}
	if (store_record_encode(&r, &a, &alen) != 0)
		abort();
	if (store_record_decode(a, alen, &back, err, sizeof err) != 0)
		abort();
	if (store_record_encode(&back, &b, &blen) != 0)
		abort();
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
	free(a);
	free(b);
	store_record_clear(&r);
	store_record_clear(&back);
	return 0;
}
