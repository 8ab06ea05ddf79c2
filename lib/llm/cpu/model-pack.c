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

/* Bytes of the matrices to pack and packed so far, for the progress. */
struct pack_prog {
	uint64_t total, done;
};

static void prog_add(const struct llm_model *m, struct pack_prog *pp, uint64_t n)
{
	pp->done += n;
	llm_model_progress(m, pp->total ? (double)pp->done / (double)pp->total : 1);
}

static int pack_one(const struct llm_model *m, struct llm_w *w, struct pack_prog *pp,
		    char *err, size_t errlen)
{
	const struct gguf *g = m->g;
	size_t bytes = pack_matrix_bytes(w->type, w->rows, w->cols);
	if (bytes == 0)
		return prog_add(m, pp, (uint64_t)w->rows * w->row_bytes), 0;
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
		prog_add(m, pp, (e - r) * w->row_bytes);
	}
	return 0;
}

/* Every matrix pack_one sees, in order: the layers', then the output. */
#define LAYER_WS(l) { &(l)->wq, &(l)->wk, &(l)->wv, &(l)->wo, &(l)->gate, &(l)->up, &(l)->down }

static uint64_t w_bytes(const struct llm_w *w)
{
	return (uint64_t)w->rows * w->row_bytes;
}

/* Progress is by bytes packed, so a large output matrix (a tied embedding
 * table is often the biggest) weighs what it costs. */
int llm_pack_weights(struct llm_model *m, char *err, size_t errlen)
{
	struct pack_prog pp = {w_bytes(&m->output), 0};
	int rc = 0;
	for (uint32_t il = 0; il < m->hp.n_layer; il++) {
		struct llm_w *ws[] = LAYER_WS(&m->layers[il]);
		for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
			pp.total += w_bytes(ws[i]);
	}
	for (uint32_t il = 0; il < m->hp.n_layer && !rc; il++) {
		struct llm_w *ws[] = LAYER_WS(&m->layers[il]);
		for (size_t i = 0; i < sizeof ws / sizeof ws[0] && !rc; i++)
			rc = pack_one(m, ws[i], &pp, err, errlen);
	}
	return rc ? rc : pack_one(m, &m->output, &pp, err, errlen);
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
