/*
 * kv-store.c — the CPU backend's KV storage: where the bytes of a paged KV
 * cache live in host memory, and the address of a (seq, layer, pos) row.
 * Which block a position is in is the host bookkeeping's (engine/kv.c).
 *
 * Design
 *   - One allocation (calloc, so untouched pages cost nothing) of n_blocks
 *     blocks. A block holds block_size token slots for every layer, laid
 *     out as (n_layer, [K (block_size, kdim), V (block_size, vdim)]) in the
 *     cache's element type (float or IEEE half). The forward pass writes
 *     rows through llm_cpu_kv_k/v and converts (attn.c's llm_f16_row) when
 *     the cache is F16.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llm/cpu/cpu-impl.h"
#include "llm/engine/kv-impl.h"

struct cpu_kv {
	unsigned char *pool;     /* (n_blocks, block_elems) elements of elem_bytes */
	size_t es;               /* bytes per element */
	size_t kdim, vdim;       /* elements per token per layer */
	size_t layer_elems;      /* elements per block per layer: block_size * (kdim + vdim) */
	size_t block_elems;      /* elements per block: n_layer * layer_elems */
	uint32_t block_size;
};

int llm_cpu_kv_alloc(void *dev, const struct llm_kv_geom *g, void **store, char *err,
		     size_t errlen)
{
	struct cpu_kv *s = calloc(1, sizeof(*s));
	size_t n;
	if (s) {
		s->es = g->elem_bytes;
		s->kdim = g->kdim;
		s->vdim = g->vdim;
		s->block_size = g->block_size;
		s->layer_elems = (size_t)g->block_size * (g->kdim + g->vdim);
		s->block_elems = s->layer_elems * g->n_layer;
	}
	if (!s || __builtin_mul_overflow((size_t)g->n_blocks, s->block_elems, &n) ||
	    !(s->pool = calloc(n, s->es))) {
		snprintf(err, errlen, "KV cache: cannot allocate %u blocks of %zu bytes",
			 g->n_blocks, s ? s->block_elems * s->es : (size_t)0);
		free(s);
		return -LLM_ENOMEM;
	}
	*store = s;
	return 0;
}

void llm_cpu_kv_free(void *dev, void *store)
{
	struct cpu_kv *s = store;
	free(s->pool);
	free(s);
}

/* Element offset of (seq, pos)'s layer `layer`; the caller reserved pos already. */
static size_t kv_slot(const struct llm_kv *kv, const struct cpu_kv *s, uint32_t seq,
		      uint32_t layer, uint32_t pos)
{
	return (size_t)llm_kv_block(kv, seq, pos) * s->block_elems + layer * s->layer_elems;
}

void *llm_cpu_kv_k(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	const struct cpu_kv *s = kv->store;
	size_t e = kv_slot(kv, s, seq, layer, pos) + (size_t)(pos % s->block_size) * s->kdim;
	return s->pool + e * s->es;
}

void *llm_cpu_kv_v(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos)
{
	const struct cpu_kv *s = kv->store;
	size_t e = kv_slot(kv, s, seq, layer, pos) + (size_t)s->block_size * s->kdim +
		   (size_t)(pos % s->block_size) * s->vdim;
	return s->pool + e * s->es;
}

uint32_t llm_cpu_kv_span(struct llm_kv *kv, uint32_t seq, uint32_t layer, uint32_t pos,
			 uint32_t max, const void **k, const void **v, size_t *kstride,
			 size_t *vstride)
{
	const struct cpu_kv *s = kv->store;
	uint32_t n = s->block_size - pos % s->block_size;
	*k = llm_cpu_kv_k(kv, seq, layer, pos);
	*v = llm_cpu_kv_v(kv, seq, layer, pos);
	*kstride = s->kdim;
	*vstride = s->vdim;
	return n < max ? n : max;
}
