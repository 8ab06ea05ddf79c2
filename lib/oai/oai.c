/*
 * oai.c — the OpenAI-compatible API's JSON <-> plot's struct exec_request
 * and responses (plot/oai.h). Pure: it only parses and builds JSON, so a
 * unit test and a fuzzer drive it without a daemon.
 *
 * DESIGN
 *   jansson parses the body (its own depth limit bounds nesting, and it
 *   refuses \u0000, so every string is a C string); each
 *   field is read by one small function that checks its type and range and
 *   names it in the error. Strings in the result point into the parsed
 *   document, which the request keeps until oai_request_free; only a
 *   message whose content is an array of parts gets its own joined copy.
 *   Range checks the engine already makes (temperature, top_p, penalties:
 *   smp_params_check) are left to it, so both fronts say the same thing.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/oai.h"
#include "plot/pool.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- scalar fields --------------------------------------------------------- */

/* A number field present and not null: 1 with *v set, 0 absent, -1 bad. */
static int get_num(json_t *o, const char *key, double *v, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_number(j))
		return fail(err, errlen, "%s: expected a number", key);
	*v = json_number_value(j);
	if (!isfinite(*v))
		return fail(err, errlen, "%s: expected a finite number", key);
	return 1;
}

/* An integer field in [lo, hi]: 1 with *v set, 0 absent, -1 bad. */
static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *v,
		   char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi) {
		if (json_is_integer(j))
			return fail(err, errlen, "%s: expected an integer in [%lld, %lld], got %lld",
				    key, lo, hi, (long long)json_integer_value(j));
		return fail(err, errlen, "%s: expected an integer in [%lld, %lld]", key, lo, hi);
	}
	*v = json_integer_value(j);
	return 1;
}

static int get_bool(json_t *o, const char *key, int *v, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_boolean(j))
		return fail(err, errlen, "%s: expected true or false", key);
	*v = json_is_true(j);
	return 1;
}

static int get_str(json_t *o, const char *key, const char **v, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);
	if (!j || json_is_null(j))
		return 0;
	if (!json_is_string(j))
		return fail(err, errlen, "%s: expected a string", key);
	*v = json_string_value(j); /* jansson refuses \u0000 without JSON_ALLOW_NUL */
	return 1;
}

/* ---- sampling and plot's extras -------------------------------------------- */

/* The ranges are the sampler's (smp_params_check), checked here too so
 * that every executor refuses the same values. */
struct num_field {
	const char *key;
	uint32_t has;
	size_t off;
	double lo, hi;
};

#define NF(k, h, m, lo, hi) { k, h, offsetof(struct exec_request, m), lo, hi }
static const struct num_field num_fields[] = {
	NF("temperature", EXEC_HAS_TEMPERATURE, temperature, 0, 100),
	NF("top_p", EXEC_HAS_TOP_P, top_p, 0, 1),
	NF("min_p", EXEC_HAS_MIN_P, min_p, 0, 1),
	NF("frequency_penalty", EXEC_HAS_FREQUENCY_PENALTY, frequency_penalty, -2, 2),
	NF("presence_penalty", EXEC_HAS_PRESENCE_PENALTY, presence_penalty, -2, 2),
};
#undef NF

static int parse_sampling(json_t *o, struct exec_request *x, char *err, size_t errlen)
{
	long long v;
	int rc;

	for (size_t i = 0; i < sizeof num_fields / sizeof num_fields[0]; i++) {
		const struct num_field *f = &num_fields[i];
		double d;
		if ((rc = get_num(o, f->key, &d, err, errlen)) < 0)
			return -1;
		if (rc && !(d >= f->lo && d <= f->hi))
			return fail(err, errlen, "%s: expected a number in [%g, %g], got %g", f->key,
				    f->lo, f->hi, d);
		if (rc) {
			memcpy((char *)x + num_fields[i].off, &d, sizeof(d));
			x->has |= num_fields[i].has;
		}
	}
	/* max_completion_tokens is the newer name; it wins when both are given */
	const char *mt[] = { "max_tokens", "max_completion_tokens" };
	for (size_t i = 0; i < 2; i++) {
		if ((rc = get_int(o, mt[i], 1, UINT32_MAX, &v, err, errlen)) < 0)
			return -1;
		if (rc) {
			x->max_tokens = (uint32_t)v;
			x->has |= EXEC_HAS_MAX_TOKENS;
		}
	}
	if ((rc = get_int(o, "top_k", 0, UINT32_MAX, &v, err, errlen)) < 0)
		return -1;
	if (rc) {
		x->top_k = (uint32_t)v;
		x->has |= EXEC_HAS_TOP_K;
	}
	/* OpenAI's seed is a signed 64-bit integer: its bits are the seed */
	if ((rc = get_int(o, "seed", INT64_MIN, INT64_MAX, &v, err, errlen)) < 0)
		return -1;
	if (rc) {
		x->seed = (uint64_t)v;
		x->has |= EXEC_HAS_SEED;
	}
	return 0;
}

static int parse_extras(json_t *o, struct oai_request *r, char *err, size_t errlen)
{
	struct exec_request *x = &r->ex;
	const char *prio = NULL;
	double dl;
	long long cost;
	int rc;

	x->priority = POOL_PRIO_NORMAL;
	if (get_str(o, "priority", &prio, err, errlen) < 0)
		return -1;
	if (prio && (x->priority = pool_prio_parse(prio)) < 0)
		return fail(err, errlen, "priority: expected low, normal, high or critical, got '%s'",
			    prio);
	if ((rc = get_num(o, "deadline", &dl, err, errlen)) < 0)
		return -1;
	if (rc) {
		if (!(dl > 0 && dl <= 1e9))
			return fail(err, errlen, "deadline: expected seconds in (0, 1e9], got %g", dl);
		x->timeout_ns = (uint64_t)(dl * 1e9);
		x->has |= EXEC_HAS_TIMEOUT;
	}
	if ((rc = get_int(o, "cost", 1, INT64_MAX, &cost, err, errlen)) < 0)
		return -1;
	if (rc) {
		x->cost = (uint64_t)cost;
		x->has |= EXEC_HAS_COST;
	}
	if (get_bool(o, "detach", &r->detach, err, errlen) < 0 ||
	    get_bool(o, "ignore_eos", &x->ignore_eos, err, errlen) < 0 ||
	    get_bool(o, "stream", &r->stream, err, errlen) < 0)
		return -1;
	json_t *so = json_object_get(o, "stream_options");
	if (so && !json_is_null(so)) {
		if (!json_is_object(so))
			return fail(err, errlen, "stream_options: expected an object");
		if (get_bool(so, "include_usage", &r->include_usage, err, errlen) < 0)
			return fail(err, errlen, "stream_options.include_usage: expected true or false");
	}
	return 0;
}

/* Fields asking for what plot cannot do: rejected, not silently ignored. */
static int parse_unsupported(json_t *o, char *err, size_t errlen)
{
	long long n;
	int b = 0;
	json_t *t;

	if (get_int(o, "n", 1, 1, &n, err, errlen) < 0)
		return fail(err, errlen, "n: only n=1 is supported (one choice per request)");
	if (get_int(o, "best_of", 1, 1, &n, err, errlen) < 0)
		return fail(err, errlen, "best_of: only 1 is supported");
	if (get_bool(o, "echo", &b, err, errlen) < 0 || b)
		return fail(err, errlen, "echo: not supported");
	t = json_object_get(o, "logprobs");
	if (t && !json_is_null(t) && !json_is_false(t))
		return fail(err, errlen, "logprobs: not supported");
	t = json_object_get(o, "tools");
	if (t && !json_is_null(t) && !(json_is_array(t) && json_array_size(t) == 0))
		return fail(err, errlen, "tools: not supported (no tool calling)");
	return 0;
}

static int parse_stop(json_t *o, struct oai_request *r, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, "stop"), *v;
	size_t i;

	if (!j || json_is_null(j))
		return 0;
	if (json_is_string(j)) {
		r->stops[0] = json_string_value(j);
		r->ex.n_stop = r->stops[0][0] ? 1 : 0;
	} else if (json_is_array(j)) {
		if (json_array_size(j) > OAI_MAX_STOP)
			return fail(err, errlen, "stop: at most %d strings, got %zu", OAI_MAX_STOP,
				    json_array_size(j));
		json_array_foreach(j, i, v) {
			if (!json_is_string(v) || !json_string_length(v))
				return fail(err, errlen, "stop[%zu]: expected a non-empty string", i);
			r->stops[r->ex.n_stop++] = json_string_value(v);
		}
	} else {
		return fail(err, errlen, "stop: expected a string or an array of strings");
	}
	r->ex.stop = r->stops;
	return 0;
}

/* ---- prompt and messages ------------------------------------------------------ */

static int parse_prompt(json_t *o, struct oai_request *r, char *err, size_t errlen)
{
	json_t *p = json_object_get(o, "prompt");

	if (json_is_array(p)) {
		if (json_array_size(p) != 1)
			return fail(err, errlen, "prompt: an array must hold exactly one string "
				    "(one prompt per request), got %zu items", json_array_size(p));
		p = json_array_get(p, 0);
	}
	if (!json_is_string(p))
		return fail(err, errlen, "prompt: expected a string (token arrays are not "
			    "supported)");
	r->ex.prompt = json_string_value(p);
	r->ex.raw = 1;
	return 0;
}

/* Content as an array of parts: the text parts joined, into r->texts[i]. */
static int join_parts(json_t *c, struct oai_request *r, size_t i, char *err, size_t errlen)
{
	size_t k, total = 1;
	json_t *part, *t;

	json_array_foreach(c, k, part) {
		t = json_object_get(part, "text");
		if (!json_is_string(json_object_get(part, "type")) ||
		    strcmp(json_string_value(json_object_get(part, "type")), "text") != 0 ||
		    !json_is_string(t))
			return fail(err, errlen, "messages[%zu].content[%zu]: only {\"type\": "
				    "\"text\", \"text\": ...} parts are supported", i, k);
		total += json_string_length(t);
	}
	char *s = malloc(total), *w = s;
	if (!s)
		return fail(err, errlen, "out of memory");
	json_array_foreach(c, k, part) {
		t = json_object_get(part, "text");
		memcpy(w, json_string_value(t), json_string_length(t));
		w += json_string_length(t);
	}
	*w = 0;
	r->texts[i] = s;
	return 0;
}

static int parse_message(json_t *m, struct oai_request *r, size_t i, char *err,
			 size_t errlen)
{
	json_t *role = json_object_get(m, "role"), *c = json_object_get(m, "content");

	if (!json_is_object(m))
		return fail(err, errlen, "messages[%zu]: expected an object", i);
	if (!json_is_string(role) || !json_string_length(role))
		return fail(err, errlen, "messages[%zu].role: expected a string", i);
	r->msgs[i].role = json_string_value(role);
	if (json_is_string(c)) {
		r->msgs[i].content = json_string_value(c);
		return 0;
	}
	if (json_is_null(c) || !c) {
		r->msgs[i].content = "";
		return 0;
	}
	if (!json_is_array(c))
		return fail(err, errlen, "messages[%zu].content: expected a string or an array "
			    "of text parts", i);
	if (join_parts(c, r, i, err, errlen) < 0)
		return -1;
	r->msgs[i].content = r->texts[i];
	return 0;
}

static int parse_messages(json_t *o, struct oai_request *r, char *err, size_t errlen)
{
	json_t *a = json_object_get(o, "messages");
	size_t n = json_array_size(a);

	if (!json_is_array(a) || n == 0)
		return fail(err, errlen, "messages: expected a non-empty array");
	if (n > OAI_MAX_MESSAGES)
		return fail(err, errlen, "messages: at most %d, got %zu", OAI_MAX_MESSAGES, n);
	r->msgs = calloc(n, sizeof(*r->msgs));
	r->texts = calloc(n, sizeof(*r->texts));
	if (!r->msgs || !r->texts)
		return fail(err, errlen, "out of memory");
	r->ex.messages = r->msgs;
	r->ex.n_messages = n;
	for (size_t i = 0; i < n; i++)
		if (parse_message(json_array_get(a, i), r, i, err, errlen) < 0)
			return -1;
	return 0;
}

/* ---- the entry point ------------------------------------------------------------ */

static int parse_body(json_t *o, struct oai_request *r, char *err, size_t errlen)
{
	if (get_str(o, "model", &r->model, err, errlen) < 0)
		return -1;
	if (r->model && !r->model[0])
		r->model = NULL;
	if (r->kind == OAI_CHAT ? parse_messages(o, r, err, errlen) < 0
				: parse_prompt(o, r, err, errlen) < 0)
		return -1;
	if (parse_unsupported(o, err, errlen) < 0 || parse_sampling(o, &r->ex, err, errlen) < 0 ||
	    parse_extras(o, r, err, errlen) < 0 || parse_stop(o, r, err, errlen) < 0)
		return -1;
	if (!r->stream && r->include_usage)
		r->include_usage = 0; /* usage is always in a whole response */
	return 0;
}

int oai_request_parse(const char *body, size_t len, int kind, struct oai_request *out,
		      char *err, size_t errlen)
{
	json_error_t je;

	memset(out, 0, sizeof(*out));
	out->kind = kind;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return fail(err, errlen, "malformed JSON at line %d column %d: %s", je.line,
			    je.column, je.text);
	out->doc = o;
	if (!json_is_object(o))
		return fail(err, errlen, "the body must be a JSON object");
	return parse_body(o, out, err, errlen);
}

void oai_request_free(struct oai_request *r)
{
	if (r->texts)
		for (size_t i = 0; i < r->ex.n_messages; i++)
			free(r->texts[i]);
	free(r->texts);
	free(r->msgs);
	json_decref(r->doc);
	memset(r, 0, sizeof(*r));
}

/* ---- responses ------------------------------------------------------------------- */

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static json_t *usage_json(const struct oai_usage *u)
{
	return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens,
			 "completion_tokens", (json_int_t)u->completion_tokens, "total_tokens",
			 (json_int_t)(u->prompt_tokens + u->completion_tokens));
}

static json_t *head(int kind, uint64_t task, int64_t created, const char *model,
		    const char *object)
{
	char id[48];
	snprintf(id, sizeof(id), "%s-%llu", kind == OAI_CHAT ? "chatcmpl" : "cmpl",
		 (unsigned long long)task);
	return json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", object, "created",
			 (json_int_t)created, "model", model);
}

/* A JSON string of text; bytes that are not UTF-8 become U+FFFD (a model
 * may emit them; jansson refuses to dump them). */
static size_t seq_len(unsigned char c)
{
	return c < 0x80 ? 1 : c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
}

static json_t *text_json(const char *text, size_t len)
{
	json_t *j = json_stringn(text, len);
	if (j || len > SIZE_MAX / 3 - 1)
		return j;
	char *s = malloc(len * 3 + 1), *w = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = seq_len((unsigned char)text[i]);
		json_t *p = n && i + n <= len ? json_stringn(text + i, n) : NULL;
		if (p) { /* one valid sequence: kept */
			json_decref(p);
			memcpy(w, text + i, n);
			w += n;
			i += n;
		} else {
			memcpy(w, "\xef\xbf\xbd", 3);
			w += 3;
			i++;
		}
	}
	j = json_stringn(s, (size_t)(w - s));
	free(s);
	return j;
}

size_t oai_utf8_complete(const char *s, size_t len)
{
	size_t i = len, back = 0;
	/* step back over at most 3 continuation bytes to the last lead byte */
	while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0)
		return len; /* continuation bytes without a lead: invalid, not held */
	unsigned char c = (unsigned char)s[i - 1];
	size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return need > back + 1 && need <= 4 && c >= 0xc0 ? i - 1 : len;
}

/* One choice: text (completion) or message/delta (chat). */
static json_t *choice(int kind, const char *text, size_t len, const char *key, int role,
		      const char *finish)
{
	json_t *c = json_pack("{s:i,s:o,s:n}", "index", 0, "finish_reason",
			      finish ? json_string(finish) : json_null(), "logprobs");
	json_t *t = text ? text_json(text, len) : json_null();
	if (!c || !t) {
		json_decref(c);
		json_decref(t);
		return NULL;
	}
	if (kind == OAI_COMPLETION) {
		json_object_set_new(c, "text", t);
		return c;
	}
	json_t *m = json_object();
	if (role)
		json_object_set_new(m, "role", json_string("assistant"));
	if (text)
		json_object_set_new(m, "content", t);
	else
		json_decref(t);
	json_object_set_new(c, key, m);
	return c;
}

char *oai_response_json(int kind, uint64_t task, int64_t created, const char *model,
			const char *text, size_t len, const char *finish,
			const struct oai_usage *u)
{
	json_t *o = head(kind, task, created, model,
			 kind == OAI_CHAT ? "chat.completion" : "text_completion");
	json_t *c = choice(kind, text ? text : "", len, "message", 1, finish);
	if (!o || !c) {
		json_decref(o);
		json_decref(c);
		return NULL;
	}
	json_object_set_new(o, "choices", json_pack("[o]", c));
	json_object_set_new(o, "usage", usage_json(u));
	return dump(o);
}

char *oai_chunk_json(int kind, uint64_t task, int64_t created, const char *model,
		     const char *text, size_t len, int role, const char *finish,
		     const struct oai_usage *u)
{
	json_t *o = head(kind, task, created, model,
			 kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion");
	if (!o)
		return NULL;
	if (u) {
		json_object_set_new(o, "choices", json_array());
		json_object_set_new(o, "usage", usage_json(u));
		return dump(o);
	}
	json_t *c = choice(kind, len || kind == OAI_COMPLETION || role ? text ? text : ""
			   : NULL, len, "delta", role, finish);
	if (!c) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "choices", json_pack("[o]", c));
	return dump(o);
}

char *oai_models_json(const char *const *names, size_t n, int64_t created)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:s}", "id", names[i], "object",
						   "model", "created", (json_int_t)created,
						   "owned_by", "plot"));
	return dump(json_pack("{s:s,s:o}", "object", "list", "data", a));
}

char *oai_error_json(const char *message, const char *type, const char *param,
		     const char *code)
{
	return dump(json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", message, "type", type,
			      "param", param ? json_string(param) : json_null(), "code",
			      code ? json_string(code) : json_null()));
}
