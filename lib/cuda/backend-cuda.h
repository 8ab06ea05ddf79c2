/*
 * backend-cuda.h — what the CUDA backend tells about a model loaded on it,
 * for the GPU test and benchmark programs (tests/gpu, bench-gpu). Only in
 * make CUDA=1 builds (PLOT_CUDA).
 */
#ifndef PLOT_CUDA_BACKEND_CUDA_H
#define PLOT_CUDA_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

struct llm_model;

/* Device bytes of m's uploaded weights; 0 if m is not on a CUDA device. */
size_t cuda_backend_weight_bytes(const struct llm_model *m);
/* Run decode-sized batches (<= CUDA_MATVEC_MAX_N entries) as captured CUDA
 * graphs (on, the default) or as plain launches (0: for comparisons).
 * -LLM_EINVAL if m is not on a CUDA device. */
int cuda_backend_set_graphs(struct llm_model *m, int on);
/* Fused kernels (on, the default) or every op as its own launch (0: for
 * comparisons; the results are bitwise the same). -LLM_EINVAL if m is not on
 * a CUDA device. */
int cuda_backend_set_fused(struct llm_model *m, int on);
/* Kernel launches of the last forward pass m ran or captured as a graph:
 * those of one layer (a middle one: layer n_layer / 2, or 0 below three
 * layers) and of the whole pass. -LLM_EINVAL if m is not on a CUDA device. */
int cuda_backend_launches(const struct llm_model *m, uint32_t *per_layer, uint32_t *per_pass);
/* Passes captured as a graph, and passes that replayed one captured before.
 * -LLM_EINVAL if m is not on a CUDA device. */
int cuda_backend_graph_counts(const struct llm_model *m, uint64_t *captures, uint64_t *replays);
/* Why graphs were turned off by a failed capture (the pass then ran as
 * plain launches and goes on so), or NULL if they were not. */
const char *cuda_backend_graphs_off(const struct llm_model *m);

#endif
