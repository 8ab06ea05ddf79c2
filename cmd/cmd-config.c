/*
 * cmd-config.c — `plot config`: the daemon's effective configuration as
 * YAML (loadable again as plot.yaml), with where it came from on stderr.
 * --json: {"source":FILE,"yaml":TEXT}.
 */
#include <string.h>

#include "cmd-impl.h"

static int config_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct proto_msg req, reply;
	int r = cmd_parse_no_args(ctx, argc, argv);
	if (r >= 0)
		return r;
	proto_msg_init(&req, PROTO_T_CONFIG, 0);
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	if (rc == 0 && ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_obj(&j);
		cmd_json_key(&j, "source");
		cmd_json_str(&j, reply.u.config.source);
		cmd_json_key(&j, "yaml");
		cmd_json_str(&j, reply.u.config.yaml);
		cmd_json_obj_end(&j);
		cmd_json_end(&j);
	} else if (rc == 0) {
		if (ctx->verbose)
			cmd_info(ctx, "from %s", reply.u.config.source ? reply.u.config.source : "?");
		fputs(reply.u.config.yaml ? reply.u.config.yaml : "", stdout);
	}
	proto_msg_clear(&reply);
	return rc;
}

const struct plot_cmd cmd_config_entry = {
	.name = "config",
	.args = "",
	.summary = "Print the daemon's effective configuration as YAML.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.exec = config_exec,
};
