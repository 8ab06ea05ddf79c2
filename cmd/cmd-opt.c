/*
 * cmd-opt.c — option parsing for every plot command.
 *
 * DESIGN
 *   A command's `struct plot_opt` array plus cmd_global_opts are turned into
 *   one getopt_long table per parse, so the parser, `plot help CMD` and the
 *   completion/man-page checks read the same data. getopt_long permutes, so
 *   options may follow operands (`plot run "hi" -m echo`); "--" ends them.
 *   Errors are ours, not getopt's (opterr = 0), and name the command.
 *
 * INVARIANTS
 *   - A usage error returns CMD_EXIT_USAGE (2) to main, never exits.
 *   - Numbers are parsed whole (no trailing junk) and checked against the
 *     documented bounds before anything is sent to the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/version.h"

enum {
	G_SOCKET = 256, G_CONFIG, G_JSON, G_COLOR, G_VERSION, G_NO_AUTOSTART,
};

const struct plot_opt cmd_global_opts[] = {
	{"socket", 0, 1, "PATH", "the daemon's socket (else $PLOT_SOCKET, $XDG_RUNTIME_DIR/plot/plotd.sock, /tmp/plot-$UID/plotd.sock)", G_SOCKET},
	{"config", 0, 1, "FILE", "config file passed to plotd when it is autostarted", G_CONFIG},
	{"json", 0, 0, NULL, "print data as JSON (stable, see plot(1))", G_JSON},
	{"color", 0, 1, "WHEN", "auto, always or never (NO_COLOR is honoured)", G_COLOR},
	{"quiet", 'q', 0, NULL, "print no informational messages", 'q'},
	{"verbose", 'v', 0, NULL, "print more about what happens", 'v'},
	{"version", 0, 0, NULL, "print the version and exit", G_VERSION},
	{"help", 'h', 0, NULL, "print help and exit", 'h'},
	{"no-autostart", 0, 0, NULL, "never start plotd (also PLOT_NO_AUTOSTART=1)", G_NO_AUTOSTART},
	{NULL, 0, 0, NULL, NULL, 0},
};

static int is_global(int id)
{
	for (const struct plot_opt *o = cmd_global_opts; o->name; o++)
		if (o->id == id)
			return id != 'h' && id != G_VERSION;
	return 0;
}

int cmd_global_apply(struct plot_ctx *ctx, int id, const char *arg)
{
	switch (id) {
	case G_SOCKET:
		ctx->socket_opt = arg;
		return 0;
	case G_CONFIG:
		ctx->config_opt = arg;
		return 0;
	case G_JSON:
		ctx->json = 1;
		return 0;
	case G_COLOR:
		if (!strcmp(arg, "auto"))
			ctx->color = CMD_COLOR_AUTO;
		else if (!strcmp(arg, "always"))
			ctx->color = CMD_COLOR_ALWAYS;
		else if (!strcmp(arg, "never"))
			ctx->color = CMD_COLOR_NEVER;
		else
			return cmd_usage_error(ctx, "--color: '%s' is not auto, always or never", arg);
		return 0;
	case 'q':
		ctx->quiet = 1;
		return 0;
	case 'v':
		ctx->verbose++;
		return 0;
	case G_NO_AUTOSTART:
		ctx->no_autostart = 1;
		return 0;
	}
	return CMD_EXIT_USAGE;
}

void cmd_parser_init(struct cmd_parser *p, struct plot_ctx *ctx,
		     const struct plot_cmd *cmd, int argc, char **argv)
{
	memset(p, 0, sizeof(*p));
	p->ctx = ctx;
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	for (const struct plot_opt *o = cmd && cmd->opts ? cmd->opts : NULL; o && o->name; o++)
		if (p->n < CMD_MAX_OPTS)
			p->all[p->n++] = o;
	for (const struct plot_opt *o = cmd_global_opts; o->name; o++)
		if (p->n < CMD_MAX_OPTS)
			p->all[p->n++] = o;
	optind = 0; /* GNU: full reinitialisation for a new argv */
	opterr = 0;
}

static void build_tables(const struct cmd_parser *p, struct option *lo, char *so)
{
	size_t k = 0;
	if (!p->cmd)
		so[k++] = '+'; /* global options end at the command name */
	so[k++] = ':'; /* report a missing argument as ':' */
	for (int i = 0; i < p->n; i++) {
		const struct plot_opt *o = p->all[i];
		lo[i] = (struct option){o->name, o->has_arg ? required_argument : no_argument,
					NULL, o->id};
		if (o->short_name) {
			so[k++] = (char)o->short_name;
			if (o->has_arg)
				so[k++] = ':';
		}
	}
	lo[p->n] = (struct option){NULL, 0, NULL, 0};
	so[k] = '\0';
}

/* The option text the user typed for the error at optind: the argument
 * itself for a long option, else the short option character. */
static const char *bad_opt_text(const struct cmd_parser *p, char *buf, size_t len)
{
	const char *a = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : NULL;
	if (a && !strncmp(a, "--", 2)) {
		snprintf(buf, len, "%s", a);
		char *eq = strchr(buf, '=');
		if (eq)
			*eq = '\0';
	} else if (optopt > 0 && optopt < 256) {
		snprintf(buf, len, "-%c", optopt);
	} else {
		snprintf(buf, len, "%s", a ? a : "?");
	}
	return buf;
}

int cmd_parser_next(struct cmd_parser *p, const char **arg)
{
	struct option lo[CMD_MAX_OPTS + 1];
	char so[CMD_MAX_OPTS * 2 + 3], buf[128];

	build_tables(p, lo, so);
	for (;;) {
		optopt = 0;
		int c = getopt_long(p->argc, p->argv, so, lo, NULL);
		if (c == -1)
			return 0;
		if (c == '?') {
			cmd_usage_error(p->ctx, "unknown option '%s'", bad_opt_text(p, buf, sizeof(buf)));
			return -1;
		}
		if (c == ':') {
			cmd_usage_error(p->ctx, "option '%s' needs a value", bad_opt_text(p, buf, sizeof(buf)));
			return -1;
		}
		if (is_global(c)) {
			if (cmd_global_apply(p->ctx, c, optarg))
				return -1;
			continue;
		}
		if (c == 'h') {
			if (p->cmd)
				cmd_usage(p->cmd, stdout);
			else
				cmd_main_usage(stdout);
			return -2;
		}
		if (c == G_VERSION) {
			printf("plot %s\n", plot_version());
			return -2;
		}
		*arg = optarg;
		return c;
	}
}

int cmd_parser_optind(const struct cmd_parser *p)
{
	return optind;
}

int cmd_parse_no_args(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(ctx, "takes no arguments");
	return -1;
}

int cmd_parse_u64(struct plot_ctx *ctx, const char *what, const char *s,
		  uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		goto bad;
	if (v < min || v > max) {
		cmd_usage_error(ctx, "%s: %llu is out of range (%llu..%llu)", what, v,
				(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
bad:
	cmd_usage_error(ctx, "%s: '%s' is not a whole number", what, s ? s : "");
	return -1;
}

int cmd_parse_double(struct plot_ctx *ctx, const char *what, const char *s,
		     double min, double max, double *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == ' ')
		goto bad;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		goto bad;
	if (v < min || v > max) {
		cmd_usage_error(ctx, "%s: %s is out of range (%g..%g)", what, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
bad:
	cmd_usage_error(ctx, "%s: '%s' is not a number", what, s ? s : "");
	return -1;
}

int cmd_parse_id(struct plot_ctx *ctx, const char *s, uint64_t *out)
{
	return cmd_parse_u64(ctx, "task id", s, 1, UINT64_MAX, out);
}
