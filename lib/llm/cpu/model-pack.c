/*
 * model-pack.c — repacking a loaded model's weight matrices for pack.h's
 * GEMM kernels.
 *
 * Why repack: the packed layout lets one dot instruction serve 8 weight
 * rows (pack.h), which is what makes batched decode and prefill fast. It is
 * the same size as the original (pack-impl.h), so after each matrix is
 * packed its mapped file pages are released (gguf_release): the weights
 * still cost their size once, not twice, and the peak during loading is
 * one slice (PACK_SLICE) above that. The token embedding table keeps its mapping (an
 * embedding lookup reads a few rows); with tied embeddings the output
 * projection packs a copy and the lookups fault back only the rows used.
 *
 * A matrix whose type has no packed kernels, or whose row count is not a
 * multiple of 8, keeps packed = NULL and runs on the row kernels.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llm/cpu/cpu-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/pack.h"
#include "llm/quant/quant.h"

#define PACK_SLICE (4u << 20)

static int pack_one(const struct gguf *g, struct llm_w *w, char *err, size_t errlen)
{
	size_t bytes = pack_matrix_bytes(w->type, w->rows, w->cols);
	if (bytes == 0)
		return 0;
	size_t alloc = (bytes + 63) / 64 * 64;
	if (!(w->packed = aligned_alloc(64, alloc))) {
		snprintf(err, errlen, "out of memory repacking a %u x %u %s matrix", w->rows,
			 w->cols, quant_name(w->type));
		return -LLM_ENOMEM;
	}
	/* slices of about PACK_SLICE bytes, each released once packed, so the
	 * peak holds one slice of the original beside the packed copy */
	uint64_t step = PACK_SLICE / w->row_bytes / PACK_ROWS * PACK_ROWS;
	step = step ? step : PACK_ROWS;
	for (uint64_t r = 0; r < w->rows; r += step) {
		uint64_t e = r + step < w->rows ? r + step : w->rows;
		pack_matrix(w->type, w->data, w->cols, r, e, w->packed);
		gguf_release(g, (const uint8_t *)w->data + r * w->row_bytes,
			     (size_t)(e - r) * w->row_bytes);
	}
	return 0;
}

int llm_pack_weights(struct llm_model *m, char *err, size_t errlen)
{
	int rc = 0;
	for (uint32_t il = 0; il < m->hp.n_layer && !rc; il++) {
		struct llm_layer *l = &m->layers[il];
		struct llm_w *ws[] = { &l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down };
		for (size_t i = 0; i < sizeof ws / sizeof ws[0] && !rc; i++)
			rc = pack_one(m->g, ws[i], err, errlen);
	}
	return rc ? rc : pack_one(m->g, &m->output, err, errlen);
}

void llm_pack_free(struct llm_model *m)
{
	for (uint32_t il = 0; m->layers && il < m->hp.n_layer; il++) {
		struct llm_layer *l = &m->layers[il];
		struct llm_w *ws[] = { &l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down };
		for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
			free(ws[i]->packed);
	}
	free(m->output.packed);
}

void llm_model_set_packed(struct llm_model *m, int on)
{
	m->no_pack = !on;
}
