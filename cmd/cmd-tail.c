/*
 * cmd-tail.c — `plot tail ID`: a task's output from its first chunk, then
 * live until it ends; the exit status is the task's. Any number of tails
 * may watch one task. Ctrl-C stops watching and leaves the task alone.
 */
#include <stdio.h>

#include "cmd-impl.h"

static const struct plot_opt tail_opts[] = {
	{"no-follow", 0, 0, NULL, "print the output so far and stop", CMD_OPT_NO_FOLLOW},
	{NULL, 0, 0, NULL, NULL, 0},
};

static int tail_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg;
	int r, follow = 1;
	uint64_t id;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		if (r == CMD_OPT_NO_FOLLOW)
			follow = 0;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p);
	if (argc - i != 1)
		return cmd_usage_error(ctx, "needs exactly one task id");
	if (cmd_parse_id(ctx, argv[i], &id))
		return CMD_EXIT_USAGE;
	return cmd_stream(ctx, id, follow, 0);
}

const struct plot_cmd cmd_tail_entry = {
	.name = "tail",
	.args = "ID",
	.summary = "Print a task's output from its start and follow it until it ends.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = tail_opts,
	.exec = tail_exec,
};
