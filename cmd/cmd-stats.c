/*
 * cmd-stats.c — `plot stats [-m M] [--watch SECS] [--prometheus]`.
 *
 * Three renderings of one stats reply: a table for people (compact, fitting
 * 80 columns, or with --wide every counter and figure), --json with the
 * key names fixed by plot(1), and --prometheus in the text exposition
 * format (version 0.0.4) for a node_exporter textfile collector. The
 * counters and gauges are one table (proto_stat_fields, lib/proto/
 * proto-stats.c, which also writes the Prometheus text that plotd's
 * GET /metrics serves), so the JSON keys and the metric names cannot
 * disagree about what exists; every JSON key of a model is one walk
 * there (proto_stats_model_walk), which plotd's GET /v1/queues renders
 * too.
 *
 * Unlimited max_units / max_queue_depth are null in JSON, "unlimited" in
 * the table and +Inf in Prometheus.
 *
 * Models with the llm executor add engine figures (tok/s, batch, KV blocks,
 * TTFT / ITL percentiles): a second table (with the queue wait of every
 * model), JSON keys that are null for other models (so every object has the
 * same keys), and Prometheus series labelled only for llm models.
 */
#include <stddef.h>
#include <string.h>

#include "cmd-impl.h"
#include "plot/pool.h"

static const struct plot_opt stats_opts[] = {
	{"model", 'm', 1, "M", "only model M", 'm'},
	{"watch", 0, 1, "SECS", "repeat every SECS seconds (0.1..86400) until interrupted", CMD_OPT_WATCH},
	{"prometheus", 0, 0, NULL, "print the Prometheus text exposition format", CMD_OPT_PROMETHEUS},
	{"wide", 0, 0, NULL, "every counter and engine figure (wider than 80 columns)", CMD_OPT_WIDE},
	{NULL, 0, 0, NULL, NULL, 0},
};

#define UNLIMITED UINT64_MAX

/* One key of the walk (proto_stats_model_walk) as JSON. */
static void json_visit(void *ctx, const struct proto_stat_val *v)
{
	struct cmd_json *j = ctx;
	if (v->kind == PROTO_SV_END) {
		cmd_json_obj_end(j);
		return;
	}
	cmd_json_key(j, v->key);
	switch (v->kind) {
	case PROTO_SV_U64: cmd_json_u64(j, v->u); break;
	case PROTO_SV_DBL: cmd_json_dbl(j, v->d); break;
	case PROTO_SV_STR: cmd_json_str(j, v->s); break;
	case PROTO_SV_OBJ: cmd_json_obj(j); break;
	default: cmd_json_null(j); break;
	}
}

static void json_model(struct cmd_json *j, const struct proto_model_stats *m)
{
	cmd_json_obj(j);
	cmd_json_key(j, "name");
	cmd_json_str(j, m->name);
	proto_stats_model_walk(m, json_visit, j);
	cmd_json_obj_end(j);
}

/* The shared queue (postgres models): JSON arrays "shared" and "daemons",
 * present only when plotd sent them. */
static void json_shared(struct cmd_json *j, const struct proto_stats *s)
{
	if (!s->n_shared && !s->n_daemons)
		return;
	cmd_json_key(j, "shared");
	cmd_json_arr(j);
	for (uint32_t i = 0; i < s->n_shared; i++) {
		const struct proto_shared_stats *m = &s->shared[i];
		cmd_json_obj(j);
		cmd_json_key(j, "model");
		cmd_json_str(j, m->model ? m->model : "");
		cmd_json_key(j, "queued");
		cmd_json_u64(j, m->queued);
		cmd_json_key(j, "running");
		cmd_json_u64(j, m->running);
		cmd_json_key(j, "queued_units");
		cmd_json_u64(j, m->queued_units);
		cmd_json_key(j, "running_units");
		cmd_json_u64(j, m->running_units);
		cmd_json_obj_end(j);
	}
	cmd_json_arr_end(j);
	cmd_json_key(j, "daemons");
	cmd_json_arr(j);
	for (uint32_t i = 0; i < s->n_daemons; i++) {
		const struct proto_daemon_share *d = &s->daemons[i];
		cmd_json_obj(j);
		cmd_json_key(j, "name");
		cmd_json_str(j, d->name ? d->name : "");
		cmd_json_key(j, "units");
		cmd_json_u64(j, d->units);
		cmd_json_key(j, "running");
		cmd_json_u64(j, d->running);
		cmd_json_key(j, "holding");
		cmd_json_u64(j, d->holding);
		cmd_json_key(j, "seen_ms");
		cmd_json_u64(j, d->seen_ms);
		cmd_json_obj_end(j);
	}
	cmd_json_arr_end(j);
}

static void print_json(const struct proto_stats *s)
{
	struct cmd_json j;
	cmd_json_init(&j, stdout);
	cmd_json_obj(&j);
	cmd_json_key(&j, "models");
	cmd_json_arr(&j);
	for (uint32_t i = 0; i < s->n_models; i++)
		json_model(&j, &s->models[i]);
	cmd_json_arr_end(&j);
	cmd_json_key(&j, "uptime");
	cmd_json_dbl(&j, s->uptime_secs);
	cmd_json_key(&j, "clients");
	cmd_json_u64(&j, s->clients);
	cmd_json_key(&j, "rss_bytes");
	cmd_json_u64(&j, s->rss_bytes);
	json_shared(&j, s);
	cmd_json_obj_end(&j);
	cmd_json_end(&j);
}

static const char *u64_or(char *buf, size_t len, uint64_t v, const char *unlimited)
{
	if (v == UNLIMITED)
		return unlimited;
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static void table_row(struct cmd_table *t, const struct proto_model_stats *m)
{
	char c[12][48], a[24], b[24];
	snprintf(c[0], 48, "%llu/%s", (unsigned long long)m->queued,
		 u64_or(a, sizeof(a), m->max_queue_depth, "unlimited"));
	snprintf(c[1], 48, "%llu/%s", (unsigned long long)m->running,
		 u64_or(a, sizeof(a), m->running_limit, "unlimited"));
	snprintf(c[2], 48, "%llu/%s", (unsigned long long)m->used_units,
		 u64_or(b, sizeof(b), m->max_units, "unlimited"));
	const uint64_t rest[] = {m->threads, m->submitted, m->completed, m->failed,
				 m->cancelled, m->expired, m->timed_out, m->rejected};
	for (int i = 0; i < 8; i++)
		snprintf(c[3 + i], 48, "%llu", (unsigned long long)rest[i]);
	const char *row[12] = {m->name};
	for (int i = 0; i < 11; i++)
		row[i + 1] = c[i];
	cmd_table_add(t, row);
}

/* "a/b" of two latencies in ms, or "-" for a model without them. */
static void ms_pair(char *buf, size_t len, int have, double a, double b)
{
	if (have)
		snprintf(buf, len, "%.1f/%.1f", a, b);
	else
		snprintf(buf, len, "-");
}

static void llm_row(struct cmd_table *t, const struct proto_model_stats *m)
{
	char c[9][48], dev[160];
	int l = m->has_engine;
	snprintf(c[0], 48, l ? "%.1f" : "-", m->prefill_tps);
	snprintf(c[1], 48, l ? "%.1f" : "-", m->decode_tps);
	snprintf(c[2], 48, l ? "%llu" : "-", (unsigned long long)m->batch_size);
	if (l)
		snprintf(c[3], 48, "%llu/%llu", (unsigned long long)m->kv_blocks_used,
			 (unsigned long long)m->kv_blocks_total);
	else
		snprintf(c[3], 48, "-");
	ms_pair(c[4], 48, l, m->ttft_p50_ms, m->ttft_p99_ms);
	ms_pair(c[5], 48, l, m->itl_p50_ms, m->itl_p99_ms);
	ms_pair(c[6], 48, 1, m->queue_wait_p50_ms, m->queue_wait_p99_ms);
	if (l && m->mem_bytes)
		cmd_fmt_bytes(c[8], 48, m->mem_bytes);
	else
		snprintf(c[8], 48, "-");
	const char *row[10] = {m->name,
			       cmd_fmt_device(dev, sizeof(dev), m->device, m->device_name,
					      m->device_total_bytes, m->device_free_bytes),
			       c[8], c[0], c[1], c[2], c[3], c[4], c[5], c[6]};
	cmd_table_add(t, row);
}

/* Engine figures and latencies (ms, p50/p99), after a blank line. */
static void print_llm_table(struct plot_ctx *ctx, const struct proto_stats *s)
{
	static const char *const head[] = {"MODEL", "DEVICE", "DEVICE_MEM", "PREFILL_TOK/S", "DECODE_TOK/S", "BATCH",
		"KV_BLOCKS", "TTFT_MS_P50/P99", "ITL_MS_P50/P99", "QUEUE_WAIT_MS_P50/P99"};
	struct cmd_table t;
	putchar('\n');
	cmd_table_init(&t, 10, head);
	for (uint32_t i = 0; i < s->n_models; i++)
		llm_row(&t, &s->models[i]);
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

/* "n" or "n/limit" (no limit: just n). */
static const char *of(char *buf, size_t len, uint64_t n, uint64_t limit)
{
	if (limit == UNLIMITED)
		snprintf(buf, len, "%llu", (unsigned long long)n);
	else
		snprintf(buf, len, "%llu/%llu", (unsigned long long)n, (unsigned long long)limit);
	return buf;
}

static void compact_row(struct cmd_table *t, const struct proto_model_stats *m)
{
	char c[9][32];
	int l = m->has_engine;
	snprintf(c[0], 32, "%llu", (unsigned long long)m->queued);
	of(c[1], 32, m->running, m->running_limit);
	of(c[2], 32, m->used_units, m->max_units);
	snprintf(c[3], 32, "%llu", (unsigned long long)m->completed);
	snprintf(c[4], 32, "%llu", (unsigned long long)(m->failed + m->expired + m->timed_out));
	snprintf(c[5], 32, "%llu", (unsigned long long)m->cancelled);
	snprintf(c[6], 32, l ? "%.1f" : "-", m->decode_tps);
	snprintf(c[7], 32, l ? "%llu" : "-", (unsigned long long)m->batch_size);
	ms_pair(c[8], 32, 1, m->queue_wait_p50_ms, m->queue_wait_p99_ms);
	const char *row[10] = {m->name, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]};
	cmd_table_add(t, row);
}

/* plotd's memory: resident; what its models hold (weights and KV cache),
 * and of that the KV cache; then per model on a GPU, what it holds there
 * and the device's memory free and in all. */
static void print_memory(const struct proto_stats *s)
{
	char a[32], b[32], c[32];
	uint64_t kv = 0, mem = 0;
	for (uint32_t i = 0; i < s->n_models; i++) {
		kv += s->models[i].kv_bytes;
		mem += s->models[i].mem_bytes;
	}
	printf("\nmemory: %s resident, models hold %s (%s of KV cache)\n",
	       s->rss_bytes ? cmd_fmt_bytes(a, sizeof(a), s->rss_bytes) : "?",
	       cmd_fmt_bytes(b, sizeof(b), mem), cmd_fmt_bytes(c, sizeof(c), kv));
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct proto_model_stats *m = &s->models[i];
		char dev[160];
		if (!m->device_name)
			continue;
		printf("device: %s holds %s on %s\n", m->name, cmd_fmt_bytes(a, sizeof(a), m->mem_bytes),
		       cmd_fmt_device(dev, sizeof(dev), m->device, m->device_name,
				      m->device_total_bytes, m->device_free_bytes));
	}
}

/* The shared queue of postgres models (the whole database) and each
 * daemon's share, after the local tables. */
static void print_shared(struct plot_ctx *ctx, const struct proto_stats *s)
{
	static const char *const mh[] = {"SHARED", "QUEUED", "RUNNING", "QUEUED_UNITS",
		"RUNNING_UNITS"};
	static const char *const dh[] = {"DAEMON", "UNITS", "RUNNING", "HOLDING", "SEEN_MS"};
	struct cmd_table t;
	char c[4][32];

	if (!s->n_shared && !s->n_daemons)
		return;
	printf("\n");
	cmd_table_init(&t, 5, mh);
	for (uint32_t i = 0; i < s->n_shared; i++) {
		const struct proto_shared_stats *m = &s->shared[i];
		snprintf(c[0], 32, "%llu", (unsigned long long)m->queued);
		snprintf(c[1], 32, "%llu", (unsigned long long)m->running);
		snprintf(c[2], 32, "%llu", (unsigned long long)m->queued_units);
		snprintf(c[3], 32, "%llu", (unsigned long long)m->running_units);
		cmd_table_add(&t, (const char *[]){ m->model ? m->model : "", c[0], c[1], c[2], c[3] });
	}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
	printf("\n");
	cmd_table_init(&t, 5, dh);
	for (uint32_t i = 0; i < s->n_daemons; i++) {
		const struct proto_daemon_share *d = &s->daemons[i];
		snprintf(c[0], 32, "%llu", (unsigned long long)d->units);
		snprintf(c[1], 32, "%llu", (unsigned long long)d->running);
		snprintf(c[2], 32, "%llu", (unsigned long long)d->holding);
		snprintf(c[3], 32, "%llu", (unsigned long long)d->seen_ms);
		cmd_table_add(&t, (const char *[]){ d->name ? d->name : "", c[0], c[1], c[2], c[3] });
	}
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
}

/* The default: what fits 80 columns (model names up to 14 characters).
 * FAIL counts failed, expired and timed out; TOK/S is decoding; WAIT is the
 * queue wait, ms p50/p99. */
static void print_compact(struct plot_ctx *ctx, const struct proto_stats *s)
{
	static const char *const head[] = {"MODEL", "QUEUE", "RUN", "UNITS", "DONE", "FAIL",
		"CANC", "TOK/S", "BATCH", "WAIT_P50/P99"};
	struct cmd_table t;
	cmd_table_init(&t, 10, head);
	for (uint32_t i = 0; i < s->n_models; i++)
		compact_row(&t, &s->models[i]);
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
	print_shared(ctx, s);
	print_memory(s);
}

static void print_table(struct plot_ctx *ctx, const struct proto_stats *s)
{
	static const char *const head[] = {"MODEL", "QUEUED", "RUNNING", "UNITS", "THREADS",
		"SUBMITTED", "COMPLETED", "FAILED", "CANCELLED", "EXPIRED", "TIMED_OUT", "REJECTED"};
	struct cmd_table t;
	cmd_table_init(&t, 12, head);
	for (uint32_t i = 0; i < s->n_models; i++)
		table_row(&t, &s->models[i]);
	cmd_table_print(ctx, &t, stdout, -1);
	cmd_table_free(&t);
	print_llm_table(ctx, s);
	print_shared(ctx, s);
	print_memory(s);
}

struct stats_args {
	const char *model;
	int prometheus, wide;
};

static int stats_round(struct plot_ctx *ctx, void *arg)
{
	const struct stats_args *a = arg;
	struct proto_msg req, reply;
	proto_msg_init(&req, PROTO_T_STATS, 0);
	req.u.filter.model = a->model;
	memset(&reply, 0, sizeof(reply));
	int rc = cmd_call(ctx, &req, &reply);
	if (rc == 0) {
		if (a->prometheus)
			proto_stats_prometheus(&reply.u.stats, stdout);
		else if (ctx->json)
			print_json(&reply.u.stats);
		else if (a->wide)
			print_table(ctx, &reply.u.stats);
		else
			print_compact(ctx, &reply.u.stats);
	}
	proto_msg_clear(&reply);
	return rc;
}

static int stats_exec(struct plot_ctx *ctx, int argc, char **argv)
{
	struct cmd_parser p;
	struct stats_args a = {0};
	const char *arg;
	double watch = 0;
	int r;
	cmd_parser_init(&p, ctx, ctx->cmd, argc, argv);
	while ((r = cmd_parser_next(&p, &arg)) > 0) {
		if (r == 'm')
			a.model = arg;
		else if (r == CMD_OPT_PROMETHEUS)
			a.prometheus = 1;
		else if (r == CMD_OPT_WIDE)
			a.wide = 1;
		else if (r == CMD_OPT_WATCH && cmd_parse_watch(ctx, arg, &watch))
			return CMD_EXIT_USAGE;
	}
	if (r < 0)
		return CMD_PARSE_EXIT(r);
	if (cmd_parser_optind(&p) != argc)
		return cmd_usage_error(ctx, "takes no arguments");
	if (a.prometheus && ctx->json)
		return cmd_usage_error(ctx, "--prometheus and --json exclude each other");
	return cmd_watch(ctx, watch, stats_round, &a);
}

const struct plot_cmd cmd_stats_entry = {
	.name = "stats",
	.args = "",
	.summary = "Show each model's pool statistics.",
	.flags = PLOT_CMD_NEEDS_DAEMON,
	.opts = stats_opts,
	.exec = stats_exec,
};
