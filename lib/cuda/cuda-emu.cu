/*
 * cuda-emu.cu — the host emulation of the CUDA device (cuda-emu.h): what
 * each cuda-ops.h function does when cuda_set_emulation(1) is on. The
 * weight decoder, matvec lanes and attention phases are the kernels' own
 * CU_HD code (cuda_host_*); the element-wise ops repeat their kernels'
 * arithmetic in loops. Emulated cuBLAS: f16 inputs, fmaf accumulation in
 * column order (not cuBLAS's order, which nothing may rely on).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda-common.cuh"
#include "cuda/cuda-emu.h"
#include "cuda/cuda-host.h"

int cuda_emu;

static int emu_token_v;    /* the address every stream / handle token points at */
/* The emulated device's memory: emu_total bytes in all (SIZE_MAX: no limit,
 * reported as EMU_DEFAULT_TOTAL), emu_used of them held by live
 * allocations. Each allocation carries its size in a header of EMU_HDR
 * bytes (a multiple of 16, so pointers keep malloc's alignment), so a free
 * gives its bytes back and cudaMemGetInfo's answer is the truth. Atomics:
 * several models' threads allocate at once. */
#define EMU_HDR 64
#define EMU_DEFAULT_TOTAL ((size_t)1 << 34)
static size_t emu_total = SIZE_MAX;
static size_t emu_used;

extern "C" void cuda_set_emulation(int on)
{
	cuda_emu = on;
	__atomic_store_n(&emu_total, SIZE_MAX, __ATOMIC_RELAXED);
}

extern "C" void cuda_emu_set_budget(size_t bytes)
{
	__atomic_store_n(&emu_total, bytes, __ATOMIC_RELAXED);
}

/* Take bytes of the device's memory, or 0 when they are not free. */
static int emu_take(size_t bytes)
{
	size_t used = __atomic_load_n(&emu_used, __ATOMIC_RELAXED);
	do {
		size_t total = __atomic_load_n(&emu_total, __ATOMIC_RELAXED);
		if (used > total || bytes > total - used)
			return 0;
	} while (!__atomic_compare_exchange_n(&emu_used, &used, used + bytes, 0, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 1;
}

int emu_dev_info(int index, struct cuda_dev_info *info)
{
	memset(info, 0, sizeof *info);
	snprintf(info->name, sizeof info->name, "emulated");
	(void)index;
	info->cc_major = 9;
	return emu_mem_info(&info->free_bytes, &info->total_bytes);
}

int emu_malloc(void **p, size_t bytes)
{
	unsigned char *b;
	*p = NULL;
	if (!bytes)
		return 0;
	if (bytes > SIZE_MAX - EMU_HDR || !emu_take(bytes))
		return CUDA_OP_ENOMEM;
	if (!(b = (unsigned char *)malloc(bytes + EMU_HDR))) {
		__atomic_fetch_sub(&emu_used, bytes, __ATOMIC_RELAXED);
		return CUDA_OP_ENOMEM;
	}
	memcpy(b, &bytes, sizeof bytes);
	*p = b + EMU_HDR;
	memset(*p, 0xFF, bytes);
	return 0;
}

void emu_free(void *p)
{
	size_t bytes;
	if (!p)
		return;
	unsigned char *b = (unsigned char *)p - EMU_HDR;
	memcpy(&bytes, b, sizeof bytes);
	__atomic_fetch_sub(&emu_used, bytes, __ATOMIC_RELAXED);
	free(b);
}

/* Pinned host memory is host memory: not the device's. */
int emu_host_malloc(void **p, size_t bytes)
{
	if (!(*p = malloc(bytes)))
		return CUDA_OP_ENOMEM;
	memset(*p, 0xFF, bytes);
	return 0;
}

int emu_sync(void) { return 0; }

int emu_memset(void *d, int v, size_t bytes)
{
	memset(d, v, bytes);
	return 0;
}

int emu_copy(void *d, const void *s, size_t bytes)
{
	if (bytes)
		memcpy(d, s, bytes);
	return 0;
}

int emu_token(void **p)
{
	*p = &emu_token_v;
	return 0;
}

int emu_mem_info(size_t *free_bytes, size_t *total_bytes)
{
	size_t total = __atomic_load_n(&emu_total, __ATOMIC_RELAXED);
	size_t used = __atomic_load_n(&emu_used, __ATOMIC_RELAXED);
	*total_bytes = total == SIZE_MAX ? EMU_DEFAULT_TOTAL : total;
	*free_bytes = used < *total_bytes ? *total_bytes - used : 0;
	return 0;
}

int emu_no_graphs(char *err, size_t errlen)
{
	return cu_fail(err, errlen, CUDA_OP_EINVAL, "CUDA graphs are not emulated");
}

int emu_f32_to_f16(uint16_t *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = cu_f2h(x[i]);
	return 0;
}

int emu_f16_to_f32(float *y, const uint16_t *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = cu_h2f(x[i]);
	return 0;
}

int emu_scale_round(float *x, size_t n, float scale, int round_f16)
{
	for (size_t i = 0; i < n; i++) {
		float v = cu_mul(x[i], scale);
		x[i] = round_f16 ? cu_h2f(cu_f2h(v)) : v;
	}
	return 0;
}

int emu_rmsnorm(float *y, const float *x, const float *w, uint32_t n, uint32_t dim, float eps)
{
	for (uint32_t t = 0; t < n; t++) {
		const float *xr = x + (size_t)t * dim;
		float *yr = y + (size_t)t * dim;
		double s = 0;
		for (uint32_t i = 0; i < dim; i++)
			s += (double)xr[i] * xr[i];
		float r = (float)(1.0 / sqrt(s / dim + eps));
		for (uint32_t i = 0; i < dim; i++)
			yr[i] = cu_mul(cu_mul(xr[i], r), w[i]);
	}
	return 0;
}

int emu_rope_table(float *cs, const uint32_t *pos, uint32_t n, uint32_t n_rot, float base,
		   float scale, const float *ff)
{
	for (uint32_t t = 0; t < n; t++)
		for (uint32_t i = 0; i < n_rot / 2; i++) {
			double th = (double)pos[t] * scale * pow((double)base, -2.0 * i / n_rot);
			if (ff)
				th /= ff[i];
			cs[(size_t)t * n_rot + 2 * i] = (float)cos(th);
			cs[(size_t)t * n_rot + 2 * i + 1] = (float)sin(th);
		}
	return 0;
}

int emu_rope(float *x, const float *cs, uint32_t n, uint32_t n_heads, uint32_t head_dim,
	     uint32_t n_rot, int mode)
{
	uint32_t half = n_rot / 2;
	for (size_t th = 0; th < (size_t)n * n_heads; th++) {
		const float *c = cs + (th / n_heads) * n_rot;
		for (uint32_t i = 0; i < half; i++)
			cu_rope_pair(x + th * head_dim, c, i, half, mode == 1);
	}
	return 0;
}

int emu_glu(float *gate, const float *up, size_t n, int act)
{
	for (size_t i = 0; i < n; i++)
		gate[i] = cu_mul(cuda_host_act(gate[i], act), up[i]);
	return 0;
}

int emu_add(float *x, const float *y, size_t n, uint32_t ydim)
{
	for (size_t i = 0; i < n; i++)
		x[i] = cu_add(x[i], y[i % ydim]);
	return 0;
}

int emu_gather(float *y, const float *x, const uint32_t *rows, uint32_t n_rows, uint32_t dim)
{
	for (uint32_t j = 0; j < n_rows; j++)
		memcpy(y + (size_t)j * dim, x + (size_t)rows[j] * dim, dim * sizeof(float));
	return 0;
}

int emu_dequant(float *yf, uint16_t *yh, const void *w, uint32_t type, size_t row_bytes,
		uint32_t rows, uint32_t cols, const int32_t *tokens, float scale)
{
	float v[32];
	for (uint32_t r = 0; r < rows; r++) {
		size_t src = tokens ? (size_t)(uint32_t)tokens[r] : r;
		for (uint32_t c = 0; c < (cols + 31) / 32; c++) {
			int rc = cuda_host_chunk(type, (const uint8_t *)w + src * row_bytes, c, cols, v);
			if (rc)
				return rc;
			for (uint32_t k = 0; k < 32 && c * 32 + k < cols; k++) {
				float f = scale == 1.0f ? v[k] : cu_mul(v[k], scale);
				size_t o = (size_t)r * cols + c * 32 + k;
				if (yf)
					yf[o] = f;
				else
					yh[o] = cu_f2h(f);
			}
		}
	}
	return 0;
}

int emu_gemm(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
	     uint32_t cols, const float *x, uint32_t n)
{
	uint16_t *wh = (uint16_t *)malloc((size_t)cols * 2), *xh = (uint16_t *)malloc((size_t)cols * 2);
	int rc = wh && xh ? 0 : CUDA_OP_ENOMEM;
	for (uint32_t r = 0; r < rows && !rc; r++) {
		rc = emu_dequant(NULL, wh, (const uint8_t *)w + (size_t)r * row_bytes, type, row_bytes,
				 1, cols, NULL, 1.0f);
		for (uint32_t t = 0; t < n && !rc; t++) {
			float s = 0.0f;
			for (uint32_t i = 0; i < cols; i++)
				s = fmaf(cu_h2f(wh[i]), cu_h2f(cu_f2h(x[(size_t)t * cols + i])), s);
			y[(size_t)t * rows + r] = s;
		}
	}
	free(wh);
	free(xh);
	return rc;
}

int emu_kv_write(void *kv, const struct cuda_kv_layout *L, uint32_t layer, const float *k,
		 const float *v, const uint32_t *slots, uint32_t n)
{
	for (uint32_t t = 0; t < n; t++) {
		size_t ko = cuda_plan_k_off(L, layer, slots[t]), vo = cuda_plan_v_off(L, layer, slots[t]);
		for (uint32_t i = 0; i < L->kdim + L->vdim; i++) {
			float f = i < L->kdim ? k[(size_t)t * L->kdim + i] : v[(size_t)t * L->vdim + i - L->kdim];
			size_t o = i < L->kdim ? ko + i : vo + i - L->kdim;
			if (L->elem_bytes == 2)
				((uint16_t *)kv)[o] = cu_f2h(f);
			else
				((float *)kv)[o] = f;
		}
	}
	return 0;
}
