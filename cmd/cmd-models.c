/*
 * cmd-models.c — `plot models`: the configured models, one per row: name,
 * executor, state, whether it is the default, and its file. --json:
 * {"models":[{"name","executor","state","default","path"}]}.
 */
#include <string.h>

#include "cmd-impl.h"

static void print_json(const struct proto_models *m)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "models");
	cmd_json_arr(&j);
	for (uint32_t i = 0; i < m->n_models; i++) {
		const struct proto_model_info *k = &m->models[i];
		cmd_json_obj(&j);
		cmd_json_key(&j, "name");
		cmd_json_str(&j, k->name);
		cmd_json_key(&j, "executor");
		cmd_json_str(&j, k->executor);
		cmd_json_key(&j, "state");
		cmd_json_str(&j, k->state);
		cmd_json_key(&j, "default");
		cmd_json_bool(&j, k->is_default);
		cmd_json_key(&j, "path");
		cmd_json_str(&j, k->path);
		cmd_json_obj_end(&j);
	}
	cmd_json_arr_end(&j);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

static void print_table(struct plot_ctx *ctx, const struct proto_models *m)
{
	static const char *const head[] = {"NAME", "EXECUTOR", "STATE", "DEFAULT", "PATH"};
	struct cmd_table t;
	cmd_table_init(&t, 5, head);
	for (uint32_t i = 0; i < m->n_models; i++) {
		const struct proto_model_info *k = &m->models[i];
		const char *row[] = {k->name, k->executor, k->state, k->is_default ? "yes" : "no",
				     k->path ? k->path : "-"};
		cmd_table_add(&t, row);
	}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

static int models_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct proto_msg req, reply;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(ctx, "takes no arguments");
	proto_msg_init(&req, PROTO_T_MODELS, 0);
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	if (rc == 0 && ctx->json)
		print_json(&reply.u.models);
	else if (rc == 0)
		print_table(ctx, &reply.u.models);
	proto_msg_clear(&reply);
	return rc;
}

const struct plot_cmd cmd_models_entry = {
	.name = "models",
	.args = "",
	.summary = "List the configured models.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.exec = models_exec,
};
