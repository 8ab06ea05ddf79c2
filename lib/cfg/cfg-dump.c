/*
 * cfg-dump.c — everything that reads the settings table to produce text or
 * apply a value at runtime: the effective-config dump (plotd --check-config,
 * plot config), runtime get/set of parking-lot limits (plot limits), the
 * mapping from lot settings to pool limits, and man/plot.yaml.5.
 *
 * The dump groups settings by their dotted prefixes in table order, so the
 * table's grouping invariant (see cfg-table.c) is what keeps it valid YAML.
 * Its output loads again to the same effective config (test-cfg checks).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"
#include "plot/version.h"
#include "cfg/cfg-impl.h"

/* A growable string; a failed append sets oom and is otherwise ignored. */
struct sb {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	for (int tries = 0; tries < 2 && !b->oom; tries++) {
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->s && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 1024;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
}

static int sb_finish(struct sb *b, char **out, size_t *len)
{
	if (!b->s)
		sb_printf(b, "%s", "");
	if (b->oom) {
		free(b->s);
		return -CFG_E_NOMEM;
	}
	*out = b->s;
	if (len)
		*len = b->len;
	return 0;
}

/* ---- the dump ----------------------------------------------------------- */

/* Number of leading dotted sections two names share (excluding last parts). */
static int shared_sections(const char *a, const char *b)
{
	int n = 0;
	while (a && b) {
		const char *da = strchr(a, '.'), *db = strchr(b, '.');
		if (!da || !db || da - a != db - b || memcmp(a, b, (size_t)(da - a)))
			break;
		n++;
		a = da + 1;
		b = db + 1;
	}
	return n;
}

/* Append s double-quoted, escaped as cfg_quote does but never truncated:
 * a string of CFG_MAX_STR control bytes is four times that long quoted. */
static void sb_quote(struct sb *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_printf(b, "\"");
}

/* One setting's value as YAML. Strings and lists go straight into the
 * buffer (a list of CFG_MAX_LIST names is far longer than any fixed one);
 * numbers, booleans and enums are short. */
static void emit_value(struct sb *b, const struct cfg_setting *s, const void *base)
{
	const void *f = cfg_cfield(base, s);
	char val[64];

	if (s->type == CFG_T_STRING) {
		const char *v = *(char *const *)f;
		if (v)
			sb_quote(b, v);
		else
			sb_printf(b, "null");
	} else if (s->type == CFG_T_STRLIST) {
		const struct cfg_strlist *l = f;
		sb_printf(b, "[");
		for (size_t i = 0; i < l->n; i++) {
			sb_printf(b, "%s", i ? ", " : "");
			sb_quote(b, l->v[i]);
		}
		sb_printf(b, "]");
	} else {
		cfg_value_format(s, base, 1, val, sizeof val);
		sb_printf(b, "%s", val);
	}
}

/* Emit one scope's settings as nested YAML at indent; mask (lot only)
 * selects settings by lot bit when non-NULL; skip names one setting. */
static void emit_scope(struct sb *b, enum cfg_scope scope, const void *base, int indent,
		       const uint32_t *mask, const char *skip)
{
	const char *prev = NULL;
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope != scope || (skip && !strcmp(s->name, skip)))
			continue;
		if (mask && !(*mask & (1u << cfg_lot_bit(s))))
			continue;
		int level = shared_sections(prev, s->name);
		const char *p = s->name;
		for (int j = 0; j < level; j++)
			p = strchr(p, '.') + 1;
		for (const char *dot; (dot = strchr(p, '.')); p = dot + 1, level++)
			sb_printf(b, "%*s%.*s:\n", indent + 2 * level, "", (int)(dot - p), p);
		sb_printf(b, "%*s%s: ", indent + 2 * level, "", p);
		emit_value(b, s, base);
		sb_printf(b, "\n");
		prev = s->name;
	}
}

int cfg_dump(const struct cfg *c, char **out, size_t *len)
{
	struct sb b = { 0 };

	sb_printf(&b, "# effective configuration, from ");
	sb_quote(&b, c->source ? c->source : "");
	sb_printf(&b, "\n");
	sb_printf(&b, "parking_lot:\n");
	emit_scope(&b, CFG_SCOPE_LOT, &c->lot, 2, NULL, NULL);
	emit_scope(&b, CFG_SCOPE_ROOT, c, 0, NULL, NULL);
	sb_printf(&b, "models:\n");
	for (size_t i = 0; i < c->n_models; i++) {
		const struct cfg_model *m = &c->models[i];
		sb_printf(&b, "  - name: ");
		sb_quote(&b, m->name);
		sb_printf(&b, "\n");
		emit_scope(&b, CFG_SCOPE_MODEL, m, 4, NULL, "name");
		sb_printf(&b, "    params:\n");
		emit_scope(&b, CFG_SCOPE_PARAMS, &m->params, 6, NULL, NULL);
		if (m->over_mask) {
			sb_printf(&b, "    parking_lot:\n");
			emit_scope(&b, CFG_SCOPE_LOT, &m->over, 6, &m->over_mask, NULL);
		}
	}
	return sb_finish(&b, out, len);
}

/* ---- runtime limits ----------------------------------------------------- */

static const struct cfg_setting *lot_setting(const char *key, char *err, size_t errlen)
{
	const struct cfg_setting *s = cfg_setting_find(key);
	if (s && s->scope == CFG_SCOPE_LOT)
		return s;
	int n = snprintf(err, errlen, "%s: unknown limit; known:", key);
	for (size_t i = 0; i < cfg_setting_count() && n >= 0 && (size_t)n < errlen; i++) {
		const struct cfg_setting *t = cfg_setting_at(i);
		if (t->scope == CFG_SCOPE_LOT && t->key)
			n += snprintf(err + n, errlen - (size_t)n, " %s", t->key);
	}
	return NULL;
}

int cfg_lot_get(const struct cfg_lot *lot, const char *key, char *buf, size_t len,
		char *err, size_t errlen)
{
	const struct cfg_setting *s = lot_setting(key, err, errlen);
	if (!s)
		return -CFG_E_UNKNOWN;
	cfg_value_format(s, lot, 0, buf, len);
	return 0;
}

int cfg_lot_set(struct cfg_lot *lot, const char *key, const char *value,
		char *err, size_t errlen)
{
	char why[320];
	const struct cfg_setting *s = lot_setting(key, err, errlen);
	if (!s)
		return -CFG_E_UNKNOWN;
	const char *name = s->key ? s->key : s->name;
	if (!(s->flags & CFG_F_RUNTIME)) {
		snprintf(err, errlen, "%s: cannot be changed at runtime", name);
		return -CFG_E_READONLY;
	}
	struct cfg_lot tmp = *lot;
	int rc = cfg_value_parse(s, value, strlen(value), 1, &tmp, why, sizeof why);
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, why);
		return rc;
	}
	*lot = tmp;
	return 0;
}

int cfg_lot_pool_limit(const struct cfg_lot *lot, const struct cfg_setting *s,
		       int *which, uint64_t *value)
{
	if (s->scope != CFG_SCOPE_LOT || s->pool_limit < 0)
		return -1;
	uint64_t v = *(const uint64_t *)cfg_cfield(lot, s);
	*which = s->pool_limit;
	if (v == CFG_NULL)
		*value = POOL_UNLIMITED;
	else
		*value = v > UINT64_MAX / s->pool_scale ? UINT64_MAX - 1 : v * s->pool_scale;
	return 0;
}

void cfg_lot_pool_config(const struct cfg_lot *lot, const char *name, struct pool_config *pc)
{
	pc->name = name;
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		int which;
		uint64_t v;
		if (cfg_lot_pool_limit(lot, cfg_setting_at(i), &which, &v))
			continue;
		switch (which) {
		case POOL_LIMIT_MAX_UNITS: pc->max_units = v; break;
		case POOL_LIMIT_MAX_QUEUE_DEPTH: pc->max_queue_depth = v; break;
		case POOL_LIMIT_MAX_RUNNING:
			pc->max_running = v >= POOL_NO_CAP ? POOL_NO_CAP : (unsigned)v;
			break;
		case POOL_LIMIT_THREADS: pc->threads = (unsigned)v; break;
		case POOL_LIMIT_TIMEOUT_NS: pc->timeout_ns = v; break;
		case POOL_LIMIT_RETENTION_NS: pc->retention_ns = v; break;
		case POOL_LIMIT_RETENTION_TASKS: pc->retention_tasks = v; break;
		case POOL_LIMIT_RETENTION_BYTES: pc->retention_bytes = v; break;
		case POOL_LIMIT_MAX_USER_UNITS: pc->max_user_units = v; break;
		case POOL_LIMIT_MAX_OWNER_UNITS: pc->max_owner_units = v; break;
		case POOL_LIMIT_AGING_NS: pc->aging_ns = v; break;
		default: break;
		}
	}
}

/* ---- man/plot.yaml.5 ---------------------------------------------------- */

/* roff-escape text: backslashes, and a leading dot or quote. */
static void roff(struct sb *b, const char *t)
{
	if (*t == '.' || *t == '\'')
		sb_printf(b, "\\&");
	for (; *t; t++) {
		if (*t == '\\')
			sb_printf(b, "\\e");
		else if (*t == '-')
			sb_printf(b, "\\-");
		else
			sb_printf(b, "%c", *t);
		if (*t == '\n' && (t[1] == '.' || t[1] == '\''))
			sb_printf(b, "\\&");
	}
}

static void man_setting(struct sb *b, const struct cfg_setting *s)
{
	char full[128], exp[192];
	cfg_setting_fullname(s, full, sizeof full);
	cfg_setting_expect(s, exp, sizeof exp);
	sb_printf(b, ".TP\n.B ");
	roff(b, full);
	sb_printf(b, "\n");
	roff(b, exp);
	sb_printf(b, "; default ");
	roff(b, s->flags & CFG_F_REQUIRED ? "none (required)" : s->def);
	sb_printf(b, ".");
	if (s->flags & CFG_F_RUNTIME)
		sb_printf(b, " Changeable at runtime%s", s->key ? " (\\fBplot limits set\\fR \\fB" : "");
	if ((s->flags & CFG_F_RUNTIME) && s->key) {
		roff(b, s->key);
		sb_printf(b, "=\\fR\\fIvalue\\fR)");
	}
	if (s->flags & CFG_F_RUNTIME)
		sb_printf(b, " and on SIGHUP.");
	sb_printf(b, "\n");
	roff(b, s->doc);
	sb_printf(b, "\n");
}

static void man_scope(struct sb *b, enum cfg_scope scope, const char *title, const char *intro)
{
	sb_printf(b, ".SS %s\n", title);
	roff(b, intro);
	sb_printf(b, "\n");
	for (size_t i = 0; i < cfg_setting_count(); i++)
		if (cfg_setting_at(i)->scope == scope)
			man_setting(b, cfg_setting_at(i));
}

/* The keys of the format plot replaces, each with what to use instead. */
static void man_foreign(struct sb *b)
{
	const char *key, *why;
	sb_printf(b, ".SS Keys of the models.yaml plot replaces\n");
	roff(b, "A file written for the server plot replaces may hold these keys, at any "
	     "level. Each is refused (status 78) with what plot uses instead:");
	sb_printf(b, "\n");
	for (size_t i = 0; cfg_foreign_at(i, &key, &why) == 0; i++) {
		sb_printf(b, ".TP\n.B ");
		roff(b, key);
		sb_printf(b, "\n");
		roff(b, why);
		sb_printf(b, "\n");
	}
}

static const char man_head[] =
	".\\\" Generated from the settings table in lib/cfg/cfg-table.c by\n"
	".\\\" `make man-cfg`; do not edit (test-cfg fails when they differ).\n"
	".TH PLOT.YAML 5 \"\" \"plot\" \"File Formats\"\n"
	".SH NAME\n"
	"plot.yaml \\- configuration of plotd, the plot daemon\n"
	".SH SYNOPSIS\n"
	"\\fB$XDG_CONFIG_HOME/plot/plot.yaml\\fR\n"
	".SH DESCRIPTION\n"
	"plotd reads one YAML file. It is found in this order: the \\fB\\-\\-config\\fR option,\n"
	"then \\fB$PLOT_CONFIG\\fR, then \\fB$XDG_CONFIG_HOME/plot/plot.yaml\\fR\n"
	"(\\fB$HOME/.config/plot/plot.yaml\\fR when XDG_CONFIG_HOME is unset), then the\n"
	"built-in default below.\n"
	".PP\n"
	"Every key is checked: an unknown key, a value of the wrong type or out of range,\n"
	"a duplicate key or model name is an error that names\n"
	"\\fIfile\\fB:\\fIline\\fB:\\fIcolumn\\fR, the setting and the expected form, and\n"
	"plotd exits with status 78. Anchors, aliases and tags are not accepted.\n"
	"Numbers, booleans and null must be unquoted.\n"
	"A setting that no longer exists is an error that names its replacement:\n"
	"\\fBparking_lot.pool.worker_threads\\fR was split into \\fBpool.max_running\\fR\n"
	"(tasks at once) and \\fBpool.threads\\fR (compute threads), and\n"
	"\\fBmodels[].params.threads\\fR moved to \\fBparking_lot.pool.threads\\fR.\n"
	".PP\n"
	"\\fBparking_lot\\fR holds the defaults of every model's pool; a model's own\n"
	"\\fBparking_lot\\fR overrides any of them for that model only.\n"
	"Settings marked changeable at runtime are applied by \\fBplot limits set\\fR\n"
	"(parking lot limits) and when plotd re-reads the file on SIGHUP.\n"
	".SH SETTINGS\n";

static const char man_tail[] =
	".SH ERRORS\n"
	"Example:\n"
	".PP\n"
	".nf\n"
	"plot.yaml:7:18: parking_lot.limits.max_queue_depth: expected an integer 0..1000000, got \"lots\"\n"
	".fi\n"
	".SH SEE ALSO\n"
	"\\fBplotd\\fR(8), \\fBplot\\fR(1), \\fBplot\\-protocol\\fR(7)\n";

int cfg_man_page(char **out)
{
	struct sb b = { 0 };
	sb_printf(&b, "%s", man_head);
	man_scope(&b, CFG_SCOPE_LOT, "Parking lot (parking_lot, models[].parking_lot)",
		  "Every setting here may also appear under a model's parking_lot.");
	man_scope(&b, CFG_SCOPE_ROOT, "Daemon", "Top-level settings.");
	man_scope(&b, CFG_SCOPE_MODEL, "Models (models[])",
		  "A list; each entry is one model with its own pool.");
	man_scope(&b, CFG_SCOPE_PARAMS, "Executor parameters (models[].params)",
		  "Each applies to the executor named at its start.");
	man_foreign(&b);
	char *llm = cfg_builtin_yaml_llm("~/.local/share/plot/models/" CFG_DEFAULT_MODEL_FILE);
	if (!llm) {
		free(b.s);
		return -CFG_E_NOMEM;
	}
	sb_printf(&b, ".SH DEFAULT CONFIGURATION\n"
		  "When no file is found and the default model\n"
		  "\\fB$XDG_DATA_HOME/plot/models/%s\\fR\n"
		  "(\\fB~/.local/share/plot/models\\fR when XDG_DATA_HOME is unset; \\fBmake models\\fR\n"
		  "installs it) is readable, plotd serves it as \\fBsmollm2\\fR, the default model,\n"
		  "beside the synthetic \\fBecho\\fR (with the file's actual path):\n.PP\n.nf\n",
		  CFG_DEFAULT_MODEL_FILE);
	roff(&b, llm);
	free(llm);
	sb_printf(&b, ".fi\n.PP\nWithout that file the default model is \\fBecho\\fR:\n.PP\n.nf\n");
	roff(&b, cfg_builtin_yaml());
	sb_printf(&b, ".fi\n%s", man_tail);
	return sb_finish(&b, out, NULL);
}
