/*
 * cmd-cancel.c — `plot cancel ID... | --all [-m M]`.
 *
 * Prints the ids the daemon actually cancelled, one per line (JSON:
 * {"cancelled":[...]}). Naming a task that had already ended, or that does
 * not exist, is an error (status 1) after the others are cancelled, so a
 * script learns that its cancel did nothing.
 *
 * A queued task ends at once; a running one ends at its next step. With
 * --wait, cancel returns only once every task it cancelled has ended (its
 * units released, its output final), through the same status waits as
 * `plot wait`, and prints the ids then.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd-impl.h"

#define MAX_IDS 4096 /* the protocol's array bound */

static const struct plot_opt cancel_opts[] = {
	{"all", 0, 0, NULL, "cancel every queued and running task (yours, or all as the owner)", CMD_OPT_ALL},
	{"model", 'm', 1, "M", "with --all: only the tasks of model M", 'm'},
	{"wait", 0, 0, NULL, "return only once the cancelled tasks have ended", CMD_OPT_WAIT},
	{NULL, 0, 0, NULL, NULL, 0},
};

static void print_cancelled(struct plot_ctx *ctx, const struct proto_cancelled *c)
{
	if (ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_obj(&j);
		cmd_json_key(&j, "cancelled");
		cmd_json_arr(&j);
		for (uint32_t i = 0; i < c->n_tasks; i++)
			cmd_json_u64(&j, c->tasks[i]);
		cmd_json_arr_end(&j);
		cmd_json_obj_end(&j);
		cmd_json_end(&j);
		return;
	}
	for (uint32_t i = 0; i < c->n_tasks; i++)
		printf("%llu\n", (unsigned long long)c->tasks[i]);
}

/* Every id asked for must be in the reply; complain about the rest. */
static int check_all_cancelled(struct plot_ctx *ctx, const uint64_t *ids, uint32_t n,
			       const struct proto_cancelled *c)
{
	int rc = CMD_EXIT_OK;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = 0;
		while (k < c->n_tasks && c->tasks[k] != ids[i])
			k++;
		if (k == c->n_tasks) {
			cmd_err(ctx, "task %llu was not cancelled (it has ended or does not exist)",
				(unsigned long long)ids[i]);
			rc = CMD_EXIT_FAIL;
		}
	}
	return rc;
}

static int send_cancel(struct plot_ctx *ctx, struct proto_cancel *c, int wait)
{
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_CANCEL, 0);
	req.u.cancel = *c;
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	if (rc == 0 && wait && reply.u.cancelled.n_tasks)
		rc = cmd_wait_tasks(ctx, reply.u.cancelled.tasks, reply.u.cancelled.n_tasks, 0, 1);
	if (rc == 0) {
		print_cancelled(ctx, &reply.u.cancelled);
		rc = check_all_cancelled(ctx, c->tasks, c->n_tasks, &reply.u.cancelled);
	}
	proto_msg_clear(&reply);
	return rc;
}

static int parse_ids(struct plot_ctx *ctx, int n, char **v, uint64_t *ids)
{
	for (int i = 0; i < n; i++)
		if (cmd_parse_id(ctx, v[i], &ids[i]))
			return -1;
	return 0;
}

static int cancel_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct proto_cancel c = {0};
	const char *arg;
	int r, wait = 0;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == CMD_OPT_WAIT)
			wait = 1;
		else if (r == CMD_OPT_ALL)
			c.all = 1;
		else if (r == 'm')
			c.model = arg;
	}
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	int i = cmd_parser_optind(&p), n = argc - i;
	if (c.all && n > 0)
		return cmd_usage_error(ctx, "give task ids or --all, not both");
	if (!c.all && n == 0)
		return cmd_usage_error(ctx, "needs task ids or --all");
	if (c.model && !c.all)
		return cmd_usage_error(ctx, "--model goes with --all");
	if (n < 0 || n > MAX_IDS)
		return cmd_usage_error(ctx, "at most %d task ids at once", MAX_IDS);
	uint64_t *ids = n > 0 ? calloc((size_t)n, sizeof(*ids)) : NULL;
	if (n && !ids)
		return cmd_err(ctx, "out of memory"), CMD_EXIT_FAIL;
	int rc = CMD_EXIT_USAGE;
	if (parse_ids(ctx, n, argv + i, ids) == 0) {
		c.tasks = ids;
		c.n_tasks = (uint32_t)n;
		rc = send_cancel(ctx, &c, wait);
	}
	free(ids);
	return rc;
}

const struct plot_cmd cmd_cancel_entry = {
	.name = "cancel",
	.args = "ID... | --all",
	.summary = "Cancel tasks: queued ones end at once, running ones at their next step.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = cancel_opts,
	.exec = cancel_exec,
};
