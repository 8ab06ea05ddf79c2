/*
 * cmd-models.c — `plot models [list | load PATH|NAME [--name N] | unload
 * NAME]`: the models, one per row: name, executor, state ("loading 42%",
 * "ready", "failed: reason", "unloading", "unloaded"), whether it is the
 * default, context length and KV blocks (llm models; "-" otherwise or not
 * known yet), the memory it holds (weights + KV cache: "93.8 MiB"; "-"
 * for none or not loaded yet; on a GPU also where: "1.4 GiB on cuda:0
 * (NVIDIA H200, 120.5 GiB free of 139.8 GiB)"), when it unloads for being
 * idle ("in 4m05s"; "-": it does not), and its file. --json:
 * {"models":[{"name","executor","state","progress","error","default",
 * "context_length","kv_blocks","mem_bytes","device","device_name",
 * "device_total_bytes","device_free_bytes","idle_unload_in",
 * "loaded_by_path","path"}]}, progress 0..1, error null unless failed,
 * context_length, kv_blocks, mem_bytes, device_* and idle_unload_in
 * (seconds) null when unknown or not applicable.
 *
 * load and unload ask plotd (its own user only) to load a GGUF file as a
 * new model, load an unloaded model again, or unload one; the reply is the
 * list after the change. A path is made absolute here (plotd has its own
 * working directory); the name defaults to the file's base name without
 * .gguf, as for run -m PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
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

/* "93.8 MiB", and on a GPU where: "1.4 GiB on cuda:0 (NVIDIA H200, 120.5
 * GiB free of 139.8 GiB)"; "-" for none. */
static void mem_text(char *buf, size_t len, const struct proto_model_info *k)
{
	char b[32], dev[160];
	if (!k->mem_bytes)
		snprintf(buf, len, "-");
	else if (k->device_name)
		snprintf(buf, len, "%s on %s", cmd_fmt_bytes(b, sizeof(b), k->mem_bytes),
			 cmd_fmt_device(dev, sizeof(dev), k->device, k->device_name,
					k->device_total_bytes, k->device_free_bytes));
	else
		cmd_fmt_bytes(buf, len, k->mem_bytes);
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
		json_u64_or_null(&j, "mem_bytes", k->mem_bytes);
		cmd_json_key(&j, "device");
		cmd_json_str(&j, k->device);
		cmd_json_device(&j, k->device_name, k->device_total_bytes, k->device_free_bytes);
		cmd_json_key(&j, "idle_unload_in");
		if (k->idle_in_secs > 0)
			cmd_json_dbl(&j, k->idle_in_secs);
		else
			cmd_json_null(&j);
		cmd_json_key(&j, "loaded_by_path");
		cmd_json_bool(&j, k->adhoc);
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
					   "KV_BLOCKS", "MEMORY", "UNLOADS", "PATH"};
	struct cmd_table t;
	cmd_table_init(&t, 9, head);
	for (uint32_t i = 0; i < m->n_models; i++) {
		const struct proto_model_info *k = &m->models[i];
		char st[320], ctx_len[24], kv[24], idle[40], d[32], mem[200];
		if (k->idle_in_secs > 0)
			snprintf(idle, sizeof(idle), "in %s", cmd_fmt_dur(d, sizeof(d), k->idle_in_secs));
		mem_text(mem, sizeof(mem), k);
		const char *row[] = {k->name, k->executor, state_text(st, sizeof(st), k),
				     k->is_default ? "yes" : "no",
				     u64_or_dash(ctx_len, sizeof(ctx_len), k->context_length),
				     u64_or_dash(kv, sizeof(kv), k->kv_blocks),
				     mem,
				     k->idle_in_secs > 0 ? idle : "-",
				     k->path ? k->path : "-"};
		cmd_table_add(&t, row);
	}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

#define OPT_NAME 400

static const char *const models_verbs[] = {"list", "load", "unload", NULL};

static const struct plot_opt models_opts[] = {
	{"name", 0, 1, "N", "load PATH: the model's name (default: the file's, without .gguf)", OPT_NAME},
	{NULL, 0, 0, NULL, NULL, 0},
};

/* The request for load/unload: 0, or an exit status (printed). */
static int change_req(struct plot_ctx *ctx, const char *verb, const char *what,
		      const char *name, char *abs, struct proto_models_req *q)
{
	if (!strcmp(verb, "unload")) {
		q->unload = what;
		return name ? cmd_usage_error(ctx, "--name goes with load PATH") : 0;
	}
	if (!cmd_adhoc_wanted(what)) { /* a model's name: load it again */
		q->load = what;
		return name ? cmd_usage_error(ctx, "--name goes with load PATH") : 0;
	}
	if (!realpath(what, abs)) {
		cmd_err(ctx, "load %s: %s", what, strerror(errno));
		return CMD_EXIT_USAGE;
	}
	q->load = abs;
	q->name = name ? name : cmd_adhoc_name(abs);
	return 0;
}

/* "models", "models list", "models load X [--name N]", "models unload X". */
static int models_parse(struct plot_ctx *ctx, int argc, char **argv, char *abs,
			struct proto_models_req *q)
{
	struct cmd_parser p;
	const char *arg, *name = NULL;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		if (r == OPT_NAME)
			name = arg;
	if (r < 0)
		return r == -2 ? -1 : CMD_EXIT_USAGE;
	int i = cmd_parser_optind(&p), n = argc - i;
	if (n == 0 || (n == 1 && !strcmp(argv[i], "list")))
		return name ? cmd_usage_error(ctx, "--name goes with load PATH") : 0;
	if (n == 2 && (!strcmp(argv[i], "load") || !strcmp(argv[i], "unload")))
		return change_req(ctx, argv[i], argv[i + 1], name, abs, q);
	return cmd_usage_error(ctx, "expected list, load PATH|NAME or unload NAME");
}

static int models_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct proto_msg req, reply;
	char abs[PATH_MAX];
	proto_msg_init(&req, PROTO_T_MODELS, 0);
	int r = models_parse(ctx, argc, argv, abs, &req.u.models_req);
	if (r)
		return r < 0 ? CMD_EXIT_OK : r;
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
	.args = "[list | load PATH|NAME [--name N] | unload NAME]",
	.summary = "List the models; load a GGUF file or an unloaded model; unload one.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = models_opts,
	.verbs = models_verbs,
	.exec = models_exec,
};
