/*
 * cuda-matvec.cu — Y (n, rows) = X (n, cols) . W^T for small batches
 * (decode), every weight type, dequantized in the kernel: one pass over the
 * weights per tile of CUDA_MATVEC_TILE tokens.
 *
 * Launch geometry (cuda_plan_matvec): blocks of CUDA_MATVEC_WARPS warps;
 * grid.x = token tiles, grid.y = groups of CUDA_MATVEC_WARPS weight rows
 * (split over grid.z past 65535 groups). Warp w of a block owns weight
 * row r; lane l takes the row's 32-element chunks l, l + 32, ...
 * (cuda-quant.cuh), dequantizes each once into registers and multiplies
 * it with the same 32 columns of each of the tile's tokens (f32, read
 * straight from X: L1/L2 serve the repeats). The per-token partial sums
 * then meet in a fixed xor-shuffle tree. Token tiles of one row group are
 * neighbours in the grid (x varies fastest), so for n > TILE the later
 * tiles mostly find the weights in L2.
 *
 * Batch invariance: token t's result uses only W, X row t, and a fixed
 * order (chunk loop per lane, fixed-order dot inside a chunk, fixed
 * tree): the same bits whatever n is and wherever t sits in the batch.
 * X is read with float4 when cols % 4 == 0 and X is 16-byte aligned, else
 * per element: both do the same fmaf chain in the same order, so the bits
 * are the same either way (a token's row may sit anywhere in X).
 * Not yet run on a GPU; test-backend checks it. Registers: see
 * nvcc --ptxas-options=-v (noted in the commit that added this file).
 */
#include "cuda/cuda-quant.cuh"

#define MV_TILE CUDA_MATVEC_TILE
#define MV_WARPS CUDA_MATVEC_WARPS

/* s = sum_k v[k] * x[k] for the chunk's ne <= 32 elements, in k order */
template <bool VEC>
__device__ __forceinline__ float chunk_dot(const float *v, const float *__restrict__ x,
					   uint32_t ne)
{
	float s = 0.0f;
	if constexpr (VEC) {
		const float4 *x4 = (const float4 *)x;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			float4 f = x4[k];
			s = fmaf(v[4 * k], f.x, s);
			s = fmaf(v[4 * k + 1], f.y, s);
			s = fmaf(v[4 * k + 2], f.z, s);
			s = fmaf(v[4 * k + 3], f.w, s);
		}
	} else {
#pragma unroll
		for (int k = 0; k < 32; k++)
			if ((uint32_t)k < ne)
				s = fmaf(v[k], x[k], s);
	}
	return s;
}

template <int T, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32)
matvec_k(float *__restrict__ y, const uint8_t *__restrict__ w, size_t row_bytes, uint32_t rows,
	 uint32_t cols, const float *__restrict__ x, uint32_t n, bool xvec)
{
	const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const uint32_t r = ((uint32_t)blockIdx.z * gridDim.y + blockIdx.y) * MV_WARPS + warp;
	const uint32_t t0 = blockIdx.x * MV_TILE;
	if (r >= rows)
		return; /* no block-wide barrier below: a whole warp leaves */
	const uint32_t nt = n - t0 < MV_TILE ? n - t0 : MV_TILE;
	const uint8_t *wr = w + (size_t)r * row_bytes;
	const uint32_t nch = (cols + 31) / 32;
	float acc[MV_TILE];
#pragma unroll
	for (int t = 0; t < MV_TILE; t++)
		acc[t] = 0.0f;
	for (uint32_t c = lane; c < nch; c += 32) {
		float v[32];
		cu_chunk<T, VEC>(wr, c, cols, v);
		const uint32_t e0 = c * 32, ne = cols - e0 < 32 ? cols - e0 : 32;
		const float *xc = x + (size_t)t0 * cols + e0;
#pragma unroll
		for (int t = 0; t < MV_TILE; t++)
			if ((uint32_t)t < nt)
				acc[t] += xvec && ne == 32 ? chunk_dot<true>(v, xc + (size_t)t * cols, 32)
							   : chunk_dot<false>(v, xc + (size_t)t * cols, ne);
	}
#pragma unroll
	for (int t = 0; t < MV_TILE; t++) {
		float s = cu_warp_sum(acc[t]);
		if (lane == 0 && (uint32_t)t < nt)
			y[(size_t)(t0 + t) * rows + r] = s;
	}
}

struct matvec_launch {
	float *y;
	const void *w;
	size_t row_bytes;
	uint32_t rows, cols;
	const float *x;
	uint32_t n;
	cudaStream_t s;
	template <int T, bool VEC>
	int go() const
	{
		uint32_t gx, gy;
		cuda_plan_matvec(rows, n, &gx, &gy);
		dim3 grid(gx, gy < 65535 ? gy : 65535, (gy + 65534) / 65535);
		/* float4 reads of X when every chunk of every row is 16-byte aligned */
		bool xvec = cols % 4 == 0 && (uintptr_t)x % 16 == 0;
		matvec_k<T, VEC><<<grid, MV_WARPS * 32, 0, s>>>(y, (const uint8_t *)w, row_bytes, rows,
								cols, x, n, xvec);
		return 0;
	}
};

extern "C" int cuda_matvec(float *y, const void *w, uint32_t type, size_t row_bytes,
			   uint32_t rows, uint32_t cols, const float *x, uint32_t n, void *stream,
			   char *err, size_t errlen)
{
	int rc = cu_check_weight("cuda_matvec", w, type, row_bytes, cols, err, errlen);
	if (rc || n == 0 || rows == 0)
		return rc;
	matvec_launch l = { y, w, row_bytes, rows, cols, x, n, CU_STREAM(stream) };
	if ((rc = cu_dispatch(type, cols, l)))
		return cu_fail(err, errlen, rc, "cuda_matvec: weight type %u not supported", type);
	return cu_launched("cuda_matvec", err, errlen);
}
