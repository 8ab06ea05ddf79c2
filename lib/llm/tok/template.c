/*
 * template.c — chat-template families (see include/plot/template.h).
 *
 * Design: detection looks for each family's markers in the Jinja text and
 * pulls out the few literals that vary between a family's templates (the
 * ChatML default system message, Gemma's system/user separator) by reading
 * Jinja string literals where they sit. Rendering is one small function per
 * family that follows its canonical template statement by statement; the
 * comments quote the Jinja they mirror. Python's str.strip() (Jinja's trim
 * filter) is reproduced on UTF-8 with Python's notion of whitespace.
 *
 * Invariants: a struct tmpl is immutable after creation; rendered text is
 * bounded by TMPL_MAX_TEXT; lib code never prints, errors go to err.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/gguf.h"
#include "plot/template.h"
#include "util.h"

struct tmpl {
	enum tmpl_family family;
	char *default_system;     /* chatml: used when messages[0] is not system */
	char *gemma_sep;          /* gemma: after the folded system message */
	int gemma_no_system;      /* gemma 1/2: a system message is an error */
	char *llama3_date;        /* llama 3.1+: the system header's date */
};

static const char *const family_names[] = {
	[TMPL_RAW] = "raw", [TMPL_CHATML] = "chatml", [TMPL_LLAMA3] = "llama3",
	[TMPL_GEMMA] = "gemma", [TMPL_LLAMA2] = "llama2", [TMPL_MISTRAL] = "mistral",
};

const char *tmpl_family_name(enum tmpl_family f)
{
	return (unsigned)f < sizeof family_names / sizeof family_names[0] ? family_names[f] : "?";
}

int tmpl_family_parse(const char *name, enum tmpl_family *out)
{
	for (unsigned f = 0; f < sizeof family_names / sizeof family_names[0]; f++)
		if (!strcmp(name, family_names[f])) {
			*out = (enum tmpl_family)f;
			return 0;
		}
	return -1;
}

/* ---- reading the Jinja text ------------------------------------------------ */

static const char *find(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle));
}

/* Decode the Jinja string literal whose opening quote is at q (end: e). */
static char *read_literal(const char *q, const char *e)
{
	char quote = *q, *out = malloc((size_t)(e - q) + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *p = q + 1; p < e; p++) {
		if (*p == quote) {
			*o = 0;
			return out;
		}
		if (*p == '\\' && p + 1 < e) {
			char c = *++p;
			*o++ = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		} else {
			*o++ = *p;
		}
	}
	free(out);
	return NULL; /* unterminated */
}

/* The literal that contains position at: back up to its opening quote. */
static char *literal_around(const char *s, const char *at, const char *e)
{
	for (const char *p = at; p > s; p--) {
		if ((p[-1] == '\'' || p[-1] == '"') && (p - 1 == s || p[-2] != '\\'))
			return read_literal(p - 1, e);
	}
	return NULL;
}

/* ChatML: the first literal "<|im_start|>system\n<text><|im_end|>..." */
static int chatml_default(struct tmpl *t, const char *s, size_t n)
{
	const char *e = s + n, *p = s;

	while ((p = find(p, (size_t)(e - p), "<|im_start|>system"))) {
		char *lit = literal_around(s, p, e);
		const char *head = "<|im_start|>system\n";
		char *end = lit ? strstr(lit, "<|im_end|>") : NULL;
		if (lit && !strncmp(lit, head, strlen(head)) && end && end > lit + strlen(head)) {
			*end = 0;
			t->default_system = strdup(lit + strlen(head));
			free(lit);
			return t->default_system ? 0 : -1;
		}
		free(lit);
		p++;
	}
	return 0;
}

/* Gemma: {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%} */
static int gemma_variant(struct tmpl *t, const char *s, size_t n)
{
	const char *key = "first_user_prefix = messages[0]['content'] + ";
	const char *p = find(s, n, key);

	t->gemma_no_system = find(s, n, "System role not supported") != NULL;
	if (p) {
		p += strlen(key);
		if (p < s + n && (*p == '\'' || *p == '"'))
			t->gemma_sep = read_literal(p, s + n);
	}
	if (!t->gemma_sep)
		t->gemma_sep = strdup("\n\n");
	return t->gemma_sep ? 0 : -1;
}

/* Llama 3.1+: {%- set date_string = "26 Jul 2024" %}, the date the template
 * writes when the caller defines neither date_string nor strftime_now. */
static int llama3_date(struct tmpl *t, const char *s, size_t n)
{
	const char *key = "set date_string = ", *e = s + n, *p = s;

	while (!t->llama3_date && (p = find(p, (size_t)(e - p), key))) {
		p += strlen(key);
		if (p < e && (*p == '"' || *p == '\''))
			t->llama3_date = read_literal(p, e);
	}
	if (!t->llama3_date)
		t->llama3_date = strdup("26 Jul 2024");
	return t->llama3_date ? 0 : -1;
}

static int detect(struct tmpl *t, const char *s, size_t n, char *err, size_t errlen)
{
	if (find(s, n, "<|im_start|>")) {
		t->family = TMPL_CHATML;
		return chatml_default(t, s, n);
	}
	if (find(s, n, "<|start_header_id|>")) {
		t->family = TMPL_LLAMA3;
		return find(s, n, "Cutting Knowledge Date") ? llama3_date(t, s, n) : 0;
	}
	if (find(s, n, "<start_of_turn>")) {
		t->family = TMPL_GEMMA;
		return gemma_variant(t, s, n);
	}
	if (find(s, n, "[INST]")) {
		if (find(s, n, "[AVAILABLE_TOOLS]") || find(s, n, "[SYSTEM_PROMPT]")) {
			plot_seterr(err, errlen, "chat template: Mistral variant with tools/system prompt "
			            "markers is not supported; choose a family by name");
			return -1;
		}
		t->family = find(s, n, "<<SYS>>") ? TMPL_LLAMA2 : TMPL_MISTRAL;
		return 0;
	}
	plot_seterr(err, errlen, "unknown chat template: none of the markers <|im_start|>, "
	            "<|start_header_id|>, <start_of_turn>, [INST]; use the raw family");
	return -1;
}

struct tmpl *tmpl_new(const char *jinja, size_t len, char *err, size_t errlen)
{
	struct tmpl *t = calloc(1, sizeof *t);

	if (!t) {
		plot_seterr(err, errlen, "chat template: out of memory");
		return NULL;
	}
	if (len > TMPL_MAX_TEXT) {
		plot_seterr(err, errlen, "chat template: %zu bytes (max %u)", len, TMPL_MAX_TEXT);
	} else if (!detect(t, jinja, len, err, errlen)) {
		return t;
	} else if (err && errlen && !*err) {
		plot_seterr(err, errlen, "chat template: out of memory");
	}
	tmpl_free(t);
	return NULL;
}

struct tmpl *tmpl_new_family(enum tmpl_family f)
{
	struct tmpl *t = calloc(1, sizeof *t);

	if (!t || (unsigned)f > TMPL_MISTRAL)
		goto fail;
	t->family = f;
	if (f == TMPL_GEMMA && !(t->gemma_sep = strdup("\n\n")))
		goto fail;
	return t;
fail:
	tmpl_free(t);
	return NULL;
}

static int arch_is_gemma(const struct gguf *g)
{
	struct gguf_str a;

	return !gguf_get_str(g, "general.architecture", &a) && a.len >= 5 &&
	       !memcmp(a.s, "gemma", 5);
}

struct tmpl *tmpl_from_gguf(const struct gguf *g, char *err, size_t errlen)
{
	struct gguf_str s;

	if (err && errlen)
		*err = 0;
	if (!gguf_get_str(g, "tokenizer.chat_template", &s))
		return tmpl_new(s.s, s.len, err, errlen);
	if (gguf_find_key(g, "tokenizer.chat_template") >= 0) {
		plot_seterr(err, errlen, "tokenizer.chat_template: not a string");
		return NULL;
	}
	if (arch_is_gemma(g)) {
		struct tmpl *t = tmpl_new_family(TMPL_GEMMA);
		if (!t)
			plot_seterr(err, errlen, "chat template: out of memory");
		return t;
	}
	plot_seterr(err, errlen, "tokenizer.chat_template: missing; choose a family by name");
	return NULL;
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	free(t->default_system);
	free(t->gemma_sep);
	free(t->llama3_date);
	free(t);
}

enum tmpl_family tmpl_family(const struct tmpl *t)
{
	return t->family;
}

int tmpl_emits_bos(const struct tmpl *t)
{
	return t->family != TMPL_CHATML && t->family != TMPL_RAW;
}

/* ---- rendering ---------------------------------------------------------------- */

struct out {
	char *p;
	size_t n, cap;
	int oom;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->n + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->n + n + 1)
			cap *= 2;
		char *q = o->n + n > TMPL_MAX_TEXT ? NULL : realloc(o->p, cap);
		if (!q) {
			o->oom = 1;
			return;
		}
		o->p = q;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = 0;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Python's str.isspace() for the code point at s (length in *len). */
static int py_space(const unsigned char *s, size_t n, size_t *len)
{
	uint32_t cp;

	*len = 1;
	if (s[0] < 0x80)
		return (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20);
	if ((s[0] & 0xe0) == 0xc0 && n >= 2) {
		cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f), *len = 2;
	} else if ((s[0] & 0xf0) == 0xe0 && n >= 3) {
		cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		*len = 3;
	} else {
		return 0;
	}
	return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* Jinja's trim / Python's strip(): whitespace off both ends. */
static void put_stripped(struct out *o, const char *s)
{
	const unsigned char *b = (const unsigned char *)s, *e = b + strlen(s);
	size_t len;

	while (b < e && py_space(b, (size_t)(e - b), &len))
		b += len;
	while (e > b) {
		const unsigned char *c = e - 1;
		while (c > b && (*c & 0xc0) == 0x80)
			c--;
		if (!py_space(c, (size_t)(e - c), &len) || c + len != e)
			break;
		e = c;
	}
	put(o, (const char *)b, (size_t)(e - b));
}

static int is(const struct tmpl_msg *m, const char *role)
{
	return !strcmp(m->role, role);
}

/* (message['role'] == 'user') != (loop.index0 % 2 == 0) -> raise */
static int alternation_ok(const struct tmpl_msg *m, size_t i, char *err, size_t errlen)
{
	if (is(m, "user") == (i % 2 == 0))
		return 1;
	plot_seterr(err, errlen, "message %zu (%s): conversation roles must alternate "
	            "user/assistant/user/assistant/...", i, m->role);
	return 0;
}

static int render_chatml(const struct tmpl *t, const struct tmpl_msg *m, size_t n, int gen,
                         struct out *o)
{
	/* {% if loop.first and messages[0]['role'] != 'system' %} default system */
	if (t->default_system && !is(&m[0], "system")) {
		puts_(o, "<|im_start|>system\n");
		puts_(o, t->default_system);
		puts_(o, "<|im_end|>\n");
	}
	for (size_t i = 0; i < n; i++) {
		/* '<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n' */
		puts_(o, "<|im_start|>");
		puts_(o, m[i].role);
		puts_(o, "\n");
		puts_(o, m[i].content);
		puts_(o, "<|im_end|>\n");
	}
	if (gen)
		puts_(o, "<|im_start|>assistant\n");
	return 0;
}

/* One Llama 3 turn, the same in 3.0 and 3.1+: '<|start_header_id|>' + role +
 * '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>' */
static void put_llama3_turn(struct out *o, const struct tmpl_msg *m)
{
	puts_(o, "<|start_header_id|>");
	puts_(o, m->role);
	puts_(o, "<|end_header_id|>\n\n");
	put_stripped(o, m->content);
	puts_(o, "<|eot_id|>");
}

#define LLAMA3_GEN_PROMPT "<|start_header_id|>assistant<|end_header_id|>\n\n"

/* Llama 3.1+: bos, a system header that always exists (date lines, then
 * the trimmed system message), then the turns as in 3.0. Tool turns and
 * tool definitions are not rendered: such messages are refused. */
static int render_llama31(const struct tmpl *t, const struct tmpl_msg *m, size_t n, int gen,
                          const char *bos, struct out *o, char *err, size_t errlen)
{
	puts_(o, bos);
	puts_(o, "<|start_header_id|>system<|end_header_id|>\n\n"
	         "Cutting Knowledge Date: December 2023\nToday Date: ");
	puts_(o, t->llama3_date);
	puts_(o, "\n\n");
	if (is(&m[0], "system"))
		put_stripped(o, m[0].content), m++, n--;
	puts_(o, "<|eot_id|>");
	for (size_t i = 0; i < n; i++) {
		if (is(&m[i], "tool") || is(&m[i], "ipython")) {
			plot_seterr(err, errlen, "message %zu (%s): tool turns are not supported", i, m[i].role);
			return -1;
		}
		put_llama3_turn(o, &m[i]);
	}
	if (gen)
		puts_(o, LLAMA3_GEN_PROMPT);
	return 0;
}

static int render_llama3(const struct tmpl_msg *m, size_t n, int gen, const char *bos,
                         struct out *o)
{
	for (size_t i = 0; i < n; i++) {
		/* (bos_token if index0 == 0) + the turn */
		if (!i)
			puts_(o, bos);
		put_llama3_turn(o, &m[i]);
	}
	if (gen)
		puts_(o, LLAMA3_GEN_PROMPT);
	return 0;
}

static int render_gemma(const struct tmpl *t, const struct tmpl_msg *m, size_t n, int gen,
                        const char *bos, struct out *o, char *err, size_t errlen)
{
	const char *prefix = NULL;

	puts_(o, bos);
	if (is(&m[0], "system")) {
		if (t->gemma_no_system) {
			plot_seterr(err, errlen, "message 0 (system): System role not supported");
			return -1;
		}
		prefix = m[0].content; /* + sep, untrimmed, before the first turn */
		m++, n--;
	}
	for (size_t i = 0; i < n; i++) {
		if (!alternation_ok(&m[i], i, err, errlen))
			return -1;
		/* '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first) */
		puts_(o, "<start_of_turn>");
		puts_(o, is(&m[i], "assistant") ? "model" : m[i].role);
		puts_(o, "\n");
		if (!i && prefix) {
			puts_(o, prefix);
			puts_(o, t->gemma_sep);
		}
		put_stripped(o, m[i].content);
		puts_(o, "<end_of_turn>\n");
	}
	if (gen)
		puts_(o, "<start_of_turn>model\n");
	return 0;
}

static int render_llama2(const struct tmpl_msg *m, size_t n, const char *bos, const char *eos,
                         struct out *o, char *err, size_t errlen)
{
	const char *sys = NULL;

	if (is(&m[0], "system"))
		sys = m[0].content, m++, n--;
	for (size_t i = 0; i < n; i++) {
		if (!alternation_ok(&m[i], i, err, errlen))
			return -1;
		if (is(&m[i], "user")) {
			/* bos + '[INST] ' + ('<<SYS>>\n' + sys + '\n<</SYS>>\n\n' +
			 * content).strip() + ' [/INST]' */
			struct out c = { 0 };
			if (!i && sys) {
				puts_(&c, "<<SYS>>\n");
				puts_(&c, sys);
				puts_(&c, "\n<</SYS>>\n\n");
			}
			puts_(&c, m[i].content);
			puts_(o, bos);
			puts_(o, "[INST] ");
			if (c.oom)
				o->oom = 1;
			else
				put_stripped(o, c.p ? c.p : "");
			free(c.p);
			puts_(o, " [/INST]");
		} else if (is(&m[i], "assistant")) {
			/* ' ' + content.strip() + ' ' + eos_token */
			puts_(o, " ");
			put_stripped(o, m[i].content);
			puts_(o, " ");
			puts_(o, eos);
		}
	}
	return 0;
}

static int render_mistral(const struct tmpl_msg *m, size_t n, const char *bos, const char *eos,
                          struct out *o, char *err, size_t errlen)
{
	puts_(o, bos);
	for (size_t i = 0; i < n; i++) {
		if (!alternation_ok(&m[i], i, err, errlen))
			return -1;
		if (is(&m[i], "user")) {
			puts_(o, "[INST] ");
			puts_(o, m[i].content);
			puts_(o, " [/INST]");
		} else if (is(&m[i], "assistant")) {
			puts_(o, m[i].content);
			puts_(o, eos);
		} else {
			plot_seterr(err, errlen, "message %zu (%s): Only user and assistant roles are "
			            "supported!", i, m[i].role);
			return -1;
		}
	}
	return 0;
}

static int check_msgs(const struct tmpl_msg *m, size_t n, char *err, size_t errlen)
{
	if (!n) {
		plot_seterr(err, errlen, "chat template: no messages");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!m[i].role || !m[i].content) {
			plot_seterr(err, errlen, "message %zu: missing %s", i, m[i].role ? "content" : "role");
			return -1;
		}
	return 0;
}

int tmpl_render(const struct tmpl *t, const struct tmpl_msg *m, size_t n, int gen,
                const char *bos, const char *eos, char **out, size_t *len, char *err,
                size_t errlen)
{
	struct out o = { 0 };
	int rc;

	if (check_msgs(m, n, err, errlen))
		return -1;
	bos = bos ? bos : "";
	eos = eos ? eos : "";
	switch (t->family) {
	case TMPL_CHATML: rc = render_chatml(t, m, n, gen, &o); break;
	case TMPL_LLAMA3:
		rc = t->llama3_date ? render_llama31(t, m, n, gen, bos, &o, err, errlen) :
		                      render_llama3(m, n, gen, bos, &o);
		break;
	case TMPL_GEMMA: rc = render_gemma(t, m, n, gen, bos, &o, err, errlen); break;
	case TMPL_LLAMA2: rc = render_llama2(m, n, bos, eos, &o, err, errlen); break;
	case TMPL_MISTRAL: rc = render_mistral(m, n, bos, eos, &o, err, errlen); break;
	default:
		for (size_t i = 0; i < n; i++)
			puts_(&o, m[i].content);
		rc = 0;
	}
	if (!rc && !o.oom && !o.p)
		puts_(&o, "");
	if (rc || o.oom) {
		if (o.oom)
			plot_seterr(err, errlen, "chat template: rendered text past %u bytes or out of memory",
			            TMPL_MAX_TEXT);
		free(o.p);
		return -1;
	}
	*out = o.p;
	if (len)
		*len = o.n;
	return 0;
}
