/*
 * cmd-waitline.c — the one-line status that `plot run` and `plot chat` show
 * on a terminal while a task has produced nothing yet: plotd starting, the
 * model loading (with its real progress), the task's place in the queue.
 *
 * DESIGN
 *   The line lives on stderr, only when stderr is a terminal and -q is not
 *   given, and is erased ("\r", erase to end of line) before the first
 *   byte of output or any message, so nothing of it stays on the screen or
 *   reaches a pipe. One line per process: the state is file-static.
 *
 *   A submit to a model that is loading is answered only once the model
 *   can tokenize (an llm model: once loaded), so cmd_waitline_call, which
 *   makes such a call, asks for the models' states meanwhile and shows the
 *   load's progress.
 *
 *   For a task, the stream's poll wakes every WAITLINE_TICK_MS while the
 *   task is silent and asks the daemon, on the stream's own connection,
 *   for the task's status and the models' states; the replies come back
 *   among the stream's frames and are taken here by request id, so the
 *   stream code sees only its own. At most one request of each kind is in
 *   flight. Nothing is shown before WAITLINE_DELAY_MS: an answer that
 *   starts at once flashes no status.
 *
 * INVARIANTS
 *   - cmd_waitline_clear is safe at any time and leaves the cursor at the
 *     start of an empty line when something was shown.
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd-impl.h"
#include "plot/pool.h"

#define WAITLINE_TICK_MS 200
#define WAITLINE_DELAY_MS 150

static int shown;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_waitline_wanted(const struct plot_ctx *ctx)
{
	return !ctx->quiet && isatty(STDERR_FILENO);
}

void cmd_waitline_show(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	shown = 1;
}

void cmd_waitline_clear(void)
{
	if (!shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	shown = 0;
}

void cmd_waitline_init(struct cmd_waitline *w, struct plot_ctx *ctx, uint64_t task)
{
	memset(w, 0, sizeof(*w));
	w->ctx = ctx;
	w->task = task;
	w->on = cmd_waitline_wanted(ctx);
	w->state = -1;
	w->t0 = now_ms();
	w->next = w->t0 + WAITLINE_DELAY_MS;
}

int cmd_waitline_timeout(const struct cmd_waitline *w)
{
	if (!w->on)
		return -1;
	long long left = w->next - now_ms();
	return left < 0 ? 0 : (int)left;
}

static uint64_t ask(struct cmd_waitline *w, int type)
{
	struct proto_msg m;
	char err[256];
	proto_msg_init(&m, type, 0);
	if (type == PROTO_T_STATUS)
		m.u.task_ref.task = w->task;
	if (client_send(w->ctx->cl, &m, err, sizeof(err)) < 0)
		return 0; /* the stream sees the broken connection itself */
	return m.id;
}

void cmd_waitline_tick(struct cmd_waitline *w)
{
	long long now = now_ms();
	if (!w->on || now < w->next)
		return;
	w->next = now + WAITLINE_TICK_MS;
	if (!w->status_id && w->task)
		w->status_id = ask(w, PROTO_T_STATUS);
	if (!w->models_id && (w->model[0] || !w->task))
		w->models_id = ask(w, PROTO_T_MODELS);
}

static void draw(struct cmd_waitline *w)
{
	double secs = (double)(now_ms() - w->t0) / 1000.0;
	if (!w->on || now_ms() < w->t0 + WAITLINE_DELAY_MS)
		return;
	if (w->loading)
		cmd_waitline_show("loading %s: %.0f%% (%.0fs)", w->model, w->progress * 100, secs);
	else if (w->state == POOL_QUEUED)
		cmd_waitline_show("task %llu queued on %s: position %llu (%.0fs)",
				  (unsigned long long)w->task, w->model,
				  (unsigned long long)w->position, secs);
	else if (w->state == POOL_RUNNING)
		cmd_waitline_show("task %llu running on %s: reading the prompt (%.0fs)",
				  (unsigned long long)w->task, w->model, secs);
}

static void take_task(struct cmd_waitline *w, const struct proto_task_info *t)
{
	w->state = t->state;
	w->position = t->position;
	if (t->model)
		snprintf(w->model, sizeof(w->model), "%s", t->model);
}

static void take_models(struct cmd_waitline *w, const struct proto_models *ms)
{
	w->loading = 0;
	for (uint32_t i = 0; i < ms->n_models; i++) {
		const struct proto_model_info *mi = &ms->models[i];
		if (!w->model[0] && mi->is_default) /* a submit to the default model */
			snprintf(w->model, sizeof(w->model), "%s", mi->name);
		if (strcmp(mi->name, w->model) || !mi->state || strcmp(mi->state, "loading"))
			continue;
		w->loading = 1;
		w->progress = mi->progress;
	}
}

int cmd_waitline_take(struct cmd_waitline *w, const struct proto_msg *m)
{
	int mine = m->id && (m->id == w->status_id || m->id == w->models_id);
	if (m->type == PROTO_T_OK && m->op == PROTO_T_SUBSCRIBE)
		take_task(w, &m->u.task);
	if (!mine)
		return 0;
	if (m->type == PROTO_T_OK && m->op == PROTO_T_STATUS)
		take_task(w, &m->u.task);
	else if (m->type == PROTO_T_OK && m->op == PROTO_T_MODELS)
		take_models(w, &m->u.models);
	if (m->id == w->status_id)
		w->status_id = 0;
	else
		w->models_id = 0;
	draw(w);
	return 1;
}

void cmd_waitline_end(struct cmd_waitline *w)
{
	w->on = 0;
	cmd_waitline_clear();
}

/* The reply to req, or 0 to wait on (other frames are handed to w). */
static int is_reply(struct cmd_waitline *w, const struct proto_msg *req, struct proto_msg *m)
{
	if (m->id == req->id && (m->type == PROTO_T_OK || m->type == PROTO_T_ERR))
		return 1;
	cmd_waitline_take(w, m);
	proto_msg_clear(m);
	return 0;
}

static int call_error(struct plot_ctx *ctx, int rc, const char *err)
{
	if (rc == -PROTO_E_INTR)
		return CMD_EXIT_CANCELLED;
	cmd_err(ctx, "%s", err);
	return client_exit_for_code(rc);
}

int cmd_waitline_call(struct plot_ctx *ctx, struct proto_msg *req, struct proto_msg *reply,
		      const char *model)
{
	struct cmd_waitline w;
	char err[512];
	int rc = cmd_connect(ctx);
	memset(reply, 0, sizeof(*reply));
	if (rc || !cmd_waitline_wanted(ctx))
		return rc ? rc : cmd_call(ctx, req, reply);
	cmd_waitline_init(&w, ctx, 0);
	if (model)
		snprintf(w.model, sizeof(w.model), "%s", model);
	if ((rc = client_send(ctx->cl, req, err, sizeof(err))) < 0)
		return call_error(ctx, rc, err);
	for (;;) {
		rc = client_recv(ctx->cl, reply, cmd_waitline_timeout(&w), err, sizeof(err));
		if (rc == -PROTO_E_TIMEOUT || (rc == -PROTO_E_INVALID && reply->id != req->id)) {
			proto_msg_clear(reply);
			cmd_waitline_tick(&w);
			continue;
		}
		if (rc < 0 || is_reply(&w, req, reply))
			break;
	}
	cmd_waitline_end(&w);
	if (rc < 0)
		return call_error(ctx, rc, err);
	if (reply->type == PROTO_T_OK)
		return 0;
	int code = reply->u.error.code ? reply->u.error.code : PROTO_E_INTERNAL;
	return call_error(ctx, -code, reply->u.error.message ? reply->u.error.message
							    : proto_code_name(code));
}
