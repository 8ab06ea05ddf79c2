/*
 * llm-logits — drive the engine from the oracle tests (tests/ref).
 *
 *   llm-logits MODEL IDS [--threads N] [--chunk K] [--copies C] [--gen N]
 *                        [--float-acts 1] [--packed 0|1] [--kv-type f16|f32]
 *
 * IDS is a comma-separated list of token ids, fed as one sequence (in
 * chunks of K entries per forward call, default all at once). Without
 * --gen, the logits of every prompt position go to stdout as raw float32,
 * (n_ids, n_vocab) row-major. With --gen N, greedy decoding runs N steps
 * after the prompt and the N token ids go to stdout, space-separated.
 * --copies C runs C identical sequences side by side in every batch (the
 * output is sequence 0's): the batch-invariance check. --float-acts 1 turns
 * on llm_model_set_float_acts (no activation quantization); --packed 0
 * runs the row kernels instead of the repacked weights (llm_model_set_packed).
 * --kv-type picks the KV cache's element type (default f16, as plotd).
 * Exit status 0, 1 on engine error (message on stderr), 2 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/llm.h"

struct opts {
	const char *model;
	int32_t *ids;
	uint32_t n_ids, threads, chunk, copies, gen, float_acts, packed;
	enum llm_kv_type kv_type;
};

static int usage(void)
{
	fprintf(stderr, "usage: llm-logits MODEL IDS [--threads N] [--chunk K] "
		"[--copies C] [--gen N] [--float-acts 1] [--packed 0|1] [--kv-type f16|f32]\n");
	return 2;
}

static int parse_ids(const char *s, struct opts *o)
{
	size_t cap = strlen(s) / 2 + 1;
	o->ids = calloc(cap, sizeof(int32_t));
	if (!o->ids)
		return -1;
	for (const char *p = s; *p; ) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < 0 || v > INT32_MAX || o->n_ids >= cap)
			return -1;
		o->ids[o->n_ids++] = (int32_t)v;
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return o->n_ids ? 0 : -1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	if (argc < 3 || parse_ids(argv[2], o))
		return -1;
	o->model = argv[1];
	o->threads = 1;
	o->copies = 1;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--kv-type")) {
			if (strcmp(argv[i + 1], "f16") && strcmp(argv[i + 1], "f32"))
				return -1;
			o->kv_type = strcmp(argv[i + 1], "f16") ? LLM_KV_F32 : LLM_KV_F16;
			continue;
		}
		unsigned long v = strtoul(argv[i + 1], NULL, 10);
		if (v > 1000000)
			return -1;
		if (!strcmp(argv[i], "--threads")) o->threads = (uint32_t)v;
		else if (!strcmp(argv[i], "--chunk")) o->chunk = (uint32_t)v;
		else if (!strcmp(argv[i], "--copies")) o->copies = (uint32_t)v;
		else if (!strcmp(argv[i], "--gen")) o->gen = (uint32_t)v;
		else if (!strcmp(argv[i], "--float-acts")) o->float_acts = (uint32_t)v;
		else if (!strcmp(argv[i], "--packed")) o->packed = (uint32_t)v;
		else return -1;
	}
	if (argc % 2 == 0 || o->copies == 0 || o->threads == 0)
		return -1;
	if (o->chunk == 0)
		o->chunk = o->n_ids;
	return 0;
}

static uint32_t argmax(const float *x, uint32_t n)
{
	uint32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

/* Feed toks[0..n) at positions pos0.. to every copy; copy 0's logits (n rows
 * if all_logits, else the last row) land in out. */
static int step(struct llm_model *m, struct llm_kv *kv, const struct opts *o,
		const int32_t *toks, uint32_t n, uint32_t pos0, int all_logits, float *out)
{
	uint32_t nv = llm_model_hparams(m)->n_vocab, nb = n * o->copies;
	struct llm_batch_entry *e = calloc(nb, sizeof(*e));
	float *lg = malloc((size_t)nb * nv * sizeof(float));
	char err[256];
	int rc = -1;
	if (!e || !lg)
		goto out;
	/* interleave the copies token by token, copy 0 not always first */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t c = 0; c < o->copies; c++) {
			uint32_t cc = (c + i) % o->copies;
			e[i * o->copies + c] = (struct llm_batch_entry){
				.seq = cc, .pos = pos0 + i, .token = toks[i],
				.want_logits = (uint8_t)(all_logits || i == n - 1) };
		}
	if ((rc = llm_forward(m, kv, &(struct llm_batch){ nb, e }, lg, err, sizeof(err)))) {
		fprintf(stderr, "llm-logits: %s\n", err);
		goto out;
	}
	uint32_t row = 0;
	for (uint32_t j = 0; j < nb; j++) {
		if (!e[j].want_logits)
			continue;
		if (e[j].seq == 0)
			memcpy(out + (size_t)(all_logits ? e[j].pos - pos0 : 0) * nv,
			       lg + (size_t)row * nv, nv * sizeof(float));
		row++;
	}
out:
	free(e);
	free(lg);
	return rc;
}

static int run(struct llm_model *m, struct llm_kv *kv, const struct opts *o)
{
	uint32_t nv = llm_model_hparams(m)->n_vocab;
	float *lg = malloc((size_t)o->n_ids * nv * sizeof(float));
	if (!lg)
		return 1;
	int rc = 0;
	for (uint32_t p = 0; p < o->n_ids && !rc; p += o->chunk) {
		uint32_t n = o->n_ids - p < o->chunk ? o->n_ids - p : o->chunk;
		rc = step(m, kv, o, o->ids + p, n, p, !o->gen, lg + (size_t)(o->gen ? 0 : p) * nv);
	}
	if (!rc && !o->gen)
		rc = fwrite(lg, sizeof(float) * nv, o->n_ids, stdout) == o->n_ids ? 0 : 1;
	for (uint32_t i = 0; i < o->gen && !rc; i++) {
		int32_t t = (int32_t)argmax(lg, nv);
		printf("%s%d", i ? " " : "", t);
		if (i + 1 < o->gen)
			rc = step(m, kv, o, &t, 1, o->n_ids + i, 0, lg);
	}
	if (o->gen)
		printf("\n");
	free(lg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .packed = 1 };
	char err[512];
	if (parse(argc, argv, &o))
		return usage();
	struct llm_model *m = llm_model_load(o.model, err, sizeof(err));
	if (!m) {
		fprintf(stderr, "llm-logits: %s: %s\n", o.model, err);
		return 1;
	}
	llm_model_set_float_acts(m, (int)o.float_acts);
	llm_model_set_packed(m, (int)o.packed);
	size_t need = llm_kv_bytes_per_token(m, o.kv_type) * (o.n_ids + o.gen + 16) * o.copies;
	struct llm_kv *kv = llm_kv_new(m, o.kv_type, need, 16, o.copies, err, sizeof(err));
	int rc = 1;
	if (!kv)
		fprintf(stderr, "llm-logits: %s\n", err);
	else if (llm_model_set_threads(m, o.threads) == 0)
		rc = run(m, kv, &o);
	llm_kv_free(kv);
	llm_model_free(m);
	free(o.ids);
	return rc;
}
