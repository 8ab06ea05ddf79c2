/*
 * cuda-host.h — device code compiled for the host, for unit tests on
 * machines without a GPU (make CUDA=1 unit): the very functions the
 * kernels inline (cuda-quant.cuh's weight decoder, cuda-norm.cu's
 * activation), called on the CPU so tests/unit/test-cuda-plan.c can
 * compare them with the CPU backend's reference (quant-ref.c, ops.c).
 * Built only with make CUDA=1.
 */
#ifndef PLOT_CUDA_HOST_H
#define PLOT_CUDA_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda-ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Emulate the CUDA device on the host from now on (on = 1) for every
 * cuda-ops.h function and device probe (cuda-emu.h): the whole backend,
 * "cuda:0", runs without a GPU. Set before loading a model; tests only. */
void cuda_set_emulation(int on);
/* The emulated device's memory: bytes in all, live allocations included;
 * an allocation that would go past it fails as out of memory, a free gives
 * its bytes back (cuda_set_emulation resets it to unlimited, reported as
 * 16 GiB). cuda_dev_info / cuda_mem_info report it as the device's total,
 * and what the live allocations leave as free; its name is "emulated".
 * For tests of the out-of-memory paths and of the memory figures. */
void cuda_emu_set_budget(size_t bytes);
/* v[0..32) = elements [32c, 32c + 32) of a row of cols elements of type,
 * decoded exactly as the kernels do. row must be 16-byte aligned. 0, or
 * CUDA_OP_EINVAL for a type the kernels do not read. */
int cuda_host_chunk(uint32_t type, const void *row, uint32_t c, uint32_t cols, float *v);
/* cuda_matvec's kernel on the CPU (host pointers): same grid, lanes, chunk
 * order and xor-tree sum, so the same bits as the device up to fmaf. 0 or
 * CUDA_OP_EINVAL (type, shape, w not 16-byte aligned). */
int cuda_host_matvec(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
		     uint32_t cols, const float *x, uint32_t n);
/* The gated activation's act(g) (before the product with up), act 0 SiLU,
 * 1 GELU-tanh, as glu's kernel computes it. */
float cuda_host_act(float g, int act);
/* cuda_attn's kernel, phase by phase on the CPU (every pointer in a is host
 * memory): the same indexing, block-table walk, tiles and online softmax;
 * exp and the contraction of a * b + c may differ in the last bits from
 * the device. 0, CUDA_OP_EINVAL (limits) or CUDA_OP_ENOMEM. */
int cuda_host_attn(const struct cuda_attn_args *a);

#ifdef __cplusplus
}
#endif

#endif
