/*
 * oai.h — the OpenAI-compatible HTTP API's JSON, mapped to and from plot's
 * own types (lib/oai/oai.c). Pure: no sockets, no pools, no HTTP; the
 * daemon's HTTP front (daemon/http.c) calls it, a unit test and a libFuzzer
 * harness drive it directly.
 *
 * REQUESTS
 *   oai_request_parse() turns the body of POST /v1/chat/completions or
 *   /v1/completions into a struct exec_request (the same struct the socket
 *   front builds from msgpack) plus the HTTP-only fields (stream,
 *   include_usage, model). Accepted: model, messages (content a string or
 *   an array of {type: "text"} parts) or prompt (a string or an array of
 *   one string), max_tokens, max_completion_tokens, temperature, top_p,
 *   seed, stop (string or array), stream, stream_options.include_usage,
 *   frequency_penalty, presence_penalty, n (1 only), and llama-server's
 *   top_k, min_p; plot's extras priority ("low".."critical"), deadline
 *   (seconds), cost (units), detach (bool), ignore_eos. Other fields are
 *   ignored, except those that ask for what plot cannot do (n > 1,
 *   logprobs, tools, best_of > 1, echo): those are rejected, naming the
 *   field, rather than silently served differently.
 *
 * RESPONSES
 *   oai_*_json() return malloc'd NUL-terminated JSON (NULL when out of
 *   memory): a whole response, one SSE chunk, the model list, an error in
 *   OpenAI's shape {"error": {"message", "type", "param", "code"}}.
 *
 * ERRORS
 *   Parsing returns 0 or -1 with err naming the field and what is wrong:
 *   "max_tokens: expected an integer in [1, 4294967295], got -3".
 */
#ifndef PLOT_OAI_H
#define PLOT_OAI_H

#include <stddef.h>
#include <stdint.h>

#include "plot/exec.h"

enum oai_kind { OAI_CHAT = 0, OAI_COMPLETION = 1 };

#define OAI_MAX_STOP 16          /* stop strings per request */
#define OAI_MAX_MESSAGES 4096    /* messages per chat */

/* A parsed request. Every pointer in ex points into this struct or the
 * parsed document it holds; free with oai_request_free. */
struct oai_request {
	int kind;                    /* enum oai_kind */
	const char *model;           /* NULL: the default model */
	int stream, include_usage, detach;
	struct exec_request ex;      /* prompt or messages, sampling, extras;
	                              * owner_uid is the caller's to fill */
	struct tmpl_msg *msgs;       /* ex.messages */
	char **texts;                /* joined contents of part arrays (owned) */
	const char *stops[OAI_MAX_STOP];
	void *doc;                   /* the JSON document (json_t *) */
};

int oai_request_parse(const char *body, size_t len, int kind, struct oai_request *out,
		      char *err, size_t errlen);
void oai_request_free(struct oai_request *r);

struct oai_usage {
	uint64_t prompt_tokens, completion_tokens;
};

/* One finished response: the whole text, why it ended ("stop", "length"),
 * and the token counts. id is "chatcmpl-<task>" or "cmpl-<task>". */
char *oai_response_json(int kind, uint64_t task, int64_t created, const char *model,
			const char *text, size_t len, const char *finish,
			const struct oai_usage *u);
/* One SSE chunk's JSON (without "data: " and the blank line): text (may be
 * empty), finish (NULL until the last), usage (NULL, or the final
 * usage-only chunk of include_usage, whose choices are empty). For a chat,
 * role says whether the delta carries role "assistant" (the first chunk). */
char *oai_chunk_json(int kind, uint64_t task, int64_t created, const char *model,
		     const char *text, size_t len, int role, const char *finish,
		     const struct oai_usage *u);
/* GET /v1/models: names[i] for i < n. */
char *oai_models_json(const char *const *names, size_t n, int64_t created);
/* The length of the longest prefix of s[0..len) that does not end inside a
 * UTF-8 sequence: a stream holds the rest back until its next bytes come. */
size_t oai_utf8_complete(const char *s, size_t len);
/* {"error": {...}}; param and code may be NULL (null in the JSON). */
char *oai_error_json(const char *message, const char *type, const char *param,
		     const char *code);

#endif
