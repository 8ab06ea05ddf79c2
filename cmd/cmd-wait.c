/*
 * cmd-wait.c — `plot wait ID... | --all [-m M] [--timeout SECS]`, and the
 * waiting that `plot cancel --wait` shares: return once tasks have ended.
 *
 * DESIGN
 *   One status request with wait per task, all sent at once on the one
 *   connection; the daemon answers each when its task has ended (no output
 *   travels, unlike result --wait), so waiting for many tasks costs one
 *   round trip, not a poll. --all asks the queue first (the caller's tasks
 *   that are queued or running; everyone's for the daemon's owner) and
 *   waits for those: tasks submitted afterwards are not waited for, as
 *   `pueue wait` does.
 *
 *   Each task is printed as it ends ("ID STATE", or a task object per line
 *   with --json). The exit status is that of the first task, in argument
 *   order, that did not end done (its state's, as result's), or 0; after
 *   --timeout it is 124 with the tasks still running named on stderr.
 *   Like `ts -w` and `pueue wait` a wait never changes the tasks.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd-impl.h"
#include "plot/pool.h"

#define MAX_IDS 4096 /* the protocol's array bound, as cancel */

static const struct plot_opt wait_opts[] = {
	{"all", 0, 0, NULL, "wait for every queued and running task (yours, or all as the owner)", CMD_OPT_ALL},
	{"model", 'm', 1, "M", "with --all: only the tasks of model M", 'm'},
	{"timeout", 0, 1, "SECS", "give up after SECS seconds (0.001..31536000), exit 124", CMD_OPT_TIMEOUT},
	{NULL, 0, 0, NULL, NULL, 0},
};

struct waiter {
	struct plot_ctx *ctx;
	const uint64_t *ids;
	uint64_t *req;        /* (n) request id of each task's status */
	int *state;           /* (n) final state, -1 = not yet */
	size_t n, left;
	int rc;               /* first error's exit status */
	int quiet;            /* cancel --wait: print nothing per task */
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_ended(struct plot_ctx *ctx, const struct proto_task_info *t)
{
	if (ctx->json) {
		struct cmd_json j;
		cmd_json_init(&j, stdout);
		cmd_json_task(&j, t);
		cmd_json_end(&j);
	} else {
		printf("%llu\t%s\n", (unsigned long long)t->id, pool_state_name(t->state));
		fflush(stdout);
	}
}

static int send_all(struct waiter *w)
{
	char err[512];
	for (size_t i = 0; i < w->n; i++) {
		struct proto_msg m;
		proto_msg_init(&m, PROTO_T_STATUS, 0);
		m.u.task_ref.task = w->ids[i];
		m.u.task_ref.wait = 1;
		if (client_send(w->ctx->cl, &m, err, sizeof(err)) < 0) {
			cmd_err(w->ctx, "%s", err);
			return CMD_EXIT_UNREACHABLE;
		}
		w->req[i] = m.id;
	}
	return 0;
}

/* One reply: which task it ends, and how. */
static void on_reply(struct waiter *w, const struct proto_msg *m)
{
	size_t i = 0;
	while (i < w->n && w->req[i] != m->id)
		i++;
	if (i == w->n || w->state[i] >= 0)
		return;
	w->left--;
	if (m->type == PROTO_T_ERR) {
		cmd_err(w->ctx, "%s", m->u.error.message ? m->u.error.message : "error");
		w->state[i] = POOL_FAILED;
		if (!w->rc)
			w->rc = client_exit_for_code(m->u.error.code);
		return;
	}
	w->state[i] = m->u.task.state;
	if (!w->quiet)
		print_ended(w->ctx, &m->u.task);
}

static int recv_all(struct waiter *w, long long deadline)
{
	char err[512];
	while (w->left) {
		long long left = deadline < 0 ? -1 : deadline - mono_ms();
		if (deadline >= 0 && left <= 0)
			return CMD_EXIT_TIMEOUT;
		struct proto_msg m;
		memset(&m, 0, sizeof(m));
		int rc = client_recv(w->ctx->cl, &m, (int)(left < 0 ? -1 : left), err, sizeof(err));
		if (rc == -PROTO_E_TIMEOUT)
			return CMD_EXIT_TIMEOUT;
		if (rc == -PROTO_E_INTR)
			continue;
		if (rc < 0) {
			cmd_err(w->ctx, "%s", err);
			proto_msg_clear(&m);
			return rc == -PROTO_E_EOF ? CMD_EXIT_UNREACHABLE : client_exit_for_code(rc);
		}
		on_reply(w, &m);
		proto_msg_clear(&m);
	}
	return 0;
}

/* The status of the whole wait: the first task not done, in order. */
static int overall(const struct waiter *w)
{
	if (w->rc)
		return w->rc;
	for (size_t i = 0; i < w->n; i++)
		if (w->state[i] != POOL_DONE)
			return client_exit_for_state(w->state[i]);
	return CMD_EXIT_OK;
}

static void name_unfinished(const struct waiter *w, double secs)
{
	char d[32];
	for (size_t i = 0; i < w->n; i++)
		if (w->state[i] < 0)
			cmd_err(w->ctx, "task %llu has not ended after %s", (unsigned long long)w->ids[i],
				cmd_fmt_dur(d, sizeof(d), secs));
}

int cmd_wait_tasks(struct plot_ctx *ctx, const uint64_t *ids, size_t n, double timeout_secs,
		   int quiet)
{
	struct waiter w = {.ctx = ctx, .ids = ids, .n = n, .left = n, .quiet = quiet};
	int rc = cmd_connect(ctx);
	if (rc)
		return rc;
	w.req = calloc(n ? n : 1, sizeof(*w.req));
	w.state = malloc((n ? n : 1) * sizeof(*w.state));
	if (!w.req || !w.state) {
		free(w.req);
		free(w.state);
		return cmd_err(ctx, "out of memory"), CMD_EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		w.state[i] = -1;
	long long deadline = timeout_secs > 0 ? mono_ms() + (long long)(timeout_secs * 1000) : -1;
	rc = send_all(&w);
	if (rc == 0)
		rc = recv_all(&w, deadline);
	if (rc == CMD_EXIT_TIMEOUT)
		name_unfinished(&w, timeout_secs);
	else if (rc == 0)
		rc = quiet ? w.rc : overall(&w);
	free(w.req);
	free(w.state);
	return rc;
}

/* --all: the ids of the queued and running tasks the queue shows us. */
static int ids_of_queue(struct plot_ctx *ctx, const char *model, uint64_t **ids, size_t *n)
{
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_QUEUE, 0);
	req.u.filter.model = model;
	req.u.filter.state = -1;
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	*n = 0;
	*ids = NULL;
	if (rc == 0) {
		*ids = calloc(reply.u.queue.n_tasks ? reply.u.queue.n_tasks : 1, sizeof(**ids));
		if (!*ids)
			rc = CMD_EXIT_FAIL;
		for (uint32_t i = 0; *ids && i < reply.u.queue.n_tasks; i++)
			(*ids)[(*n)++] = reply.u.queue.tasks[i].id;
	}
	proto_msg_clear(&reply);
	return rc;
}

struct wargs {
	int all;
	const char *model;
	double timeout;
};

static int parse_wait(struct plot_ctx *ctx, int argc, char **argv, struct wargs *a, int *first)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == CMD_OPT_ALL)
			a->all = 1;
		else if (r == 'm')
			a->model = arg;
		else if (r == CMD_OPT_TIMEOUT &&
			 cmd_parse_double(ctx, "--timeout", arg, 0.001, CMD_MAX_DEADLINE, &a->timeout))
			return CMD_EXIT_USAGE;
	}
	if (r < 0)
		return r == -2 ? -1 : CMD_EXIT_USAGE;
	*first = cmd_parser_optind(&p);
	int n = argc - *first;
	if (a->all && n > 0)
		return cmd_usage_error(ctx, "give task ids or --all, not both");
	if (!a->all && n == 0)
		return cmd_usage_error(ctx, "needs task ids or --all");
	if (a->model && !a->all)
		return cmd_usage_error(ctx, "--model goes with --all");
	if (n > MAX_IDS)
		return cmd_usage_error(ctx, "at most %d task ids at once", MAX_IDS);
	return 0;
}

static int wait_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct wargs a = {0};
	int first, rc = parse_wait(ctx, argc, argv, &a, &first);
	if (rc)
		return rc < 0 ? CMD_EXIT_OK : rc;
	size_t n = (size_t)(argc - first);
	uint64_t *ids = NULL;
	if (a.all) {
		rc = ids_of_queue(ctx, a.model, &ids, &n);
	} else if (!(ids = calloc(n, sizeof(*ids)))) {
		cmd_err(ctx, "out of memory");
		rc = CMD_EXIT_FAIL;
	} else {
		for (size_t i = 0; i < n && rc == 0; i++)
			if (cmd_parse_id(ctx, argv[first + i], &ids[i]))
				rc = CMD_EXIT_USAGE;
	}
	if (rc == 0 && n > 0)
		rc = cmd_wait_tasks(ctx, ids, n, a.timeout, 0);
	free(ids);
	return rc;
}

const struct plot_cmd cmd_wait_entry = {
	.name = "wait",
	.args = "ID... | --all",
	.summary = "Wait until tasks have ended; exit with the first failure's status.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = wait_opts,
	.exec = wait_exec,
};
