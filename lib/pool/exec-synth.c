/*
 * exec-synth.c — the synthetic executor: echoes a prompt's words back as
 * output chunks, for tests, benchmarks and the daemon until the model engine
 * lands. It is the thread executor with a job that steps through the words.
 *
 * Each step emits one word plus the whitespace after it, then waits
 * 1/tokens_per_sec (real time) or until the task is cancelled; the cancel
 * flag is checked between steps. A prompt starting with "!fail" fails right
 * after its first chunk, which exercises the executor-error path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/pool.h"

struct synth {
	double tokens_per_sec;
};

struct pool_synth_payload *pool_synth_payload_new(const char *prompt, uint32_t max_tokens)
{
	struct pool_synth_payload *sp = calloc(1, sizeof *sp);
	if (!sp)
		return NULL;
	sp->prompt = strdup(prompt ? prompt : "");
	if (!sp->prompt) {
		free(sp);
		return NULL;
	}
	sp->max_tokens = max_tokens;
	return sp;
}

void pool_synth_payload_free(void *payload)
{
	struct pool_synth_payload *sp = payload;
	if (!sp)
		return;
	free(sp->prompt);
	free(sp);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of the next chunk at s: one word plus the whitespace after it. */
static size_t next_chunk(const char *s)
{
	size_t n = 0;
	while (s[n] && !is_space(s[n]))
		n++;
	while (s[n] && is_space(s[n]))
		n++;
	return n;
}

static int synth_job(void *ctx, struct pool_task *t, char *err, size_t errlen)
{
	const struct synth *sy = ctx;
	const struct pool_synth_payload *sp = pool_task_payload(t);
	uint64_t step_ns = sy->tokens_per_sec > 0 ? (uint64_t)(1e9 / sy->tokens_per_sec) : 0;
	const char *s = sp && sp->prompt ? sp->prompt : "";
	int fail = strncmp(s, "!fail", 5) == 0;
	uint32_t emitted = 0;

	while (is_space(*s))
		s++;
	while (*s && (!sp->max_tokens || emitted < sp->max_tokens)) {
		if (pool_task_cancelled(t))
			return 0; /* the pool turns this into CANCELLED/TIMEOUT */
		size_t n = next_chunk(s);
		int rc = pool_task_emit(t, s, n);
		if (rc < 0) {
			snprintf(err, errlen, "emit failed: %s", pool_err_name(rc));
			return -1;
		}
		s += n;
		emitted++;
		if (fail) {
			snprintf(err, errlen, "synthetic failure after first chunk");
			return -1;
		}
		if (step_ns && *s && pool_task_wait_cancel(t, step_ns))
			return 0;
	}
	return 0;
}

struct pool_executor pool_synthetic_executor_new(double tokens_per_sec)
{
	struct synth *sy = malloc(sizeof *sy);
	if (sy)
		sy->tokens_per_sec = tokens_per_sec > 0 ? tokens_per_sec : 0;
	/* sy == NULL gives job NULL: an executor that pool_new rejects */
	return pool_thread_executor_new(sy ? synth_job : NULL, sy, free);
}
