/*
 * cuda-common.cuh — what every kernel file shares: turning argument
 * problems and launch errors into cuda-ops.h's return convention
 * (CUDA_OP_E* with err filled), the stream cast, half/bfloat16 bits and
 * the warp reduction. For the .cu files only.
 */
#ifndef PLOT_CUDA_COMMON_CUH
#define PLOT_CUDA_COMMON_CUH

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/cuda-ops.h"
#include "cuda/cuda-plan.h"

#define CU_STREAM(s) ((cudaStream_t)(s))

/* Fill err (printf style, may be NULL) and return code. */
static inline int __attribute__((format(printf, 4, 5)))
cu_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* After a launch: a bad configuration or a sticky device error, as
 * "op: message (cudaErrorName)". */
static inline int cu_launched(const char *op, char *err, size_t errlen)
{
	cudaError_t rc = cudaGetLastError();
	if (rc == cudaSuccess)
		return 0;
	return cu_fail(err, errlen, rc == cudaErrorMemoryAllocation ? CUDA_OP_ENOMEM : CUDA_OP_EFAIL,
		       "%s: %s (%s)", op, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

/* A runtime call's result in the same form; 0 on success. */
static inline int cu_call(cudaError_t rc, const char *what, char *err, size_t errlen)
{
	if (rc == cudaSuccess)
		return 0;
	(void)cudaGetLastError(); /* clear a non-sticky error so the next call starts clean */
	return cu_fail(err, errlen, rc == cudaErrorMemoryAllocation ? CUDA_OP_ENOMEM : CUDA_OP_EFAIL,
		       "%s: %s (%s)", what, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

/* Kernel launches (and cuBLAS calls) the ops enqueued, process-wide, for
 * cuda_launches (cuda-ops.h): counted where an op launches, and at the same
 * place when the device is emulated, so both count alike. */
extern unsigned long long cu_launch_n;
static inline void cu_count(unsigned k)
{
	__atomic_fetch_add(&cu_launch_n, (unsigned long long)k, __ATOMIC_RELAXED);
}
/* Count k launches, then return the emulation's answer when emulating. */
#define CU_KERNEL(k, call)             \
	do {                           \
		cu_count(k);           \
		if (cuda_emu)          \
			return (call); \
	} while (0)

static inline unsigned cu_blocks(size_t n, unsigned threads)
{
	return (unsigned)((n + threads - 1) / threads);
}

/* Functions marked CU_HD also compile for the host: unit tests run the
 * weight decoders on the CPU (cuda-host.h). Their arithmetic goes through
 * cu_mul/cu_add/cu_sub: round-to-nearest without contraction on both sides
 * (x86-64 host code has no FMA without -mfma). */
#define CU_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define CU_UNROLL _Pragma("unroll")
#else
#define CU_UNROLL /* the host compiler does not know the pragma */
#endif

CU_HD float cu_mul(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fmul_rn(a, b);
#else
	return a * b;
#endif
}

CU_HD float cu_add(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fadd_rn(a, b);
#else
	return a + b;
#endif
}

CU_HD float cu_sub(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fsub_rn(a, b);
#else
	return a - b;
#endif
}

CU_HD float cu_h2f(uint16_t h)
{
	return __half2float(__ushort_as_half(h));
}

CU_HD uint16_t cu_f2h(float f)
{
	return __half_as_ushort(__float2half_rn(f));
}

CU_HD float cu_bf2f(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* Rotate pair i of one head xh (n_rot = 2 half elements rotated) by the
 * token's table row c (cos, sin of pair i at 2i, 2i + 1): pairs (2i, 2i+1),
 * or (i, i + half) when neox. cuda_rope, the fused cuda_rope_kv and their
 * emulations all rotate through this. */
CU_HD void cu_rope_pair(float *xh, const float *c, uint32_t i, uint32_t half, bool neox)
{
	const uint32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
	const float cs = c[2 * i], sn = c[2 * i + 1], x0 = xh[a], x1 = xh[b];
	xh[a] = cu_sub(cu_mul(x0, cs), cu_mul(x1, sn));
	xh[b] = cu_add(cu_mul(x0, sn), cu_mul(x1, cs));
}

/* Sum over the 32 lanes, the same xor tree every time: every lane gets
 * the same bits, and they do not depend on anything but the 32 inputs. */
__device__ __forceinline__ float cu_warp_sum(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float cu_warp_max(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

#endif
