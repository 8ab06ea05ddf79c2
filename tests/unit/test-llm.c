/*
 * test-llm.c — the engine's KV block accounting, batch invariance, batch
 * validation, the packed vs row kernels and loader error paths, on the tiny GGUF fixtures in
 * tests/fixtures (regenerate with tests/fixtures/make-llm-fixtures.py).
 * Numerical agreement with the NumPy oracle is tests/ref's job.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/engine/model-impl.h"
#include "plot/llm.h"

#define TINY "tests/fixtures/llm-tiny.gguf"
#define TINY_GEMMA "tests/fixtures/llm-tiny-gemma3.gguf"

static struct llm_model *load(const char *path)
{
	char err[256];
	struct llm_model *m = llm_model_load(path, err, sizeof(err));
	if (!m)
		fail_msg("%s: %s", path, err);
	return m;
}

/* The cache type the batch tests run with (each runs with both). */
static enum llm_kv_type kv_type = LLM_KV_F16;

/* A pool of exactly n blocks of bs tokens. */
static struct llm_kv *kv_blocks(struct llm_model *m, uint32_t n, uint32_t bs, uint32_t seqs)
{
	char err[256];
	size_t bpt = llm_kv_bytes_per_token(m, kv_type);
	size_t budget = bpt * bs * n + bpt - 1;
	struct llm_kv *kv = llm_kv_new(m, kv_type, budget, bs, seqs, err, sizeof(err));
	if (!kv)
		fail_msg("%s", err);
	assert_int_equal(llm_kv_blocks_total(kv), n);
	return kv;
}

static void test_kv_accounting(void **state)
{
	struct llm_model *m = load(TINY);
	struct llm_kv *kv = kv_blocks(m, 10, 4, 3);

	assert_int_equal(llm_kv_blocks_needed(kv, 0, 9), 3);
	assert_int_equal(llm_kv_seq_reserve(kv, 0, 9), 0);
	assert_int_equal(llm_kv_seq_blocks(kv, 0), 3);
	assert_int_equal(llm_kv_blocks_free(kv), 7);
	assert_int_equal(llm_kv_blocks_needed(kv, 0, 12), 0);
	assert_int_equal(llm_kv_blocks_needed(kv, 0, 13), 1);
	assert_int_equal(llm_kv_seq_reserve(kv, 1, 28), 0);
	assert_int_equal(llm_kv_blocks_free(kv), 0);
	/* exhaustion: all or nothing */
	assert_int_equal(llm_kv_seq_reserve(kv, 2, 1), -LLM_EKVFULL);
	assert_int_equal(llm_kv_seq_blocks(kv, 2), 0);
	assert_int_equal(llm_kv_seq_reserve(kv, 0, 13), -LLM_EKVFULL);
	assert_int_equal(llm_kv_seq_blocks(kv, 0), 3);
	assert_int_equal(llm_kv_seq_reserve(kv, 3, 1), -LLM_EINVAL);
	/* freeing returns every block */
	llm_kv_seq_free(kv, 1);
	assert_int_equal(llm_kv_blocks_free(kv), 7);
	assert_int_equal(llm_kv_seq_reserve(kv, 2, 28), 0);
	llm_kv_seq_free(kv, 0);
	llm_kv_seq_free(kv, 2);
	assert_int_equal(llm_kv_blocks_free(kv), 10);
	llm_kv_free(kv);
	llm_model_free(m);
}

static void test_kv_new_bounds(void **state)
{
	struct llm_model *m = load(TINY);
	char err[256];
	size_t b16 = llm_kv_bytes_per_token(m, LLM_KV_F16);
	assert_int_equal(llm_kv_bytes_per_token(m, LLM_KV_F32), 2 * b16);
	assert_null(llm_kv_new(m, LLM_KV_F16, b16 * 4 - 1, 4, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "budget"));
	assert_null(llm_kv_new(m, LLM_KV_F16, 1 << 20, 0, 1, err, sizeof(err)));
	assert_null(llm_kv_new(m, LLM_KV_F16, 1 << 20, 16, 0, err, sizeof(err)));
	assert_null(llm_kv_new(m, (enum llm_kv_type)2, 1 << 20, 16, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "type"));
	/* one budget holds twice the blocks in half precision */
	struct llm_kv *h = llm_kv_new(m, LLM_KV_F16, b16 * 64, 16, 1, err, sizeof(err));
	struct llm_kv *f = llm_kv_new(m, LLM_KV_F32, b16 * 64, 16, 1, err, sizeof(err));
	assert_non_null(h);
	assert_non_null(f);
	assert_int_equal(llm_kv_blocks_total(h), 4);
	assert_int_equal(llm_kv_blocks_total(f), 2);
	assert_int_equal(llm_kv_type(h), LLM_KV_F16);
	assert_int_equal(llm_kv_type(f), LLM_KV_F32);
	llm_kv_free(h);
	llm_kv_free(f);
	llm_model_free(m);
}

static int forward1(struct llm_model *m, struct llm_kv *kv, uint32_t seq, uint32_t pos,
		    int32_t tok, float *logits)
{
	char err[256];
	struct llm_batch_entry e = { seq, pos, tok, 1 };
	return llm_forward(m, kv, &(struct llm_batch){ 1, &e }, logits, err, sizeof(err));
}

/* The forward pass refuses a batch it cannot cache and changes nothing. */
static void test_forward_kv_full(void **state)
{
	struct llm_model *m = load(TINY);
	struct llm_kv *kv = kv_blocks(m, 2, 4, 2);
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *lg = calloc(12, nv * sizeof(float));
	struct llm_batch_entry e[12];
	char err[256];
	for (uint32_t i = 0; i < 12; i++)
		e[i] = (struct llm_batch_entry){ i / 6, i % 6, (int32_t)i, 0 };
	assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ 12, e }, lg, err, sizeof(err)),
			 -LLM_EKVFULL);
	assert_int_equal(llm_kv_blocks_free(kv), 2);
	assert_int_equal(llm_kv_seq_len(kv, 0), 0);
	assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ 6, e }, lg, err, sizeof(err)), 0);
	assert_int_equal(llm_kv_seq_len(kv, 0), 6);
	assert_int_equal(llm_kv_blocks_free(kv), 0);
	llm_kv_seq_free(kv, 0);
	assert_int_equal(llm_kv_blocks_free(kv), 2);
	free(lg);
	llm_kv_free(kv);
	llm_model_free(m);
}

static void test_batch_validation(void **state)
{
	struct llm_model *m = load(TINY);
	struct llm_kv *kv = kv_blocks(m, 8, 4, 2);
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *lg = calloc(2, nv * sizeof(float));
	char err[256];

	assert_int_equal(forward1(m, kv, 0, 0, (int32_t)nv, lg), -LLM_EINVAL);
	assert_int_equal(forward1(m, kv, 0, 0, -1, lg), -LLM_EINVAL);
	assert_int_equal(forward1(m, kv, 2, 0, 1, lg), -LLM_EINVAL);
	assert_int_equal(forward1(m, kv, 0, 1, 1, lg), -LLM_EINVAL); /* a hole */
	struct llm_batch_entry e[2] = { { 0, 0, 1, 1 }, { 0, 2, 1, 1 } };
	assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ 2, e }, lg, err, sizeof(err)),
			 -LLM_EINVAL);
	assert_non_null(strstr(err, "entry 1"));
	assert_int_equal(llm_kv_seq_len(kv, 0), 0);
	assert_int_equal(llm_kv_blocks_free(kv), 8);
	assert_int_equal(forward1(m, kv, 0, 0, 1, lg), 0);
	assert_int_equal(forward1(m, kv, 0, 1, 2, lg), 0);
	/* rewinding to position 1 is allowed and drops position 1's old token */
	assert_int_equal(forward1(m, kv, 0, 1, 3, lg), 0);
	assert_int_equal(llm_kv_seq_len(kv, 0), 2);
	free(lg);
	llm_kv_free(kv);
	llm_model_free(m);
}

static uint32_t argmax(const float *x, uint32_t n)
{
	uint32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

#define N_SEQ 16
#define PROMPT 7
#define GEN 8

/* Greedy-decode seq `me` from its prompt; the other active sequences (when
 * crowd) run their own prompts of other lengths in the same batches. Fills
 * out (GEN, n_vocab) with `me`'s logits at each step. */
static void run_greedy(struct llm_model *m, int crowd, uint32_t me, float *out)
{
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	struct llm_kv *kv = kv_blocks(m, N_SEQ * 8, 4, N_SEQ);
	struct llm_batch_entry e[N_SEQ * (PROMPT + 4)];
	float *lg = malloc((size_t)N_SEQ * nv * sizeof(float));
	int32_t last[N_SEQ];
	uint32_t len[N_SEQ];
	char err[256];
	uint32_t n = 0;
	for (uint32_t s = 0; s < N_SEQ; s++) {
		if (!crowd && s != me)
			continue;
		len[s] = s == me ? PROMPT : 1 + (s * 5) % (PROMPT + 3); /* other lengths */
		for (uint32_t p = 0; p < len[s]; p++)
			e[n++] = (struct llm_batch_entry){ s, p,
				(int32_t)(s == me ? 3 + p * 7 : s * 3 + p) % (int32_t)nv,
				p == len[s] - 1 };
	}
	for (uint32_t step = 0; step < GEN; step++) {
		assert_int_equal(llm_forward(m, kv, &(struct llm_batch){ n, e }, lg, err,
					     sizeof(err)), 0);
		uint32_t row = 0, k = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (!e[i].want_logits)
				continue;
			uint32_t s = e[i].seq;
			last[s] = (int32_t)argmax(lg + (size_t)row * nv, nv);
			if (s == me)
				memcpy(out + (size_t)step * nv, lg + (size_t)row * nv, nv * sizeof(float));
			row++;
		}
		/* next batch: one token per sequence, me not always first */
		for (uint32_t i = 0; i < N_SEQ; i++) {
			uint32_t s = (i + step * 3) % N_SEQ;
			if (!crowd && s != me)
				continue;
			e[k++] = (struct llm_batch_entry){ s, len[s]++, last[s], 1 };
		}
		n = k;
	}
	free(lg);
	llm_kv_free(kv);
}

/* The same logits alone, in a crowd, and with 2 threads; on the packed
 * kernels and on the row kernels. Returns the packed run's logits. */
static float *check_invariance_path(struct llm_model *m, int packed)
{
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *alone = malloc((size_t)GEN * nv * sizeof(float));
	float *crowd = malloc((size_t)GEN * nv * sizeof(float));
	llm_model_set_packed(m, packed);
	assert_int_equal(llm_model_set_threads(m, 1), 0);
	run_greedy(m, 0, 5, alone);
	run_greedy(m, 1, 5, crowd);
	assert_memory_equal(alone, crowd, (size_t)GEN * nv * sizeof(float));
	assert_int_equal(llm_model_set_threads(m, 2), 0);
	run_greedy(m, 1, 5, crowd);
	assert_memory_equal(alone, crowd, (size_t)GEN * nv * sizeof(float));
	free(crowd);
	return alone;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]);
		worst = d > worst ? d : worst;
	}
	return worst;
}

static void check_invariance(const char *path, enum llm_kv_type type)
{
	kv_type = type;
	struct llm_model *m = load(path);
	/* the fixtures' matrices are Q8_0 with rows % 8 == 0: they must pack */
	assert_non_null(m->layers[0].wq.packed);
	assert_non_null(m->output.packed);
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *packed = check_invariance_path(m, 1), *row = check_invariance_path(m, 0);
	/* the two paths round activations differently (pack.h): close, not equal */
	assert_true(max_abs_diff(packed, row, (size_t)GEN * nv) < 1.0);
	assert_memory_not_equal(packed, row, (size_t)GEN * nv * sizeof(float));
	free(packed);
	free(row);
	llm_model_free(m);
	kv_type = LLM_KV_F16;
}

static void test_batch_invariance_llama(void **state) { check_invariance(TINY, LLM_KV_F16); }
static void test_batch_invariance_gemma3(void **state) { check_invariance(TINY_GEMMA, LLM_KV_F16); }
static void test_batch_invariance_llama_f32(void **state) { check_invariance(TINY, LLM_KV_F32); }
static void test_batch_invariance_gemma3_f32(void **state)
{
	check_invariance(TINY_GEMMA, LLM_KV_F32);
}

/* The half cache really rounds: its logits are near the float cache's, not
 * equal to them. */
static void test_kv_f16_rounds(void **state)
{
	struct llm_model *m = load(TINY);
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *h = malloc((size_t)GEN * nv * sizeof(float));
	float *f = malloc((size_t)GEN * nv * sizeof(float));
	kv_type = LLM_KV_F16;
	run_greedy(m, 0, 5, h);
	kv_type = LLM_KV_F32;
	run_greedy(m, 0, 5, f);
	kv_type = LLM_KV_F16;
	assert_true(max_abs_diff(h, f, (size_t)GEN * nv) < 0.5);
	assert_memory_not_equal(h, f, (size_t)GEN * nv * sizeof(float));
	free(h);
	free(f);
	llm_model_free(m);
}

static void test_load_errors(void **state)
{
	char err[256];
	assert_null(llm_model_load("tests/fixtures/llm-missing-tensor.gguf", err, sizeof(err)));
	assert_string_equal(err, "missing tensor 'blk.1.ffn_up.weight'");
	assert_null(llm_model_load("tests/fixtures/llm-bad-shape.gguf", err, sizeof(err)));
	assert_non_null(strstr(err, "tensor 'blk.0.attn_k.weight': shape (32, 32"));
	assert_null(llm_model_load("tests/fixtures/no-such-model.gguf", err, sizeof(err)));
	assert_non_null(strstr(err, "no-such-model.gguf"));
}

static void test_hparams(void **state)
{
	struct llm_model *m = load(TINY_GEMMA);
	const struct llm_hparams *hp = llm_model_hparams(m);
	assert_int_equal(hp->arch, LLM_ARCH_GEMMA3);
	assert_int_equal(hp->n_layer, 6);
	assert_int_equal(hp->n_vocab, 64);
	assert_int_equal(hp->swa_window, 3);
	assert_true(hp->tied_embeddings);
	assert_float_equal(hp->attn_scale, 0.25f, 1e-7);
	llm_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_accounting),
		cmocka_unit_test(test_kv_new_bounds),
		cmocka_unit_test(test_forward_kv_full),
		cmocka_unit_test(test_batch_validation),
		cmocka_unit_test(test_batch_invariance_llama),
		cmocka_unit_test(test_batch_invariance_gemma3),
		cmocka_unit_test(test_batch_invariance_llama_f32),
		cmocka_unit_test(test_batch_invariance_gemma3_f32),
		cmocka_unit_test(test_kv_f16_rounds),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_hparams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
