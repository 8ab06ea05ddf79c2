/*
 * cuda-quant.cu — whole-row dequantization: the embedding lookup
 * (cuda_embed), and weight rows to f16 tiles for cuBLAS (cuda_dequant_f16)
 * or to f32 for tests (cuda_dequant_f32). Block layouts: cuda-quant.cuh.
 *
 * Launch geometry: one thread per 32-element chunk of an output row, a
 * 1-D grid of 256-thread blocks over rows * chunks (grid-stride, so any
 * vocabulary size fits). Each thread writes its 32 consecutive outputs.
 * Elements are bit for bit the CPU reference's (cuda-quant.cuh), then
 * rounded to half for the f16 form. Registers/spills: checked with
 * nvcc --ptxas-options=-v (see lib/cuda/README or the commit message).
 * Not yet run on a GPU; test-backend checks it.
 */
#include "cuda/cuda-emu.h"
#include "cuda/cuda-host.h"
#include "cuda/cuda-quant.cuh"

#define DQ_THREADS 256

__device__ __forceinline__ void cu_store(float *y, float v) { *y = v; }
__device__ __forceinline__ void cu_store(uint16_t *y, float v) { *y = cu_f2h(v); }

/* y (rows, cols) = dequant(w row src(r)) * scale, src(r) = tokens ? tokens[r] : r */
template <int T, bool VEC, typename O>
__global__ void dequant_k(O *__restrict__ y, const uint8_t *__restrict__ w, size_t row_bytes,
			  uint32_t rows, uint32_t cols, const int32_t *__restrict__ tokens,
			  float scale)
{
	uint32_t nch = (cols + 31) / 32;
	size_t total = (size_t)rows * nch;
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
	     i += (size_t)gridDim.x * blockDim.x) {
		uint32_t r = (uint32_t)(i / nch), c = (uint32_t)(i % nch);
		size_t src = tokens ? (size_t)(uint32_t)tokens[r] : r;
		float v[32];
		cu_chunk<T, VEC>(w + src * row_bytes, c, cols, v);
		O *yr = y + (size_t)r * cols + (size_t)c * 32;
		uint32_t ne = cols - c * 32 < 32 ? cols - c * 32 : 32;
		for (uint32_t k = 0; k < ne; k++)
			cu_store(yr + k, scale == 1.0f ? v[k] : __fmul_rn(v[k], scale));
	}
}

template <typename O>
struct dequant_launch {
	O *y;
	const void *w;
	size_t row_bytes;
	uint32_t rows, cols;
	const int32_t *tokens;
	float scale;
	cudaStream_t s;
	template <int T, bool VEC>
	int go() const
	{
		size_t total = (size_t)rows * ((cols + 31) / 32);
		size_t blocks = cu_blocks(total, DQ_THREADS);
		unsigned grid = (unsigned)(blocks < 65535u * 16 ? blocks : 65535u * 16);
		dequant_k<T, VEC, O><<<grid, DQ_THREADS, 0, s>>>(y, (const uint8_t *)w, row_bytes, rows,
								  cols, tokens, scale);
		return 0;
	}
};

template <typename O>
static int dequant(const char *op, O *y, const void *w, uint32_t type, size_t row_bytes,
		   uint32_t rows, uint32_t cols, const int32_t *tokens, float scale, void *stream,
		   char *err, size_t errlen)
{
	int rc = cu_check_weight(op, w, type, row_bytes, cols, err, errlen);
	if (rc || rows == 0)
		return rc;
	CU_KERNEL(1, emu_dequant(sizeof(O) == 4 ? (float *)y : NULL, sizeof(O) == 2 ? (uint16_t *)y : NULL,
				   w, type, row_bytes, rows, cols, tokens, scale));
	dequant_launch<O> l = { y, w, row_bytes, rows, cols, tokens, scale, CU_STREAM(stream) };
	if ((rc = cu_dispatch(type, cols, l)))
		return cu_fail(err, errlen, rc, "%s: weight type %u not supported", op, type);
	return cu_launched(op, err, errlen);
}

extern "C" int cuda_embed(float *x, const void *w, uint32_t type, size_t row_bytes,
			  uint32_t dim, const int32_t *tokens, uint32_t n, float scale,
			  void *stream, char *err, size_t errlen)
{
	return dequant("cuda_embed", x, w, type, row_bytes, n, dim, tokens, scale, stream, err,
		       errlen);
}

extern "C" int cuda_dequant_f16(uint16_t *y, const void *w, uint32_t type, size_t row_bytes,
				uint32_t rows, uint32_t cols, void *stream, char *err,
				size_t errlen)
{
	return dequant("cuda_dequant_f16", y, w, type, row_bytes, rows, cols, NULL, 1.0f, stream,
		       err, errlen);
}

extern "C" int cuda_dequant_f32(float *y, const void *w, uint32_t type, size_t row_bytes,
				uint32_t rows, uint32_t cols, void *stream, char *err,
				size_t errlen)
{
	return dequant("cuda_dequant_f32", y, w, type, row_bytes, rows, cols, NULL, 1.0f, stream,
		       err, errlen);
}

/* ---- the decoder on the host (cuda-host.h) ------------------------------- */

struct chunk_host {
	const void *row;
	uint32_t c, cols;
	float *v;
	template <int T, bool VEC>
	int go() const
	{
		cu_chunk<T, VEC>((const uint8_t *)row, c, cols, v);
		return 0;
	}
};

extern "C" int cuda_host_chunk(uint32_t type, const void *row, uint32_t c, uint32_t cols,
			       float *v)
{
	chunk_host h = { row, c, cols, v };
	return cu_dispatch(type, cols, h);
}
