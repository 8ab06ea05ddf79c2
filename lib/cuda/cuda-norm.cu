/*
 * cuda-norm.cu — the per-row and per-element ops of the forward pass:
 * f32/f16 conversions, q scaling and rounding, RMSNorm (also per head:
 * QK-norm), the RoPE table and rotation, gated activations, residual and
 * bias adds, row gathers; and the residual step fused (cuda_add_rmsnorm:
 * post-norm, add and the next RMSNorm in one block per row, bit for bit
 * the three ops).
 *
 * Launch geometry: RMSNorm one block of CUDA_NORM_THREADS per row (thread
 * i sums elements i, i + 256, ... in double, then a fixed shared-memory
 * tree), so a row's result never depends on other rows. Everything else
 * is one thread per element (or per rotated pair), 256-thread blocks, a
 * grid-stride loop.
 * Numerics against ops.c: RMSNorm multiplies x * r * w in that order
 * without fused multiply-add, r = 1 / sqrt(mean + eps) in double as on the
 * CPU (the sum's order differs: last-bit differences in r); the RoPE
 * table is computed in double as llm_rope_table and the rotation without
 * fused multiply-add, as llm_rope_apply; GLU evaluates sigmoid in double
 * (the CPU's float exp differs by a few ulp); conversions round to
 * nearest even as llm_f16_row. Not yet run on a GPU; test-backend checks it.
 */
#include <float.h>

#include "cuda/cuda-common.cuh"
#include "cuda/cuda-emu.h"
#include "cuda/cuda-host.h"

#define EW_THREADS 256

static unsigned ew_grid(size_t n)
{
	size_t b = cu_blocks(n, EW_THREADS);
	return (unsigned)(b ? (b < 65535u * 64 ? b : 65535u * 64) : 1);
}

#define GRID_STRIDE(i, n) \
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (size_t)gridDim.x * blockDim.x)

/* ---- conversions, q preparation --------------------------------------- */

__global__ void f32_to_f16_k(uint16_t *__restrict__ y, const float *__restrict__ x, size_t n)
{
	GRID_STRIDE(i, n) y[i] = cu_f2h(x[i]);
}

__global__ void f16_to_f32_k(float *__restrict__ y, const uint16_t *__restrict__ x, size_t n)
{
	GRID_STRIDE(i, n) y[i] = cu_h2f(x[i]);
}

__global__ void scale_round_k(float *x, size_t n, float scale, int round_f16)
{
	GRID_STRIDE(i, n) {
		float v = __fmul_rn(x[i], scale);
		x[i] = round_f16 ? cu_h2f(cu_f2h(v)) : v;
	}
}

extern "C" int cuda_f32_to_f16(uint16_t *y, const float *x, size_t n, void *stream, char *err,
			       size_t errlen)
{
	CU_KERNEL(1, emu_f32_to_f16(y, x, n));
	if (!n)
		return 0;
	f32_to_f16_k<<<ew_grid(n), EW_THREADS, 0, CU_STREAM(stream)>>>(y, x, n);
	return cu_launched("cuda_f32_to_f16", err, errlen);
}

extern "C" int cuda_f16_to_f32(float *y, const uint16_t *x, size_t n, void *stream, char *err,
			       size_t errlen)
{
	CU_KERNEL(1, emu_f16_to_f32(y, x, n));
	if (!n)
		return 0;
	f16_to_f32_k<<<ew_grid(n), EW_THREADS, 0, CU_STREAM(stream)>>>(y, x, n);
	return cu_launched("cuda_f16_to_f32", err, errlen);
}

extern "C" int cuda_scale_round(float *x, size_t n, float scale, int round_f16, void *stream,
				char *err, size_t errlen)
{
	CU_KERNEL(1, emu_scale_round(x, n, scale, round_f16));
	if (!n || (scale == 1.0f && !round_f16))
		return 0;
	scale_round_k<<<ew_grid(n), EW_THREADS, 0, CU_STREAM(stream)>>>(x, n, scale, round_f16);
	return cu_launched("cuda_scale_round", err, errlen);
}

/* ---- RMSNorm ------------------------------------------------------------ */

/* The block's sum of s (one per thread) by a shared tree, as r = 1 /
 * sqrt(mean + eps): rmsnorm_k and the fused add_rmsnorm_k both use it, so
 * they give the same bits. part is free again on return. */
__device__ float block_rnorm(double s, double *part, uint32_t dim, float eps)
{
	part[threadIdx.x] = s;
	__syncthreads();
	for (int h = CUDA_NORM_THREADS / 2; h > 0; h >>= 1) {
		if ((int)threadIdx.x < h)
			part[threadIdx.x] += part[threadIdx.x + h];
		__syncthreads();
	}
	float r = (float)(1.0 / sqrt(part[0] / dim + eps));
	__syncthreads();
	return r;
}

/* y row = x row * r * w; one block per row */
__global__ void __launch_bounds__(CUDA_NORM_THREADS)
rmsnorm_k(float *y, const float *x, const float *__restrict__ w, uint32_t dim, float eps)
{
	__shared__ double part[CUDA_NORM_THREADS];
	const float *xr = x + (size_t)blockIdx.x * dim;
	float *yr = y + (size_t)blockIdx.x * dim;
	double s = 0.0;
	for (uint32_t i = threadIdx.x; i < dim; i += CUDA_NORM_THREADS)
		s += (double)xr[i] * xr[i];
	float r = block_rnorm(s, part, dim, eps);
	for (uint32_t i = threadIdx.x; i < dim; i += CUDA_NORM_THREADS)
		yr[i] = __fmul_rn(__fmul_rn(xr[i], r), w[i]);
}

extern "C" int cuda_rmsnorm(float *y, const float *x, const float *w, uint32_t n, uint32_t dim,
			    float eps, void *stream, char *err, size_t errlen)
{
	if (!n)
		return 0;
	if (!dim || !w)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_rmsnorm: dim 0 or no weight");
	CU_KERNEL(1, emu_rmsnorm(y, x, w, n, dim, eps));
	rmsnorm_k<<<n, CUDA_NORM_THREADS, 0, CU_STREAM(stream)>>>(y, x, w, dim, eps);
	return cu_launched("cuda_rmsnorm", err, errlen);
}

extern "C" int cuda_qk_norm(float *x, const float *w, uint32_t n, uint32_t n_heads,
			    uint32_t head_dim, float eps, void *stream, char *err, size_t errlen)
{
	uint64_t rows = (uint64_t)n * n_heads;
	if (rows > INT32_MAX)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_qk_norm: %u x %u heads", n, n_heads);
	int rc = cuda_rmsnorm(x, x, w, (uint32_t)rows, head_dim, eps, stream, err, errlen);
	return rc ? rc : 0;
}

/* ---- fused: residual add (+ post-norm) + the next RMSNorm ----------------- */

/* One block per row: y' = pw ? rmsnorm(y) * pw : y; x += y'; xn =
 * rmsnorm(x) * w when w. Each thread owns elements i, i + 256, ... of the
 * row throughout (it reads back only what it wrote), and every sum, product
 * and rounding is rmsnorm_k's and add_k's in their order: the bits of
 * cuda_rmsnorm(y), cuda_add, cuda_rmsnorm(x) run one after the other. */
__global__ void __launch_bounds__(CUDA_NORM_THREADS)
add_rmsnorm_k(float *x, const float *__restrict__ y, const float *__restrict__ pw, float *xn,
	      const float *__restrict__ w, uint32_t dim, float eps)
{
	__shared__ double part[CUDA_NORM_THREADS];
	const size_t row = (size_t)blockIdx.x * dim;
	const float *yr = y + row;
	float *xr = x + row, rp = 0.0f;
	double s = 0.0;
	if (pw) {
		for (uint32_t i = threadIdx.x; i < dim; i += CUDA_NORM_THREADS)
			s += (double)yr[i] * yr[i];
		rp = block_rnorm(s, part, dim, eps);
		s = 0.0;
	}
	for (uint32_t i = threadIdx.x; i < dim; i += CUDA_NORM_THREADS) {
		float v = pw ? __fmul_rn(__fmul_rn(yr[i], rp), pw[i]) : yr[i];
		float xv = __fadd_rn(xr[i], v);
		xr[i] = xv;
		s += (double)xv * xv;
	}
	if (!w)
		return; /* uniform: every thread of the block leaves */
	float r = block_rnorm(s, part, dim, eps);
	for (uint32_t i = threadIdx.x; i < dim; i += CUDA_NORM_THREADS)
		xn[row + i] = __fmul_rn(__fmul_rn(xr[i], r), w[i]);
}

/* The same on the host, row by row, as emu_rmsnorm and emu_add compute. */
static int emu_add_rmsnorm(float *x, const float *y, const float *pw, float *xn,
			   const float *w, uint32_t n, uint32_t dim, float eps)
{
	for (uint32_t t = 0; t < n; t++) {
		const float *yr = y + (size_t)t * dim;
		float *xr = x + (size_t)t * dim, rp = 0.0f;
		double s = 0.0;
		if (pw) {
			for (uint32_t i = 0; i < dim; i++)
				s += (double)yr[i] * yr[i];
			rp = (float)(1.0 / sqrt(s / dim + eps));
			s = 0.0;
		}
		for (uint32_t i = 0; i < dim; i++) {
			xr[i] = cu_add(xr[i], pw ? cu_mul(cu_mul(yr[i], rp), pw[i]) : yr[i]);
			s += (double)xr[i] * xr[i];
		}
		if (!w)
			continue;
		float r = (float)(1.0 / sqrt(s / dim + eps));
		for (uint32_t i = 0; i < dim; i++)
			xn[(size_t)t * dim + i] = cu_mul(cu_mul(xr[i], r), w[i]);
	}
	return 0;
}

extern "C" int cuda_add_rmsnorm(float *x, const float *y, const float *post_w, float *xn,
				const float *w, uint32_t n, uint32_t dim, float eps, void *stream,
				char *err, size_t errlen)
{
	if (!n)
		return 0;
	if (!dim || (w && !xn) || xn == x || xn == y)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_add_rmsnorm: dim 0, or xn missing "
			       "or aliasing x or y");
	CU_KERNEL(1, emu_add_rmsnorm(x, y, post_w, xn, w, n, dim, eps));
	add_rmsnorm_k<<<n, CUDA_NORM_THREADS, 0, CU_STREAM(stream)>>>(x, y, post_w, xn, w, dim, eps);
	return cu_launched("cuda_add_rmsnorm", err, errlen);
}

/* ---- RoPE --------------------------------------------------------------- */

__global__ void rope_table_k(float *cs, const uint32_t *__restrict__ pos, uint32_t n,
			     uint32_t n_rot, float base, float scale, const float *__restrict__ ff)
{
	const uint32_t half = n_rot / 2;
	GRID_STRIDE(k, (size_t)n * half) {
		uint32_t t = (uint32_t)(k / half), i = (uint32_t)(k % half);
		double th = (double)pos[t] * scale * pow((double)base, -2.0 * i / n_rot);
		if (ff)
			th /= ff[i];
		cs[(size_t)t * n_rot + 2 * i] = (float)cos(th);
		cs[(size_t)t * n_rot + 2 * i + 1] = (float)sin(th);
	}
}

extern "C" int cuda_rope_table(float *cs, const uint32_t *pos, uint32_t n, uint32_t n_rot,
			       float base, float scale, const float *ff, void *stream, char *err,
			       size_t errlen)
{
	CU_KERNEL(1, emu_rope_table(cs, pos, n, n_rot, base, scale, ff));
	if (!n || n_rot < 2)
		return 0;
	rope_table_k<<<ew_grid((size_t)n * (n_rot / 2)), EW_THREADS, 0, CU_STREAM(stream)>>>(
		cs, pos, n, n_rot, base, scale, ff);
	return cu_launched("cuda_rope_table", err, errlen);
}

__global__ void rope_k(float *x, const float *__restrict__ cs, uint32_t n, uint32_t n_heads,
		       uint32_t head_dim, uint32_t n_rot, int neox)
{
	const uint32_t half = n_rot / 2;
	GRID_STRIDE(k, (size_t)n * n_heads * half) {
		size_t th = k / half; /* token * n_heads + head */
		uint32_t i = (uint32_t)(k % half), t = (uint32_t)(th / n_heads);
		cu_rope_pair(x + th * head_dim, cs + (size_t)t * n_rot, i, half, neox);
	}
}

extern "C" int cuda_rope(float *x, const float *cs, uint32_t n, uint32_t n_heads,
			 uint32_t head_dim, uint32_t n_rot, int mode, void *stream, char *err,
			 size_t errlen)
{
	if (n_rot > head_dim || n_rot % 2)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_rope: n_rot %u vs head_dim %u",
			       n_rot, head_dim);
	size_t total = (size_t)n * n_heads * (n_rot / 2);
	if (!total)
		return 0;
	CU_KERNEL(1, emu_rope(x, cs, n, n_heads, head_dim, n_rot, mode));
	rope_k<<<ew_grid(total), EW_THREADS, 0, CU_STREAM(stream)>>>(x, cs, n, n_heads, head_dim,
								       n_rot, mode == 1);
	return cu_launched("cuda_rope", err, errlen);
}

/* ---- gated activations, adds, gathers ----------------------------------- */

/* act(g) = g sigmoid(z), z = g (SiLU) or sqrt(8/pi) (g + 0.044715 g^3) (GELU-tanh) */
CU_HD float act_f(float g, int gelu)
{
	double gd = fmax((double)g, -(double)FLT_MAX), z = gd;
	if (gelu)
		z = gd * (1.5957691216057308 + 0.071354816272919897 * gd * gd);
	double e = exp(-fabs(z)), sg = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
	return (float)(gd * sg);
}

extern "C" float cuda_host_act(float g, int act)
{
	return act_f(g, act == 1);
}

__global__ void glu_k(float *gate, const float *__restrict__ up, size_t n, int gelu)
{
	GRID_STRIDE(i, n) gate[i] = cu_mul(act_f(gate[i], gelu), up[i]);
}

extern "C" int cuda_glu(float *gate, const float *up, uint32_t n, uint32_t dim, int act,
			void *stream, char *err, size_t errlen)
{
	size_t total = (size_t)n * dim;
	if (act != 0 && act != 1)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_glu: activation %d", act);
	if (!total)
		return 0;
	CU_KERNEL(1, emu_glu(gate, up, total, act));
	glu_k<<<ew_grid(total), EW_THREADS, 0, CU_STREAM(stream)>>>(gate, up, total, act);
	return cu_launched("cuda_glu", err, errlen);
}

__global__ void add_k(float *x, const float *__restrict__ y, size_t n, uint32_t ydim)
{
	GRID_STRIDE(i, n) x[i] = __fadd_rn(x[i], y[i % ydim]);
}

extern "C" int cuda_add(float *x, const float *y, size_t n, void *stream, char *err,
			size_t errlen)
{
	if (!n)
		return 0;
	if (n > UINT32_MAX)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_add: %zu elements", n);
	CU_KERNEL(1, emu_add(x, y, n, (uint32_t)n));
	add_k<<<ew_grid(n), EW_THREADS, 0, CU_STREAM(stream)>>>(x, y, n, (uint32_t)n);
	return cu_launched("cuda_add", err, errlen);
}

extern "C" int cuda_add_bias(float *y, const float *b, uint32_t n, uint32_t dim, void *stream,
			     char *err, size_t errlen)
{
	size_t total = (size_t)n * dim;
	if (!total || !b)
		return 0;
	CU_KERNEL(1, emu_add(y, b, total, dim));
	add_k<<<ew_grid(total), EW_THREADS, 0, CU_STREAM(stream)>>>(y, b, total, dim);
	return cu_launched("cuda_add_bias", err, errlen);
}

__global__ void gather_k(float *__restrict__ y, const float *__restrict__ x,
			 const uint32_t *__restrict__ rows, uint32_t dim, size_t n)
{
	GRID_STRIDE(i, n) y[i] = x[(size_t)rows[i / dim] * dim + i % dim];
}

extern "C" int cuda_gather_rows(float *y, const float *x, const uint32_t *rows, uint32_t n_rows,
				uint32_t dim, void *stream, char *err, size_t errlen)
{
	size_t total = (size_t)n_rows * dim;
	if (!total)
		return 0;
	CU_KERNEL(1, emu_gather(y, x, rows, n_rows, dim));
	gather_k<<<ew_grid(total), EW_THREADS, 0, CU_STREAM(stream)>>>(y, x, rows, dim, total);
	return cu_launched("cuda_gather_rows", err, errlen);
}
