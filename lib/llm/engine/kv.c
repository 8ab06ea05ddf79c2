/*
 * kv.c — the paged KV cache: one pool of fixed-size blocks, a block table
 * per sequence.
 *
 * Design
 *   - The pool is allocated once (calloc, so untouched pages cost nothing)
 *     from a byte budget: n_blocks = budget / (block_size * bytes_per_token).
 *   - A block holds block_size token slots for every layer, laid out as
 *     (n_layer, [K (block_size, n_head_kv*head_dim_k), V (block_size,
 *     n_head_kv*head_dim_v)]), in the element type chosen at llm_kv_new:
 *     F32, or IEEE half (F16, llama.cpp's default cache type, which halves
 *     the bytes attention reads and doubles the tokens a budget holds).
 *     Position p of a sequence lives in block table[p / block_size], slot
 *     p % block_size. The forward pass writes rows through llm_kv_k/v and
 *     converts (attn.c's llm_f16_row) when the cache is F16.
 *   - Free blocks sit on a stack; a sequence's table grows by popping it and
 *     llm_kv_seq_free pushes them all back.
 * Invariants: blocks_free + sum(seq blocks) == blocks_total; a block is in
 * exactly one place (the stack or one table); seq.len <= seq.n_blocks *
 * block_size. Reserving is all-or-nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/engine/model-impl.h"

struct kv_seq {
	uint32_t *table; /* (cap) block ids, n_blocks used */
	uint32_t n_blocks, cap, len;
};

struct llm_kv {
	const struct llm_model *m;
	enum llm_kv_type type;
	uint32_t block_size, n_blocks, max_seqs;
	size_t es;               /* bytes per element: 4 (F32) or 2 (F16) */
	size_t kdim, vdim;       /* elements per token per layer */
	size_t block_elems;      /* elements per block */
	unsigned char *pool;     /* (n_blocks, block_elems) elements of type */
	uint32_t *free_stack;    /* (n_blocks) */
	uint32_t n_free;
	struct kv_seq *seqs;     /* (max_seqs) */
};

static size_t elem_bytes(enum llm_kv_type type)
{
	return type == LLM_KV_F32 ? sizeof(float) : sizeof(uint16_t);
}

size_t llm_kv_bytes_per_token(const struct llm_model *m, enum llm_kv_type type)
{
	const struct llm_hparams *hp = &m->hp;
	size_t per_layer = (size_t)hp->n_head_kv * (hp->head_dim_k + hp->head_dim_v);
	/* bounded by arch.c: n_layer <= 1024, heads <= 1024, dims <= 4096 */
	return (size_t)hp->n_layer * per_layer * elem_bytes(type);
}

static int kv_alloc(struct llm_kv *kv, char *err, size_t errlen)
{
	size_t n;
	if (__builtin_mul_overflow((size_t)kv->n_blocks, kv->block_elems, &n) ||
	    !(kv->pool = calloc(n, kv->es)) ||
	    !(kv->free_stack = calloc(kv->n_blocks, sizeof(uint32_t))) ||
	    !(kv->seqs = calloc(kv->max_seqs, sizeof(struct kv_seq)))) {
		snprintf(err, errlen, "KV cache: cannot allocate %u blocks of %zu bytes",
			 kv->n_blocks, kv->block_elems * kv->es);
		return -LLM_ENOMEM;
	}
	/* block 0 on top: the first sequence gets blocks 0, 1, ... */
	for (uint32_t i = 0; i < kv->n_blocks; i++)
		kv->free_stack[i] = kv->n_blocks - 1 - i;
	kv->n_free = kv->n_blocks;
	return 0;
}

struct llm_kv *llm_kv_new(const struct llm_model *m, enum llm_kv_type type,
			  size_t budget_bytes, uint32_t block_size, uint32_t max_seqs,
			  char *err, size_t errlen)
{
	if (type != LLM_KV_F16 && type != LLM_KV_F32) {
		snprintf(err, errlen, "KV cache: element type %d is neither f16 nor f32", (int)type);
		return NULL;
	}
	if (block_size < 1 || block_size > 4096 || max_seqs < 1 || max_seqs > 65536) {
		snprintf(err, errlen, "KV cache: block_size %u (1..4096) or max_seqs %u "
			 "(1..65536) out of range", block_size, max_seqs);
		return NULL;
	}
	size_t per_block = llm_kv_bytes_per_token(m, type) * block_size;
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
	kv->type = type;
	kv->es = elem_bytes(type);
	kv->block_size = block_size;
	kv->n_blocks = (uint32_t)n_blocks;
	kv->max_seqs = max_seqs;
	kv->kdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_k;
	kv->vdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_v;
	kv->block_elems = per_block / kv->es;
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
enum llm_kv_type llm_kv_type(const struct llm_kv *kv) { return kv->type; }

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

/* Element offset of (seq, pos)'s layer `layer`; the caller reserved pos already. */
static size_t kv_slot(const struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	const struct kv_seq *s = &kv->seqs[seq];
	uint32_t blk = s->table[pos / kv->block_size];
	size_t layer_elems = (size_t)kv->block_size * (kv->kdim + kv->vdim);
	return (size_t)blk * kv->block_elems + layer * layer_elems;
}

uint32_t llm_kv_span(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos,
		     uint32_t max, const void **k, const void **v, size_t *kstride,
		     size_t *vstride)
{
	uint32_t n = kv->block_size - pos % kv->block_size;
	*k = llm_kv_k(kv, seq, layer, pos);
	*v = llm_kv_v(kv, seq, layer, pos);
	*kstride = kv->kdim;
	*vstride = kv->vdim;
	return n < max ? n : max;
}

void *llm_kv_k(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	size_t e = kv_slot(kv, seq, layer, pos) + (size_t)(pos % kv->block_size) * kv->kdim;
	return kv->pool + e * kv->es;
}

void *llm_kv_v(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	size_t e = kv_slot(kv, seq, layer, pos) + (size_t)kv->block_size * kv->kdim +
		   (size_t)(pos % kv->block_size) * kv->vdim;
	return kv->pool + e * kv->es;
}
