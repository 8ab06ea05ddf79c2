/*
 * model-impl.h — private structures of the engine: the loaded model
 * (engine/model.c, arch.c) and the CPU kernels' prototypes (cpu/attn.c,
 * cpu/ops.c).
 *
 * struct llm_arch_desc is the ONE place where architectures differ: a
 * backend's forward pass reads its flags and never tests an arch id.
 * struct llm_model is host-side and shared by every backend; be/dev say
 * which backend (engine/backend-impl.h) holds its prepared weights.
 */
#ifndef PLOT_LLM_MODEL_IMPL_H
#define PLOT_LLM_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "plot/gguf.h"
#include "plot/llm.h"

enum llm_rope_mode {
	LLM_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]) */
	LLM_ROPE_NEOX = 1, /* rotate halves (x[i], x[i + n_rot/2]) */
};

enum llm_act {
	LLM_ACT_SILU = 0,      /* SwiGLU: silu(gate) * up */
	LLM_ACT_GELU_TANH = 1, /* GeGLU with the tanh approximation */
};

struct llm_arch_desc {
	const char *name;        /* general.architecture */
	enum llm_arch_id id;
	enum llm_rope_mode rope;
	enum llm_act act;
	int embd_scale_sqrt;     /* embeddings are multiplied by sqrt(n_embd) */
	int qk_norm;             /* per-head RMSNorm of q and k (attn_q_norm/attn_k_norm) */
	int post_norms;          /* RMSNorm of attention and FFN outputs before the residual add */
	int qkv_bias;            /* attn_q/k/v.bias required (else optional) */
	uint32_t swa_pattern;    /* layer il slides iff il % pattern < pattern - 1; 0: none */
	int attn_scale_q;        /* F16 KV: the attention scale multiplies q before it is
	                          * rounded to half (llama.cpp scales Qcur), not the scores */
	float rope_base_swa;     /* rope base of sliding layers (0: same as global) */
};

/* A weight matrix (rows, cols) stored row-major in type `type`: ne[0] = cols.
 * packed: the same matrix repacked for pack.h's GEMM kernels (owned), or
 * NULL where the type or shape does not pack; data stays valid either way. */
struct llm_w {
	const void *data;
	uint32_t type;
	uint32_t rows, cols;
	size_t row_bytes;
	void *packed;
};

struct llm_layer {
	float *attn_norm, *ffn_norm;             /* (n_embd) owned copies */
	float *q_norm, *k_norm;                  /* (head_dim_k) or NULL */
	float *post_attn_norm, *post_ffw_norm;   /* (n_embd) or NULL */
	float *bq, *bk, *bv;                     /* q/k/v biases (qwen2) or NULL */
	struct llm_w wq, wk, wv, wo, gate, up, down;
	int swa;                                 /* sliding-window layer */
	float rope_base, rope_scale;
};

struct llm_scratch;
struct thr_pool;
struct llm_backend_ops;

struct llm_model {
	const struct llm_backend_ops *be;        /* the device's backend */
	void *dev;                               /* be->open's context */
	char device[16];                         /* "cpu", "cuda:1" */
	struct gguf *g;
	const struct llm_arch_desc *ad;
	struct llm_hparams hp;
	struct llm_w tok_embd, output;
	float *output_norm;                      /* (n_embd) */
	float *rope_freqs;                       /* (n_rot/2) or NULL: divides RoPE angles */
	struct llm_layer *layers;                /* (n_layer) */
	struct thr_pool *pool;                   /* CPU backend: compute threads */
	struct llm_scratch *scr;                 /* CPU backend: forward scratch */
	int float_acts;                          /* llm_model_set_float_acts */
	int no_pack;                             /* llm_model_set_packed(m, 0) */
	llm_progress_fn progress;                /* while loading, or NULL */
	void *progress_ctx;
};

/* Report loading progress f (0..1) to the loader's callback, if any. */
static inline void llm_model_progress(const struct llm_model *m, double f)
{
	if (m->progress)
		m->progress(m->progress_ctx, f);
}

/* arch.c */
const struct llm_arch_desc *llm_arch_find(const char *name, size_t len);
int llm_hparams_read(const struct gguf *g, const struct llm_arch_desc *ad,
		     struct llm_hparams *hp, char *err, size_t errlen);
void llm_layer_rope(const struct llm_arch_desc *ad, const struct llm_hparams *hp,
		    uint32_t il, struct llm_layer *l);

/* attn.c — attention over one span of cached positions (rows ks / vs floats apart):
 * sc[g * sc_stride + i] = scale * q_g . k_i, and out[g][:] += sum_i p[g * p_stride + i] v_i */
void llm_attn_scores(const float *q, uint32_t grp, uint32_t hk, const float *k, size_t ks,
		     uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		  const float *v, size_t vs, uint32_t n);
/* The same over IEEE half K/V rows; q and p are floats that the caller has
 * already rounded to half values (llm_f16_round), so each product is exact
 * and only the float accumulation rounds, as in ggml's f16 vec_dot. */
void llm_attn_scores_f16(const float *q, uint32_t grp, uint32_t hk, const uint16_t *k,
			 size_t ks, uint32_t n, float scale, float *sc, size_t sc_stride);
void llm_attn_mix_f16(float *out, uint32_t grp, uint32_t hv, const float *p, size_t p_stride,
		      const uint16_t *v, size_t vs, uint32_t n);
/* y[i] = half(x[i]) rounded to nearest even; x[i] = float(half(x[i])) */
void llm_f16_row(uint16_t *y, const float *x, size_t n);
void llm_f16_round(float *x, size_t n);

/* ops.c — row operations, all with a fixed reduction order */
void llm_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps);
void llm_rope_table(float *cs, uint32_t n_rot, uint32_t pos, float base, float scale,
		    const float *ff);
void llm_rope_apply(float *x, const float *cs, uint32_t n_rot, enum llm_rope_mode mode);
void llm_softmax(float *x, uint32_t n);
void llm_glu(float *gate, const float *up, uint32_t n, enum llm_act act);
float llm_dot_f32(const float *a, const float *b, uint32_t n);

#endif
