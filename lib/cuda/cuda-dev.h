/*
 * cuda-dev.h — CUDA devices as the engine's registry sees them: how many
 * there are and what each one is. C-callable (implemented in cuda-dev.cu,
 * built only by make CUDA=1); the engine's CUDA backend table
 * (backend-cuda.c) is its only user.
 */
#ifndef PLOT_CUDA_DEV_H
#define PLOT_CUDA_DEV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cuda_dev_info {
	char name[128];          /* "NVIDIA H200" */
	int cc_major, cc_minor;  /* compute capability */
	size_t total_bytes;      /* device memory */
	size_t free_bytes;       /* free now (cudaMemGetInfo) */
};

/* Devices the runtime sees; *n = 0 (and 0 returned) when there is none.
 * -1 with err filled (CUDA_CHECK's message) if the runtime cannot even
 * ask, e.g. no driver. */
int cuda_dev_count(int *n, char *err, size_t errlen);
/* Properties and free memory of device index (0 <= index < count). Makes
 * index the calling thread's current device. 0 or -1 with err filled. */
int cuda_dev_info(int index, struct cuda_dev_info *info, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
