/*
 * cfg-load.c — reading plot.yaml into a struct cfg.
 *
 * DESIGN
 *   Two passes over the text with libyaml. The first streams events and
 *   refuses what we never accept — anchors, aliases (so no alias bombs),
 *   tags, more than one document, nesting past CFG_MAX_DEPTH — before any
 *   tree exists. The second loads the document tree and walks it against the
 *   settings table: a mapping key is either a setting (at its scope and
 *   dotted prefix), a prefix of settings (a nested mapping), or one of the
 *   structural keys parking_lot / models / params; anything else is an
 *   unknown key. Each error names file:line:col (1-based, from the node's
 *   start mark) and the setting's full path.
 *
 *   Defaults are set first, the file is applied on top, and per-model
 *   parking_lot overrides are resolved last (so their order in the file does
 *   not matter).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "cfg/cfg-impl.h"

struct loader {
	const char *name;         /* file name for messages */
	yaml_document_t doc;
	struct cfg *cfg;
	char *err;
	size_t errlen;
};

/* Where a setting is being applied: the scope struct and the display path
 * prefix ("parking_lot.", "models[2].parking_lot."). */
struct ctx {
	enum cfg_scope scope;
	void *base;
	const char *path;         /* display prefix of the scope */
	struct cfg_model *model;  /* lot overrides: set the model's over_mask */
};

static int fail(struct loader *L, const yaml_node_t *n, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct loader *L, const yaml_node_t *n, int code, const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(L->err, L->errlen, "%s:%lu:%lu: ", L->name,
			 n ? (unsigned long)n->start_mark.line + 1 : 1ul,
			 n ? (unsigned long)n->start_mark.column + 1 : 1ul);
	if (k < 0 || (size_t)k >= L->errlen)
		return code;
	va_start(ap, fmt);
	vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return code;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	default: return "a scalar";
	}
}

static yaml_node_t *node(struct loader *L, int i)
{
	return yaml_document_get_node(&L->doc, i);
}

static int scalar_is(const yaml_node_t *n, const char *s)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
	       !memcmp(n->data.scalar.value, s, n->data.scalar.length);
}

static int is_plain(const yaml_node_t *n)
{
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* ---- pass 1: refuse what we never accept --------------------------------- */

static int event_mark_fail(struct loader *L, const yaml_event_t *e, int code, const char *what)
{
	snprintf(L->err, L->errlen, "%s:%lu:%lu: %s", L->name,
		 (unsigned long)e->start_mark.line + 1, (unsigned long)e->start_mark.column + 1, what);
	return code;
}

static int parser_fail(struct loader *L, const yaml_parser_t *p)
{
	const yaml_mark_t *m = p->context ? &p->context_mark : &p->problem_mark;
	if (p->error == YAML_MEMORY_ERROR) {
		snprintf(L->err, L->errlen, "%s: out of memory", L->name);
		return -CFG_E_NOMEM;
	}
	snprintf(L->err, L->errlen, "%s:%lu:%lu: YAML syntax error: %s%s%s", L->name,
		 (unsigned long)p->problem_mark.line + 1, (unsigned long)p->problem_mark.column + 1,
		 p->problem ? p->problem : "unknown", p->context ? " " : "",
		 p->context ? p->context : "");
	(void)m;
	return -CFG_E_SYNTAX;
}

/* Checks one event; returns 0, 1 at stream end, or an error. */
static int check_event(struct loader *L, const yaml_event_t *e, int *depth, int *docs)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	switch (e->type) {
	case YAML_STREAM_END_EVENT: return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return event_mark_fail(L, e, -CFG_E_SYNTAX, "only one YAML document is allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return event_mark_fail(L, e, -CFG_E_SYNTAX, "YAML aliases (*name) are not supported");
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		tag = e->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT: case YAML_MAPPING_START_EVENT:
		anchor = e->type == YAML_MAPPING_START_EVENT ? e->data.mapping_start.anchor
							      : e->data.sequence_start.anchor;
		tag = e->type == YAML_MAPPING_START_EVENT ? e->data.mapping_start.tag
							   : e->data.sequence_start.tag;
		if (++*depth > CFG_MAX_DEPTH)
			return event_mark_fail(L, e, -CFG_E_TOO_LARGE, "nested too deeply");
		break;
	case YAML_SEQUENCE_END_EVENT: case YAML_MAPPING_END_EVENT:
		--*depth;
		return 0;
	default:
		return 0;
	}
	if (anchor)
		return event_mark_fail(L, e, -CFG_E_SYNTAX, "YAML anchors (&name) are not supported");
	if (tag)
		return event_mark_fail(L, e, -CFG_E_SYNTAX, "YAML tags (!tag) are not supported");
	return 0;
}

static int prescan(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t e;
	int depth = 0, docs = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return -CFG_E_NOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (rc == 0) {
		if (!yaml_parser_parse(&p, &e)) {
			rc = parser_fail(L, &p);
			break;
		}
		rc = check_event(L, &e, &depth, &docs);
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	return rc < 0 ? rc : 0;
}

/* ---- pass 2: apply the tree ----------------------------------------------- */

static int apply_map(struct loader *L, const struct ctx *c, const char *prefix, yaml_node_t *map);

static int apply_list(struct loader *L, const struct ctx *c, const struct cfg_setting *s,
		      const char *full, yaml_node_t *v)
{
	struct cfg_strlist *l = cfg_field(c->base, s);
	struct cfg_strlist fresh = { 0 };
	int rc = 0;

	if (v->type == YAML_SCALAR_NODE && is_plain(v) &&
	    (v->data.scalar.length == 0 || scalar_is(v, "null") || scalar_is(v, "~")))
		goto swap; /* null = empty list */
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(L, v, -CFG_E_TYPE, "%s: expected a list of strings, got %s", full,
			    node_kind(v));
	yaml_node_item_t *it = v->data.sequence.items.start;
	if (v->data.sequence.items.top - it > CFG_MAX_LIST)
		return fail(L, v, -CFG_E_TOO_LARGE, "%s: more than %d entries", full, CFG_MAX_LIST);
	for (; it < v->data.sequence.items.top && !rc; it++) {
		yaml_node_t *e = node(L, *it);
		if (e->type != YAML_SCALAR_NODE || e->data.scalar.length == 0 ||
		    e->data.scalar.length > 256)
			rc = fail(L, e, -CFG_E_TYPE, "%s: expected a list of names, got %s", full,
				  e->type == YAML_SCALAR_NODE ? "an empty or overlong name" : node_kind(e));
		else
			rc = cfg_strlist_push_at(&fresh, (const char *)e->data.scalar.value,
						 e->data.scalar.length, (int)e->start_mark.line + 1,
						 (int)e->start_mark.column + 1);
	}
swap:;
	struct cfg_strlist old = *l;
	*l = fresh;
	fresh = old;
	for (size_t i = 0; i < fresh.n; i++)
		free(fresh.v[i]);
	free(fresh.v);
	free(fresh.line);
	free(fresh.col);
	return rc;
}

static int apply_setting(struct loader *L, const struct ctx *c, const struct cfg_setting *s,
			 yaml_node_t *v)
{
	char full[192], why[320];
	snprintf(full, sizeof full, "%s%s", c->path, s->name);
	if (s->type == CFG_T_STRLIST)
		return apply_list(L, c, s, full, v);
	if (v->type != YAML_SCALAR_NODE) {
		cfg_setting_expect(s, why, sizeof why);
		return fail(L, v, -CFG_E_TYPE, "%s: expected %s, got %s", full, why, node_kind(v));
	}
	int rc = cfg_value_parse(s, (const char *)v->data.scalar.value, v->data.scalar.length,
				 is_plain(v), c->base, why, sizeof why);
	if (rc)
		return fail(L, v, rc, "%s: %s", full, why);
	if (c->model && s->scope == CFG_SCOPE_LOT)
		c->model->over_mask |= 1u << cfg_lot_bit(s);
	return 0;
}

/* Is there any setting of scope whose name starts with prefix? */
static int is_prefix(enum cfg_scope scope, const char *prefix)
{
	size_t n = strlen(prefix);
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope == scope && !strncmp(s->name, prefix, n))
			return 1;
	}
	return 0;
}

static const struct cfg_setting *find_in(enum cfg_scope scope, const char *name)
{
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope == scope && !strcmp(s->name, name))
			return s;
	}
	return NULL;
}

static int apply_models(struct loader *L, yaml_node_t *seq);

/* Keys that open another scope. */
static int apply_structural(struct loader *L, const struct ctx *c, const char *name,
			    yaml_node_t *v, int *handled)
{
	char path[192];
	*handled = 1;
	if (c->scope == CFG_SCOPE_ROOT && !strcmp(name, "parking_lot")) {
		struct ctx lc = { CFG_SCOPE_LOT, &L->cfg->lot, "parking_lot.", NULL };
		return apply_map(L, &lc, "", v);
	}
	if (c->scope == CFG_SCOPE_ROOT && !strcmp(name, "models"))
		return apply_models(L, v);
	if (c->scope == CFG_SCOPE_MODEL && !strcmp(name, "params")) {
		snprintf(path, sizeof path, "%sparams.", c->path);
		struct ctx pc = { CFG_SCOPE_PARAMS, &c->model->params, path, NULL };
		return apply_map(L, &pc, "", v);
	}
	if (c->scope == CFG_SCOPE_MODEL && !strcmp(name, "parking_lot")) {
		snprintf(path, sizeof path, "%sparking_lot.", c->path);
		struct ctx oc = { CFG_SCOPE_LOT, &c->model->over, path, c->model };
		return apply_map(L, &oc, "", v);
	}
	*handled = 0;
	return 0;
}

static int check_duplicate(struct loader *L, const struct ctx *c, const char *prefix,
			   yaml_node_pair_t *start, yaml_node_pair_t *pair)
{
	yaml_node_t *k = node(L, pair->key);
	for (yaml_node_pair_t *q = start; q < pair; q++) {
		yaml_node_t *o = node(L, q->key);
		if (o->data.scalar.length == k->data.scalar.length &&
		    !memcmp(o->data.scalar.value, k->data.scalar.value, k->data.scalar.length))
			return fail(L, k, -CFG_E_DUPLICATE, "%s%s%.64s: duplicate key (first at line %lu)",
				    c->path, prefix, (const char *)k->data.scalar.value,
				    (unsigned long)o->start_mark.line + 1);
	}
	return 0;
}

static int apply_pair(struct loader *L, const struct ctx *c, const char *prefix,
		      yaml_node_t *k, yaml_node_t *v)
{
	char name[160];
	int handled, rc;

	snprintf(name, sizeof name, "%s%.*s", prefix, (int)(k->data.scalar.length > 64 ? 64 :
				 k->data.scalar.length), (const char *)k->data.scalar.value);
	const struct cfg_setting *s = k->data.scalar.length <= 64 ? find_in(c->scope, name) : NULL;
	if (s)
		return apply_setting(L, c, s, v);
	if (!*prefix && (rc = apply_structural(L, c, name, v, &handled), handled))
		return rc;
	size_t n = strlen(name);
	if (n + 1 < sizeof name && k->data.scalar.length <= 64) {
		name[n] = '.';
		name[n + 1] = 0;
		if (is_prefix(c->scope, name))
			return apply_map(L, c, name, v);
		name[n] = 0;
	}
	const char *why = cfg_retired(c->scope, name);
	if (why)
		return fail(L, k, -CFG_E_UNKNOWN, "%s%s: no longer exists: %s", c->path, name, why);
	if ((why = cfg_foreign(name)))
		return fail(L, k, -CFG_E_UNKNOWN, "%s%s: not a plot setting: %s", c->path, name, why);
	return fail(L, k, -CFG_E_UNKNOWN, "%s%s: unknown key", c->path, name);
}

static int apply_map(struct loader *L, const struct ctx *c, const char *prefix, yaml_node_t *map)
{
	if (map->type == YAML_SCALAR_NODE && is_plain(map) &&
	    (map->data.scalar.length == 0 || scalar_is(map, "null") || scalar_is(map, "~")))
		return 0; /* an empty section */
	if (map->type != YAML_MAPPING_NODE)
		return fail(L, map, -CFG_E_TYPE, "%s%.*s: expected a mapping, got %s", c->path,
			    *prefix ? (int)strlen(prefix) - 1 : 0, prefix, node_kind(map));
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	if (map->data.mapping.pairs.top - start > CFG_MAX_MAP)
		return fail(L, map, -CFG_E_TOO_LARGE, "%s%s: more than %d keys", c->path, prefix,
			    CFG_MAX_MAP);
	for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(L, p->key);
		if (k->type != YAML_SCALAR_NODE)
			return fail(L, k, -CFG_E_TYPE, "%s%s: a key must be a plain name, got %s",
				    c->path, prefix, node_kind(k));
		int rc = check_duplicate(L, c, prefix, start, p);
		if (!rc)
			rc = apply_pair(L, c, prefix, k, node(L, p->value));
		if (rc)
			return rc;
	}
	return 0;
}

static int valid_model_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr("._:-", *s))
			return 0;
	return 1;
}

/* Checks after a model's mapping is applied: name present and valid and
 * unique, path for llm. */
static int check_model(struct loader *L, size_t i, yaml_node_t *m)
{
	struct cfg_model *md = &L->cfg->models[i];
	yaml_node_t *name_node = m;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
		if (scalar_is(node(L, p->key), "name"))
			name_node = node(L, p->value);
	if (!md->name)
		return fail(L, m, -CFG_E_MISSING, "models[%zu].name: required", i);
	if (!valid_model_name(md->name))
		return fail(L, name_node, -CFG_E_RANGE,
			    "models[%zu].name: expected 1 to 64 of A-Z a-z 0-9 . _ : -, got \"%.64s\"",
			    i, md->name);
	for (size_t j = 0; j < i; j++)
		if (!strcmp(L->cfg->models[j].name, md->name))
			return fail(L, name_node, -CFG_E_DUPLICATE,
				    "models[%zu].name: \"%s\" is already models[%zu] (line %d)", i,
				    md->name, j, L->cfg->models[j].line);
	if (md->executor == CFG_EXEC_LLM && !md->path)
		return fail(L, m, -CFG_E_MISSING, "models[%zu].path: required for executor llm", i);
	return 0;
}

static int apply_models(struct loader *L, yaml_node_t *seq)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(L, seq, -CFG_E_TYPE, "models: expected a list of models, got %s",
			    node_kind(seq));
	size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n > CFG_MAX_MODELS)
		return fail(L, seq, -CFG_E_TOO_LARGE, "models: more than %d models", CFG_MAX_MODELS);
	if (L->cfg->models)
		return fail(L, seq, -CFG_E_DUPLICATE, "models: given twice");
	L->cfg->models = calloc(n ? n : 1, sizeof *L->cfg->models);
	if (!L->cfg->models)
		return -CFG_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = node(L, seq->data.sequence.items.start[i]);
		struct cfg_model *md = &L->cfg->models[i];
		char path[48];
		L->cfg->n_models = i + 1;
		cfg_scope_defaults(CFG_SCOPE_MODEL, md);
		cfg_scope_defaults(CFG_SCOPE_PARAMS, &md->params);
		md->line = (int)m->start_mark.line + 1;
		if (m->type != YAML_MAPPING_NODE)
			return fail(L, m, -CFG_E_TYPE, "models[%zu]: expected a mapping, got %s", i,
				    node_kind(m));
		snprintf(path, sizeof path, "models[%zu].", i);
		struct ctx mc = { CFG_SCOPE_MODEL, md, path, md };
		int rc = apply_map(L, &mc, "", m);
		if (!rc)
			rc = check_model(L, i, m);
		if (rc)
			return rc;
	}
	return 0;
}

/* Effective lots: defaults, then each model's overrides. */
static void resolve_lots(struct cfg *c)
{
	for (size_t i = 0; i < c->n_models; i++) {
		struct cfg_model *m = &c->models[i];
		m->lot = c->lot;
		for (size_t j = 0; j < cfg_setting_count(); j++) {
			const struct cfg_setting *s = cfg_setting_at(j);
			int bit = cfg_lot_bit(s);
			if (bit >= 0 && (m->over_mask & (1u << bit)))
				memcpy(cfg_field(&m->lot, s), cfg_cfield(&m->over, s),
				       s->type == CFG_T_ENUM ? sizeof(int) : sizeof(uint64_t));
		}
	}
}

static int resolve_default_model(struct loader *L, yaml_node_t *root)
{
	struct cfg *c = L->cfg;
	yaml_node_t *at = root;
	if (c->n_models == 0)
		return fail(L, root, -CFG_E_REF, "models: at least one model is required");
	if (!c->default_model) {
		c->default_model = strdup(c->models[0].name);
		return c->default_model ? 0 : -CFG_E_NOMEM;
	}
	if (cfg_model_find(c, c->default_model))
		return 0;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++)
		if (scalar_is(node(L, p->key), "default_model"))
			at = node(L, p->value);
	return fail(L, at, -CFG_E_REF, "default_model: no model named \"%.64s\"", c->default_model);
}

static int load_tree(struct loader *L, const char *text, size_t len)
{
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return -CFG_E_NOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	int ok = yaml_parser_load(&p, &L->doc);
	int rc = ok ? 0 : parser_fail(L, &p);
	yaml_parser_delete(&p);
	if (rc)
		return rc;
	yaml_node_t *root = yaml_document_get_root_node(&L->doc);
	static yaml_node_t empty = { .type = YAML_MAPPING_NODE };
	struct ctx rc0 = { CFG_SCOPE_ROOT, L->cfg, "", NULL };
	if (root && root->type != YAML_MAPPING_NODE && !(root->type == YAML_SCALAR_NODE &&
	    is_plain(root) && root->data.scalar.length == 0))
		rc = fail(L, root, -CFG_E_TYPE, "expected a mapping at the top, got %s", node_kind(root));
	else if (root)
		rc = apply_map(L, &rc0, "", root);
	if (root && root->type != YAML_MAPPING_NODE)
		root = NULL;
	if (!rc)
		rc = resolve_default_model(L, root ? root : &empty);
	yaml_document_delete(&L->doc);
	return rc;
}

static struct cfg *cfg_alloc(void)
{
	struct cfg *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (cfg_scope_defaults(CFG_SCOPE_ROOT, c) || cfg_scope_defaults(CFG_SCOPE_LOT, &c->lot)) {
		cfg_free(c);
		return NULL;
	}
	return c;
}

int cfg_load_string(const char *text, size_t len, const char *name,
		    struct cfg **out, char *err, size_t errlen)
{
	struct loader L = { .name = name ? name : "<string>", .err = err, .errlen = errlen };
	*out = NULL;
	if (len > CFG_MAX_FILE) {
		snprintf(err, errlen, "%s: %zu bytes exceeds the limit of %u", L.name, len, CFG_MAX_FILE);
		return -CFG_E_TOO_LARGE;
	}
	if (!(L.cfg = cfg_alloc()))
		return -CFG_E_NOMEM;
	L.cfg->source = strdup(L.name);
	int rc = L.cfg->source ? prescan(&L, text, len) : -CFG_E_NOMEM;
	if (!rc)
		rc = load_tree(&L, text, len);
	if (rc) {
		cfg_free(L.cfg);
		return rc;
	}
	resolve_lots(L.cfg);
	*out = L.cfg;
	return 0;
}

int cfg_load_file(const char *path, struct cfg **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -CFG_E_IO;
	}
	char *buf = malloc(CFG_MAX_FILE + 1);
	size_t n = buf ? fread(buf, 1, CFG_MAX_FILE + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf)
		return -CFG_E_NOMEM;
	int rc;
	if (bad) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -CFG_E_IO;
	} else {
		rc = cfg_load_string(buf, n, path, out, err, errlen);
	}
	free(buf);
	return rc;
}

/* The built-in config: with the default model when its file is readable. */
static int load_builtin(struct cfg **out, char *err, size_t errlen)
{
	char path[4096];
	if (cfg_builtin_model_path(path, sizeof path) == 0 && access(path, R_OK) == 0) {
		char *t = cfg_builtin_yaml_llm(path);
		if (!t) {
			snprintf(err, errlen, "out of memory");
			return -CFG_E_NOMEM;
		}
		int rc = cfg_load_string(t, strlen(t), "<built-in>", out, err, errlen);
		free(t);
		return rc;
	}
	const char *t = cfg_builtin_yaml();
	return cfg_load_string(t, strlen(t), "<built-in>", out, err, errlen);
}

int cfg_load(const char *opt_path, struct cfg **out, char *err, size_t errlen)
{
	char path[4096];
	enum cfg_source src;
	int rc = cfg_locate(opt_path, path, sizeof path, &src);
	if (rc) {
		snprintf(err, errlen, "config path is too long");
		return rc;
	}
	if (src == CFG_SRC_BUILTIN)
		return load_builtin(out, err, errlen);
	return cfg_load_file(path, out, err, errlen);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_models; i++)
		cfg_scope_free(CFG_SCOPE_MODEL, &c->models[i]);
	free(c->models);
	cfg_scope_free(CFG_SCOPE_ROOT, c);
	free(c->source);
	free(c);
}

const struct cfg_model *cfg_model_find(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_models; i++)
		if (name && !strcmp(c->models[i].name, name))
			return &c->models[i];
	return NULL;
}
