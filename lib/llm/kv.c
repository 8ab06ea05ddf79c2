/*
 * kv.c — the paged KV cache: one pool of fixed-size blocks, a block table
 * per sequence.
 *
 * Design
 *   - The pool is allocated once (calloc, so untouched pages cost nothing)
 *     from a byte budget: n_blocks = budget / (block_size * bytes_per_token).
 *   - A block holds block_size token slots for every layer, laid out as
 *     (n_layer, [K (block_size, n_head_kv*head_dim_k), V (block_size,
 *     n_head_kv*head_dim_v)]), F32. Position p of a sequence lives in block
 *     table[p / block_size], slot p % block_size.
 *   - Free blocks sit on a stack; a sequence's table grows by popping it and
 *     llm_kv_seq_free pushes them all back.
 * Invariants: blocks_free + sum(seq blocks) == blocks_total; a block is in
 * exactly one place (the stack or one table); seq.len <= seq.n_blocks *
 * block_size. Reserving is all-or-nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/model-impl.h"

struct kv_seq {
	uint32_t *table; /* (cap) block ids, n_blocks used */
	uint32_t n_blocks, cap, len;
};

struct llm_kv {
	const struct llm_model *m;
	uint32_t block_size, n_blocks, max_seqs;
	size_t kdim, vdim;       /* floats per token per layer */
	size_t block_floats;     /* floats per block */
	float *pool;             /* (n_blocks, block_floats) */
	uint32_t *free_stack;    /* (n_blocks) */
	uint32_t n_free;
	struct kv_seq *seqs;     /* (max_seqs) */
};

size_t llm_kv_bytes_per_token(const struct llm_model *m)
{
	const struct llm_hparams *hp = &m->hp;
	size_t per_layer = (size_t)hp->n_head_kv * (hp->head_dim_k + hp->head_dim_v);
	/* bounded by arch.c: n_layer <= 1024, heads <= 1024, dims <= 4096 */
	return (size_t)hp->n_layer * per_layer * sizeof(float);
}

static int kv_alloc(struct llm_kv *kv, char *err, size_t errlen)
{
	size_t n;
	if (__builtin_mul_overflow((size_t)kv->n_blocks, kv->block_floats, &n) ||
	    !(kv->pool = calloc(n, sizeof(float))) ||
	    !(kv->free_stack = calloc(kv->n_blocks, sizeof(uint32_t))) ||
	    !(kv->seqs = calloc(kv->max_seqs, sizeof(struct kv_seq)))) {
		snprintf(err, errlen, "KV cache: cannot allocate %u blocks of %zu bytes",
			 kv->n_blocks, kv->block_floats * sizeof(float));
		return -LLM_ENOMEM;
	}
	/* block 0 on top: the first sequence gets blocks 0, 1, ... */
	for (uint32_t i = 0; i < kv->n_blocks; i++)
		kv->free_stack[i] = kv->n_blocks - 1 - i;
	kv->n_free = kv->n_blocks;
	return 0;
}

struct llm_kv *llm_kv_new(const struct llm_model *m, size_t budget_bytes,
			  uint32_t block_size, uint32_t max_seqs,
			  char *err, size_t errlen)
{
	if (block_size < 1 || block_size > 4096 || max_seqs < 1 || max_seqs > 65536) {
		snprintf(err, errlen, "KV cache: block_size %u (1..4096) or max_seqs %u "
			 "(1..65536) out of range", block_size, max_seqs);
		return NULL;
	}
	size_t per_block = llm_kv_bytes_per_token(m) * block_size;
	size_t n_blocks = budget_bytes / per_block;
	if (n_blocks == 0 || n_blocks > UINT32_MAX / 2) {
		snprintf(err, errlen, "KV cache: budget %zu bytes gives %zu blocks of %zu "
			 "bytes", budget_bytes, n_blocks, per_block);
		return NULL;
	}
	struct llm_kv *kv = calloc(1, sizeof(*kv));
	if (!kv) {
		snprintf(err, errlen, "KV cache: out of memory");
		return NULL;
	}
	kv->m = m;
	kv->block_size = block_size;
	kv->n_blocks = (uint32_t)n_blocks;
	kv->max_seqs = max_seqs;
	kv->kdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_k;
	kv->vdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_v;
	kv->block_floats = per_block / sizeof(float);
	if (kv_alloc(kv, err, errlen) != 0) {
		llm_kv_free(kv);
		return NULL;
	}
	return kv;
}

void llm_kv_free(struct llm_kv *kv)
{
	if (!kv)
		return;
	if (kv->seqs)
		for (uint32_t i = 0; i < kv->max_seqs; i++)
			free(kv->seqs[i].table);
	free(kv->seqs);
	free(kv->free_stack);
	free(kv->pool);
	free(kv);
}

uint32_t llm_kv_block_size(const struct llm_kv *kv) { return kv->block_size; }
uint32_t llm_kv_blocks_total(const struct llm_kv *kv) { return kv->n_blocks; }
uint32_t llm_kv_blocks_free(const struct llm_kv *kv) { return kv->n_free; }
uint32_t llm_kv_max_seqs(const struct llm_kv *kv) { return kv->max_seqs; }
const struct llm_model *llm_kv_model(const struct llm_kv *kv) { return kv->m; }

uint32_t llm_kv_seq_len(const struct llm_kv *kv, uint32_t seq)
{
	return seq < kv->max_seqs ? kv->seqs[seq].len : 0;
}

uint32_t llm_kv_seq_blocks(const struct llm_kv *kv, uint32_t seq)
{
	return seq < kv->max_seqs ? kv->seqs[seq].n_blocks : 0;
}

uint32_t llm_kv_blocks_needed(const struct llm_kv *kv, uint32_t seq, uint32_t n_tokens)
{
	uint32_t want = (uint32_t)(((uint64_t)n_tokens + kv->block_size - 1) / kv->block_size);
	uint32_t have = llm_kv_seq_blocks(kv, seq);
	return want > have ? want - have : 0;
}

int llm_kv_seq_reserve(struct llm_kv *kv, uint32_t seq, uint32_t n_tokens)
{
	if (seq >= kv->max_seqs)
		return -LLM_EINVAL;
	uint32_t need = llm_kv_blocks_needed(kv, seq, n_tokens);
	if (need == 0)
		return 0;
	if (need > kv->n_free)
		return -LLM_EKVFULL;
	struct kv_seq *s = &kv->seqs[seq];
	if (s->n_blocks + need > s->cap) {
		uint32_t cap = s->cap ? s->cap : 8;
		while (cap < s->n_blocks + need)
			cap *= 2;
		uint32_t *t = realloc(s->table, (size_t)cap * sizeof(*t));
		if (!t)
			return -LLM_ENOMEM;
		s->table = t;
		s->cap = cap;
	}
	for (uint32_t i = 0; i < need; i++)
		s->table[s->n_blocks++] = kv->free_stack[--kv->n_free];
	return 0;
}

void llm_kv_seq_free(struct llm_kv *kv, uint32_t seq)
{
	if (seq >= kv->max_seqs)
		return;
	struct kv_seq *s = &kv->seqs[seq];
	/* push in reverse so the next reserve gets them back in the same order */
	while (s->n_blocks > 0)
		kv->free_stack[kv->n_free++] = s->table[--s->n_blocks];
	s->len = 0;
}

void llm_kv_seq_truncate(struct llm_kv *kv, uint32_t seq, uint32_t n)
{
	if (seq < kv->max_seqs && n < kv->seqs[seq].len)
		kv->seqs[seq].len = n;
}

void llm_kv_set_len(struct llm_kv *kv, uint32_t seq, uint32_t len)
{
	kv->seqs[seq].len = len;
}

/* Slot of (seq, pos) in layer `layer`; the caller reserved pos already. */
static float *kv_slot(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	const struct kv_seq *s = &kv->seqs[seq];
	uint32_t blk = s->table[pos / kv->block_size];
	size_t layer_floats = (size_t)kv->block_size * (kv->kdim + kv->vdim);
	return kv->pool + (size_t)blk * kv->block_floats + layer * layer_floats;
}

float *llm_kv_k(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	return kv_slot(kv, seq, layer, pos) + (size_t)(pos % kv->block_size) * kv->kdim;
}

float *llm_kv_v(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	return kv_slot(kv, seq, layer, pos) + (size_t)kv->block_size * kv->kdim +
	       (size_t)(pos % kv->block_size) * kv->vdim;
}
