/*
 * kv.c — the paged KV cache's bookkeeping: one pool of fixed-size blocks, a
 * block table per sequence. Host-side and shared by every backend; the
 * bytes are the backend's storage (struct llm_backend_ops kv_alloc/kv_free;
 * the CPU layout is in cpu/kv-store.c).
 *
 * Design
 *   - The block count comes from a byte budget: n_blocks = budget /
 *     (block_size * bytes_per_token), bytes_per_token being K+V of one
 *     token over all layers in the element type chosen at llm_kv_new (F32,
 *     or IEEE half: llama.cpp's default cache type, which halves the bytes
 *     attention reads and doubles the tokens a budget holds).
 *   - Position p of a sequence lives in block table[p / block_size], slot
 *     p % block_size (llm_kv_block); the backend maps (block, slot, layer)
 *     to bytes.
 *   - Free blocks sit on a stack; a sequence's table grows by popping it and
 *     llm_kv_seq_free pushes them all back.
 * Invariants: in kv-impl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/engine/kv-impl.h"
#include "llm/engine/model-impl.h"

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
	uint32_t n = kv->geom.n_blocks;
	if (!(kv->free_stack = calloc(n, sizeof(uint32_t))) ||
	    !(kv->seqs = calloc(kv->max_seqs, sizeof(struct kv_seq))) ||
	    !(kv->seq_next = calloc(kv->max_seqs, sizeof(uint32_t)))) {
		snprintf(err, errlen, "KV cache: cannot allocate block tables for %u blocks", n);
		return -LLM_ENOMEM;
	}
	int rc = kv->be->kv_alloc(kv->dev, &kv->geom, &kv->store, err, errlen);
	if (rc)
		return rc;
	/* block 0 on top: the first sequence gets blocks 0, 1, ... */
	for (uint32_t i = 0; i < n; i++)
		kv->free_stack[i] = n - 1 - i;
	kv->n_free = n;
	return 0;
}

struct llm_kv *llm_kv_create(const struct llm_backend_ops *be, void *dev,
			     const struct llm_model *m, const struct llm_kv_geom *g,
			     uint32_t max_seqs, char *err, size_t errlen)
{
	struct llm_kv *kv = calloc(1, sizeof(*kv));
	if (!kv) {
		snprintf(err, errlen, "KV cache: out of memory");
		return NULL;
	}
	kv->m = m;
	kv->be = be;
	kv->dev = dev;
	kv->geom = *g;
	kv->max_seqs = max_seqs;
	if (kv_alloc(kv, err, errlen) != 0) {
		llm_kv_free(kv);
		return NULL;
	}
	return kv;
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
	struct llm_kv_geom g = {
		.type = type, .elem_bytes = elem_bytes(type), .n_layer = m->hp.n_layer,
		.kdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_k,
		.vdim = (size_t)m->hp.n_head_kv * m->hp.head_dim_v,
		.block_size = block_size, .n_blocks = (uint32_t)n_blocks,
	};
	return llm_kv_create(m->be, m->dev, m, &g, max_seqs, err, errlen);
}

void llm_kv_free(struct llm_kv *kv)
{
	if (!kv)
		return;
	if (kv->store)
		kv->be->kv_free(kv->dev, kv->store);
	if (kv->seqs)
		for (uint32_t i = 0; i < kv->max_seqs; i++)
			free(kv->seqs[i].table);
	free(kv->seqs);
	free(kv->seq_next);
	free(kv->free_stack);
	free(kv);
}

uint32_t llm_kv_block_size(const struct llm_kv *kv) { return kv->geom.block_size; }
uint32_t llm_kv_blocks_total(const struct llm_kv *kv) { return kv->geom.n_blocks; }
uint32_t llm_kv_blocks_free(const struct llm_kv *kv) { return kv->n_free; }
uint32_t llm_kv_max_seqs(const struct llm_kv *kv) { return kv->max_seqs; }
enum llm_kv_type llm_kv_type(const struct llm_kv *kv) { return kv->geom.type; }

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
	uint32_t bs = kv->geom.block_size;
	uint32_t want = (uint32_t)(((uint64_t)n_tokens + bs - 1) / bs);
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
