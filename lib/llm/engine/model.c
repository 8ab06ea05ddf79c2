/*
 * model.c — loading a GGUF model onto a device: architecture,
 * hyper-parameters, weights.
 *
 * Design: the device name picks a backend (backend.c), which is probed and
 * opened before the file is read, so a missing GPU fails fast. Weight
 * matrices stay in the GGUF mapping (struct llm_w points into it); only the
 * small 1-D norm vectors are copied out as float, so a norm can be stored
 * in any type we can dequantize. Every tensor's shape and type is checked
 * here, once, so no backend re-validates; then the backend's upload makes
 * the weights usable on its device (CPU: repacked for the GEMM kernels,
 * cpu/model-pack.c). Errors name the tensor, key or device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/engine/backend-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/quant.h"

static const struct gguf_tensor *find_tensor(const struct gguf *g, const char *name,
					     int required, char *err, size_t errlen)
{
	const struct gguf_tensor *t = gguf_find_tensor(g, name);
	if (!t && required)
		snprintf(err, errlen, "missing tensor '%s'", name);
	return t;
}

static int check_type(const struct gguf_tensor *t, char *err, size_t errlen)
{
	if (!quant_supported(t->type)) {
		snprintf(err, errlen, "tensor '%s': type %s (%u) not supported", t->name,
			 quant_name(t->type), t->type);
		return -LLM_EUNSUP;
	}
	return 0;
}

/* A matrix of `rows` rows of `cols` elements (rows == 0: any row count). */
static int load_w(const struct gguf *g, const char *name, uint32_t cols, uint32_t rows,
		  struct llm_w *w, char *err, size_t errlen)
{
	const struct gguf_tensor *t = find_tensor(g, name, 1, err, errlen);
	if (!t)
		return -LLM_EFORMAT;
	int rc = check_type(t, err, errlen);
	if (rc)
		return rc;
	if (t->ne[0] != cols || (rows && t->ne[1] != rows) || t->ne[1] == 0 ||
	    t->ne[1] > UINT32_MAX || t->ne[2] != 1 || t->ne[3] != 1) {
		snprintf(err, errlen, "tensor '%s': shape (%llu, %llu, %llu), want (%u, %u)",
			 name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
			 (unsigned long long)t->ne[2], cols, rows);
		return -LLM_EFORMAT;
	}
	w->row_bytes = quant_row_bytes(t->type, cols);
	if (w->row_bytes == 0 || w->row_bytes * t->ne[1] > t->nbytes) {
		snprintf(err, errlen, "tensor '%s': %u columns do not fit type %s blocks",
			 name, cols, quant_name(t->type));
		return -LLM_EFORMAT;
	}
	w->data = t->data;
	w->type = t->type;
	w->cols = cols;
	w->rows = (uint32_t)t->ne[1];
	return 0;
}

/* A 1-D vector of n elements, copied out as float. Absent and optional: *out = NULL. */
static int load_vec(const struct gguf *g, const char *name, uint32_t n, int required,
		    float **out, char *err, size_t errlen)
{
	*out = NULL;
	const struct gguf_tensor *t = find_tensor(g, name, required, err, errlen);
	if (!t)
		return required ? -LLM_EFORMAT : 0;
	int rc = check_type(t, err, errlen);
	if (rc)
		return rc;
	if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1 ||
	    quant_row_bytes(t->type, n) == 0) {
		snprintf(err, errlen, "tensor '%s': shape (%llu, %llu), want (%u)", name,
			 (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], n);
		return -LLM_EFORMAT;
	}
	if (!(*out = malloc((size_t)n * sizeof(float)))) {
		snprintf(err, errlen, "tensor '%s': out of memory", name);
		return -LLM_ENOMEM;
	}
	quant_dequant_row(t->type, t->data, *out, n);
	return 0;
}

static int load_layer(struct llm_model *m, uint32_t il, char *err, size_t errlen)
{
	const struct llm_hparams *hp = &m->hp;
	const struct gguf *g = m->g;
	struct llm_layer *l = &m->layers[il];
	uint32_t e = hp->n_embd, qd = hp->n_head * hp->head_dim_k;
	uint32_t kd = hp->n_head_kv * hp->head_dim_k, vd = hp->n_head_kv * hp->head_dim_v;
	uint32_t od = hp->n_head * hp->head_dim_v;
	int post = m->ad->post_norms, qkn = m->ad->qk_norm;
	char n[14][64];
	static const char *suffix[14] = {
		"attn_norm", "ffn_norm", "attn_q_norm", "attn_k_norm", "post_attention_norm",
		"post_ffw_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
		"ffn_up", "ffn_down", "",
	};
	for (int i = 0; i < 13; i++)
		snprintf(n[i], sizeof(n[i]), "blk.%u.%s.weight", il, suffix[i]);
	int rc;
	if ((rc = load_vec(g, n[0], e, 1, &l->attn_norm, err, errlen)) ||
	    (rc = load_vec(g, n[1], e, 1, &l->ffn_norm, err, errlen)) ||
	    (qkn && (rc = load_vec(g, n[2], hp->head_dim_k, 1, &l->q_norm, err, errlen))) ||
	    (qkn && (rc = load_vec(g, n[3], hp->head_dim_k, 1, &l->k_norm, err, errlen))) ||
	    (post && (rc = load_vec(g, n[4], e, 1, &l->post_attn_norm, err, errlen))) ||
	    (post && (rc = load_vec(g, n[5], e, 1, &l->post_ffw_norm, err, errlen))) ||
	    (rc = load_w(g, n[6], e, qd, &l->wq, err, errlen)) ||
	    (rc = load_w(g, n[7], e, kd, &l->wk, err, errlen)) ||
	    (rc = load_w(g, n[8], e, vd, &l->wv, err, errlen)) ||
	    (rc = load_w(g, n[9], od, e, &l->wo, err, errlen)) ||
	    (rc = load_w(g, n[10], e, hp->n_ff, &l->gate, err, errlen)) ||
	    (rc = load_w(g, n[11], e, hp->n_ff, &l->up, err, errlen)) ||
	    (rc = load_w(g, n[12], hp->n_ff, e, &l->down, err, errlen)))
		return rc;
	uint32_t bias_len[3] = { qd, kd, vd };
	float **bias[3] = { &l->bq, &l->bk, &l->bv };
	for (int i = 0; i < 3; i++) {
		snprintf(n[13], sizeof(n[13]), "blk.%u.%s.bias", il, suffix[6 + i]);
		if ((rc = load_vec(g, n[13], bias_len[i], m->ad->qkv_bias, bias[i], err, errlen)))
			return rc;
	}
	llm_layer_rope(m->ad, hp, il, l);
	return 0;
}

static int load_arch(struct llm_model *m, char *err, size_t errlen)
{
	struct gguf_str a;
	if (gguf_get_str(m->g, "general.architecture", &a) != 0) {
		snprintf(err, errlen, "missing key 'general.architecture'");
		return -LLM_EFORMAT;
	}
	if (!(m->ad = llm_arch_find(a.s, a.len))) {
		snprintf(err, errlen, "key 'general.architecture': '%.*s' not supported "
			 "(llama, qwen2, gemma3)", (int)(a.len > 64 ? 64 : a.len), a.s);
		return -LLM_EUNSUP;
	}
	return llm_hparams_read(m->g, m->ad, &m->hp, err, errlen);
}

static int load_globals(struct llm_model *m, char *err, size_t errlen)
{
	struct llm_hparams *hp = &m->hp;
	int rc = load_w(m->g, "token_embd.weight", hp->n_embd, 0, &m->tok_embd, err, errlen);
	if (rc)
		return rc;
	hp->n_vocab = m->tok_embd.rows;
	if ((rc = load_vec(m->g, "output_norm.weight", hp->n_embd, 1, &m->output_norm,
			   err, errlen)))
		return rc;
	if ((rc = load_vec(m->g, "rope_freqs.weight", hp->n_rot / 2, 0, &m->rope_freqs,
			   err, errlen)))
		return rc;
	hp->tied_embeddings = gguf_find_tensor(m->g, "output.weight") == NULL;
	if (hp->tied_embeddings) {
		m->output = m->tok_embd;
		return 0;
	}
	return load_w(m->g, "output.weight", hp->n_embd, hp->n_vocab, &m->output, err, errlen);
}

/* Backend for device, probed and opened. */
static int open_device(struct llm_model *m, const char *device, char *err, size_t errlen)
{
	int index, rc;
	if ((rc = llm_backend_find(device, &m->be, &index, err, errlen)))
		return rc;
	if (m->be->indexed)
		snprintf(m->device, sizeof m->device, "%s:%d", m->be->name, index);
	else
		snprintf(m->device, sizeof m->device, "%s", m->be->name);
	if ((rc = m->be->probe(index, err, errlen)) ||
	    (rc = m->be->open(index, &m->dev, err, errlen))) {
		m->be = NULL;
		return rc;
	}
	return 0;
}

static int load_host(struct llm_model *m, const char *path, char *err, size_t errlen)
{
	int rc;
	if (!(m->g = gguf_open(path, err, errlen)))
		return -LLM_EFORMAT;
	if ((rc = load_arch(m, err, errlen)) || (rc = load_globals(m, err, errlen)))
		return rc;
	if (!(m->layers = calloc(m->hp.n_layer, sizeof(*m->layers)))) {
		snprintf(err, errlen, "out of memory");
		return -LLM_ENOMEM;
	}
	for (uint32_t il = 0; il < m->hp.n_layer; il++)
		if ((rc = load_layer(m, il, err, errlen)))
			return rc;
	return 0;
}

struct llm_model *llm_model_load_progress(const char *path, const char *device,
					  llm_progress_fn progress, void *ctx,
					  char *err, size_t errlen)
{
	struct llm_model *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->progress = progress;
	m->progress_ctx = ctx;
	llm_model_progress(m, 0);
	if (open_device(m, device, err, errlen) || load_host(m, path, err, errlen) ||
	    m->be->upload(m, err, errlen)) {
		llm_model_free(m);
		return NULL;
	}
	llm_model_progress(m, 1);
	m->progress = NULL; /* the callback's context may not outlive the load */
	return m;
}

struct llm_model *llm_model_load_on(const char *path, const char *device, char *err,
				    size_t errlen)
{
	return llm_model_load_progress(path, device, NULL, NULL, err, errlen);
}

struct llm_model *llm_model_load(const char *path, char *err, size_t errlen)
{
	return llm_model_load_on(path, "cpu", err, errlen);
}

void llm_model_free(struct llm_model *m)
{
	if (!m)
		return;
	if (m->be) {
		m->be->release(m);
		m->be->close(m->dev);
	}
	if (m->layers) {
		for (uint32_t il = 0; il < m->hp.n_layer; il++) {
			struct llm_layer *l = &m->layers[il];
			free(l->attn_norm);
			free(l->ffn_norm);
			free(l->q_norm);
			free(l->k_norm);
			free(l->post_attn_norm);
			free(l->post_ffw_norm);
			free(l->bq);
			free(l->bk);
			free(l->bv);
		}
	}
	free(m->layers);
	free(m->output_norm);
	free(m->rope_freqs);
	if (m->g)
		gguf_close(m->g);
	free(m);
}

const struct llm_hparams *llm_model_hparams(const struct llm_model *m) { return &m->hp; }
const struct gguf *llm_model_gguf(const struct llm_model *m) { return m->g; }

const char *llm_model_device(const struct llm_model *m) { return m->device; }

int llm_model_device_mem(const struct llm_model *m, struct llm_device_mem *o, char *err,
			 size_t errlen)
{
	if (!m->be->mem) {
		snprintf(err, errlen, "%s: no device memory of its own", m->device);
		return -LLM_EUNSUP;
	}
	memset(o, 0, sizeof *o);
	return m->be->mem(m, o, err, errlen);
}

int llm_model_set_threads(struct llm_model *m, unsigned n)
{
	if (n < 1 || n > LLM_MAX_THREADS)
		return -LLM_EINVAL;
	return m->be->set_threads ? m->be->set_threads(m, n) : 0;
}

unsigned llm_model_threads(const struct llm_model *m)
{
	return m->be->threads ? m->be->threads(m) : 1;
}

void llm_model_set_float_acts(struct llm_model *m, int on)
{
	m->float_acts = on != 0;
}
