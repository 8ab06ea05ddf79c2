/*
 * cmd-chat.c — `plot chat`: a conversation with a model, through its chat
 * template, in a readline REPL or as a script on stdin.
 *
 * DESIGN
 *   Every user turn submits the whole conversation as chat messages
 *   (system, then alternating user/assistant), so the daemon renders it
 *   with the model's template; the answer is streamed (cmd-chat-stream.c)
 *   and appended as the assistant turn. The CLI keeps no token state: the
 *   context is the message list.
 *
 *   On a tty, input comes from readline's callback interface, polled
 *   together with the signal self-pipe, so a Ctrl-C at the prompt is seen
 *   without readline's own handlers (rl_catch_signals = 0). History is
 *   $XDG_STATE_HOME/plot/history (default ~/.local/state/plot/history),
 *   directory 0700, file 0600, at most CHAT_HISTORY_LINES lines.
 *   Without a tty each input line is one turn (or a slash command), each
 *   answer goes to stdout followed by a newline, and the first error ends
 *   the chat with its exit status, as a script expects.
 *
 *   Ctrl-C during an answer cancels the task and keeps what was printed as
 *   the assistant turn (the user saw it; the next turn may refer to it);
 *   when nothing was printed the user turn is dropped instead. Ctrl-C at
 *   the prompt, or twice during an answer, exits 130; Ctrl-D exits 0.
 *
 * INVARIANTS
 *   - c->msgs alternates user/assistant, starting with user, between turns.
 *   - Slash-command values are checked here (sampling ones by lib/llm's
 *     smp_param_set) before any submit; the daemon checks again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cmd-chat.h"
#include "plot/fsafe.h"
#include "plot/pool.h"


/* ---- the conversation ---------------------------------------------------- */

static void chat_init(struct chat *c, struct plot_ctx *ctx)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	smp_params_default(&c->params);
	c->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

void chat_clear(struct chat *c)
{
	for (size_t i = 0; i < c->n; i++)
		free((char *)c->msgs[i].content);
	c->n = 0;
}

static void chat_free(struct chat *c)
{
	chat_clear(c);
	free(c->msgs);
	free(c->model);
	free(c->system);
	free(c->shown);
	for (int i = 0; i < c->nstop; i++)
		free(c->stop[i]);
	memset(c, 0, sizeof(*c));
}

/* Append a turn; content is copied (len bytes). 0 or -1 (out of memory). */
int chat_push(struct chat *c, const char *role, const char *content, size_t len)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct proto_chat_msg *m = realloc(c->msgs, cap * sizeof(*m));
		if (!m)
			return -1;
		c->msgs = m;
		c->cap = cap;
	}
	char *s = strndup(content, len);
	if (!s)
		return -1;
	c->msgs[c->n++] = (struct proto_chat_msg){.role = role, .content = s};
	return 0;
}

static void chat_pop(struct chat *c)
{
	free((char *)c->msgs[--c->n].content);
}

/* Oldest user/assistant pair out, so the list stays bounded. */
static void chat_trim(struct chat *c)
{
	while (c->n + 2 > CHAT_MAX_TURNS) {
		free((char *)c->msgs[0].content);
		free((char *)c->msgs[1].content);
		memmove(c->msgs, c->msgs + 2, (c->n - 2) * sizeof(*c->msgs));
		c->n -= 2;
	}
}

/* ---- errors ------------------------------------------------------------- */

/* A slash-command error: printed; on a tty the chat goes on (0), in a
 * script it ends with a usage status. */
int chat_fail(struct chat *c, int status, const char *fmt, ...)
{
	va_list ap;
	c->fails++;
	fprintf(stderr, "plot chat: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return c->tty ? 0 : status;
}

/* ---- slash commands ----------------------------------------------------- */

/* Keep the model's name for the prompt. */
static void set_shown(struct chat *c, const char *name)
{
	char *s = strdup(name);
	if (s) {
		free(c->shown);
		c->shown = s;
	}
}

/* Is name (NULL: the default) one of the daemon's models? 0 yes, with
 * c->shown its name, else an exit status (the message printed). */
static int check_model(struct chat *c, const char *name)
{
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_MODELS, 0);
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(c->ctx, &req, &reply);
	if (rc)
		return rc;
	const struct proto_models *ms = &reply.u.models;
	for (uint32_t i = 0; i < ms->n_models; i++)
		if (name ? !strcmp(ms->models[i].name, name) : ms->models[i].is_default) {
			set_shown(c, ms->models[i].name);
			proto_msg_clear(&reply);
			return 0;
		}
	if (!name) {
		proto_msg_clear(&reply);
		return 0; /* no default: the first submit says so */
	}
	/* the words and status of the daemon's NOT_FOUND, as every command */
	char list[512];
	size_t len = 0;
	list[0] = '\0';
	for (uint32_t i = 0; i < ms->n_models && len < sizeof(list); i++) {
		int k = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
				 ms->models[i].name);
		len += k > 0 ? (size_t)k : 0;
	}
	cmd_err(c->ctx, "no model named '%s' (models: %s)", name, list);
	proto_msg_clear(&reply);
	return CMD_EXIT_FAIL;
}

static int cmd_model(struct chat *c, const char *arg)
{
	if (!*arg)
		return chat_fail(c, CMD_EXIT_USAGE, "/model: a model name is needed");
	if (strlen(arg) > CMD_MAX_NAME)
		return chat_fail(c, CMD_EXIT_USAGE, "/model: a model name has 1..%d bytes", CMD_MAX_NAME);
	int rc = check_model(c, arg);
	if (rc)
		return c->tty && rc == CMD_EXIT_USAGE ? (c->fails++, 0) : rc;
	char *m = strdup(arg);
	if (!m)
		return chat_fail(c, CMD_EXIT_FAIL, "out of memory");
	free(c->model);
	c->model = m;
	return 0;
}

static const struct {
	const char *key;
	unsigned bit;
} set_keys[] = {
	{"temperature", CHAT_SET_TEMPERATURE},
	{"top_p", CHAT_SET_TOP_P},
	{"top_k", CHAT_SET_TOP_K},
	{"seed", CHAT_SET_SEED},
	{"min_p", CHAT_SET_MIN_P},
	{"repetition_penalty", CHAT_SET_REPETITION_PENALTY},
	{"frequency_penalty", CHAT_SET_FREQUENCY_PENALTY},
	{"presence_penalty", CHAT_SET_PRESENCE_PENALTY},
	{"penalty_last_n", CHAT_SET_PENALTY_LAST_N},
};

static int set_max_tokens(struct chat *c, const char *val)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(val, &end, 10);
	if (!*val || *end || errno || *val == '-' || v < 1 || v > CMD_MAX_TOKENS)
		return chat_fail(c, CMD_EXIT_USAGE, "/set max_tokens: must be an integer in 1..%u, got '%s'",
				 CMD_MAX_TOKENS, val);
	c->max_tokens = (uint32_t)v;
	c->set |= CHAT_SET_MAX_TOKENS;
	return 0;
}

static int set_system(struct chat *c, const char *val)
{
	char *s = NULL;
	if (*val && !(s = strdup(val)))
		return chat_fail(c, CMD_EXIT_FAIL, "out of memory");
	free(c->system);
	c->system = s; /* empty: no system message */
	return 0;
}

/* "/set stop STR" adds STR (the rest of the line); "/set stop" alone
 * removes them all. The bounds are --stop's. */
static int set_stop(struct chat *c, const char *val)
{
	if (!*val) {
		for (int i = 0; i < c->nstop; i++)
			free(c->stop[i]);
		c->nstop = 0;
		return 0;
	}
	if (c->nstop == CMD_MAX_STOPS)
		return chat_fail(c, CMD_EXIT_USAGE, "/set stop: at most %d stop strings (/set stop alone removes them)",
				 CMD_MAX_STOPS);
	if (strlen(val) > CMD_MAX_STOP_LEN)
		return chat_fail(c, CMD_EXIT_USAGE, "/set stop: a stop string has 1..%d bytes",
				 CMD_MAX_STOP_LEN);
	if (!(c->stop[c->nstop] = strdup(val)))
		return chat_fail(c, CMD_EXIT_FAIL, "out of memory");
	c->nstop++;
	return 0;
}

/* "/set KEY VALUE": val is the rest of the line after KEY. */
static int cmd_set(struct chat *c, char *arg)
{
	char *key = arg, *val = arg + strcspn(arg, " \t");
	if (*val)
		*val++ = '\0';
	val += strspn(val, " \t");
	if (!strcmp(key, "system"))
		return set_system(c, val);
	if (!strcmp(key, "stop"))
		return set_stop(c, val);
	if (!*key)
		return chat_fail(c, CMD_EXIT_USAGE,
				 "/set: usage: /set temperature|top_p|top_k|min_p|max_tokens|seed|stop|system"
				 "|repetition_penalty|frequency_penalty|presence_penalty|penalty_last_n VALUE");
	if (!*val)
		return chat_fail(c, CMD_EXIT_USAGE, "/set %s: a value is needed", key);
	if (!strcmp(key, "max_tokens"))
		return set_max_tokens(c, val);
	for (size_t i = 0; i < sizeof(set_keys) / sizeof(set_keys[0]); i++) {
		if (strcmp(key, set_keys[i].key))
			continue;
		char err[256];
		if (smp_param_set(&c->params, key, val, err, sizeof(err)) < 0)
			return chat_fail(c, CMD_EXIT_USAGE, "/set: %s", err);
		c->set |= set_keys[i].bit;
		return 0;
	}
	return chat_fail(c, CMD_EXIT_USAGE,
			 "/set: unknown setting '%s' (temperature, top_p, top_k, min_p, max_tokens, seed, stop, "
			 "system, repetition_penalty, frequency_penalty, presence_penalty, penalty_last_n)",
			 key);
}

static void print_setting(const char *name, int set, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A value /set gave; nothing when it did not (the caller prints the default). */
static void print_setting(const char *name, int set, const char *fmt, ...)
{
	va_list ap;
	if (!set)
		return;
	printf("%-18s ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A penalty as it is in effect: what /set gave, or the sampler's default,
 * which is what plotd applies to a request that does not send it (the
 * daemon has no setting for these): "1 (off)" when it changes nothing. */
static void print_penalty(const char *name, int set, double v, double off)
{
	if (set)
		printf("%-18s %g\n", name, v);
	else
		printf("%-18s %g (%s)\n", name, v, v == off ? "off" : "default");
}

/* The model's generate.* values (what a turn gets for what /set did not
 * set), from the daemon's models reply; NULL when it cannot be asked. */
static const struct proto_model_info *model_defaults(struct chat *c, struct proto_msg *reply)
{
	struct proto_msg req;
	proto_msg_init(&req, PROTO_T_MODELS, 0);
	memset(reply, 0, sizeof(*reply));
	if (cmd_call(c->ctx, &req, reply) != 0)
		return NULL;
	for (uint32_t i = 0; i < reply->u.models.n_models; i++) {
		const struct proto_model_info *m = &reply->u.models.models[i];
		if (c->model ? !strcmp(m->name, c->model) : m->is_default)
			return m;
	}
	return NULL;
}

/* A setting /set did not touch: the model's default, with its value when
 * the daemon said it. */
static void print_default(const char *name, int set, const struct proto_model_info *d,
			  double v, int is_int)
{
	if (set)
		return;
	if (!d)
		printf("%-18s ? (plotd did not say)\n", name);
	else if (is_int)
		printf("%-18s %.0f (model default)\n", name, v);
	else
		printf("%-18s %g (model default)\n", name, v);
}

static void print_sampling(struct chat *c, const struct proto_model_info *d)
{
	unsigned s = c->set;
	print_default("temperature", s & CHAT_SET_TEMPERATURE, d, d ? d->gen_temperature : 0, 0);
	if (s & CHAT_SET_TEMPERATURE)
		print_setting("temperature", 1, "%g", (double)c->params.temperature);
	print_default("top_p", s & CHAT_SET_TOP_P, d, d ? d->gen_top_p : 0, 0);
	if (s & CHAT_SET_TOP_P)
		print_setting("top_p", 1, "%g", (double)c->params.top_p);
	print_default("top_k", s & CHAT_SET_TOP_K, d, d ? (double)d->gen_top_k : 0, 1);
	if (s & CHAT_SET_TOP_K)
		print_setting("top_k", 1, "%d", (int)c->params.top_k);
	print_default("min_p", s & CHAT_SET_MIN_P, d, d ? d->gen_min_p : 0, 0);
	if (s & CHAT_SET_MIN_P)
		print_setting("min_p", 1, "%g", (double)c->params.min_p);
	if (s & CHAT_SET_MAX_TOKENS)
		print_setting("max_tokens", 1, "%u", c->max_tokens);
	else if (d && d->gen_max_tokens)
		printf("%-18s %llu (model default)\n", "max_tokens",
		       (unsigned long long)d->gen_max_tokens);
	else
		printf("%-18s %s\n", "max_tokens",
		       d ? "until the end of the text or context (model default)"
			 : "? (plotd did not say)");
}

/* The model's running-task timeout (timeout_secs; chat sends no deadline
 * of its own), from the daemon's stats of that model. */
static void print_timeout(struct chat *c, const char *model)
{
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_STATS, 0);
	req.u.filter.model = model;
	memset(&reply, 0, sizeof(reply));
	if (!model || cmd_call(c->ctx, &req, &reply) != 0 || reply.u.stats.n_models != 1)
		printf("%-18s ? (plotd did not say)\n", "timeout");
	else if (!reply.u.stats.models[0].timeout_secs)
		printf("%-18s none (model default)\n", "timeout");
	else
		printf("%-18s %llu s (model default)\n", "timeout",
		       (unsigned long long)reply.u.stats.models[0].timeout_secs);
	proto_msg_clear(&reply);
}

static int cmd_stats(struct chat *c)
{
	struct proto_msg reply;
	const struct proto_model_info *d = model_defaults(c, &reply);
	if (c->model || !d)
		printf("%-18s %s\n", "model", c->model ? c->model : "(the default)");
	else
		printf("%-18s %s (the default)\n", "model", d->name);
	printf("%-18s %zu\n", "messages", c->n + (c->system ? 1 : 0));
	printf("%-18s %u (%u stopped)\n", "answers", c->answers, c->stopped);
	printf("%-18s %llu\n", "tokens", (unsigned long long)c->tokens);
	printf("%-18s %.1f\n", "tok/s", c->gen_secs > 0 ? (double)c->tokens / c->gen_secs : 0.0);
	print_sampling(c, d);
	print_timeout(c, d ? d->name : c->model);
	proto_msg_clear(&reply);
	if (c->set & CHAT_SET_SEED)
		printf("%-18s %llu\n", "seed", (unsigned long long)c->params.seed);
	else
		printf("%-18s random (a new one each answer)\n", "seed");
	print_penalty("repetition_penalty", c->set & CHAT_SET_REPETITION_PENALTY,
		      c->params.repetition_penalty, 1);
	print_penalty("frequency_penalty", c->set & CHAT_SET_FREQUENCY_PENALTY,
		      c->params.frequency_penalty, 0);
	print_penalty("presence_penalty", c->set & CHAT_SET_PRESENCE_PENALTY,
		      c->params.presence_penalty, 0);
	if (c->set & CHAT_SET_PENALTY_LAST_N)
		printf("%-18s %d\n", "penalty_last_n", (int)c->params.penalty_last_n);
	else
		printf("%-18s %d (default)\n", "penalty_last_n", (int)c->params.penalty_last_n);
	printf("%-18s", "stop");
	for (int i = 0; i < c->nstop; i++)
		printf(" \"%s\"", c->stop[i]);
	printf("%s\n", c->nstop ? "" : " (none)");
	printf("%-18s %s\n", "system", c->system ? c->system : "(none)");
	return fflush(stdout) ? CMD_EXIT_FAIL : 0;
}

static int cmd_help(void)
{
	fputs("/model NAME        talk to model NAME from now on\n"
	      "/set KEY VALUE     temperature, top_p, top_k, min_p, max_tokens, seed,\n"
	      "                   repetition_penalty, frequency_penalty, presence_penalty,\n"
	      "                   penalty_last_n, stop (adds one) or system\n"
	      "                   (/set system or /set stop alone removes them)\n"
	      "/clear             forget the conversation (settings stay)\n"
	      "/save FILE         write the conversation to FILE (JSON)\n"
	      "/load FILE         replace the conversation by FILE's\n"
	      "/stats             this session's model, settings and speed\n"
	      "/help, /?          this list\n"
	      "/bye, /exit, /quit leave (so does Ctrl-D)\n"
	      "//TEXT             send /TEXT as a message\n"
	      "Ctrl-C stops an answer or clears the line; Ctrl-C twice at an empty\n"
	      "prompt leaves with status 130.\n",
	      stdout);
	return fflush(stdout) ? CMD_EXIT_FAIL : 0;
}

#define CHAT_BYE (-1)

/* On a tty, say what a successful /set did (a script's stdout is answers). */
static void confirm_set(const struct chat *c, const char *key, const char *val)
{
	if (!c->tty)
		return;
	if (!strcmp(key, "system"))
		printf(*val ? "system prompt set\n" : "system prompt removed\n");
	else if (!strcmp(key, "stop") && !*val)
		printf("stop strings removed\n");
	else if (!strcmp(key, "stop"))
		printf("stop string \"%s\" added (%d of %d)\n", val, c->nstop, CMD_MAX_STOPS);
	else
		printf("%s set to %s\n", key, val);
	fflush(stdout);
}

static int set_confirmed(struct chat *c, char *arg)
{
	unsigned fails = c->fails;
	size_t klen = strcspn(arg, " \t");
	const char *val = arg + klen + strspn(arg + klen, " \t"); /* cmd_set cuts at klen */
	int rc = cmd_set(c, arg);
	if (rc == 0 && c->fails == fails)
		confirm_set(c, arg, val);
	return rc;
}

static int clear_confirmed(struct chat *c)
{
	chat_clear(c);
	if (c->tty) {
		printf("conversation cleared (settings kept)\n");
		fflush(stdout);
	}
	return 0;
}

/* A line starting with '/'. 0, CHAT_BYE, or an exit status. */
static int slash(struct chat *c, char *line)
{
	char *name = line + 1, *arg = name + strcspn(name, " \t");
	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	if (!strcmp(name, "bye") || !strcmp(name, "exit") || !strcmp(name, "quit"))
		return CHAT_BYE;
	if (!strcmp(name, "model"))
		return cmd_model(c, arg);
	if (!strcmp(name, "set"))
		return set_confirmed(c, arg);
	if (!strcmp(name, "clear"))
		return clear_confirmed(c);
	if (!strcmp(name, "save"))
		return chat_save(c, arg);
	if (!strcmp(name, "load"))
		return chat_load(c, arg);
	if (!strcmp(name, "stats"))
		return cmd_stats(c);
	if (!strcmp(name, "help") || !strcmp(name, "?"))
		return cmd_help();
	return chat_fail(c, CMD_EXIT_USAGE, "unknown command '/%s' (try /help)", name);
}

/* ---- one turn ----------------------------------------------------------- */

/* The penalties /set chose (the sampler's own names and ranges). */
static void submit_penalties(const struct chat *c, struct proto_submit *s)
{
	if (c->set & CHAT_SET_REPETITION_PENALTY) {
		s->has |= PROTO_HAS_REPETITION_PENALTY;
		s->repetition_penalty = c->params.repetition_penalty;
	}
	if (c->set & CHAT_SET_FREQUENCY_PENALTY) {
		s->has |= PROTO_HAS_FREQUENCY_PENALTY;
		s->frequency_penalty = c->params.frequency_penalty;
	}
	if (c->set & CHAT_SET_PRESENCE_PENALTY) {
		s->has |= PROTO_HAS_PRESENCE_PENALTY;
		s->presence_penalty = c->params.presence_penalty;
	}
	if (c->set & CHAT_SET_PENALTY_LAST_N) {
		s->has |= PROTO_HAS_PENALTY_LAST_N;
		s->penalty_last_n = (uint32_t)c->params.penalty_last_n;
	}
}

static void submit_params(const struct chat *c, struct proto_submit *s)
{
	if (c->set & CHAT_SET_TEMPERATURE) {
		s->has |= PROTO_HAS_TEMPERATURE;
		s->temperature = c->params.temperature;
	}
	if (c->set & CHAT_SET_TOP_P) {
		s->has |= PROTO_HAS_TOP_P;
		s->top_p = c->params.top_p;
	}
	if (c->set & CHAT_SET_TOP_K) {
		s->has |= PROTO_HAS_TOP_K;
		s->top_k = (uint32_t)c->params.top_k;
	}
	if (c->set & CHAT_SET_SEED) {
		s->has |= PROTO_HAS_SEED;
		s->seed = c->params.seed;
	}
	if (c->set & CHAT_SET_MAX_TOKENS) {
		s->has |= PROTO_HAS_MAX_TOKENS;
		s->max_tokens = c->max_tokens;
	}
	if (c->set & CHAT_SET_MIN_P) {
		s->has |= PROTO_HAS_MIN_P;
		s->min_p = c->params.min_p;
	}
	submit_penalties(c, s);
	s->stop = (const char *const *)c->stop;
	s->n_stop = (uint32_t)c->nstop;
}

/* Submit the conversation (system first). 0 with *id, or an exit status. */
static int submit(struct chat *c, uint64_t *id)
{
	size_t n = c->n + (c->system ? 1 : 0), k = 0;
	struct proto_chat_msg *all = calloc(n, sizeof(*all));
	struct proto_msg req, reply;
	if (!all)
		return cmd_err(c->ctx, "out of memory"), CMD_EXIT_FAIL;
	if (c->system)
		all[k++] = (struct proto_chat_msg){.role = "system", .content = c->system};
	memcpy(all + k, c->msgs, c->n * sizeof(*all));
	proto_msg_init(&req, PROTO_T_SUBMIT, 0);
	req.u.submit.model = c->model;
	req.u.submit.messages = all;
	req.u.submit.n_messages = (uint32_t)n;
	req.u.submit.priority = POOL_PRIO_NORMAL;
	submit_params(c, &req.u.submit);
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_waitline_call(c->ctx, &req, &reply, c->model);
	if (rc == 0)
		*id = reply.u.submitted.task;
	proto_msg_clear(&reply);
	free(all);
	return rc;
}

static void report_speed(const struct chat *c, const struct chat_answer *a)
{
	if (!c->ctx->verbose)
		return;
	double tps = a->chunks > 1 && a->secs > 0 ? (double)(a->chunks - 1) / a->secs : 0;
	fprintf(stderr, "[task %llu: %llu tokens, time to first token %.3f s, %.1f tok/s%s]\n",
		(unsigned long long)a->task, (unsigned long long)a->chunks, a->ttft, tps, a->stopped ? ", stopped" : "");
}

/* The answer ended (done, stopped or failed): keep it or drop the turn. */
static int settle(struct chat *c, struct chat_answer *a)
{
	int ok = a->state == POOL_DONE || (a->stopped && a->len > 0);
	if (a->len && (!c->tty || a->text[a->len - 1] != '\n'))
		putchar('\n');
	else if (!c->tty && a->len == 0 && a->state == POOL_DONE)
		putchar('\n'); /* one line per answer, even an empty one */
	fflush(stdout);
	c->answers += a->state == POOL_DONE || a->stopped;
	c->stopped += a->stopped;
	c->tokens += a->chunks;
	c->gen_secs += a->secs;
	report_speed(c, a);
	if (!ok) {
		chat_pop(c);
		if (a->stopped || c->tty)
			return 0;
		return POOL_STATE_TERMINAL(a->state) ? client_exit_for_state(a->state) : CMD_EXIT_FAIL;
	}
	if (chat_push(c, "assistant", a->text ? a->text : "", a->len) < 0) {
		chat_pop(c);
		return cmd_err(c->ctx, "out of memory"), CMD_EXIT_FAIL;
	}
	return 0;
}

/* One user turn. 0, or an exit status to leave with. */
static int turn(struct chat *c, const char *text)
{
	struct chat_answer a;
	uint64_t id;
	chat_trim(c);
	if (chat_push(c, "user", text, strlen(text)) < 0)
		return cmd_err(c->ctx, "out of memory"), CMD_EXIT_FAIL;
	memset(&a, 0, sizeof(a));
	double t0 = chat_now();
	int rc = submit(c, &id);
	if (rc) {
		chat_pop(c);
		return c->tty && rc != CMD_EXIT_CANCELLED && rc != CMD_EXIT_UNREACHABLE ? 0 : rc;
	}
	a.task = id;
	chat_echo_off();
	rc = chat_stream(c->ctx, id, t0, &a);
	chat_echo_restore();
	if (rc == 0)
		rc = settle(c, &a);
	else
		putchar('\n');
	free(a.text);
	return rc;
}

/* ---- input -------------------------------------------------------------- */

static char *rl_line;
static int rl_got;

static void on_rl_line(char *line)
{
	rl_line = line;
	rl_got = 1;
	rl_callback_handler_remove();
}

/* Ctrl-C at the prompt, as a shell does: text on the line is dropped; on
 * an empty line the first one says how to leave and a second one leaves.
 * 1: leave (130), 0: go on with a fresh prompt. */
static int prompt_interrupt(struct chat *c)
{
	int empty = rl_end == 0;
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	if (empty && c->intr)
		return 1;
	c->intr = empty;
	printf(empty ? "\n(Ctrl-C again, Ctrl-D or /bye to leave)\n" : "^C\n");
	fflush(stdout);
	rl_on_new_line();
	rl_redisplay();
	return 0;
}

/* Read a line on a tty. 0 with *out (malloc'd), 1 at EOF, or 130. */
static int read_tty(struct chat *c, char **out)
{
	char prompt[CMD_MAX_NAME + 4];
	snprintf(prompt, sizeof(prompt), "%s> ", c->shown ? c->shown : "");
	rl_line = NULL;
	rl_got = 0;
	rl_callback_handler_install(prompt, on_rl_line);
	while (!rl_got) {
		struct pollfd pfd[2] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = chat_signal_fd(), .events = POLLIN},
		};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (chat_signals_take() > 0 && prompt_interrupt(c)) {
			rl_callback_handler_remove();
			putchar('\n');
			return CMD_EXIT_CANCELLED;
		}
		if (pfd[0].revents & POLLIN) {
			c->intr = 0;
			rl_callback_read_char();
		}
	}
	if (!rl_line)
		return 1;
	*out = rl_line;
	return 0;
}

/* Read a line from a pipe or file. 0 with *out, 1 at EOF, or a status. */
static int read_pipe(struct chat *c, char **out)
{
	size_t cap = 0;
	char *line = NULL;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		int e = errno;
		free(line);
		if (chat_signals_take() > 0)
			return CMD_EXIT_CANCELLED;
		if (ferror(stdin)) {
			cmd_err(c->ctx, "reading stdin: %s", strerror(e));
			return CMD_EXIT_FAIL;
		}
		return 1;
	}
	if ((size_t)n > CHAT_MAX_LINE) {
		free(line);
		cmd_err(c->ctx, "an input line is longer than %u bytes", CHAT_MAX_LINE);
		return CMD_EXIT_USAGE;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	*out = line;
	return 0;
}

/* mkdir -p with mode 0700 for the parts that do not exist. */
static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* The history file, created 0600 in a 0700 directory. 0 or -1. */
static int history_open(char *path, size_t len)
{
	const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	if (st && *st == '/')
		n = snprintf(path, len, "%s/plot", st);
	else if (home && *home)
		n = snprintf(path, len, "%s/.local/state/plot", home);
	else
		return -1;
	if (n < 0 || (size_t)n + sizeof("/history") > len || mkdirs(path) < 0)
		return -1;
	strcat(path, "/history");
	char why[256];
	int fd = fsafe_open(path, O_WRONLY | O_CREAT | O_APPEND, 0600, why, sizeof why);
	if (fd < 0)
		return -1;
	close(fd);
	stifle_history(CHAT_HISTORY_LINES);
	read_history(path);
	return 0;
}

static void history_add(const char *path, const char *line)
{
	if (!*path || !*line)
		return;
	add_history(line);
	append_history(1, path);
	history_truncate_file(path, CHAT_HISTORY_LINES);
}

/* ---- the loop ----------------------------------------------------------- */

static int handle(struct chat *c, char *line)
{
	if (line[0] == '/' && line[1] != '/')
		return slash(c, line);
	return turn(c, line[0] == '/' ? line + 1 : line);
}

static int chat_loop(struct chat *c)
{
	char hist[4096] = "";
	if (c->tty && history_open(hist, sizeof(hist)) < 0) {
		cmd_info(c->ctx, "no history: cannot create %s", *hist ? hist : "the state directory");
		hist[0] = '\0';
	}
	for (;;) {
		char *line = NULL;
		int rc = c->tty ? read_tty(c, &line) : read_pipe(c, &line);
		if (rc == 1) {
			if (c->tty)
				putchar('\n');
			return CMD_EXIT_OK;
		}
		if (rc)
			return rc;
		if (c->tty)
			history_add(hist, line);
		rc = line[0] ? handle(c, line) : 0;
		free(line);
		if (rc == CHAT_BYE)
			return CMD_EXIT_OK;
		if (rc)
			return rc;
	}
}

static const struct plot_opt chat_opts[] = {
	{"model", 'm', 1, "M", "the model (default: the config's default_model)", 'm'},
	{NULL, 0, 0, NULL, NULL, 0},
};

static int chat_parse(struct chat *c, int argc, char **argv)
{
	struct cmd_parser p;
	const char *arg;
	int r;
	cmd_parser_init(&p, c->ctx, c->ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r != 'm')
			continue;
		if (!*arg || (strlen(arg) > CMD_MAX_NAME && !cmd_adhoc_wanted(arg)))
			return cmd_usage_error(c->ctx, "--model: a model name has 1..%d bytes", CMD_MAX_NAME);
		free(c->model);
		if (!(c->model = strdup(arg)))
			return cmd_err(c->ctx, "out of memory"), CMD_EXIT_FAIL;
	}
	if (r < 0)
		return r == -2 ? -1 : CMD_EXIT_USAGE;
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(c->ctx, "unexpected operand '%s'", argv[cmd_parser_optind(&p)]);
	return 0;
}

static int chat_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct chat c;
	chat_init(&c, ctx);
	int rc = chat_parse(&c, argc, argv);
	if (rc == 0 && cmd_adhoc_wanted(c.model)) {
		const char *name;
		rc = cmd_adhoc_start(ctx, c.model, &name);
		free(c.model);
		c.model = rc == 0 ? strdup(name) : NULL;
	}
	if (rc == 0)
		rc = cmd_connect(ctx);
	if (rc == 0 && (c.model || c.tty))
		rc = check_model(&c, c.model);
	if (rc == 0 && c.tty)
		printf("plot chat with %s: /? for help, /bye or Ctrl-D to leave\n",
		       c.shown ? c.shown : "the default model");
	if (rc == 0 && chat_signals_install() < 0) {
		cmd_err(ctx, "pipe: %s", strerror(errno));
		rc = CMD_EXIT_FAIL;
	}
	if (rc == 0) {
		rl_catch_signals = 0;
		rc = chat_loop(&c);
		chat_signals_restore();
	}
	chat_free(&c);
	cmd_adhoc_end(ctx);
	return rc < 0 ? CMD_EXIT_OK : rc;
}

const struct plot_cmd cmd_chat_entry = {
	.name = "chat",
	.args = "",
	.summary = "Talk with a model: a REPL on a tty, one turn per line otherwise.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = chat_opts,
	.exec = chat_exec,
};
