/*
 * cmd-run.c — `plot run`: submit a prompt and stream its output.
 *
 * The task is submitted attached (the daemon cancels it if this client
 * goes away) unless --detach, which prints the id and returns like submit
 * but leaves the task running on its own. Streaming and Ctrl-C handling
 * are cmd-stream.c's; the exit status is the task's. A --model with a '/'
 * is a GGUF file, served by a private plotd for this run (cmd-adhoc.c).
 */
#include <stdio.h>

#include "cmd-impl.h"

static const struct plot_opt run_opts[] = {
	CMD_TASK_OPTS,
	{"detach", 0, 0, NULL, "print the task id and return; the task goes on", CMD_OPT_DETACH},
	{NULL, 0, 0, NULL, NULL, 0},
};

static int run_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_task t;
	uint64_t id;
	cmd_task_init(&t);
	int rc = cmd_task_parse(ctx, &t, argc, argv);
	if (rc == 0 && cmd_adhoc_wanted(t.model))
		rc = cmd_adhoc_start(ctx, t.model, &t.model);
	if (rc == 0)
		rc = cmd_task_submit(ctx, &t, &id);
	if (rc == 0)
		rc = t.detach ? cmd_print_id(ctx, id) : cmd_stream(ctx, id, 1, 1);
	else if (rc < 0)
		rc = CMD_EXIT_OK; /* --help */
	cmd_task_free(&t);
	cmd_adhoc_end(ctx);
	return rc;
}

const struct plot_cmd cmd_run_entry = {
	.name = "run",
	.args = "[PROMPT... | -]",
	.summary = "Submit a prompt, stream its output, exit with the task's status.",
	.flags = PLOT_CMD_NEEDS_DAEMON | PLOT_CMD_GEN_DEFAULTS,
	.opts = run_opts,
	.exec = run_exec,
};
