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
 * cuda_matvec_multi runs several weights that read the same X (q/k/v,
 * gate/up) in one grid: their row groups follow one another along y, a
 * group finds its weight (mvm_part), and each warp does cuda_matvec's work
 * for its row: the same bits, one launch; a part's bias, if any, is added
 * as lane 0 writes the row (one rounded add, as cuda_add_bias).
 *
 * Batch invariance: token t's result uses only W, X row t, and a fixed
 * order (chunk loop per lane, fixed-order dot inside a chunk, fixed
 * tree): the same bits whatever n is and wherever t sits in the batch.
 * X is read with float4 when cols % 4 == 0 and X is 16-byte aligned, else
 * per element: both do the same fmaf chain in the same order, so the bits
 * are the same either way (a token's row may sit anywhere in X).
 * Checked: not yet run on a GPU (test-backend checks it there);
 * cuda_host_matvec runs the same lane bodies and grid on the CPU, and
 * tests/unit/test-cuda-plan.c compares it with dequantized weights x X in
 * double for every type and checks a token's bits alone and in a batch.
 * ptxas -v (sm_90): 88-128 registers per type with __launch_bounds__(128, 1),
 * no spills (letting ptxas pick gave 72 and small spills; min 6 blocks gave
 * 80 and more spills): about 4 blocks (16 warps) per SM, to tune on the GPU.
 */
#include <string.h>

#include "cuda/cuda-emu.h"
#include "cuda/cuda-host.h"
#include "cuda/cuda-quant.cuh"

#define MV_TILE CUDA_MATVEC_TILE
#define MV_WARPS CUDA_MATVEC_WARPS

/* s = sum_k v[k] * x[k] for the chunk's ne <= 32 elements, in k order */
template <bool VEC>
CU_HD float chunk_dot(const float *v, const float *__restrict__ x, uint32_t ne)
{
	float s = 0.0f;
	if constexpr (VEC) {
		const float4 *x4 = (const float4 *)x;
		CU_UNROLL
		for (int k = 0; k < 8; k++) {
			float4 f = x4[k];
			s = fmaf(v[4 * k], f.x, s);
			s = fmaf(v[4 * k + 1], f.y, s);
			s = fmaf(v[4 * k + 2], f.z, s);
			s = fmaf(v[4 * k + 3], f.w, s);
		}
	} else {
		CU_UNROLL
		for (int k = 0; k < 32; k++)
			if ((uint32_t)k < ne)
				s = fmaf(v[k], x[k], s);
	}
	return s;
}

/* Lane `lane`'s partial sums acc[t] of weight row wr against the tile's
 * tokens t0 + t, t < nt: chunks lane, lane + 32, ... (the kernel's and
 * cuda_host_matvec's common body). */
template <int T, bool VEC>
CU_HD void mv_lane(const uint8_t *wr, uint32_t cols, const float *x, uint32_t t0, uint32_t nt,
		   uint32_t lane, bool xvec, float *acc)
{
	const uint32_t nch = (cols + 31) / 32;
	CU_UNROLL
	for (int t = 0; t < MV_TILE; t++)
		acc[t] = 0.0f;
	for (uint32_t c = lane; c < nch; c += 32) {
		float v[32];
		cu_chunk<T, VEC>(wr, c, cols, v);
		const uint32_t e0 = c * 32, ne = cols - e0 < 32 ? cols - e0 : 32;
		const float *xc = x + (size_t)t0 * cols + e0;
		CU_UNROLL
		for (int t = 0; t < MV_TILE; t++)
			if ((uint32_t)t < nt)
				acc[t] += xvec && ne == 32 ? chunk_dot<true>(v, xc + (size_t)t * cols, 32)
							   : chunk_dot<false>(v, xc + (size_t)t * cols, ne);
	}
}

/* The weight row and first token of (block z/y/x, warp). */
CU_HD uint32_t mv_row(uint32_t bz, uint32_t by, uint32_t gy, uint32_t warp)
{
	return (bz * gy + by) * MV_WARPS + warp;
}

/* A warp's work: weight row r against the tile from t0 (both kernels). */
template <int T, bool VEC>
__device__ __forceinline__ void mv_warp(float *__restrict__ y, const uint8_t *__restrict__ w,
					size_t row_bytes, uint32_t rows, uint32_t cols,
					const float *__restrict__ x, uint32_t n, bool xvec,
					uint32_t r, uint32_t t0, uint32_t lane,
					const float *__restrict__ bias)
{
	if (r >= rows)
		return; /* no block-wide barrier below: a whole warp leaves */
	const uint32_t nt = n - t0 < MV_TILE ? n - t0 : MV_TILE;
	float acc[MV_TILE];
	mv_lane<T, VEC>(w + (size_t)r * row_bytes, cols, x, t0, nt, lane, xvec, acc);
#pragma unroll
	for (int t = 0; t < MV_TILE; t++) {
		float s = cu_warp_sum(acc[t]);
		if (lane == 0 && (uint32_t)t < nt)
			y[(size_t)(t0 + t) * rows + r] = bias ? __fadd_rn(s, bias[r]) : s;
	}
}

template <int T, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32, 1)
matvec_k(float *__restrict__ y, const uint8_t *__restrict__ w, size_t row_bytes, uint32_t rows,
	 uint32_t cols, const float *__restrict__ x, uint32_t n, bool xvec)
{
	const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	mv_warp<T, VEC>(y, w, row_bytes, rows, cols, x, n, xvec,
			mv_row(blockIdx.z, blockIdx.y, gridDim.y, warp), blockIdx.x * MV_TILE, lane,
			NULL);
}

/* cuda_matvec_multi: the parts' row groups one after the other along the
 * grid's y (and z) axis; g0[m] is part m's first group, g0[np] the total. */
struct mv_parts {
	float *y[CUDA_MATVEC_PARTS];
	const uint8_t *w[CUDA_MATVEC_PARTS];
	const float *b[CUDA_MATVEC_PARTS]; /* bias, or NULL */
	uint32_t rows[CUDA_MATVEC_PARTS];
	uint32_t g0[CUDA_MATVEC_PARTS + 1];
	uint32_t np;
};

/* The part row group g belongs to (the last part for groups past the end). */
CU_HD uint32_t mvm_part(const mv_parts &p, uint32_t g)
{
	uint32_t m = 0;
	while (m + 1 < p.np && g >= p.g0[m + 1])
		m++;
	return m;
}

template <int T, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32, 1)
matvec_multi_k(mv_parts p, size_t row_bytes, uint32_t cols, const float *__restrict__ x,
	       uint32_t n, bool xvec)
{
	const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const uint32_t g = blockIdx.z * gridDim.y + blockIdx.y, m = mvm_part(p, g);
	mv_warp<T, VEC>(p.y[m], p.w[m], row_bytes, p.rows[m], cols, x, n, xvec,
			(g - p.g0[m]) * MV_WARPS + warp, blockIdx.x * MV_TILE, lane, p.b[m]);
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

/* The kernel on the CPU (cuda-host.h): every block, warp and lane of the
 * same grid, the warp sum as the same xor tree. */
struct matvec_host {
	float *y;
	const void *w;
	size_t row_bytes;
	uint32_t rows, cols;
	const float *x;
	uint32_t n;
	template <int T, bool VEC>
	int go() const
	{
		uint32_t gx, gy;
		cuda_plan_matvec(rows, n, &gx, &gy);
		bool xvec = cols % 4 == 0 && (uintptr_t)x % 16 == 0;
		uint32_t gyy = gy < 65535 ? gy : 65535, gz = (gy + 65534) / 65535;
		for (uint32_t bz = 0; bz < gz; bz++)
			for (uint32_t by = 0; by < gyy; by++)
				for (uint32_t bx = 0; bx < gx; bx++)
					for (uint32_t warp = 0; warp < MV_WARPS; warp++)
						block_warp<T, VEC>(mv_row(bz, by, gyy, warp), bx * MV_TILE, xvec,
								   NULL);
		return 0;
	}
	template <int T, bool VEC>
	void block_warp(uint32_t r, uint32_t t0, bool xvec, const float *bias) const
	{
		if (r >= rows)
			return;
		uint32_t nt = n - t0 < MV_TILE ? n - t0 : MV_TILE;
		float acc[32][MV_TILE], w2[32];
		for (uint32_t l = 0; l < 32; l++)
			mv_lane<T, VEC>((const uint8_t *)w + (size_t)r * row_bytes, cols, x, t0, nt, l, xvec,
					acc[l]);
		for (uint32_t t = 0; t < nt; t++) {
			float v[32];
			for (int l = 0; l < 32; l++)
				v[l] = acc[l][t];
			for (int o = 16; o > 0; o >>= 1) {
				for (int l = 0; l < 32; l++)
					w2[l] = v[l] + v[l ^ o];
				memcpy(v, w2, sizeof v);
			}
			y[(size_t)(t0 + t) * rows + r] = bias ? cu_add(v[0], bias[r]) : v[0];
		}
	}
};

/* The multi-part grid on the host: each group's part found as the kernel
 * finds it, then that part's warps as matvec_host runs them. */
struct matvec_multi_host {
	const mv_parts *p;
	size_t row_bytes;
	uint32_t cols;
	const float *x;
	uint32_t n;
	template <int T, bool VEC>
	int go() const
	{
		uint32_t gx, gy;
		cuda_plan_matvec(1, n, &gx, &gy);
		bool xvec = cols % 4 == 0 && (uintptr_t)x % 16 == 0;
		for (uint32_t g = 0; g < p->g0[p->np]; g++) {
			uint32_t m = mvm_part(*p, g);
			matvec_host h = { p->y[m], p->w[m], row_bytes, p->rows[m], cols, x, n };
			for (uint32_t bx = 0; bx < gx; bx++)
				for (uint32_t warp = 0; warp < MV_WARPS; warp++)
					h.block_warp<T, VEC>((g - p->g0[m]) * MV_WARPS + warp, bx * MV_TILE, xvec,
							     p->b[m]);
		}
		return 0;
	}
};

struct matvec_multi_launch {
	const mv_parts *p;
	size_t row_bytes;
	uint32_t cols;
	const float *x;
	uint32_t n;
	cudaStream_t s;
	template <int T, bool VEC>
	int go() const
	{
		uint32_t gx, gy, total = p->g0[p->np];
		cuda_plan_matvec(1, n, &gx, &gy);
		dim3 grid(gx, total < 65535 ? total : 65535, (total + 65534) / 65535);
		bool xvec = cols % 4 == 0 && (uintptr_t)x % 16 == 0;
		matvec_multi_k<T, VEC><<<grid, MV_WARPS * 32, 0, s>>>(*p, row_bytes, cols, x, n, xvec);
		return 0;
	}
};

extern "C" int cuda_matvec_multi(float *const *y, const void *const *w, const float *const *bias,
				 const uint32_t *rows, uint32_t n_parts, uint32_t type,
				 size_t row_bytes, uint32_t cols, const float *x, uint32_t n,
				 void *stream, char *err, size_t errlen)
{
	mv_parts p;
	int rc = 0;
	if (n_parts < 1 || n_parts > CUDA_MATVEC_PARTS)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_matvec_multi: %u parts (1..%d)",
			       n_parts, CUDA_MATVEC_PARTS);
	memset(&p, 0, sizeof p);
	p.np = n_parts;
	for (uint32_t m = 0; m < n_parts && !rc; m++) {
		rc = cu_check_weight("cuda_matvec_multi", w[m], type, row_bytes, cols, err, errlen);
		p.y[m] = y[m], p.w[m] = (const uint8_t *)w[m], p.rows[m] = rows[m];
		p.b[m] = bias ? bias[m] : NULL;
		p.g0[m + 1] = p.g0[m] + (rows[m] + MV_WARPS - 1) / MV_WARPS;
	}
	if (rc || n == 0 || p.g0[n_parts] == 0)
		return rc;
	if (cuda_emu) {
		cu_count(1);
		matvec_multi_host h = { &p, row_bytes, cols, x, n };
		return cu_dispatch(type, cols, h);
	}
	cu_count(1);
	matvec_multi_launch l = { &p, row_bytes, cols, x, n, CU_STREAM(stream) };
	if ((rc = cu_dispatch(type, cols, l)))
		return cu_fail(err, errlen, rc, "cuda_matvec_multi: weight type %u not supported", type);
	return cu_launched("cuda_matvec_multi", err, errlen);
}

extern "C" int cuda_host_matvec(float *y, const void *w, uint32_t type, size_t row_bytes,
				uint32_t rows, uint32_t cols, const float *x, uint32_t n)
{
	if (cuda_plan_weight(type, cols, row_bytes, NULL, 0) || (uintptr_t)w % 16)
		return CUDA_OP_EINVAL;
	matvec_host h = { y, w, row_bytes, rows, cols, x, n };
	return cu_dispatch(type, cols, h);
}

extern "C" int cuda_matvec(float *y, const void *w, uint32_t type, size_t row_bytes,
			   uint32_t rows, uint32_t cols, const float *x, uint32_t n, void *stream,
			   char *err, size_t errlen)
{
	int rc = cu_check_weight("cuda_matvec", w, type, row_bytes, cols, err, errlen);
	if (rc || n == 0 || rows == 0)
		return rc;
	CU_KERNEL(1, cuda_host_matvec(y, w, type, row_bytes, rows, cols, x, n));
	matvec_launch l = { y, w, row_bytes, rows, cols, x, n, CU_STREAM(stream) };
	if ((rc = cu_dispatch(type, cols, l)))
		return cu_fail(err, errlen, rc, "cuda_matvec: weight type %u not supported", type);
	return cu_launched("cuda_matvec", err, errlen);
}
