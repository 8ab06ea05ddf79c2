/*
 * tmpl-render — lib/llm/tok/template.c for tests/ref/test_template.py.
 *
 *   tmpl-render detect SPEC                       the family name
 *   tmpl-render render SPEC BOS EOS GEN < msgs    the rendered prompt
 *
 * SPEC is file:PATH (a Jinja template), gguf:PATH (tokenizer.chat_template)
 * or family:NAME. msgs on stdin: role NUL content NUL, repeated. GEN is 0/1
 * (add_generation_prompt). Errors: message on stderr, exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/gguf.h"
#include "plot/template.h"

static char *slurp(FILE *f, size_t *n)
{
	size_t cap = 1 << 16;
	char *p = malloc(cap + 1);

	*n = 0;
	while (p) {
		*n += fread(p + *n, 1, cap - *n, f);
		if (*n < cap)
			break;
		char *q = realloc(p, (cap *= 2) + 1);
		if (!q)
			free(p);
		p = q;
	}
	if (p)
		p[*n] = 0;
	return p;
}

static struct tmpl *open_spec(const char *spec, char *err, size_t errlen)
{
	enum tmpl_family f;

	if (!strncmp(spec, "family:", 7)) {
		if (tmpl_family_parse(spec + 7, &f)) {
			snprintf(err, errlen, "unknown family '%s'", spec + 7);
			return NULL;
		}
		return tmpl_new_family(f);
	}
	if (!strncmp(spec, "gguf:", 5)) {
		struct gguf *g = gguf_open(spec + 5, err, errlen);
		struct tmpl *t = g ? tmpl_from_gguf(g, err, errlen) : NULL;
		gguf_close(g);
		return t;
	}
	if (!strncmp(spec, "file:", 5)) {
		FILE *fp = fopen(spec + 5, "rb");
		size_t n;
		char *s = fp ? slurp(fp, &n) : NULL;
		if (fp)
			fclose(fp);
		struct tmpl *t = s ? tmpl_new(s, n, err, errlen) : NULL;
		if (!s)
			snprintf(err, errlen, "cannot read %s", spec + 5);
		free(s);
		return t;
	}
	snprintf(err, errlen, "bad SPEC '%s'", spec);
	return NULL;
}

static int render(const struct tmpl *t, char **argv, char *err, size_t errlen)
{
	size_t n, nm = 0;
	char *in = slurp(stdin, &n), *out;
	struct tmpl_msg msgs[64];

	for (size_t i = 0; in && i < n && nm < 64; nm++) {
		msgs[nm].role = in + i;
		i += strlen(in + i) + 1;
		msgs[nm].content = i < n ? in + i : "";
		i += strlen(in + i) + 1;
	}
	int rc = tmpl_render(t, msgs, nm, atoi(argv[5]), argv[3], argv[4], &out, &n, err, errlen);
	if (!rc) {
		fwrite(out, 1, n, stdout);
		free(out);
	}
	free(in);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	char err[512] = "";
	int rc = 1;

	if (argc < 3 || (strcmp(argv[1], "detect") && argc < 6)) {
		fprintf(stderr, "usage: tmpl-render detect SPEC | render SPEC BOS EOS GEN < msgs\n");
		return 2;
	}
	struct tmpl *t = open_spec(argv[2], err, sizeof err);
	if (t && !strcmp(argv[1], "detect"))
		rc = printf("%s\n", tmpl_family_name(tmpl_family(t))) < 0;
	else if (t)
		rc = render(t, argv, err, sizeof err);
	if (rc)
		fprintf(stderr, "tmpl-render: %s\n", err[0] ? err : "out of memory");
	tmpl_free(t);
	return rc;
}
