/*
 * cfg-table.c — THE settings table of plot.yaml, and everything that reads
 * one setting: lookup by name or short key, the expected-form text used in
 * errors, parsing a scalar into a field and formatting it back, defaults.
 *
 * Invariants: within a scope, settings sharing a dotted prefix are
 * contiguous (the dump and the man page group by prefix); every default
 * parses with its own setting (checked by test-cfg); at most 32 lot
 * settings (one bit each in cfg_model.over_mask).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot/pool.h"
#include "cfg/cfg-impl.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const backends[] = { "memory", "sqlite", "postgres", NULL }; /* enum cfg_backend */
static const char *const syncs[] = { "normal", "full", NULL };
static const char *const restarts[] = { "requeue", "fail", NULL };
static const char *const executors[] = { "synthetic", "llm", NULL };

#define YEAR 31536000.0
#define ROOT(n, t, fl, lo, hi, def, ch, m, doc) \
	{ n, NULL, CFG_SCOPE_ROOT, t, fl, lo, hi, def, ch, offsetof(struct cfg, m), -1, 1, doc }
#define LOT(n, k, t, fl, lo, hi, def, ch, m, lim, sc, doc) \
	{ n, k, CFG_SCOPE_LOT, t, fl, lo, hi, def, ch, offsetof(struct cfg_lot, m), lim, sc, doc }
#define MODEL(n, t, fl, def, ch, m, doc) \
	{ n, NULL, CFG_SCOPE_MODEL, t, fl, 0, 0, def, ch, offsetof(struct cfg_model, m), -1, 1, doc }
#define PARAM(n, t, lo, hi, def, m, doc) \
	{ n, NULL, CFG_SCOPE_PARAMS, t, 0, lo, hi, def, NULL, offsetof(struct cfg_params, m), -1, 1, doc }
/* llm executor params (area: exec): flags and choices too */
#define PARAMX(n, t, fl, lo, hi, def, ch, m, doc) \
	{ n, NULL, CFG_SCOPE_PARAMS, t, fl, lo, hi, def, ch, offsetof(struct cfg_params, m), -1, 1, doc }

static const char *const kv_types[] = { "f16", "f32", NULL }; /* enum llm_kv_type order */

static const struct cfg_setting settings[] = {
	LOT("pool.max_running", "max_running", CFG_T_UINT, CFG_F_RUNTIME | CFG_F_NULLABLE, 1,
	    1000000, "null", NULL, max_running, POOL_LIMIT_MAX_RUNNING, 1,
	    "How many tasks may run at once (llm: sequences in the batch). The pool runs at "
	    "most this many and at most what the executor can (llm: max_num_seqs; synthetic: "
	    "no bound); null means as many as the executor can."),
	LOT("pool.threads", "threads", CFG_T_UINT, CFG_F_RUNTIME, 0, 1024, "0", NULL, threads,
	    POOL_LIMIT_THREADS, 1,
	    "Compute threads the executor uses; 0 means its default (llm: one per online core; "
	    "synthetic: 1 driver thread). It does not change how many tasks run at once."),
	LOT("limits.max_units", "max_units", CFG_T_UINT, CFG_F_RUNTIME | CFG_F_NULLABLE, 1, 1e12,
	    "null", NULL, max_units, POOL_LIMIT_MAX_UNITS, 1,
	    "Resource units (KV-cache blocks) the running tasks may hold together; null means "
	    "no bound. A task costing more is rejected with CAPACITY."),
	LOT("limits.max_queue_depth", "max_queue_depth", CFG_T_UINT, CFG_F_RUNTIME, 0, 1000000,
	    "1000", NULL, max_queue_depth, POOL_LIMIT_MAX_QUEUE_DEPTH, 1,
	    "Tasks that may wait in the queue; a submit beyond it is rejected with QUEUE_FULL."),
	LOT("limits.timeout_secs", "timeout_secs", CFG_T_UINT, CFG_F_RUNTIME, 0, YEAR, "0",
	    NULL, timeout_secs, POOL_LIMIT_TIMEOUT_NS, 1000000000ull,
	    "Default deadline of a task without one, in seconds from submit; 0 means none "
	    "(a task runs until it ends or is cancelled)."),
	LOT("limits.max_units_per_user", "max_units_per_user", CFG_T_UINT,
	    CFG_F_RUNTIME | CFG_F_NULLABLE, 1, 1e12, "null", NULL, max_units_per_user,
	    POOL_LIMIT_MAX_USER_UNITS, 1,
	    "Units one user (other than the daemon's owner) may have queued and running "
	    "together; a submit past it gets QUEUE_FULL (retry later). null means no bound."),
	LOT("limits.max_units_owner", "max_units_owner", CFG_T_UINT,
	    CFG_F_RUNTIME | CFG_F_NULLABLE, 1, 1e12, "null", NULL, max_units_owner,
	    POOL_LIMIT_MAX_OWNER_UNITS, 1,
	    "The same bound for the daemon's owner; null (the default) means none."),
	LOT("limits.priority_aging_secs", "priority_aging_secs", CFG_T_UINT, CFG_F_RUNTIME, 0,
	    YEAR, "0", NULL, priority_aging_secs, POOL_LIMIT_AGING_NS, 1000000000ull,
	    "A task queued at low or normal priority for this many seconds at its level rises "
	    "one level (up to high), so steady load cannot starve it; 0 (the default) means "
	    "no aging."),
	LOT("queue.backend", NULL, CFG_T_ENUM, 0, 0, 0, "sqlite", backends, queue_backend, -1, 1,
	    "Where queued tasks are kept: sqlite (one database file for the whole daemon, "
	    "see store.path; they survive a restart), memory (lost when plotd stops) or "
	    "postgres (one queue shared by every plotd on the database of postgres.url: "
	    "each claims what fits its own units). "
	    "The seeds' yaque and file are not accepted: use sqlite."),
	LOT("mailbox.backend", NULL, CFG_T_ENUM, 0, 0, 0, "sqlite", backends, mailbox_backend,
	    -1, 1, "Where finished tasks and their output are kept; must be the same as "
	    "queue.backend."),
	LOT("mailbox.retention_secs", "retention_secs", CFG_T_UINT, CFG_F_RUNTIME, 0, YEAR,
	    "3600", NULL, retention_secs, POOL_LIMIT_RETENTION_NS, 1000000000ull,
	    "How long a finished task stays readable, in seconds."),
	LOT("mailbox.retention_tasks", "retention_tasks", CFG_T_UINT, CFG_F_RUNTIME, 0, 1e9,
	    "100000", NULL, retention_tasks, POOL_LIMIT_RETENTION_TASKS, 1,
	    "Finished tasks kept at most; past it the oldest go first, before their "
	    "retention_secs are up. 0 means no bound."),
	LOT("mailbox.retention_bytes", "retention_bytes", CFG_T_UINT, CFG_F_RUNTIME, 0, 1e15,
	    "268435456", NULL, retention_bytes, POOL_LIMIT_RETENTION_BYTES, 1,
	    "Output bytes the finished tasks may hold together; past it the oldest go "
	    "first. 0 means no bound."),
	LOT("generate.max_tokens", NULL, CFG_T_UINT, CFG_F_NULLABLE, 1, 1048576, "null", NULL,
	    gen_max_tokens, -1, 1,
	    "Tokens a task generates at most when its request does not say; null means until "
	    "the end of the text or of the context (llm: or of the KV cache). An llm task "
	    "reserves KV blocks for its prompt plus this many tokens when it starts, so "
	    "null lets one task hold up to the whole context: set a number to run more "
	    "tasks at once."),
	LOT("generate.temperature", NULL, CFG_T_DOUBLE, 0, 0, 100, "0.8", NULL, gen_temperature,
	    -1, 1, "Sampling temperature when a request does not say; 0 means greedy."),
	LOT("generate.top_k", NULL, CFG_T_UINT, 0, 0, 1000000, "40", NULL, gen_top_k, -1, 1,
	    "Keep the k most likely tokens when a request does not say; 0 means off."),
	LOT("generate.top_p", NULL, CFG_T_DOUBLE, 0, 0.000001, 1, "0.95", NULL, gen_top_p, -1, 1,
	    "Nucleus sampling mass when a request does not say; 1 means off."),
	LOT("generate.min_p", NULL, CFG_T_DOUBLE, 0, 0, 1, "0.05", NULL, gen_min_p, -1, 1,
	    "Drop tokens less likely than min_p times the best when a request does not say; "
	    "0 means off."),
	ROOT("daemon.socket", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, daemon.socket,
	     "Socket path; null means the usual search: $PLOT_SOCKET, "
	     "$XDG_RUNTIME_DIR/plot/plotd.sock, /tmp/plot-$UID/plotd.sock."),
	ROOT("daemon.log_level", CFG_T_ENUM, CFG_F_RUNTIME, 0, 0, "info", log_levels,
	     daemon.log_level, "Least severe log level written."),
	ROOT("daemon.log_file", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, daemon.log_file,
	     "Log file; null means standard error."),
	ROOT("daemon.pid_file", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, daemon.pid_file,
	     "File the daemon writes its pid to; null means none."),
	ROOT("daemon.allow_users", CFG_T_STRLIST, CFG_F_RUNTIME, 0, 0, "[]", NULL,
	     daemon.allow_users,
	     "User names (or numeric uids) besides the daemon's own user and root that may "
	     "submit tasks and read their own."),
	ROOT("daemon.allow_groups", CFG_T_STRLIST, CFG_F_RUNTIME, 0, 0, "[]", NULL,
	     daemon.allow_groups, "Groups (names or gids) whose members may connect, as allow_users."),
	ROOT("daemon.frame_timeout_secs", CFG_T_UINT, CFG_F_RUNTIME, 0, 3600, "10", NULL,
	     daemon.frame_timeout_secs,
	     "Seconds a client may take to finish sending a frame it started; then it gets a "
	     "TIMEOUT error and is closed. 0 means no bound."),
	ROOT("daemon.max_client_output", CFG_T_UINT, CFG_F_RUNTIME, 16384, 1073741824.0, "4194304",
	     NULL, daemon.max_client_output,
	     "Bytes of replies and stream events one client may have pending: past it plotd "
	     "stops reading its requests and drops it as a stream subscriber "
	     "(--max-client-output overrides)."),
	ROOT("daemon.max_input_mb", CFG_T_UINT, CFG_F_RUNTIME, 1, 1048576, "64", NULL,
	     daemon.max_input_mb,
	     "MiB of request bytes all connections together may hold while their frames "
	     "arrive; a connection whose frame would pass it gets TOO_LARGE and is closed."),
	ROOT("daemon.max_output_mb", CFG_T_UINT, CFG_F_RUNTIME, 1, 1048576, "256", NULL,
	     daemon.max_output_mb,
	     "MiB of replies and stream events all connections together may have pending; "
	     "past it, requests wait and a stream subscriber that would add more is dropped."),
	ROOT("daemon.http", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, daemon.http,
	     "HOST:PORT of the HTTP front (the OpenAI-compatible API, /metrics; plotd(8)); "
	     "null means off. Use a loopback address unless a token is set; port 0 picks one."),
	ROOT("daemon.http_token", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL,
	     daemon.http_token, "Bearer token every HTTP request but GET /health must carry; "
	     "null means none. plot config shows it to every user of the socket: prefer "
	     "http_token_file."),
	ROOT("daemon.http_token_file", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL,
	     daemon.http_token_file, "File whose first line is the bearer token (instead of "
	     "http_token, which it overrides); null means none."),
	ROOT("daemon.http_max_body", CFG_T_UINT, 0, 1024, 1073741824, "1048576", NULL,
	     daemon.http_max_body, "Largest HTTP request body, bytes; larger gets 413."),
	ROOT("daemon.http_max_header", CFG_T_UINT, 0, 4096, 16777216, "32768", NULL,
	     daemon.http_max_header, "Memory for one HTTP connection's request line and "
	     "headers, bytes; larger requests are refused."),
	ROOT("daemon.http_max_connections", CFG_T_UINT, 0, 1, 65536, "256", NULL,
	     daemon.http_max_connections, "HTTP connections served at once; more wait (in the listen backlog) until one closes."),
	ROOT("daemon.http_idle_secs", CFG_T_UINT, 0, 0, 86400, "60", NULL, daemon.http_idle_secs,
	     "An HTTP connection without traffic for this long is closed (one waiting on its "
	     "task is not idle); 0 means never."),
	ROOT("daemon.http_max_output", CFG_T_UINT, 0, 16384, 4294967296.0, "4194304", NULL,
	     daemon.http_max_output, "A stream's output not yet read by its HTTP client, bytes, "
	     "beyond which the client is dropped (its task cancelled unless detached)."),
	ROOT("store.path", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, store.path,
	     "The sqlite database of every model using the sqlite backend; null means "
	     "$XDG_STATE_HOME/plot/plot.db (~/.local/state/plot/plot.db). Its directory is "
	     "created mode 0700 and must be owned by plotd's user and not writable by others; "
	     "a symlink is refused."),
	ROOT("store.synchronous", CFG_T_ENUM, 0, 0, 0, "normal", syncs, store.synchronous,
	     "What an acknowledged submit survives: normal, a crash of plotd (kill -9) but "
	     "maybe not a power loss; full, also a power loss or OS crash (every commit "
	     "waits for fsync)."),
	ROOT("store.restart_policy", CFG_T_ENUM, 0, 0, 0, "requeue", restarts,
	     store.restart_policy,
	     "What becomes of tasks that were running when plotd stopped or died: requeue "
	     "(queued again in their place, attempts counted, partial output discarded) or "
	     "fail (failed, with the reason)."),
	ROOT("postgres.url", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, postgres.url,
	     "The PostgreSQL database of every model using the postgres backend, a libpq "
	     "connection string (postgresql://user@host/db or key=value); null means the "
	     "PG* environment variables (PGHOST, PGDATABASE, ...). The schema is created or "
	     "migrated at start; a database that cannot be reached or used stops plotd "
	     "(exit 78), naming the URL without its password."),
	ROOT("postgres.name", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, postgres.name,
	     "This daemon's name in the shared queue's leases and in plot stats (at most 63 "
	     "bytes); null means HOST:PID."),
	ROOT("postgres.lease_ms", CFG_T_UINT, 0, 300, 86400000, "15000", NULL,
	     postgres.lease_ms,
	     "How long a claimed task stays this daemon's without a heartbeat, in "
	     "milliseconds; the heartbeat (renew, sweep, claim) runs every third of it. A "
	     "daemon that dies loses its tasks to the others this long after its last "
	     "heartbeat (store.restart_policy: requeued, at most 3 times, or failed)."),
	ROOT("default_model", CFG_T_STRING, CFG_F_NULLABLE, 0, 0, "null", NULL, default_model,
	     "Model used when a request names none; null means the first model."),
	MODEL("name", CFG_T_STRING, CFG_F_REQUIRED, "null", NULL, name,
	      "Model name used by requests: 1 to 64 of A-Z a-z 0-9 . _ : -"),
	MODEL("executor", CFG_T_ENUM, 0, "synthetic", executors, executor,
	      "What runs the model's tasks: synthetic (echoes the prompt's words, for tests) "
	      "or llm."),
	MODEL("path", CFG_T_STRING, CFG_F_NULLABLE, "null", NULL, path,
	      "Model file (GGUF); required for llm."),
	{ "idle_unload_secs", NULL, CFG_SCOPE_MODEL, CFG_T_UINT, CFG_F_NULLABLE, 1, YEAR, "null",
	  NULL, offsetof(struct cfg_model, idle_unload_secs), -1, 1,
	  "Unload the model (free its executor and memory) once it has had no queued or "
	  "running task for this many seconds; the next request loads it again. null means "
	  "it stays loaded." },
	PARAM("tokens_per_sec", CFG_T_DOUBLE, 0, 1e6, "20", tokens_per_sec,
	      "synthetic: output pace; 0 means as fast as possible."),
	PARAMX("context_length", CFG_T_UINT, CFG_F_NULLABLE, 1, 16777216, "null", NULL,
	       context_length, "llm: context length in tokens; null means the model's own."),
	PARAMX("device", CFG_T_DEVICE, 0, 0, 0, "cpu", NULL, device,
	       "llm: where the model runs: cpu, cuda (the first GPU) or cuda:N (GPU N)."),
	PARAM("kvcache_mem_mb", CFG_T_UINT, 1, 1048576, "256", kvcache_mem_mb,
	      "llm: KV-cache budget in MiB; it is cut into blocks, the pool's units. On a GPU "
	      "(device cuda) the blocks live in its memory beside the weights: a fixed size, "
	      "not a fraction of the free memory, so a model's units do not depend on what "
	      "else holds the device; a budget that does not fit fails that model's load."),
	PARAMX("kv_type", CFG_T_ENUM, 0, 0, 0, "f16", kv_types, kv_type,
	       "llm: element type of the KV cache: f16 (IEEE half, rounded as llama.cpp's "
	       "default cache, and twice the tokens per MiB) or f32."),
	PARAM("block_size", CFG_T_UINT, 1, 4096, "16", block_size,
	      "llm: tokens per KV-cache block. A task costs ceil((prompt tokens + max_tokens) "
	      "/ block_size) blocks, reserved whole when it starts (no preemption)."),
	PARAM("max_num_seqs", CFG_T_UINT, 1, 4096, "64", max_num_seqs,
	      "llm: sequences decoded together in one continuous batch: the most the executor "
	      "can run at once (parking_lot.pool.max_running may cap it lower)."),
	PARAM("max_batch_tokens", CFG_T_UINT, 1, 65536, "512", max_batch_tokens,
	      "llm: tokens per forward pass: one per running sequence plus prefill chunks of "
	      "new prompts."),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Settings that no longer exist, with where they went: a config that still
 * uses one gets this instead of a bare "unknown key". */
static const struct {
	enum cfg_scope scope;
	const char *name, *why;
} retired[] = {
	{ CFG_SCOPE_LOT, "pool.worker_threads",
	  "pool.worker_threads was split into pool.max_running and pool.threads "
	  "(max_running: tasks at once; threads: compute threads)" },
	{ CFG_SCOPE_PARAMS, "threads",
	  "params.threads moved to parking_lot.pool.threads (per model: "
	  "models[].parking_lot.pool.threads)" },
};

const char *cfg_retired(enum cfg_scope scope, const char *name)
{
	for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++)
		if (retired[i].scope == scope && !strcmp(retired[i].name, name))
			return retired[i].why;
	return NULL;
}

/* Keys of the models.yaml of the server plot replaces, at whatever level
 * they appear: each is refused with what plot uses instead, so that file
 * can be ported key by key rather than guessed at. */
static const struct {
	const char *key, *why;
} foreign[] = {
	{ "max_blocking_threads",
	  "plot has no blocking-thread pool to size: compute threads are "
	  "parking_lot.pool.threads, tasks at once parking_lot.pool.max_running" },
	{ "thread_stack_size",
	  "plot sizes its threads' stacks itself; remove the key" },
	{ "persistence",
	  "where tasks are kept is parking_lot.queue.backend and parking_lot.mailbox.backend "
	  "(memory), how long finished ones stay parking_lot.mailbox.retention_secs" },
	{ "hf_id",
	  "plot does not download models: set models[].path to a local GGUF file "
	  "(make models fetches the default ones)" },
	{ "dtype",
	  "a GGUF file fixes the types of its weights; the KV cache's is "
	  "models[].params.kv_type (f16 or f32)" },
	{ "kvcache_mem_gpu",
	  "the KV-cache budget is models[].params.kvcache_mem_mb (MiB), on the device "
	  "models[].params.device names (cpu, cuda, cuda:N)" },
};

const char *cfg_foreign(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *last = dot ? dot + 1 : name;
	for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
		if (!strcmp(foreign[i].key, last))
			return foreign[i].why;
	return NULL;
}

int cfg_foreign_at(size_t i, const char **key, const char **why)
{
	if (i >= sizeof foreign / sizeof foreign[0])
		return -1;
	*key = foreign[i].key;
	*why = foreign[i].why;
	return 0;
}

/* The executor a params setting is for: its doc starts "llm:" or
 * "synthetic:" (NULL: every executor). */
static const char *param_executor(const struct cfg_setting *s, char *buf, size_t len)
{
	size_t n = strcspn(s->doc, ": ");
	if (s->doc[n] != ':' || n + 1 > len)
		return NULL;
	memcpy(buf, s->doc, n);
	buf[n] = 0;
	return buf;
}

int cfg_params_unused(const struct cfg_model *m, cfg_unused_fn fn, void *ctx)
{
	struct cfg_params def;
	char exe[32], a[160], b[160], full[128];
	int n = 0;
	if (cfg_scope_defaults(CFG_SCOPE_PARAMS, &def))
		return -CFG_E_NOMEM;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct cfg_setting *s = &settings[i];
		const char *for_exe = s->scope == CFG_SCOPE_PARAMS ? param_executor(s, exe, sizeof exe) : NULL;
		if (!for_exe || !strcmp(for_exe, executors[m->executor]))
			continue;
		cfg_value_format(s, &m->params, 0, a, sizeof a);
		cfg_value_format(s, &def, 0, b, sizeof b);
		if (strcmp(a, b)) {
			cfg_setting_fullname(s, full, sizeof full);
			fn(ctx, full, for_exe);
			n++;
		}
	}
	cfg_scope_free(CFG_SCOPE_PARAMS, &def);
	return n;
}

size_t cfg_setting_count(void)
{
	return N_SETTINGS;
}

const struct cfg_setting *cfg_setting_at(size_t i)
{
	return i < N_SETTINGS ? &settings[i] : NULL;
}

const char *cfg_choice_name(const char *setting, int v)
{
	const struct cfg_setting *s = cfg_setting_find(setting);
	size_t n = 0;

	while (s && s->choices && s->choices[n])
		n++;
	return v >= 0 && (size_t)v < n ? s->choices[v] : NULL;
}

const char *cfg_scope_prefix(enum cfg_scope scope)
{
	switch (scope) {
	case CFG_SCOPE_LOT: return "parking_lot.";
	case CFG_SCOPE_MODEL: return "models[].";
	case CFG_SCOPE_PARAMS: return "models[].params.";
	default: return "";
	}
}

int cfg_setting_fullname(const struct cfg_setting *s, char *buf, size_t len)
{
	return snprintf(buf, len, "%s%s", cfg_scope_prefix(s->scope), s->name);
}

const struct cfg_setting *cfg_setting_find(const char *name)
{
	char full[128];
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct cfg_setting *s = &settings[i];
		cfg_setting_fullname(s, full, sizeof full);
		if (strcmp(name, full) == 0 || (s->key && strcmp(name, s->key) == 0))
			return s;
		if (s->scope == CFG_SCOPE_LOT && strcmp(name, s->name) == 0)
			return s;
	}
	return NULL;
}

int cfg_lot_bit(const struct cfg_setting *s)
{
	int bit = 0;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (&settings[i] == s)
			return s->scope == CFG_SCOPE_LOT ? bit : -1;
		bit += settings[i].scope == CFG_SCOPE_LOT;
	}
	return -1;
}

static int choices_text(const char *const *ch, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = 0; ch[i]; i++)
		n += (size_t)snprintf(buf + (n < len ? n : len - 1), n < len ? len - n : 1, "%s%s",
				     i ? "|" : "", ch[i]);
	return (int)n;
}

int cfg_setting_expect(const struct cfg_setting *s, char *buf, size_t len)
{
	const char *nul = s->flags & CFG_F_NULLABLE ? "null or " : "";
	char ch[128];
	switch (s->type) {
	case CFG_T_UINT:
		return snprintf(buf, len, "%san integer %.0f..%.0f", nul, s->min, s->max);
	case CFG_T_DOUBLE:
		return snprintf(buf, len, "%sa number %g..%g", nul, s->min, s->max);
	case CFG_T_BOOL:
		return snprintf(buf, len, "true or false");
	case CFG_T_STRING:
		return snprintf(buf, len, "%sa string", nul);
	case CFG_T_ENUM:
		choices_text(s->choices, ch, sizeof ch);
		return snprintf(buf, len, "%sone of %s", nul, ch);
	case CFG_T_DEVICE:
		return snprintf(buf, len, "cpu, cuda or cuda:N (N 0..63)");
	default:
		return snprintf(buf, len, "a list of strings");
	}
}

void *cfg_field(void *base, const struct cfg_setting *s)
{
	return (char *)base + s->offset;
}

const void *cfg_cfield(const void *base, const struct cfg_setting *s)
{
	return (const char *)base + s->offset;
}

/* ---- one value ---------------------------------------------------------- */

static int is_null(const char *t, size_t len, int plain)
{
	return plain && (len == 0 || (len == 1 && t[0] == '~') ||
			 (len == 4 && (!memcmp(t, "null", 4) || !memcmp(t, "Null", 4) ||
				       !memcmp(t, "NULL", 4))));
}

static int why_bad(const struct cfg_setting *s, const char *t, size_t len, char *why,
		   size_t whylen, int code)
{
	char exp[192], q[96];
	char shown[64];
	snprintf(shown, sizeof shown, "%.*s%s", (int)(len > 40 ? 40 : len), t, len > 40 ? "..." : "");
	cfg_quote(shown, q, sizeof q);
	cfg_setting_expect(s, exp, sizeof exp);
	snprintf(why, whylen, "expected %s, got %s", exp, q);
	return code;
}

static int parse_uint(const struct cfg_setting *s, const char *t, size_t len, uint64_t *v,
		      char *why, size_t whylen)
{
	char buf[32];
	if (len == 0 || len >= sizeof buf)
		return why_bad(s, t, len, why, whylen, len ? -CFG_E_RANGE : -CFG_E_TYPE);
	for (size_t i = 0; i < len; i++)
		if (t[i] < '0' || t[i] > '9')
			return why_bad(s, t, len, why, whylen,
				       (t[0] == '-' && i == 0) ? -CFG_E_RANGE : -CFG_E_TYPE);
	memcpy(buf, t, len);
	buf[len] = 0;
	errno = 0;
	unsigned long long u = strtoull(buf, NULL, 10);
	if (errno || (double)u < s->min || (double)u > s->max)
		return why_bad(s, t, len, why, whylen, -CFG_E_RANGE);
	*v = u;
	return 0;
}

static int parse_double(const struct cfg_setting *s, const char *t, size_t len, double *v,
			char *why, size_t whylen)
{
	char buf[64], *end;
	if (len == 0 || len >= sizeof buf)
		return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
	memcpy(buf, t, len);
	buf[len] = 0;
	errno = 0;
	double d = strtod(buf, &end);
	if (*end || end == buf || buf[0] == ' ')
		return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
	if (errno || !isfinite(d) || d < s->min || d > s->max)
		return why_bad(s, t, len, why, whylen, -CFG_E_RANGE);
	*v = d;
	return 0;
}

/* The seeds' file queue: said plainly what replaces it. */
static int is_seed_backend(const struct cfg_setting *s, const char *t, size_t len)
{
	return s->choices == backends && ((len == 5 && !memcmp(t, "yaque", 5)) ||
					  (len == 4 && !memcmp(t, "file", 4)));
}

static int parse_enum(const struct cfg_setting *s, const char *t, size_t len, int *v,
		      char *why, size_t whylen)
{
	for (int i = 0; s->choices[i]; i++)
		if (strlen(s->choices[i]) == len && !memcmp(s->choices[i], t, len)) {
			*v = i;
			return 0;
		}
	if (is_seed_backend(s, t, len)) {
		snprintf(why, whylen, "'%.*s' (the old file queue) is not supported: use sqlite, "
			 "the embedded durable store", (int)len, t);
		return -CFG_E_RANGE;
	}
	return why_bad(s, t, len, why, whylen, -CFG_E_RANGE);
}

/* "cpu", "cuda" or "cuda:N" with N 0..63 written without leading zeros. */
static int parse_device(const struct cfg_setting *s, const char *t, size_t len, char *v,
			char *why, size_t whylen)
{
	int ok = (len == 3 && !memcmp(t, "cpu", 3)) || (len == 4 && !memcmp(t, "cuda", 4));
	if (!ok && len >= 6 && len <= 7 && !memcmp(t, "cuda:", 5)) {
		int n = 0, digits = 1;
		for (size_t i = 5; i < len; i++) {
			digits &= t[i] >= '0' && t[i] <= '9';
			n = n * 10 + (t[i] - '0');
		}
		ok = digits && n <= 63 && !(len == 7 && t[5] == '0');
	}
	if (!ok)
		return why_bad(s, t, len, why, whylen, -CFG_E_RANGE);
	memcpy(v, t, len);
	v[len] = 0;
	return 0;
}

static int parse_string(const struct cfg_setting *s, const char *t, size_t len, char **v,
			char *why, size_t whylen)
{
	if (len > CFG_MAX_STR) {
		snprintf(why, whylen, "expected a string of at most %d bytes, got %zu",
			 CFG_MAX_STR, len);
		return -CFG_E_RANGE;
	}
	if (memchr(t, 0, len))
		return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
	char *p = malloc(len + 1);
	if (!p)
		return -CFG_E_NOMEM;
	memcpy(p, t, len);
	p[len] = 0;
	free(*v);
	*v = p;
	return 0;
}

int cfg_value_parse(const struct cfg_setting *s, const char *t, size_t len, int plain,
		    void *base, char *why, size_t whylen)
{
	void *f = cfg_field(base, s);
	if (is_null(t, len, plain) && s->type != CFG_T_STRLIST) {
		if (!(s->flags & CFG_F_NULLABLE))
			return why_bad(s, "null", 4, why, whylen, -CFG_E_TYPE);
		if (s->type == CFG_T_UINT)
			*(uint64_t *)f = CFG_NULL;
		if (s->type == CFG_T_STRING) {
			free(*(char **)f);
			*(char **)f = NULL;
		}
		return 0;
	}
	if (!plain && s->type != CFG_T_STRING && s->type != CFG_T_ENUM && s->type != CFG_T_DEVICE)
		return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
	switch (s->type) {
	case CFG_T_UINT: return parse_uint(s, t, len, f, why, whylen);
	case CFG_T_DOUBLE: return parse_double(s, t, len, f, why, whylen);
	case CFG_T_ENUM: return parse_enum(s, t, len, f, why, whylen);
	case CFG_T_STRING: return parse_string(s, t, len, f, why, whylen);
	case CFG_T_DEVICE: return parse_device(s, t, len, f, why, whylen);
	case CFG_T_BOOL:
		if (len == 4 && !memcmp(t, "true", 4))
			*(int *)f = 1;
		else if (len == 5 && !memcmp(t, "false", 5))
			*(int *)f = 0;
		else
			return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
		return 0;
	default: /* a list given as a scalar: only "[]" (the default text) */
		if (len == 2 && !memcmp(t, "[]", 2))
			return 0;
		return why_bad(s, t, len, why, whylen, -CFG_E_TYPE);
	}
}

void cfg_quote(const char *s, char *buf, size_t len)
{
	size_t n = 0;
	if (len < 3) {
		if (len)
			buf[0] = 0;
		return;
	}
	buf[n++] = '"';
	for (; *s && n + 6 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n++] = '"';
	buf[n] = 0;
}

static int fmt_double(double d, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%.15g", d);
	if (strtod(buf, NULL) != d)
		n = snprintf(buf, len, "%.17g", d);
	return n;
}

static int fmt_list(const struct cfg_strlist *l, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "[");
	for (size_t i = 0; i < l->n && n < len; i++) {
		char q[CFG_MAX_STR + 8];
		cfg_quote(l->v[i], q, sizeof q);
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", q);
	}
	if (n < len)
		n += (size_t)snprintf(buf + n, len - n, "]");
	return (int)n;
}

int cfg_value_format(const struct cfg_setting *s, const void *base, int quote,
		     char *buf, size_t len)
{
	const void *f = cfg_cfield(base, s);
	switch (s->type) {
	case CFG_T_UINT: {
		uint64_t v = *(const uint64_t *)f;
		if (v == CFG_NULL && (s->flags & CFG_F_NULLABLE))
			return snprintf(buf, len, "null");
		return snprintf(buf, len, "%llu", (unsigned long long)v);
	}
	case CFG_T_DOUBLE: return fmt_double(*(const double *)f, buf, len);
	case CFG_T_BOOL: return snprintf(buf, len, "%s", *(const int *)f ? "true" : "false");
	case CFG_T_ENUM: return snprintf(buf, len, "%s", s->choices[*(const int *)f]);
	case CFG_T_DEVICE: return snprintf(buf, len, "%s", (const char *)f);
	case CFG_T_STRING: {
		const char *v = *(char *const *)f;
		if (!v)
			return snprintf(buf, len, "null");
		if (!quote)
			return snprintf(buf, len, "%s", v);
		cfg_quote(v, buf, len);
		return (int)strlen(buf);
	}
	default: return fmt_list(f, buf, len);
	}
}

int cfg_strlist_push(struct cfg_strlist *l, const char *text, size_t len)
{
	return cfg_strlist_push_at(l, text, len, 0, 0);
}

int cfg_strlist_push_at(struct cfg_strlist *l, const char *text, size_t len, int line, int col)
{
	int *ln = realloc(l->line, (l->n + 1) * sizeof *ln);
	if (ln)
		l->line = ln;
	int *cl = ln ? realloc(l->col, (l->n + 1) * sizeof *cl) : NULL;
	if (cl)
		l->col = cl;
	char **v = cl ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
	if (!v)
		return -CFG_E_NOMEM;
	l->line[l->n] = line;
	l->col[l->n] = col;
	l->v = v;
	v[l->n] = malloc(len + 1);
	if (!v[l->n])
		return -CFG_E_NOMEM;
	memcpy(v[l->n], text, len);
	v[l->n][len] = 0;
	l->n++;
	return 0;
}

int cfg_scope_defaults(enum cfg_scope scope, void *base)
{
	char why[256];
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct cfg_setting *s = &settings[i];
		if (s->scope != scope || (s->flags & CFG_F_REQUIRED))
			continue; /* a required setting has no default to set */
		int rc = cfg_value_parse(s, s->def, strlen(s->def), 1, base, why, sizeof why);
		if (rc)
			return rc;
	}
	return 0;
}

void cfg_scope_free(enum cfg_scope scope, void *base)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct cfg_setting *s = &settings[i];
		if (s->scope != scope)
			continue;
		void *f = cfg_field(base, s);
		if (s->type == CFG_T_STRING) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (s->type == CFG_T_STRLIST) {
			struct cfg_strlist *l = f;
			for (size_t j = 0; j < l->n; j++)
				free(l->v[j]);
			free(l->v);
			free(l->line);
			free(l->col);
			l->v = NULL;
			l->line = l->col = NULL;
			l->n = 0;
		}
	}
}

/* ---- errors, built-in config, location ---------------------------------- */

static const char *const err_names[] = {
	"OK", "IO", "SYNTAX", "UNKNOWN", "TYPE", "RANGE", "DUPLICATE", "MISSING",
	"REF", "READONLY", "NOMEM", "TOO_LARGE",
};

const char *cfg_err_name(int err)
{
	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof err_names / sizeof err_names[0])
		return "UNKNOWN_ERROR";
	return err_names[err];
}

#define BUILTIN_HEAD \
	"# plot built-in default configuration\n" \
	"parking_lot:\n" \
	"  pool: { max_running: null, threads: 0 }\n" \
	"  limits: { max_units: null, max_queue_depth: 1000, timeout_secs: 0 }\n" \
	"  queue: { backend: sqlite }\n" \
	"  mailbox: { backend: sqlite, retention_secs: 3600 }\n" \
	"daemon: { log_level: info, allow_users: [], allow_groups: [] }\n"
#define BUILTIN_ECHO \
	"  - name: echo\n" \
	"    executor: synthetic\n" \
	"    params: { tokens_per_sec: 20 }\n"

const char *cfg_builtin_yaml(void)
{
	return BUILTIN_HEAD "default_model: echo\nmodels:\n" BUILTIN_ECHO;
}

char *cfg_builtin_yaml_llm(const char *model_path)
{
	static const char head[] = BUILTIN_HEAD "# " CFG_DEFAULT_MODEL_FILE
		" is installed (make models)\ndefault_model: smollm2\nmodels:\n"
		"  - name: smollm2\n    executor: llm\n    path: \"";
	static const char tail[] = "\"\n"
		"    params: { device: cpu, kvcache_mem_mb: 256, block_size: 16, max_num_seqs: 64,\n"
		"              max_batch_tokens: 512, context_length: null }\n"
		"    parking_lot: { limits: { max_units: null } }   # null = every KV block\n"
		BUILTIN_ECHO;
	size_t n = strlen(model_path);
	if (n > 65536)
		return NULL;
	char *t = malloc(sizeof head + 2 * n + sizeof tail), *o;
	if (!t)
		return NULL;
	o = t + sizeof head - 1;
	memcpy(t, head, sizeof head - 1);
	for (size_t i = 0; i < n; i++) { /* a YAML double-quoted scalar */
		if (model_path[i] == '"' || model_path[i] == '\\')
			*o++ = '\\';
		*o++ = model_path[i];
	}
	memcpy(o, tail, sizeof tail);
	return t;
}

int cfg_builtin_model_path(char *out, size_t outlen)
{
	const char *data = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;
	if (data && *data)
		n = snprintf(out, outlen, "%s/plot/models/%s", data, CFG_DEFAULT_MODEL_FILE);
	else if (home && *home)
		n = snprintf(out, outlen, "%s/.local/share/plot/models/%s", home,
			     CFG_DEFAULT_MODEL_FILE);
	else
		n = -1;
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = 0;
		return -CFG_E_TOO_LARGE;
	}
	return 0;
}

static int put_path(char *out, size_t outlen, int n)
{
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = 0;
		return -CFG_E_TOO_LARGE;
	}
	return 0;
}

int cfg_locate(const char *opt_path, char *out, size_t outlen, enum cfg_source *src)
{
	const char *env = getenv("PLOT_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (opt_path) {
		*src = CFG_SRC_OPTION;
		return put_path(out, outlen, snprintf(out, outlen, "%s", opt_path));
	}
	if (env && *env) {
		*src = CFG_SRC_ENV;
		return put_path(out, outlen, snprintf(out, outlen, "%s", env));
	}
	*src = CFG_SRC_BUILTIN;
	int n = -1;
	if (xdg && *xdg)
		n = snprintf(out, outlen, "%s/plot/plot.yaml", xdg);
	else if (home && *home)
		n = snprintf(out, outlen, "%s/.config/plot/plot.yaml", home);
	if (n > 0 && (size_t)n < outlen && access(out, F_OK) == 0) {
		*src = CFG_SRC_XDG;
		return 0;
	}
	if (outlen)
		out[0] = 0;
	return 0;
}
