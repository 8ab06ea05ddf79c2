/*
 * cmd-chat.h — what the two files of `plot chat` share: the conversation
 * state (cmd-chat.c) and the streaming of one answer with its signal
 * handling (cmd-chat-stream.c).
 *
 * INVARIANTS
 *   - msgs holds only user/assistant turns, alternating and starting with a
 *     user turn; the system prompt is prepended at each submit, so /set
 *     system applies to the whole conversation.
 *   - Every string in struct chat is malloc'd and owned by it.
 */
#ifndef PLOT_CMD_CHAT_H
#define PLOT_CMD_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "cmd-impl.h"
#include "plot/sampler.h"

#define CHAT_MAX_TURNS 4000          /* messages kept; the daemon takes 4096 */
#define CHAT_MAX_LINE (1u << 20)     /* bytes of one input line */
#define CHAT_HISTORY_LINES 1000      /* lines kept in the history file */

/* Which request parameters the user /set (the others are the daemon's). */
enum {
	CHAT_SET_TEMPERATURE = 1u << 0,
	CHAT_SET_TOP_P = 1u << 1,
	CHAT_SET_TOP_K = 1u << 2,
	CHAT_SET_SEED = 1u << 3,
	CHAT_SET_MAX_TOKENS = 1u << 4,
	CHAT_SET_MIN_P = 1u << 5,
	CHAT_SET_REPETITION_PENALTY = 1u << 6,
	CHAT_SET_FREQUENCY_PENALTY = 1u << 7,
	CHAT_SET_PRESENCE_PENALTY = 1u << 8,
	CHAT_SET_PENALTY_LAST_N = 1u << 9,
};

struct chat {
	struct plot_ctx *ctx;
	char *model;                 /* NULL: the daemon's default */
	char *system;                /* NULL: no system message */
	struct smp_params params;    /* values of the CHAT_SET_* fields */
	unsigned set;                /* CHAT_SET_* */
	uint32_t max_tokens;
	char *stop[CMD_MAX_STOPS];   /* /set stop: each malloc'd */
	int nstop;
	struct proto_chat_msg *msgs; /* turns; content malloc'd */
	size_t n, cap;
	int tty;                     /* interactive: readline, history */
	char *shown;                 /* the model's name for the prompt and banner */
	unsigned fails;              /* slash-command errors so far (chat_fail) */
	int intr;                    /* Ctrl-C at the empty prompt, unanswered */
	/* statistics of the session, for /stats and --verbose */
	unsigned answers, stopped;
	uint64_t tokens;             /* chunks streamed, one per token */
	double gen_secs;             /* first chunk to end, summed */
};

/* One answer being streamed. */
struct chat_answer {
	uint64_t task;
	char *text;                  /* what was printed, NUL-terminated */
	size_t len, cap;
	uint64_t chunks;
	double ttft;                 /* seconds from submit to the first chunk */
	double secs;                 /* seconds from the first chunk to the end */
	int stopped;                 /* Ctrl-C cancelled it */
	int state;                   /* enum pool_state of the end */
};

/* The conversation (cmd-chat.c). chat_push copies len bytes of content
 * (0 or -1: out of memory); chat_clear forgets every turn. */
int chat_push(struct chat *c, const char *role, const char *content, size_t len);
void chat_clear(struct chat *c);
/* A slash-command error: printed, counted; on a tty the chat goes on (0),
 * in a script it ends with status. */
int chat_fail(struct chat *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* /save FILE and /load FILE (cmd-chat-file.c): the conversation as JSON,
 * {"format": "plot-chat-1", "model": M, "system": S, "messages": [{"role":
 * R, "content": C}, ...]}; /load also takes the same document in YAML.
 * Neither follows a symbolic link. 0, or chat_fail's status. */
int chat_save(struct chat *c, const char *path);
int chat_load(struct chat *c, const char *path);

/* The terminal during an answer (cmd-chat-tty.c): echo off, so text typed
 * ahead waits, unseen, for the next prompt instead of landing inside the
 * answer; restored after. No-ops when stdin is not a terminal. */
void chat_echo_off(void);
void chat_echo_restore(void);

/* Signals for the whole chat session: SIGINT, SIGTERM and SIGHUP write a
 * byte to a self-pipe (nothing else happens in the handler). */
int chat_signals_install(void);
void chat_signals_restore(void);
int chat_signal_fd(void);
/* Drain the pipe: the number of signals pending (0: none). */
int chat_signals_take(void);

/* Stream task's answer to stdout into a. Returns 0 when it ended (done,
 * stopped by one Ctrl-C, or failed with a->state saying how), or an exit
 * status to leave the chat with (a second signal: 130; a lost daemon). */
int chat_stream(struct plot_ctx *ctx, uint64_t task, double t_submit,
		struct chat_answer *a);
double chat_now(void);

#endif
