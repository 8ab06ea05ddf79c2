/*
 * cuda-gemm.cu — Y (n, rows) = X (n, cols) . W^T for large batches
 * (prefill): tensor cores through cuBLAS on f16 copies.
 *
 * Design: X is converted to f16 once (xh, (n, cols)); W goes to cuBLAS as
 * it is when it is F16, else it is dequantized (cuda-quant.cu, bit-exact
 * elements rounded to half) tile by tile into wh ((tile_rows, cols)) and
 * each tile is one cublasGemmEx with f32 accumulation
 * (CUBLAS_COMPUTE_32F): row-major W (rows, cols) is column-major
 * (cols, rows), so Y^T (rows, n) = op_T(W) x X^T with lda = ldb = cols,
 * ldc = rows, and a tile writes rows [r0, r0 + tr) of every token.
 * Error budget: half rounding of X and W (2^-11 relative each) plus f32
 * accumulation; test-backend's tolerance for this op is set from it.
 * Not batch invariant (cuBLAS picks kernels by shape); the backend uses it
 * only above CUDA_MATVEC_MAX_N tokens.
 * Not yet run on a GPU; test-backend checks it.
 */
#include <cublas_v2.h>

#include "cuda/cuda-emu.h"
#include "cuda/cuda-quant.cuh"

static int blas_fail(cublasStatus_t st, char *err, size_t errlen)
{
	return cu_fail(err, errlen, st == CUBLAS_STATUS_ALLOC_FAILED ? CUDA_OP_ENOMEM
		       : CUDA_OP_EFAIL, "cuda_gemm: cublasGemmEx: %s", cublasGetStatusString(st));
}

/* Y rows [r0, r0 + tr) of every token = X . Wt^T, Wt (tr, cols) f16 */
static int gemm_tile(cublasHandle_t h, float *y, uint32_t rows, uint32_t r0, uint32_t tr,
		     uint32_t cols, const uint16_t *wt, const uint16_t *xh, uint32_t n, char *err,
		     size_t errlen)
{
	const float one = 1.0f, zero = 0.0f;
	cu_count(1);
	cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)tr, (int)n, (int)cols,
					 &one, wt, CUDA_R_16F, (int)cols, xh, CUDA_R_16F,
					 (int)cols, &zero, y + r0, CUDA_R_32F, (int)rows,
					 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	return st == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail(st, err, errlen);
}

extern "C" int cuda_gemm(float *y, const void *w, uint32_t type, size_t row_bytes,
			 uint32_t rows, uint32_t cols, const float *x, uint32_t n, uint16_t *xh,
			 uint16_t *wh, uint32_t tile_rows, void *blas, void *stream, char *err,
			 size_t errlen)
{
	cublasHandle_t h = (cublasHandle_t)blas;
	int rc = cu_check_weight("cuda_gemm", w, type, row_bytes, cols, err, errlen);
	if (rc || n == 0 || rows == 0)
		return rc;
	if (cols > INT32_MAX || rows > INT32_MAX || n > INT32_MAX)
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_gemm: shape beyond cuBLAS's int");
	if (type != CQ_F16 && (tile_rows == 0 || !wh))
		return cu_fail(err, errlen, CUDA_OP_EINVAL, "cuda_gemm: no weight tile scratch");
	if (cuda_emu) { /* what the device path launches: x to f16, per tile dequant + GEMM */
		cu_count(type == CQ_F16 ? 2 : 1 + 2 * ((rows + tile_rows - 1) / tile_rows));
		return emu_gemm(y, w, type, row_bytes, rows, cols, x, n);
	}
	cublasStatus_t st = cublasSetStream(h, CU_STREAM(stream));
	if (st != CUBLAS_STATUS_SUCCESS)
		return blas_fail(st, err, errlen);
	if ((rc = cuda_f32_to_f16(xh, x, (size_t)n * cols, stream, err, errlen)))
		return rc;
	if (type == CQ_F16)
		return gemm_tile(h, y, rows, 0, rows, cols, (const uint16_t *)w, xh, n, err, errlen);
	for (uint32_t r0 = 0; r0 < rows; r0 += tile_rows) {
		uint32_t tr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
		const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * row_bytes;
		/* a tile's first row is 16-byte aligned when row_bytes is a multiple of 16;
		 * cuda_dequant_f16 checks and refuses otherwise */
		if ((rc = cuda_dequant_f16(wh, wr, type, row_bytes, tr, cols, stream, err, errlen)) ||
		    (rc = gemm_tile(h, y, rows, r0, tr, cols, wh, xh, n, err, errlen)))
			return rc;
	}
	return 0;
}
