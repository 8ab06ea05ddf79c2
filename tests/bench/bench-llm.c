/*
 * bench-llm — engine throughput on one model (driven by bench_llm.py, which
 * also measures llama-cpp-python with the same model, threads and tokens).
 *
 *   bench-llm MODEL IDS [--threads N] [--gen G] [--batch B] [--short S] [--repeat R]
 *             [--packed 0|1] [--kv-type f16|f32] [--serve 1]
 *
 * IDS: comma-separated prompt ids (the prefill prompt, e.g. 512 of them).
 *   prefill: one forward over all of IDS (logits of the last entry only).
 *   decode:  prefill IDS[0..S), then G greedy steps of one token.
 *   batchB:  B sequences, each prefilled with IDS[0..S) (rotated per
 *            sequence so they differ), then G steps of B tokens each.
 * prefill and decode run R times (default 3) and report the best, to damp
 * the noise of a shared machine; batchB runs once.
 * --packed 0 runs the row kernels instead of the repacked weights.
 * --kv-type: the KV cache's element type (default f16, plotd's default).
 * Prints "engine: prefill_tps=X decode_tps=X batchB_tps=X rss_mb=X load_s=X"
 * on stdout (load_s: llm_model_load, repacking included).
 * --serve 1: after loading and warming up, run one measurement per line of
 * stdin ("prefill", "decode" or "batch") and print "<what>_tps=X" for each,
 * so that bench_llm.py can alternate ours and the peer step by step with the
 * model loaded once; at EOF print "rss_mb=X load_s=X" and exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "plot/llm.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Greedy pick, first index of the maximum. Two passes with eight running
 * maxima (which the compiler vectorises) instead of one compare-and-branch
 * per logit: on Gemma's 262144-entry vocabulary the naive loop was 11% of
 * the batch-16 time, while the peer's side uses NumPy's vectorised argmax. */
static uint32_t argmax(const float *x, uint32_t n)
{
	float m8[8];
	uint32_t i = 0;
	for (int k = 0; k < 8; k++)
		m8[k] = x[0];
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			m8[k] = x[i + k] > m8[k] ? x[i + k] : m8[k];
	float m = m8[0];
	for (int k = 1; k < 8; k++)
		m = m8[k] > m ? m8[k] : m;
	for (; i < n; i++)
		m = x[i] > m ? x[i] : m;
	for (i = 0; i < n; i++)
		if (x[i] == m)
			return i;
	return 0; /* only NaNs */
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "bench-llm: %s: %s\n", what, err);
	exit(1);
}

static void run(struct llm_model *m, struct llm_kv *kv, struct llm_batch_entry *e, uint32_t n,
		float *lg)
{
	char err[256];
	if (llm_forward(m, kv, &(struct llm_batch){ n, e }, lg, err, sizeof(err)))
		die("forward", err);
}

/* B sequences: prefill S ids each (one batch), then G steps of B tokens. */
static double decode(struct llm_model *m, struct llm_kv *kv, const int32_t *ids, uint32_t s,
		     uint32_t g, uint32_t b, float *lg)
{
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	struct llm_batch_entry *e = calloc((size_t)b * s, sizeof(*e));
	uint32_t n = 0;
	for (uint32_t q = 0; q < b; q++) {
		llm_kv_seq_free(kv, q);
		for (uint32_t p = 0; p < s; p++)
			e[n++] = (struct llm_batch_entry){ q, p, ids[(p + q) % s], p == s - 1 };
	}
	run(m, kv, e, n, lg);
	double t0 = now();
	for (uint32_t step = 0; step < g; step++) {
		for (uint32_t q = 0; q < b; q++)
			e[q] = (struct llm_batch_entry){ q, s + step,
				(int32_t)argmax(lg + (size_t)q * nv, nv), 1 };
		run(m, kv, e, b, lg);
	}
	double dt = now() - t0;
	free(e);
	return (double)g * b / dt;
}

static double prefill(struct llm_model *m, struct llm_kv *kv, const int32_t *ids, uint32_t n,
		      float *lg)
{
	struct llm_batch_entry *e = calloc(n, sizeof(*e));
	for (uint32_t p = 0; p < n; p++)
		e[p] = (struct llm_batch_entry){ 0, p, ids[p], p == n - 1 };
	llm_kv_seq_free(kv, 0);
	double t0 = now();
	run(m, kv, e, n, lg);
	double dt = now() - t0;
	free(e);
	return n / dt;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-llm MODEL IDS [--threads N] [--gen G] [--batch B] "
			"[--short S] [--repeat R] [--packed 0|1] [--kv-type f16|f32]\n");
		return 2;
	}
	uint32_t threads = 2, gen = 128, batch = 16, shrt = 16, n = 0, repeat = 3, packed = 1,
		 serve = 0;
	enum llm_kv_type kt = LLM_KV_F16;
	int32_t *ids = calloc(strlen(argv[2]) / 2 + 2, sizeof(int32_t));
	for (char *p = argv[2]; *p; p += *p == ',')
		ids[n++] = (int32_t)strtol(p, &p, 10);
	for (int i = 3; i + 1 < argc; i += 2) {
		uint32_t v = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		if (!strcmp(argv[i], "--kv-type") && strcmp(argv[i + 1], "f16") &&
		    strcmp(argv[i + 1], "f32"))
			die("--kv-type", "want f16 or f32");
		if (!strcmp(argv[i], "--kv-type"))
			kt = strcmp(argv[i + 1], "f16") ? LLM_KV_F32 : LLM_KV_F16;
		else if (!strcmp(argv[i], "--threads")) threads = v;
		else if (!strcmp(argv[i], "--gen")) gen = v;
		else if (!strcmp(argv[i], "--batch")) batch = v;
		else if (!strcmp(argv[i], "--short")) shrt = v;
		else if (!strcmp(argv[i], "--repeat")) repeat = v;
		else if (!strcmp(argv[i], "--packed")) packed = v;
		else if (!strcmp(argv[i], "--serve")) serve = v;
	}
	if (n == 0 || shrt == 0 || shrt > n || batch == 0 || threads == 0 || repeat == 0)
		die("arguments", "need ids, 0 < short <= len(ids), batch > 0, threads > 0");
	char err[256];
	double t_load = now();
	struct llm_model *m = llm_model_load(argv[1], err, sizeof(err));
	if (!m)
		die(argv[1], err);
	t_load = now() - t_load;
	llm_model_set_packed(m, packed != 0);
	if (llm_model_set_threads(m, threads))
		die("threads", "cannot set");
	uint32_t ctx = (n > shrt + gen ? n : shrt + gen) + 32;
	struct llm_kv *kv = llm_kv_new(m, kt, llm_kv_bytes_per_token(m, kt) * ctx * batch, 32,
				       batch, err, sizeof(err));
	if (!kv)
		die("kv", err);
	float *lg = malloc((size_t)batch * llm_model_hparams(m)->n_vocab * sizeof(float));
	decode(m, kv, ids, shrt, 4, 1, lg); /* warm up: page in the weights */
	struct rusage ru;
	if (serve) {
		char cmd[32];
		while (fgets(cmd, sizeof(cmd), stdin)) {
			if (!strncmp(cmd, "prefill", 7))
				printf("prefill_tps=%.1f\n", prefill(m, kv, ids, n, lg));
			else if (!strncmp(cmd, "decode", 6))
				printf("decode_tps=%.1f\n", decode(m, kv, ids, shrt, gen, 1, lg));
			else if (!strncmp(cmd, "batch", 5))
				printf("batch%u_tps=%.1f\n", batch,
				       decode(m, kv, ids, shrt, gen, batch, lg));
			else
				die("--serve", "want prefill, decode or batch");
			fflush(stdout);
		}
		getrusage(RUSAGE_SELF, &ru);
		printf("rss_mb=%.1f load_s=%.3f\n", ru.ru_maxrss / 1024.0, t_load);
		free(lg);
		free(ids);
		llm_kv_free(kv);
		llm_model_free(m);
		return 0;
	}
	double pf = 0, d1 = 0;
	for (uint32_t r = 0; r < repeat; r++) {
		double p = prefill(m, kv, ids, n, lg), d = decode(m, kv, ids, shrt, gen, 1, lg);
		pf = p > pf ? p : pf;
		d1 = d > d1 ? d : d1;
	}
	double db = decode(m, kv, ids, shrt, gen, batch, lg);
	getrusage(RUSAGE_SELF, &ru);
	printf("engine: prefill_tps=%.1f decode_tps=%.1f batch%u_tps=%.1f rss_mb=%.1f load_s=%.3f\n",
	       pf, d1, batch, db, ru.ru_maxrss / 1024.0, t_load);
	free(lg);
	free(ids);
	llm_kv_free(kv);
	llm_model_free(m);
	return 0;
}
