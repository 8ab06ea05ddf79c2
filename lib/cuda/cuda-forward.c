/*
 * cuda-forward.c — the CUDA backend's forward pass: cpu/forward.c's
 * computation, op for op, on the device through cuda-ops.h.
 *
 * Design
 *   - The host plans the batch (cuda_plan_batch: tokens, positions, KV
 *     slots, block tables, rows wanting logits) into one pinned buffer and
 *     copies it with one transfer; every kernel then reads its metadata
 *     from the device. Everything is enqueued on the model's stream; the
 *     host waits once, after the logits' copy back.
 *   - Per layer, as the CPU: RMSNorm; q, k, v projections (+ biases);
 *     QK-norm; RoPE (sliding layers use their own table); with an F16 cache
 *     q is scaled (where the architecture folds the scale into q) and
 *     rounded to half; K/V of every entry go to the cache; attention; the
 *     output projection (+ post-norm) into the residual; the FFN likewise.
 *     The last layer runs attention and FFN only for the entries that want
 *     logits (their rows of x gathered first), as the CPU does.
 *   - Projections take cuda_matvec up to CUDA_MATVEC_MAX_N tokens (batch
 *     invariant) and cuda_gemm (cuBLAS, f16) above: batches larger than
 *     that (prefill chunks) are not bitwise the same as token-by-token.
 *   - Scratch grows to the largest batch seen (power-of-two capacity) and
 *     is freed at close.
 *   - Attention splits an entry's positions into segments of CUDA_ATTN_SEG
 *     when the batch's longest context has more than one (flash-decoding),
 *     so a long batch-1 decode keeps every SM busy.
 *   - Batches of up to CUDA_MATVEC_MAX_N entries run as a CUDA graph
 *     (body_graph): the batch's metadata is copied before the graph and the
 *     logits after it, so a graph depends only on (n, n_out, segments,
 *     cache, scratch generation) and a steady decode replays one graph per step
 *     instead of ~20 launches per layer.
 *   - Fused kernels (the default; cuda_backend_set_fused(m, 0) runs the
 *     ops one by one, for comparisons): each residual add runs with its
 *     post-norm and the next RMSNorm (cuda_add_rmsnorm); RoPE of q and k,
 *     q's preparation and the KV write are one launch (cuda_rope_kv); in
 *     decode-sized batches the q, k, v projections are one launch, gate
 *     and up another (cuda_matvec_multi, when the weights share type and
 *     row shape). All give the unfused ops' bits, so fused and unfused
 *     passes agree bitwise. Launches of a middle layer in a batch-1
 *     decode, F16 cache, no split attention (cuda_launches;
 *     cuda_backend_launches; checked by tests/unit/test-cuda-plan.c):
 *     llama 17 -> 9, qwen2 20 -> 9 (q/k/v biases folded into the
 *     q/k/v launch), gemma3 21 -> 11
 *     (QK-norm, post-norms). Layer 0 keeps its first RMSNorm (one more);
 *     a split attention adds its combine.
 * Not yet run on a GPU: the end-to-end checks (tests/gpu) compare it with
 * the CPU backend.
 */
#ifdef PLOT_CUDA

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda-impl.h"
#include "llm/engine/kv-impl.h"

#define WH_BUDGET (64u << 20) /* bytes of f16 weight tile for cuda_gemm */

/* Everything one forward call needs at hand. */
struct fwd {
	struct llm_model *m;
	struct cuda_ctx *c;
	struct cuda_kv_store *kv;
	const struct llm_hparams *hp;
	struct cuda_batch_plan p;
	const uint32_t *d_meta;
	float *x;               /* the residual stream: s.x, or s.x2 once the last layer gathers */
	uint32_t n_seg;         /* attention segments (cuda_plan_attn_segs of the longest context) */
	int fused;              /* fused kernels (the default; cuda_backend_set_fused) */
	int xn_ready;           /* the last fused residual left the next norm in s.xn */
	char *err;
	size_t errlen;
	char e[256];
};

void cuda_scratch_free(struct cuda_scratch *s)
{
	float *f[] = { s->x, s->x2, s->xn, s->q, s->k, s->v, s->att, s->gate, s->up, s->o,
		       s->cs_g, s->cs_s, s->logits };
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		cuda_free(f[i]);
	cuda_free(s->xh);
	cuda_free(s->part);
	cuda_free(s->meta);
	cuda_host_free(s->meta_h);
	free(s->seq_off);
	memset(s, 0, sizeof *s);
}

/* The op's message as the forward pass's error; -LLM_E* */
static int fwd_fail(struct fwd *f, int rc)
{
	snprintf(f->err, f->errlen, "cuda:%d: forward: %s", f->c->index, f->e);
	return rc == CUDA_OP_ENOMEM ? -LLM_ENOMEM : -LLM_EUNSUP;
}

#define TRY(f, call)                         \
	do {                                 \
		int try_rc_ = (call);        \
		if (try_rc_)                 \
			return fwd_fail((f), try_rc_); \
	} while (0)

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t c = 16;
	while (c < n && c < 0x80000000u)
		c <<= 1;
	return c < n ? n : c;
}

static uint32_t max_cols(const struct llm_hparams *hp)
{
	uint32_t a = hp->n_embd, b = hp->n_head * hp->head_dim_v;
	a = a > b ? a : b;
	return a > hp->n_ff ? a : hp->n_ff;
}

/* Per-token buffers for cap tokens. */
static int grow_tokens(struct fwd *f, uint32_t n)
{
	struct cuda_scratch *s = &f->c->s;
	const struct llm_hparams *hp = f->hp;
	if (n <= s->cap)
		return 0;
	uint32_t cap = pow2_at_least(n);
	f->c->gen++; /* graphs hold the old pointers */
	size_t qd = (size_t)hp->n_head * hp->head_dim_k, kd = (size_t)hp->n_head_kv * hp->head_dim_k;
	size_t vd = (size_t)hp->n_head_kv * hp->head_dim_v, ad = (size_t)hp->n_head * hp->head_dim_v;
	struct { float **p; size_t w; } b[] = {
		{ &s->x, hp->n_embd }, { &s->x2, hp->n_embd }, { &s->xn, hp->n_embd },
		{ &s->q, qd }, { &s->k, kd }, { &s->v, vd }, { &s->att, ad }, { &s->gate, hp->n_ff },
		{ &s->up, hp->n_ff }, { &s->o, hp->n_embd }, { &s->cs_g, hp->n_rot },
		{ &s->cs_s, hp->n_rot },
	};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		cuda_free(*b[i].p);
		*b[i].p = NULL;
	}
	cuda_free(s->xh);
	s->xh = NULL;
	s->cap = 0;
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
		TRY(f, cuda_malloc((void **)b[i].p, (size_t)cap * b[i].w * sizeof(float), f->e,
				   sizeof f->e));
	TRY(f, cuda_malloc((void **)&s->xh, (size_t)cap * max_cols(hp) * sizeof(uint16_t), f->e,
			   sizeof f->e));
	s->cap = cap;
	return 0;
}

static int grow_logits(struct fwd *f, uint32_t n_out)
{
	struct cuda_scratch *s = &f->c->s;
	if (n_out <= s->out_cap)
		return 0;
	uint32_t cap = pow2_at_least(n_out);
	f->c->gen++;
	cuda_free(s->logits);
	s->logits = NULL;
	s->out_cap = 0;
	TRY(f, cuda_malloc((void **)&s->logits, (size_t)cap * f->hp->n_vocab * sizeof(float), f->e,
			   sizeof f->e));
	s->out_cap = cap;
	return 0;
}

/* Split attention's partials for this batch's longest context. */
static int grow_part(struct fwd *f, const struct llm_batch *b)
{
	struct cuda_scratch *s = &f->c->s;
	const struct llm_hparams *hp = f->hp;
	uint32_t max_ctx = 0;
	for (uint32_t i = 0; i < b->n; i++)
		max_ctx = b->e[i].pos + 1 > max_ctx ? b->e[i].pos + 1 : max_ctx;
	f->n_seg = cuda_plan_attn_segs(max_ctx);
	size_t need = f->n_seg > 1 ? cuda_plan_attn_part(b->n, hp->n_head, hp->n_head_kv,
							   hp->head_dim_v, f->n_seg) : 0;
	if (need <= s->part_cap)
		return 0;
	f->c->gen++;
	cuda_free(s->part);
	s->part = NULL;
	s->part_cap = 0;
	TRY(f, cuda_malloc((void **)&s->part, need * 2 * sizeof(float), f->e, sizeof f->e));
	s->part_cap = need * 2;
	return 0;
}

/* The gemm weight tile: once, sized for the largest non-F16 matrix or the budget. */
static int grow_wh(struct fwd *f, const struct cuda_w *w)
{
	struct cuda_ctx *c = f->c;
	size_t need = (size_t)cuda_plan_gemm_tile(w->rows, w->cols, WH_BUDGET) * w->cols;
	if (w->type == 1 /* F16: read in place */ || need <= c->wh_elems)
		return 0;
	cuda_free(c->wh);
	c->wh = NULL;
	c->wh_elems = 0;
	TRY(f, cuda_malloc((void **)&c->wh, need * sizeof(uint16_t), f->e, sizeof f->e));
	c->wh_elems = need;
	return 0;
}

/* Plan b into the pinned buffer and copy it to the device. */
static int upload_plan(struct fwd *f, const struct llm_kv *kv, const struct llm_batch *b,
		       int want_logits)
{
	struct cuda_scratch *s = &f->c->s;
	if (kv->max_seqs > s->seq_cap) {
		uint32_t *p = realloc(s->seq_off, kv->max_seqs * sizeof(uint32_t));
		if (!p) {
			snprintf(f->err, f->errlen, "cuda:%d: forward: out of host memory", f->c->index);
			return -LLM_ENOMEM;
		}
		s->seq_off = p;
		s->seq_cap = kv->max_seqs;
	}
	cuda_plan_batch(kv, &f->kv->L, b, want_logits, s->seq_off, s->meta_h, s->meta_cap, &f->p);
	if (f->p.words > s->meta_cap) {
		size_t cap = f->p.words * 2;
		f->c->gen++;
		cuda_host_free(s->meta_h);
		cuda_free(s->meta);
		s->meta_h = NULL;
		s->meta = NULL;
		s->meta_cap = 0;
		TRY(f, cuda_host_alloc((void **)&s->meta_h, cap * sizeof(uint32_t), f->e, sizeof f->e));
		TRY(f, cuda_malloc((void **)&s->meta, cap * sizeof(uint32_t), f->e, sizeof f->e));
		s->meta_cap = cap;
		cuda_plan_batch(kv, &f->kv->L, b, want_logits, s->seq_off, s->meta_h, s->meta_cap,
				&f->p);
	}
	TRY(f, cuda_h2d(s->meta, s->meta_h, f->p.words * sizeof(uint32_t), f->c->stream, f->e,
			sizeof f->e));
	f->d_meta = s->meta;
	return 0;
}

/* y (n, w->rows) = x (n, w->cols) . W^T */
static int matmul(struct fwd *f, const struct cuda_w *w, const float *x, uint32_t n, float *y)
{
	struct cuda_ctx *c = f->c;
	if (n <= CUDA_MATVEC_MAX_N) {
		TRY(f, cuda_matvec(y, w->d, w->type, w->row_bytes, w->rows, w->cols, x, n, c->stream,
				   f->e, sizeof f->e));
		return 0;
	}
	int rc = grow_wh(f, w);
	if (rc)
		return rc;
	uint32_t tile = cuda_plan_gemm_tile(w->rows, w->cols, c->wh_elems * sizeof(uint16_t));
	TRY(f, cuda_gemm(y, w->d, w->type, w->row_bytes, w->rows, w->cols, x, n, c->s.xh, c->wh,
			 tile, c->blas, c->stream, f->e, sizeof f->e));
	return 0;
}

/* ys[i] = x . ws[i]^T (+ bs[i] when bs and bs[i]) for k (<= CUDA_MATVEC_PARTS)
 * weights that read the same x: one launch (cuda_matvec_multi, the biases
 * folded in, the same bits) when fused, the batch is decode-sized and the
 * weights share type and row shape; else one matmul (and bias add) each. */
static int matmul_group(struct fwd *f, const struct cuda_w *const *ws, float *const *ys,
			const float *const *bs, uint32_t k, const float *x, uint32_t n)
{
	int same = f->fused && n <= CUDA_MATVEC_MAX_N, rc;
	const void *w[CUDA_MATVEC_PARTS];
	uint32_t rows[CUDA_MATVEC_PARTS];
	for (uint32_t i = 0; i < k; i++) {
		same = same && ws[i]->type == ws[0]->type && ws[i]->row_bytes == ws[0]->row_bytes &&
		       ws[i]->cols == ws[0]->cols;
		w[i] = ws[i]->d, rows[i] = ws[i]->rows;
	}
	if (same) {
		TRY(f, cuda_matvec_multi(ys, w, bs, rows, k, ws[0]->type, ws[0]->row_bytes,
					 ws[0]->cols, x, n, f->c->stream, f->e, sizeof f->e));
		return 0;
	}
	for (uint32_t i = 0; i < k; i++) {
		if ((rc = matmul(f, ws[i], x, n, ys[i])))
			return rc;
		if (bs)
			TRY(f, cuda_add_bias(ys[i], bs[i], n, ws[i]->rows, f->c->stream, f->e,
					     sizeof f->e));
	}
	return 0;
}

static int rope_kv(struct fwd *f, const struct llm_layer *hl, uint32_t il, uint32_t n);
static int rope_kv_fused(struct fwd *f, const struct llm_layer *hl, uint32_t il, uint32_t n);

/* Normed x into q, k, v (biases added), QK-norm, RoPE, q prepared for the
 * cache, K/V of every entry stored. */
static int qkv(struct fwd *f, const struct llm_layer *hl, const struct cuda_layer *l,
	       uint32_t il, uint32_t n)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_scratch *s = &f->c->s;
	void *st = f->c->stream;
	int rc;
	if (!f->xn_ready)
		TRY(f, cuda_rmsnorm(s->xn, f->x, l->attn_norm, n, hp->n_embd, hp->norm_eps, st, f->e,
				    sizeof f->e));
	f->xn_ready = 0;
	const struct cuda_w *ws[] = { &l->wq, &l->wk, &l->wv };
	float *ys[] = { s->q, s->k, s->v };
	const float *bs[] = { l->bq, l->bk, l->bv };
	if ((rc = matmul_group(f, ws, ys, bs, 3, s->xn, n)))
		return rc;
	if (f->m->ad->qk_norm) {
		TRY(f, cuda_qk_norm(s->q, l->q_norm, n, hp->n_head, hp->head_dim_k, hp->norm_eps, st,
				    f->e, sizeof f->e));
		TRY(f, cuda_qk_norm(s->k, l->k_norm, n, hp->n_head_kv, hp->head_dim_k, hp->norm_eps,
				    st, f->e, sizeof f->e));
	}
	return f->fused ? rope_kv_fused(f, hl, il, n) : rope_kv(f, hl, il, n);
}

/* RoPE, q prepared for the cache, K/V stored: four launches. */
static int rope_kv(struct fwd *f, const struct llm_layer *hl, uint32_t il, uint32_t n)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_scratch *s = &f->c->s;
	void *st = f->c->stream;
	int f16 = f->kv->L.elem_bytes == 2;
	const float *cs = hl->swa ? s->cs_s : s->cs_g;
	int mode = f->m->ad->rope == LLM_ROPE_NEOX;
	TRY(f, cuda_rope(s->q, cs, n, hp->n_head, hp->head_dim_k, hp->n_rot, mode, st, f->e,
			 sizeof f->e));
	TRY(f, cuda_rope(s->k, cs, n, hp->n_head_kv, hp->head_dim_k, hp->n_rot, mode, st, f->e,
			 sizeof f->e));
	if (f16)
		TRY(f, cuda_scale_round(s->q, (size_t)n * hp->n_head * hp->head_dim_k,
					f->m->ad->attn_scale_q ? hp->attn_scale : 1.0f, 1, st, f->e,
					sizeof f->e));
	TRY(f, cuda_kv_write(f->kv->d, &f->kv->L, il, s->k, s->v, f->d_meta + f->p.slots, n, st,
			     f->e, sizeof f->e));
	return 0;
}

/* The same in one launch (cuda_rope_kv: the same bits). */
static int rope_kv_fused(struct fwd *f, const struct llm_layer *hl, uint32_t il, uint32_t n)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_scratch *s = &f->c->s;
	int f16 = f->kv->L.elem_bytes == 2;
	struct cuda_rope_kv_args a = {
		.q = s->q, .k = s->k, .v = s->v, .cs = hl->swa ? s->cs_s : s->cs_g, .kv = f->kv->d,
		.L = f->kv->L, .layer = il, .slots = f->d_meta + f->p.slots, .n = n,
		.n_head = hp->n_head, .head_dim = hp->head_dim_k, .n_rot = hp->n_rot,
		.mode = f->m->ad->rope == LLM_ROPE_NEOX,
		.scale_q = f16 && f->m->ad->attn_scale_q ? hp->attn_scale : 1.0f, .round_q = f16,
	};
	TRY(f, cuda_rope_kv(&a, f->c->stream, f->e, sizeof f->e));
	return 0;
}

/* Attention for n_rows entries (rows: device indices, or NULL for all n). */
static int attend(struct fwd *f, const struct llm_layer *hl, uint32_t il, uint32_t n,
		  const uint32_t *rows, uint32_t n_rows)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_scratch *s = &f->c->s;
	int f16 = f->kv->L.elem_bytes == 2;
	struct cuda_attn_args a = {
		.out = s->att, .q = s->q, .kv = f->kv->d, .L = f->kv->L, .layer = il,
		.pos = f->d_meta + f->p.pos, .tab = f->d_meta + f->p.tab,
		.tab_off = f->d_meta + f->p.tab_off, .rows = rows, .n = n, .n_rows = n_rows,
		.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim_k = hp->head_dim_k,
		.head_dim_v = hp->head_dim_v, .window = hl->swa ? hp->swa_window : 0,
		.scale = f16 && f->m->ad->attn_scale_q ? 1.0f : hp->attn_scale, .round_p = f16,
		.part = f->n_seg > 1 ? s->part : NULL, .n_seg = f->n_seg,
	};
	TRY(f, cuda_attn(&a, f->c->stream, f->e, sizeof f->e));
	return 0;
}

/* y (n, n_embd) through the optional post-norm into the residual x; fused,
 * with the next norm (next: its weight, or NULL) into s.xn in the same
 * launch. */
static int residual(struct fwd *f, float *y, const float *post_norm, const float *next,
		    uint32_t n)
{
	void *st = f->c->stream;
	if (f->fused) {
		TRY(f, cuda_add_rmsnorm(f->x, y, post_norm, f->c->s.xn, next, n, f->hp->n_embd,
					f->hp->norm_eps, st, f->e, sizeof f->e));
		f->xn_ready = next != NULL;
		return 0;
	}
	if (post_norm)
		TRY(f, cuda_rmsnorm(y, y, post_norm, n, f->hp->n_embd, f->hp->norm_eps, st, f->e,
				    sizeof f->e));
	TRY(f, cuda_add(f->x, y, (size_t)n * f->hp->n_embd, st, f->e, sizeof f->e));
	return 0;
}

/* next: the norm weight after this layer (the next layer's attn_norm or
 * output_norm), for the fused residual. */
static int ffn(struct fwd *f, const struct cuda_layer *l, const float *next, uint32_t n)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_scratch *s = &f->c->s;
	void *st = f->c->stream;
	int rc;
	if (!f->xn_ready)
		TRY(f, cuda_rmsnorm(s->xn, f->x, l->ffn_norm, n, hp->n_embd, hp->norm_eps, st, f->e,
				    sizeof f->e));
	f->xn_ready = 0;
	const struct cuda_w *ws[] = { &l->gate, &l->up };
	float *ys[] = { s->gate, s->up };
	if ((rc = matmul_group(f, ws, ys, NULL, 2, s->xn, n)))
		return rc;
	TRY(f, cuda_glu(s->gate, s->up, n, hp->n_ff, f->m->ad->act == LLM_ACT_GELU_TANH, st, f->e,
			sizeof f->e));
	if ((rc = matmul(f, &l->down, s->gate, n, s->o)))
		return rc;
	return residual(f, s->o, l->post_ffw_norm, next, n);
}

/* One layer; the last one keeps only the n_out rows wanting logits. */
static int layer(struct fwd *f, uint32_t il, int last)
{
	const struct llm_layer *hl = &f->m->layers[il];
	const struct cuda_layer *l = &f->c->layers[il];
	struct cuda_scratch *s = &f->c->s;
	uint32_t n = f->p.n, nr = last ? f->p.n_out : n;
	const uint32_t *rows = last ? f->d_meta + f->p.rows : NULL;
	const float *next = last ? f->c->output_norm : f->c->layers[il + 1].attn_norm;
	int rc;
	if ((rc = qkv(f, hl, l, il, n)))
		return rc;
	if (nr == 0)
		return 0;
	if (last) {
		TRY(f, cuda_gather_rows(s->x2, f->x, rows, nr, f->hp->n_embd, f->c->stream, f->e,
					sizeof f->e));
		f->x = s->x2;
	}
	if ((rc = attend(f, hl, il, n, rows, nr)) || (rc = matmul(f, &l->wo, s->att, nr, s->o)) ||
	    (rc = residual(f, s->o, l->post_attn_norm, l->ffn_norm, nr)))
		return rc;
	return ffn(f, l, next, nr);
}

static int embed_and_rope(struct fwd *f)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_ctx *c = f->c;
	struct cuda_scratch *s = &c->s;
	uint32_t n = f->p.n;
	float sc = f->m->ad->embd_scale_sqrt ? sqrtf((float)hp->n_embd) : 1.0f;
	const uint32_t *pos = f->d_meta + f->p.pos;
	TRY(f, cuda_embed(f->x, c->tok_embd.d, c->tok_embd.type, c->tok_embd.row_bytes, hp->n_embd,
			  (const int32_t *)(f->d_meta + f->p.tokens), n, sc, c->stream, f->e,
			  sizeof f->e));
	TRY(f, cuda_rope_table(s->cs_g, pos, n, hp->n_rot, hp->rope_base, hp->rope_scale,
			       c->rope_freqs, c->stream, f->e, sizeof f->e));
	if (f->m->ad->swa_pattern)
		TRY(f, cuda_rope_table(s->cs_s, pos, n, hp->n_rot, hp->rope_base_swa, 1.0f, NULL,
				       c->stream, f->e, sizeof f->e));
	return 0;
}

/* Final norm and output projection of the n_out rows into s.logits. */
static int logits_dev(struct fwd *f)
{
	const struct llm_hparams *hp = f->hp;
	struct cuda_ctx *c = f->c;
	if (f->p.n_out == 0)
		return 0;
	if (!f->xn_ready)
		TRY(f, cuda_rmsnorm(c->s.xn, f->x, c->output_norm, f->p.n_out, hp->n_embd,
				    hp->norm_eps, c->stream, f->e, sizeof f->e));
	f->xn_ready = 0;
	return matmul(f, &c->output, c->s.xn, f->p.n_out, c->s.logits);
}

/* Every kernel of the pass, enqueued on the stream (or recorded into a graph). */
static int body(struct fwd *f)
{
	struct cuda_ctx *c = f->c;
	uint32_t n_layer = f->hp->n_layer, mid = n_layer >= 3 ? n_layer / 2 : 0;
	uint64_t t0 = cuda_launches(), l0 = 0, l1 = 0;
	int rc;
	f->x = c->s.x;
	f->xn_ready = 0;
	f->fused = !c->fused_off;
	if ((rc = embed_and_rope(f)))
		return rc;
	for (uint32_t il = 0; il < n_layer; il++) {
		if (il == mid)
			l0 = cuda_launches();
		if ((rc = layer(f, il, il + 1 == n_layer)))
			return rc;
		if (il == mid)
			l1 = cuda_launches();
	}
	if ((rc = logits_dev(f)))
		return rc;
	c->launches_layer = (uint32_t)(l1 - l0); /* one thread per model: plain stores */
	c->launches_pass = (uint32_t)(cuda_launches() - t0);
	return 0;
}

/* The cached graph for this shape, or the least recently used slot (emptied). */
static struct cuda_graph *graph_slot(struct fwd *f, int *hit)
{
	struct cuda_ctx *c = f->c;
	struct cuda_graph *lru = &c->graphs[0];
	for (int i = 0; i < CUDA_GRAPHS; i++) {
		struct cuda_graph *g = &c->graphs[i];
		if (g->exec && g->n == f->p.n && g->n_out == f->p.n_out && g->n_seg == f->n_seg &&
		    g->kv == f->kv->d &&
		    g->gen == c->gen && !memcmp(&g->L, &f->kv->L, sizeof g->L)) {
			*hit = 1;
			return g;
		}
		if (g->used < lru->used)
			lru = g;
	}
	cuda_graph_free(lru->exec);
	memset(lru, 0, sizeof *lru);
	*hit = 0;
	return lru;
}

/* Decode-sized batches: the whole pass as one CUDA graph, captured once per
 * shape (n, n_out, cache, scratch generation) and replayed: every kernel
 * reads the batch from device memory, so nothing in the graph changes
 * between steps of the same shape. */
static int body_graph(struct fwd *f)
{
	struct cuda_ctx *c = f->c;
	int hit;
	struct cuda_graph *g = graph_slot(f, &hit);
	if (!hit) {
		char e2[256];
		void *exec = NULL;
		int erc = cuda_graph_begin(c->stream, e2, sizeof e2);
		if (erc) { /* cannot capture here (the emulator, an old driver): launches */
			snprintf(c->graphs_why, sizeof c->graphs_why, "%.200s", e2);
			c->graphs_off = 1;
			return body(f);
		}
		int rc = body(f);
		erc = cuda_graph_end(c->stream, &exec, e2, sizeof e2);
		if (rc || erc) {
			cuda_graph_free(exec);
			if (rc)
				return rc;
			/* nothing ran while capturing: give up graphs for this model, say
			 * why (cuda_backend_graphs_off), and run the pass as launches */
			snprintf(c->graphs_why, sizeof c->graphs_why, "%.200s", e2);
			c->graphs_off = 1;
			return body(f);
		}
		*g = (struct cuda_graph){ .exec = exec, .n = f->p.n, .n_out = f->p.n_out, .n_seg = f->n_seg,
					  .kv = f->kv->d, .L = f->kv->L, .gen = c->gen };
		c->graph_captures++;
	} else {
		c->graph_replays++;
	}
	g->used = ++c->tick;
	TRY(f, cuda_graph_launch(g->exec, c->stream, f->e, sizeof f->e));
	return 0;
}

static int run(struct fwd *f, struct llm_kv *kv, const struct llm_batch *b, float *logits)
{
	struct cuda_ctx *c = f->c;
	int rc;
	if ((rc = upload_plan(f, kv, b, logits != NULL)) || (rc = grow_tokens(f, b->n)) ||
	    (rc = grow_logits(f, f->p.n_out)) || (rc = grow_part(f, b)))
		return rc;
	rc = b->n <= CUDA_MATVEC_MAX_N && !c->graphs_off ? body_graph(f) : body(f);
	if (rc || f->p.n_out == 0)
		return rc;
	TRY(f, cuda_d2h(logits, c->s.logits, (size_t)f->p.n_out * f->hp->n_vocab * sizeof(float),
			c->stream, f->e, sizeof f->e));
	return 0;
}

void cuda_graphs_free(struct cuda_ctx *c)
{
	for (int i = 0; i < CUDA_GRAPHS; i++)
		cuda_graph_free(c->graphs[i].exec);
	memset(c->graphs, 0, sizeof c->graphs);
}

int cuda_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		 float *logits, char *err, size_t errlen)
{
	struct fwd f = { .m = m, .c = m->dev, .kv = kv->store, .hp = &m->hp, .err = err,
			 .errlen = errlen };
	TRY(&f, cuda_set_device(f.c->index, f.e, sizeof f.e));
	int rc = run(&f, kv, b, logits);
	/* always wait: the plan's pinned buffer and the caller's logits must be free to reuse */
	int src = cuda_stream_sync(f.c->stream, f.e, sizeof f.e);
	if (rc)
		return rc;
	return src ? fwd_fail(&f, src) : 0;
}

#endif /* PLOT_CUDA */
