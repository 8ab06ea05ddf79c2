/*
 * llm-generate — the engine's own greedy output, without plotd: the oracle
 * of tests/cli/serve-smollm2.bats.
 *
 *   llm-generate [--raw] [--count] [--kv-f32] [--device DEV] [--emulate] MODEL N PROMPT
 *                [--ignore-eos]
 *
 * Loads MODEL with lib/llm directly and builds the prompt as `plot run`
 * does: one user turn rendered through the model's chat template (its
 * markup parsed as special tokens, bos added unless the template writes
 * it), or with --raw the text as it is (add and parse special tokens).
 * Then it decodes greedily (arg-max, ties to the lowest id) for at most N
 * tokens, stopping at an end-of-generation token (not printed) unless
 * --ignore-eos. The text goes to stdout, decoded in one go with
 * tok_decode, with no newline added. --count prints only the number of
 * prompt tokens. The KV cache is F16 (plotd's default, params.kv_type) or,
 * with --kv-f32, F32. --device loads the model there (default cpu): the
 * oracle of tests/gpu/run's serving check, plotd on cuda against the
 * engine on cuda. --emulate (a make CUDA=1 build) puts lib/cuda's emulated
 * device behind cuda, as plotd's PLOT_CUDA_EMULATE=1 does
 * (tests/cli/serve-cuda.bats).
 *
 * Nothing here goes through lib/pool, the executor, the daemon or the CLI,
 * so a test comparing `plot run --temperature 0` with this output checks
 * the whole serving path against the engine itself. It shares lib/llm's
 * forward pass and tokenizer on purpose: those have their own oracle tests
 * (tests/ref) against NumPy and llama.cpp.
 *
 * Exit status 0, 1 on an engine error (message on stderr), 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot/llm.h"
#include "plot/template.h"
#include "plot/tok.h"

#ifdef PLOT_CUDA
#include "cuda/cuda-host.h"
#endif

struct gen {
	struct llm_model *m;
	struct llm_kv *kv;
	enum llm_kv_type kv_type;
	const char *device;
	struct tok *tok;
	struct tok_ids ids;  /* prompt, then generated tokens appended */
	float *logits;       /* (1, n_vocab) */
	uint32_t n_vocab;
	char err[256];
};

static uint32_t argmax(const float *x, uint32_t n)
{
	uint32_t b = 0;
	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

/* Feed ids[from, to) as one batch; logits of the last one land in g->logits. */
static int feed(struct gen *g, size_t from, size_t to)
{
	size_t n = to - from;
	struct llm_batch_entry *e = calloc(n, sizeof *e);
	if (!e)
		return snprintf(g->err, sizeof g->err, "out of memory"), -1;
	for (size_t i = 0; i < n; i++)
		e[i] = (struct llm_batch_entry){ 0, (uint32_t)(from + i), g->ids.v[from + i],
						  (uint8_t)(i + 1 == n) };
	int rc = llm_forward(g->m, g->kv, &(struct llm_batch){ (uint32_t)n, e }, g->logits,
			     g->err, sizeof g->err);
	free(e);
	return rc;
}

static int push(struct tok_ids *ids, int32_t t)
{
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 64;
		int32_t *v = realloc(ids->v, cap * sizeof *v);
		if (!v)
			return -1;
		ids->v = v;
		ids->cap = cap;
	}
	ids->v[ids->n++] = t;
	return 0;
}

/* A copy of token id's text, NUL-terminated ("" if none or too long). */
static void tok_cstr(const struct tok *t, int32_t id, char *out, size_t cap)
{
	size_t len = 0;
	const char *s = tok_text(t, id, &len);
	out[0] = 0;
	if (s && len < cap)
		memcpy(out, s, len), out[len] = 0;
}

/* The prompt as one user turn through the model's template. */
static int encode_turn(struct gen *g, const char *prompt)
{
	char bos[512], eos[512], *text = NULL;
	size_t len = 0;
	struct tmpl *t = tmpl_from_gguf(llm_model_gguf(g->m), g->err, sizeof g->err);
	if (!t)
		return -1;
	tok_cstr(g->tok, tok_bos(g->tok), bos, sizeof bos);
	tok_cstr(g->tok, tok_eos(g->tok), eos, sizeof eos);
	struct tmpl_msg turn = { "user", prompt };
	int rc = tmpl_render(t, &turn, 1, 1, bos, eos, &text, &len, g->err, sizeof g->err);
	unsigned flags = TOK_PARSE_SPECIAL | (tmpl_emits_bos(t) ? 0 : TOK_ADD_SPECIAL);
	if (rc == 0)
		rc = tok_encode(g->tok, text, len, flags, &g->ids, g->err, sizeof g->err) < 0 ? -1 : 0;
	free(text);
	tmpl_free(t);
	return rc;
}

static int load(struct gen *g, const char *path, const char *prompt, uint32_t n, int raw)
{
	g->m = llm_model_load_on(path, g->device, g->err, sizeof g->err);
	if (!g->m)
		return -1;
	g->tok = tok_from_gguf(llm_model_gguf(g->m), g->err, sizeof g->err);
	if (!g->tok)
		return -1;
	g->n_vocab = llm_model_hparams(g->m)->n_vocab;
	if (!raw && encode_turn(g, prompt) < 0)
		return -1;
	if (raw && tok_encode(g->tok, prompt, strlen(prompt), TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL,
			      &g->ids, g->err, sizeof g->err) < 0)
		return -1;
	size_t need = (g->ids.n + n) * llm_kv_bytes_per_token(g->m, g->kv_type) * 2 + (1u << 20);
	g->kv = llm_kv_new(g->m, g->kv_type, need, 16, 1, g->err, sizeof g->err);
	g->logits = malloc((size_t)g->n_vocab * sizeof *g->logits);
	if (!g->kv || !g->logits)
		return -1;
	return llm_model_set_threads(g->m, 2);
}

static int generate(struct gen *g, uint32_t n, int ignore_eos, size_t *n_prompt)
{
	*n_prompt = g->ids.n;
	if (feed(g, 0, g->ids.n) < 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		int32_t t = (int32_t)argmax(g->logits, g->n_vocab);
		if (!ignore_eos && tok_is_eog(g->tok, t))
			break;
		if (push(&g->ids, t) < 0)
			return snprintf(g->err, sizeof g->err, "out of memory"), -1;
		if (i + 1 < n && feed(g, g->ids.n - 1, g->ids.n) < 0)
			return -1;
	}
	return 0;
}

static int print(struct gen *g, size_t n_prompt)
{
	char *text = NULL;
	size_t len = 0;
	if (tok_decode(g->tok, g->ids.v + n_prompt, g->ids.n - n_prompt, 0, &text, &len) != 0)
		return snprintf(g->err, sizeof g->err, "tok_decode failed"), -1;
	int rc = fwrite(text, 1, len, stdout) == len ? 0 : -1;
	free(text);
	return rc;
}

int main(int argc, char **argv)
{
	struct gen g = { 0 };
	size_t n_prompt = 0;
	int raw = 0, count = 0, emulate = 0;
	char *end;
	for (; argc > 1 && argv[1][0] == '-' && argv[1][1] == '-'; argc--, argv++) {
		if (strcmp(argv[1], "--raw") == 0)
			raw = 1;
		else if (strcmp(argv[1], "--count") == 0)
			count = 1;
		else if (strcmp(argv[1], "--kv-f32") == 0)
			g.kv_type = LLM_KV_F32;
		else if (strcmp(argv[1], "--device") == 0 && argc > 2)
			g.device = argv[2], argc--, argv++;
		else if (strcmp(argv[1], "--emulate") == 0)
			emulate = 1;
		else
			break;
	}
	if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "--ignore-eos") != 0)) {
		fprintf(stderr, "usage: llm-generate [--raw] [--count] [--kv-f32] [--device DEV] [--emulate] "
			"MODEL N PROMPT [--ignore-eos]\n");
		return 2;
	}
#ifdef PLOT_CUDA
	cuda_set_emulation(emulate);
#else
	if (emulate) {
		fprintf(stderr, "llm-generate: --emulate needs a CUDA build (make CUDA=1)\n");
		return 2;
	}
#endif
	unsigned long n = strtoul(argv[2], &end, 10);
	if (*end || n < 1 || n > 65536) {
		fprintf(stderr, "llm-generate: N must be 1..65536\n");
		return 2;
	}
	int rc = load(&g, argv[1], argv[3], (uint32_t)n, raw) < 0;
	if (!rc && count)
		printf("%zu\n", g.ids.n);
	else if (!rc)
		rc = generate(&g, (uint32_t)n, argc == 5, &n_prompt) < 0 || print(&g, n_prompt) < 0;
	if (rc)
		fprintf(stderr, "llm-generate: %s\n", g.err);
	free(g.logits);
	tok_ids_free(&g.ids);
	llm_kv_free(g.kv);
	tok_free(g.tok);
	llm_model_free(g.m);
	return rc;
}
