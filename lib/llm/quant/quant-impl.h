/*
 * quant-impl.h — block layouts and helpers shared by the quant kernels.
 *
 * The structs match ggml's ggml-common.h byte for byte (the static asserts
 * below pin their sizes), so GGUF tensor data is used in place. Half floats
 * are stored as raw uint16_t bits.
 */
#ifndef PLOT_LLM_QUANT_IMPL_H
#define PLOT_LLM_QUANT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK_K 256
#define QK4 32   /* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 block size */
#define K_SCALE_BYTES 12

typedef struct { uint16_t d; uint8_t qs[QK4 / 2]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK4 / 2]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK4 / 2]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK4 / 2]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[QK4]; } blk_q8_0;
/* activations for Q4_1/Q5_1 dots: s = d * sum(qs) (both fp16, as ggml), so
 * the weight's min term is m * s without touching the quants again */
typedef struct { uint16_t d, s; int8_t qs[QK4]; } blk_q8_1;
/* super-block of 8 sub-blocks of 32: 6-bit scales and mins packed in 12 bytes */
typedef struct {
	uint16_t d, dmin;
	uint8_t scales[K_SCALE_BYTES];
	uint8_t qs[QK_K / 2];
} blk_q4_K;
typedef struct {
	uint16_t d, dmin;
	uint8_t scales[K_SCALE_BYTES];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
} blk_q5_K;
/* 16 sub-blocks of 16 with int8 scales; 6-bit quants as 4 low + 2 high bits */
typedef struct {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	uint16_t d;
} blk_q6_K;
/* activations for K-quant dots: bsums[j] = sum of qs[16j .. 16j+15] */
typedef struct {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
} blk_q8_K;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(blk_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(blk_q8_K) == 292, "q8_K layout");

static inline float f32_from_bits(uint32_t w)
{
	float f;
	memcpy(&f, &w, 4);
	return f;
}

static inline uint32_t f32_bits(float f)
{
	uint32_t w;
	memcpy(&w, &f, 4);
	return w;
}

/* IEEE half -> float, exact for every input (normals, subnormals, inf, NaN):
 * shift the half's exponent/mantissa into float position and rescale. */
static inline float fp16_to_f32(uint16_t h)
{
	uint32_t w = (uint32_t)h << 16;
	uint32_t sign = w & 0x80000000u;
	uint32_t two_w = w + w;
	float normal = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
	float denormal = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
	uint32_t r = two_w < (1u << 27) ? f32_bits(denormal) : f32_bits(normal);
	return f32_from_bits(sign | r);
}

/* float -> IEEE half, round to nearest even (what F16C's _MM_FROUND_TO_NEAREST_INT does). */
static inline uint16_t f32_to_fp16(float f)
{
	float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
	uint32_t w = f32_bits(f);
	uint32_t shl1 = w + w;
	uint32_t sign = w & 0x80000000u;
	uint32_t bias = shl1 & 0xFF000000u;
	if (bias < 0x71000000u)
		bias = 0x71000000u;
	base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
	uint32_t bits = f32_bits(base);
	uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
	return (uint16_t)((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float bf16_to_f32(uint16_t h)
{
	return f32_from_bits((uint32_t)h << 16);
}

/* round to nearest even; NaN stays NaN (quiet) */
static inline uint16_t f32_to_bf16(float f)
{
	uint32_t w = f32_bits(f);
	if ((w & 0x7FFFFFFFu) > 0x7F800000u)
		return (uint16_t)((w >> 16) | 0x40);
	return (uint16_t)((w + 0x7FFFu + ((w >> 16) & 1)) >> 16);
}

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block. */
static inline void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

/* Per-ISA kernel tables; a NULL entry means "use the reference". Indexed by
 * qtype; sized for the largest supported type (BF16 = 30). */
#define QT_TABLE 31
typedef float (*vec_dot_fn)(int64_t n, const void *w, const void *x);
typedef void (*dequant_fn)(const void *src, float *dst, int64_t n);
typedef void (*quantize_fn)(const float *src, void *dst, int64_t n);
/* y[t*ys] = dot(w, x + t*xs) for t < nx, bit-identical to the same table's
 * vec_dot_fn; NULL means "loop over dot". */
typedef void (*vec_dot_n_fn)(int64_t n, const void *w, const void *x, size_t xs, int64_t nx,
			     float *y, size_t ys);

/* nw weight rows (ws bytes apart) x nx activation rows: y[r * yw + t * ys] */
typedef void (*vec_dot_mn_fn)(int64_t n, const void *w, size_t ws, int64_t nw, const void *x,
			      size_t xs, int64_t nx, float *y, size_t yw, size_t ys);

struct quant_kernels {
	const char *name;
	vec_dot_fn dot[QT_TABLE];
	vec_dot_n_fn dot_n[QT_TABLE];
	vec_dot_mn_fn dot_mn[QT_TABLE]; /* optional; NULL: dot_n per row */
	dequant_fn dequant[QT_TABLE];
	quantize_fn quantize[QT_TABLE];
};

extern const struct quant_kernels quant_kernels_ref;
/* K-quant reference kernels (quant-k.c), gathered into quant_kernels_ref */
float quant_ref_dot_q4_K(int64_t n, const void *w, const void *x);
float quant_ref_dot_q5_K(int64_t n, const void *w, const void *x);
float quant_ref_dot_q6_K(int64_t n, const void *w, const void *x);
void quant_ref_dequant_q4_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q5_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q6_K(const void *src, float *dst, int64_t n);
void quant_ref_dequant_q8_K(const void *src, float *dst, int64_t n);
void quant_ref_quantize_q4_K(const float *src, void *dst, int64_t n);
void quant_ref_quantize_q5_K(const float *src, void *dst, int64_t n);
void quant_ref_quantize_q6_K(const float *src, void *dst, int64_t n);
void quant_ref_quantize_q8_K(const float *src, void *dst, int64_t n);
extern const struct quant_kernels quant_kernels_avx2;
extern const struct quant_kernels quant_kernels_avx512;

#endif
