/*
 * batch.c — llm_forward's host half, the same for every backend: check the
 * batch against the KV bookkeeping, reserve its blocks all or nothing, run
 * the backend's forward, then commit each sequence's new length.
 *
 * Why here and not in a backend: validation and block reservation touch
 * only host state (kv.c), so a new backend supplies kernels and storage
 * and inherits the batch rules (llm.h) unchanged.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llm/engine/kv-impl.h"
#include "llm/engine/model-impl.h"

/* Check every entry; leaves kv->seq_next[seq] = last pos + 2 of each seq. */
static int batch_check(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		       char *err, size_t errlen)
{
	uint32_t ms = kv->max_seqs, *next = kv->seq_next;
	for (uint32_t i = 0; i < b->n; i++)
		if (b->e[i].seq < ms)
			next[b->e[i].seq] = 0; /* 0: not seen yet */
	for (uint32_t i = 0; i < b->n; i++) {
		const struct llm_batch_entry *e = &b->e[i];
		if (e->seq >= ms || e->token < 0 || (uint32_t)e->token >= m->hp.n_vocab ||
		    e->pos >= UINT32_MAX - 1) {
			snprintf(err, errlen, "batch entry %u: seq %u (max %u) or token %d "
				 "(n_vocab %u) or pos %u out of range", i, e->seq, ms,
				 e->token, m->hp.n_vocab, e->pos);
			return -LLM_EINVAL;
		}
		uint32_t want = next[e->seq] ? next[e->seq] - 1 : llm_kv_seq_len(kv, e->seq);
		if (next[e->seq] ? e->pos != want : e->pos > want) {
			snprintf(err, errlen, "batch entry %u: seq %u pos %u, want %s%u", i,
				 e->seq, e->pos, next[e->seq] ? "" : "<= ", want);
			return -LLM_EINVAL;
		}
		next[e->seq] = e->pos + 2;
	}
	return 0;
}

/* Reserve blocks for each sequence's final length (seq_next - 1). */
static int batch_reserve(struct llm_kv *kv, const struct llm_batch *b, char *err,
			 size_t errlen)
{
	const uint32_t *next = kv->seq_next;
	uint64_t need = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t q = b->e[i].seq;
		if (next[q] - 1 == b->e[i].pos + 1) /* the sequence's last entry */
			need += llm_kv_blocks_needed(kv, q, next[q] - 1);
	}
	if (need > llm_kv_blocks_free(kv)) {
		snprintf(err, errlen, "KV cache full: batch needs %llu blocks, %u free",
			 (unsigned long long)need, llm_kv_blocks_free(kv));
		return -LLM_EKVFULL;
	}
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t q = b->e[i].seq;
		int rc = llm_kv_seq_reserve(kv, q, next[q] - 1);
		if (rc) {
			snprintf(err, errlen, "KV cache: cannot grow seq %u's block table", q);
			return rc;
		}
	}
	return 0;
}

int llm_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		float *logits_out, char *err, size_t errlen)
{
	if (!b || b->n == 0 || b->n > LLM_MAX_BATCH || !b->e || kv->m != m) {
		snprintf(err, errlen, "batch of %u entries (1..%u) or KV cache of another model",
			 b ? b->n : 0, LLM_MAX_BATCH);
		return -LLM_EINVAL;
	}
	int rc;
	if ((rc = batch_check(m, kv, b, err, errlen)) ||
	    (rc = batch_reserve(kv, b, err, errlen)) ||
	    (rc = m->be->forward(m, kv, b, logits_out, err, errlen)))
		return rc;
	for (uint32_t i = 0; i < b->n; i++)
		llm_kv_set_len(kv, b->e[i].seq, kv->seq_next[b->e[i].seq] - 1);
	return 0;
}
