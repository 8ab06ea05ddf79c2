/*
 * cmd-output.c — how the CLI writes: diagnostics, colour, JSON and tables.
 *
 * DESIGN
 *   - Diagnostics go to stderr as "plot: message" (or "plot CMD: message"),
 *     data to stdout. -q silences cmd_info, never errors. With --json an
 *     error (usage errors included) is one line {"error":MSG,"command":CMD}
 *     on stderr instead; informational messages stay text.
 *   - Colour only when asked (--color always) or when the stream is a tty,
 *     NO_COLOR is unset or empty, and TERM is not "dumb" (auto).
 *   - JSON is written by a small streaming writer rather than built in
 *     memory: the shapes are flat and documented in plot(1), and streaming
 *     keeps `plot stats --watch --json` one object per line.
 *   - Tables are for people: aligned with a header on a tty; on a pipe the
 *     same rows are tab-separated without header, which scripts can cut.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd-impl.h"

/* An error under --json: one JSON object on stderr, for scripts that parse
 * what they get (plot(1), JSON OUTPUT). */
static void vmsg_json(struct plot_ctx *ctx, const char *fmt, va_list ap)
{
	char msg[4096];
	struct cmd_json j;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	cmd_json_init(&j, stderr);
	cmd_json_obj(&j);
	cmd_json_key(&j, "error");
	cmd_json_str(&j, msg);
	cmd_json_key(&j, "command");
	cmd_json_str(&j, ctx->cmd ? ctx->cmd->name : NULL);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

void cmd_vjson_error(struct plot_ctx *ctx, const char *fmt, va_list ap)
{
	vmsg_json(ctx, fmt, ap);
}

static void vmsg(struct plot_ctx *ctx, const char *kind, const char *fmt, va_list ap)
{
	if (kind && ctx && ctx->json) {
		vmsg_json(ctx, fmt, ap);
		return;
	}
	int color = kind && cmd_color_on(ctx, stderr);
	cmd_waitline_clear(); /* a message replaces the status line */
	fputs("plot", stderr);
	if (ctx && ctx->cmd)
		fprintf(stderr, " %s", ctx->cmd->name);
	fputs(": ", stderr);
	if (kind)
		fprintf(stderr, "%s%s:%s ", color ? "\033[1;31m" : "", kind, color ? "\033[0m" : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cmd_err(struct plot_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(ctx, "error", fmt, ap);
	va_end(ap);
}

void cmd_info(struct plot_ctx *ctx, const char *fmt, ...)
{
	if (ctx && ctx->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(ctx, NULL, fmt, ap);
	va_end(ap);
}

int cmd_is_tty(FILE *f)
{
	return isatty(fileno(f));
}

int cmd_write_out(struct plot_ctx *ctx, const void *data, size_t len)
{
	if ((len == 0 || fwrite(data, 1, len, stdout) == len) && fflush(stdout) == 0)
		return 0;
	if (errno == EPIPE)
		return CMD_EXIT_PIPE;
	cmd_err(ctx, "writing the output: %s", strerror(errno));
	return CMD_EXIT_FAIL;
}

int cmd_color_on(const struct plot_ctx *ctx, FILE *f)
{
	int mode = ctx ? ctx->color : CMD_COLOR_AUTO;
	if (mode == CMD_COLOR_ALWAYS)
		return 1;
	if (mode == CMD_COLOR_NEVER)
		return 0;
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	if (nc && *nc)
		return 0;
	if (term && !strcmp(term, "dumb"))
		return 0;
	return cmd_is_tty(f);
}

const char *cmd_state_color(const char *state)
{
	static const struct { const char *state, *sgr; } map[] = {
		{"queued", "\033[33m"}, {"running", "\033[32m"}, {"done", "\033[1;32m"},
		{"failed", "\033[31m"}, {"cancelled", "\033[35m"}, {"expired", "\033[31m"},
		{"timeout", "\033[31m"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(state, map[i].state))
			return map[i].sgr;
	return "";
}

const char *cmd_fmt_dur(char *buf, size_t len, double secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, len, "%.1fs", secs);
	else if (secs < 3600)
		snprintf(buf, len, "%dm%02ds", (int)secs / 60, (int)secs % 60);
	else
		snprintf(buf, len, "%dh%02dm", (int)(secs / 3600), (int)secs % 3600 / 60);
	return buf;
}

/* ---- JSON ---------------------------------------------------------------- */

void cmd_json_init(struct cmd_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/* Separator before a value: a comma unless first at its level or after a key. */
static void json_sep(struct cmd_json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->count[j->depth]++ > 0)
		fputc(',', j->f);
}

static void json_open(struct cmd_json *j, int c)
{
	json_sep(j);
	fputc(c, j->f);
	if (j->depth < CMD_JSON_DEPTH - 1)
		j->depth++;
	j->count[j->depth] = 0;
}

static void json_close(struct cmd_json *j, int c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void cmd_json_obj(struct cmd_json *j) { json_open(j, '{'); }
void cmd_json_obj_end(struct cmd_json *j) { json_close(j, '}'); }
void cmd_json_arr(struct cmd_json *j) { json_open(j, '['); }
void cmd_json_arr_end(struct cmd_json *j) { json_close(j, ']'); }

void cmd_json_key(struct cmd_json *j, const char *k)
{
	cmd_json_str(j, k);
	fputc(':', j->f);
	j->after_key = 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
		   : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
		return 0; /* overlong, or a UTF-16 surrogate */
	if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
		return 0;
	return len;
}

void cmd_json_strn(struct cmd_json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	json_sep(j);
	fputc('"', j->f);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			fprintf(j->f, "\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", j->f);
		} else if (c == '\t') {
			fputs("\\t", j->f);
		} else if (c == '\r') {
			fputs("\\r", j->f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(j->f, "\\u%04x", c);
		} else {
			size_t l = utf8_len(s + i, n - i);
			if (l == 0) {
				fputs("\\ufffd", j->f);
				i++;
				continue;
			}
			fwrite(s + i, 1, l, j->f);
			i += l;
			continue;
		}
		i++;
	}
	fputc('"', j->f);
}

void cmd_json_str(struct cmd_json *j, const char *s)
{
	if (!s) {
		cmd_json_null(j);
		return;
	}
	cmd_json_strn(j, s, strlen(s));
}

void cmd_json_u64(struct cmd_json *j, uint64_t v)
{
	json_sep(j);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void cmd_json_i64(struct cmd_json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->f, "%lld", (long long)v);
}

/* The shortest of %.15g and %.17g that reads back as v. */
static const char *shortest(char *buf, size_t len, double v)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
	return buf;
}

void cmd_json_dbl(struct cmd_json *j, double v)
{
	char buf[40];
	json_sep(j);
	if (v != v || v > 1e308 || v < -1e308)
		fputs("null", j->f); /* JSON has no NaN or infinity */
	else
		fputs(shortest(buf, sizeof(buf), v), j->f);
}

void cmd_json_bool(struct cmd_json *j, int v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->f);
}

void cmd_json_null(struct cmd_json *j)
{
	json_sep(j);
	fputs("null", j->f);
}

void cmd_json_end(struct cmd_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}

static void json_msgpack_key(struct cmd_json *j, const msgpack_object *k)
{
	if (k->type == MSGPACK_OBJECT_STR) {
		cmd_json_strn(j, k->via.str.ptr, k->via.str.size);
	} else {
		char buf[64];
		if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)k->via.u64);
		else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			snprintf(buf, sizeof(buf), "%lld", (long long)k->via.i64);
		else
			snprintf(buf, sizeof(buf), "?");
		cmd_json_str(j, buf);
	}
	fputc(':', j->f);
	j->after_key = 1;
}

void cmd_json_msgpack(struct cmd_json *j, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		cmd_json_null(j);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		cmd_json_bool(j, o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		cmd_json_u64(j, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		cmd_json_i64(j, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		cmd_json_dbl(j, o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		cmd_json_strn(j, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		cmd_json_strn(j, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		cmd_json_arr(j);
		for (uint32_t i = 0; i < o->via.array.size; i++)
			cmd_json_msgpack(j, &o->via.array.ptr[i]);
		cmd_json_arr_end(j);
		break;
	case MSGPACK_OBJECT_MAP:
		cmd_json_obj(j);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			json_msgpack_key(j, &o->via.map.ptr[i].key);
			cmd_json_msgpack(j, &o->via.map.ptr[i].val);
		}
		cmd_json_obj_end(j);
		break;
	default:
		cmd_json_null(j);
		break;
	}
}

/* ---- tables -------------------------------------------------------------- */

void cmd_table_init(struct cmd_table *t, int ncols, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > CMD_TABLE_COLS ? CMD_TABLE_COLS : ncols;
	for (int c = 0; c < t->ncols; c++)
		t->head[c] = head[c];
}

void cmd_table_add(struct cmd_table *t, const char *const *row)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));
		if (!cells)
			return; /* out of memory: the row is dropped, the rest prints */
		t->cells = cells;
		t->cap = cap;
	}
	for (int c = 0; c < t->ncols; c++) {
		char *s = strdup(row[c] ? row[c] : "");
		t->cells[t->rows * (size_t)t->ncols + (size_t)c] = s ? s : NULL;
	}
	t->rows++;
}

static const char *cell(const struct cmd_table *t, size_t r, int c)
{
	const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
	return s ? s : "";
}

static void print_aligned(struct plot_ctx *ctx, const struct cmd_table *t, FILE *f,
			  int state_col)
{
	size_t w[CMD_TABLE_COLS];
	int color = cmd_color_on(ctx, f);
	for (int c = 0; c < t->ncols; c++) {
		w[c] = strlen(t->head[c]);
		for (size_t r = 0; r < t->rows; r++)
			if (strlen(cell(t, r, c)) > w[c])
				w[c] = strlen(cell(t, r, c));
	}
	for (int c = 0; c < t->ncols; c++)
		fprintf(f, "%s%s%-*s%s", c ? "  " : "", color ? "\033[1m" : "",
			c == t->ncols - 1 ? 0 : (int)w[c], t->head[c], color ? "\033[0m" : "");
	fputc('\n', f);
	for (size_t r = 0; r < t->rows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = cell(t, r, c);
			int paint = color && c == state_col;
			fprintf(f, "%s%s%-*s%s", c ? "  " : "", paint ? cmd_state_color(s) : "",
				c == t->ncols - 1 ? 0 : (int)w[c], s, paint ? "\033[0m" : "");
		}
		fputc('\n', f);
	}
}

void cmd_table_print(struct plot_ctx *ctx, struct cmd_table *t, FILE *f, int state_col)
{
	if (cmd_is_tty(f)) {
		print_aligned(ctx, t, f, state_col);
		return;
	}
	for (size_t r = 0; r < t->rows; r++)
		for (int c = 0; c < t->ncols; c++)
			fprintf(f, "%s%c", cell(t, r, c), c == t->ncols - 1 ? '\n' : '\t');
}

void cmd_table_free(struct cmd_table *t)
{
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
