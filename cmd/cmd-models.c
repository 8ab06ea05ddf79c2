/*
 * cmd-models.c — `plot models`: the configured models, one per row: name,
 * executor, state ("loading 42%", "ready", "failed: reason"), whether it is
 * the default, context length and KV blocks (llm models; "-" otherwise or
 * not known yet), and its file. --json: {"models":[{"name","executor",
 * "state","progress","error","default","context_length","kv_blocks",
 * "path"}]}, progress 0..1, error null unless failed, context_length and
 * kv_blocks null when unknown.
 */
#include <stdio.h>
#include <string.h>

#include "cmd-impl.h"

static void json_u64_or_null(struct cmd_json *j, const char *key, uint64_t v)
{
	cmd_json_key(j, key);
	if (v)
		cmd_json_u64(j, v);
	else
		cmd_json_null(j);
}

/* "loading 42%", "failed: reason" or the state as it is. */
static const char *state_text(char *buf, size_t len, const struct proto_model_info *k)
{
	if (k->state && !strcmp(k->state, "loading"))
		snprintf(buf, len, "loading %d%%", (int)(k->progress * 100));
	else if (k->state && !strcmp(k->state, "failed") && k->error && *k->error)
		snprintf(buf, len, "failed: %s", k->error);
	else
		return k->state ? k->state : "-";
	return buf;
}

static const char *u64_or_dash(char *buf, size_t len, uint64_t v)
{
	if (!v)
		return "-";
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

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
		cmd_json_key(&j, "progress");
		cmd_json_dbl(&j, k->progress);
		cmd_json_key(&j, "error");
		cmd_json_str(&j, k->error);
		cmd_json_key(&j, "default");
		cmd_json_bool(&j, k->is_default);
		json_u64_or_null(&j, "context_length", k->context_length);
		json_u64_or_null(&j, "kv_blocks", k->kv_blocks);
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
	static const char *const head[] = {"NAME", "EXECUTOR", "STATE", "DEFAULT", "CONTEXT",
					   "KV_BLOCKS", "PATH"};
	struct cmd_table t;
	cmd_table_init(&t, 7, head);
	for (uint32_t i = 0; i < m->n_models; i++) {
		const struct proto_model_info *k = &m->models[i];
		char st[320], ctx_len[24], kv[24];
		const char *row[] = {k->name, k->executor, state_text(st, sizeof(st), k),
				     k->is_default ? "yes" : "no",
				     u64_or_dash(ctx_len, sizeof(ctx_len), k->context_length),
				     u64_or_dash(kv, sizeof(kv), k->kv_blocks),
				     k->path ? k->path : "-"};
		cmd_table_add(&t, row);
	}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

static int models_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct proto_msg req, reply;
	int r = cmd_parse_no_args(ctx, argc, argv);
	if (r >= 0)
		return r;
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
