/*
 * cmd-impl.h — what the files of the plot CLI share.
 *
 * DESIGN
 *   - Every subcommand lives in cmd/cmd-<verb>.c and exports one
 *     `const struct plot_cmd cmd_<verb>_entry`. cmd-table.c lists them in
 *     plot_cmd_table[]; nothing else knows the set of commands.
 *   - A command's options are a `struct plot_opt` array. The same array
 *     drives getopt_long (cmd-opt.c), `plot help CMD`, and the hidden
 *     `plot __complete-table` that the tests compare with man/plot.1 and the
 *     three completion files, so help, man page and completions cannot drift
 *     from what the parser accepts.
 *   - Global options (--socket, --json, ...) are accepted before the command
 *     and after it: every command parser also knows cmd_global_opts.
 *   - Exit codes come from lib/client's table (client_exit_code); the CLI
 *     only adds 2 for usage errors, 130 for an interrupted run and 141 when
 *     stdout was closed under it (as a process killed by SIGPIPE).
 *
 * INVARIANTS
 *   - Data goes to stdout, diagnostics to stderr (cmd_err/cmd_info).
 *   - An exec function returns an exit status; it never calls exit().
 */
#ifndef PLOT_CMD_IMPL_H
#define PLOT_CMD_IMPL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#include "plot/client.h"
#include "plot/proto.h"

/* Exit statuses, the table in plot.1; the values are lib/client's. */
enum {
	CMD_EXIT_OK = CLIENT_EXIT_OK,
	CMD_EXIT_FAIL = CLIENT_EXIT_FAIL,
	CMD_EXIT_USAGE = CLIENT_EXIT_USAGE,
	CMD_EXIT_UNREACHABLE = CLIENT_EXIT_UNREACHABLE,
	CMD_EXIT_RETRY = CLIENT_EXIT_TEMPFAIL,
	CMD_EXIT_PERM = CLIENT_EXIT_PERMISSION,
	CMD_EXIT_CONFIG = CLIENT_EXIT_CONFIG,
	CMD_EXIT_TIMEOUT = CLIENT_EXIT_TIMEOUT,
	CMD_EXIT_CANCELLED = CLIENT_EXIT_CANCELLED,
	CMD_EXIT_PIPE = 141,          /* stdout closed: 128 + SIGPIPE, quietly */
};

/* One option. id is what the parser returns: short_name when there is one,
 * else a value >= 256 unique within the command (and the globals). */
struct plot_opt {
	const char *name;  /* long name without "--"; NULL ends the array */
	int short_name;    /* 0: none */
	int has_arg;       /* 0 or 1 (required argument) */
	const char *arg;   /* metavariable for help: "M", "SECS" */
	const char *help;
	int id;
};

#define PLOT_CMD_NEEDS_DAEMON 0x1 /* connects; autostarts plotd if allowed */
#define PLOT_CMD_HIDDEN 0x2       /* not in help, man page or completions */
#define PLOT_CMD_GEN_DEFAULTS 0x4 /* help lists the generate.* defaults (run, submit) */

struct plot_ctx;

struct plot_cmd {
	const char *name;
	const char *args;          /* synopsis after the options */
	const char *summary;       /* one line for `plot help` */
	unsigned flags;
	const struct plot_opt *opts;   /* may be NULL */
	const char *const *verbs;      /* sub-verbs (daemon start ...), NULL-ended */
	int (*exec)(struct plot_ctx *ctx, int argc, char **argv);
};

enum cmd_color { CMD_COLOR_AUTO = 0, CMD_COLOR_ALWAYS, CMD_COLOR_NEVER };

/* Global state of one invocation: the parsed global options and, once a
 * command asked for it, the connection to plotd. */
struct plot_ctx {
	const char *socket_opt;    /* --socket, or NULL */
	const char *config_opt;    /* --config, or NULL */
	int json;
	int color;                 /* enum cmd_color */
	int quiet, verbose;
	int no_autostart;
	int adhoc;                 /* the daemon is a private one for -m PATH
	                            * (cmd-adhoc.c): it dies with this process */
	const struct plot_cmd *cmd;
	struct client *cl;         /* NULL until cmd_connect() */
};

extern const struct plot_cmd *const plot_cmd_table[];
extern const struct plot_opt cmd_global_opts[];

const struct plot_cmd *cmd_find(const char *name);

/* ---- option parsing (cmd-opt.c) ---------------------------------------- */

#define CMD_MAX_OPTS 48

/* A getopt_long session over a command's options plus the globals. */
struct cmd_parser {
	struct plot_ctx *ctx;
	const struct plot_cmd *cmd;
	int argc;
	char **argv;
	const struct plot_opt *all[CMD_MAX_OPTS];
	int n;
};

void cmd_parser_init(struct cmd_parser *p, struct plot_ctx *ctx,
		     const struct plot_cmd *cmd, int argc, char **argv);
/* Next command option: its id with *arg set, 0 at the end of the options
 * (operands then start at cmd_parser_optind), -1 after a usage error
 * (already printed), or -2 after --help/--version was printed. Global
 * options are applied to ctx and not returned. With cmd NULL the parse is
 * of the global options before the command and stops at the first operand.
 * CMD_PARSE_EXIT maps a negative return to the exit status. */
int cmd_parser_next(struct cmd_parser *p, const char **arg);
#define CMD_PARSE_EXIT(r) ((r) == -2 ? CMD_EXIT_OK : CMD_EXIT_USAGE)
int cmd_parser_optind(const struct cmd_parser *p);
/* The whole command line of a command that takes only global options:
 * -1 to go on, else the exit status (0 after --help, usage error 2). */
int cmd_parse_no_args(struct plot_ctx *ctx, int argc, char **argv);

/* Apply one global option to ctx. Returns 0, or CMD_EXIT_USAGE. */
int cmd_global_apply(struct plot_ctx *ctx, int id, const char *arg);

/* Number parsing with bounds; on error print "plot CMD: --OPT: ..." and
 * return -1. what names the option or operand in the message. */
int cmd_parse_u64(struct plot_ctx *ctx, const char *what, const char *s,
		  uint64_t min, uint64_t max, uint64_t *out);
int cmd_parse_double(struct plot_ctx *ctx, const char *what, const char *s,
		     double min, double max, double *out);
int cmd_parse_id(struct plot_ctx *ctx, const char *s, uint64_t *out);

/* Print the command's usage (to stdout for --help, to stderr after an
 * error with a hint). */
void cmd_usage(const struct plot_cmd *cmd, FILE *f);
void cmd_main_usage(FILE *f);
/* "plot CMD: message" plus a hint to --help; returns CMD_EXIT_USAGE. */
int cmd_usage_error(struct plot_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- run/submit options (cmd-task.c) ------------------------------------ */

#define CMD_MAX_PROMPT (16 << 20)    /* bytes */
#define CMD_MAX_NAME 128             /* model name bytes */
#define CMD_MAX_STOPS 16
#define CMD_MAX_STOP_LEN 256
#define CMD_MAX_TOKENS 1048576u
#define CMD_MAX_TOP_K 1000000u
#define CMD_MAX_DEADLINE 31536000.0  /* one year, seconds */
#define CMD_MAX_COST ((uint64_t)1 << 53)
#define CMD_MAX_KEY 256

/* Ids of long-only options; shared so one command's ids never collide. */
enum {
	CMD_OPT_TEMPERATURE = 300, CMD_OPT_TOP_K, CMD_OPT_TOP_P, CMD_OPT_MIN_P,
	CMD_OPT_SEED, CMD_OPT_STOP, CMD_OPT_DEADLINE, CMD_OPT_COST, CMD_OPT_RAW, CMD_OPT_DETACH,
	CMD_OPT_NO_FOLLOW, CMD_OPT_ALL, CMD_OPT_STATE, CMD_OPT_WATCH,
	CMD_OPT_PROMETHEUS, CMD_OPT_TIMEOUT, CMD_OPT_WAIT, CMD_OPT_NOW,
	CMD_OPT_REPETITION_PENALTY, CMD_OPT_FREQUENCY_PENALTY, CMD_OPT_PRESENCE_PENALTY,
	CMD_OPT_PENALTY_LAST_N, CMD_OPT_WIDE,
	CMD_OPT_KEY, CMD_OPT_OWNER, CMD_OPT_SINCE, CMD_OPT_LIMIT,
};

/* The options run and submit share, as plot_opt initialisers. */
#define CMD_TASK_OPTS \
	{"model", 'm', 1, "M", "the model (default: the config's default_model)", 'm'}, \
	{"priority", 'p', 1, "P", "low, normal (default), high or critical", 'p'}, \
	{"max-tokens", 'n', 1, "N", "stop after N tokens (1..1048576)", 'n'}, \
	{"temperature", 0, 1, "T", "sampling temperature (0..100; 0 = greedy)", CMD_OPT_TEMPERATURE}, \
	{"top-k", 0, 1, "K", "keep the K most likely tokens (0..1000000; 0 = off)", CMD_OPT_TOP_K}, \
	{"top-p", 0, 1, "P", "nucleus sampling mass (above 0, up to 1)", CMD_OPT_TOP_P}, \
	{"min-p", 0, 1, "P", "drop tokens below P times the best one (0..1)", CMD_OPT_MIN_P}, \
	{"repetition-penalty", 0, 1, "R", "penalise recent tokens' logits (above 0, up to 10; 1 = off)", CMD_OPT_REPETITION_PENALTY}, \
	{"frequency-penalty", 0, 1, "F", "subtract F times a recent token's count (-2..2)", CMD_OPT_FREQUENCY_PENALTY}, \
	{"presence-penalty", 0, 1, "F", "subtract F from every recent token (-2..2)", CMD_OPT_PRESENCE_PENALTY}, \
	{"penalty-last-n", 0, 1, "N", "how many recent tokens the penalties see (0..65536)", CMD_OPT_PENALTY_LAST_N}, \
	{"seed", 0, 1, "S", "sampler seed (0..2^64-1)", CMD_OPT_SEED}, \
	{"stop", 0, 1, "STR", "stop at STR (repeatable, at most 16, 1..256 bytes)", CMD_OPT_STOP}, \
	{"deadline", 0, 1, "SECS", "give up SECS seconds after submission (0.001..31536000)", CMD_OPT_DEADLINE}, \
	{"cost", 0, 1, "UNITS", "resource units to reserve, instead of the computed cost", CMD_OPT_COST}, \
	{"raw", 0, 0, NULL, "send the prompt as plain text, not as a chat turn", CMD_OPT_RAW}, \
	{"key", 0, 1, "K", "idempotency key: a retry with the same K gets the first task's id", CMD_OPT_KEY}

struct cmd_task {
	const char *model;         /* NULL: the daemon's default */
	int priority;              /* enum pool_prio, -1: default (normal) */
	uint32_t max_tokens;       /* 0: unset */
	int has_temperature, has_top_k, has_top_p, has_min_p, has_seed;
	double temperature, top_p, min_p;
	uint32_t has_pen;          /* PROTO_HAS_*_PENALTY / PENALTY_LAST_N bits */
	double repetition_penalty, frequency_penalty, presence_penalty;
	uint32_t penalty_last_n;
	uint32_t top_k;
	uint64_t seed;
	const char *stop[CMD_MAX_STOPS];
	int nstop;
	double deadline_secs;      /* 0: the pool's default timeout */
	uint64_t cost;             /* 0: computed by the daemon */
	int detach;
	int raw;                   /* --raw: no chat template */
	const char *key;           /* --key: idempotency key, or NULL */
	char *prompt;              /* malloc'd, NUL-terminated */
	size_t prompt_len;
};

void cmd_task_init(struct cmd_task *t);
void cmd_task_free(struct cmd_task *t);
/* Apply one run/submit option: 0 done, -1 usage error printed, 1 not one
 * of the shared options. */
int cmd_task_opt(struct plot_ctx *ctx, struct cmd_task *t, int id, const char *arg);
/* The prompt from the n operands v (joined by spaces), or from stdin when
 * there are none or the one operand is "-". 0 or -1 (printed). */
int cmd_task_prompt(struct plot_ctx *ctx, struct cmd_task *t, int n, char **v);
/* The whole command line of run/submit (options and prompt). 0, an exit
 * status, or -1 when --help was printed (exit 0). */
int cmd_task_parse(struct plot_ctx *ctx, struct cmd_task *t, int argc, char **argv);
/* The submit request for t (pointing into t). */
void cmd_task_msg(const struct cmd_task *t, struct proto_msg *m);
/* Submit t; the new id in *id. 0 or an exit status (printed). */
int cmd_task_submit(struct plot_ctx *ctx, const struct cmd_task *t, uint64_t *id);

/* ---- the daemon (cmd-connect.c) ---------------------------------------- */

/* Resolve the socket path (--socket, $PLOT_SOCKET, ...). 0 or exit status. */
int cmd_socket_path(struct plot_ctx *ctx, char *out, size_t len);
/* Connect ctx->cl, starting plotd if needed and allowed. 0 or an exit
 * status, the error already printed. */
int cmd_connect(struct plot_ctx *ctx);
/* Start plotd on sock under the autostart lock unless one answers; leaves
 * ctx->cl connected. *started says whether this call spawned it. */
int cmd_autostart(struct plot_ctx *ctx, const char *sock, int timeout_ms, int *started);
/* Connect if needed, send req, wait for its reply. 0 with an ok reply, or
 * an exit status with the error printed. The caller clears *reply. */
int cmd_call(struct plot_ctx *ctx, struct proto_msg *req, struct proto_msg *reply);

/* Follow a task's stream to stdout (cmd-stream.c). cancel_on_signal: Ctrl-C
 * cancels the task (run) rather than only stopping (tail). Exit status. */
int cmd_stream(struct plot_ctx *ctx, uint64_t task, int follow, int cancel_on_signal);
/* Hand fn every frame already buffered or readable now, until *done (fn
 * may set it). 0, or an exit status on a connection error (reported). */
typedef void (*cmd_frame_fn)(void *arg, const struct proto_msg *m);
int cmd_drain_frames(struct plot_ctx *ctx, const int *done, cmd_frame_fn fn, void *arg);
/* Wait up to timeout_ms (-1: no limit) until the connection or the signal
 * pipe sigfd is readable; *signalled says whether sigfd is. 0, or an exit
 * status after a poll error (reported). */
int cmd_wait_frames(struct plot_ctx *ctx, int sigfd, int timeout_ms, int *signalled);
/* --json stream events of run/tail (cmd-events.c): 0 or an exit status
 * as cmd_write_out's. */
int cmd_event_chunk(struct plot_ctx *ctx, uint64_t task, const void *data, size_t len);
int cmd_event_end(struct plot_ctx *ctx, const struct proto_end *e);
/* Wait until the n tasks have ended (cmd-wait.c), up to timeout_secs (0:
 * no limit). The first not-done task's exit status, 0, 124 after the
 * timeout, or an error's status. quiet (cancel --wait): print nothing per
 * task, and how a task ended does not count, only that it did. */
int cmd_wait_tasks(struct plot_ctx *ctx, const uint64_t *ids, size_t n, double timeout_secs,
		   int quiet);
/* Print a new task id ("N" or {"id":N}). */
int cmd_print_id(struct plot_ctx *ctx, uint64_t id);

/* ---- output (cmd-output.c) ---------------------------------------------- */

void cmd_err(struct plot_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cmd_info(struct plot_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The --json form of an error: {"error":MSG,"command":CMD} on stderr. */
void cmd_vjson_error(struct plot_ctx *ctx, const char *fmt, va_list ap);
int cmd_color_on(const struct plot_ctx *ctx, FILE *f);
int cmd_is_tty(FILE *f);
/* Write data to stdout and flush. 0, CMD_EXIT_PIPE when the reader has
 * gone (EPIPE: nothing printed, as `yes | head`), or CMD_EXIT_FAIL after
 * another error (reported). */
int cmd_write_out(struct plot_ctx *ctx, const void *data, size_t len);
const char *cmd_state_color(const char *state);

/* A tiny streaming JSON writer: commas and nesting handled, strings
 * escaped, non-UTF-8 bytes replaced by U+FFFD. */
#define CMD_JSON_DEPTH 32
struct cmd_json {
	FILE *f;
	int depth;
	int count[CMD_JSON_DEPTH]; /* values written at each level */
	int after_key;
};
void cmd_json_init(struct cmd_json *j, FILE *f);
void cmd_json_obj(struct cmd_json *j);
void cmd_json_obj_end(struct cmd_json *j);
void cmd_json_arr(struct cmd_json *j);
void cmd_json_arr_end(struct cmd_json *j);
void cmd_json_key(struct cmd_json *j, const char *k);
void cmd_json_str(struct cmd_json *j, const char *s);
void cmd_json_strn(struct cmd_json *j, const char *s, size_t n);
void cmd_json_u64(struct cmd_json *j, uint64_t v);
void cmd_json_i64(struct cmd_json *j, int64_t v);
void cmd_json_dbl(struct cmd_json *j, double v);
void cmd_json_bool(struct cmd_json *j, int v);
void cmd_json_null(struct cmd_json *j);
/* Any msgpack object as JSON (map keys that are not strings are printed
 * as their JSON text in a string). */
void cmd_json_msgpack(struct cmd_json *j, const msgpack_object *o);
void cmd_json_end(struct cmd_json *j); /* newline */

/* A table: rows of strings, aligned with a header on a tty, tab-separated
 * without header otherwise (stable for scripts). */
#define CMD_TABLE_COLS 12
struct cmd_table {
	int ncols;
	const char *head[CMD_TABLE_COLS];
	char **cells;     /* rows * ncols, malloc'd strings */
	size_t rows, cap;
};
void cmd_table_init(struct cmd_table *t, int ncols, const char *const *head);
void cmd_table_add(struct cmd_table *t, const char *const *row);
void cmd_table_print(struct plot_ctx *ctx, struct cmd_table *t, FILE *f,
		     int state_col);
void cmd_table_free(struct cmd_table *t);

/* A task's owner: the user name of uid, or the number (cmd-fmt.c). */
const char *cmd_fmt_owner(char *buf, size_t len, uint32_t uid);
/* A task's label on one line: control bytes as spaces, at most max bytes
 * (and len - 4) cut at a character boundary, "..." after a cut. */
const char *cmd_fmt_label(char *buf, size_t len, const char *label, size_t max);

/* Human durations ("3.2s", "4m05s") into buf. */
const char *cmd_fmt_dur(char *buf, size_t len, double secs);
/* "12.3 MiB", "512 B" (binary units). */
const char *cmd_fmt_bytes(char *buf, size_t len, uint64_t b);
/* Where a model runs: "cuda:0 (NVIDIA H200, 120.5 GiB free of 139.8 GiB)"
 * on a device with memory of its own (name non-NULL), else device ("cpu"),
 * "-" if NULL. buf: 160 bytes hold any. */
const char *cmd_fmt_device(char *buf, size_t len, const char *device, const char *name,
			   uint64_t total, uint64_t free_b);
/* JSON keys device_name, device_total_bytes, device_free_bytes (null
 * without a device of its own). */
void cmd_json_device(struct cmd_json *j, const char *name, uint64_t total, uint64_t free_b);

/* ---- shared by several commands ----------------------------------------- */

/* A task as JSON (status, queue) and its deadline for people (cmd-status.c). */
void cmd_json_task(struct cmd_json *j, const struct proto_task_info *t);
const char *cmd_fmt_deadline(char *buf, size_t len, const struct proto_task_info *t);
/* A QUEUE request for filter f, printed as JSON (--json) or by print. 0 or
 * an exit status (queue, list). */
int cmd_query_tasks(struct plot_ctx *ctx, const struct proto_filter *f,
		    void (*print)(struct plot_ctx *, const struct proto_queue *));
/* "CMD [--flag] ID": flag_id sets *flag. 0, an exit status, or -1 when
 * --help was printed (exit 0). */
int cmd_parse_id_args(struct plot_ctx *ctx, int argc, char **argv, int flag_id,
		      int *flag, uint64_t *id);
/* Run round() once, or every secs seconds until interrupted (cmd-queue.c). */
int cmd_watch(struct plot_ctx *ctx, double secs, int (*round)(struct plot_ctx *, void *), void *arg);
int cmd_parse_watch(struct plot_ctx *ctx, const char *arg, double *secs);

/* ---- -m PATH: a model tried by its file (cmd-adhoc.c) -------------------- */

/* Whether a --model value is a file path (it has a '/'; model names never
 * do), to be served by a private plotd. */
int cmd_adhoc_wanted(const char *model);
/* Start a private plotd serving the GGUF file at path alone, as a model
 * named after the file, and connect ctx to it; *name is that model's name
 * (static storage). 0, or an exit status (printed). */
int cmd_adhoc_start(struct plot_ctx *ctx, const char *path, const char **name);
/* The model name a file gets: its base name without .gguf, characters
 * outside A-Z a-z 0-9 . _ : - made '-' (static storage). */
const char *cmd_adhoc_name(const char *path);
/* Stop the private plotd, if one was started, and remove its directory. */
void cmd_adhoc_end(struct plot_ctx *ctx);

/* ---- the status line while waiting (cmd-waitline.c) --------------------- */

/* One line on stderr, only on a terminal and without -q, erased before any
 * output: plotd starting, the model loading, the task's queue position. */
struct cmd_waitline {
	struct plot_ctx *ctx;
	uint64_t task;
	int on;                    /* showing until the first chunk or the end */
	int state;                 /* enum pool_state last heard; -1: none yet */
	uint64_t position;
	int loading;               /* the task's model is loading */
	double progress;
	char model[CMD_MAX_NAME + 1];
	long long t0, next;        /* ms: start, next status request */
	uint64_t status_id, models_id; /* requests in flight; 0: none */
};
int cmd_waitline_wanted(const struct plot_ctx *ctx);
void cmd_waitline_show(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cmd_waitline_clear(void);
void cmd_waitline_init(struct cmd_waitline *w, struct plot_ctx *ctx, uint64_t task);
/* ms until cmd_waitline_tick has work (-1: never), for the stream's poll. */
int cmd_waitline_timeout(const struct cmd_waitline *w);
void cmd_waitline_tick(struct cmd_waitline *w);
/* 1 when m is the reply to one of the waitline's requests (consumed). */
int cmd_waitline_take(struct cmd_waitline *w, const struct proto_msg *m);
void cmd_waitline_end(struct cmd_waitline *w);
/* cmd_call, showing the load of model (NULL: the default) while the reply
 * waits for it (a submit to a loading model). */
int cmd_waitline_call(struct plot_ctx *ctx, struct proto_msg *req, struct proto_msg *reply,
		      const char *model);

#endif
