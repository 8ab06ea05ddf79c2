/*
 * cuda-mock.c — lib/cuda/cuda-ops.h and cuda-dev.h on the CPU, "device"
 * memory being host memory, so that test-backend runs in `make check` on
 * machines without a GPU (tests/cli/gpu-test-backend.bats). It tests the
 * tester: buffer sizes, poisoning, references, tolerances, the batch-
 * invariance checks and the exit codes, not the kernels (which only the GPU
 * machine can run: tests/gpu/run).
 *
 * Each op computes what cuda-ops.h says with the engine's CPU functions or
 * a double-precision sum. Two variables make it misbehave on purpose:
 *   PLOT_MOCK_BUG=OP       op OP leaves the last element of its output
 *                          unwritten (the poison must catch it);
 *                          PLOT_MOCK_BUG=matvec-batch makes matvec's
 *                          result depend on the batch size by 1e-7
 *                          (within tolerance: only the invariance check
 *                          catches it); attn-split makes a split
 *                          attention's result depend on n_seg;
 *                          matvec_multi_bias drops the biases it is given
 *   PLOT_MOCK_DEVICES=0    the runtime sees no device
 * Built by the CPU build only (make's test-backend-mock); a CUDA build links
 * the real kernels instead.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda-dev.h"
#include "cuda/cuda-ops.h"
#include "cuda/cuda-plan.h"
#include "llm/cpu/attn-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/quant.h"

static int dummy;

/* 1 when PLOT_MOCK_BUG names op: the caller then skips its last element */
static int bug(const char *op)
{
	const char *b = getenv("PLOT_MOCK_BUG");
	return b && !strcmp(b, op);
}

int cuda_dev_count(int *n, char *err, size_t errlen)
{
	const char *d = getenv("PLOT_MOCK_DEVICES");
	*n = d ? atoi(d) : 1;
	return 0;
}

int cuda_dev_info(int index, struct cuda_dev_info *info, char *err, size_t errlen)
{
	memset(info, 0, sizeof *info);
	strcpy(info->name, "CPU mock (tests/gpu/cuda-mock.c)");
	info->cc_major = 9;
	info->total_bytes = info->free_bytes = (size_t)1 << 30;
	return 0;
}

/* ---- memory, streams --------------------------------------------------------- */

int cuda_set_device(int index, char *err, size_t errlen) { return 0; }

int cuda_malloc(void **p, size_t bytes, char *err, size_t errlen)
{
	*p = bytes ? malloc(bytes) : NULL;
	return bytes && !*p ? CUDA_OP_ENOMEM : 0;
}

void cuda_free(void *p) { free(p); }

int cuda_memset(void *d, int v, size_t bytes, void *s, char *err, size_t errlen)
{
	memset(d, v, bytes);
	return 0;
}

int cuda_h2d(void *d, const void *h, size_t n, void *s, char *err, size_t errlen)
{
	memcpy(d, h, n);
	return 0;
}

int cuda_d2h(void *h, const void *d, size_t n, void *s, char *err, size_t errlen)
{
	memcpy(h, d, n);
	return 0;
}

int cuda_d2d(void *d, const void *x, size_t n, void *s, char *err, size_t errlen)
{
	memmove(d, x, n);
	return 0;
}

int cuda_stream_new(void **stream, char *err, size_t errlen) { *stream = &dummy; return 0; }
void cuda_stream_free(void *stream) { }
int cuda_stream_sync(void *stream, char *err, size_t errlen) { return 0; }
int cuda_blas_new(void **blas, void *stream, char *err, size_t errlen) { *blas = &dummy; return 0; }
void cuda_blas_free(void *blas) { }

/* ---- conversions -------------------------------------------------------------- */

int cuda_f32_to_f16(uint16_t *y, const float *x, size_t n, void *s, char *err, size_t errlen)
{
	for (size_t i = 0; i + bug("f32_to_f16") < n; i++)
		y[i] = llm_f16_from_f32(x[i]);
	return 0;
}

int cuda_f16_to_f32(float *y, const uint16_t *x, size_t n, void *s, char *err, size_t errlen)
{
	for (size_t i = 0; i + bug("f16_to_f32") < n; i++)
		y[i] = llm_f32_from_f16(x[i]);
	return 0;
}

int cuda_scale_round(float *x, size_t n, float scale, int round, void *s, char *err,
		     size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		x[i] = round ? llm_f32_from_f16(llm_f16_from_f32(x[i] * scale)) : x[i] * scale;
	if (bug("scale_round"))
		memset(&x[n - 1], 0xFF, 4);
	return 0;
}

/* ---- weights -------------------------------------------------------------------- */

int cuda_embed(float *x, const void *w, uint32_t type, size_t rb, uint32_t dim,
	       const int32_t *tok, uint32_t n, float scale, void *s, char *err, size_t errlen)
{
	for (uint32_t t = 0; t + bug("embed") < n; t++) {
		quant_dequant_row_ref(type, (const uint8_t *)w + tok[t] * rb, x + (size_t)t * dim, dim);
		for (uint32_t i = 0; i < dim; i++)
			x[(size_t)t * dim + i] *= scale;
	}
	return 0;
}

int cuda_dequant_f32(float *y, const void *w, uint32_t type, size_t rb, uint32_t rows,
		     uint32_t cols, void *s, char *err, size_t errlen)
{
	for (uint32_t r = 0; r + bug("dequant_f32") < rows; r++)
		quant_dequant_row_ref(type, (const uint8_t *)w + r * rb, y + (size_t)r * cols, cols);
	return 0;
}

int cuda_dequant_f16(uint16_t *y, const void *w, uint32_t type, size_t rb, uint32_t rows,
		     uint32_t cols, void *s, char *err, size_t errlen)
{
	float *row = malloc((size_t)cols * 4);
	for (uint32_t r = 0; row && r + bug("dequant_f16") < rows; r++) {
		quant_dequant_row_ref(type, (const uint8_t *)w + r * rb, row, cols);
		llm_f16_row(y + (size_t)r * cols, row, cols);
	}
	free(row);
	return row ? 0 : CUDA_OP_ENOMEM;
}

/* Y (n, rows) = X . W^T, each dot in double; half: both operands rounded. */
static int product(float *y, const void *w, uint32_t type, size_t rb, uint32_t rows,
		   uint32_t cols, const float *x, uint32_t n, int half, int skip)
{
	float *row = malloc((size_t)cols * 4), *xr = malloc((size_t)n * cols * 4);
	if (xr) {
		memcpy(xr, x, (size_t)n * cols * 4);
		if (half)
			llm_f16_round(xr, (size_t)n * cols);
	}
	for (uint32_t r = 0; row && xr && r < rows; r++) {
		quant_dequant_row_ref(type, (const uint8_t *)w + r * rb, row, cols);
		if (half)
			llm_f16_round(row, cols);
		for (uint32_t t = 0; t < n; t++) {
			if (skip && r + 1 == rows && t + 1 == n)
				continue;
			double acc = 0;
			for (uint32_t i = 0; i < cols; i++)
				acc += (double)row[i] * xr[(size_t)t * cols + i];
			if (!half && n > 1 && bug("matvec-batch"))
				acc *= 1 + 1e-7;
			y[(size_t)t * rows + r] = (float)acc;
		}
	}
	int rc = row && xr ? 0 : CUDA_OP_ENOMEM;
	free(row);
	free(xr);
	return rc;
}

int cuda_matvec(float *y, const void *w, uint32_t type, size_t rb, uint32_t rows,
		uint32_t cols, const float *x, uint32_t n, void *s, char *err, size_t errlen)
{
	return product(y, w, type, rb, rows, cols, x, n, 0, bug("matvec"));
}

int cuda_gemm(float *y, const void *w, uint32_t type, size_t rb, uint32_t rows,
	      uint32_t cols, const float *x, uint32_t n, uint16_t *xh, uint16_t *wh,
	      uint32_t tile_rows, void *blas, void *s, char *err, size_t errlen)
{
	return product(y, w, type, rb, rows, cols, x, n, 1, bug("gemm"));
}

/* ---- row operations -------------------------------------------------------------- */

int cuda_rmsnorm(float *y, const float *x, const float *w, uint32_t n, uint32_t dim, float eps,
		 void *s, char *err, size_t errlen)
{
	for (uint32_t t = 0; t + bug("rmsnorm") < n; t++)
		llm_rmsnorm(y + (size_t)t * dim, x + (size_t)t * dim, w, dim, eps);
	return 0;
}

int cuda_qk_norm(float *x, const float *w, uint32_t n, uint32_t heads, uint32_t hd, float eps,
		 void *s, char *err, size_t errlen)
{
	for (size_t r = 0; r + bug("qk_norm") < (size_t)n * heads; r++)
		llm_rmsnorm(x + r * hd, x + r * hd, w, hd, eps);
	return 0;
}

int cuda_rope_table(float *cs, const uint32_t *pos, uint32_t n, uint32_t n_rot, float base,
		    float scale, const float *ff, void *s, char *err, size_t errlen)
{
	for (uint32_t t = 0; t + bug("rope_table") < n; t++)
		llm_rope_table(cs + (size_t)t * n_rot, n_rot, pos[t], base, scale, ff);
	return 0;
}

int cuda_rope(float *x, const float *cs, uint32_t n, uint32_t heads, uint32_t hd,
	      uint32_t n_rot, int mode, void *s, char *err, size_t errlen)
{
	for (uint32_t t = 0; t < n; t++)
		for (uint32_t h = 0; h < heads; h++)
			llm_rope_apply(x + ((size_t)t * heads + h) * hd, cs + (size_t)t * n_rot, n_rot,
				       (enum llm_rope_mode)mode);
	if (bug("rope"))
		memset(&x[(size_t)n * heads * hd - 1], 0xFF, 4);
	return 0;
}

int cuda_glu(float *gate, const float *up, uint32_t n, uint32_t dim, int act, void *s,
	     char *err, size_t errlen)
{
	for (uint32_t t = 0; t < n; t++)
		llm_glu(gate + (size_t)t * dim, up + (size_t)t * dim, dim, (enum llm_act)act);
	if (bug("glu"))
		memset(&gate[(size_t)n * dim - 1], 0xFF, 4);
	return 0;
}

int cuda_add(float *x, const float *y, size_t n, void *s, char *err, size_t errlen)
{
	for (size_t i = 0; i + bug("add") < n; i++)
		x[i] += y[i];
	if (bug("add"))
		memset(&x[n - 1], 0xFF, 4);
	return 0;
}

int cuda_add_bias(float *y, const float *b, uint32_t n, uint32_t dim, void *s, char *err,
		  size_t errlen)
{
	if (!b) /* as lib/cuda's: no bias, nothing to add */
		return 0;
	for (size_t i = 0; i < (size_t)n * dim; i++)
		y[i] += b[i % dim];
	if (bug("add_bias"))
		memset(&y[(size_t)n * dim - 1], 0xFF, 4);
	return 0;
}

int cuda_gather_rows(float *y, const float *x, const uint32_t *rows, uint32_t n_rows,
		     uint32_t dim, void *s, char *err, size_t errlen)
{
	for (uint32_t r = 0; r + bug("gather_rows") < n_rows; r++)
		memcpy(y + (size_t)r * dim, x + (size_t)rows[r] * dim, (size_t)dim * 4);
	return 0;
}

/* ---- KV cache and attention --------------------------------------------------------- */

static void kv_put(void *kv, const struct cuda_kv_layout *L, size_t off, const float *x,
		   uint32_t dim)
{
	if (L->elem_bytes == 2)
		llm_f16_row((uint16_t *)kv + off, x, dim);
	else
		memcpy((float *)kv + off, x, (size_t)dim * 4);
}

int cuda_kv_write(void *kv, const struct cuda_kv_layout *L, uint32_t layer, const float *k,
		  const float *v, const uint32_t *slots, uint32_t n, void *s, char *err,
		  size_t errlen)
{
	for (uint32_t t = 0; t + bug("kv_write") < n; t++) {
		kv_put(kv, L, cuda_plan_k_off(L, layer, slots[t]), k + (size_t)t * L->kdim, L->kdim);
		kv_put(kv, L, cuda_plan_v_off(L, layer, slots[t]), v + (size_t)t * L->vdim, L->vdim);
	}
	return 0;
}

static float kv_get(const struct cuda_attn_args *a, size_t off)
{
	return a->L.elem_bytes == 2 ? llm_f32_from_f16(((const uint16_t *)a->kv)[off])
				    : ((const float *)a->kv)[off];
}

/* One (entry, head): two-pass softmax in double, p rounded as the CPU does. */
static void attn_head(const struct cuda_attn_args *a, uint32_t t, uint32_t h, float *out,
		      double *p)
{
	uint32_t pos = a->pos[t], g = h / (a->n_head / a->n_head_kv), bs = a->L.block_size;
	uint32_t lo = a->window && pos + 1 > a->window ? pos + 1 - a->window : 0;
	const uint32_t *tab = a->tab + a->tab_off[t];
	const float *q = a->q + ((size_t)t * a->n_head + h) * a->head_dim_k;
	double mx = -INFINITY, sum = 0, acc[CUDA_ATTN_MAX_HEAD_DIM] = { 0 };
	for (uint32_t j = lo; j <= pos; j++) {
		size_t ko = cuda_plan_k_off(&a->L, a->layer, cuda_plan_slot(&a->L, tab[j / bs], j));
		double d = 0;
		for (uint32_t i = 0; i < a->head_dim_k; i++)
			d += (double)q[i] * kv_get(a, ko + g * a->head_dim_k + i);
		p[j] = d * a->scale;
		mx = fmax(mx, p[j]);
	}
	for (uint32_t j = lo; j <= pos; j++)
		sum += p[j] = exp(p[j] - mx);
	for (uint32_t j = lo; j <= pos; j++) {
		double pj = p[j] / sum;
		if (a->round_p)
			pj = llm_f32_from_f16(llm_f16_from_f32((float)pj));
		size_t vo = cuda_plan_v_off(&a->L, a->layer, cuda_plan_slot(&a->L, tab[j / bs], j));
		for (uint32_t i = 0; i < a->head_dim_v; i++)
			acc[i] += pj * kv_get(a, vo + g * a->head_dim_v + i);
	}
	for (uint32_t i = 0; i < a->head_dim_v; i++)
		out[i] = (float)acc[i];
}

int cuda_attn(const struct cuda_attn_args *a, void *s, char *err, size_t errlen)
{
	uint32_t max_pos = 0;
	for (uint32_t t = 0; t < a->n; t++)
		max_pos = a->pos[t] > max_pos ? a->pos[t] : max_pos;
	double *p = malloc(((size_t)max_pos + 1) * sizeof *p);
	if (!p || a->head_dim_v > CUDA_ATTN_MAX_HEAD_DIM)
		return free(p), CUDA_OP_EINVAL;
	for (uint32_t j = 0; j < a->n_rows; j++) {
		uint32_t t = a->rows ? a->rows[j] : j;
		for (uint32_t h = 0; h < a->n_head; h++) {
			float *o = a->out + ((size_t)j * a->n_head + h) * a->head_dim_v;
			if (!(bug("attn") && j + 1 == a->n_rows && h + 1 == a->n_head))
				attn_head(a, t, h, o, p);
			if (bug("attn-split") && a->part && a->n_seg > 1)
				o[0] *= 1.0f + 1e-6f * (float)a->n_seg;
		}
	}
	free(p);
	return 0;
}

/* The fused ops as their parts, one after the other (what they promise);
 * PLOT_MOCK_BUG=add_rmsnorm / rope_kv leaves the last row's (token's)
 * result unwritten. */
int cuda_add_rmsnorm(float *x, const float *y, const float *post_w, float *xn, const float *w,
		     uint32_t n, uint32_t dim, float eps, void *s, char *err, size_t errlen)
{
	float *tmp = malloc((size_t)dim * sizeof *tmp);
	if (!tmp)
		return CUDA_OP_ENOMEM;
	for (uint32_t t = 0; t + bug("add_rmsnorm") < n; t++) {
		const float *yr = y + (size_t)t * dim;
		float *xr = x + (size_t)t * dim;
		if (post_w)
			llm_rmsnorm(tmp, yr, post_w, dim, eps);
		for (uint32_t i = 0; i < dim; i++)
			xr[i] += post_w ? tmp[i] : yr[i];
		if (w)
			llm_rmsnorm(xn + (size_t)t * dim, xr, w, dim, eps);
	}
	free(tmp);
	return 0;
}

int cuda_rope_kv(const struct cuda_rope_kv_args *a, void *s, char *err, size_t errlen)
{
	uint32_t hd = a->head_dim, n = a->n - (a->n ? bug("rope_kv") : 0);
	int rc = cuda_rope(a->q, a->cs, n, a->n_head, hd, a->n_rot, a->mode, s, err, errlen);
	if (!rc)
		rc = cuda_rope(a->k, a->cs, n, a->L.kdim / hd, hd, a->n_rot, a->mode, s, err, errlen);
	if (!rc && (a->round_q || a->scale_q != 1.0f))
		rc = cuda_scale_round(a->q, (size_t)n * a->n_head * hd, a->scale_q, a->round_q, s, err,
				      errlen);
	return rc ? rc : cuda_kv_write(a->kv, &a->L, a->layer, a->k, a->v, a->slots, n, s, err, errlen);
}

int cuda_matvec_multi(float *const *y, const void *const *w, const float *const *bias,
		      const uint32_t *rows, uint32_t n_parts, uint32_t type, size_t rb, uint32_t cols,
		      const float *x, uint32_t n, void *s, char *err, size_t errlen)
{
	int rc = 0;
	for (uint32_t m = 0; m < n_parts && !rc; m++) {
		rc = cuda_matvec(y[m], w[m], type, rb, rows[m] - (m + 1 == n_parts ? bug("matvec_multi") : 0),
				 cols, x, n, s, err, errlen);
		if (!rc && bias && !bug("matvec_multi_bias"))
			rc = cuda_add_bias(y[m], bias[m], n, rows[m], s, err, errlen);
	}
	return rc;
}
