/*
 * test-khost.cu — the khost device (khost.cc) itself: that its kernels
 * run as CUDA would run them (shuffles, barriers, shared memory, geometry),
 * and that it catches what the device would refuse or what would go wrong
 * there (a missing barrier, a barrier or shuffle not every thread reaches,
 * bad launch geometry, host pointers given to a kernel, copies outside an
 * allocation, unsafe calls during a capture), so a green run of lib/cuda's
 * kernels on it means something. Also its f16 conversions against the
 * CPU's F16C instructions, and its GEMM against a plain loop. cmocka; built
 * like lib/cuda's .cu files (launches rewritten by the Makefile's sed) by
 * `make CUDA=host check-khost`.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

extern "C" {
#include <cmocka.h>
}

#include "cublas_v2.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

/* ---- kernels ----------------------------------------------------------- */

/* out[t] = the warp's sum of (t + 1), through the same xor tree as lib/cuda */
__global__ void warp_sum_k(float *out)
{
	float v = (float)(threadIdx.x + 1);
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

/* out[t] = what thread t + 1 wrote to shared memory, with or without the
 * barrier in between */
__global__ void neighbour_k(float *out, int sync)
{
	extern __shared__ float sm[];
	sm[threadIdx.x] = (float)threadIdx.x;
	if (sync)
		__syncthreads();
	out[threadIdx.x] = sm[(threadIdx.x + 1) % blockDim.x];
}

/* the same with a static shared array */
__global__ void neighbour_static_k(float *out, int sync)
{
	__shared__ float st[32];
	st[threadIdx.x] = (float)threadIdx.x;
	if (sync)
		__syncthreads();
	out[threadIdx.x] = st[(threadIdx.x + 1) % 32];
}

/* half the warp at a barrier, half at a shuffle: never completes */
__global__ void split_k(float *out)
{
	float v = 1.0f;
	if (threadIdx.x < 16)
		__syncthreads();
	else
		v = __shfl_xor_sync(0xffffffffu, v, 1);
	out[threadIdx.x] = v;
}

/* lane 0 leaves, the others shuffle with a full mask */
__global__ void exited_lane_k(float *out)
{
	if (threadIdx.x == 0)
		return;
	out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 2);
}

/* block and grid indices as seen by each thread, 3-D */
__global__ void index_k(uint32_t *out)
{
	uint32_t b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
	uint32_t t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
	out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

__global__ void add_k(float *p, float v)
{
	p[threadIdx.x] += v;
}

/* ---- helpers --------------------------------------------------------------- */

static void *dev(size_t bytes)
{
	void *p = NULL;
	assert_int_equal(cudaMalloc(&p, bytes), cudaSuccess);
	return p;
}

static void get(void *h, const void *d, size_t bytes)
{
	assert_int_equal(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
}

static void put(void *d, const void *h, size_t bytes)
{
	assert_int_equal(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, NULL), cudaSuccess);
}

static int reset(void **state)
{
	(void)state;
	khost_reset();
	return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void t_shuffle_sum(void **state)
{
	(void)state;
	float *d = (float *)dev(64 * sizeof(float)), h[64];
	warp_sum_k<<<1, 64, 0, NULL>>>(d);
	assert_int_equal(cudaGetLastError(), cudaSuccess);
	get(h, d, sizeof h);
	for (int t = 0; t < 64; t++) /* warp 0: 1..32, warp 1: 33..64 */
		assert_true(h[t] == (t < 32 ? 528.0f : 1552.0f));
	cudaFree(d);
}

static void t_missing_barrier_reads_poison(void **state)
{
	(void)state;
	float *d = (float *)dev(32 * sizeof(float)), h[32];
	neighbour_k<<<1, 32, 32 * sizeof(float), NULL>>>(d, 1);
	get(h, d, sizeof h);
	for (int t = 0; t < 32; t++)
		assert_true(h[t] == (float)((t + 1) % 32));
	neighbour_k<<<1, 32, 32 * sizeof(float), NULL>>>(d, 0);
	get(h, d, sizeof h);
	assert_true(isnan(h[0])); /* thread 1 had not written its element yet */
	for (int block = 0; block < 2; block++) { /* each block starts from poison again */
		neighbour_static_k<<<1, 32, 0, NULL>>>(d, 1);
		get(h, d, sizeof h);
		assert_true(h[0] == 1.0f);
		neighbour_static_k<<<1, 32, 0, NULL>>>(d, 0);
		get(h, d, sizeof h);
		assert_true(isnan(h[0]));
	}
	cudaFree(d);
}

static void t_split_barrier_fails_the_launch(void **state)
{
	(void)state;
	float *d = (float *)dev(32 * sizeof(float));
	split_k<<<1, 32, 0, NULL>>>(d);
	assert_int_equal(cudaGetLastError(), cudaErrorLaunchFailure);
	/* sticky, as on the device: every later call fails */
	void *p;
	assert_int_equal(cudaMalloc(&p, 16), cudaErrorLaunchFailure);
	khost_reset();
	cudaFree(d);
}

static void t_shuffle_with_exited_lane_fails(void **state)
{
	(void)state;
	float *d = (float *)dev(32 * sizeof(float));
	exited_lane_k<<<1, 32, 0, NULL>>>(d);
	assert_int_equal(cudaGetLastError(), cudaErrorLaunchFailure);
	khost_reset();
	cudaFree(d);
}

static void t_indices_3d(void **state)
{
	(void)state;
	const dim3 g(3, 2, 2), b(4, 2, 3);
	const size_t n = 12 * 24;
	uint32_t *d = (uint32_t *)dev(n * sizeof(uint32_t)), h[12 * 24];
	index_k<<<g, b, 0, NULL>>>(d);
	get(h, d, sizeof h);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i], (i / 24) * 1000 + i % 24);
	cudaFree(d);
}

static void t_launch_limits(void **state)
{
	(void)state;
	float *d = (float *)dev(4096);
	add_k<<<1, 2048, 0, NULL>>>(d, 1.0f);
	assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
	add_k<<<dim3(1, 70000), 1, 0, NULL>>>(d, 1.0f);
	assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
	add_k<<<1, 1, 64 << 10, NULL>>>(d, 1.0f);
	assert_int_equal(cudaGetLastError(), cudaErrorInvalidValue);
	assert_int_equal(cudaGetLastError(), cudaSuccess); /* not sticky */
	cudaFree(d);
}

static void t_host_pointer_argument_refused(void **state)
{
	(void)state;
	float h[4] = {0};
	add_k<<<1, 4, 0, NULL>>>(h, 1.0f);
	assert_int_equal(cudaGetLastError(), cudaErrorInvalidValue);
	assert_true(h[0] == 0.0f); /* the kernel did not run */
}

static void t_copies_checked(void **state)
{
	(void)state;
	char h[64], *d = (char *)dev(32);
	assert_int_equal(cudaMemcpyAsync(d, h, 33, cudaMemcpyHostToDevice, NULL), cudaErrorInvalidValue);
	assert_int_equal(cudaMemcpyAsync(h, d + 16, 17, cudaMemcpyDeviceToHost, NULL),
			 cudaErrorInvalidValue);
	assert_int_equal(cudaMemcpyAsync(h, d, 8, cudaMemcpyHostToDevice, NULL), cudaErrorInvalidValue);
	assert_int_equal(cudaMemsetAsync(h, 0, 8, NULL), cudaErrorInvalidValue);
	assert_int_equal(cudaMemcpyAsync(h, d + 16, 16, cudaMemcpyDeviceToHost, NULL), cudaSuccess);
	assert_int_equal(cudaFree(h), cudaErrorInvalidValue);
	cudaFree(d);
}

static void t_fresh_memory_poisoned(void **state)
{
	(void)state;
	float *d = (float *)dev(16 * sizeof(float)), h[16];
	get(h, d, sizeof h);
	for (int i = 0; i < 16; i++)
		assert_true(isnan(h[i]));
	cudaFree(d);
}

static void t_capture_records_and_replays(void **state)
{
	(void)state;
	cudaStream_t s;
	cudaGraph_t g;
	cudaGraphExec_t e = NULL;
	float zero[4] = {0}, h[4];
	float *d = (float *)dev(sizeof h);
	put(d, zero, sizeof zero);
	assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
	assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
	float v = 2.0f;
	add_k<<<1, 4, 0, s>>>(d, v);
	v = 100.0f; /* the graph keeps the value it was captured with */
	assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
	get(h, d, sizeof h);
	assert_true(h[0] == 0.0f); /* nothing ran while capturing */
	assert_int_equal(cudaGraphInstantiate(&e, g, 0), cudaSuccess);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cudaGraphLaunch(e, s), cudaSuccess);
	get(h, d, sizeof h);
	assert_true(h[3] == 6.0f);
	cudaGraphExecDestroy(e);
	cudaGraphDestroy(g);
	cudaStreamDestroy(s);
	cudaFree(d);
}

static void t_capture_refuses_unsafe_calls(void **state)
{
	(void)state;
	cudaStream_t s;
	cudaGraph_t g;
	char host[16] = {0};
	char *d = (char *)dev(16), *pinned;
	assert_int_equal(cudaMallocHost((void **)&pinned, 16), cudaSuccess);
	assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
	/* a pinned copy is recorded; a pageable one is refused */
	assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
	assert_int_equal(cudaMemcpyAsync(d, pinned, 16, cudaMemcpyHostToDevice, s), cudaSuccess);
	assert_int_equal(cudaMemcpyAsync(d, host, 16, cudaMemcpyHostToDevice, s),
			 cudaErrorStreamCaptureUnsupported);
	assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
	assert_null(g);
	/* allocation and synchronization invalidate the capture */
	void *p;
	assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
	assert_int_equal(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
	assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
	assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
	assert_int_equal(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
	assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
	/* work on the legacy stream during a capture */
	assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
	assert_int_equal(cudaMemsetAsync(d, 0, 16, NULL), cudaErrorStreamCaptureImplicit);
	assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
	(void)cudaGetLastError();
	cudaStreamDestroy(s);
	cudaFreeHost(pinned);
	cudaFree(d);
}

static void t_memory_accounting(void **state)
{
	(void)state;
	size_t f0, f1, t, t1;
	void *p;
	assert_int_equal(cudaMemGetInfo(&f0, &t), cudaSuccess);
	assert_int_equal(cudaMalloc(&p, 1000), cudaSuccess);
	assert_int_equal(cudaMemGetInfo(&f1, &t1), cudaSuccess);
	assert_int_equal(f0 - f1, 1024); /* 256-byte granules */
	void *q;
	assert_int_equal(cudaMalloc(&q, t + 1), cudaErrorMemoryAllocation);
	assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);
	assert_int_equal(cudaGetLastError(), cudaSuccess);
	cudaFree(p);
}

__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
	return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float hw_h2f(uint16_t h)
{
	return _cvtsh_ss(h);
}

static void f2h_same(float f)
{
	assert_int_equal(__half_as_ushort(__float2half_rn(f)), hw_f2h(f));
}

/* every half against F16C; the floats at and next to each midpoint between
 * neighbouring halves (the ties), and random floats */
static void t_f16_conversions(void **state)
{
	(void)state;
	if (!__builtin_cpu_supports("f16c"))
		skip();
	for (uint32_t h = 0; h < 65536; h++) {
		float a = __half2float(__ushort_as_half((uint16_t)h)), b = hw_h2f((uint16_t)h);
		assert_true(isnan(a) ? isnan(b) : memcmp(&a, &b, 4) == 0);
	}
	for (uint32_t h = 0; h < 0x7c00; h++) /* finite positive halves and the step to the next */
		for (int sign = 0; sign < 2; sign++) {
			float lo = hw_h2f((uint16_t)h), hi = hw_h2f((uint16_t)(h + 1));
			float mid = sign ? -(lo + hi) / 2 : (lo + hi) / 2;
			f2h_same(mid);
			f2h_same(nextafterf(mid, INFINITY));
			f2h_same(nextafterf(mid, -INFINITY));
		}
	uint64_t s = 88172645463325252ull;
	for (uint32_t i = 0; i < 1000000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		uint32_t u = (uint32_t)s;
		float f;
		memcpy(&f, &u, 4);
		if (!isnan(f))
			f2h_same(f);
	}
}

static void t_gemm_matches_loop(void **state)
{
	(void)state;
	const int m = 5, n = 3, k = 7;
	uint16_t a[k * m], b[k * n]; /* A stored (k, m): op T; B (k, n) */
	float c[m * n], want[m * n];
	for (int i = 0; i < k * m; i++)
		a[i] = __half_as_ushort(__float2half_rn((float)(i % 9) - 4.0f));
	for (int i = 0; i < k * n; i++)
		b[i] = __half_as_ushort(__float2half_rn(0.5f * (float)(i % 5)));
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			float acc = 0.0f;
			for (int l = 0; l < k; l++)
				acc += __half2float(__ushort_as_half(a[l + i * k])) *
				       __half2float(__ushort_as_half(b[l + j * k]));
			want[i + j * m] = acc;
		}
	void *da = dev(sizeof a), *db = dev(sizeof b), *dc = dev(sizeof c); /* C poisoned: NaN */
	put(da, a, sizeof a);
	put(db, b, sizeof b);
	cublasHandle_t h;
	const float one = 1.0f, zero = 0.0f;
	assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
	assert_int_equal(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, da, CUDA_R_16F, k,
				      db, CUDA_R_16F, k, &zero, dc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
				      CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_SUCCESS);
	get(c, dc, sizeof c);
	for (int i = 0; i < m * n; i++)
		assert_true(c[i] == want[i]); /* small integers and halves: exact */
	/* an operand past its allocation is refused */
	assert_int_equal(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k + 1, &one, da,
				      CUDA_R_16F, k + 1, db, CUDA_R_16F, k + 1, &zero, dc,
				      CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
			 CUBLAS_STATUS_INVALID_VALUE);
	cublasDestroy(h);
	cudaFree(da), cudaFree(db), cudaFree(dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(t_shuffle_sum, reset),
		cmocka_unit_test_teardown(t_missing_barrier_reads_poison, reset),
		cmocka_unit_test_teardown(t_split_barrier_fails_the_launch, reset),
		cmocka_unit_test_teardown(t_shuffle_with_exited_lane_fails, reset),
		cmocka_unit_test_teardown(t_indices_3d, reset),
		cmocka_unit_test_teardown(t_launch_limits, reset),
		cmocka_unit_test_teardown(t_host_pointer_argument_refused, reset),
		cmocka_unit_test_teardown(t_copies_checked, reset),
		cmocka_unit_test_teardown(t_fresh_memory_poisoned, reset),
		cmocka_unit_test_teardown(t_capture_records_and_replays, reset),
		cmocka_unit_test_teardown(t_capture_refuses_unsafe_calls, reset),
		cmocka_unit_test_teardown(t_memory_accounting, reset),
		cmocka_unit_test_teardown(t_f16_conversions, reset),
		cmocka_unit_test_teardown(t_gemm_matches_loop, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
