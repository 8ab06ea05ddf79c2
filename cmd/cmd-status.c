/*
 * cmd-status.c — `plot status ID`: one task's state, priority, cost, queue
 * position, timings and error. Also owns the JSON shape of a task, which
 * `plot queue --json` shares (see plot(1), JSON OUTPUT).
 */
#include <stdio.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/pool.h"

void cmd_json_task(struct cmd_json *j, const struct proto_task_info *t)
{
	cmd_json_obj(j);
	cmd_json_key(j, "id");
	cmd_json_u64(j, t->id);
	cmd_json_key(j, "model");
	cmd_json_str(j, t->model);
	cmd_json_key(j, "priority");
	cmd_json_str(j, pool_prio_name(t->priority));
	cmd_json_key(j, "state");
	cmd_json_str(j, pool_state_name(t->state));
	cmd_json_key(j, "position");
	cmd_json_u64(j, t->position);
	cmd_json_key(j, "cost");
	cmd_json_u64(j, t->cost);
	cmd_json_key(j, "age");
	cmd_json_dbl(j, t->age_secs);
	cmd_json_key(j, "deadline");
	if (t->has & PROTO_HAS_DEADLINE)
		cmd_json_dbl(j, t->deadline_in_secs);
	else
		cmd_json_null(j);
	cmd_json_key(j, "wait");
	cmd_json_dbl(j, t->wait_secs);
	cmd_json_key(j, "run");
	cmd_json_dbl(j, t->run_secs);
	cmd_json_key(j, "output_bytes");
	cmd_json_u64(j, t->output_bytes);
	cmd_json_key(j, "chunks");
	cmd_json_u64(j, t->chunks);
	cmd_json_key(j, "uid");
	cmd_json_u64(j, t->owner_uid);
	cmd_json_key(j, "error");
	cmd_json_str(j, t->error);
	cmd_json_key(j, "label");
	cmd_json_str(j, t->label);
	cmd_json_key(j, "finish");
	cmd_json_str(j, t->finish);
	cmd_json_key(j, "tokens");
	cmd_json_u64(j, t->tokens);
	cmd_json_key(j, "prompt_tokens");
	cmd_json_u64(j, t->prompt_tokens);
	cmd_json_obj_end(j);
}

/* Ask plotd for the tasks filter f selects and print them: a JSON array
 * with --json, else through print (queue's and list's tables). */
int cmd_query_tasks(struct plot_ctx *ctx, const struct proto_filter *f,
		    void (*print)(struct plot_ctx *, const struct proto_queue *))
{
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_QUEUE, 0);
	req.u.filter = *f;
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	if (rc == 0 && ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_arr(&j);
		for (uint32_t i = 0; i < reply.u.queue.n_tasks; i++)
			cmd_json_task(&j, &reply.u.queue.tasks[i]);
		cmd_json_arr_end(&j);
		cmd_json_end(&j);
	} else if (rc == 0) {
		print(ctx, &reply.u.queue);
	}
	proto_msg_clear(&reply);
	return rc;
}

const char *cmd_fmt_deadline(char *buf, size_t len, const struct proto_task_info *t)
{
	char d[32];
	if (!(t->has & PROTO_HAS_DEADLINE))
		return "-";
	if (t->deadline_in_secs < 0)
		snprintf(buf, len, "passed %s ago", cmd_fmt_dur(d, sizeof(d), -t->deadline_in_secs));
	else
		snprintf(buf, len, "in %s", cmd_fmt_dur(d, sizeof(d), t->deadline_in_secs));
	return buf;
}

static void print_human(struct plot_ctx *ctx, const struct proto_task_info *t)
{
	char a[32], b[64];
	const char *state = pool_state_name(t->state);
	int color = cmd_color_on(ctx, stdout);
	printf("task      %llu\n", (unsigned long long)t->id);
	printf("model     %s\n", t->model ? t->model : "-");
	printf("owner     %s\n", cmd_fmt_owner(b, sizeof(b), t->owner_uid));
	if (t->label && *t->label)
		printf("label     %s\n", cmd_fmt_label(b, sizeof(b), t->label, 60));
	printf("state     %s%s%s\n", color ? cmd_state_color(state) : "", state, color ? "\033[0m" : "");
	printf("priority  %s\n", pool_prio_name(t->priority));
	printf("cost      %llu\n", (unsigned long long)t->cost);
	if (t->position)
		printf("position  %llu\n", (unsigned long long)t->position);
	printf("age       %s\n", cmd_fmt_dur(a, sizeof(a), t->age_secs));
	printf("waited    %s\n", cmd_fmt_dur(a, sizeof(a), t->wait_secs));
	printf("ran       %s\n", cmd_fmt_dur(a, sizeof(a), t->run_secs));
	printf("deadline  %s\n", cmd_fmt_deadline(b, sizeof(b), t));
	printf("output    %llu bytes, %llu chunks, %llu tokens\n",
	       (unsigned long long)t->output_bytes, (unsigned long long)t->chunks,
	       (unsigned long long)t->tokens);
	if (t->finish && *t->finish)
		printf("stopped   %s\n", t->finish);
	if (t->error && *t->error)
		printf("error     %s\n", t->error);
}

/* Parse "CMD [options] ID" for commands whose only option is a flag. */
int cmd_parse_id_args(struct plot_ctx *ctx, int argc, char **argv, int flag_id,
		      int *flag, uint64_t *id)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0)
		if (r == flag_id && flag)
			*flag = 1;
	if (r < 0)
		return r == -2 ? -1 : CMD_EXIT_USAGE;
	int i = cmd_parser_optind(&p);
	if (argc - i != 1)
		return cmd_usage_error(ctx, "needs exactly one task id");
	if (cmd_parse_id(ctx, argv[i], id))
		return CMD_EXIT_USAGE;
	return 0;
}

static int status_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct proto_msg req, reply;
	uint64_t id;
	int rc = cmd_parse_id_args(ctx, argc, argv, 0, NULL, &id);
	if (rc)
		return rc < 0 ? CMD_EXIT_OK : rc;
	proto_msg_init(&req, PROTO_T_STATUS, 0);
	req.u.task_ref.task = id;
	memset(&reply, 0, sizeof(reply));
	rc = cmd_call(ctx, &req, &reply);
	if (rc == 0 && ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_task(&j, &reply.u.task);
		cmd_json_end(&j);
	} else if (rc == 0) {
		print_human(ctx, &reply.u.task);
	}
	proto_msg_clear(&reply);
	return rc;
}

const struct plot_cmd cmd_status_entry = {
	.name = "status",
	.args = "ID",
	.summary = "Show a task's state, priority, cost, queue position, timings and error.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.exec = status_exec,
};
