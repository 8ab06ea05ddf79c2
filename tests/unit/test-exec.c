/*
 * test-exec.c — the executor table (lib/exec): lookup by config name, and
 * the whole seam the daemon uses, driven without a daemon: a model built
 * from config text, prepare (inline for synthetic), pool_submit, the
 * result, describe and stats; an llm model whose file is missing fails at
 * creation or load with the path in the message.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plot/exec.h"

static struct cfg *load(const char *yaml)
{
	struct cfg *c = NULL;
	char err[512];
	if (cfg_load_string(yaml, strlen(yaml), "test.yaml", &c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return c;
}

static struct exec *make(const struct cfg_model *cm, char *err, size_t errlen)
{
	struct exec_config ec;
	memset(&ec, 0, sizeof(ec));
	ec.model = cm;
	ec.path = cm->path;
	cfg_lot_pool_config(&cm->lot, cm->name, &ec.pool);
	return exec_new(&ec, err, errlen);
}

static void test_table(void **state)
{
	assert_non_null(exec_find("synthetic"));
	assert_non_null(exec_find("llm"));
	assert_null(exec_find("nope"));
	assert_null(exec_find(NULL));
	size_t n = 0;
	while (exec_at(n))
		n++;
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(exec_find(exec_at(i)->name), exec_at(i));
		assert_non_null(exec_at(i)->create);
		assert_non_null(exec_at(i)->prepare);
	}
}

struct got {
	struct exec_prepared *r;
	int calls;
};

static void on_prep(void *ctx, struct exec_prepared *r)
{
	struct got *g = ctx;
	g->r = r;
	g->calls++;
}

static void test_synthetic_through_the_seam(void **state)
{
	struct cfg *c = load("models:\n  - name: echo\n    executor: synthetic\n"
			     "    params: { tokens_per_sec: 0 }\n");
	char err[256] = "";
	struct exec *e = make(&c->models[0], err, sizeof(err));
	assert_non_null(e);
	assert_string_equal(exec_name(e), "synthetic");

	struct exec_request rq = { .prompt = "one two three", .has = EXEC_HAS_COST,
				   .cost = 3, .owner_uid = 42 };
	struct got g = { 0 };
	assert_int_equal(exec_prepare(e, &rq, on_prep, &g, err, sizeof(err)), 0);
	assert_int_equal(g.calls, 1); /* inline */
	assert_int_equal(g.r->status, 0);
	assert_int_equal(g.r->sub.cost, 3);
	assert_int_equal(g.r->sub.owner_uid, 42);
	assert_string_equal(g.r->sub.label, "one two three");

	uint64_t id;
	int st;
	char *out;
	size_t len;
	assert_int_equal(pool_submit(exec_pool(e), &g.r->sub, &id), 0);
	g.r->sub.payload = NULL;
	exec_prepared_free(g.r);
	assert_int_equal(pool_wait(exec_pool(e), id, POOL_WAIT_FOREVER, &st), 0);
	assert_int_equal(st, POOL_DONE);
	assert_int_equal(pool_result(exec_pool(e), id, &out, &len, &st), 0);
	assert_string_equal(out, "one two three");
	free(out);

	struct exec_info info;
	struct exec_stats es;
	exec_describe(e, &info);
	assert_string_equal(info.executor, "synthetic");
	assert_string_equal(info.state, "ready");
	exec_stats(e, &es);
	assert_int_equal(es.has_engine, 0);
	exec_free(e);
	cfg_free(c);
}

static void test_chat_echoes_last_message(void **state)
{
	struct cfg *c = load("models:\n  - name: echo\n    executor: synthetic\n");
	char err[256];
	struct exec *e = make(&c->models[0], err, sizeof(err));
	struct tmpl_msg msgs[] = { { "user", "first" }, { "user", "second" } };
	struct exec_request rq = { .messages = msgs, .n_messages = 2,
				   .has = EXEC_HAS_MAX_TOKENS, .max_tokens = 1 };
	struct got g = { 0 };
	assert_int_equal(exec_prepare(e, &rq, on_prep, &g, err, sizeof(err)), 0);
	assert_string_equal(g.r->label, "second");
	assert_int_equal(g.r->sub.cost, 1);
	exec_prepared_free(g.r); /* frees the payload the pool never took */
	exec_free(e);
	cfg_free(c);
}

struct waited {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct exec_prepared *r;
	int done;
};

static void on_prep_wait(void *ctx, struct exec_prepared *r)
{
	struct waited *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->r = r;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A missing file fails the model (at creation, or on the loader thread: a
 * prepare then answers with the reason) and names the path. */
static void test_llm_missing_file(void **state)
{
	struct cfg *c = load("models:\n  - name: m\n    executor: llm\n"
			     "    path: /nonexistent/model.gguf\n");
	char err[256] = "";
	struct exec *e = make(&c->models[0], err, sizeof(err));
	if (!e) {
		assert_non_null(strstr(err, "/nonexistent/model.gguf"));
		cfg_free(c);
		return;
	}
	struct waited w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0 };
	struct exec_request rq = { .prompt = "hi" };
	assert_int_equal(exec_prepare(e, &rq, on_prep_wait, &w, err, sizeof(err)), 0);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_non_null(w.r);
	assert_int_equal(w.r->status, -EXEC_E_LOAD);
	assert_non_null(strstr(w.r->error, "/nonexistent/model.gguf"));
	exec_prepared_free(w.r);
	struct exec_info info;
	exec_describe(e, &info);
	assert_string_equal(info.state, "failed");
	assert_non_null(strstr(info.error, "/nonexistent/model.gguf"));
	exec_free(e);
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_synthetic_through_the_seam),
		cmocka_unit_test(test_chat_echoes_last_message),
		cmocka_unit_test(test_llm_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
