/*
 * cuda_runtime.h (khost) — what lib/cuda's .cu files use of the CUDA
 * runtime, for `make CUDA=host`: the same kernel source compiled by the host
 * C++ compiler and run on the CPU, one fiber per CUDA thread (khost.cc), so
 * the __global__ code itself (indexing, shared memory, barriers, warp
 * shuffles, launch geometry, graphs) is tested on machines without a GPU.
 *
 * The build rewrites each `kernel<<<grid, block, smem, stream>>>(args)` into
 * `khost_launch(kernel, "kernel", grid, block, smem, stream)(args)` (the
 * Makefile's sed); everything else compiles as written. Device memory is
 * host memory that khost tracks, so copies, kernel pointer arguments and
 * cuBLAS operands are checked against live allocations. Not for production:
 * a test device, as strict as the real one where it can be (see khost.cc).
 */
#ifndef KHOST_CUDA_RUNTIME_H
#define KHOST_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers ------------------------------------------------------- */
#define __global__
#define __host__
#define __device__ inline
#define __forceinline__ __attribute__((always_inline))
#define __launch_bounds__(...)
/* block-shared scalars (arrays go through khost_shared): one block runs at a
 * time on an OS thread, its fibers */
#define __shared__ static thread_local
#define __align__(n) alignas(n)

/* ---- types -------------------------------------------------------------- */
enum cudaError {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInvalidConfiguration = 9,
	cudaErrorInvalidDevice = 101,
	cudaErrorNoDevice = 100,
	cudaErrorInvalidResourceHandle = 400,
	cudaErrorIllegalAddress = 700,
	cudaErrorLaunchFailure = 719,
	cudaErrorStreamCaptureUnsupported = 900,
	cudaErrorStreamCaptureInvalidated = 901,
	cudaErrorStreamCaptureWrongThread = 908,
	cudaErrorStreamCaptureImplicit = 906,
	cudaErrorGraphExecUpdateFailure = 910,
	cudaErrorNotSupported = 801,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
	cudaMemcpyHostToHost = 0,
	cudaMemcpyHostToDevice = 1,
	cudaMemcpyDeviceToHost = 2,
	cudaMemcpyDeviceToDevice = 3,
	cudaMemcpyDefault = 4,
};
enum cudaStreamCaptureMode {
	cudaStreamCaptureModeGlobal = 0,
	cudaStreamCaptureModeThreadLocal = 1,
	cudaStreamCaptureModeRelaxed = 2,
};
#define cudaStreamNonBlocking 0x01

typedef struct khost_stream *cudaStream_t;
typedef struct khost_graph *cudaGraph_t;
typedef struct khost_graph *cudaGraphExec_t;
typedef struct {
	int result;
} cudaGraphExecUpdateResultInfo;

struct cudaDeviceProp {
	char name[256];
	size_t totalGlobalMem;
	int major, minor, multiProcessorCount;
};

struct uint3 {
	unsigned x, y, z;
};
struct dim3 {
	unsigned x, y, z;
	constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
	float x, y, z, w;
};
struct alignas(16) uint4 {
	unsigned x, y, z, w;
};
struct alignas(8) float2 {
	float x, y;
};
struct alignas(8) uint2 {
	unsigned x, y;
};

/* ---- the runtime (khost.cc) ---------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemsetAsync(void *d, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
			    cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g,
				cudaGraphExecUpdateResultInfo *info);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
cudaError_t cudaGraphDestroy(cudaGraph_t g);

/* khost's own: forget a sticky error (its self-test only; the device has
 * no such thing, a process there must start over). */
void khost_reset(void);

/* ---- what kernels see ------------------------------------------------------ */
/* The running CUDA thread's indices, by a call: an extern thread_local here
 * made GCC 12 with -fsanitize=null test flags that a lea had not set (a
 * false "null pointer" on the variable); the answer is fixed for an OS
 * thread (fibers share it), hence const. */
struct khost_ids {
	uint3 thread, block;
	dim3 bdim, gdim;
};
khost_ids *khost_ids_now(void) __attribute__((const));
#define threadIdx (khost_ids_now()->thread)
#define blockIdx (khost_ids_now()->block)
#define blockDim (khost_ids_now()->bdim)
#define gridDim (khost_ids_now()->gdim)
#define warpSize 32

void khost_syncthreads(void);
/* lane's value of the warp's exchange: v offered, value of lane ^ lanemask */
uint64_t khost_shfl_xor(unsigned mask, uint64_t v, int lanemask);
void *khost_dyn_shared(void);
/* a static __shared__ array's buffer in the running block (the build's sed
 * turns `__shared__ T a[N];` into a call), by declaration line */
void *khost_shared(size_t bytes, int id);

static inline void __syncthreads(void)
{
	khost_syncthreads();
}

template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lanemask)
{
	static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value,
		      "khost: shuffles of up to 8 bytes");
	uint64_t u = 0;
	__builtin_memcpy(&u, &v, sizeof v);
	u = khost_shfl_xor(mask, u, lanemask);
	T r;
	__builtin_memcpy(&r, &u, sizeof r);
	return r;
}

/* IEEE single operations rounded to nearest, never contracted: the build
 * uses -ffp-contract=off, and x86-64 without -mfma has no FMA to contract to. */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

/* ---- launches ------------------------------------------------------------- */
/* Run one launch now (or record it into the stream's capture): each CUDA
 * thread calls thread(). Returns nothing; errors land in cudaGetLastError. */
void khost_grid(const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
		std::function<void()> thread);
/* 0 when p is NULL or inside a live device (or pinned host) allocation;
 * else records the error for the launch and returns -1. */
int khost_check_arg(const char *name, int index, const void *p);

template <typename A>
static inline int khost_arg_ok(const char *name, int index, const A &a)
{
	if constexpr (std::is_pointer<A>::value)
		return khost_check_arg(name, index, (const void *)a);
	(void)name, (void)index, (void)a;
	return 0;
}

template <typename... P>
struct khost_launcher {
	void (*k)(P...);
	const char *name;
	dim3 grid, block;
	size_t smem;
	cudaStream_t s;

	template <typename... A>
	void operator()(A &&...a) const
	{
		std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
		int bad = std::apply([this](const auto &...v) {
			int i = 0, b = 0;
			((b |= khost_arg_ok(name, i++, v)), ...);
			return b;
		}, args);
		if (bad)
			return;
		auto kernel = k;
		/* each CUDA thread gets its own copy of the parameters, as on the device */
		khost_grid(name, grid, block, smem, s, [kernel, args]() {
			auto mine = args;
			std::apply(kernel, mine);
		});
	}
};

template <typename... P>
static inline khost_launcher<P...> khost_launch(void (*k)(P...), const char *name, dim3 grid,
						dim3 block, size_t smem = 0, cudaStream_t s = 0)
{
	return khost_launcher<P...>{k, name, grid, block, smem, s};
}

#endif
