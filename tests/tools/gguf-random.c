/*
 * gguf-random — write a GGUF model of a given architecture, shape and weight
 * type with random weights and a byte-level tokenizer, for tests and
 * benchmarks that need a model of a real shape but cannot ship one (the GPU
 * machine has no network and its carried tree is capped at 64 MiB, so the
 * models of tests/gpu/run are generated there).
 *
 *   gguf-random [--shape S] [--arch A] [--type T] [--embd-type T] [--seed N]
 *               [--layers N] [--embd N] [--ff N] [--heads N] [--kv-heads N]
 *               [--head-dim N] [--vocab N] [--window N] [--untied]
 *               [--embd-scale MILLI] [--threads N] OUT.gguf
 *
 * Shapes (--shape, default tiny): tiny (2 layers, or 6 for gemma3 so one
 * global layer follows five sliding ones; 256 wide, 512 tokens),
 * smollm2-135m, gemma3-270m, llama-1b (Llama 3.2 1B), qwen2-0.5b; each
 * names its architecture, which --arch overrides (tiny is llama unless
 * --arch says otherwise). Weight types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1
 * Q8_0 Q4_K Q5_K Q6_K. Norm weights and biases stay F32, as in real GGUFs.
 * A K-quant matrix whose rows are not a multiple of 256 falls back as
 * llama.cpp's quantizer does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0);
 * the fallbacks are listed on stderr.
 *
 * Weights: each row is drawn from its own generator seeded by (seed, tensor,
 * row), uniform with std 1/sqrt(cols) (token_embd: c/sqrt(embd), c = 3, or
 * 0.5 for gemma3, or --embd-scale in thousandths; see embd_std), quantized
 * with the engine's reference quantizers (lib/llm/quant), so scales are
 * real f16 values and activations stay finite. The file is the same for the
 * same arguments whatever --threads is. Norms are 1 + N(0, 0.1^2)-ish,
 * biases 0.1-ish.
 *
 * Tokenizer: SentencePiece-style ("llama") with <unk> <s> </s>, the ChatML
 * markers <|im_start|> <|im_end|> (control), the 256 byte tokens <0xXX>,
 * U+2581 and printable ASCII as single tokens, then filler tokens
 * "\u2581w<N>" up to the vocabulary size; no space prefix; a ChatML
 * chat_template, so plotd serves it (`plot run` renders one user turn).
 *
 * Exit status: 0, 1 on an I/O or generation error, 2 on a usage error.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/quant/quant.h"

#define ALIGN 32u
#define MAX_TENSORS 4096
#define MAX_THREADS 64
#define CHUNK_BYTES (64u << 20) /* rows generated per round, at most */

struct shape {
	const char *name, *arch;
	uint32_t layers, embd, ff, heads, kv_heads, head_dim, vocab, window, ctx;
	float rope_base, eps;
};

static const struct shape shapes[] = {
	{ "tiny", "llama", 2, 256, 512, 4, 2, 64, 512, 4, 2048, 10000.0f, 1e-5f },
	{ "smollm2-135m", "llama", 30, 576, 1536, 9, 3, 64, 49152, 0, 8192, 100000.0f, 1e-5f },
	{ "gemma3-270m", "gemma3", 18, 640, 2048, 4, 1, 256, 262144, 512, 32768, 1e6f, 1e-6f },
	{ "llama-1b", "llama", 16, 2048, 8192, 32, 8, 64, 128256, 0, 131072, 500000.0f, 1e-5f },
	{ "qwen2-0.5b", "qwen2", 24, 896, 4864, 14, 2, 64, 151936, 0, 32768, 1e6f, 1e-6f },
};

static const uint32_t weight_types[] = {
	Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0, Q_Q4_K, Q_Q5_K, Q_Q6_K,
};

enum fill { FILL_WEIGHT, FILL_NORM, FILL_BIAS };

struct tensor {
	char name[64];
	uint32_t type, cols, rows; /* rows = 1 for vectors (stored 1-D) */
	enum fill fill;
	float std;
	uint64_t offset, nbytes;
};

struct model {
	struct shape s;
	uint32_t wtype, etype;
	uint64_t seed;
	int untied, threads;
	float embd_c; /* --embd-scale: token_embd std times sqrt(embd); 0 = default */
	struct tensor t[MAX_TENSORS];
	uint32_t n;
};

/* ---- random numbers: splitmix64, one stream per (seed, tensor, row) ------ */

static uint64_t mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform on [-sqrt(3), sqrt(3)): mean 0, variance 1 */
static float unit(uint64_t *x)
{
	return (float)((double)(mix(x) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0) *
	       1.7320508f;
}

static void fill_row(const struct tensor *t, uint64_t seed, uint32_t ti, uint32_t r, float *v)
{
	uint64_t x = seed * 0x2545f4914f6cdd1dull ^ ((uint64_t)ti << 32) ^ r;
	mix(&x);
	for (uint32_t i = 0; i < t->cols; i++) {
		float u = unit(&x);
		v[i] = t->fill == FILL_NORM ? 1.0f + 0.1f * u : t->std * u;
	}
}

/* ---- the tensor list ---------------------------------------------------- */

static uint32_t fallback(uint32_t type, uint32_t cols)
{
	if (cols % 256 == 0)
		return type;
	switch (type) {
	case Q_Q4_K: return Q_Q5_0;
	case Q_Q5_K: return Q_Q5_1;
	case Q_Q6_K: return Q_Q8_0;
	default: return type;
	}
}

static void add(struct model *m, const char *name, uint32_t type, uint32_t cols, uint32_t rows,
		enum fill fill, float std)
{
	struct tensor *t = &m->t[m->n++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->type = fill == FILL_WEIGHT ? fallback(type, cols) : Q_F32;
	if (t->type != type && fill == FILL_WEIGHT)
		fprintf(stderr, "gguf-random: %s: %u columns are not a multiple of 256: %s, not %s\n",
			name, cols, quant_name(t->type), quant_name(type));
	t->cols = cols;
	t->rows = rows;
	t->fill = fill;
	t->std = std > 0 ? std : 1.0f / sqrtf((float)cols);
}

static void add_layer(struct model *m, uint32_t il)
{
	const struct shape *s = &m->s;
	uint32_t e = s->embd, qd = s->heads * s->head_dim, kd = s->kv_heads * s->head_dim;
	int gemma = !strcmp(s->arch, "gemma3"), qwen = !strcmp(s->arch, "qwen2");
	char n[64];
#define ADD(suffix, type, cols, rows, fill) \
	(snprintf(n, sizeof n, "blk.%u.%s", il, suffix), add(m, n, type, cols, rows, fill, 0))
	ADD("attn_norm.weight", Q_F32, e, 1, FILL_NORM);
	ADD("ffn_norm.weight", Q_F32, e, 1, FILL_NORM);
	ADD("attn_q.weight", m->wtype, e, qd, FILL_WEIGHT);
	ADD("attn_k.weight", m->wtype, e, kd, FILL_WEIGHT);
	ADD("attn_v.weight", m->wtype, e, kd, FILL_WEIGHT);
	ADD("attn_output.weight", m->wtype, qd, e, FILL_WEIGHT);
	ADD("ffn_gate.weight", m->wtype, e, s->ff, FILL_WEIGHT);
	ADD("ffn_up.weight", m->wtype, e, s->ff, FILL_WEIGHT);
	ADD("ffn_down.weight", m->wtype, s->ff, e, FILL_WEIGHT);
	if (qwen) {
		ADD("attn_q.bias", Q_F32, qd, 1, FILL_BIAS);
		ADD("attn_k.bias", Q_F32, kd, 1, FILL_BIAS);
		ADD("attn_v.bias", Q_F32, kd, 1, FILL_BIAS);
	}
	if (gemma) {
		ADD("attn_q_norm.weight", Q_F32, s->head_dim, 1, FILL_NORM);
		ADD("attn_k_norm.weight", Q_F32, s->head_dim, 1, FILL_NORM);
		ADD("post_attention_norm.weight", Q_F32, e, 1, FILL_NORM);
		ADD("post_ffw_norm.weight", Q_F32, e, 1, FILL_NORM);
	}
#undef ADD
}

/* With tied embeddings a row's self dot product biases the logits towards
 * repeating the current token; a token_embd std of c/sqrt(embd) keeps that
 * bias near one standard deviation of the logits (std c) while the layers'
 * outputs (rms ~1 per element) dominate the residual stream. Gemma scales
 * embeddings by sqrt(embd), hence its smaller c. */
static float embd_std(const struct model *m)
{
	float c = m->embd_c > 0 ? m->embd_c : !strcmp(m->s.arch, "gemma3") ? 0.5f : 3.0f;
	return c / sqrtf((float)m->s.embd);
}

/* Names, shapes and offsets of every tensor; biases get std 0.1. */
static int plan(struct model *m)
{
	m->n = 0;
	add(m, "token_embd.weight", m->etype, m->s.embd, m->s.vocab, FILL_WEIGHT, embd_std(m));
	add(m, "output_norm.weight", Q_F32, m->s.embd, 1, FILL_NORM, 0);
	if (m->untied)
		add(m, "output.weight", m->wtype, m->s.embd, m->s.vocab, FILL_WEIGHT, 0);
	for (uint32_t il = 0; il < m->s.layers; il++)
		add_layer(m, il);
	uint64_t off = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		struct tensor *t = &m->t[i];
		if (t->fill == FILL_BIAS)
			t->std = 0.1f;
		size_t rb = quant_row_bytes(t->type, t->cols);
		if (rb == 0) {
			fprintf(stderr, "gguf-random: %s: %u columns do not fit %s blocks of %u\n",
				t->name, t->cols, quant_name(t->type), quant_block_elems(t->type));
			return -1;
		}
		t->offset = off;
		t->nbytes = (uint64_t)rb * t->rows;
		off += (t->nbytes + ALIGN - 1) / ALIGN * ALIGN;
	}
	return 0;
}

/* ---- the GGUF writer ---------------------------------------------------- */

enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

struct out {
	FILE *f;
	uint64_t pos;
	int bad;
	uint64_t n_kv; /* keys written */
};

static void put(struct out *o, const void *p, size_t n)
{
	if (!o->bad && n && fwrite(p, 1, n, o->f) != n)
		o->bad = errno ? errno : EIO;
	o->pos += n;
}

static void put_u32(struct out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(struct out *o, uint64_t v) { put(o, &v, 8); }

static void put_str(struct out *o, const char *s, size_t n)
{
	put_u64(o, n);
	put(o, s, n);
}

static void key(struct out *o, const char *arch, const char *k, uint32_t type)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, "%s%s%s", arch ? arch : "", arch ? "." : "", k);
	put_str(o, buf, (size_t)n);
	put_u32(o, type);
	o->n_kv++;
}

static void kv_u32(struct out *o, const char *arch, const char *k, uint32_t v)
{
	key(o, arch, k, T_U32);
	put_u32(o, v);
}

static void kv_f32(struct out *o, const char *arch, const char *k, float v)
{
	key(o, arch, k, T_F32);
	put(o, &v, 4);
}

static void kv_str(struct out *o, const char *arch, const char *k, const char *v)
{
	key(o, arch, k, T_STR);
	put_str(o, v, strlen(v));
}

static void kv_bool(struct out *o, const char *k, int v)
{
	uint8_t b = (uint8_t)v;
	key(o, NULL, k, T_BOOL);
	put(o, &b, 1);
}

#define CHATML "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + " \
	"message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}" \
	"{{ '<|im_start|>assistant\\n' }}{% endif %}"
#define N_FIXED 5 /* <unk> <s> </s> <|im_start|> <|im_end|> */

/* Token i's text into buf (returns its length) and its type. */
static size_t token(uint32_t i, char *buf, int32_t *type)
{
	static const char *fixed[N_FIXED] = { "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>" };
	if (i < N_FIXED) {
		*type = i == 0 ? 2 : 3; /* UNKNOWN, CONTROL */
		return (size_t)sprintf(buf, "%s", fixed[i]);
	}
	*type = 1; /* NORMAL */
	i -= N_FIXED;
	if (i < 256) {
		*type = 6; /* BYTE */
		return (size_t)sprintf(buf, "<0x%02X>", i);
	}
	i -= 256;
	if (i == 0)
		return (size_t)sprintf(buf, "\xe2\x96\x81");
	if (i <= 94)
		return (size_t)sprintf(buf, "%c", (char)(0x20 + i));
	return (size_t)sprintf(buf, "\xe2\x96\x81w%u", i - 95);
}

static void put_tokenizer(struct out *o, uint32_t vocab)
{
	char buf[32];
	int32_t type;
	kv_str(o, NULL, "tokenizer.ggml.model", "llama");
	key(o, NULL, "tokenizer.ggml.tokens", T_ARR);
	put_u32(o, T_STR);
	put_u64(o, vocab);
	for (uint32_t i = 0; i < vocab; i++)
		put_str(o, buf, token(i, buf, &type));
	key(o, NULL, "tokenizer.ggml.scores", T_ARR);
	put_u32(o, T_F32);
	put_u64(o, vocab);
	for (uint32_t i = 0; i < vocab; i++) {
		float sc = i < N_FIXED + 256 + 95 ? 0.0f : -(float)i;
		put(o, &sc, 4);
	}
	key(o, NULL, "tokenizer.ggml.token_type", T_ARR);
	put_u32(o, T_I32);
	put_u64(o, vocab);
	for (uint32_t i = 0; i < vocab; i++) {
		token(i, buf, &type);
		put(o, &type, 4);
	}
	kv_u32(o, NULL, "tokenizer.ggml.unknown_token_id", 0);
	kv_u32(o, NULL, "tokenizer.ggml.bos_token_id", 1);
	kv_u32(o, NULL, "tokenizer.ggml.eos_token_id", 2);
	kv_bool(o, "tokenizer.ggml.add_bos_token", 1);
	kv_bool(o, "tokenizer.ggml.add_space_prefix", 0);
	kv_str(o, NULL, "tokenizer.chat_template", CHATML);
}

static void put_meta(struct out *o, const struct model *m)
{
	const struct shape *s = &m->s;
	const char *a = s->arch;
	int gemma = !strcmp(a, "gemma3");
	char name[96];
	snprintf(name, sizeof name, "random %s %s", s->name, quant_name(m->wtype));
	kv_str(o, NULL, "general.architecture", a);
	kv_str(o, NULL, "general.name", name);
	kv_u32(o, NULL, "general.alignment", ALIGN);
	kv_u32(o, a, "block_count", s->layers);
	kv_u32(o, a, "context_length", s->ctx);
	kv_u32(o, a, "embedding_length", s->embd);
	kv_u32(o, a, "feed_forward_length", s->ff);
	kv_u32(o, a, "attention.head_count", s->heads);
	kv_u32(o, a, "attention.head_count_kv", s->kv_heads);
	kv_u32(o, a, "attention.key_length", s->head_dim);
	kv_u32(o, a, "attention.value_length", s->head_dim);
	kv_f32(o, a, "rope.freq_base", s->rope_base);
	kv_f32(o, a, "attention.layer_norm_rms_epsilon", s->eps);
	if (gemma)
		kv_u32(o, a, "attention.sliding_window", s->window);
	else
		kv_u32(o, a, "rope.dimension_count", s->head_dim);
	put_tokenizer(o, s->vocab);
}

static void put_infos(struct out *o, const struct model *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		const struct tensor *t = &m->t[i];
		put_str(o, t->name, strlen(t->name));
		put_u32(o, t->rows == 1 ? 1 : 2);
		put_u64(o, t->cols);
		if (t->rows != 1)
			put_u64(o, t->rows);
		put_u32(o, t->type);
		put_u64(o, t->offset);
	}
}

/* ---- tensor data, rows in parallel -------------------------------------- */

struct job {
	const struct model *m;
	const struct tensor *t;
	uint32_t ti, r0, r1, stride; /* rows [r0, r1) of the chunk, every stride-th from r0 */
	uint32_t first;              /* first row of the chunk */
	uint8_t *buf;
};

static void *job_run(void *arg)
{
	const struct job *j = arg;
	float *v = malloc((size_t)j->t->cols * sizeof *v);
	if (!v)
		return (void *)1;
	size_t rb = quant_row_bytes(j->t->type, j->t->cols);
	for (uint32_t r = j->r0; r < j->r1; r += j->stride) {
		fill_row(j->t, j->m->seed, j->ti, r, v);
		quant_quantize_row_ref(j->t->type, v, j->buf + (size_t)(r - j->first) * rb,
				       j->t->cols);
	}
	free(v);
	return NULL;
}

static int gen_chunk(const struct model *m, uint32_t ti, uint32_t first, uint32_t last,
		     uint8_t *buf)
{
	pthread_t th[MAX_THREADS];
	struct job jobs[MAX_THREADS];
	int started[MAX_THREADS] = { 0 }, fail = 0;
	for (int i = 0; i < m->threads; i++) {
		jobs[i] = (struct job){ m, &m->t[ti], ti, first + (uint32_t)i, last,
					(uint32_t)m->threads, first, buf };
		if (i > 0)
			started[i] = pthread_create(&th[i], NULL, job_run, &jobs[i]) == 0;
		if (i > 0 && !started[i])
			fail |= job_run(&jobs[i]) != NULL;
	}
	fail |= job_run(&jobs[0]) != NULL;
	for (int i = 1; i < m->threads; i++) {
		void *r = NULL;
		if (started[i])
			pthread_join(th[i], &r), fail |= r != NULL;
	}
	return fail ? -1 : 0;
}

static int put_data(struct out *o, const struct model *m)
{
	static const uint8_t zero[ALIGN];
	uint8_t *buf = malloc(CHUNK_BYTES);
	if (!buf)
		return -1;
	int rc = 0;
	for (uint32_t ti = 0; ti < m->n && !rc && !o->bad; ti++) {
		const struct tensor *t = &m->t[ti];
		size_t rb = quant_row_bytes(t->type, t->cols);
		uint32_t per = (uint32_t)(CHUNK_BYTES / rb);
		for (uint32_t r = 0; r < t->rows && !rc; r += per) {
			uint32_t last = r + per < t->rows ? r + per : t->rows;
			rc = gen_chunk(m, ti, r, last, buf);
			put(o, buf, (size_t)(last - r) * rb);
		}
		put(o, zero, (ALIGN - o->pos % ALIGN) % ALIGN);
	}
	free(buf);
	return rc;
}

/* Metadata goes to memory first: the header needs its key count. */
static int write_model(const char *path, const struct model *m)
{
	static const uint8_t zero[ALIGN];
	char *meta = NULL;
	size_t meta_len = 0;
	struct out mo = { open_memstream(&meta, &meta_len), 0, 0, 0 };
	struct out o = { NULL, 0, 0, 0 };
	if (!mo.f)
		return fprintf(stderr, "gguf-random: out of memory\n"), -1;
	put_meta(&mo, m);
	put_infos(&mo, m);
	if (fclose(mo.f) != 0 || mo.bad || !(o.f = fopen(path, "wb"))) {
		fprintf(stderr, "gguf-random: %s: %s\n", path, strerror(errno));
		free(meta);
		return -1;
	}
	put_u32(&o, 0x46554747u);
	put_u32(&o, 3);
	put_u64(&o, m->n);
	put_u64(&o, mo.n_kv);
	put(&o, meta, meta_len);
	free(meta);
	put(&o, zero, (ALIGN - o.pos % ALIGN) % ALIGN);
	int rc = put_data(&o, m);
	if (fclose(o.f) != 0 && !o.bad)
		o.bad = errno;
	if (o.bad || rc) {
		fprintf(stderr, "gguf-random: %s: %s\n", path,
			o.bad ? strerror(o.bad) : "out of memory");
		return -1;
	}
	return 0;
}

/* ---- arguments ---------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: gguf-random [--shape tiny|smollm2-135m|gemma3-270m|llama-1b|"
		"qwen2-0.5b] [--arch llama|qwen2|gemma3]\n"
		"                   [--type T] [--embd-type T] [--seed N] [--layers N] [--embd N] "
		"[--ff N]\n"
		"                   [--heads N] [--kv-heads N] [--head-dim N] [--vocab N] "
		"[--window N]\n"
		"                   [--untied] [--embd-scale MILLI] [--threads N] OUT.gguf\n"
		"  T: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K\n");
	return 2;
}

static int parse_type(const char *s, uint32_t *out)
{
	for (size_t i = 0; i < sizeof weight_types / sizeof weight_types[0]; i++)
		if (!strcmp(quant_name(weight_types[i]), s))
			return *out = weight_types[i], 0;
	fprintf(stderr, "gguf-random: '%s': unknown weight type\n", s);
	return -1;
}

static int parse_u32(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || !*s || v < lo || v > hi) {
		fprintf(stderr, "gguf-random: %s '%s': want an integer in [%u, %u]\n", opt, s, lo, hi);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int set_shape(struct model *m, const char *name, int arch_given)
{
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		if (strcmp(shapes[i].name, name))
			continue;
		const char *arch = m->s.arch;
		m->s = shapes[i];
		if (arch_given)
			m->s.arch = arch;
		if (i == 0 && !strcmp(m->s.arch, "gemma3"))
			m->s.layers = 6; /* five sliding layers, then a global one */
		return 0;
	}
	fprintf(stderr, "gguf-random: '%s': unknown shape\n", name);
	return -1;
}

static int set_arch(struct model *m, const char *a)
{
	if (strcmp(a, "llama") && strcmp(a, "qwen2") && strcmp(a, "gemma3")) {
		fprintf(stderr, "gguf-random: '%s': unknown architecture (llama, qwen2, gemma3)\n", a);
		return -1;
	}
	m->s.arch = a;
	return 0;
}

/* The numeric overrides, in the order of struct shape. */
static const struct { const char *opt; size_t off; uint32_t lo, hi; } nums[] = {
	{ "--layers", offsetof(struct shape, layers), 1, 1024 },
	{ "--embd", offsetof(struct shape, embd), 1, 65536 },
	{ "--ff", offsetof(struct shape, ff), 1, 1u << 20 },
	{ "--heads", offsetof(struct shape, heads), 1, 1024 },
	{ "--kv-heads", offsetof(struct shape, kv_heads), 1, 1024 },
	{ "--head-dim", offsetof(struct shape, head_dim), 2, 4096 },
	{ "--vocab", offsetof(struct shape, vocab), N_FIXED + 256 + 95, 1u << 24 },
	{ "--window", offsetof(struct shape, window), 1, 1u << 30 },
};

static int parse_num(struct model *m, const char *opt, const char *val, int *hit)
{
	*hit = 0;
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		if (strcmp(opt, nums[i].opt))
			continue;
		*hit = 1;
		return parse_u32(opt, val, nums[i].lo, nums[i].hi,
				 (uint32_t *)((char *)&m->s + nums[i].off));
	}
	return 0;
}

/* Options after the shape (the shape is applied first, so overrides win). */
static int parse_opts(struct model *m, int argc, char **argv, int *seen_type)
{
	int etype_given = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		int hit, rc = parse_num(m, o, v, &hit);
		uint32_t u;
		if (hit) {
			if (rc)
				return -1;
		} else if (!strcmp(o, "--type")) {
			if (parse_type(v, &m->wtype))
				return -1;
			*seen_type = 1;
		} else if (!strcmp(o, "--embd-type")) {
			if (parse_type(v, &m->etype))
				return -1;
			etype_given = 1;
		} else if (!strcmp(o, "--seed")) {
			if (parse_u32(o, v, 0, UINT32_MAX, &u))
				return -1;
			m->seed = u;
		} else if (!strcmp(o, "--embd-scale")) {
			if (parse_u32(o, v, 1, 1000000, &u))
				return -1;
			m->embd_c = (float)u / 1000.0f;
		} else if (!strcmp(o, "--threads")) {
			if (parse_u32(o, v, 1, MAX_THREADS, &u))
				return -1;
			m->threads = (int)u;
		} else if (strcmp(o, "--shape") && strcmp(o, "--arch")) {
			fprintf(stderr, "gguf-random: unknown option '%s'\n", o);
			return -1;
		}
	}
	if (!etype_given)
		m->etype = m->wtype;
	return 0;
}

static int check_shape(const struct model *m)
{
	const struct shape *s = &m->s;
	if (s->heads % s->kv_heads || s->head_dim % 2) {
		fprintf(stderr, "gguf-random: heads (%u) must be a multiple of kv-heads (%u) and "
			"head-dim (%u) even\n", s->heads, s->kv_heads, s->head_dim);
		return -1;
	}
	if ((uint64_t)s->layers * (m->untied ? 17 : 16) + 3 > MAX_TENSORS) {
		fprintf(stderr, "gguf-random: too many layers (%u)\n", s->layers);
		return -1;
	}
	return 0;
}

static int parse(struct model *m, int argc, char **argv, const char **out)
{
	int seen_type = 0, arch_given = 0;
	const char *shape = "tiny";
	m->s = shapes[0];
	m->wtype = Q_Q8_0;
	m->threads = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--untied")) {
			m->untied = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof *argv);
			argc--, i--;
		}
	}
	if (argc < 2 || argc % 2 != 0 || argv[argc - 1][0] == '-')
		return usage();
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--shape"))
			shape = argv[i + 1];
		else if (!strcmp(argv[i], "--arch") && (arch_given = 1) && set_arch(m, argv[i + 1]))
			return 2;
	}
	if (set_shape(m, shape, arch_given) || parse_opts(m, argc - 1, argv, &seen_type))
		return 2;
	if (check_shape(m))
		return 2;
	*out = argv[argc - 1];
	return 0;
}

int main(int argc, char **argv)
{
	static struct model m;
	const char *path = NULL;
	int rc = parse(&m, argc, argv, &path);
	if (rc)
		return rc;
	if (plan(&m))
		return 2;
	return write_model(path, &m) ? 1 : 0;
}
