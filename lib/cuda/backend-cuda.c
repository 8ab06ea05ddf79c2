/*
 * backend-cuda.c — the CUDA engine backend's entry in the registry
 * (lib/llm/engine/backend.c), for device names "cuda" and "cuda:N": the
 * device's lifetime (open/close: device, stream, cuBLAS handle), the
 * weights' (upload/release: every tensor copied once, in its GGUF block
 * format), and KV storage (kv_alloc/kv_free: one cudaMalloc of the blocks
 * in cuda-ops.h's layout, zeroed). The forward pass is cuda-forward.c.
 * Compiled into every build, empty unless make CUDA=1 defines PLOT_CUDA.
 *
 * Errors name the device and what was being done: "cuda:0: out of device
 * memory uploading blk.3.ffn_up.weight (22.5 MiB; 1450.0 MiB uploaded)".
 * release and close free everything on every path, after partial
 * failures included (every pointer starts NULL, cuda_free(NULL) is a no-op).
 */
#ifdef PLOT_CUDA

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend-cuda.h"
#include "cuda/cuda-dev.h"
#include "cuda/cuda-impl.h"

#define MIB (1024.0 * 1024.0)

/* -LLM_E* for a cuda-ops.h code */
static int llm_code(int rc)
{
	return rc == CUDA_OP_ENOMEM ? -LLM_ENOMEM : -LLM_EUNSUP;
}

static int cuda_probe(int index, char *err, size_t errlen)
{
	char e[200];
	int n;
	struct cuda_dev_info info;
	if (cuda_dev_count(&n, e, sizeof e) != 0) {
		snprintf(err, errlen, "cuda:%d: no usable CUDA device: %s", index, e);
		return -LLM_EUNSUP;
	}
	if (index >= n) {
		snprintf(err, errlen, "cuda:%d: no such CUDA device (found %d)", index, n);
		return -LLM_EUNSUP;
	}
	if (cuda_dev_info(index, &info, e, sizeof e) != 0) {
		snprintf(err, errlen, "cuda:%d: %s", index, e);
		return -LLM_EUNSUP;
	}
	return 0;
}

static void cuda_close(void *dev)
{
	struct cuda_ctx *c = dev;
	if (!c)
		return;
	(void)cuda_set_device(c->index, NULL, 0);
	cuda_graphs_free(c);
	cuda_scratch_free(&c->s);
	cuda_free(c->wh);
	cuda_blas_free(c->blas);
	cuda_stream_free(c->stream);
	free(c);
}

/* The device's name, once: cudaGetDeviceProperties is too slow to ask per stats read. */
static int dev_name(struct cuda_ctx *c, char *e, size_t elen)
{
	struct cuda_dev_info info;
	if (cuda_dev_info(c->index, &info, e, elen))
		return CUDA_OP_EFAIL;
	snprintf(c->name, sizeof c->name, "%.*s", (int)sizeof c->name - 1, info.name);
	return 0;
}

/* Name and memory of the model's device, for plot stats (from the model's
 * owner thread: it makes the device current). */
static int cuda_mem(const struct llm_model *m, struct llm_device_mem *o, char *err,
		    size_t errlen)
{
	const struct cuda_ctx *c = m->dev;
	char e[200];
	size_t fr, tot;
	int rc;
	if ((rc = cuda_set_device(c->index, e, sizeof e)) ||
	    (rc = cuda_mem_info(&fr, &tot, e, sizeof e))) {
		snprintf(err, errlen, "cuda:%d: %s", c->index, e);
		return llm_code(rc);
	}
	snprintf(o->name, sizeof o->name, "%s", c->name);
	o->total_bytes = tot;
	o->free_bytes = fr;
	return 0;
}

static int cuda_open(int index, void **dev, char *err, size_t errlen)
{
	char e[200];
	struct cuda_ctx *c = calloc(1, sizeof(*c));
	int rc;
	*dev = NULL;
	if (!c) {
		snprintf(err, errlen, "cuda:%d: out of host memory", index);
		return -LLM_ENOMEM;
	}
	c->index = index;
	if ((rc = dev_name(c, e, sizeof e)) || (rc = cuda_set_device(index, e, sizeof e)) ||
	    (rc = cuda_stream_new(&c->stream, e, sizeof e)) ||
	    (rc = cuda_blas_new(&c->blas, c->stream, e, sizeof e))) {
		snprintf(err, errlen, "cuda:%d: %s", index, e);
		cuda_close(c);
		return llm_code(rc);
	}
	*dev = c;
	return 0;
}

/* ---- upload ------------------------------------------------------------- */

/* Copy n bytes of host src to a new device buffer *d, for tensor `what`. */
static int up_bytes(struct cuda_ctx *c, void **d, const void *src, size_t n, const char *what,
		    char *err, size_t errlen)
{
	char e[200];
	int rc = cuda_malloc(d, n, e, sizeof e);
	if (rc == 0)
		rc = cuda_h2d(*d, src, n, c->stream, e, sizeof e);
	if (rc == CUDA_OP_ENOMEM)
		snprintf(err, errlen, "cuda:%d: out of device memory uploading %s (%.1f MiB; %.1f MiB "
			 "uploaded)", c->index, what, n / MIB, c->weight_bytes / MIB);
	else if (rc)
		snprintf(err, errlen, "cuda:%d: uploading %s: %s", c->index, what, e);
	else
		c->weight_bytes += n;
	return rc ? llm_code(rc) : 0;
}

static int up_vec(struct cuda_ctx *c, float **d, const float *h, size_t n, const char *what,
		  char *err, size_t errlen)
{
	*d = NULL;
	return h ? up_bytes(c, (void **)d, h, n * sizeof(float), what, err, errlen) : 0;
}

static int up_w(struct cuda_ctx *c, struct cuda_w *d, const struct llm_w *w, const char *what,
		char *err, size_t errlen)
{
	char e[200];
	*d = (struct cuda_w){ .type = w->type, .rows = w->rows, .cols = w->cols,
			      .row_bytes = w->row_bytes };
	if (cuda_plan_weight(w->type, w->cols, w->row_bytes, e, sizeof e)) {
		snprintf(err, errlen, "cuda:%d: %s: %s", c->index, what, e);
		return -LLM_EUNSUP;
	}
	return up_bytes(c, &d->d, w->data, (size_t)w->rows * w->row_bytes, what, err, errlen);
}

static int up_layer(struct cuda_ctx *c, const struct llm_model *m, uint32_t il, char *err,
		    size_t errlen)
{
	const struct llm_layer *l = &m->layers[il];
	struct cuda_layer *d = &c->layers[il];
	const struct llm_hparams *hp = &m->hp;
	const struct { struct cuda_w *d; const struct llm_w *w; const char *name; } ws[] = {
		{ &d->wq, &l->wq, "attn_q" }, { &d->wk, &l->wk, "attn_k" }, { &d->wv, &l->wv, "attn_v" },
		{ &d->wo, &l->wo, "attn_output" }, { &d->gate, &l->gate, "ffn_gate" },
		{ &d->up, &l->up, "ffn_up" }, { &d->down, &l->down, "ffn_down" },
	};
	const struct { float **d; const float *h; size_t n; const char *name; } vs[] = {
		{ &d->attn_norm, l->attn_norm, hp->n_embd, "attn_norm" },
		{ &d->ffn_norm, l->ffn_norm, hp->n_embd, "ffn_norm" },
		{ &d->q_norm, l->q_norm, hp->head_dim_k, "attn_q_norm" },
		{ &d->k_norm, l->k_norm, hp->head_dim_k, "attn_k_norm" },
		{ &d->post_attn_norm, l->post_attn_norm, hp->n_embd, "post_attention_norm" },
		{ &d->post_ffw_norm, l->post_ffw_norm, hp->n_embd, "post_ffw_norm" },
		{ &d->bq, l->bq, l->wq.rows, "attn_q.bias" }, { &d->bk, l->bk, l->wk.rows, "attn_k.bias" },
		{ &d->bv, l->bv, l->wv.rows, "attn_v.bias" },
	};
	char what[64];
	int rc;
	for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
		snprintf(what, sizeof what, "blk.%u.%s.weight", il, ws[i].name);
		if ((rc = up_w(c, ws[i].d, ws[i].w, what, err, errlen)))
			return rc;
	}
	for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		snprintf(what, sizeof what, "blk.%u.%s", il, vs[i].name);
		if ((rc = up_vec(c, vs[i].d, vs[i].h, vs[i].n, what, err, errlen)))
			return rc;
	}
	return 0;
}

static int up_globals(struct cuda_ctx *c, const struct llm_model *m, char *err, size_t errlen)
{
	int rc;
	if ((rc = up_w(c, &c->tok_embd, &m->tok_embd, "token_embd.weight", err, errlen)) ||
	    (rc = up_vec(c, &c->output_norm, m->output_norm, m->hp.n_embd, "output_norm.weight",
			 err, errlen)) ||
	    (rc = up_vec(c, &c->rope_freqs, m->rope_freqs, m->hp.n_rot / 2, "rope_freqs.weight",
			 err, errlen)))
		return rc;
	if (m->output.data == m->tok_embd.data) {
		c->output = c->tok_embd;
		c->output_shared = 1;
		return 0;
	}
	return up_w(c, &c->output, &m->output, "output.weight", err, errlen);
}

static void cuda_release(struct llm_model *m)
{
	struct cuda_ctx *c = m->dev;
	if (!c)
		return;
	(void)cuda_set_device(c->index, NULL, 0);
	(void)cuda_stream_sync(c->stream, NULL, 0);
	cuda_graphs_free(c); /* they hold the weights' pointers */
	for (uint32_t il = 0; c->layers && il < c->n_layer; il++) {
		struct cuda_layer *l = &c->layers[il];
		void *p[] = { l->wq.d, l->wk.d, l->wv.d, l->wo.d, l->gate.d, l->up.d, l->down.d,
			      l->attn_norm, l->ffn_norm, l->q_norm, l->k_norm, l->post_attn_norm,
			      l->post_ffw_norm, l->bq, l->bk, l->bv };
		for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
			cuda_free(p[i]);
	}
	free(c->layers);
	c->layers = NULL;
	c->n_layer = 0;
	cuda_free(c->tok_embd.d);
	if (!c->output_shared)
		cuda_free(c->output.d);
	cuda_free(c->output_norm);
	cuda_free(c->rope_freqs);
	c->tok_embd.d = c->output.d = NULL;
	c->output_norm = c->rope_freqs = NULL;
	c->output_shared = 0;
	c->weight_bytes = 0;
}

static int cuda_upload(struct llm_model *m, char *err, size_t errlen)
{
	struct cuda_ctx *c = m->dev;
	char e[200];
	int rc;
	if ((rc = cuda_set_device(c->index, e, sizeof e))) {
		snprintf(err, errlen, "cuda:%d: %s", c->index, e);
		return llm_code(rc);
	}
	if (cuda_plan_attn(m->hp.n_head, m->hp.n_head_kv, m->hp.head_dim_k, m->hp.head_dim_v, e,
			   sizeof e)) {
		snprintf(err, errlen, "cuda:%d: %s", c->index, e);
		return -LLM_EUNSUP;
	}
	if (!(c->layers = calloc(m->hp.n_layer, sizeof(*c->layers)))) {
		snprintf(err, errlen, "cuda:%d: out of host memory", c->index);
		return -LLM_ENOMEM;
	}
	c->n_layer = m->hp.n_layer;
	if ((rc = up_globals(c, m, err, errlen)))
		return rc;
	for (uint32_t il = 0; il < m->hp.n_layer; il++) {
		if ((rc = up_layer(c, m, il, err, errlen)))
			return rc;
		llm_model_progress(m, 0.1 + 0.9 * (il + 1) / m->hp.n_layer);
	}
	if ((rc = cuda_stream_sync(c->stream, e, sizeof e))) {
		snprintf(err, errlen, "cuda:%d: uploading weights: %s", c->index, e);
		return llm_code(rc);
	}
	return 0;
}

size_t cuda_backend_weight_bytes(const struct llm_model *m)
{
	const struct cuda_ctx *c = m->dev;
	return m->be == &llm_backend_cuda && c ? c->weight_bytes : 0;
}

int cuda_backend_set_graphs(struct llm_model *m, int on)
{
	struct cuda_ctx *c = m->dev;
	if (m->be != &llm_backend_cuda || !c)
		return -LLM_EINVAL;
	c->graphs_off = !on;
	if (on)
		c->graphs_why[0] = 0;
	return 0;
}

int cuda_backend_set_fused(struct llm_model *m, int on)
{
	struct cuda_ctx *c = m->dev;
	if (m->be != &llm_backend_cuda || !c)
		return -LLM_EINVAL;
	c->fused_off = !on;
	c->gen++; /* a captured graph holds the other kernels */
	return 0;
}

int cuda_backend_launches(const struct llm_model *m, uint32_t *per_layer, uint32_t *per_pass)
{
	const struct cuda_ctx *c = m->dev;
	if (m->be != &llm_backend_cuda || !c)
		return -LLM_EINVAL;
	*per_layer = c->launches_layer;
	*per_pass = c->launches_pass;
	return 0;
}

int cuda_backend_graph_counts(const struct llm_model *m, uint64_t *captures, uint64_t *replays)
{
	const struct cuda_ctx *c = m->dev;
	if (m->be != &llm_backend_cuda || !c)
		return -LLM_EINVAL;
	*captures = c->graph_captures;
	*replays = c->graph_replays;
	return 0;
}

const char *cuda_backend_graphs_off(const struct llm_model *m)
{
	const struct cuda_ctx *c = m->dev;
	return m->be == &llm_backend_cuda && c && c->graphs_why[0] ? c->graphs_why : NULL;
}

/* ---- KV storage ----------------------------------------------------------- */

static int cuda_kv_alloc(void *dev, const struct llm_kv_geom *g, void **store, char *err,
			 size_t errlen)
{
	struct cuda_ctx *c = dev;
	struct cuda_kv_store *s = calloc(1, sizeof(*s));
	char e[200];
	int rc;
	*store = NULL;
	if (!s) {
		snprintf(err, errlen, "cuda:%d: KV cache: out of host memory", c->index);
		return -LLM_ENOMEM;
	}
	if ((rc = cuda_plan_kv(&s->L, (uint32_t)g->elem_bytes, g->n_layer, g->block_size,
			       g->n_blocks, g->kdim, g->vdim, e, sizeof e)) ||
	    (rc = cuda_set_device(c->index, e, sizeof e)) ||
	    (rc = cuda_malloc(&s->d, s->L.bytes, e, sizeof e)) ||
	    (rc = cuda_memset(s->d, 0, s->L.bytes, c->stream, e, sizeof e)) ||
	    (rc = cuda_stream_sync(c->stream, e, sizeof e))) {
		if (rc == CUDA_OP_ENOMEM)
			snprintf(err, errlen, "cuda:%d: out of device memory for the KV cache (%u blocks, "
				 "%.1f MiB)", c->index, g->n_blocks, s->L.bytes / MIB);
		else
			snprintf(err, errlen, "cuda:%d: KV cache: %s", c->index, e);
		cuda_free(s->d);
		free(s);
		return rc == CUDA_OP_ENOMEM ? -LLM_ENOMEM : rc == CUDA_OP_EINVAL ? -LLM_EINVAL
										 : -LLM_EUNSUP;
	}
	*store = s;
	return 0;
}

static void cuda_kv_free(void *dev, void *store)
{
	struct cuda_ctx *c = dev;
	struct cuda_kv_store *s = store;
	if (!s)
		return;
	(void)cuda_set_device(c->index, NULL, 0);
	(void)cuda_stream_sync(c->stream, NULL, 0); /* no kernel may still read it */
	cuda_free(s->d);
	free(s);
}

const struct llm_backend_ops llm_backend_cuda = {
	.name = "cuda",
	.indexed = 1,
	.probe = cuda_probe,
	.open = cuda_open,
	.close = cuda_close,
	.upload = cuda_upload,
	.release = cuda_release,
	.kv_alloc = cuda_kv_alloc,
	.kv_free = cuda_kv_free,
	.forward = cuda_forward,
	.mem = cuda_mem,
	.set_threads = NULL,
	.threads = NULL,
};

#endif /* PLOT_CUDA */
