/*
 * cuda-plan.c — the CUDA backend's host-side arithmetic (cuda-plan.h):
 * KV layout sizes with overflow checks, gemm tile rows, matvec grids and
 * the attention kernel's limits. No CUDA here: it builds and is tested
 * (tests/unit/test-cuda-plan.c) in every build.
 */
#include <stdio.h>
#include <string.h>

#include "cuda/cuda-plan.h"
#include "llm/engine/kv-impl.h"
#include "llm/quant/quant.h"

static int fail(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return CUDA_OP_EINVAL;
}

int cuda_plan_kv(struct cuda_kv_layout *L, uint32_t elem_bytes, uint32_t n_layer,
		 uint32_t block_size, uint32_t n_blocks, size_t kdim, size_t vdim, char *err,
		 size_t errlen)
{
	size_t kv, layer, block, all, bytes;
	if (elem_bytes != 2 && elem_bytes != 4)
		return fail(err, errlen, "KV cache: element size must be 2 (F16) or 4 (F32)");
	if (!n_layer || !block_size || !n_blocks || !kdim || !vdim || kdim > UINT32_MAX ||
	    vdim > UINT32_MAX)
		return fail(err, errlen, "KV cache: empty or oversized geometry");
	if (__builtin_add_overflow(kdim, vdim, &kv) ||
	    __builtin_mul_overflow(kv, (size_t)block_size, &layer) ||
	    __builtin_mul_overflow(layer, (size_t)n_layer, &block) ||
	    __builtin_mul_overflow(block, (size_t)n_blocks, &all) ||
	    __builtin_mul_overflow(all, (size_t)elem_bytes, &bytes) ||
	    (uint64_t)n_blocks * block_size > UINT32_MAX)
		return fail(err, errlen, "KV cache: size overflows");
	*L = (struct cuda_kv_layout){
		.elem_bytes = elem_bytes, .n_layer = n_layer, .block_size = block_size,
		.n_blocks = n_blocks, .kdim = (uint32_t)kdim, .vdim = (uint32_t)vdim,
		.layer_elems = layer, .block_elems = block, .bytes = bytes,
	};
	return 0;
}

size_t cuda_plan_k_off(const struct cuda_kv_layout *L, uint32_t layer, uint32_t slot)
{
	return (size_t)(slot / L->block_size) * L->block_elems + layer * L->layer_elems +
	       (size_t)(slot % L->block_size) * L->kdim;
}

size_t cuda_plan_v_off(const struct cuda_kv_layout *L, uint32_t layer, uint32_t slot)
{
	return (size_t)(slot / L->block_size) * L->block_elems + layer * L->layer_elems +
	       (size_t)L->block_size * L->kdim + (size_t)(slot % L->block_size) * L->vdim;
}

uint32_t cuda_plan_gemm_tile(uint32_t rows, uint32_t cols, size_t budget)
{
	size_t row = (size_t)cols * 2, fit = row ? budget / row : rows;
	if (fit >= rows)
		return rows;
	uint32_t t = (uint32_t)(fit / CUDA_GEMM_ROW_ALIGN * CUDA_GEMM_ROW_ALIGN);
	if (t < CUDA_GEMM_ROW_ALIGN)
		t = CUDA_GEMM_ROW_ALIGN < rows ? CUDA_GEMM_ROW_ALIGN : rows;
	return t;
}

int cuda_plan_attn(uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim_k,
		   uint32_t head_dim_v, char *err, size_t errlen)
{
	char m[160];
	if (!n_head || !n_head_kv || n_head % n_head_kv)
		return fail(err, errlen, "cuda_attn: n_head must be a positive multiple of n_head_kv");
	uint32_t grp = n_head / n_head_kv;
	if (!head_dim_k || !head_dim_v || head_dim_k > CUDA_ATTN_MAX_HEAD_DIM ||
	    head_dim_v > CUDA_ATTN_MAX_HEAD_DIM) {
		snprintf(m, sizeof m, "cuda_attn: head dims %u/%u outside 1..%d", head_dim_k,
			 head_dim_v, CUDA_ATTN_MAX_HEAD_DIM);
		return fail(err, errlen, m);
	}
	if (grp > CUDA_ATTN_MAX_GROUP || (uint64_t)grp * head_dim_v > CUDA_ATTN_MAX_ACC) {
		snprintf(m, sizeof m, "cuda_attn: %u query heads per KV head of dim %u (at most %d "
			 "heads, %d values)", grp, head_dim_v, CUDA_ATTN_MAX_GROUP, CUDA_ATTN_MAX_ACC);
		return fail(err, errlen, m);
	}
	return 0;
}

uint32_t cuda_plan_attn_segs(uint32_t max_ctx)
{
	uint32_t s = (max_ctx + CUDA_ATTN_SEG - 1) / CUDA_ATTN_SEG;
	return s ? s : 1;
}

size_t cuda_plan_attn_part(uint32_t n_rows, uint32_t n_head, uint32_t n_head_kv,
			   uint32_t head_dim_v, uint32_t n_seg)
{
	size_t grp = n_head_kv ? n_head / n_head_kv : 0;
	return (size_t)n_rows * n_head_kv * n_seg * (grp * head_dim_v + 2 * grp);
}

void cuda_plan_matvec(uint32_t rows, uint32_t n, uint32_t *grid_x, uint32_t *grid_y)
{
	*grid_x = (n + CUDA_MATVEC_TILE - 1) / CUDA_MATVEC_TILE;
	*grid_y = (rows + CUDA_MATVEC_WARPS - 1) / CUDA_MATVEC_WARPS;
}

static int type_known(uint32_t t)
{
	switch (t) {
	case Q_F32: case Q_F16: case Q_BF16: case Q_Q4_0: case Q_Q4_1: case Q_Q5_0:
	case Q_Q5_1: case Q_Q8_0: case Q_Q4_K: case Q_Q5_K: case Q_Q6_K:
		return 1;
	default:
		return 0;
	}
}

int cuda_plan_weight(uint32_t type, uint32_t cols, size_t row_bytes, char *err,
		     size_t errlen)
{
	char m[160];
	if (!type_known(type)) {
		snprintf(m, sizeof m, "weight type %u (%s) not supported on CUDA", type,
			 quant_name(type));
		return fail(err, errlen, m);
	}
	size_t rb = quant_row_bytes(type, cols);
	if (!cols || !rb || rb != row_bytes) {
		snprintf(m, sizeof m, "%s row of %u columns: not a whole number of %u-element "
			 "blocks, or %zu bytes where %zu expected", quant_name(type), cols,
			 quant_block_elems(type), row_bytes, rb);
		return fail(err, errlen, m);
	}
	return 0;
}

#define PLAN_COPIED 0x80000000u /* seq_off: this sequence's table is in buf */

/* Word offset of each distinct sequence's table in the plan, in first-seen
 * order; returns the tables' total words. */
static size_t plan_tables(const struct llm_kv *kv, const struct llm_batch *b, uint32_t *seq_off)
{
	size_t words = 0;
	for (uint32_t i = 0; i < b->n; i++)
		seq_off[b->e[i].seq] = UINT32_MAX;
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t s = b->e[i].seq;
		if (seq_off[s] == UINT32_MAX) { /* tables total < 2^31 words: kv.c caps blocks */
			seq_off[s] = (uint32_t)words;
			words += kv->seqs[s].n_blocks;
		}
	}
	return words;
}

void cuda_plan_batch(const struct llm_kv *kv, const struct cuda_kv_layout *L,
		     const struct llm_batch *b, int want_logits, uint32_t *seq_off,
		     uint32_t *buf, size_t cap, struct cuda_batch_plan *p)
{
	uint32_t n = b->n, n_out = 0;
	for (uint32_t i = 0; i < n && want_logits; i++)
		n_out += b->e[i].want_logits != 0;
	size_t tab_words = plan_tables(kv, b, seq_off);
	*p = (struct cuda_batch_plan){ .n = n, .n_out = n_out, .tokens = 0, .pos = n,
				       .slots = 2 * (size_t)n, .tab_off = 3 * (size_t)n,
				       .rows = 4 * (size_t)n };
	p->tab = p->rows + n_out;
	p->words = p->tab + tab_words;
	if (buf && cap >= p->words) {
		uint32_t j = 0;
		for (uint32_t i = 0; i < n; i++) {
			const struct llm_batch_entry *e = &b->e[i];
			buf[p->tokens + i] = (uint32_t)e->token;
			buf[p->pos + i] = e->pos;
			buf[p->slots + i] = cuda_plan_slot(L, llm_kv_block(kv, e->seq, e->pos), e->pos);
			buf[p->tab_off + i] = seq_off[e->seq];
			if (want_logits && e->want_logits)
				buf[p->rows + j++] = i;
		}
		for (uint32_t i = 0; i < n; i++) { /* each sequence's table once */
			uint32_t s = b->e[i].seq;
			if (seq_off[s] & PLAN_COPIED)
				continue;
			memcpy(buf + p->tab + seq_off[s], kv->seqs[s].table,
			       kv->seqs[s].n_blocks * sizeof(uint32_t));
			seq_off[s] |= PLAN_COPIED;
		}
	}
}
