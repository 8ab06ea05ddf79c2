/*
 * backend-cuda.h — what the CUDA backend tells about a model loaded on it,
 * for the GPU test and benchmark programs (tests/gpu, bench-gpu). Only in
 * make CUDA=1 builds (PLOT_CUDA).
 */
#ifndef PLOT_CUDA_BACKEND_CUDA_H
#define PLOT_CUDA_BACKEND_CUDA_H

#include <stddef.h>

struct llm_model;

/* Device bytes of m's uploaded weights; 0 if m is not on a CUDA device. */
size_t cuda_backend_weight_bytes(const struct llm_model *m);
/* Run decode-sized batches (<= CUDA_MATVEC_MAX_N entries) as captured CUDA
 * graphs (on, the default) or as plain launches (0: for comparisons).
 * -LLM_EINVAL if m is not on a CUDA device. */
int cuda_backend_set_graphs(struct llm_model *m, int on);
/* Why graphs were turned off by a failed capture (the pass then ran as
 * plain launches and goes on so), or NULL if they were not. */
const char *cuda_backend_graphs_off(const struct llm_model *m);

#endif
