/*
 * cmd-task.c — what `plot run` and `plot submit` share: their options, the
 * prompt (operands or stdin), and turning them into a submit request.
 *
 * DESIGN
 *   Options are validated here, before anything is sent, each against the
 *   bounds documented in plot(1); a bad value is a usage error (exit 2)
 *   naming the option. The sampling options are checked against the
 *   engine's own table of ranges (smp_param_table), so the CLI refuses
 *   exactly what the daemon would. The daemon checks again (it trusts no
 *   client). Every option maps to a key of the submit schema (proto-codec.c);
 *   the CLI has no way to send a key the protocol does not define.
 *
 * INVARIANTS
 *   - The prompt is at most CMD_MAX_PROMPT bytes, from operands or stdin.
 *   - cmd_task_free releases everything cmd_task_* allocated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd-impl.h"
#include "plot/pool.h"
#include "plot/sampler.h"

void cmd_task_init(struct cmd_task *t)
{
	memset(t, 0, sizeof(*t));
	t->priority = -1;
}

void cmd_task_free(struct cmd_task *t)
{
	free(t->prompt);
	memset(t, 0, sizeof(*t));
}

static int parse_stop(struct plot_ctx *ctx, struct cmd_task *t, const char *arg)
{
	size_t n = strlen(arg);
	if (t->nstop == CMD_MAX_STOPS)
		return cmd_usage_error(ctx, "--stop: at most %d stop strings", CMD_MAX_STOPS), -1;
	if (n == 0 || n > CMD_MAX_STOP_LEN)
		return cmd_usage_error(ctx, "--stop: a stop string has 1..%d bytes", CMD_MAX_STOP_LEN), -1;
	t->stop[t->nstop++] = arg;
	return 0;
}

static int parse_model(struct plot_ctx *ctx, struct cmd_task *t, const char *arg)
{
	size_t n = strlen(arg);
	if (n == 0 || (n > CMD_MAX_NAME && !cmd_adhoc_wanted(arg)))
		return cmd_usage_error(ctx, "--model: a model name has 1..%d bytes", CMD_MAX_NAME), -1;
	t->model = arg;
	return 0;
}

static int parse_priority(struct plot_ctx *ctx, struct cmd_task *t, const char *arg)
{
	int p = pool_prio_parse(arg);
	if (p < 0)
		return cmd_usage_error(ctx, "--priority: '%s' is not low, normal, high or critical", arg), -1;
	t->priority = p;
	return 0;
}

/* A sampling value, in the range the engine's table gives it. */
static int parse_smp(struct plot_ctx *ctx, const char *opt, const char *name, const char *arg,
		     double *out)
{
	const struct smp_param_info *e = smp_param_find(name);
	if (cmd_parse_double(ctx, opt, arg, e->min, e->max, out))
		return -1;
	if (e->min_open && *out <= e->min)
		return cmd_usage_error(ctx, "%s: %s is out of range (must be %s)", opt, arg,
				       e->range), -1;
	return 0;
}

static int parse_penalty(struct plot_ctx *ctx, struct cmd_task *t, int id, const char *arg)
{
	uint64_t u;
	switch (id) {
	case CMD_OPT_REPETITION_PENALTY:
		t->has_pen |= PROTO_HAS_REPETITION_PENALTY;
		return parse_smp(ctx, "--repetition-penalty", "repetition_penalty", arg,
				 &t->repetition_penalty);
	case CMD_OPT_FREQUENCY_PENALTY:
		t->has_pen |= PROTO_HAS_FREQUENCY_PENALTY;
		return parse_smp(ctx, "--frequency-penalty", "frequency_penalty", arg,
				 &t->frequency_penalty);
	case CMD_OPT_PRESENCE_PENALTY:
		t->has_pen |= PROTO_HAS_PRESENCE_PENALTY;
		return parse_smp(ctx, "--presence-penalty", "presence_penalty", arg,
				 &t->presence_penalty);
	case CMD_OPT_PENALTY_LAST_N:
		if (cmd_parse_u64(ctx, "--penalty-last-n", arg, 0, SMP_MAX_LAST_N, &u))
			return -1;
		t->has_pen |= PROTO_HAS_PENALTY_LAST_N;
		t->penalty_last_n = (uint32_t)u;
		return 0;
	}
	return 1;
}

int cmd_task_opt(struct plot_ctx *ctx, struct cmd_task *t, int id, const char *arg)
{
	uint64_t u;
	switch (id) {
	case 'm':
		return parse_model(ctx, t, arg);
	case 'p':
		return parse_priority(ctx, t, arg);
	case 'n':
		if (cmd_parse_u64(ctx, "--max-tokens", arg, 1, CMD_MAX_TOKENS, &u))
			return -1;
		t->max_tokens = (uint32_t)u;
		return 0;
	case CMD_OPT_TEMPERATURE:
		t->has_temperature = 1;
		return parse_smp(ctx, "--temperature", "temperature", arg, &t->temperature);
	case CMD_OPT_TOP_K:
		if (cmd_parse_u64(ctx, "--top-k", arg, 0, CMD_MAX_TOP_K, &u))
			return -1;
		t->has_top_k = 1;
		t->top_k = (uint32_t)u;
		return 0;
	case CMD_OPT_TOP_P:
		t->has_top_p = 1;
		return parse_smp(ctx, "--top-p", "top_p", arg, &t->top_p);
	case CMD_OPT_MIN_P:
		t->has_min_p = 1;
		return parse_smp(ctx, "--min-p", "min_p", arg, &t->min_p);
	case CMD_OPT_SEED:
		t->has_seed = 1;
		return cmd_parse_u64(ctx, "--seed", arg, 0, UINT64_MAX, &t->seed);
	case CMD_OPT_STOP:
		return parse_stop(ctx, t, arg);
	case CMD_OPT_DEADLINE:
		return cmd_parse_double(ctx, "--deadline", arg, 0.001, CMD_MAX_DEADLINE, &t->deadline_secs);
	case CMD_OPT_COST:
		return cmd_parse_u64(ctx, "--cost", arg, 1, CMD_MAX_COST, &t->cost);
	case CMD_OPT_RAW:
		t->raw = 1;
		return 0;
	case CMD_OPT_KEY:
		if (!arg[0] || strlen(arg) > CMD_MAX_KEY)
			return cmd_usage_error(ctx, "--key: give 1 to %d bytes", CMD_MAX_KEY), -1;
		t->key = arg;
		return 0;
	}
	return parse_penalty(ctx, t, id, arg);
}

/* Read all of stdin, bounded. */
static int read_stdin(struct plot_ctx *ctx, struct cmd_task *t)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (len + 1 == cap) {
			if (cap > CMD_MAX_PROMPT) {
				free(buf);
				return cmd_usage_error(ctx, "the prompt on stdin is longer than %d bytes",
						       CMD_MAX_PROMPT), -1;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(STDIN_FILENO, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cmd_err(ctx, "reading the prompt from stdin: %s", strerror(errno));
			free(buf);
			return -1;
		}
		if (n == 0) {
			buf[len] = '\0';
			t->prompt = buf;
			t->prompt_len = len;
			return 0;
		}
		len += (size_t)n;
	}
	free(buf);
	cmd_err(ctx, "out of memory reading the prompt");
	return -1;
}

/* Operands joined by single spaces, like echo. */
static int join_operands(struct plot_ctx *ctx, struct cmd_task *t, int n, char **v)
{
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		len += strlen(v[i]) + 1;
		if (len > CMD_MAX_PROMPT)
			return cmd_usage_error(ctx, "the prompt is longer than %d bytes", CMD_MAX_PROMPT), -1;
	}
	t->prompt = malloc(len);
	if (!t->prompt)
		return cmd_err(ctx, "out of memory"), -1;
	char *p = t->prompt;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		memcpy(p, v[i], l);
		p += l;
		*p++ = i + 1 < n ? ' ' : '\0';
	}
	t->prompt_len = len - 1;
	return 0;
}

int cmd_task_prompt(struct plot_ctx *ctx, struct cmd_task *t, int n, char **v)
{
	int rc;
	if (n == 0 || (n == 1 && !strcmp(v[0], "-"))) {
		/* a user who typed no prompt must not think plot hangs */
		if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO))
			cmd_info(ctx, "reading the prompt from stdin; end it with Ctrl-D");
		rc = read_stdin(ctx, t);
	}
	else
		rc = join_operands(ctx, t, n, v);
	if (rc)
		return rc;
	if (t->prompt_len == 0)
		return cmd_usage_error(ctx, "the prompt is empty"), -1;
	if (memchr(t->prompt, '\0', t->prompt_len))
		return cmd_usage_error(ctx, "the prompt contains a NUL byte"), -1;
	return 0;
}

void cmd_task_msg(const struct cmd_task *t, struct proto_msg *m)
{
	struct proto_submit *s = &m->u.submit;
	proto_msg_init(m, PROTO_T_SUBMIT, 0);
	s->model = t->model;
	s->prompt = t->prompt;
	s->priority = t->priority >= 0 ? t->priority : POOL_PRIO_NORMAL;
	if (t->max_tokens) {
		s->has |= PROTO_HAS_MAX_TOKENS;
		s->max_tokens = t->max_tokens;
	}
	if (t->has_temperature) {
		s->has |= PROTO_HAS_TEMPERATURE;
		s->temperature = t->temperature;
	}
	if (t->has_top_k) {
		s->has |= PROTO_HAS_TOP_K;
		s->top_k = t->top_k;
	}
	if (t->has_top_p) {
		s->has |= PROTO_HAS_TOP_P;
		s->top_p = t->top_p;
	}
	if (t->has_min_p) {
		s->has |= PROTO_HAS_MIN_P;
		s->min_p = t->min_p;
	}
	if (t->has_seed) {
		s->has |= PROTO_HAS_SEED;
		s->seed = t->seed;
	}
	s->has |= t->has_pen;
	s->repetition_penalty = t->repetition_penalty;
	s->frequency_penalty = t->frequency_penalty;
	s->presence_penalty = t->presence_penalty;
	s->penalty_last_n = t->penalty_last_n;
	if (t->deadline_secs > 0) {
		s->has |= PROTO_HAS_DEADLINE;
		s->deadline_secs = t->deadline_secs;
	}
	if (t->cost) {
		s->has |= PROTO_HAS_COST;
		s->cost = t->cost;
	}
	s->stop = t->nstop ? t->stop : NULL;
	s->n_stop = (uint32_t)t->nstop;
	s->detach = t->detach;
	s->raw = t->raw;
	s->key = t->key;
}

int cmd_task_submit(struct plot_ctx *ctx, const struct cmd_task *t, uint64_t *id)
{
	struct proto_msg req, reply;
	cmd_task_msg(t, &req);
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_waitline_call(ctx, &req, &reply, t->model);
	if (rc == 0)
		*id = reply.u.submitted.task;
	proto_msg_clear(&reply);
	return rc;
}

/* Parse run/submit's command line into t. 0, or an exit status. */
int cmd_task_parse(struct plot_ctx *ctx, struct cmd_task *t, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == CMD_OPT_DETACH) {
			t->detach = 1;
			continue;
		}
		if (cmd_task_opt(ctx, t, r, arg))
			return CMD_EXIT_USAGE;
	}
	if (r < 0)
		return r == -2 ? -1 : CMD_EXIT_USAGE;
	if (t->detach && cmd_adhoc_wanted(t->model))
		return cmd_usage_error(ctx, "--model %s: a model file is served only while plot "
				       "run or chat runs; add it to plot.yaml's models to submit to it",
				       t->model);
	int i = cmd_parser_optind(&p);
	if (cmd_task_prompt(ctx, t, argc - i, argv + i))
		return CMD_EXIT_USAGE;
	return 0;
}
