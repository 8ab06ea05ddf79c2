/*
 * cmd-limits.c — `plot limits [get] [-m M]` and
 * `plot limits set [-m M] KEY=VALUE...`.
 *
 * DESIGN
 *   Limits travel as text pairs (key, YAML value) and lib/cfg's settings
 *   table gives them meaning on both sides. Before sending, `set` checks
 *   every pair against that table (known key, changeable at runtime, value
 *   in range) by applying it to a scratch struct cfg_lot, so a typo is a
 *   usage error (exit 2) with the table's own message; the daemon checks
 *   again. Without -m, set applies to every model. Lowering a limit never
 *   kills running work; raising one admits queued work at once.
 *
 *   Output is one row per model and key (tab-separated off a tty); --json
 *   gives {"models":[{"name":M,KEY:VALUE,...}]} with numbers as numbers and
 *   null for unlimited.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/cfg.h"

#define MAX_PAIRS 64 /* the protocol's map bound */

static const char *const limits_verbs[] = {"get", "set", NULL};

static const struct plot_opt limits_opts[] = {
	{"model", 'm', 1, "M", "only model M (set: default every model)", 'm'},
	{NULL, 0, 0, NULL, NULL, 0},
};

/* A YAML scalar as JSON: null, a whole number, or a string. */
static void json_value(struct cmd_json *j, const char *v)
{
	size_t n = v ? strspn(v, "0123456789") : 0;
	if (!v || !strcmp(v, "null") || !strcmp(v, "~"))
		cmd_json_null(j);
	else if (n > 0 && n < 20 && v[n] == '\0')
		cmd_json_u64(j, strtoull(v, NULL, 10));
	else
		cmd_json_str(j, v);
}

static void print_json(const struct proto_limits_reply *l)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "models");
	cmd_json_arr(&j);
	for (uint32_t i = 0; i < l->n_models; i++) {
		const struct proto_model_limits *m = &l->models[i];
		cmd_json_obj(&j);
		cmd_json_key(&j, "name");
		cmd_json_str(&j, m->name);
		for (uint32_t k = 0; k < m->n_kv; k++) {
			cmd_json_key(&j, m->kv[k].key);
			json_value(&j, m->kv[k].value);
		}
		cmd_json_obj_end(&j);
	}
	cmd_json_arr_end(&j);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

static void print_table(struct plot_ctx *ctx, const struct proto_limits_reply *l)
{
	static const char *const head[] = {"MODEL", "LIMIT", "VALUE"};
	struct cmd_table t;
	cmd_table_init(&t, 3, head);
	for (uint32_t i = 0; i < l->n_models; i++)
		for (uint32_t k = 0; k < l->models[i].n_kv; k++) {
			const char *row[] = {l->models[i].name, l->models[i].kv[k].key,
					     l->models[i].kv[k].value};
			cmd_table_add(&t, row);
		}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

static int call_and_print(struct plot_ctx *ctx, struct proto_msg *req)
{
	struct proto_msg reply;
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, req, &reply);
	if (rc == 0 && ctx->json)
		print_json(&reply.u.limits);
	else if (rc == 0)
		print_table(ctx, &reply.u.limits);
	proto_msg_clear(&reply);
	return rc;
}

/* Split "key=value" in place and check it against lib/cfg's table. */
static int parse_pair(struct plot_ctx *ctx, char *s, struct proto_kv *kv)
{
	char err[256];
	struct cfg_lot scratch;
	char *eq = strchr(s, '=');
	if (!eq || eq == s || eq[1] == '\0')
		return cmd_usage_error(ctx, "set: '%s' is not KEY=VALUE", s), -1;
	*eq = '\0';
	memset(&scratch, 0, sizeof(scratch));
	if (cfg_lot_set(&scratch, s, eq + 1, err, sizeof(err)) < 0)
		return cmd_usage_error(ctx, "set: %s", err), -1;
	kv->key = s;
	kv->value = eq + 1;
	return 0;
}

static int limits_set(struct plot_ctx *ctx, const char *model, int n, char **v)
{
	struct proto_kv kv[MAX_PAIRS];
	struct proto_msg req;
	if (n == 0)
		return cmd_usage_error(ctx, "set needs at least one KEY=VALUE");
	if (n > MAX_PAIRS)
		return cmd_usage_error(ctx, "set takes at most %d pairs", MAX_PAIRS);
	for (int i = 0; i < n; i++)
		if (parse_pair(ctx, v[i], &kv[i]))
			return CMD_EXIT_USAGE;
	proto_msg_init(&req, PROTO_T_LIMITS_SET, 0);
	req.u.limits_set.model = model;
	req.u.limits_set.kv = kv;
	req.u.limits_set.n_kv = (uint32_t)n;
	return call_and_print(ctx, &req);
}

static int limits_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg, *model = NULL;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		if (r == 'm')
			model = arg;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p);
	if (i < argc && !strcmp(argv[i], "set"))
		return limits_set(ctx, model, argc - i - 1, argv + i + 1);
	if (i < argc && !strcmp(argv[i], "get"))
		i++;
	if (i < argc)
		return cmd_usage_error(ctx, "unexpected '%s' (verbs: get, set)", argv[i]);
	struct proto_msg req;
	proto_msg_init(&req, PROTO_T_LIMITS_GET, 0);
	req.u.filter.model = model;
	return call_and_print(ctx, &req);
}

const struct plot_cmd cmd_limits_entry = {
	.name = "limits",
	.args = "[get | set KEY=VALUE...]",
	.summary = "Show limits, or change them live (max_running = tasks at once, threads = compute threads, max_units, ...).",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = limits_opts,
	.verbs = limits_verbs,
	.exec = limits_exec,
};
