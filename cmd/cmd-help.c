/*
 * cmd-help.c — `plot help [CMD]`, usage texts, and the hidden
 * `plot __complete-table` that prints the command table for the tests and
 * completion scripts.
 *
 * DESIGN
 *   Every text here is generated from plot_cmd_table[] and the commands'
 *   plot_opt arrays, so help cannot list an option the parser rejects or
 *   miss one it accepts.
 */
#include <string.h>

#include "cmd-impl.h"
#include "plot/cfg.h"

static void print_opts(const struct plot_opt *o, FILE *f)
{
	for (; o && o->name; o++) {
		char left[64];
		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
				 o->has_arg ? " " : "", o->has_arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->has_arg ? " " : "", o->has_arg ? o->arg : "");
		fprintf(f, "  %-26s %s\n", left, o->help);
	}
}

/* The defaults a request gets for what it does not say: the built-in
 * values of the settings table, which plot.yaml may change daemon-wide or
 * per model (the daemon's own are in `plot config`). */
static void print_gen_defaults(FILE *f)
{
	static const char *const names[] = {
		"generate.max_tokens", "generate.temperature", "generate.top_k", "generate.top_p",
		"generate.min_p", "limits.timeout_secs",
	};
	fputs("\ndefaults for what is not given (plot.yaml parking_lot.*, per model too;\n"
	      "'plot config' shows the daemon's):\n", f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct cfg_setting *s = cfg_setting_find(names[i]);
		if (s)
			fprintf(f, "  %-22s %s\n", names[i], s->def);
	}
	fputs("  (max_tokens null: until the end of the text or the context;\n"
	      "   timeout_secs 0: no deadline)\n", f);
}

void cmd_usage(const struct plot_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: plot %s%s%s%s\n\n%s\n", cmd->name, cmd->opts ? " [OPTIONS]" : "",
		cmd->args && *cmd->args ? " " : "", cmd->args ? cmd->args : "", cmd->summary);
	if (cmd->opts) {
		fputs("\noptions:\n", f);
		print_opts(cmd->opts, f);
	}
	if (cmd->flags & PLOT_CMD_GEN_DEFAULTS)
		print_gen_defaults(f);
	fputs("\nGlobal options (see 'plot help') are accepted too.\n", f);
}

void cmd_main_usage(FILE *f)
{
	fputs("usage: plot [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n\ncommands:\n", f);
	for (const struct plot_cmd *const *c = plot_cmd_table; *c; c++)
		if (!((*c)->flags & PLOT_CMD_HIDDEN))
			fprintf(f, "  %-9s %s\n", (*c)->name, (*c)->summary);
	fputs("\nglobal options:\n", f);
	print_opts(cmd_global_opts, f);
	fputs("\n'plot help COMMAND' describes one command; man plot has the rest.\n", f);
}

int cmd_usage_error(struct plot_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (ctx && ctx->json) {
		cmd_vjson_error(ctx, fmt, ap);
		va_end(ap);
		return CMD_EXIT_USAGE;
	}
	fputs("plot", stderr);
	if (ctx && ctx->cmd)
		fprintf(stderr, " %s", ctx->cmd->name);
	fputs(": ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (ctx && ctx->cmd)
		fprintf(stderr, "\nTry 'plot help %s'.\n", ctx->cmd->name);
	else
		fputs("\nTry 'plot help'.\n", stderr);
	return CMD_EXIT_USAGE;
}

static int help_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p);
	if (i >= argc) {
		cmd_main_usage(stdout);
		return CMD_EXIT_OK;
	}
	if (argc - i > 1)
		return cmd_usage_error(ctx, "takes at most one command name");
	const struct plot_cmd *cmd = cmd_find(argv[i]);
	if (!cmd || (cmd->flags & PLOT_CMD_HIDDEN))
		return cmd_usage_error(ctx, "unknown command '%s'", argv[i]);
	cmd_usage(cmd, stdout);
	return CMD_EXIT_OK;
}

const struct plot_cmd cmd_help_entry = {
	.name = "help",
	.args = "[COMMAND]",
	.summary = "Show help for plot or for one command.",
	.exec = help_exec,
};

static void table_opts(const char *owner, const struct plot_opt *o)
{
	for (; o && o->name; o++) {
		printf("option %s --%s%s\n", owner, o->name, o->has_arg ? "=" : "");
		if (o->short_name)
			printf("option %s -%c%s\n", owner, o->short_name, o->has_arg ? "=" : "");
	}
}

/* Settings `plot limits set` accepts: lib/cfg's runtime-changeable keys. */
static void table_limit_keys(void)
{
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->key && (s->flags & CFG_F_RUNTIME))
			printf("key limits %s\n", s->key);
	}
}

/* One line per fact: "command NAME", "verb NAME VERB", "option NAME --LONG[=]",
 * "option - --LONG" for global options, "key limits KEY" for the settings
 * `limits set` takes. "=" marks an option with a value. */
static int complete_table_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	if (argc > 1)
		return cmd_usage_error(ctx, "takes no arguments");
	for (const struct plot_cmd *const *c = plot_cmd_table; *c; c++) {
		if ((*c)->flags & PLOT_CMD_HIDDEN)
			continue;
		printf("command %s\n", (*c)->name);
		for (const char *const *v = (*c)->verbs; v && *v; v++)
			printf("verb %s %s\n", (*c)->name, *v);
		table_opts((*c)->name, (*c)->opts);
	}
	table_opts("-", cmd_global_opts);
	table_limit_keys();
	return CMD_EXIT_OK;
}

const struct plot_cmd cmd_complete_table_entry = {
	.name = "__complete-table",
	.args = "",
	.summary = "Print the command table (for completions and tests).",
	.flags = PLOT_CMD_HIDDEN,
	.exec = complete_table_exec,
};
