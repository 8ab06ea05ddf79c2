/*
 * cuda-check.h — CUDA_CHECK: turn a failed CUDA runtime call into lib/'s
 * error convention (negative return, err filled) instead of an abort.
 *
 * The message names the call, the CUDA error and where it was made
 * ("lib/cuda/cuda-dev.cu:41: cudaGetDeviceCount(&n): CUDA driver version is
 * insufficient for CUDA runtime version (cudaErrorInsufficientDriver)"), so
 * a user's report points at the line. For .cu files only (needs
 * cuda_runtime.h); the enclosing function returns int.
 */
#ifndef PLOT_CUDA_CHECK_H
#define PLOT_CUDA_CHECK_H

#include <stdio.h>

#include <cuda_runtime.h>

static inline int cuda_check_fail(cudaError_t rc, const char *call, const char *file, int line,
				  char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(rc),
		 cudaGetErrorName(rc));
	return -1;
}

#define CUDA_CHECK(call, err, errlen)                                                   \
	do {                                                                            \
		cudaError_t cuda_check_rc_ = (call);                                    \
		if (cuda_check_rc_ != cudaSuccess)                                      \
			return cuda_check_fail(cuda_check_rc_, #call, __FILE__, __LINE__, \
					       err, errlen);                            \
	} while (0)

#endif
