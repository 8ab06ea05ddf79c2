/*
 * cmd-queue.c — `plot queue [-m M] [--state S] [--watch SECS]`: tasks in
 * queue order (running first, then queued in the order they will be
 * admitted), with id, model, priority, state, position, cost, age,
 * deadline, owner and label (the prompt's start). --json prints an array of task objects (plot(1)).
 *
 * Also owns the --watch loop that stats shares: redraw every SECS seconds
 * until interrupted; on a tty the screen is cleared first, elsewhere each
 * round is simply appended (one JSON document per line with --json).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cmd-impl.h"
#include "plot/pool.h"

static const struct plot_opt queue_opts[] = {
	{"model", 'm', 1, "M", "only tasks of model M", 'm'},
	{"state", 0, 1, "S", "only tasks in state S (queued, running, done, ...)", CMD_OPT_STATE},
	{"watch", 0, 1, "SECS", "redraw every SECS seconds (0.1..86400) until interrupted", CMD_OPT_WATCH},
	{NULL, 0, 0, NULL, NULL, 0},
};

int cmd_watch(struct plot_ctx *ctx, double secs, int (*round)(struct plot_ctx *, void *), void *arg)
{
	for (;;) {
		if (secs > 0 && !ctx->json && cmd_is_tty(stdout))
			fputs("\033[H\033[2J", stdout);
		int rc = round(ctx, arg);
		fflush(stdout);
		if (rc || secs <= 0)
			return rc;
		struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static void print_table(struct plot_ctx *ctx, const struct proto_queue *q)
{
	static const char *const head[] = {"ID", "MODEL", "PRIO", "STATE", "POS", "COST", "AGE",
					   "DEADLINE", "OWNER", "LABEL"};
	struct cmd_table t;
	cmd_table_init(&t, 10, head);
	for (uint32_t i = 0; i < q->n_tasks; i++) {
		const struct proto_task_info *k = &q->tasks[i];
		char id[24], pos[24], cost[24], age[32], dl[64], own[64], lab[64];
		snprintf(id, sizeof(id), "%llu", (unsigned long long)k->id);
		snprintf(pos, sizeof(pos), "%llu", (unsigned long long)k->position);
		snprintf(cost, sizeof(cost), "%llu", (unsigned long long)k->cost);
		const char *row[] = {id, k->model ? k->model : "-", pool_prio_name(k->priority),
				     pool_state_name(k->state), k->position ? pos : "-", cost,
				     cmd_fmt_dur(age, sizeof(age), k->age_secs),
				     cmd_fmt_deadline(dl, sizeof(dl), k),
				     cmd_fmt_owner(own, sizeof(own), k->owner_uid),
				     cmd_fmt_label(lab, sizeof(lab), k->label, 24)};
		cmd_table_add(&t, row);
	}
	cmd_table_print(ctx, &t, stdout, 3);
	cmd_table_free(&t);
}

static int queue_round(struct plot_ctx *ctx, void *arg)
{
	return cmd_query_tasks(ctx, arg, print_table);
}

int cmd_parse_watch(struct plot_ctx *ctx, const char *arg, double *secs)
{
	return cmd_parse_double(ctx, "--watch", arg, 0.1, 86400, secs);
}

static int queue_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct proto_filter f = {.model = NULL, .state = -1};
	const char *arg;
	double watch = 0;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == 'm') {
			f.model = arg;
		} else if (r == CMD_OPT_STATE) {
			f.state = pool_state_parse(arg);
			if (f.state < 0)
				return cmd_usage_error(ctx, "--state: '%s' is not a task state", arg);
		} else if (r == CMD_OPT_WATCH && cmd_parse_watch(ctx, arg, &watch)) {
			return CMD_EXIT_USAGE;
		}
	}
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(ctx, "takes no arguments");
	return cmd_watch(ctx, watch, queue_round, &f);
}

const struct plot_cmd cmd_queue_entry = {
	.name = "queue",
	.args = "",
	.summary = "List queued and running tasks in queue order (finished: plot list).",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = queue_opts,
	.exec = queue_exec,
};
