/*
 * fuzz-oai.c — libFuzzer harness for the HTTP front's request decoding
 * (lib/oai). The first byte picks chat or completion; the rest is the body.
 * Any body either parses or fails with a message; a parsed request has a
 * prompt xor messages, every message a role and content, at most
 * OAI_MAX_STOP non-empty stop strings; and the response builders accept
 * its text (even bytes that are not UTF-8) and build JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/oai.h"

static void check(const struct oai_request *r)
{
	if (!!r->ex.prompt == !!r->ex.n_messages)
		abort();
	for (size_t i = 0; i < r->ex.n_messages; i++)
		if (!r->ex.messages[i].role || !r->ex.messages[i].content)
			abort();
	if (r->ex.n_stop > OAI_MAX_STOP)
		abort();
	for (size_t i = 0; i < r->ex.n_stop; i++)
		if (!r->ex.stop[i] || !r->ex.stop[i][0])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oai_request r;
	struct oai_usage u = { 1, 2 };
	char err[512] = "";

	if (size < 1)
		return 0;
	int kind = data[0] & 1 ? OAI_CHAT : OAI_COMPLETION;
	if (oai_request_parse((const char *)data + 1, size - 1, kind, &r, err, sizeof err) != 0) {
		if (!err[0])
			abort(); /* every failure explains itself */
		oai_request_free(&r);
		return 0;
	}
	check(&r);
	/* the raw body as model output: any bytes must make valid JSON */
	size_t ok = oai_utf8_complete((const char *)data + 1, size - 1);
	if (ok > size - 1 || size - 1 - ok > 3)
		abort();
	char *a = oai_response_json(kind, 1, 0, "m", (const char *)data + 1, size - 1, "stop", &u);
	char *b = oai_chunk_json(kind, 1, 0, "m", (const char *)data + 1, size - 1, 1, NULL, NULL);
	if (!a || !b)
		abort();
	free(a);
	free(b);
	oai_request_free(&r);
	return 0;
}
