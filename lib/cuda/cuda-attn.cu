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
 * cuda_rope_kv fuses RoPE of q and k, q's scaling/rounding and that write:
 * one block per token, rotations first, a barrier, then the stores (the
 * same bits as the four ops).
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
 * Split (flash-decoding, cuda_attn_args.part): grid z = segments of
 * CUDA_ATTN_SEG positions from lo; a block past its entry's segments
 * leaves at once; each writes its unnormalised acc, m and l, and
 * attn_combine_k (grid (n_rows, n_head_kv)) merges them in segment order.
 * Without it a long context is one block's serial walk, which leaves a
 * batch-1 decode with n_head_kv busy SMs.
 * Limits (cuda_plan_attn): head dims <= 256, grp <= 16, grp * head_dim_v
 * <= 2048.
 * Checked: not yet run on a GPU (test-backend checks it there). The kernel
 * is written as CU_HD phases, and cuda_host_attn runs those very phases
 * thread by thread on the CPU: tests/unit/test-cuda-plan.c compares that
 * with a double-precision reference over a CPU cache (F16 and F32, GQA,
 * tails of head dims, tables of many blocks, two tiles, windows, rows).
 * ptxas -v (sm_90): attention 47 registers, KV write 22, no spills.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda-common.cuh"
#include "cuda/cuda-emu.h"
#include "cuda/cuda-host.h"

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
CU_HD float kv_get(const E *p);
template <>
CU_HD float kv_get<float>(const float *p) { return *p; }
template <>
CU_HD float kv_get<uint16_t>(const uint16_t *p) { return cu_h2f(*p); }

CU_HD size_t k_off(const cuda_kv_layout &L, uint32_t layer, uint32_t slot)
{
	return (size_t)(slot / L.block_size) * L.block_elems + layer * L.layer_elems +
	       (size_t)(slot % L.block_size) * L.kdim;
}

CU_HD size_t v_off(const cuda_kv_layout &L, uint32_t layer, uint32_t slot)
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
	CU_KERNEL(1, emu_kv_write(kv, L, layer, k, v, slots, n));
	if (L->elem_bytes == 2)
		kv_write_k<uint16_t><<<n, 256, 0, CU_STREAM(stream)>>>((uint16_t *)kv, *L, layer, k, v,
								       slots);
	else
		kv_write_k<float><<<n, 256, 0, CU_STREAM(stream)>>>((float *)kv, *L, layer, k, v, slots);
	return cu_launched("cuda_kv_write", err, errlen);
}

/* ---- fused: RoPE of q and k, q's preparation, the KV write ------------------ */

/* One token's view of cuda_rope_kv (cuda-ops.h): the phases below are CU_HD
 * so that the emulation runs the kernel's own indexing. */
struct rkv {
	float *q, *k;            /* (n, n_head * hd), (n, L.kdim) */
	const float *v, *cs;     /* (n, L.vdim), (n, n_rot) */
	cuda_kv_layout L;
	uint32_t layer, n_head, hd, half;
	bool neox, prep_q, round_q;
	float scale_q;
};

/* Rotate pair p of token t: pairs of q's heads first, then k's. */
CU_HD void rkv_rotate(const rkv &a, uint32_t t, uint32_t p)
{
	uint32_t h = p / a.half, i = p % a.half;
	float *xh = h < a.n_head ? a.q + ((size_t)t * a.n_head + h) * a.hd
				 : a.k + (size_t)t * a.L.kdim + (size_t)(h - a.n_head) * a.hd;
	cu_rope_pair(xh, a.cs + (size_t)t * 2 * a.half, i, a.half, a.neox);
}

/* q element e of token t as cuda_scale_round leaves it */
CU_HD void rkv_prep(const rkv &a, uint32_t t, uint32_t e)
{
	float *x = a.q + (size_t)t * a.n_head * a.hd + e, v = cu_mul(*x, a.scale_q);
	*x = a.round_q ? cu_h2f(cu_f2h(v)) : v;
}

/* One block per token: (1) the threads rotate the q and k pairs in place;
 * (2) after a barrier (the block's global writes are then visible to all
 * its threads), q is scaled / rounded and the K and V rows go to the slot.
 * The arithmetic is rope_k's, scale_round_k's and kv_write_k's: the same
 * bits as those three ops run one after the other. */
template <typename E>
__global__ void rope_kv_k(rkv a, E *kv, const uint32_t *__restrict__ slots)
{
	const uint32_t t = blockIdx.x, slot = slots[t];
	const uint32_t pairs = (a.n_head + a.L.kdim / a.hd) * a.half;
	for (uint32_t p = threadIdx.x; p < pairs; p += blockDim.x)
		rkv_rotate(a, t, p);
	__syncthreads();
	if (a.prep_q)
		for (uint32_t e = threadIdx.x; e < a.n_head * a.hd; e += blockDim.x)
			rkv_prep(a, t, e);
	E *kr = kv + k_off(a.L, a.layer, slot), *vr = kv + v_off(a.L, a.layer, slot);
	for (uint32_t i = threadIdx.x; i < a.L.kdim; i += blockDim.x)
		kv_put(kr + i, a.k[(size_t)t * a.L.kdim + i]);
	for (uint32_t i = threadIdx.x; i < a.L.vdim; i += blockDim.x)
		kv_put(vr + i, a.v[(size_t)t * a.L.vdim + i]);
}

/* The kernel's phases on the host, token by token. */
static int emu_rope_kv(const rkv &a, void *kv, const uint32_t *slots, uint32_t n)
{
	const uint32_t pairs = (a.n_head + a.L.kdim / a.hd) * a.half;
	for (uint32_t t = 0; t < n; t++) {
		for (uint32_t p = 0; p < pairs; p++)
			rkv_rotate(a, t, p);
		for (uint32_t e = 0; a.prep_q && e < a.n_head * a.hd; e++)
			rkv_prep(a, t, e);
	}
	return emu_kv_write(kv, &a.L, a.layer, a.k, a.v, slots, n);
}

extern "C" int cuda_rope_kv(const struct cuda_rope_kv_args *r, void *stream, char *err,
			    size_t errlen)
{
	const cuda_kv_layout &L = r->L;
	if (!r->n)
		return 0;
	if (r->layer >= L.n_layer || (L.elem_bytes != 2 && L.elem_bytes != 4) || !r->head_dim ||
	    r->n_rot > r->head_dim || r->n_rot % 2 || L.kdim % r->head_dim)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_rope_kv: layer %u of %u, %u-byte "
			       "elements, n_rot %u, head_dim %u, kdim %u", r->layer, L.n_layer,
			       L.elem_bytes, r->n_rot, r->head_dim, L.kdim);
	rkv a = { r->q, r->k, r->v, r->cs, L, r->layer, r->n_head, r->head_dim, r->n_rot / 2,
		  r->mode == 1, r->round_q || r->scale_q != 1.0f, r->round_q != 0, r->scale_q };
	CU_KERNEL(1, emu_rope_kv(a, r->kv, r->slots, r->n));
	if (L.elem_bytes == 2)
		rope_kv_k<uint16_t><<<r->n, 256, 0, CU_STREAM(stream)>>>(a, (uint16_t *)r->kv, r->slots);
	else
		rope_kv_k<float><<<r->n, 256, 0, CU_STREAM(stream)>>>(a, (float *)r->kv, r->slots);
	return cu_launched("cuda_rope_kv", err, errlen);
}

/* ---- attention -------------------------------------------------------------- */

/* One (entry, KV head) block's view: its shared arrays and what it
 * attends. Dynamic shared memory: q (grp * hk) | p (grp * TILE) | m, l,
 * corr (grp each) | slots (TILE). The phases below are CU_HD so that
 * cuda_host_attn runs them, thread by thread, on the CPU (unit tests); the
 * kernel runs the same calls between barriers. */
struct at_blk {
	float *qs, *ps, *ms, *ls, *cs;
	uint32_t *slot;
	uint32_t grp, hk, hv, t, h, pos, lo;
	uint32_t j_lo, j_hi;     /* this block's positions: all of [lo, pos], or a segment */
	uint32_t n_seg_e;        /* the entry's segments (split), else 1 */
	const uint32_t *tab;
};

CU_HD bool at_split(const cuda_attn_args &a)
{
	return a.part && a.n_seg > 1;
}

static size_t at_smem_words(const cuda_attn_args &a)
{
	size_t grp = a.n_head / a.n_head_kv;
	return grp * a.head_dim_k + grp * AT_TILE + 3 * grp + AT_TILE;
}

CU_HD void at_setup(const cuda_attn_args &a, uint32_t j, uint32_t h, uint32_t sg, float *sm,
		    at_blk &b)
{
	b.grp = a.n_head / a.n_head_kv;
	b.hk = a.head_dim_k;
	b.hv = a.head_dim_v;
	b.h = h;
	b.t = a.rows ? a.rows[j] : j;
	b.qs = sm;
	b.ps = b.qs + b.grp * b.hk;
	b.ms = b.ps + b.grp * AT_TILE;
	b.ls = b.ms + b.grp;
	b.cs = b.ls + b.grp;
	b.slot = (uint32_t *)(b.cs + b.grp);
	b.pos = a.pos[b.t];
	b.lo = a.window && b.pos + 1 > a.window ? b.pos + 1 - a.window : 0;
	b.tab = a.tab + a.tab_off[b.t];
	b.j_lo = b.lo;
	b.j_hi = b.pos;
	b.n_seg_e = 1;
	if (at_split(a)) {
		b.n_seg_e = (b.pos + 1 - b.lo + CUDA_ATTN_SEG - 1) / CUDA_ATTN_SEG;
		b.j_lo = b.lo + sg * CUDA_ATTN_SEG;
		b.j_hi = b.j_lo + CUDA_ATTN_SEG - 1 < b.pos ? b.j_lo + CUDA_ATTN_SEG - 1 : b.pos;
	}
}

/* Segment s of (row j, KV head h): grp * hv accumulators, grp maxima, grp sums. */
CU_HD float *at_part(const cuda_attn_args &a, uint32_t j, uint32_t h, uint32_t s)
{
	uint32_t grp = a.n_head / a.n_head_kv, w = grp * a.head_dim_v + 2 * grp;
	return a.part + (((size_t)j * a.n_head_kv + h) * a.n_seg + s) * w;
}

/* A split block's results, unnormalised, for at_combine. */
CU_HD void at_part_out(const cuda_attn_args &a, const at_blk &b, uint32_t j, uint32_t sg,
		       uint32_t tid, const float *acc)
{
	float *p = at_part(a, j, b.h, sg);
	CU_UNROLL
	for (int i = 0; i < AT_ACC; i++) {
		uint32_t k = tid + AT_THREADS * i;
		if (k < b.grp * b.hv)
			p[k] = acc[i];
	}
	if (tid < b.grp) {
		p[b.grp * b.hv + tid] = b.ms[tid];
		p[b.grp * b.hv + b.grp + tid] = b.ls[tid];
	}
}

/* out of (row j, KV head h) from its segments, in segment order: sum_s
 * acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s. */
CU_HD void at_combine(const cuda_attn_args &a, uint32_t j, uint32_t h, uint32_t tid)
{
	const uint32_t grp = a.n_head / a.n_head_kv, hv = a.head_dim_v;
	const uint32_t t = a.rows ? a.rows[j] : j, pos = a.pos[t];
	const uint32_t lo = a.window && pos + 1 > a.window ? pos + 1 - a.window : 0;
	const uint32_t ns = (pos + 1 - lo + CUDA_ATTN_SEG - 1) / CUDA_ATTN_SEG;
	float *o = a.out + ((size_t)j * a.n_head + (size_t)h * grp) * hv;
	for (uint32_t k = tid; k < grp * hv; k += AT_THREADS) {
		uint32_t g = k / hv;
		float mx = -INFINITY, num = 0.0f, den = 0.0f;
		for (uint32_t s = 0; s < ns; s++)
			mx = fmaxf(mx, at_part(a, j, h, s)[grp * hv + g]);
		for (uint32_t s = 0; s < ns; s++) {
			const float *p = at_part(a, j, h, s);
			float f = expf(p[grp * hv + g] - mx);
			num = fmaf(p[k], f, num);
			den = fmaf(p[grp * hv + grp + g], f, den);
		}
		o[k] = num / den;
	}
}

/* q of the group into shared memory; running max and sum reset */
CU_HD void at_load(const cuda_attn_args &a, const at_blk &b, uint32_t tid)
{
	const float *qg = a.q + ((size_t)b.t * a.n_head + (size_t)b.h * b.grp) * b.hk;
	for (uint32_t i = tid; i < b.grp * b.hk; i += AT_THREADS)
		b.qs[i] = qg[i];
	if (tid < b.grp) {
		b.ms[tid] = -INFINITY;
		b.ls[tid] = 0.0f;
	}
}

/* the cache slots of the tile's positions j0 + i, through the block table */
CU_HD void at_slots(const cuda_attn_args &a, const at_blk &b, uint32_t j0, uint32_t tn,
		    uint32_t tid)
{
	if (tid < tn) {
		uint32_t p = j0 + tid;
		b.slot[tid] = b.tab[p / a.L.block_size] * a.L.block_size + p % a.L.block_size;
	}
}

/* lane's part of q_g . k_jj: dimensions lane, lane + 32, ... */
template <typename E>
CU_HD float at_partial(const cuda_attn_args &a, const at_blk &b, const E *kv, uint32_t jj,
		       uint32_t g, uint32_t lane)
{
	const E *kr = kv + k_off(a.L, a.layer, b.slot[jj]) + (size_t)b.h * b.hk;
	float s = 0.0f;
	for (uint32_t d = lane; d < b.hk; d += 32)
		s = fmaf(b.qs[g * b.hk + d], kv_get(kr + d), s);
	return s;
}

/* head tid's online softmax over the tile's scores, in position order */
CU_HD void at_softmax(const cuda_attn_args &a, const at_blk &b, uint32_t tn, uint32_t tid)
{
	if (tid >= b.grp)
		return;
	float *pg = b.ps + tid * AT_TILE, mx = b.ms[tid];
	for (uint32_t jj = 0; jj < tn; jj++)
		mx = fmaxf(mx, pg[jj]);
	float corr = expf(b.ms[tid] - mx), sum = 0.0f; /* exp(-inf) = 0 on the first tile */
	for (uint32_t jj = 0; jj < tn; jj++) {
		float p = expf(pg[jj] - mx);
		if (a.round_p)
			p = cu_h2f(cu_f2h(p));
		pg[jj] = p;
		sum += p;
	}
	b.ls[tid] = b.ls[tid] * corr + sum;
	b.ms[tid] = mx;
	b.cs[tid] = corr;
}

/* thread tid's accumulators (head, dim) k = tid + THREADS i: acc = acc * corr + P V */
template <typename E>
CU_HD void at_mix(const cuda_attn_args &a, const at_blk &b, const E *kv, uint32_t tn,
		  uint32_t tid, float *acc)
{
	CU_UNROLL
	for (int i = 0; i < AT_ACC; i++) {
		uint32_t k = tid + AT_THREADS * i, g = k / b.hv, d = k % b.hv;
		if (k < b.grp * b.hv) {
			float s = acc[i] * b.cs[g];
			for (uint32_t jj = 0; jj < tn; jj++)
				s = fmaf(b.ps[g * AT_TILE + jj],
					 kv_get(kv + v_off(a.L, a.layer, b.slot[jj]) + (size_t)b.h * b.hv + d), s);
			acc[i] = s;
		}
	}
}

CU_HD void at_out(const cuda_attn_args &a, const at_blk &b, uint32_t j, uint32_t tid,
		  const float *acc)
{
	float *o = a.out + ((size_t)j * a.n_head + (size_t)b.h * b.grp) * b.hv;
	CU_UNROLL
	for (int i = 0; i < AT_ACC; i++) {
		uint32_t k = tid + AT_THREADS * i;
		if (k < b.grp * b.hv)
			o[k] = acc[i] / b.ls[k / b.hv];
	}
}

CU_HD uint32_t at_tile_len(const at_blk &b, uint32_t j0)
{
	return b.j_hi + 1 - j0 < AT_TILE ? b.j_hi + 1 - j0 : AT_TILE;
}

template <typename E>
__global__ void __launch_bounds__(AT_THREADS)
attn_k(cuda_attn_args a, const E *__restrict__ kv)
{
	extern __shared__ float sm[];
	const uint32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
	at_blk b;
	at_setup(a, blockIdx.x, blockIdx.y, blockIdx.z, sm, b);
	if (blockIdx.z >= b.n_seg_e)
		return; /* past this entry's segments: the whole block leaves */
	at_load(a, b, tid);
	float acc[AT_ACC];
#pragma unroll
	for (int i = 0; i < AT_ACC; i++)
		acc[i] = 0.0f;
	__syncthreads();
	for (uint32_t j0 = b.j_lo; j0 <= b.j_hi; j0 += AT_TILE) {
		const uint32_t tn = at_tile_len(b, j0);
		at_slots(a, b, j0, tn, tid);
		__syncthreads();
		for (uint32_t jj = warp; jj < tn; jj += AT_THREADS / 32) /* (1) scores, a warp per key */
			for (uint32_t g = 0; g < b.grp; g++) {
				float s = cu_warp_sum(at_partial(a, b, kv, jj, g, lane));
				if (lane == 0)
					b.ps[g * AT_TILE + jj] = s * a.scale;
			}
		__syncthreads();
		at_softmax(a, b, tn, tid);                              /* (2) */
		__syncthreads();
		at_mix(a, b, kv, tn, tid, acc);                         /* (3) */
		__syncthreads(); /* ps and slot are rewritten by the next tile */
	}
	if (at_split(a))
		at_part_out(a, b, blockIdx.x, blockIdx.z, tid, acc);
	else
		at_out(a, b, blockIdx.x, tid, acc);
}

__global__ void __launch_bounds__(AT_THREADS) attn_combine_k(cuda_attn_args a)
{
	at_combine(a, blockIdx.x, blockIdx.y, threadIdx.x);
}

/* One block (row j, KV head h, segment sg) of the kernel on the CPU. */
template <typename E>
static void host_block(const cuda_attn_args &a, const E *kv, float *sm, float (*acc)[AT_ACC],
		       uint32_t j, uint32_t h, uint32_t sg)
{
	at_blk b;
	at_setup(a, j, h, sg, sm, b);
	if (sg >= b.n_seg_e)
		return;
	memset(acc, 0, sizeof(float) * AT_ACC * AT_THREADS);
	for (uint32_t tid = 0; tid < AT_THREADS; tid++)
		at_load(a, b, tid);
	for (uint32_t j0 = b.j_lo; j0 <= b.j_hi; j0 += AT_TILE) {
		const uint32_t tn = at_tile_len(b, j0);
		for (uint32_t tid = 0; tid < AT_THREADS; tid++)
			at_slots(a, b, j0, tn, tid);
		for (uint32_t jj = 0; jj < tn; jj++)
			for (uint32_t g = 0; g < b.grp; g++) {
				float v[32], w[32];
				for (uint32_t l = 0; l < 32; l++)
					v[l] = at_partial(a, b, kv, jj, g, l);
				for (int o = 16; o > 0; o >>= 1) { /* cu_warp_sum's xor tree */
					for (int l = 0; l < 32; l++)
						w[l] = v[l] + v[l ^ o];
					memcpy(v, w, sizeof v);
				}
				b.ps[g * AT_TILE + jj] = v[0] * a.scale;
			}
		for (uint32_t tid = 0; tid < AT_THREADS; tid++)
			at_softmax(a, b, tn, tid);
		for (uint32_t tid = 0; tid < AT_THREADS; tid++)
			at_mix(a, b, kv, tn, tid, acc[tid]);
	}
	for (uint32_t tid = 0; tid < AT_THREADS; tid++) {
		if (at_split(a))
			at_part_out(a, b, j, sg, tid, acc[tid]);
		else
			at_out(a, b, j, tid, acc[tid]);
	}
}

/* The kernel's blocks on the CPU, thread by thread, barrier by barrier,
 * then the combine of a split. */
template <typename E>
static void host_attn(const cuda_attn_args &a, const E *kv, float *sm, float (*acc)[AT_ACC])
{
	uint32_t n_rows = a.rows ? a.n_rows : a.n, n_seg = at_split(a) ? a.n_seg : 1;
	for (uint32_t j = 0; j < n_rows; j++)
		for (uint32_t h = 0; h < a.n_head_kv; h++)
			for (uint32_t sg = 0; sg < n_seg; sg++)
				host_block(a, kv, sm, acc, j, h, sg);
	for (uint32_t j = 0; j < n_rows && at_split(a); j++)
		for (uint32_t h = 0; h < a.n_head_kv; h++)
			for (uint32_t tid = 0; tid < AT_THREADS; tid++)
				at_combine(a, j, h, tid);
}

extern "C" int cuda_host_attn(const struct cuda_attn_args *a)
{
	if (cuda_plan_attn(a->n_head, a->n_head_kv, a->head_dim_k, a->head_dim_v, NULL, 0))
		return CUDA_OP_EINVAL;
	float *sm = (float *)calloc(at_smem_words(*a), sizeof(float));
	float(*acc)[AT_ACC] = (float(*)[AT_ACC])calloc(AT_THREADS, sizeof(float) * AT_ACC);
	if (sm && acc) {
		if (a->L.elem_bytes == 2)
			host_attn(*a, (const uint16_t *)a->kv, sm, acc);
		else
			host_attn(*a, (const float *)a->kv, sm, acc);
	}
	free(sm);
	free(acc);
	return sm && acc ? 0 : CUDA_OP_ENOMEM;
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
	cuda_attn_args c = *a;
	CU_KERNEL(at_split(c) ? 2 : 1, cuda_host_attn(a));
	size_t smem = at_smem_words(*a) * sizeof(float); /* uint32 slots: same size */
	dim3 grid(n_rows, a->n_head_kv, at_split(c) ? c.n_seg : 1);
	if (a->L.elem_bytes == 2)
		attn_k<uint16_t><<<grid, AT_THREADS, smem, CU_STREAM(stream)>>>(c, (const uint16_t *)a->kv);
	else
		attn_k<float><<<grid, AT_THREADS, smem, CU_STREAM(stream)>>>(c, (const float *)a->kv);
	int rc = cu_launched("cuda_attn", err, errlen);
	if (rc || !at_split(c))
		return rc;
	attn_combine_k<<<dim3(n_rows, a->n_head_kv), AT_THREADS, 0, CU_STREAM(stream)>>>(c);
	return cu_launched("cuda_attn (combine)", err, errlen);
}
