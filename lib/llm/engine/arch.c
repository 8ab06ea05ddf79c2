/*
 * arch.c — what each architecture does differently, and its hyper-parameters.
 *
 * Design: the table arch_table[] below is the only place that knows about
 * llama vs gemma3; each backend's forward pass (cpu/forward.c) reads its
 * flags. Hyper-parameters come from "<arch>.*" GGUF keys, with the defaults
 * llama.cpp uses for absent optional keys; every value is bounded before it
 * sizes anything.
 *
 * Facts per architecture (checked against llama.cpp's graph builders):
 *   llama  — RMSNorm, RoPE on adjacent pairs (the converter permutes q/k),
 *            SwiGLU FFN, GQA, optional separate output matrix, optional
 *            rope_freqs.weight (Llama 3.1 frequency factors), optional q/k/v
 *            biases.
 *   qwen2  — llama plus biases on q, k and v; RoPE on halves (NEOX).
 *   gemma3 — embeddings scaled by sqrt(n_embd); per-head RMSNorm of q and k
 *            before RoPE; RMSNorm on the attention and FFN outputs before each
 *            residual add; GeGLU (tanh) FFN; RoPE on halves (NEOX); layers
 *            with il % 6 < 5 use a sliding window (attention.sliding_window)
 *            and rope base 10000, the others the file's rope base; q.k scaled
 *            by 1/sqrt(key_length), which llama.cpp applies to Q (ggml_scale
 *            on Qcur, kq_scale 1) where llama and qwen2 scale the scores in
 *            softmax: with an F16 cache that decides whether q or q times
 *            the scale is rounded to half (attn_scale_q); no logit
 *            softcapping. The GGUF converter already folded gemma's "1 + w"
 *            into the norm weights, so norms multiply by w as stored.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llm/engine/model-impl.h"

static const struct llm_arch_desc arch_table[] = {
	{
		.name = "llama", .id = LLM_ARCH_LLAMA, .rope = LLM_ROPE_NORM,
		.act = LLM_ACT_SILU,
	},
	{
		.name = "qwen2", .id = LLM_ARCH_QWEN2, .rope = LLM_ROPE_NEOX,
		.act = LLM_ACT_SILU, .qkv_bias = 1,
	},
	{
		.name = "gemma3", .id = LLM_ARCH_GEMMA3, .rope = LLM_ROPE_NEOX,
		.act = LLM_ACT_GELU_TANH, .embd_scale_sqrt = 1, .qk_norm = 1,
		.post_norms = 1, .swa_pattern = 6, .rope_base_swa = 10000.0f,
		.attn_scale_q = 1,
	},
};

const struct llm_arch_desc *llm_arch_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(arch_table) / sizeof(arch_table[0]); i++)
		if (strlen(arch_table[i].name) == len &&
		    memcmp(arch_table[i].name, name, len) == 0)
			return &arch_table[i];
	return NULL;
}

/* Read "<arch>.<suffix>" as u32 into *out; absent keys keep *out when
 * optional. Returns 0 or -LLM_EFORMAT with err naming the key. */
static int get_u32(const struct gguf *g, const char *arch, const char *suffix,
		   uint32_t *out, int required, uint32_t lo, uint32_t hi,
		   char *err, size_t errlen)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", arch, suffix);
	int64_t i = gguf_find_key(g, key);
	if (i < 0) {
		if (!required)
			return 0;
		snprintf(err, errlen, "missing key '%s'", key);
		return -LLM_EFORMAT;
	}
	uint64_t v;
	if (gguf_get_u64(g, key, &v) != 0) {
		snprintf(err, errlen, "key '%s': not an unsigned integer (per-layer "
			 "arrays are not supported)", key);
		return -LLM_EFORMAT;
	}
	if (v < lo || v > hi) {
		snprintf(err, errlen, "key '%s': %llu out of range [%u, %u]", key,
			 (unsigned long long)v, lo, hi);
		return -LLM_EFORMAT;
	}
	*out = (uint32_t)v;
	return 0;
}

static int get_f32(const struct gguf *g, const char *arch, const char *suffix,
		   float *out, int required, char *err, size_t errlen)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", arch, suffix);
	if (gguf_find_key(g, key) < 0) {
		if (!required)
			return 0;
		snprintf(err, errlen, "missing key '%s'", key);
		return -LLM_EFORMAT;
	}
	float v;
	if (gguf_get_f32(g, key, &v) != 0 || !isfinite(v) || v <= 0.0f) {
		snprintf(err, errlen, "key '%s': want a positive finite float32", key);
		return -LLM_EFORMAT;
	}
	*out = v;
	return 0;
}

/* rope.scaling.type: none or linear (factor divides positions). */
static int read_rope_scaling(const struct gguf *g, const char *a,
			     struct llm_hparams *hp, char *err, size_t errlen)
{
	char key[128];
	struct gguf_str s;
	hp->rope_scale = 1.0f;
	snprintf(key, sizeof(key), "%s.rope.scaling.type", a);
	if (gguf_get_str(g, key, &s) != 0)
		return 0;
	if (s.len == 4 && memcmp(s.s, "none", 4) == 0)
		return 0;
	if (!(s.len == 6 && memcmp(s.s, "linear", 6) == 0)) {
		snprintf(err, errlen, "key '%s': rope scaling '%.*s' not supported",
			 key, (int)(s.len > 32 ? 32 : s.len), s.s);
		return -LLM_EUNSUP;
	}
	float f = 1.0f;
	int rc = get_f32(g, a, "rope.scaling.factor", &f, 0, err, errlen);
	if (rc)
		return rc;
	hp->rope_scale = 1.0f / f;
	return 0;
}

static int check_hparams(const struct llm_hparams *hp, const char *a,
			 char *err, size_t errlen)
{
	if (hp->n_head % hp->n_head_kv != 0) {
		snprintf(err, errlen, "key '%s.attention.head_count' (%u) is not a "
			 "multiple of head_count_kv (%u)", a, hp->n_head, hp->n_head_kv);
		return -LLM_EFORMAT;
	}
	if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0) {
		snprintf(err, errlen, "key '%s.rope.dimension_count' (%u): must be "
			 "even and <= key_length (%u)", a, hp->n_rot, hp->head_dim_k);
		return -LLM_EFORMAT;
	}
	return 0;
}

int llm_hparams_read(const struct gguf *g, const struct llm_arch_desc *ad,
		     struct llm_hparams *hp, char *err, size_t errlen)
{
	const char *a = ad->name;
	int rc;

	memset(hp, 0, sizeof(*hp));
	hp->arch = ad->id;
	snprintf(hp->arch_name, sizeof(hp->arch_name), "%s", a);
	if ((rc = get_u32(g, a, "block_count", &hp->n_layer, 1, 1, 1024, err, errlen)) ||
	    (rc = get_u32(g, a, "embedding_length", &hp->n_embd, 1, 1, 65536, err, errlen)) ||
	    (rc = get_u32(g, a, "feed_forward_length", &hp->n_ff, 1, 1, 1u << 20, err, errlen)) ||
	    (rc = get_u32(g, a, "attention.head_count", &hp->n_head, 1, 1, 1024, err, errlen)))
		return rc;
	hp->n_head_kv = hp->n_head;
	hp->head_dim_k = hp->n_embd / hp->n_head;
	if ((rc = get_u32(g, a, "attention.head_count_kv", &hp->n_head_kv, 0, 1, 1024, err, errlen)) ||
	    (rc = get_u32(g, a, "attention.key_length", &hp->head_dim_k, 0, 1, 4096, err, errlen)))
		return rc;
	hp->head_dim_v = hp->head_dim_k;
	hp->n_rot = hp->head_dim_k;
	if ((rc = get_u32(g, a, "attention.value_length", &hp->head_dim_v, 0, 1, 4096, err, errlen)) ||
	    (rc = get_u32(g, a, "rope.dimension_count", &hp->n_rot, 0, 0, 4096, err, errlen)) ||
	    (rc = get_u32(g, a, "context_length", &hp->n_ctx_train, 0, 0, UINT32_MAX, err, errlen)))
		return rc;
	if (ad->swa_pattern &&
	    (rc = get_u32(g, a, "attention.sliding_window", &hp->swa_window, 1, 1, UINT32_MAX, err, errlen)))
		return rc;
	hp->rope_base = 10000.0f;
	if ((rc = get_f32(g, a, "rope.freq_base", &hp->rope_base, 0, err, errlen)) ||
	    (rc = get_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps, 1, err, errlen)) ||
	    (rc = read_rope_scaling(g, a, hp, err, errlen)))
		return rc;
	hp->rope_base_swa = ad->rope_base_swa > 0.0f ? ad->rope_base_swa : hp->rope_base;
	hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim_k);
	return check_hparams(hp, a, err, errlen);
}

/* Per-layer sliding flag and rope parameters. Sliding layers never use the
 * file's rope scaling (llama.cpp: rope_freq_scale_train_swa = 1). */
void llm_layer_rope(const struct llm_arch_desc *ad, const struct llm_hparams *hp,
		    uint32_t il, struct llm_layer *l)
{
	l->swa = ad->swa_pattern && il % ad->swa_pattern < ad->swa_pattern - 1;
	l->rope_base = l->swa ? hp->rope_base_swa : hp->rope_base;
	l->rope_scale = l->swa ? 1.0f : hp->rope_scale;
}
