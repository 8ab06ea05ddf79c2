/*
 * cmd-list.c — `plot list`: every task the daemon still holds (queued,
 * running and finished, within retention, restarts included with the
 * sqlite store), newest first, with filters on state, model, owner and age
 * and a limit. --json prints an array of task objects, as queue does.
 *
 * The daemon does the filtering (queue request with all: true, plot-
 * protocol(7)), so a limit keeps the newest tasks, not the first ones read.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/pool.h"

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT PROTO_MAX_ARRAY

static const struct plot_opt list_opts[] = {
	{"model", 'm', 1, "M", "only tasks of model M", 'm'},
	{"state", 0, 1, "S", "only tasks in state S (queued, running, done, failed, ...)", CMD_OPT_STATE},
	{"owner", 0, 1, "USER", "only tasks of USER (a name or a uid)", CMD_OPT_OWNER},
	{"since", 0, 1, "SECS", "only tasks submitted in the last SECS seconds", CMD_OPT_SINCE},
	{"limit", 0, 1, "N", "show the N newest (1..4096, default 50)", CMD_OPT_LIMIT},
	{NULL, 0, 0, NULL, NULL, 0},
};

static void print_list(struct plot_ctx *ctx, const struct proto_queue *q)
{
	static const char *const head[] = {"ID", "MODEL", "STATE", "PRIO", "AGE", "OUTPUT", "LABEL"};
	struct cmd_table t;
	cmd_table_init(&t, 7, head);
	for (uint32_t i = 0; i < q->n_tasks; i++) {
		const struct proto_task_info *k = &q->tasks[i];
		char id[24], age[32], out[32];
		snprintf(id, sizeof(id), "%llu", (unsigned long long)k->id);
		snprintf(out, sizeof(out), "%llu B", (unsigned long long)k->output_bytes);
		const char *row[] = {id, k->model ? k->model : "-", pool_state_name(k->state),
				     pool_prio_name(k->priority),
				     cmd_fmt_dur(age, sizeof(age), k->age_secs), out,
				     k->label ? k->label : "-"};
		cmd_table_add(&t, row);
	}
	cmd_table_print(ctx, &t, stdout, 6);
	cmd_table_free(&t);
}

static int parse_owner(struct plot_ctx *ctx, const char *arg, struct proto_filter *f)
{
	struct passwd *pw = getpwnam(arg);
	uint64_t uid;
	if (pw) {
		uid = pw->pw_uid;
	} else if (cmd_parse_u64(ctx, "--owner", arg, 0, 0xfffffffeu, &uid)) {
		return -1;
	}
	f->owner = uid;
	f->has |= PROTO_HAS_F_OWNER;
	return 0;
}

static int list_opt(struct plot_ctx *ctx, int r, const char *arg, struct proto_filter *f)
{
	switch (r) {
	case 'm':
		f->model = arg;
		return 0;
	case CMD_OPT_STATE:
		if ((f->state = pool_state_parse(arg)) < 0)
			return cmd_usage_error(ctx, "--state: '%s' is not a task state", arg), -1;
		return 0;
	case CMD_OPT_OWNER:
		return parse_owner(ctx, arg, f);
	case CMD_OPT_SINCE:
		f->has |= PROTO_HAS_F_SINCE;
		return cmd_parse_double(ctx, "--since", arg, 0.001, 1e9, &f->since_secs);
	case CMD_OPT_LIMIT:
		return cmd_parse_u64(ctx, "--limit", arg, 1, LIST_MAX_LIMIT, &f->limit);
	}
	return 0;
}

static int list_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct proto_filter f = {.state = -1, .all = 1, .limit = LIST_DEFAULT_LIMIT,
				 .has = PROTO_HAS_F_LIMIT};
	const char *arg;
	int r;

	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		if (list_opt(ctx, r, arg, &f) < 0)
			return CMD_EXIT_USAGE;
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(ctx, "takes no arguments");
	return cmd_query_tasks(ctx, &f, print_list);
}

const struct plot_cmd cmd_list_entry = {
	.name = "list",
	.args = "",
	.summary = "List every task plotd holds, finished ones too, newest first.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = list_opts,
	.exec = list_exec,
};
