/*
 * cmd-events.c — `plot run --json` and `plot tail --json`: a task's stream
 * as JSON lines, one event per line, for scripts (plot(1), JSON OUTPUT):
 *
 *   {"event":"chunk","id":N,"text":"..."}          one per chunk received
 *   {"event":"end","id":N,"state":"done","finish":"eos","error":null,
 *    "tokens":T,"prompt_tokens":P,"wait":S,"run":S}  always last
 *
 * The end event's fields come from the daemon's end event (plot-protocol(7));
 * finish is null when the stream ended before the task did (tail
 * --no-follow). Each line is flushed as written.
 */
#include <stdio.h>

#include "cmd-impl.h"
#include "plot/pool.h"

int cmd_event_chunk(struct plot_ctx *ctx, uint64_t task, const void *data, size_t len)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "event");
	cmd_json_str(&j, "chunk");
	cmd_json_key(&j, "id");
	cmd_json_u64(&j, task);
	cmd_json_key(&j, "text");
	cmd_json_strn(&j, data, len);
	cmd_json_obj_end(&j);
	return cmd_write_out(ctx, "\n", 1);
}

int cmd_event_end(struct plot_ctx *ctx, const struct proto_end *e)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "event");
	cmd_json_str(&j, "end");
	cmd_json_key(&j, "id");
	cmd_json_u64(&j, e->task);
	cmd_json_key(&j, "state");
	cmd_json_str(&j, pool_state_name(e->state));
	cmd_json_key(&j, "finish");
	cmd_json_str(&j, e->finish);
	cmd_json_key(&j, "error");
	cmd_json_str(&j, e->error);
	cmd_json_key(&j, "tokens");
	cmd_json_u64(&j, e->tokens);
	cmd_json_key(&j, "prompt_tokens");
	cmd_json_u64(&j, e->prompt_tokens);
	cmd_json_key(&j, "wait");
	cmd_json_dbl(&j, e->wait_secs);
	cmd_json_key(&j, "run");
	cmd_json_dbl(&j, e->run_secs);
	cmd_json_obj_end(&j);
	return cmd_write_out(ctx, "\n", 1);
}
