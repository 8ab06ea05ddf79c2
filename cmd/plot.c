/*
 * plot.c — the plot CLI's entry point: global options, then one command.
 *
 * DESIGN
 *   `plot [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]`. main parses the global
 *   options up to the command name, finds the command in plot_cmd_table[]
 *   and hands it argv from the command name on (git's builtin convention);
 *   the command's own parser accepts the global options too. The command's
 *   return value is the exit status (the table in plot.1).
 *
 * INVARIANTS
 *   - SIGPIPE is ignored: a dead daemon or a closed stdout is an error the
 *     code sees (EPIPE). A closed stdout ends the command quietly with 141,
 *     the status of `yes | head`, after what must be done (run cancels its
 *     task); a dead daemon is reported.
 *   - The connection, if any, is closed here, once.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/client.h"

static void env_defaults(struct plot_ctx *ctx)
{
	const char *e = getenv("PLOT_NO_AUTOSTART");
	if (e && *e && strcmp(e, "0") != 0)
		ctx->no_autostart = 1;
}

int main(int argc, char **argv)
{
	struct plot_ctx ctx = {0};
	struct cmd_parser p;
	const char *arg;
	int r;

	signal(SIGPIPE, SIG_IGN);
	env_defaults(&ctx);
	cmd_parser_init(&p, &ctx, NULL, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		; /* only global options exist here; they are applied to ctx */
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p);
	if (i >= argc) {
		cmd_main_usage(stderr);
		return CMD_EXIT_USAGE;
	}
	ctx.cmd = cmd_find(argv[i]);
	if (!ctx.cmd)
		return cmd_usage_error(&ctx, "unknown command '%s' (see 'plot help')", argv[i]);
	int rc = ctx.cmd->exec(&ctx, argc - i, argv + i);
	if (ctx.cl)
		client_free(ctx.cl);
	if (fflush(stdout) != 0 && rc == CMD_EXIT_OK)
		rc = errno == EPIPE ? CMD_EXIT_PIPE : CMD_EXIT_FAIL;
	return rc;
}
