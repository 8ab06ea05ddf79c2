/*
 * cmd-result.c — `plot result [--wait] ID`: the output of a task.
 *
 * Without --wait the output so far is printed; for a task that has not
 * ended that is a partial result, said on stderr, and the status is 1.
 * With --wait the daemon answers once the task has ended. Output that
 * lacks a final newline gets one, as run's does. A finished
 * task's status is its state's (0 done, 1 failed, 124 expired/timeout,
 * 130 cancelled), so scripts can `plot result --wait $(plot submit ...)`.
 */
#include <stdio.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/pool.h"

static const struct plot_opt result_opts[] = {
	{"wait", 0, 0, NULL, "wait until the task has ended", CMD_OPT_WAIT},
	{NULL, 0, 0, NULL, NULL, 0},
};

static void print_json(const struct proto_result *r)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "id");
	cmd_json_u64(&j, r->task);
	cmd_json_key(&j, "state");
	cmd_json_str(&j, pool_state_name(r->state));
	cmd_json_key(&j, "output");
	cmd_json_strn(&j, r->data ? r->data : "", r->data ? r->len : 0);
	cmd_json_key(&j, "error");
	cmd_json_str(&j, r->error);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

/* The output, with a newline at the end if it lacks one (as run's). */
static int write_output(struct plot_ctx *ctx, const struct proto_result *r)
{
	int rc = cmd_write_out(ctx, r->data, r->len);
	if (rc == 0 && r->len && ((const char *)r->data)[r->len - 1] != '\n')
		rc = cmd_write_out(ctx, "\n", 1);
	return rc;
}

static int report(struct plot_ctx *ctx, const struct proto_result *r)
{
	if (!POOL_STATE_TERMINAL(r->state)) {
		cmd_err(ctx, "task %llu is still %s; this output is partial (use --wait or plot tail)",
			(unsigned long long)r->task, pool_state_name(r->state));
		return CMD_EXIT_FAIL;
	}
	if (r->state != POOL_DONE)
		cmd_err(ctx, "task %llu %s%s%s", (unsigned long long)r->task,
			pool_state_name(r->state), r->error ? ": " : "", r->error ? r->error : "");
	return client_exit_for_state(r->state);
}

static int result_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct proto_msg req, reply;
	uint64_t id;
	int wait = 0;
	int rc = cmd_parse_id_args(ctx, argc, argv, CMD_OPT_WAIT, &wait, &id);
	if (rc)
		return rc < 0 ? CMD_EXIT_OK : rc;
	proto_msg_init(&req, PROTO_T_RESULT, 0);
	req.u.task_ref.task = id;
	req.u.task_ref.wait = wait;
	memset(&reply, 0, sizeof(reply));
	rc = cmd_call(ctx, &req, &reply);
	if (rc == 0) {
		const struct proto_result *r = &reply.u.result;
		if (ctx->json)
			print_json(r);
		else
			rc = write_output(ctx, r);
		if (rc == 0)
			rc = report(ctx, r);
	}
	proto_msg_clear(&reply);
	return rc;
}

const struct plot_cmd cmd_result_entry = {
	.name = "result",
	.args = "ID",
	.summary = "Print the output of a task.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = result_opts,
	.exec = result_exec,
};
