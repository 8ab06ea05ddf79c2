/*
 * kv-impl.h — the KV cache's host-side bookkeeping (kv.c), shared by every
 * backend: block tables, the free list, sequence lengths. The bytes live
 * in the backend's storage (store), which this side never reads.
 *
 * Invariants: blocks_free + sum(seq blocks) == n_blocks; a block id is in
 * exactly one place (the free stack or one table); seq.len <= seq.n_blocks
 * * block_size; reserving is all-or-nothing.
 */
#ifndef PLOT_LLM_KV_IMPL_H
#define PLOT_LLM_KV_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/engine/backend-impl.h"

struct kv_seq {
	uint32_t *table; /* (cap) block ids, n_blocks used */
	uint32_t n_blocks, cap, len;
};

struct llm_kv {
	const struct llm_model *m;        /* NULL for a cache made by llm_kv_create in tests */
	const struct llm_backend_ops *be; /* owns store */
	void *dev;
	void *store;                      /* backend's bytes of geom.n_blocks blocks */
	struct llm_kv_geom geom;
	uint32_t max_seqs;
	uint32_t *free_stack;             /* (n_blocks) */
	uint32_t n_free;
	struct kv_seq *seqs;              /* (max_seqs) */
	uint32_t *seq_next;               /* (max_seqs) batch.c: next pos + 1 while validating */
};

/* A cache of g->n_blocks blocks whose storage be->kv_alloc(dev, g) makes.
 * NULL with err filled (the backend's message when storage fails). m is
 * only remembered, for llm_forward's same-model check (may be NULL). */
struct llm_kv *llm_kv_create(const struct llm_backend_ops *be, void *dev,
			     const struct llm_model *m, const struct llm_kv_geom *g,
			     uint32_t max_seqs, char *err, size_t errlen);
void llm_kv_set_len(struct llm_kv *kv, uint32_t seq, uint32_t len);

/* Block holding position pos of seq, which the caller has reserved. */
static inline uint32_t llm_kv_block(const struct llm_kv *kv, uint32_t seq, uint32_t pos)
{
	return kv->seqs[seq].table[pos / kv->geom.block_size];
}

#endif
