/*
 * cuda-mem.cu — device memory, copies, streams, pinned host memory, the
 * cuBLAS handle and CUDA graphs, as cuda-ops.h's C functions. No kernels.
 *
 * Every call reports failures in cuda-ops.h's convention; an allocation
 * that fails for lack of memory is CUDA_OP_ENOMEM so the backend can say
 * "out of device memory" rather than a generic failure.
 * Not yet run on a GPU; test-backend and the end-to-end checks exercise it.
 */
#include <cublas_v2.h>

#include "cuda/cuda-common.cuh"
#include "cuda/cuda-emu.h"

unsigned long long cu_launch_n;

extern "C" uint64_t cuda_launches(void)
{
	return __atomic_load_n(&cu_launch_n, __ATOMIC_RELAXED);
}

extern "C" int cuda_set_device(int index, char *err, size_t errlen)
{
	CU_EMU(0);
	return cu_call(cudaSetDevice(index), "cudaSetDevice", err, errlen);
}

extern "C" int cuda_malloc(void **p, size_t bytes, char *err, size_t errlen)
{
	if (cuda_emu) {
		int rc = emu_malloc(p, bytes);
		return rc ? cu_fail(err, errlen, rc, "cudaMalloc(%zu bytes): out of memory "
				    "(emulated device)", bytes) : 0;
	}
	*p = NULL;
	if (!bytes)
		return 0;
	return cu_call(cudaMalloc(p, bytes), "cudaMalloc", err, errlen);
}

extern "C" void cuda_free(void *p)
{
	if (cuda_emu) {
		emu_free(p);
		return;
	}
	if (p)
		(void)cudaFree(p);
}

extern "C" int cuda_memset(void *d, int v, size_t bytes, void *stream, char *err, size_t errlen)
{
	CU_EMU(emu_memset(d, v, bytes));
	return cu_call(cudaMemsetAsync(d, v, bytes, CU_STREAM(stream)), "cudaMemsetAsync", err,
		       errlen);
}

static int copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, void *stream,
		const char *what, char *err, size_t errlen)
{
	if (!bytes)
		return 0;
	return cu_call(cudaMemcpyAsync(dst, src, bytes, k, CU_STREAM(stream)), what, err, errlen);
}

extern "C" int cuda_h2d(void *d, const void *h, size_t bytes, void *stream, char *err,
			size_t errlen)
{
	CU_EMU(emu_copy(d, h, bytes));
	return copy(d, h, bytes, cudaMemcpyHostToDevice, stream, "cudaMemcpyAsync(h2d)", err,
		    errlen);
}

extern "C" int cuda_d2h(void *h, const void *d, size_t bytes, void *stream, char *err,
			size_t errlen)
{
	CU_EMU(emu_copy(h, d, bytes));
	return copy(h, d, bytes, cudaMemcpyDeviceToHost, stream, "cudaMemcpyAsync(d2h)", err,
		    errlen);
}

extern "C" int cuda_d2d(void *d, const void *s, size_t bytes, void *stream, char *err,
			size_t errlen)
{
	CU_EMU(emu_copy(d, s, bytes));
	return copy(d, s, bytes, cudaMemcpyDeviceToDevice, stream, "cudaMemcpyAsync(d2d)", err,
		    errlen);
}

extern "C" int cuda_stream_new(void **stream, char *err, size_t errlen)
{
	CU_EMU(emu_token(stream));
	cudaStream_t s = NULL;
	*stream = NULL;
	int rc = cu_call(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking),
			 "cudaStreamCreateWithFlags", err, errlen);
	if (rc == 0)
		*stream = s;
	return rc;
}

extern "C" void cuda_stream_free(void *stream)
{
	if (cuda_emu)
		return;
	if (stream)
		(void)cudaStreamDestroy(CU_STREAM(stream));
}

extern "C" int cuda_stream_sync(void *stream, char *err, size_t errlen)
{
	CU_EMU(emu_sync());
	return cu_call(cudaStreamSynchronize(CU_STREAM(stream)), "cudaStreamSynchronize", err,
		       errlen);
}

extern "C" int cuda_host_alloc(void **p, size_t bytes, char *err, size_t errlen)
{
	CU_EMU(emu_host_malloc(p, bytes ? bytes : 1));
	*p = NULL;
	return cu_call(cudaMallocHost(p, bytes ? bytes : 1), "cudaMallocHost", err, errlen);
}

extern "C" void cuda_host_free(void *p)
{
	if (cuda_emu) {
		free(p);
		return;
	}
	if (p)
		(void)cudaFreeHost(p);
}

extern "C" int cuda_blas_new(void **blas, void *stream, char *err, size_t errlen)
{
	CU_EMU(emu_token(blas));
	cublasHandle_t h = NULL;
	*blas = NULL;
	cublasStatus_t st = cublasCreate(&h);
	if (st != CUBLAS_STATUS_SUCCESS)
		return cu_fail(err, errlen, st == CUBLAS_STATUS_ALLOC_FAILED ? CUDA_OP_ENOMEM
				: CUDA_OP_EFAIL, "cublasCreate: %s", cublasGetStatusString(st));
	st = cublasSetStream(h, CU_STREAM(stream));
	if (st != CUBLAS_STATUS_SUCCESS) {
		cublasDestroy(h);
		return cu_fail(err, errlen, CUDA_OP_EFAIL, "cublasSetStream: %s",
			       cublasGetStatusString(st));
	}
	*blas = h;
	return 0;
}

extern "C" void cuda_blas_free(void *blas)
{
	if (cuda_emu)
		return;
	if (blas)
		(void)cublasDestroy((cublasHandle_t)blas);
}

extern "C" int cuda_mem_info(size_t *free_bytes, size_t *total_bytes, char *err, size_t errlen)
{
	CU_EMU(emu_mem_info(free_bytes, total_bytes));
	return cu_call(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo", err, errlen);
}

extern "C" int cuda_graph_begin(void *stream, char *err, size_t errlen)
{
	CU_EMU(emu_no_graphs(err, errlen));
	return cu_call(cudaStreamBeginCapture(CU_STREAM(stream), cudaStreamCaptureModeThreadLocal),
		       "cudaStreamBeginCapture", err, errlen);
}

/* Update *exec from graph in place when the topology allows, else rebuild. */
static int graph_install(cudaGraph_t graph, cudaGraphExec_t *exec, char *err, size_t errlen)
{
	if (*exec) {
		cudaGraphExecUpdateResultInfo info;
		if (cudaGraphExecUpdate(*exec, graph, &info) == cudaSuccess)
			return 0;
		(void)cudaGetLastError();
		(void)cudaGraphExecDestroy(*exec);
		*exec = NULL;
	}
	return cu_call(cudaGraphInstantiate(exec, graph, 0), "cudaGraphInstantiate", err, errlen);
}

extern "C" int cuda_graph_end(void *stream, void **exec, char *err, size_t errlen)
{
	CU_EMU(emu_no_graphs(err, errlen));
	cudaGraph_t graph = NULL;
	int rc = cu_call(cudaStreamEndCapture(CU_STREAM(stream), &graph), "cudaStreamEndCapture",
			 err, errlen);
	if (rc)
		return rc;
	cudaGraphExec_t e = (cudaGraphExec_t)*exec;
	rc = graph_install(graph, &e, err, errlen);
	*exec = e;
	(void)cudaGraphDestroy(graph);
	return rc;
}

extern "C" int cuda_graph_launch(void *exec, void *stream, char *err, size_t errlen)
{
	CU_EMU(emu_no_graphs(err, errlen));
	return cu_call(cudaGraphLaunch((cudaGraphExec_t)exec, CU_STREAM(stream)),
		       "cudaGraphLaunch", err, errlen);
}

extern "C" void cuda_graph_free(void *exec)
{
	if (exec)
		(void)cudaGraphExecDestroy((cudaGraphExec_t)exec);
}
