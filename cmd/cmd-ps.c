/*
 * cmd-ps.c — `plot ps`: the models that hold memory now, as `ollama ps`
 * shows them: name, state ("loading 42%", "ready", "unloading"), the
 * memory it holds (weights + KV cache, binary units; "-" for none), where
 * it runs (cpu; on a GPU its index, name and memory: "cuda:0 (NVIDIA H200,
 * 120.5 GiB free of 139.8 GiB)"; "-" for a synthetic model) and when it
 * unloads for being idle ("in 4m05s"; "-": it does not). Models that failed
 * or were unloaded are left out (`plot models` lists every one).
 * --json: {"models":[{"name","state","progress","mem_bytes","device",
 * "device_name","device_total_bytes","device_free_bytes",
 * "idle_unload_in"}]}, mem_bytes, device, device_* and idle_unload_in null
 * when not applicable.
 */
#include <string.h>

#include "cmd-impl.h"

/* Loading, ready or unloading: what holds (or is taking) memory. */
static int is_loaded(const struct proto_model_info *k)
{
	return k->state && (!strcmp(k->state, "loading") || !strcmp(k->state, "ready") ||
			    !strcmp(k->state, "unloading"));
}

static void json_row(struct cmd_json *j, const struct proto_model_info *k)
{
	cmd_json_obj(j);
	cmd_json_key(j, "name");
	cmd_json_str(j, k->name);
	cmd_json_key(j, "state");
	cmd_json_str(j, k->state);
	cmd_json_key(j, "progress");
	cmd_json_dbl(j, k->progress);
	cmd_json_key(j, "mem_bytes");
	if (k->mem_bytes)
		cmd_json_u64(j, k->mem_bytes);
	else
		cmd_json_null(j);
	cmd_json_key(j, "device");
	cmd_json_str(j, k->device);
	cmd_json_device(j, k->device_name, k->device_total_bytes, k->device_free_bytes);
	cmd_json_key(j, "idle_unload_in");
	if (k->idle_in_secs > 0)
		cmd_json_dbl(j, k->idle_in_secs);
	else
		cmd_json_null(j);
	cmd_json_obj_end(j);
}

static void print_json(const struct proto_models *m)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "models");
	cmd_json_arr(&j);
	for (uint32_t i = 0; i < m->n_models; i++)
		if (is_loaded(&m->models[i]))
			json_row(&j, &m->models[i]);
	cmd_json_arr_end(&j);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

static void table_row(struct cmd_table *t, const struct proto_model_info *k)
{
	char st[32], mem[32], idle[40], d[32], dev[160];
	const char *state = k->state;
	if (!strcmp(k->state, "loading")) {
		snprintf(st, sizeof(st), "loading %d%%", (int)(k->progress * 100));
		state = st;
	}
	if (k->idle_in_secs > 0)
		snprintf(idle, sizeof(idle), "in %s", cmd_fmt_dur(d, sizeof(d), k->idle_in_secs));
	const char *row[] = {k->name, state,
			     k->mem_bytes ? cmd_fmt_bytes(mem, sizeof(mem), k->mem_bytes) : "-",
			     cmd_fmt_device(dev, sizeof(dev), k->device, k->device_name,
					    k->device_total_bytes, k->device_free_bytes),
			     k->idle_in_secs > 0 ? idle : "-"};
	cmd_table_add(t, row);
}

static void print_table(struct plot_ctx *ctx, const struct proto_models *m)
{
	static const char *const head[] = {"NAME", "STATE", "MEMORY", "DEVICE", "UNLOADS"};
	struct cmd_table t;
	cmd_table_init(&t, 5, head);
	for (uint32_t i = 0; i < m->n_models; i++)
		if (is_loaded(&m->models[i]))
			table_row(&t, &m->models[i]);
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

static int ps_exec(struct plot_ctx *ctx, int argc, char **argv)
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

const struct plot_cmd cmd_ps_entry = {
	.name = "ps",
	.args = "",
	.summary = "List the loaded models: memory, device, when they unload.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.exec = ps_exec,
};
