/*
 * cuda-attn.cu — the paged KV cache on the device: writing K/V rows into
 * their slots (cuda_kv_write) and attention through the block tables for
 * decode and causal prefill alike (cuda_attn).
 *
 * Layout read and written: cuda-ops.h's struct cuda_kv_layout (the CPU
 * backend's, kv-store.c): per block, per layer, K (block_size, kdim) then
 * V (block_size, vdim); head h's part of a row starts at h * head_dim.
 *
 * cuda_kv_write: one 256-thread block per token, threads over the row's
 * elements (coalesced), f32 -> f16 round to nearest even for an F16 cache.
 *
 * cuda_attn, flash-attention style: grid (n_rows, n_head_kv), one block of
 * CUDA_ATTN_THREADS (4 warps) per (entry, KV head), serving its group of
 * grp = n_head / n_head_kv query heads with one read of each K/V row.
 *   shared: q (grp, head_dim_k) f32; scores/probabilities (grp, TILE);
 *           the TILE slots' cache offsets; running max m, sum l, rescale
 *           factor per head.
 *   per tile of TILE = 32 positions from lo (lo = pos + 1 - window for a
 *   sliding layer, else 0; the tiles start at lo, so they depend only on
 *   the entry): (1) warp w scores positions w, w + 4, ...: lanes split the
 *   head dimension, partial products summed by the fixed xor tree; (2)
 *   thread g < grp updates head g's online softmax sequentially over the
 *   tile (m_new = max(m, tile max), p = exp(s - m_new), rounded to half
 *   when round_p, l = l * exp(m - m_new) + sum p); (3) every thread owns
 *   (head, dim) accumulators k = tid + 128 i (i < 16) and does acc =
 *   acc * corr + sum_j p_j v_j[d] in position order.
 *   out = acc / l. Each (entry, head) thus runs the same operations in the
 *   same order whatever the batch: bitwise batch invariant.
 * Differences from the CPU (attn.c): softmax is online (rescaled) rather
 * than two-pass, and round_p rounds p relative to the running max instead
 * of the normalised probabilities: a few ulp of f16 in p, relative 1e-3
 * at most on an output element; test-backend's tolerance says so.
 * Limits (cuda_plan_attn): head dims <= 256, grp <= 16, grp * head_dim_v
 * <= 2048. Long contexts run one block per (entry, KV head) with no split
 * over the sequence (a flash-decoding split is future work).
 * Not yet run on a GPU; test-backend checks it. Registers: nvcc
 * --ptxas-options=-v, noted in the commit that added this file.
 */
#include <math.h>

#include "cuda/cuda-common.cuh"

#define AT_TILE CUDA_ATTN_TILE
#define AT_THREADS CUDA_ATTN_THREADS
#define AT_ACC (CUDA_ATTN_MAX_ACC / CUDA_ATTN_THREADS)

/* ---- KV writes ------------------------------------------------------------ */

template <typename E>
__device__ __forceinline__ void kv_put(E *p, float v);
template <>
__device__ __forceinline__ void kv_put<float>(float *p, float v) { *p = v; }
template <>
__device__ __forceinline__ void kv_put<uint16_t>(uint16_t *p, float v) { *p = cu_f2h(v); }

template <typename E>
__device__ __forceinline__ float kv_get(const E *p);
template <>
__device__ __forceinline__ float kv_get<float>(const float *p) { return *p; }
template <>
__device__ __forceinline__ float kv_get<uint16_t>(const uint16_t *p) { return cu_h2f(*p); }

__device__ __forceinline__ size_t k_off(const cuda_kv_layout &L, uint32_t layer, uint32_t slot)
{
	return (size_t)(slot / L.block_size) * L.block_elems + layer * L.layer_elems +
	       (size_t)(slot % L.block_size) * L.kdim;
}

__device__ __forceinline__ size_t v_off(const cuda_kv_layout &L, uint32_t layer, uint32_t slot)
{
	return (size_t)(slot / L.block_size) * L.block_elems + layer * L.layer_elems +
	       (size_t)L.block_size * L.kdim + (size_t)(slot % L.block_size) * L.vdim;
}

template <typename E>
__global__ void kv_write_k(E *kv, cuda_kv_layout L, uint32_t layer, const float *__restrict__ k,
			   const float *__restrict__ v, const uint32_t *__restrict__ slots)
{
	const uint32_t t = blockIdx.x, slot = slots[t];
	E *kr = kv + k_off(L, layer, slot), *vr = kv + v_off(L, layer, slot);
	for (uint32_t i = threadIdx.x; i < L.kdim; i += blockDim.x)
		kv_put(kr + i, k[(size_t)t * L.kdim + i]);
	for (uint32_t i = threadIdx.x; i < L.vdim; i += blockDim.x)
		kv_put(vr + i, v[(size_t)t * L.vdim + i]);
}

extern "C" int cuda_kv_write(void *kv, const struct cuda_kv_layout *L, uint32_t layer,
			     const float *k, const float *v, const uint32_t *slots, uint32_t n,
			     void *stream, char *err, size_t errlen)
{
	if (!n)
		return 0;
	if (layer >= L->n_layer || (L->elem_bytes != 2 && L->elem_bytes != 4))
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_kv_write: layer %u of %u, %u-byte "
			       "elements", layer, L->n_layer, L->elem_bytes);
	if (L->elem_bytes == 2)
		kv_write_k<uint16_t><<<n, 256, 0, CU_STREAM(stream)>>>((uint16_t *)kv, *L, layer, k, v,
								       slots);
	else
		kv_write_k<float><<<n, 256, 0, CU_STREAM(stream)>>>((float *)kv, *L, layer, k, v, slots);
	return cu_launched("cuda_kv_write", err, errlen);
}

/* ---- attention -------------------------------------------------------------- */

/* Dynamic shared memory: q (grp * hk) | p (grp * TILE) | m, l, corr (grp each) | slots (TILE) */
template <typename E>
__global__ void __launch_bounds__(AT_THREADS)
attn_k(cuda_attn_args a, const E *__restrict__ kv)
{
	extern __shared__ float sm[];
	const uint32_t grp = a.n_head / a.n_head_kv, hk = a.head_dim_k, hv = a.head_dim_v;
	const uint32_t j = blockIdx.x, h = blockIdx.y;
	const uint32_t t = a.rows ? a.rows[j] : j;
	const uint32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	float *qs = sm, *ps = qs + grp * hk, *ms = ps + grp * AT_TILE, *ls = ms + grp,
	      *cs = ls + grp;
	uint32_t *slot = (uint32_t *)(cs + grp);
	const uint32_t pos = a.pos[t];
	const uint32_t lo = a.window && pos + 1 > a.window ? pos + 1 - a.window : 0;
	const uint32_t *tab = a.tab + a.tab_off[t];

	const float *qg = a.q + ((size_t)t * a.n_head + (size_t)h * grp) * hk;
	for (uint32_t i = tid; i < grp * hk; i += AT_THREADS)
		qs[i] = qg[i];
	if (tid < grp) {
		ms[tid] = -INFINITY;
		ls[tid] = 0.0f;
	}
	float acc[AT_ACC];
#pragma unroll
	for (int i = 0; i < AT_ACC; i++)
		acc[i] = 0.0f;
	__syncthreads();

	for (uint32_t j0 = lo; j0 <= pos; j0 += AT_TILE) {
		const uint32_t tn = pos + 1 - j0 < AT_TILE ? pos + 1 - j0 : AT_TILE;
		if (tid < tn) {
			uint32_t p = j0 + tid;
			slot[tid] = tab[p / a.L.block_size] * a.L.block_size + p % a.L.block_size;
		}
		__syncthreads();
		/* (1) scores */
		for (uint32_t jj = warp; jj < tn; jj += AT_THREADS / 32) {
			const E *kr = kv + k_off(a.L, a.layer, slot[jj]) + (size_t)h * hk;
			for (uint32_t g = 0; g < grp; g++) {
				float s = 0.0f;
				for (uint32_t d = lane; d < hk; d += 32)
					s = fmaf(qs[g * hk + d], kv_get(kr + d), s);
				s = cu_warp_sum(s);
				if (lane == 0)
					ps[g * AT_TILE + jj] = s * a.scale;
			}
		}
		__syncthreads();
		/* (2) online softmax, one thread per head, in position order */
		if (tid < grp) {
			float *pg = ps + tid * AT_TILE, mx = ms[tid];
			for (uint32_t jj = 0; jj < tn; jj++)
				mx = fmaxf(mx, pg[jj]);
			float corr = expf(ms[tid] - mx), sum = 0.0f; /* exp(-inf) = 0 on the first tile */
			for (uint32_t jj = 0; jj < tn; jj++) {
				float p = expf(pg[jj] - mx);
				if (a.round_p)
					p = cu_h2f(cu_f2h(p));
				pg[jj] = p;
				sum += p;
			}
			ls[tid] = ls[tid] * corr + sum;
			ms[tid] = mx;
			cs[tid] = corr;
		}
		__syncthreads();
		/* (3) acc = acc * corr + P V, position order */
#pragma unroll
		for (int i = 0; i < AT_ACC; i++) {
			uint32_t k = tid + AT_THREADS * i, g = k / hv, d = k % hv;
			if (k < grp * hv) {
				float s = acc[i] * cs[g];
				for (uint32_t jj = 0; jj < tn; jj++)
					s = fmaf(ps[g * AT_TILE + jj],
						 kv_get(kv + v_off(a.L, a.layer, slot[jj]) + (size_t)h * hv + d), s);
				acc[i] = s;
			}
		}
		__syncthreads(); /* ps and slot are rewritten by the next tile */
	}
	float *o = a.out + ((size_t)j * a.n_head + (size_t)h * grp) * hv;
#pragma unroll
	for (int i = 0; i < AT_ACC; i++) {
		uint32_t k = tid + AT_THREADS * i;
		if (k < grp * hv)
			o[k] = acc[i] / ls[k / hv];
	}
}

extern "C" int cuda_attn(const struct cuda_attn_args *a, void *stream, char *err, size_t errlen)
{
	char e[200];
	uint32_t n_rows = a->rows ? a->n_rows : a->n;
	if (cuda_plan_attn(a->n_head, a->n_head_kv, a->head_dim_k, a->head_dim_v, e, sizeof e))
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "%s", e);
	if (a->layer >= a->L.n_layer || (a->L.elem_bytes != 2 && a->L.elem_bytes != 4) ||
	    a->L.kdim != a->n_head_kv * a->head_dim_k || a->L.vdim != a->n_head_kv * a->head_dim_v)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_attn: cache layout does not match "
			       "the heads (layer %u, kdim %u, vdim %u)", a->layer, a->L.kdim, a->L.vdim);
	if (!n_rows)
		return 0;
	uint32_t grp = a->n_head / a->n_head_kv;
	size_t smem = ((size_t)grp * a->head_dim_k + (size_t)grp * AT_TILE + 3 * grp) * sizeof(float) +
		      AT_TILE * sizeof(uint32_t);
	dim3 grid(n_rows, a->n_head_kv);
	cuda_attn_args c = *a;
	if (a->L.elem_bytes == 2)
		attn_k<uint16_t><<<grid, AT_THREADS, smem, CU_STREAM(stream)>>>(c, (const uint16_t *)a->kv);
	else
		attn_k<float><<<grid, AT_THREADS, smem, CU_STREAM(stream)>>>(c, (const float *)a->kv);
	return cu_launched("cuda_attn", err, errlen);
}
