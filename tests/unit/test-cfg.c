/*
 * test-cfg.c — plot.yaml: valid configs, every error kind with its exact
 * file:line:col message, per-model overrides, defaults, the dump round trip,
 * runtime get/set validation, the location order, and the man page staying
 * in step with the settings table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/cfg.h"
#include "cfg/cfg-impl.h" /* cfg_lot_bit */

static struct cfg *load_ok(const char *text)
{
	char err[512] = "";
	struct cfg *c = NULL;
	int rc = cfg_load_string(text, strlen(text), "plot.yaml", &c, err, sizeof err);
	if (rc)
		fail_msg("unexpected error %d: %s", rc, err);
	return c;
}

static void load_err(const char *text, int code, const char *msg)
{
	char err[512] = "";
	struct cfg *c = (struct cfg *)1;
	int rc = cfg_load_string(text, strlen(text), "plot.yaml", &c, err, sizeof err);
	assert_null(c);
	if (rc != -code || strcmp(err, msg) != 0)
		fail_msg("want %s \"%s\"\n got %s \"%s\"", cfg_err_name(code), msg,
			 cfg_err_name(rc), err);
}

static void test_builtin(void **state)
{
	struct cfg *c = load_ok(cfg_builtin_yaml());
	assert_int_equal(c->n_models, 1);
	assert_string_equal(c->models[0].name, "echo");
	assert_int_equal(c->models[0].executor, CFG_EXEC_SYNTHETIC);
	assert_true(c->models[0].params.tokens_per_sec == 20);
	assert_string_equal(c->default_model, "echo");
	assert_true(c->lot.max_running == CFG_NULL);
	assert_int_equal(c->lot.threads, 0);
	assert_true(c->lot.max_units == CFG_NULL);
	assert_int_equal(c->lot.max_queue_depth, 1000);
	assert_int_equal(c->lot.timeout_secs, 0); /* no deadline unless configured */
	assert_int_equal(c->lot.retention_secs, 3600);
	assert_true(c->lot.gen_max_tokens == CFG_NULL); /* to the end of the text */
	assert_true(c->lot.gen_temperature == 0.8 && c->lot.gen_top_p == 0.95);
	assert_int_equal(c->lot.gen_top_k, 40);
	assert_int_equal(c->daemon.log_level, CFG_LOG_INFO);
	assert_null(c->daemon.socket);
	assert_int_equal(c->daemon.allow_users.n, 0);
	cfg_free(c);
}

static void test_defaults_minimal(void **state)
{
	struct cfg *c = load_ok("models:\n  - name: m1\n");
	assert_true(c->lot.max_running == CFG_NULL);
	assert_int_equal(c->lot.threads, 0);
	assert_string_equal(c->models[0].params.device, "cpu");
	assert_int_equal(c->models[0].lot.max_queue_depth, 1000);
	assert_true(c->models[0].params.tokens_per_sec == 20);
	assert_string_equal(c->default_model, "m1");
	assert_string_equal(c->source, "plot.yaml");
	cfg_free(c);
}

/* Every table default must parse with its own setting and match what a
 * config without that key yields. */
static void test_table_defaults_parse(void **state)
{
	char buf[256];
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		assert_non_null(s->doc);
		assert_non_null(s->def);
		cfg_setting_fullname(s, buf, sizeof buf);
		assert_ptr_equal(cfg_setting_find(buf), s);
		if (s->scope == CFG_SCOPE_LOT) {
			assert_true(cfg_lot_bit(s) >= 0 && cfg_lot_bit(s) < 32);
		}
	}
}

static const char overrides[] =
	"parking_lot:\n"
	"  limits: { max_units: 16, max_queue_depth: 50 }\n"
	"models:\n"
	"  - name: a\n"
	"    parking_lot:\n"
	"      limits: { max_units: 8 }\n"
	"      pool: { max_running: 2, threads: 3 }\n"
	"  - name: b\n"
	"    executor: llm\n"
	"    path: /m/b.gguf\n"
	"    params: { context_length: 4096, device: \"cuda:1\" }\n"
	"default_model: b\n"
	"daemon:\n"
	"  socket: /tmp/x.sock\n"
	"  log_level: debug\n"
	"  allow_users: [alice, \"bob\"]\n";

static void test_overrides(void **state)
{
	struct cfg *c = load_ok(overrides);
	assert_int_equal(c->n_models, 2);
	assert_int_equal(c->models[0].lot.max_units, 8);
	assert_int_equal(c->models[0].lot.max_running, 2);
	assert_int_equal(c->models[0].lot.threads, 3);
	assert_int_equal(c->models[0].lot.max_queue_depth, 50); /* from defaults */
	assert_int_equal(c->models[1].lot.max_units, 16);
	assert_true(c->models[1].lot.max_running == CFG_NULL);
	assert_int_equal(c->models[1].lot.threads, 0);
	assert_string_equal(c->models[1].params.device, "cuda:1");
	assert_int_equal(c->models[1].executor, CFG_EXEC_LLM);
	assert_string_equal(c->models[1].path, "/m/b.gguf");
	assert_int_equal(c->models[1].params.context_length, 4096);
	assert_string_equal(c->default_model, "b");
	assert_string_equal(c->daemon.socket, "/tmp/x.sock");
	assert_int_equal(c->daemon.log_level, CFG_LOG_DEBUG);
	assert_int_equal(c->daemon.allow_users.n, 2);
	assert_string_equal(c->daemon.allow_users.v[1], "bob");
	assert_ptr_equal(cfg_model_find(c, "b"), &c->models[1]);
	assert_null(cfg_model_find(c, "zz"));
	cfg_free(c);
}

/* Overrides given before the defaults they override still win. */
static void test_override_order(void **state)
{
	struct cfg *c = load_ok("models:\n  - name: a\n    parking_lot: { limits: { max_units: 3 } }\n"
				"parking_lot: { limits: { max_units: 9 } }\n");
	assert_int_equal(c->models[0].lot.max_units, 3);
	assert_int_equal(c->lot.max_units, 9);
	cfg_free(c);
}

static void test_err_type(void **state)
{
	load_err("models: [{name: a}]\nparking_lot:\n  limits:\n    max_queue_depth: lots\n",
		 CFG_E_TYPE,
		 "plot.yaml:4:22: parking_lot.limits.max_queue_depth: expected an integer "
		 "0..1000000, got \"lots\"");
	load_err("models: [{name: a}]\nparking_lot:\n  limits:\n    max_queue_depth: \"5\"\n",
		 CFG_E_TYPE,
		 "plot.yaml:4:22: parking_lot.limits.max_queue_depth: expected an integer "
		 "0..1000000, got \"5\"");
	load_err("models: [{name: a}]\nparking_lot: { pool: { threads: [1] } }\n", CFG_E_TYPE,
		 "plot.yaml:2:33: parking_lot.pool.threads: expected an integer 0..1024, "
		 "got a list");
	load_err("models: [{name: a}]\nparking_lot: { pool: { threads: null } }\n", CFG_E_TYPE,
		 "plot.yaml:2:33: parking_lot.pool.threads: expected an integer 0..1024, "
		 "got \"null\"");
	load_err("models: [{name: a}]\ndaemon: 5\n", CFG_E_TYPE,
		 "plot.yaml:2:9: daemon: expected a mapping, got a scalar");
	load_err("models: {name: a}\n", CFG_E_TYPE,
		 "plot.yaml:1:9: models: expected a list of models, got a mapping");
	load_err("- a\n", CFG_E_TYPE, "plot.yaml:1:1: expected a mapping at the top, got a list");
}

static void test_err_range(void **state)
{
	load_err("models: [{name: a}]\nparking_lot:\n  pool: { max_running: 0 }\n", CFG_E_RANGE,
		 "plot.yaml:3:24: parking_lot.pool.max_running: expected null or an integer "
		 "1..1000000, got \"0\"");
	load_err("models: [{name: a}]\nparking_lot:\n  limits: { max_queue_depth: 1000001 }\n",
		 CFG_E_RANGE,
		 "plot.yaml:3:30: parking_lot.limits.max_queue_depth: expected an integer "
		 "0..1000000, got \"1000001\"");
	load_err("models:\n  - name: a\n    executor: gpu\n", CFG_E_RANGE,
		 "plot.yaml:3:15: models[0].executor: expected one of synthetic|llm, got \"gpu\"");
	load_err("models:\n  - name: a\n    params: { tokens_per_sec: -1 }\n", CFG_E_RANGE,
		 "plot.yaml:3:31: models[0].params.tokens_per_sec: expected a number 0..1e+06, "
		 "got \"-1\"");
	load_err("models:\n  - name: \"a b\"\n", CFG_E_RANGE,
		 "plot.yaml:2:11: models[0].name: expected 1 to 64 of A-Z a-z 0-9 . _ : -, got \"a b\"");
}

static void test_err_unknown(void **state)
{
	load_err("models: [{name: a}]\nparking_lot:\n  limits:\n    max_unit: 3\n", CFG_E_UNKNOWN,
		 "plot.yaml:4:5: parking_lot.limits.max_unit: unknown key");
	load_err("modelz: []\n", CFG_E_UNKNOWN, "plot.yaml:1:1: modelz: unknown key");
	load_err("models:\n  - name: a\n    parking_lot: { limitz: {} }\n", CFG_E_UNKNOWN,
		 "plot.yaml:3:20: models[0].parking_lot.limitz: unknown key");
	load_err("models:\n  - name: a\n    params: { speed: 3 }\n", CFG_E_UNKNOWN,
		 "plot.yaml:3:15: models[0].params.speed: unknown key");
}

/* A key of the models.yaml plot replaces says what plot uses instead, at
 * any level it appears. */
static void test_err_foreign(void **state)
{
	load_err("max_blocking_threads: 512\nmodels: [{name: a}]\n", CFG_E_UNKNOWN,
		 "plot.yaml:1:1: max_blocking_threads: not a plot setting: plot has no "
		 "blocking-thread pool to size: compute threads are parking_lot.pool.threads, "
		 "tasks at once parking_lot.pool.max_running");
	load_err("models:\n  - name: a\n    hf_id: org/m\n", CFG_E_UNKNOWN,
		 "plot.yaml:3:5: models[0].hf_id: not a plot setting: plot does not download "
		 "models: set models[].path to a local GGUF file (make models fetches the "
		 "default ones)");
	load_err("models:\n  - name: a\n    params: { kvcache_mem_gpu: 4096 }\n", CFG_E_UNKNOWN,
		 "plot.yaml:3:15: models[0].params.kvcache_mem_gpu: not a plot setting: the "
		 "KV-cache budget is models[].params.kvcache_mem_mb (MiB), on the device "
		 "models[].params.device names (cpu, cuda, cuda:N)");
	load_err("models: [{name: a}]\nparking_lot:\n  pool: { thread_stack_size: 8 }\n",
		 CFG_E_UNKNOWN, "plot.yaml:3:11: parking_lot.pool.thread_stack_size: not a plot "
		 "setting: plot sizes its threads' stacks itself; remove the key");
	/* a near miss is still a plain unknown key */
	load_err("models: [{name: a, dtypes: f16}]\n", CFG_E_UNKNOWN,
		 "plot.yaml:1:20: models[0].dtypes: unknown key");
}

/* A setting that was removed names what replaced it, not just "unknown". */
static void test_err_retired(void **state)
{
	load_err("models: [{name: a}]\nparking_lot:\n  pool: { worker_threads: 4 }\n",
		 CFG_E_UNKNOWN,
		 "plot.yaml:3:11: parking_lot.pool.worker_threads: no longer exists: "
		 "pool.worker_threads was split into pool.max_running and pool.threads "
		 "(max_running: tasks at once; threads: compute threads)");
	load_err("models:\n  - name: a\n    parking_lot: { pool: { worker_threads: 1 } }\n",
		 CFG_E_UNKNOWN,
		 "plot.yaml:3:28: models[0].parking_lot.pool.worker_threads: no longer exists: "
		 "pool.worker_threads was split into pool.max_running and pool.threads "
		 "(max_running: tasks at once; threads: compute threads)");
	load_err("models:\n  - name: a\n    params: { threads: 2 }\n", CFG_E_UNKNOWN,
		 "plot.yaml:3:15: models[0].params.threads: no longer exists: params.threads "
		 "moved to parking_lot.pool.threads (per model: models[].parking_lot.pool.threads)");
}

/* device: exactly cpu, cuda or cuda:N with N 0..63. */
static void test_device(void **state)
{
	static const char *const good[] = { "cpu", "cuda", "cuda:0", "cuda:9", "cuda:63" };
	static const char *const bad[] = { "gpu", "cuda:", "cuda:64", "cuda:01", "cuda:x",
					   "CPU", "cuda:100", "cuda:-1", "" };
	char y[128];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(y, sizeof y, "models:\n  - name: a\n    params: { device: \"%s\" }\n", good[i]);
		struct cfg *c = load_ok(y);
		assert_string_equal(c->models[0].params.device, good[i]);
		cfg_free(c);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[256];
		snprintf(y, sizeof y, "models:\n  - name: a\n    params: { device: \"%s\" }\n", bad[i]);
		snprintf(want, sizeof want, "plot.yaml:3:23: models[0].params.device: expected cpu, "
			 "cuda or cuda:N (N 0..63), got \"%s\"", bad[i]);
		load_err(y, CFG_E_RANGE, want);
	}
}

static void test_err_structure(void **state)
{
	load_err("models:\n  - executor: synthetic\n", CFG_E_MISSING,
		 "plot.yaml:2:5: models[0].name: required");
	load_err("models:\n  - name: a\n    executor: llm\n", CFG_E_MISSING,
		 "plot.yaml:2:5: models[0].path: required for executor llm");
	load_err("models:\n  - name: a\n  - name: a\n", CFG_E_DUPLICATE,
		 "plot.yaml:3:11: models[1].name: \"a\" is already models[0] (line 2)");
	load_err("models: [{name: a}]\ndaemon: { log_level: info, log_level: warn }\n",
		 CFG_E_DUPLICATE, "plot.yaml:2:28: daemon.log_level: duplicate key (first at line 2)");
	load_err("models: [{name: a}]\ndefault_model: b\n", CFG_E_REF,
		 "plot.yaml:2:16: default_model: no model named \"b\"");
	load_err("daemon: {}\n", CFG_E_REF, "plot.yaml:1:1: models: at least one model is required");
	load_err("", CFG_E_REF, "plot.yaml:1:1: models: at least one model is required");
}

static void test_err_syntax(void **state)
{
	load_err("models: [{name: a}\n", CFG_E_SYNTAX,
		 "plot.yaml:2:1: YAML syntax error: did not find expected ',' or ']' while parsing "
		 "a flow sequence");
	load_err("a: &x 1\nb: *x\n", CFG_E_SYNTAX,
		 "plot.yaml:1:4: YAML anchors (&name) are not supported");
	load_err("models: !!seq []\n", CFG_E_SYNTAX,
		 "plot.yaml:1:9: YAML tags (!tag) are not supported");
	load_err("a: 1\n---\nb: 2\n", CFG_E_SYNTAX,
		 "plot.yaml:2:1: only one YAML document is allowed");
	char deep[200] = "models: [{name: a}]\nx: ";
	for (int i = 0; i < 20; i++)
		strcat(deep, "[");
	load_err(deep, CFG_E_TOO_LARGE, "plot.yaml:2:19: nested too deeply");
}

static void test_dump_roundtrip(void **state)
{
	struct cfg *c = load_ok(overrides);
	char *text, *text2;
	size_t len, len2;
	assert_int_equal(cfg_dump(c, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	struct cfg *d = load_ok(text);
	assert_int_equal(cfg_dump(d, &text2, &len2), 0);
	/* the first line names the source, which differs */
	assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
	assert_int_equal(d->models[0].lot.max_units, 8);
	assert_int_equal(d->models[0].over_mask, c->models[0].over_mask);
	assert_string_equal(d->daemon.allow_users.v[1], "bob");
	assert_non_null(strstr(text, "    parking_lot:\n      pool:\n        max_running: 2\n"
				     "        threads: 3\n"));
	assert_non_null(strstr(text, "      device: cuda:1\n"));
	assert_string_equal(d->models[1].params.device, "cuda:1");
	free(text);
	free(text2);
	cfg_free(c);
	cfg_free(d);
}

/* The dump is not bounded by a fixed buffer: a list of 1024 long names and
 * a socket path of CFG_MAX_STR control bytes (four times longer escaped)
 * come back whole. libFuzzer found the list case truncated mid-entry. */
static void test_dump_long_values(void **state)
{
	size_t cap = 1024 * 260 + 4 * CFG_MAX_STR * 2 + 256, n = 0;
	char *y = malloc(cap), *text, *text2;
	size_t len, len2;
	n += (size_t)snprintf(y + n, cap - n, "daemon:\n  allow_users: [");
	for (int i = 0; i < CFG_MAX_LIST; i++)
		n += (size_t)snprintf(y + n, cap - n, "%su%04d%0200d", i ? ", " : "", i, 0);
	n += (size_t)snprintf(y + n, cap - n, "]\n  socket: \"");
	for (int i = 0; i < CFG_MAX_STR; i++)
		n += (size_t)snprintf(y + n, cap - n, "\\x01");
	snprintf(y + n, cap - n, "\"\nmodels: [{name: a}]\n");
	struct cfg *c = load_ok(y);
	assert_int_equal(c->daemon.allow_users.n, CFG_MAX_LIST);
	assert_int_equal(strlen(c->daemon.socket), CFG_MAX_STR);
	assert_int_equal(cfg_dump(c, &text, &len), 0);
	struct cfg *d = load_ok(text);
	assert_int_equal(cfg_dump(d, &text2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	assert_int_equal(d->daemon.allow_users.n, CFG_MAX_LIST);
	assert_string_equal(d->daemon.allow_users.v[CFG_MAX_LIST - 1], c->daemon.allow_users.v[CFG_MAX_LIST - 1]);
	assert_string_equal(d->daemon.socket, c->daemon.socket);
	free(y);
	free(text);
	free(text2);
	cfg_free(c);
	cfg_free(d);
}

static void test_runtime_set(void **state)
{
	struct cfg *c = load_ok(cfg_builtin_yaml());
	struct cfg_lot *lot = &c->models[0].lot;
	char err[256], buf[64];

	assert_int_equal(cfg_lot_set(lot, "max_units", "8", err, sizeof err), 0);
	assert_int_equal(lot->max_units, 8);
	assert_int_equal(cfg_lot_get(lot, "max_units", buf, sizeof buf, err, sizeof err), 0);
	assert_string_equal(buf, "8");
	assert_int_equal(cfg_lot_set(lot, "max_units", "null", err, sizeof err), 0);
	assert_true(lot->max_units == CFG_NULL);
	assert_int_equal(cfg_lot_get(lot, "limits.max_units", buf, sizeof buf, err, sizeof err), 0);
	assert_string_equal(buf, "null");
	assert_int_equal(cfg_lot_set(lot, "max_running", "2", err, sizeof err), 0);
	assert_int_equal(lot->max_running, 2);
	assert_int_equal(cfg_lot_set(lot, "threads", "0", err, sizeof err), 0);
	assert_int_equal(lot->threads, 0);

	assert_int_equal(cfg_lot_set(lot, "max_queue_depth", "lots", err, sizeof err), -CFG_E_TYPE);
	assert_string_equal(err, "max_queue_depth: expected an integer 0..1000000, got \"lots\"");
	assert_int_equal(lot->max_queue_depth, 1000);
	assert_int_equal(cfg_lot_set(lot, "max_running", "0", err, sizeof err), -CFG_E_RANGE);
	assert_int_equal(lot->max_running, 2);
	assert_int_equal(cfg_lot_set(lot, "max_running", "null", err, sizeof err), 0);
	assert_true(lot->max_running == CFG_NULL);
	assert_int_equal(cfg_lot_set(lot, "threads", "null", err, sizeof err), -CFG_E_TYPE);
	assert_int_equal(cfg_lot_set(lot, "workers", "2", err, sizeof err), -CFG_E_UNKNOWN);
	assert_int_equal(cfg_lot_set(lot, "queue.backend", "memory", err, sizeof err),
			 -CFG_E_READONLY);
	assert_string_equal(err, "queue.backend: cannot be changed at runtime");
	assert_int_equal(cfg_lot_set(lot, "speed", "1", err, sizeof err), -CFG_E_UNKNOWN);
	assert_string_equal(err, "speed: unknown limit; known: max_running threads max_units "
				 "max_queue_depth timeout_secs max_units_per_user max_units_owner "
				 "priority_aging_secs retention_secs retention_tasks retention_bytes");
	assert_int_equal(cfg_lot_set(lot, "default_model", "x", err, sizeof err), -CFG_E_UNKNOWN);
	cfg_free(c);
}

/* One test walks every runtime-changeable lot setting: get, set, get. */
static void test_runtime_walk(void **state)
{
	struct cfg *c = load_ok(cfg_builtin_yaml());
	struct cfg_lot *lot = &c->lot;
	char err[256], before[64], after[64];
	int n = 0;
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		const struct cfg_setting *s = cfg_setting_at(i);
		if (s->scope != CFG_SCOPE_LOT || !(s->flags & CFG_F_RUNTIME))
			continue;
		assert_non_null(s->key);
		assert_int_equal(cfg_lot_get(lot, s->key, before, sizeof before, err, sizeof err), 0);
		char val[32];
		snprintf(val, sizeof val, "%.0f", s->min + 1);
		assert_int_equal(cfg_lot_set(lot, s->key, val, err, sizeof err), 0);
		assert_int_equal(cfg_lot_get(lot, s->key, after, sizeof after, err, sizeof err), 0);
		assert_string_equal(after, val);
		assert_int_equal(cfg_lot_set(lot, s->key, before, err, sizeof err), 0);
		int which;
		uint64_t v;
		assert_int_equal(cfg_lot_pool_limit(lot, s, &which, &v), 0);
		n++;
	}
	assert_int_equal(n, 11);
	cfg_free(c);
}

static void test_pool_config(void **state)
{
	struct cfg *c = load_ok("models:\n  - name: a\n    parking_lot: { limits: { max_units: 8, "
				"timeout_secs: 0 }, mailbox: { retention_secs: 2 } }\n");
	struct pool_config pc = { 0 };
	cfg_lot_pool_config(&c->models[0].lot, c->models[0].name, &pc);
	assert_string_equal(pc.name, "a");
	assert_int_equal(pc.max_units, 8);
	assert_int_equal(pc.max_queue_depth, 1000);
	assert_int_equal(pc.max_running, POOL_NO_CAP);
	assert_int_equal(pc.threads, 0);
	assert_int_equal(pc.timeout_ns, 0);
	assert_int_equal(pc.retention_ns, 2000000000ull);
	cfg_lot_pool_config(&c->lot, "x", &pc);
	assert_true(pc.max_units == POOL_UNLIMITED);
	assert_int_equal(pc.timeout_ns, 0);
	cfg_free(c);
	c = load_ok("models:\n  - name: a\n    parking_lot: { pool: { max_running: 3, threads: 2 } }\n");
	cfg_lot_pool_config(&c->models[0].lot, c->models[0].name, &pc);
	assert_int_equal(pc.max_running, 3);
	assert_int_equal(pc.threads, 2);
	cfg_free(c);
}

/* The built-in config with the default model: the parameters, a
 * path with quotes survives, echo stays available. */
static void test_builtin_llm(void **state)
{
	char *t = cfg_builtin_yaml_llm("/m/\"odd\\dir\"/SmolLM2.gguf");
	assert_non_null(t);
	struct cfg *c = load_ok(t);
	free(t);
	assert_string_equal(c->default_model, "smollm2");
	assert_int_equal(c->n_models, 2);
	const struct cfg_model *m = cfg_model_find(c, "smollm2");
	assert_non_null(m);
	assert_int_equal(m->executor, CFG_EXEC_LLM);
	assert_string_equal(m->path, "/m/\"odd\\dir\"/SmolLM2.gguf");
	assert_string_equal(m->params.device, "cpu");
	assert_int_equal(m->params.kvcache_mem_mb, 256);
	assert_int_equal(m->params.block_size, 16);
	assert_int_equal(m->params.max_num_seqs, 64);
	assert_int_equal(m->params.max_batch_tokens, 512);
	assert_true(m->params.context_length == CFG_NULL);
	assert_true(m->lot.max_units == CFG_NULL);
	m = cfg_model_find(c, "echo");
	assert_non_null(m);
	assert_int_equal(m->executor, CFG_EXEC_SYNTHETIC);
	cfg_free(c);
}

/* cfg_load without a file: smollm2 is the default exactly when its file is
 * in $XDG_DATA_HOME/plot/models. */
static void test_builtin_choice(void **state)
{
	char dir[] = "/tmp/test-cfg-data-XXXXXX", path[700], sub[600], got[700];
	char err[256];
	struct cfg *c;
	assert_non_null(mkdtemp(dir));
	unsetenv("PLOT_CONFIG");
	setenv("XDG_CONFIG_HOME", dir, 1); /* no plot/plot.yaml in it */
	setenv("XDG_DATA_HOME", dir, 1);
	snprintf(path, sizeof path, "%s/plot/models/" CFG_DEFAULT_MODEL_FILE, dir);
	assert_int_equal(cfg_builtin_model_path(got, sizeof got), 0);
	assert_string_equal(got, path);
	assert_int_equal(cfg_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c->default_model, "echo");
	assert_int_equal(c->n_models, 1);
	cfg_free(c);

	snprintf(sub, sizeof sub, "%s/plot", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof sub, "%s/plot/models", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(cfg_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c->default_model, "smollm2");
	assert_string_equal(cfg_model_find(c, "smollm2")->path, path);
	cfg_free(c);

	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(cfg_builtin_model_path(got, sizeof got), 0);
	assert_string_equal(got, "/home/u/.local/share/plot/models/" CFG_DEFAULT_MODEL_FILE);
	assert_int_equal(cfg_builtin_model_path(got, 10), -CFG_E_TOO_LARGE);
	unlink(path);
	rmdir(sub);
	snprintf(sub, sizeof sub, "%s/plot", dir);
	rmdir(sub);
	rmdir(dir);
}

static void test_locate(void **state)
{
	char path[512], dir[] = "/tmp/test-cfg-XXXXXX";
	enum cfg_source src;
	assert_non_null(mkdtemp(dir));
	setenv("PLOT_CONFIG", "/env/plot.yaml", 1);
	setenv("XDG_CONFIG_HOME", dir, 1);
	assert_int_equal(cfg_locate("/opt/x.yaml", path, sizeof path, &src), 0);
	assert_string_equal(path, "/opt/x.yaml");
	assert_int_equal(src, CFG_SRC_OPTION);
	assert_int_equal(cfg_locate(NULL, path, sizeof path, &src), 0);
	assert_string_equal(path, "/env/plot.yaml");
	assert_int_equal(src, CFG_SRC_ENV);
	unsetenv("PLOT_CONFIG");
	assert_int_equal(cfg_locate(NULL, path, sizeof path, &src), 0);
	assert_int_equal(src, CFG_SRC_BUILTIN);
	assert_string_equal(path, "");

	char sub[600], file[700];
	snprintf(sub, sizeof sub, "%s/plot", dir);
	snprintf(file, sizeof file, "%s/plot.yaml", sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("models: [{name: fromxdg}]\n", f);
	fclose(f);
	assert_int_equal(cfg_locate(NULL, path, sizeof path, &src), 0);
	assert_string_equal(path, file);
	assert_int_equal(src, CFG_SRC_XDG);

	struct cfg *c;
	char err[256];
	assert_int_equal(cfg_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c->default_model, "fromxdg");
	cfg_free(c);
	assert_int_equal(cfg_load("/nonexistent/plot.yaml", &c, err, sizeof err), -CFG_E_IO);
	assert_string_equal(err, "/nonexistent/plot.yaml: cannot open: No such file or directory");
	assert_int_equal(cfg_locate(NULL, path, 8, &src), 0); /* too long: built-in, not garbage */
	assert_int_equal(src, CFG_SRC_BUILTIN);
	unlink(file);
	rmdir(sub);
	rmdir(dir);
	unsetenv("XDG_CONFIG_HOME");
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* The committed man page is exactly what the table generates, and it
 * lists every setting. (Regenerate with `make man-cfg`.) */
static void test_man_page(void **state)
{
	char *gen, full[128];
	assert_int_equal(cfg_man_page(&gen), 0);
	for (size_t i = 0; i < cfg_setting_count(); i++) {
		cfg_setting_fullname(cfg_setting_at(i), full, sizeof full);
		char needle[160];
		snprintf(needle, sizeof needle, ".B %s\n", full);
		/* roff escapes '-' as '\-'; names have none */
		assert_non_null(strstr(gen, needle));
	}
	char *file = read_all("man/plot.yaml.5");
	if (!file)
		fail_msg("man/plot.yaml.5 missing (run from the repository root; make man-cfg)");
	if (strcmp(file, gen) != 0)
		fail_msg("man/plot.yaml.5 is out of date with lib/cfg/cfg-table.c: run make man-cfg");
	free(gen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin),
		cmocka_unit_test(test_defaults_minimal),
		cmocka_unit_test(test_table_defaults_parse),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_override_order),
		cmocka_unit_test(test_err_type),
		cmocka_unit_test(test_err_range),
		cmocka_unit_test(test_err_unknown),
		cmocka_unit_test(test_err_retired),
		cmocka_unit_test(test_err_foreign),
		cmocka_unit_test(test_device),
		cmocka_unit_test(test_err_structure),
		cmocka_unit_test(test_err_syntax),
		cmocka_unit_test(test_dump_roundtrip),
		cmocka_unit_test(test_dump_long_values),
		cmocka_unit_test(test_runtime_set),
		cmocka_unit_test(test_runtime_walk),
		cmocka_unit_test(test_pool_config),
		cmocka_unit_test(test_locate),
		cmocka_unit_test(test_builtin_llm),
		cmocka_unit_test(test_builtin_choice),
		cmocka_unit_test(test_man_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
