/*
 * cpu-impl.h — the CPU backend's internals (the .c files of lib/llm/cpu), shared by its
 * files and by nothing above the backend seam (engine/backend-impl.h).
 *
 * The CPU backend's per-model state (the compute thread pool m->pool, the
 * forward scratch m->scr, the repacked weights llm_w.packed) sits in
 * struct llm_model for the forward pass's sake; only this backend touches it.
 */
#ifndef PLOT_LLM_CPU_IMPL_H
#define PLOT_LLM_CPU_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/engine/backend-impl.h"

struct llm_scratch;

/* forward.c — the forward pass over a validated, reserved batch */
int llm_cpu_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
		    float *logits, char *err, size_t errlen);
void llm_scratch_free(struct llm_scratch *s);

/* model-pack.c */
int llm_pack_weights(struct llm_model *m, char *err, size_t errlen);
void llm_pack_free(struct llm_model *m);

/* kv-store.c — storage, and the rows of (seq, layer, pos). Rows are float or
 * uint16_t (IEEE half) as llm_kv_type(kv) says. */
int llm_cpu_kv_alloc(void *dev, const struct llm_kv_geom *g, void **store, char *err,
		     size_t errlen);
void llm_cpu_kv_free(void *dev, void *store);
void *llm_cpu_kv_k(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos);
void *llm_cpu_kv_v(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos);
/* K/V of positions [pos, pos + n) of seq in layer, contiguous within pos's
 * block with row strides *kstride / *vstride elements; n <= max. */
uint32_t llm_cpu_kv_span(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos,
			 uint32_t max, const void **k, const void **v, size_t *kstride,
			 size_t *vstride);

#endif
