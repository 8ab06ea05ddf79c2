/*
 * check.c — what `plotd --check-config` checks beyond the file's syntax,
 * before a model is loaded: what would otherwise be found only when plotd
 * starts (a model failing) or never (a setting silently unused).
 *
 * DESIGN
 *   - Errors: an llm model's file must open for reading and start with the
 *     4-byte GGUF magic ("GGUF"). Nothing else is read for that check.
 *   - Warnings: context_length above the training context the GGUF header
 *     declares (<arch>.context_length; the header and metadata only, the
 *     file is mapped, no tensor is read), and params settings that the
 *     model's executor does not read (cfg_params_unused, from the settings
 *     table's docs).
 *   - Runs in plotd's main thread before anything else exists; it prints,
 *     as plotd's option handling does, and never exits.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "plot/gguf.h"

struct where {
	FILE *out;
	const struct cfg *c;
	size_t i;
};

static void say(const struct where *w, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(const struct where *w, const char *kind, const char *fmt, ...)
{
	va_list ap;
	fprintf(w->out, "plotd: %s: %smodels[%zu] (%s): ", w->c->source, kind, w->i,
		w->c->models[w->i].name);
	va_start(ap, fmt);
	vfprintf(w->out, fmt, ap);
	va_end(ap);
	fputc('\n', w->out);
}

/* 0 when path opens and starts with the GGUF magic, else -1 (said). */
static int check_magic(const struct where *w, const char *path)
{
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say(w, "", "path %s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, magic, sizeof magic);
	close(fd);
	if (n != (ssize_t)sizeof magic || memcmp(magic, "GGUF", 4)) {
		say(w, "", "path %s: not a GGUF file (it does not start with \"GGUF\")", path);
		return -1;
	}
	return 0;
}

static void check_context(const struct where *w, const struct cfg_model *m)
{
	char err[256], key[96];
	struct gguf_str arch;
	uint32_t train;
	if (m->params.context_length == CFG_NULL)
		return;
	struct gguf *g = gguf_open(m->path, err, sizeof err);
	if (!g) {
		say(w, "warning: ", "path %s: %s", m->path, err);
		return;
	}
	if (gguf_get_str(g, "general.architecture", &arch) == 0 &&
	    snprintf(key, sizeof key, "%.*s.context_length", (int)arch.len, arch.s) < (int)sizeof key &&
	    gguf_get_u32(g, key, &train) == 0 && m->params.context_length > train)
		say(w, "warning: ", "params.context_length %llu is above the %u tokens the model "
		    "was trained on (%s); answers past that are usually poor",
		    (unsigned long long)m->params.context_length, train, key);
	gguf_close(g);
}

static void on_unused(void *ctx, const char *setting, const char *executor)
{
	const struct where *w = ctx;
	if (!strncmp(setting, "models[].", 9))
		setting += 9; /* say() names the model */
	say(w, "warning: ", "%s is read by the %s executor only; this model's executor does "
	    "not use it", setting, executor);
}

int check_models(const struct cfg *c, FILE *out)
{
	int errors = 0;
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *m = &c->models[i];
		struct where w = {out, c, i};
		cfg_params_unused(m, on_unused, &w);
		if (m->executor != CFG_EXEC_LLM || !m->path)
			continue;
		if (check_magic(&w, m->path) < 0)
			errors++;
		else
			check_context(&w, m);
	}
	return errors;
}
