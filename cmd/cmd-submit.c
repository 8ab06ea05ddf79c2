/*
 * cmd-submit.c — `plot submit`: submit a prompt, print its id, return.
 *
 * The task is submitted detached, so it runs on after this client exits;
 * its output waits in the mailbox for `plot result` / `plot tail`.
 */
#include <stdio.h>

#include "cmd-impl.h"

static const struct plot_opt submit_opts[] = {
	CMD_TASK_OPTS,
	{NULL, 0, 0, NULL, NULL, 0},
};

int cmd_print_id(struct plot_ctx *ctx, uint64_t id)
{
	if (ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_obj(&j);
		cmd_json_key(&j, "id");
		cmd_json_u64(&j, id);
		cmd_json_obj_end(&j);
		cmd_json_end(&j);
	} else {
		printf("%llu\n", (unsigned long long)id);
	}
	return CMD_EXIT_OK;
}

static int submit_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_task t;
	uint64_t id;
	cmd_task_init(&t);
	t.detach = 1;
	int rc = cmd_task_parse(ctx, &t, argc, argv);
	if (rc < 0)
		rc = CMD_EXIT_OK; /* --help */
	else if (rc == 0 && (rc = cmd_task_submit(ctx, &t, &id)) == 0)
		rc = cmd_print_id(ctx, id);
	cmd_task_free(&t);
	return rc;
}

const struct plot_cmd cmd_submit_entry = {
	.name = "submit",
	.args = "[PROMPT... | -]",
	.summary = "Submit a prompt and print its task id at once.",
	.flags = PLOT_CMD_NEEDS_DAEMON | PLOT_CMD_GEN_DEFAULTS,
	.opts = submit_opts,
	.exec = submit_exec,
};
