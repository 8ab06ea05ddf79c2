/*
 * cuda-emu.h — the CUDA backend with its device emulated on the host
 * (cuda-emu.cu), so the whole backend (upload, KV storage, the forward
 * pass, every op) runs and is tested on machines without a GPU, CI's
 * included. cuda_set_emulation (cuda-host.h) turns it on for the process;
 * then each cuda-ops.h function and device probe answers from here:
 * "device" memory is host memory (fresh allocations poisoned with 0xFF,
 * NaN as floats, so an unwritten element shows), copies are memcpy,
 * streams and cuBLAS handles are tokens, graphs are refused (the forward
 * pass then runs as launches), and each op runs its kernel's CU_HD code or
 * a plain loop with the kernel's arithmetic. For .cu files only.
 */
#ifndef PLOT_CUDA_EMU_H
#define PLOT_CUDA_EMU_H

#include "cuda/cuda-dev.h"
#include "cuda/cuda-ops.h"

extern int cuda_emu; /* nonzero: emulate (cuda_set_emulation) */

/* Return the emulation's answer when emulating. */
#define CU_EMU(call)             \
	do {                     \
		if (cuda_emu)    \
			return (call); \
	} while (0)

int emu_dev_info(int index, struct cuda_dev_info *info);
int emu_malloc(void **p, size_t bytes);
void emu_free(void *p);
int emu_host_malloc(void **p, size_t bytes);
int emu_sync(void);
int emu_memset(void *d, int v, size_t bytes);
int emu_copy(void *d, const void *s, size_t bytes);
int emu_token(void **p);
int emu_mem_info(size_t *free_bytes, size_t *total_bytes);
int emu_no_graphs(char *err, size_t errlen);
int emu_f32_to_f16(uint16_t *y, const float *x, size_t n);
int emu_f16_to_f32(float *y, const uint16_t *x, size_t n);
int emu_scale_round(float *x, size_t n, float scale, int round_f16);
int emu_rmsnorm(float *y, const float *x, const float *w, uint32_t n, uint32_t dim, float eps);
int emu_rope_table(float *cs, const uint32_t *pos, uint32_t n, uint32_t n_rot, float base,
		   float scale, const float *ff);
int emu_rope(float *x, const float *cs, uint32_t n, uint32_t n_heads, uint32_t head_dim,
	     uint32_t n_rot, int mode);
int emu_glu(float *gate, const float *up, size_t n, int act);
int emu_add(float *x, const float *y, size_t n, uint32_t ydim);
int emu_gather(float *y, const float *x, const uint32_t *rows, uint32_t n_rows, uint32_t dim);
int emu_dequant(float *yf, uint16_t *yh, const void *w, uint32_t type, size_t row_bytes,
		uint32_t rows, uint32_t cols, const int32_t *tokens, float scale);
int emu_gemm(float *y, const void *w, uint32_t type, size_t row_bytes, uint32_t rows,
	     uint32_t cols, const float *x, uint32_t n);
int emu_kv_write(void *kv, const struct cuda_kv_layout *L, uint32_t layer, const float *k,
		 const float *v, const uint32_t *slots, uint32_t n);

#endif
