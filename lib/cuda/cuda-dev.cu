/*
 * cuda-dev.cu — probing CUDA devices for the engine's backend registry:
 * count, properties, free memory. No kernels here (issue #12 brings them,
 * one .cu per kernel family).
 *
 * Every runtime call goes through CUDA_CHECK, so a failure returns -1 with
 * a message naming the call, the error and this file's line; nothing here
 * prints or aborts.
 */
#include <string.h>

#include "cuda/cuda-check.h"
#include "cuda/cuda-dev.h"
#include "cuda/cuda-emu.h"

extern "C" int cuda_dev_count(int *n, char *err, size_t errlen)
{
	*n = 0;
	if (cuda_emu) {
		*n = 1;
		return 0;
	}
	cudaError_t rc = cudaGetDeviceCount(n);
	if (rc == cudaErrorNoDevice) {
		(void)cudaGetLastError(); /* clear the sticky error: "none" is an answer */
		*n = 0;
		return 0;
	}
	if (rc != cudaSuccess)
		return cuda_check_fail(rc, "cudaGetDeviceCount(n)", __FILE__, __LINE__, err, errlen);
	return 0;
}

extern "C" int cuda_dev_info(int index, struct cuda_dev_info *info, char *err, size_t errlen)
{
	cudaDeviceProp p;
	CU_EMU(emu_dev_info(index, info));
	memset(info, 0, sizeof *info);
	CUDA_CHECK(cudaGetDeviceProperties(&p, index), err, errlen);
	snprintf(info->name, sizeof info->name, "%.*s", (int)sizeof info->name - 1, p.name);
	info->cc_major = p.major;
	info->cc_minor = p.minor;
	CUDA_CHECK(cudaSetDevice(index), err, errlen);
	CUDA_CHECK(cudaMemGetInfo(&info->free_bytes, &info->total_bytes), err, errlen);
	return 0;
}
