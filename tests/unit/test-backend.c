/*
 * test-backend.c — the engine's device seam: the backend registry (names,
 * indexes, the messages for malformed and unbuilt devices), the executor's
 * and the loader's device errors, KV bookkeeping over a fake backend's
 * storage, and llm_forward going through the model's backend table.
 * Runs in the CPU build and in make CUDA=1's (no GPU needed: a CUDA build
 * without a device must fail to load with the probe's message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/engine/backend-impl.h"
#include "llm/engine/kv-impl.h"
#include "llm/engine/model-impl.h"
#include "plot/llm-exec.h"
#include "plot/llm.h"

#define TINY "tests/fixtures/llm-tiny.gguf"
#define NO_CUDA "this build has no CUDA backend (rebuild with make CUDA=1)"

static int find(const char *device, const struct llm_backend_ops **ops, int *index,
		char *err)
{
	*ops = NULL;
	*index = -1;
	err[0] = '\0';
	return llm_backend_find(device, ops, index, err, 256);
}

static void test_registry_cpu(void **state)
{
	const struct llm_backend_ops *ops;
	int ix;
	char err[256];
	assert_int_equal(find(NULL, &ops, &ix, err), 0);
	assert_ptr_equal(ops, &llm_backend_cpu);
	assert_int_equal(ix, 0);
	assert_int_equal(find("cpu", &ops, &ix, err), 0);
	assert_string_equal(ops->name, "cpu");
	assert_int_equal(llm_device_check(NULL, err, sizeof err), 0);
	assert_int_equal(llm_device_check("cpu", err, sizeof err), 0);
}

static void test_registry_cuda(void **state)
{
	const struct llm_backend_ops *ops;
	int ix;
	char err[256];
#ifdef PLOT_CUDA
	assert_int_equal(find("cuda", &ops, &ix, err), 0);
	assert_string_equal(ops->name, "cuda");
	assert_int_equal(ix, 0);
	assert_int_equal(find("cuda:3", &ops, &ix, err), 0);
	assert_int_equal(ix, 3);
#else
	assert_int_equal(find("cuda", &ops, &ix, err), -LLM_EUNSUP);
	assert_string_equal(err, "cuda: " NO_CUDA);
	assert_null(ops);
	assert_int_equal(find("cuda:1", &ops, &ix, err), -LLM_EUNSUP);
	assert_string_equal(err, "cuda:1: " NO_CUDA);
#endif
}

/* Malformed in every build, and the message quotes the name. */
static void test_registry_malformed(void **state)
{
	static const char *bad[] = { "cuda:x", "cuda:", "cuda:256", "cuda:-1", "cuda:1:2",
				     "cpu:0", "gpu", "", "CPU", "cudax" };
	const struct llm_backend_ops *ops;
	int ix;
	char err[256], want[80];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(find(bad[i], &ops, &ix, err), -LLM_EINVAL);
		snprintf(want, sizeof want, "'%s': ", bad[i]);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: %s", bad[i], err);
		assert_null(ops);
	}
	assert_int_equal(find("gpu", &ops, &ix, err), -LLM_EINVAL);
	assert_non_null(strstr(err, "unknown device"));
	assert_int_equal(find("cuda:x", &ops, &ix, err), -LLM_EINVAL);
	assert_non_null(strstr(err, "malformed device index"));
}

static struct llm_exec_config exec_config(const char *device)
{
	return (struct llm_exec_config){
		.name = "tiny", .path = TINY, .device = device, .kvcache_mem_mb = 1,
		.block_size = 16, .max_num_seqs = 2, .max_batch_tokens = 64,
	};
}

/* llm_exec_new refuses a bad device before starting anything, naming the field. */
static void test_exec_device(void **state)
{
	struct pool_executor pe;
	struct llm_exec *x;
	char err[256];
	struct llm_exec_config c = exec_config("cuda:x");
	assert_int_equal(llm_exec_new(&c, &pe, &x, err, sizeof err), -LLM_EXEC_E_INVALID);
	assert_non_null(strstr(err, "params.device: 'cuda:x': malformed device index"));
	c = exec_config("gpu");
	assert_int_equal(llm_exec_new(&c, &pe, &x, err, sizeof err), -LLM_EXEC_E_INVALID);
	assert_non_null(strstr(err, "params.device: 'gpu': unknown device"));
#ifndef PLOT_CUDA
	c = exec_config("cuda");
	assert_int_equal(llm_exec_new(&c, &pe, &x, err, sizeof err), -LLM_EXEC_E_INVALID);
	assert_string_equal(err, "params.device: cuda: " NO_CUDA);
#endif
}

static void test_load_on(void **state)
{
	char err[256];
	struct llm_model *m = llm_model_load_on(TINY, NULL, err, sizeof err);
	if (!m)
		fail_msg("%s", err);
	assert_string_equal(llm_model_device(m), "cpu");
	llm_model_free(m);
	assert_null(llm_model_load_on(TINY, "gpu", err, sizeof err));
	assert_non_null(strstr(err, "'gpu'"));
	/* the device is refused before the file is read */
	assert_null(llm_model_load_on("/nonexistent.gguf", "cuda:7", err, sizeof err));
#ifdef PLOT_CUDA
	/* no such device or no runtime; on a GPU machine "cuda" loads */
	assert_int_equal(strncmp(err, "cuda:7: ", 8), 0);
	m = llm_model_load_on(TINY, "cuda", err, sizeof err);
	if (m) {
		assert_string_equal(llm_model_device(m), "cuda:0");
		llm_model_free(m);
	} else {
		assert_int_equal(strncmp(err, "cuda:0: ", 8), 0);
	}
#else
	assert_string_equal(err, "cuda:7: " NO_CUDA);
#endif
}

/* ---- KV bookkeeping over a fake backend's storage ------------------------ */

static struct fake {
	int allocs, frees, fail;
	struct llm_kv_geom geom;
	void *dev_seen;
	char bytes[64];          /* the "storage" */
} fake;

static int fake_kv_alloc(void *dev, const struct llm_kv_geom *g, void **store, char *err,
			 size_t errlen)
{
	fake.allocs++;
	fake.geom = *g;
	fake.dev_seen = dev;
	if (fake.fail) {
		snprintf(err, errlen, "fake: no room");
		return -LLM_ENOMEM;
	}
	*store = fake.bytes;
	return 0;
}

static void fake_kv_free(void *dev, void *store)
{
	assert_ptr_equal(store, fake.bytes);
	fake.frees++;
}

static const struct llm_backend_ops fake_ops = {
	.name = "fake", .kv_alloc = fake_kv_alloc, .kv_free = fake_kv_free,
};

static const struct llm_kv_geom fake_geom = {
	.type = LLM_KV_F16, .elem_bytes = 2, .n_layer = 2, .kdim = 8, .vdim = 8,
	.block_size = 4, .n_blocks = 5,
};

/* Loading reports real progress: from 0, rising, through values strictly
 * between 0 and 1 (the weights being repacked), to 1, on the loading
 * thread, and never after the load returned. */
struct prog_log {
	double f[4096];
	int n;
};

static void on_prog(void *ctx, double f)
{
	struct prog_log *l = ctx;
	if (l->n < 4096)
		l->f[l->n++] = f;
}

static void test_load_progress(void **state)
{
	(void)state;
	char err[256];
	static struct prog_log log;
	log.n = 0;
	struct llm_model *m = llm_model_load_progress(TINY, NULL, on_prog, &log, err, sizeof err);
	assert_non_null(m);
	assert_true(log.n >= 3);
	assert_true(log.f[0] == 0.0);
	assert_true(log.f[log.n - 1] == 1.0);
	int between = 0;
	for (int i = 1; i < log.n; i++) {
		assert_true(log.f[i] >= log.f[i - 1]);
		between += log.f[i] > 0 && log.f[i] < 1;
	}
	assert_true(between >= 2);
	int n = log.n;
	llm_model_free(m);
	assert_int_equal(log.n, n);
}

static void test_kv_fake_storage(void **state)
{
	char err[256];
	int dev;
	memset(&fake, 0, sizeof fake);
	struct llm_kv *kv = llm_kv_create(&fake_ops, &dev, NULL, &fake_geom, 3, err, sizeof err);
	assert_non_null(kv);
	assert_int_equal(fake.allocs, 1);
	assert_ptr_equal(fake.dev_seen, &dev);
	assert_memory_equal(&fake.geom, &fake_geom, sizeof fake_geom);
	assert_ptr_equal(kv->store, fake.bytes);
	assert_int_equal(llm_kv_blocks_total(kv), 5);
	assert_int_equal(llm_kv_block_size(kv), 4);
	assert_int_equal(llm_kv_type(kv), LLM_KV_F16);

	assert_int_equal(llm_kv_seq_reserve(kv, 0, 6), 0);   /* blocks 0, 1 */
	assert_int_equal(llm_kv_block(kv, 0, 0), 0);
	assert_int_equal(llm_kv_block(kv, 0, 5), 1);
	assert_int_equal(llm_kv_seq_reserve(kv, 1, 12), 0);  /* blocks 2, 3, 4 */
	assert_int_equal(llm_kv_block(kv, 1, 11), 4);
	assert_int_equal(llm_kv_blocks_free(kv), 0);
	/* all or nothing */
	assert_int_equal(llm_kv_seq_reserve(kv, 2, 1), -LLM_EKVFULL);
	assert_int_equal(llm_kv_seq_blocks(kv, 2), 0);
	assert_int_equal(llm_kv_seq_reserve(kv, 3, 1), -LLM_EINVAL);
	llm_kv_set_len(kv, 0, 6);
	llm_kv_seq_truncate(kv, 0, 2);
	assert_int_equal(llm_kv_seq_len(kv, 0), 2);
	assert_int_equal(llm_kv_seq_blocks(kv, 0), 2);
	llm_kv_seq_free(kv, 0);
	assert_int_equal(llm_kv_blocks_free(kv), 2);
	assert_int_equal(llm_kv_seq_len(kv, 0), 0);
	/* returned blocks come back in the order they were taken */
	assert_int_equal(llm_kv_seq_reserve(kv, 2, 8), 0);
	assert_int_equal(llm_kv_block(kv, 2, 0), 0);
	assert_int_equal(llm_kv_block(kv, 2, 4), 1);
	assert_int_equal(fake.frees, 0);
	llm_kv_free(kv);
	assert_int_equal(fake.frees, 1);
}

/* A storage failure is the cache's failure, with the backend's message. */
static void test_kv_fake_storage_fails(void **state)
{
	char err[256];
	memset(&fake, 0, sizeof fake);
	fake.fail = 1;
	assert_null(llm_kv_create(&fake_ops, NULL, NULL, &fake_geom, 3, err, sizeof err));
	assert_string_equal(err, "fake: no room");
	assert_int_equal(fake.allocs, 1);
	assert_int_equal(fake.frees, 0);
}

/* ---- llm_forward goes through the table; the host half is shared -------- */

static int forwards;

static int counting_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
			    float *logits, char *err, size_t errlen)
{
	forwards++;
	return llm_backend_cpu.forward(m, kv, b, logits, err, errlen);
}

static void test_forward_through_table(void **state)
{
	char err[256];
	struct llm_model *m = llm_model_load(TINY, err, sizeof err);
	if (!m)
		fail_msg("%s", err);
	struct llm_backend_ops counting = llm_backend_cpu;
	counting.forward = counting_forward;
	m->be = &counting;
	struct llm_kv *kv = llm_kv_new(m, LLM_KV_F32, 1 << 20, 4, 2, err, sizeof err);
	assert_non_null(kv);
	float *lg = malloc(m->hp.n_vocab * sizeof(float));
	struct llm_batch_entry e[2] = { { 0, 0, 1, 0 }, { 0, 1, 2, 1 } };
	forwards = 0;
	assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ 2, e }, lg, err, sizeof err), 0);
	assert_int_equal(forwards, 1);
	assert_int_equal(llm_kv_seq_len(kv, 0), 2);
	/* a bad batch is refused by the host before the backend sees it */
	e[0].pos = 5;
	assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ 1, e }, lg, err, sizeof err),
			 -LLM_EINVAL);
	assert_int_equal(forwards, 1);
	free(lg);
	llm_kv_free(kv);
	m->be = &llm_backend_cpu;
	llm_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_cpu),
		cmocka_unit_test(test_registry_cuda),
		cmocka_unit_test(test_registry_malformed),
		cmocka_unit_test(test_exec_device),
		cmocka_unit_test(test_load_on),
		cmocka_unit_test(test_load_progress),
		cmocka_unit_test(test_kv_fake_storage),
		cmocka_unit_test(test_kv_fake_storage_fails),
		cmocka_unit_test(test_forward_through_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
