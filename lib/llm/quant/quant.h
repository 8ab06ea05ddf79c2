/*
 * quant.h — tensor element types and their kernels (private to lib/llm).
 *
 * Numbering follows ggml/GGUF. Each type has a scalar reference
 * implementation; SIMD fast paths (AVX2/FMA, AVX-512) live in quant-avx2.c /
 * quant-avx512.c and are chosen once at run time with cpuid. Tests compare
 * every fast path against the reference.
 *
 * A matmul multiplies quantized weight rows with activations that were first
 * quantized to the weight type's "dot type" (as ggml does): Q8_0 for
 * Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1 (Q8_0 plus s = d*sum(q), so the
 * weight's min costs one multiply per block), Q8_K for the K-quants, F32 for
 * F32/F16/BF16. Always ask quant_dot_type(); size with quant_row_bytes().
 * Q8_1 and Q8_K are activation-only: quant_supported() is 0 for them (no
 * vec_dot with them as weights), but quantize_row and dequant_row accept them.
 * The activation quantizers are bit-exact with ggml's: Q8_0 and Q8_K with
 * the scalar reference ones (Q8_0 doubles as a weight quantizer), Q8_1 with
 * the x86 one llama.cpp runs here (127 / amax, ties to even); the weight quantizers (Q4_0..Q6_K) are for tests and tiny
 * models: Q4_0..Q5_1 match ggml's, the K-quants use plain min/max rounding.
 *
 * The type table knows the block geometry of every ggml type (so the GGUF
 * reader can size IQ*, Q2_K, ... tensors); only types with
 * quant_supported() == 1 may be passed to the kernels (others abort).
 */
#ifndef PLOT_LLM_QUANT_H
#define PLOT_LLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum qtype {
	Q_F32 = 0, Q_F16 = 1, Q_Q4_0 = 2, Q_Q4_1 = 3, Q_Q5_0 = 6, Q_Q5_1 = 7,
	Q_Q8_0 = 8, Q_Q8_1 = 9, Q_Q2_K = 10, Q_Q3_K = 11, Q_Q4_K = 12,
	Q_Q5_K = 13, Q_Q6_K = 14, Q_Q8_K = 15, Q_BF16 = 30,
};

int quant_supported(uint32_t type);          /* 1 if we have kernels */
const char *quant_name(uint32_t type);       /* "Q4_K", ...; "?" if unknown */
uint32_t quant_block_elems(uint32_t type);   /* elements per block (1 for F32/F16/BF16) */
uint32_t quant_block_bytes(uint32_t type);   /* bytes per block */
/* Bytes for a row of n elements; 0 if n is not a multiple of the block or
 * the type is unknown. */
size_t quant_row_bytes(uint32_t type, uint64_t n);
uint32_t quant_dot_type(uint32_t wtype);     /* activation type for vec_dot */

/* Reference (scalar) kernels. n is a multiple of the block size. */
void quant_dequant_row_ref(uint32_t type, const void *src, float *dst, int64_t n);
void quant_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n);
float quant_vec_dot_ref(uint32_t wtype, int64_t n, const void *w, const void *x);

/* Dispatched kernels: the fastest path this CPU supports. */
void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);
void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);
/* dot(w row of wtype, x row already in quant_dot_type(wtype)), n elements */
float quant_vec_dot(uint32_t wtype, int64_t n, const void *w, const void *x);

/* One weight row against nx activation rows (in quant_dot_type(wtype)),
 * x_stride bytes apart: y[t * y_stride] = quant_vec_dot(wtype, n, w,
 * x + t * x_stride), bit for bit, so a sequence's numbers never depend on
 * what else is in the batch. Faster than the loop: each weight block is
 * unpacked once for up to 4 activation rows. */
void quant_vec_dot_n(uint32_t wtype, int64_t n, const void *w, const void *x, size_t x_stride,
		     int64_t nx, float *y, size_t y_stride);

/* nw weight rows, w_stride bytes apart, against nx activation rows:
 * y[r * y_wstride + t * y_stride] = quant_vec_dot(wtype, n, w + r *
 * w_stride, x + t * x_stride), bit for bit. Where the CPU has a blocked
 * kernel, each activation block is also reused across weight rows. */
void quant_vec_dot_mn(uint32_t wtype, int64_t n, const void *w, size_t w_stride, int64_t nw,
		      const void *x, size_t x_stride, int64_t nx, float *y, size_t y_wstride,
		      size_t y_stride);

/* "ref", "avx2", "avx512": what the dispatched kernels use. */
const char *quant_impl_name(void);
/* Select an implementation by name ("ref", "avx2", "avx512"; NULL = the
 * best this CPU runs) for all threads; -1 if this CPU cannot run it. For
 * tests and benchmarks: switch only while no kernel runs. */
int quant_set_impl(const char *name);
/* The i-th implementation this CPU runs (0 = "ref", best last), or NULL. */
const char *quant_impl_available(int i);
/* quant_force_ref(1) = quant_set_impl("ref"); (0) = back to the best. */
void quant_force_ref(int on);

#endif
