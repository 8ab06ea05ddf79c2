/*
 * cuda-env.h — PLOT_CUDA_EMULATE, plotd's test aid for the emulated CUDA
 * device (cuda-env.c).
 */
#ifndef PLOTD_CUDA_ENV_H
#define PLOTD_CUDA_ENV_H

/* Apply PLOT_CUDA_EMULATE / PLOT_CUDA_EMULATE_MB; call once before any
 * model loads. NULL when unset, else a line for the log. */
const char *plotd_cuda_env(void);

#endif
