/*
 * forward.c — the CPU backend's batch-first forward pass.
 *
 * Design
 *   - The host (engine/batch.c) has validated the batch and reserved its KV
 *     blocks; this file computes. One call evaluates n entries (seq, pos, token) from any
 *     mix of sequences. Activations are (n, dim) row-major; every projection
 *     is one matmul W (rows, cols) x X (n, cols) -> Y (n, rows): X is
 *     quantized once to the weight's dot type (shared by q/k/v and by
 *     gate/up, which run as one pool run), then threads take chunks of
 *     weight rows from a shared counter and, per row, run over all n tokens
 *     in tiles of MM_TB (rows outer, tokens inner), so each weight byte comes
 *     from memory once per batch.
 *   - K and V of every entry are written into the paged cache before
 *     attention, so an entry attends to positions [lo, pos] of its own
 *     sequence, earlier entries of the same batch included (lo > 0 only in
 *     sliding-window layers). Attention works per (entry, KV head), walking
 *     the block table span by span, all query heads of the group at once.
 *   - The last layer finishes only the entries that want logits.
 *   - Architecture differences come from m->ad (arch.c) as flags.
 *   - An F16 cache (llm_kv_type) rounds where llama.cpp's default path
 *     does: K and V as stored, q (times the scale where ad->attn_scale_q)
 *     and the softmax probabilities, all to half; scores, softmax and sums
 *     stay float (attn.c's header).
 * Batch invariance: Y[t][r] is one quant_vec_dot over row r and token t's
 * own quantized activations; attention of (t, head) reads only t's
 * sequence; norms and activations are per row. No reduction ever spans
 * tokens or depends on which thread does it, so a sequence's logits are
 * bitwise the same in any batch and with any thread count.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/cpu/cpu-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/pack.h"
#include "llm/quant/quant.h"
#include "llm/cpu/threads.h"

#define MM_MAX 3     /* matrices sharing one input in one run (q, k, v) */
#define MM_CHUNKS_PER_THREAD 8
#define MM_MIN_CHUNK 16
#define MM_TB 16     /* tokens per tile: their activations stay in L1/L2 */

struct llm_scratch {
	uint32_t cap;            /* tokens the buffers below hold */
	float *x;                /* (cap, n_embd) residual stream */
	float *xn;               /* (cap, max(n_embd, n_out_rows)) normed input */
	float *q, *k, *v;        /* (cap, n_head*hdk), (cap, n_kv*hdk), (cap, n_kv*hdv) */
	float *att;              /* (cap, n_head*hdv) */
	float *gate, *up;        /* (cap, n_ff) */
	float *o;                /* (cap, n_embd) projection output */
	float *rope_g, *rope_s;  /* (cap, n_rot) cos/sin tables, global and sliding */
	uint8_t *xq[MM_MAX];     /* (cap, dot row bytes) quantized activations */
	size_t xq_row_max;
	float *scores;           /* (n_threads, score_cap) per-thread row: attention
	                          * scores, or a dequantized weight row (float_acts) */
	size_t score_cap;
	unsigned score_threads;
	uint32_t *out_rows;      /* (cap) batch indices of the entries wanting logits */
};

void llm_scratch_free(struct llm_scratch *s)
{
	if (!s)
		return;
	free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att);
	free(s->gate); free(s->up); free(s->o); free(s->rope_g); free(s->rope_s);
	for (int i = 0; i < MM_MAX; i++)
		free(s->xq[i]);
	free(s->scores); free(s->out_rows);
	free(s);
}

/* ---- scratch ----------------------------------------------------------- */

static int grow(float **p, size_t n)
{
	float *q = realloc(*p, (n ? n : 1) * sizeof(float));
	if (!q)
		return -1;
	*p = q;
	return 0;
}

/* Largest dot-type row of any matmul input (n_embd, n_head*hdv or n_ff). */
static size_t max_dot_row(const struct llm_model *m)
{
	const struct llm_hparams *hp = &m->hp;
	uint32_t cols[3] = { hp->n_embd, hp->n_head * hp->head_dim_v, hp->n_ff };
	size_t mx = 0;
	for (int i = 0; i < 3; i++) {
		size_t b = (size_t)cols[i] * sizeof(float); /* F32 is the widest dot type */
		mx = b > mx ? b : mx;
	}
	return mx;
}

static int scratch_reserve(struct llm_model *m, uint32_t n)
{
	if (!m->scr && !(m->scr = calloc(1, sizeof(*m->scr))))
		return -1;
	struct llm_scratch *s = m->scr;
	if (n <= s->cap)
		return 0;
	const struct llm_hparams *hp = &m->hp;
	size_t e = hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim_k;
	size_t kd = (size_t)hp->n_head_kv * hp->head_dim_k;
	size_t vd = (size_t)hp->n_head_kv * hp->head_dim_v;
	size_t ad = (size_t)hp->n_head * hp->head_dim_v, f = hp->n_ff;
	s->xq_row_max = max_dot_row(m);
	if (grow(&s->x, n * e) || grow(&s->xn, n * e) || grow(&s->q, n * qd) ||
	    grow(&s->k, n * kd) || grow(&s->v, n * vd) || grow(&s->att, n * ad) ||
	    grow(&s->gate, n * f) || grow(&s->up, n * f) || grow(&s->o, n * e) ||
	    grow(&s->rope_g, (size_t)n * hp->n_rot) || grow(&s->rope_s, (size_t)n * hp->n_rot))
		return -1;
	uint32_t *rows = realloc(s->out_rows, n * sizeof(*rows));
	if (!rows)
		return -1;
	s->out_rows = rows;
	for (int i = 0; i < MM_MAX; i++) {
		uint8_t *xq = realloc(s->xq[i], n * s->xq_row_max);
		if (!xq)
			return -1;
		s->xq[i] = xq;
	}
	s->cap = n;
	return 0;
}

/* Attention scores: one row of max_ctx floats per thread. */
static int scores_reserve(struct llm_scratch *s, unsigned nth, size_t max_ctx)
{
	if (nth <= s->score_threads && max_ctx <= s->score_cap)
		return 0;
	size_t cap = max_ctx > s->score_cap ? max_ctx : s->score_cap;
	unsigned t = nth > s->score_threads ? nth : s->score_threads;
	if (grow(&s->scores, cap * t))
		return -1;
	s->score_cap = cap;
	s->score_threads = t;
	return 0;
}

/* ---- matmul ------------------------------------------------------------ */


struct mm_ctx {
	uint32_t k, n;                      /* matrices, tokens */
	const struct llm_w *w[MM_MAX];
	float *y[MM_MAX];                   /* (n, w[i]->rows) each */
	const uint8_t *xq[MM_MAX];          /* (n, xrb[i]) input in w[i]'s activation type */
	size_t xrb[MM_MAX];
	uint32_t at[MM_MAX];                /* activation type of w[i] (Q_F32: none) */
	int packed[MM_MAX];                 /* w[i] runs on pack_gemm */
	const float *x;                     /* (n, cols) float input */
	uint8_t *qbuf[MM_MAX];              /* where to quantize x for w[i], NULL: shared/none */
	int float_acts;                     /* dequantize W rows, dot with float X */
	struct llm_scratch *s;
	uint64_t chunk;                     /* rows per work item, a multiple of 2 * PACK_ROWS */
	uint64_t items[MM_MAX];             /* work items of matrices 0..i, cumulative */
	_Atomic uint64_t next;              /* next work item to take */
};

static void quantize_rows(const struct mm_ctx *mc, int64_t lo, int64_t hi)
{
	for (uint32_t i = 0; i < mc->k; i++) {
		if (!mc->qbuf[i])
			continue;
		uint32_t cols = mc->w[i]->cols;
		for (int64_t t = lo; t < hi; t++) {
			uint8_t *dst = mc->qbuf[i] + t * mc->xrb[i];
			if (mc->packed[i])
				pack_quantize_act(mc->at[i], mc->x + t * cols, dst, cols);
			else
				quant_quantize_row(mc->at[i], mc->x + t * cols, dst, cols);
		}
	}
}

static void quantize_fn(void *c, unsigned ith, unsigned nth)
{
	const struct mm_ctx *mc = c;
	int64_t lo, hi;
	thr_split(mc->n, ith, nth, &lo, &hi);
	quantize_rows(mc, lo, hi);
}

/* Rows [r0, r1) of matrix i against every token. Tokens go in tiles of
 * MM_TB so a tile's activations stay in cache while the rows stream by;
 * both kernels give each (row, token) the bits it would get alone. */
static void mm_rows(const struct mm_ctx *mc, uint32_t i, int64_t r0, int64_t r1)
{
	const struct llm_w *w = mc->w[i];
	const uint8_t *base = w->data;
	for (uint32_t t0 = 0; t0 < mc->n; t0 += MM_TB) {
		uint32_t nt = mc->n - t0 < MM_TB ? mc->n - t0 : MM_TB;
		const uint8_t *x = mc->xq[i] + (size_t)t0 * mc->xrb[i];
		float *y = mc->y[i] + (size_t)t0 * w->rows;
		if (mc->packed[i])
			pack_gemm(w->type, w->cols, w->packed, r0, r1, x, mc->xrb[i], nt, y + r0,
				  w->rows);
		else
			quant_vec_dot_mn(w->type, w->cols, base + r0 * w->row_bytes, w->row_bytes,
					 r1 - r0, x, mc->xrb[i], nt, y + r0, 1, w->rows);
	}
}

/* The float_acts variant: W row dequantized into wrow, float dot per token. */
static void mm_rows_float(const struct mm_ctx *mc, uint32_t i, int64_t r0, int64_t r1,
			  float *wrow)
{
	const struct llm_w *w = mc->w[i];
	for (int64_t r = r0; r < r1; r++) {
		quant_dequant_row(w->type, (const uint8_t *)w->data + r * w->row_bytes, wrow, w->cols);
		for (uint32_t t = 0; t < mc->n; t++)
			mc->y[i][(size_t)t * w->rows + r] =
				llm_dot_f32(wrow, mc->x + (size_t)t * w->cols, w->cols);
	}
}

/* Threads take work items (chunk rows of one matrix) from a shared counter
 * until none is left, so a thread the OS runs late (a shared machine)
 * delays the join by at most one chunk. Chunks start at multiples of
 * PACK_ROWS, as the packed kernels need. Which thread computes a row never
 * changes its bits. */
static void mm_fn(void *c, unsigned ith, unsigned nth)
{
	struct mm_ctx *mc = c;
	for (;;) {
		uint64_t it = atomic_fetch_add_explicit(&mc->next, 1, memory_order_relaxed);
		uint32_t i = 0;
		while (i < mc->k && it >= mc->items[i])
			i++;
		if (i == mc->k)
			return;
		uint64_t lo = (it - (i ? mc->items[i - 1] : 0)) * mc->chunk;
		uint64_t rows = mc->w[i]->rows, hi = lo + mc->chunk < rows ? lo + mc->chunk : rows;
		if (mc->float_acts)
			mm_rows_float(mc, i, (int64_t)lo, (int64_t)hi,
				      mc->s->scores + ith * mc->s->score_cap);
		else
			mm_rows(mc, i, (int64_t)lo, (int64_t)hi);
	}
}

/* Matrix i's activation type and row bytes; reuse an earlier matrix's
 * quantized rows when the type matches, else claim buffer i. */
static int mm_input(struct mm_ctx *mc, uint32_t i, int no_pack)
{
	const struct llm_w *w = mc->w[i];
	mc->packed[i] = w->packed && !no_pack && !mc->float_acts;
	mc->at[i] = mc->packed[i] ? pack_act_type(w->type) : quant_dot_type(w->type);
	mc->xrb[i] = mc->packed[i] ? pack_act_row_bytes(mc->at[i], w->cols)
				   : quant_row_bytes(mc->at[i], w->cols);
	if (mc->at[i] == Q_F32 || mc->float_acts) {
		mc->xq[i] = (const uint8_t *)mc->x;
		return 0;
	}
	for (uint32_t j = 0; j < i && !mc->xq[i]; j++)
		if (mc->qbuf[j] && mc->at[j] == mc->at[i] && mc->packed[j] == mc->packed[i])
			mc->xq[i] = mc->qbuf[j];
	if (mc->xq[i])
		return 0;
	mc->qbuf[i] = mc->s->xq[i];
	mc->xq[i] = mc->s->xq[i];
	return 1;
}

/* Y_i (n, w_i->rows) = X (n, cols) x W_i^T for k matrices sharing input X,
 * in one pool run. X is quantized once per distinct activation type. */
static void matmul_n(struct llm_model *m, uint32_t k, const struct llm_w *const *w,
		     float *const *y, const float *x, uint32_t n)
{
	struct llm_scratch *s = m->scr;
	struct mm_ctx mc = { .k = k, .n = n, .x = x, .float_acts = m->float_acts, .s = s };
	int need_q = 0;
	uint64_t rows = 0;
	for (uint32_t i = 0; i < k; i++) {
		mc.w[i] = w[i];
		mc.y[i] = y[i];
		rows += w[i]->rows;
		need_q |= mm_input(&mc, i, m->no_pack);
	}
	if (need_q && (uint64_t)n * w[0]->cols <= 8192)
		quantize_rows(&mc, 0, n); /* a dispatch costs more than the work */
	else if (need_q)
		thr_pool_run(m->pool, quantize_fn, &mc);
	unsigned nth = thr_pool_threads(m->pool);
	uint64_t chunk = rows / ((uint64_t)nth * MM_CHUNKS_PER_THREAD);
	chunk = chunk < MM_MIN_CHUNK ? MM_MIN_CHUNK : chunk;
	/* whole pairs of 8-row groups: the AVX-512 kernels take two groups per
	 * zmm and run an odd last group on a slower 8-row path */
	mc.chunk = (chunk + 2 * PACK_ROWS - 1) / (2 * PACK_ROWS) * (2 * PACK_ROWS);
	for (uint32_t i = 0; i < k; i++)
		mc.items[i] = (i ? mc.items[i - 1] : 0) + (w[i]->rows + mc.chunk - 1) / mc.chunk;
	atomic_init(&mc.next, 0);
	thr_pool_run(m->pool, mm_fn, &mc);
}

static void matmul(struct llm_model *m, const struct llm_w *w, const float *x,
		   uint32_t n, float *y)
{
	matmul_n(m, 1, &w, &y, x, n);
}

/* ---- per-row parallel helpers ------------------------------------------- */

struct rows_ctx {
	float *a;
	const float *b;
	const float *w;
	uint32_t n, dim;
	float eps;
	enum llm_act act;
};

static void glu_fn(void *c, unsigned ith, unsigned nth)
{
	struct rows_ctx *rc = c;
	int64_t lo, hi;
	thr_split(rc->n, ith, nth, &lo, &hi);
	for (int64_t t = lo; t < hi; t++)
		llm_glu(rc->a + t * rc->dim, rc->b + t * rc->dim, rc->dim, rc->act);
}

static void norm_rows(float *y, const float *x, const float *w, uint32_t n,
		      uint32_t dim, float eps)
{
	for (uint32_t t = 0; t < n; t++)
		llm_rmsnorm(y + (size_t)t * dim, x + (size_t)t * dim, w, dim, eps);
}

/* ---- attention ----------------------------------------------------------- */

struct att_ctx {
	struct llm_model *m;
	struct llm_kv *kv;
	const struct llm_batch *b;
	const struct llm_layer *l;
	uint32_t il;
	const uint32_t *rows;    /* entries to attend for (NULL: all), n_rows of them */
	uint32_t n_rows;
	_Atomic uint64_t next;   /* next (row, KV head) item to take */
};

/* The factor of the scores: 1 where an F16 cache folded it into q
 * (qk_prepare), else the model's attention scale. */
static float score_scale(const struct llm_model *m, const struct llm_kv *kv)
{
	return llm_kv_type(kv) == LLM_KV_F16 && m->ad->attn_scale_q ? 1.0f : m->hp.attn_scale;
}

/* sc[g * cnt + j..] for the cnt positions from lo, span by span */
static void group_scores(const struct att_ctx *ac, const struct llm_batch_entry *e,
			 const float *q, uint32_t kvh, uint32_t lo, uint32_t cnt, float *sc)
{
	const struct llm_hparams *hp = &ac->m->hp;
	uint32_t hk = hp->head_dim_k, grp = hp->n_head / hp->n_head_kv, n;
	int f16 = llm_kv_type(ac->kv) == LLM_KV_F16;
	float scale = score_scale(ac->m, ac->kv);
	const void *k, *v;
	size_t ks, vs;
	for (uint32_t j = 0; j < cnt; j += n) {
		n = llm_cpu_kv_span(ac->kv, e->seq, ac->il, lo + j, cnt - j, &k, &v, &ks, &vs);
		if (f16)
			llm_attn_scores_f16(q, grp, hk, (const uint16_t *)k + (size_t)kvh * hk, ks,
					    n, scale, sc + j, cnt);
		else
			llm_attn_scores(q, grp, hk, (const float *)k + (size_t)kvh * hk, ks, n,
					scale, sc + j, cnt);
	}
}

/* out (grp, hv) = sum over the cnt positions of sc[g * cnt + j] V_j */
static void group_mix(const struct att_ctx *ac, const struct llm_batch_entry *e,
		      float *out, uint32_t kvh, uint32_t lo, uint32_t cnt, const float *sc)
{
	const struct llm_hparams *hp = &ac->m->hp;
	uint32_t hv = hp->head_dim_v, grp = hp->n_head / hp->n_head_kv, n;
	int f16 = llm_kv_type(ac->kv) == LLM_KV_F16;
	const void *k, *v;
	size_t ks, vs;
	memset(out, 0, (size_t)grp * hv * sizeof(float));
	for (uint32_t j = 0; j < cnt; j += n) {
		n = llm_cpu_kv_span(ac->kv, e->seq, ac->il, lo + j, cnt - j, &k, &v, &ks, &vs);
		if (f16)
			llm_attn_mix_f16(out, grp, hv, sc + j, cnt,
					 (const uint16_t *)v + (size_t)kvh * hv, vs, n);
		else
			llm_attn_mix(out, grp, hv, sc + j, cnt, (const float *)v + (size_t)kvh * hv,
				     vs, n);
	}
}

/* Token t, the grp query heads sharing KV head kvh, into output row orow:
 * softmax(q.K^T * scale) V over positions [lo, pos]. Each K/V row is loaded
 * once for the group; each head's scores and sums run in position order,
 * whatever the grouping, so the bits do not depend on it. sc holds
 * (grp, cnt) scores. An F16 cache rounds the probabilities to half before
 * they weight V, as ggml's mul_mat(V f16, kq) converts kq. */
static void attend_group(const struct att_ctx *ac, uint32_t t, uint32_t orow, uint32_t kvh,
			 float *sc)
{
	const struct llm_hparams *hp = &ac->m->hp;
	const struct llm_scratch *s = ac->m->scr;
	const struct llm_batch_entry *e = &ac->b->e[t];
	uint32_t hk = hp->head_dim_k, hv = hp->head_dim_v, grp = hp->n_head / hp->n_head_kv;
	const float *q = s->q + ((size_t)t * hp->n_head + (size_t)kvh * grp) * hk;
	float *out = s->att + ((size_t)orow * hp->n_head + (size_t)kvh * grp) * hv;
	uint32_t lo = 0;
	if (ac->l->swa && e->pos + 1 > hp->swa_window)
		lo = e->pos + 1 - hp->swa_window;
	uint32_t cnt = e->pos + 1 - lo;
	group_scores(ac, e, q, kvh, lo, cnt, sc);
	for (uint32_t g = 0; g < grp; g++)
		llm_softmax(sc + (size_t)g * cnt, cnt);
	if (llm_kv_type(ac->kv) == LLM_KV_F16)
		llm_f16_round(sc, (size_t)grp * cnt);
	group_mix(ac, e, out, kvh, lo, cnt, sc);
}

/* Items taken one by one from a shared counter, as in mm_fn. */
static void attend_fn(void *c, unsigned ith, unsigned nth)
{
	struct att_ctx *ac = c;
	struct llm_scratch *s = ac->m->scr;
	uint32_t nkv = ac->m->hp.n_head_kv;
	uint64_t n_items = (uint64_t)ac->n_rows * nkv, i;
	while ((i = atomic_fetch_add_explicit(&ac->next, 1, memory_order_relaxed)) < n_items) {
		uint32_t j = (uint32_t)(i / nkv);
		attend_group(ac, ac->rows ? ac->rows[j] : j, j, (uint32_t)(i % nkv),
			     s->scores + ith * s->score_cap);
	}
}

/* Token t's K and V rows into the cache, as floats or rounded to half. */
static void kv_store(struct llm_model *m, struct llm_kv *kv, const struct llm_batch_entry *e,
		     uint32_t t, uint32_t il)
{
	const struct llm_hparams *hp = &m->hp;
	size_t kd = (size_t)hp->n_head_kv * hp->head_dim_k, vd = (size_t)hp->n_head_kv * hp->head_dim_v;
	const float *k = m->scr->k + t * kd, *v = m->scr->v + t * vd;
	if (llm_kv_type(kv) == LLM_KV_F16) {
		llm_f16_row(llm_cpu_kv_k(kv, e->seq, il, e->pos), k, kd);
		llm_f16_row(llm_cpu_kv_v(kv, e->seq, il, e->pos), v, vd);
	} else {
		memcpy(llm_cpu_kv_k(kv, e->seq, il, e->pos), k, kd * sizeof(float));
		memcpy(llm_cpu_kv_v(kv, e->seq, il, e->pos), v, vd * sizeof(float));
	}
}

/* F16 cache: q (n_head * hk) becomes half values, scaled first where the
 * architecture folds the attention scale into q (score_scale is then 1). */
static void q_round(const struct llm_model *m, float *q)
{
	size_t n = (size_t)m->hp.n_head * m->hp.head_dim_k;
	if (m->ad->attn_scale_q)
		for (size_t i = 0; i < n; i++)
			q[i] *= m->hp.attn_scale;
	llm_f16_round(q, n);
}

/* q/k norms and RoPE per head, then store K and V in the cache. */
static void qk_prepare(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		       const struct llm_layer *l, uint32_t il)
{
	const struct llm_hparams *hp = &m->hp;
	struct llm_scratch *s = m->scr;
	uint32_t hk = hp->head_dim_k;
	for (uint32_t t = 0; t < b->n; t++) {
		const float *cs = (l->swa ? s->rope_s : s->rope_g) + (size_t)t * hp->n_rot;
		for (uint32_t h = 0; h < hp->n_head + hp->n_head_kv; h++) {
			int isq = h < hp->n_head;
			float *x = isq ? s->q + ((size_t)t * hp->n_head + h) * hk
				       : s->k + ((size_t)t * hp->n_head_kv + h - hp->n_head) * hk;
			if (m->ad->qk_norm)
				llm_rmsnorm(x, x, isq ? l->q_norm : l->k_norm, hk, hp->norm_eps);
			llm_rope_apply(x, cs, hp->n_rot, m->ad->rope);
		}
		if (llm_kv_type(kv) == LLM_KV_F16)
			q_round(m, s->q + (size_t)t * hp->n_head * hk);
		kv_store(m, kv, &b->e[t], t, il);
	}
}

/* ---- layers -------------------------------------------------------------- */

static void add_rows(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += y[i];
}

/* y (n, dim) += bias for every row; no-op without a bias */
static void add_bias(float *y, const float *bias, uint32_t n, uint32_t dim)
{
	if (!bias)
		return;
	for (uint32_t t = 0; t < n; t++)
		add_rows(y + (size_t)t * dim, bias, dim);
}

/* Every entry's K/V go to the cache; the attention output and the rest of
 * the layer are computed for rows (NULL: all entries), which are then
 * compacted to the front of x. The last layer passes the entries that want
 * logits, since nothing else reads the others' outputs. */
static void attention_block(struct llm_model *m, struct llm_kv *kv,
			    const struct llm_batch *b, uint32_t il,
			    const uint32_t *rows, uint32_t n_rows)
{
	const struct llm_hparams *hp = &m->hp;
	const struct llm_layer *l = &m->layers[il];
	struct llm_scratch *s = m->scr;
	uint32_t n = b->n;

	norm_rows(s->xn, s->x, l->attn_norm, n, hp->n_embd, hp->norm_eps);
	const struct llm_w *qkv[3] = { &l->wq, &l->wk, &l->wv };
	float *qkv_out[3] = { s->q, s->k, s->v };
	matmul_n(m, 3, qkv, qkv_out, s->xn, n);
	add_bias(s->q, l->bq, n, l->wq.rows);
	add_bias(s->k, l->bk, n, l->wk.rows);
	add_bias(s->v, l->bv, n, l->wv.rows);
	qk_prepare(m, kv, b, l, il);
	if (rows) {
		for (uint32_t j = 0; j < n_rows; j++) /* rows ascend: rows[j] >= j */
			if (rows[j] != j)
				memcpy(s->x + (size_t)j * hp->n_embd,
				       s->x + (size_t)rows[j] * hp->n_embd, hp->n_embd * sizeof(float));
		n = n_rows;
	}
	if (n == 0)
		return;
	struct att_ctx ac = { .m = m, .kv = kv, .b = b, .l = l, .il = il, .rows = rows,
			      .n_rows = n };
	atomic_init(&ac.next, 0);
	thr_pool_run(m->pool, attend_fn, &ac);
	matmul(m, &l->wo, s->att, n, s->o);
	if (l->post_attn_norm)
		norm_rows(s->o, s->o, l->post_attn_norm, n, hp->n_embd, hp->norm_eps);
	add_rows(s->x, s->o, (size_t)n * hp->n_embd);
}

static void ffn_block(struct llm_model *m, uint32_t n, uint32_t il)
{
	if (n == 0)
		return;
	const struct llm_hparams *hp = &m->hp;
	const struct llm_layer *l = &m->layers[il];
	struct llm_scratch *s = m->scr;

	norm_rows(s->xn, s->x, l->ffn_norm, n, hp->n_embd, hp->norm_eps);
	const struct llm_w *gu[2] = { &l->gate, &l->up };
	float *gu_out[2] = { s->gate, s->up };
	matmul_n(m, 2, gu, gu_out, s->xn, n);
	struct rows_ctx rc = { .a = s->gate, .b = s->up, .n = n, .dim = hp->n_ff,
			       .act = m->ad->act };
	if ((uint64_t)n * hp->n_ff <= 16384)
		glu_fn(&rc, 0, 1); /* a dispatch costs more than the work */
	else
		thr_pool_run(m->pool, glu_fn, &rc);
	matmul(m, &l->down, s->gate, n, s->o);
	if (l->post_ffw_norm)
		norm_rows(s->o, s->o, l->post_ffw_norm, n, hp->n_embd, hp->norm_eps);
	add_rows(s->x, s->o, (size_t)n * hp->n_embd);
}

/* ---- batch setup ------------------------------------------------------- */

static void embed(struct llm_model *m, const struct llm_batch *b)
{
	const struct llm_hparams *hp = &m->hp;
	const struct llm_w *te = &m->tok_embd;
	float sc = m->ad->embd_scale_sqrt ? sqrtf((float)hp->n_embd) : 1.0f;
	for (uint32_t t = 0; t < b->n; t++) {
		float *x = m->scr->x + (size_t)t * hp->n_embd;
		quant_dequant_row(te->type, (const uint8_t *)te->data +
				  (size_t)b->e[t].token * te->row_bytes, x, hp->n_embd);
		if (sc != 1.0f)
			for (uint32_t i = 0; i < hp->n_embd; i++)
				x[i] *= sc;
	}
}

static void rope_tables(struct llm_model *m, const struct llm_batch *b)
{
	const struct llm_hparams *hp = &m->hp;
	float sg = hp->rope_scale, bg = hp->rope_base;
	for (uint32_t t = 0; t < b->n; t++) {
		llm_rope_table(m->scr->rope_g + (size_t)t * hp->n_rot, hp->n_rot, b->e[t].pos, bg, sg,
			       m->rope_freqs);
		llm_rope_table(m->scr->rope_s + (size_t)t * hp->n_rot, hp->n_rot, b->e[t].pos,
			       hp->rope_base_swa, 1.0f, NULL);
	}
}

/* Final norm of the n_out rows the last layer kept, then the output
 * projection into logits. */
static void output_logits(struct llm_model *m, uint32_t n_out, float *logits)
{
	const struct llm_hparams *hp = &m->hp;
	struct llm_scratch *s = m->scr;
	if (n_out == 0)
		return;
	norm_rows(s->xn, s->x, m->output_norm, n_out, hp->n_embd, hp->norm_eps);
	matmul(m, &m->output, s->xn, n_out, logits);
}

static uint32_t max_ctx(const struct llm_batch *b)
{
	uint32_t mx = 0;
	for (uint32_t t = 0; t < b->n; t++)
		mx = b->e[t].pos + 1 > mx ? b->e[t].pos + 1 : mx;
	return mx;
}

/* Per-thread scratch row: (grp, max_ctx) attention scores or one weight row. */
static size_t score_row(const struct llm_model *m, const struct llm_batch *b)
{
	size_t sc = (size_t)max_ctx(b) * (m->hp.n_head / m->hp.n_head_kv);
	size_t w = max_dot_row(m) / sizeof(float);
	return sc > w ? sc : w;
}

int llm_cpu_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		    float *logits_out, char *err, size_t errlen)
{
	if (scratch_reserve(m, b->n) ||
	    scores_reserve(m->scr, thr_pool_threads(m->pool), score_row(m, b))) {
		snprintf(err, errlen, "out of memory for a batch of %u", b->n);
		return -LLM_ENOMEM;
	}
	embed(m, b);
	rope_tables(m, b);
	uint32_t n_out = 0, last = m->hp.n_layer - 1;
	for (uint32_t t = 0; t < b->n && logits_out; t++)
		if (b->e[t].want_logits)
			m->scr->out_rows[n_out++] = t;
	for (uint32_t il = 0; il < last; il++) {
		attention_block(m, kv, b, il, NULL, b->n);
		ffn_block(m, b->n, il);
	}
	attention_block(m, kv, b, last, m->scr->out_rows, n_out);
	ffn_block(m, n_out, last);
	output_logits(m, n_out, logits_out);
	return 0;
}
