/*
 * proto-stats.c — the stats reply's figures as one table, and their
 * Prometheus text exposition (format 0.0.4). `plot stats --prometheus`
 * (cmd-stats.c) and plotd's GET /metrics (daemon/http.c) both write it
 * from here, so the two cannot differ. Writes to a caller's FILE (stdout,
 * or an open_memstream buffer); never prints on its own.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "plot/pool.h"
#include "plot/proto.h"

#define UNLIMITED UINT64_MAX

const struct proto_stat_field proto_stat_fields[] = {
#define F(k, c, n, h) {#k, offsetof(struct proto_model_stats, k), c, n, h}
	F(queued, 0, 0, "Tasks waiting in the queue."),
	F(running, 0, 0, "Tasks running now."),
	F(used_units, 0, 0, "Resource units reserved by running tasks."),
	F(max_units, 0, 1, "Resource unit budget (+Inf: unlimited)."),
	F(max_queue_depth, 0, 1, "Queue length at which submits are rejected."),
	F(threads, 0, 0, "Compute threads of the executor (0: its default)."),
	F(max_running, 0, 1, "Configured cap on tasks running at once (+Inf: none)."),
	F(running_limit, 0, 1, "Tasks that may run at once now: min(max_running, executor capacity)."),
	F(submitted, 1, 0, "Tasks accepted into the queue."),
	F(completed, 1, 0, "Tasks that finished successfully."),
	F(failed, 1, 0, "Tasks that failed."),
	F(cancelled, 1, 0, "Tasks cancelled."),
	F(expired, 1, 0, "Tasks whose deadline passed while queued."),
	F(timed_out, 1, 0, "Tasks whose deadline passed while running."),
	F(rejected, 1, 0, "Submits rejected (queue full or over capacity)."),
	F(rejected_queue_full, 1, 0, "Submits rejected because the queue was full."),
	F(rejected_capacity, 1, 0, "Submits rejected because the cost exceeded max_units."),
	F(mailbox, 0, 0, "Finished tasks kept for their results."),
	F(timeout_secs, 0, 0, "Default task timeout in seconds (0: none)."),
	F(retention_secs, 0, 0, "How long finished tasks are kept, seconds."),
#undef F
};
const size_t proto_stat_n_fields = sizeof(proto_stat_fields) / sizeof(proto_stat_fields[0]);

uint64_t proto_stat_value(const struct proto_model_stats *m, const struct proto_stat_field *f)
{
	uint64_t v;
	memcpy(&v, (const char *)m + f->off, sizeof(v));
	return v;
}


/* A label value with \, " and newline escaped, as the format requires. */
static void prom_label(FILE *o, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(o, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", o);
		else
			fputc(*s, o);
	}
}

static void prom_field(FILE *o, const struct proto_stats *s, const struct proto_stat_field *f)
{
	const char *suffix = f->counter ? "_total" : "";
	fprintf(o, "# HELP plot_%s%s %s\n# TYPE plot_%s%s %s\n", f->key, suffix, f->help, f->key,
	       suffix, f->counter ? "counter" : "gauge");
	for (uint32_t i = 0; i < s->n_models; i++) {
		uint64_t v = proto_stat_value(&s->models[i], f);
		fprintf(o, "plot_%s%s{model=\"", f->key, suffix);
		prom_label(o, s->models[i].name);
		if (f->nullable && v == UNLIMITED)
			fprintf(o, "\"} +Inf\n");
		else
			fprintf(o, "\"} %llu\n", (unsigned long long)v);
	}
}

/* One llm gauge: its header, then a sample per llm model. */
static void prom_llm_gauge(FILE *o, const struct proto_stats *s, const char *name, const char *help,
			   size_t off, int is_u64, const char *quantile, double scale)
{
	if (help)
		fprintf(o, "# HELP plot_%s %s\n# TYPE plot_%s gauge\n", name, help, name);
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct proto_model_stats *m = &s->models[i];
		const char *p = (const char *)m + off;
		double v;
		if (!m->has_engine)
			continue;
		if (is_u64) {
			uint64_t u;
			memcpy(&u, p, sizeof(u));
			v = (double)u;
		} else {
			memcpy(&v, p, sizeof(v));
		}
		fprintf(o, "plot_%s{model=\"", name);
		prom_label(o, m->name);
		if (quantile)
			fprintf(o, "\",quantile=\"%s", quantile);
		fprintf(o, "\"} %.6g\n", v * scale);
	}
}

static void prom_llm(FILE *o, const struct proto_stats *s)
{
#define O(m) offsetof(struct proto_model_stats, m)
	prom_llm_gauge(o, s, "prefill_tokens_per_second", "Prompt tokens per second, last 10 s.",
		       O(prefill_tps), 0, NULL, 1);
	prom_llm_gauge(o, s, "decode_tokens_per_second", "Generated tokens per second, last 10 s.",
		       O(decode_tps), 0, NULL, 1);
	prom_llm_gauge(o, s, "batch_size", "Sequences in the engine's last step.", O(batch_size), 1,
		       NULL, 1);
	prom_llm_gauge(o, s, "kv_blocks_used", "KV-cache blocks held by running sequences.",
		       O(kv_blocks_used), 1, NULL, 1);
	prom_llm_gauge(o, s, "kv_blocks_total", "KV-cache blocks the budget holds.",
		       O(kv_blocks_total), 1, NULL, 1);
	prom_llm_gauge(o, s, "ttft_seconds", "Time to first token of recent requests.",
		       O(ttft_p50_ms), 0, "0.5", 1e-3);
	prom_llm_gauge(o, s, "ttft_seconds", NULL, O(ttft_p99_ms), 0, "0.99", 1e-3);
	prom_llm_gauge(o, s, "itl_seconds", "Inter-token latency of recent tokens.",
		       O(itl_p50_ms), 0, "0.5", 1e-3);
	prom_llm_gauge(o, s, "itl_seconds", NULL, O(itl_p99_ms), 0, "0.99", 1e-3);
#undef O
}

int proto_stats_prometheus(const struct proto_stats *s, FILE *o)
{
	for (size_t i = 0; i < proto_stat_n_fields; i++)
		prom_field(o, s, &proto_stat_fields[i]);
	fprintf(o, "# HELP plot_queued_by_priority Tasks waiting in the queue, by priority.\n"
	       "# TYPE plot_queued_by_priority gauge\n");
	for (uint32_t i = 0; i < s->n_models; i++)
		for (int p = 0; p < POOL_PRIO_COUNT; p++) {
			fprintf(o, "plot_queued_by_priority{model=\"");
			prom_label(o, s->models[i].name);
			fprintf(o, "\",priority=\"%s\"} %llu\n", pool_prio_name(p),
			       (unsigned long long)s->models[i].queued_by_prio[p]);
		}
	fprintf(o, "# HELP plot_queue_wait_seconds Queue wait of recent admissions.\n"
	       "# TYPE plot_queue_wait_seconds gauge\n");
	for (uint32_t i = 0; i < s->n_models; i++) {
		const struct proto_model_stats *m = &s->models[i];
		fprintf(o, "plot_queue_wait_seconds{model=\"");
		prom_label(o, m->name);
		fprintf(o, "\",quantile=\"0.5\"} %.6f\n", m->queue_wait_p50_ms / 1000);
		fprintf(o, "plot_queue_wait_seconds{model=\"");
		prom_label(o, m->name);
		fprintf(o, "\",quantile=\"0.99\"} %.6f\n", m->queue_wait_p99_ms / 1000);
	}
	prom_llm(o, s);
	fprintf(o, "# HELP plot_uptime_seconds Seconds since plotd started.\n"
	       "# TYPE plot_uptime_seconds gauge\nplot_uptime_seconds %.3f\n", s->uptime_secs);
	return ferror(o) ? -1 : 0;
}
