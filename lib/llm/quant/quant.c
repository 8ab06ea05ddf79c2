/*
 * quant.c — the tensor type table and run-time kernel dispatch.
 *
 * The table lists every ggml type whose block geometry we know, so the GGUF
 * reader can size any tensor; `supported` marks the types with kernels. The
 * dispatcher picks a fast path once (cpuid via __builtin_cpu_supports) and
 * falls back to the scalar reference per type when a SIMD file has no kernel
 * for it: the SIMD tables hold NULL for types they do not cover.
 *
 * Invariant: for every supported type, quant_*_ref is defined, and a fast
 * path, where present, computes the same function (tests check them against
 * each other).
 */
#include "llm/quant/quant.h"
#include "llm/quant/quant-impl.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct qinfo {
	const char *name;
	uint32_t blck;   /* elements per block */
	uint32_t bytes;  /* bytes per block */
	uint32_t dot;    /* activation type for vec_dot */
	uint8_t supported;
};

#define QK QK_K
static const struct qinfo qtab[] = {
	[0] = { "F32", 1, 4, Q_F32, 1 },
	[1] = { "F16", 1, 2, Q_F32, 1 },
	[2] = { "Q4_0", 32, 18, Q_Q8_0, 1 },
	[3] = { "Q4_1", 32, 20, Q_Q8_1, 1 },
	[6] = { "Q5_0", 32, 22, Q_Q8_0, 1 },
	[7] = { "Q5_1", 32, 24, Q_Q8_1, 1 },
	[8] = { "Q8_0", 32, 34, Q_Q8_0, 1 },
	[9] = { "Q8_1", 32, 36, 0, 0 },
	[10] = { "Q2_K", QK, 2 + 2 + QK / 16 + QK / 4, 0, 0 },
	[11] = { "Q3_K", QK, 2 + QK / 4 + QK / 8 + 12, 0, 0 },
	[12] = { "Q4_K", QK, 2 + 2 + QK / 2 + 12, Q_Q8_K, 1 },
	[13] = { "Q5_K", QK, 2 + 2 + QK / 2 + QK / 8 + 12, Q_Q8_K, 1 },
	[14] = { "Q6_K", QK, 2 + QK / 2 + QK / 4 + QK / 16, Q_Q8_K, 1 },
	[15] = { "Q8_K", QK, 4 + QK + QK / 8, 0, 0 },
	[16] = { "IQ2_XXS", QK, 2 + QK / 4, 0, 0 },
	[17] = { "IQ2_XS", QK, 2 + QK / 4 + QK / 32, 0, 0 },
	[18] = { "IQ3_XXS", QK, 2 + QK / 4 + QK / 8, 0, 0 },
	[19] = { "IQ1_S", QK, 2 + QK / 8 + QK / 16, 0, 0 },
	[20] = { "IQ4_NL", 32, 18, 0, 0 },
	[21] = { "IQ3_S", QK, 2 + QK / 4 + QK / 8 + QK / 32 + 4, 0, 0 },
	[22] = { "IQ2_S", QK, 2 + QK / 4 + QK / 16, 0, 0 },
	[23] = { "IQ4_XS", QK, 2 + 2 + QK / 2 + QK / 64, 0, 0 },
	[24] = { "I8", 1, 1, 0, 0 },
	[25] = { "I16", 1, 2, 0, 0 },
	[26] = { "I32", 1, 4, 0, 0 },
	[27] = { "I64", 1, 8, 0, 0 },
	[28] = { "F64", 1, 8, 0, 0 },
	[29] = { "IQ1_M", QK, QK / 8 + QK / 16 + QK / 32, 0, 0 },
	[30] = { "BF16", 1, 2, Q_F32, 1 },
	[34] = { "TQ1_0", QK, 2 + 4 * 13, 0, 0 },
	[35] = { "TQ2_0", QK, 2 + 64, 0, 0 },
	[39] = { "MXFP4", 32, 17, 0, 0 },
};
#undef QK

#define NTYPES (sizeof qtab / sizeof qtab[0])

static const struct qinfo *info(uint32_t t)
{
	return t < NTYPES && qtab[t].name ? &qtab[t] : NULL;
}

int quant_supported(uint32_t type)
{
	const struct qinfo *q = info(type);
	return q && q->supported;
}

const char *quant_name(uint32_t type)
{
	const struct qinfo *q = info(type);
	return q ? q->name : "?";
}

uint32_t quant_block_elems(uint32_t type)
{
	const struct qinfo *q = info(type);
	return q ? q->blck : 0;
}

uint32_t quant_block_bytes(uint32_t type)
{
	const struct qinfo *q = info(type);
	return q ? q->bytes : 0;
}

size_t quant_row_bytes(uint32_t type, uint64_t n)
{
	const struct qinfo *q = info(type);
	if (!q || n % q->blck)
		return 0;
	uint64_t r;
	if (__builtin_mul_overflow(n / q->blck, (uint64_t)q->bytes, &r) || r > SIZE_MAX)
		return 0;
	return (size_t)r;
}

uint32_t quant_dot_type(uint32_t wtype)
{
	const struct qinfo *q = info(wtype);
	return q && q->supported ? q->dot : Q_F32;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Resolved tables, one per ISA level: each is ref overlaid with every
 * level up to it, per type. levels[] lists those this CPU runs, best last. */
static struct quant_kernels lvl_avx2, lvl_avx512;
static const struct quant_kernels *levels[3];
static int n_levels;
static pthread_once_t levels_once = PTHREAD_ONCE_INIT;
static _Atomic(const struct quant_kernels *) current;

static int cpu_has_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static int cpu_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

static int cpu_has_avx512vnni(void)
{
	unsigned a, b, c, d;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & bit_AVX512VNNI);
}

static int cpu_avx512(void)
{
	return cpu_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq") && cpu_has_avx512vnni();
}

/* Overlay the non-NULL entries of k onto dst; dst is named after the last
 * table that contributed a kernel. */
static void overlay(struct quant_kernels *dst, const struct quant_kernels *k)
{
	int any = 0;
	for (int t = 0; t < QT_TABLE; t++) {
		/* dot and dot_n travel together: dot_n must match its own table's dot */
		if (k->dot[t])
			dst->dot[t] = k->dot[t], dst->dot_n[t] = k->dot_n[t],
			dst->dot_mn[t] = k->dot_mn[t], any = 1;
		if (k->dequant[t])
			dst->dequant[t] = k->dequant[t], any = 1;
		if (k->quantize[t])
			dst->quantize[t] = k->quantize[t], any = 1;
	}
	if (any)
		dst->name = k->name;
}

static void resolve_levels(void)
{
	levels[n_levels++] = &quant_kernels_ref;
	if (cpu_avx2()) {
		lvl_avx2 = quant_kernels_ref;
		overlay(&lvl_avx2, &quant_kernels_avx2);
		levels[n_levels++] = &lvl_avx2;
		if (cpu_avx512() && quant_kernels_avx512.dot[Q_Q8_0]) {
			lvl_avx512 = lvl_avx2;
			overlay(&lvl_avx512, &quant_kernels_avx512);
			levels[n_levels++] = &lvl_avx512;
		}
	}
	atomic_store(&current, levels[n_levels - 1]);
}

static const struct quant_kernels *kernels(void)
{
	pthread_once(&levels_once, resolve_levels);
	return atomic_load_explicit(&current, memory_order_relaxed);
}

const char *quant_impl_name(void)
{
	return kernels()->name;
}

int quant_set_impl(const char *name)
{
	pthread_once(&levels_once, resolve_levels);
	for (int i = 0; i < n_levels; i++)
		if (!name ? i == n_levels - 1 : strcmp(levels[i]->name, name) == 0) {
			atomic_store(&current, levels[i]);
			return 0;
		}
	return -1;
}

const char *quant_impl_available(int i)
{
	pthread_once(&levels_once, resolve_levels);
	return i >= 0 && i < n_levels ? levels[i]->name : NULL;
}

void quant_force_ref(int on)
{
	quant_set_impl(on ? "ref" : NULL);
}

/* Callers pass a supported type (the model loader checks quant_supported);
 * anything else is a broken invariant in the caller, not bad input, so it
 * aborts rather than computing garbage. */
#define KERNEL(k, kind, type) \
	((type) < QT_TABLE && (k)->kind[(type)] ? (k)->kind[(type)] : (abort(), (k)->kind[0]))

void quant_dequant_row_ref(uint32_t type, const void *src, float *dst, int64_t n)
{
	KERNEL(&quant_kernels_ref, dequant, type)(src, dst, n);
}

void quant_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n)
{
	KERNEL(&quant_kernels_ref, quantize, type)(src, dst, n);
}

float quant_vec_dot_ref(uint32_t wtype, int64_t n, const void *w, const void *x)
{
	return KERNEL(&quant_kernels_ref, dot, wtype)(n, w, x);
}

void quant_dequant_row(uint32_t type, const void *src, float *dst, int64_t n)
{
	KERNEL(kernels(), dequant, type)(src, dst, n);
}

void quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
	KERNEL(kernels(), quantize, type)(src, dst, n);
}

float quant_vec_dot(uint32_t wtype, int64_t n, const void *w, const void *x)
{
	return KERNEL(kernels(), dot, wtype)(n, w, x);
}

void quant_vec_dot_n(uint32_t wtype, int64_t n, const void *w, const void *x, size_t x_stride,
		     int64_t nx, float *y, size_t y_stride)
{
	const struct quant_kernels *k = kernels();
	vec_dot_n_fn fn = wtype < QT_TABLE ? k->dot_n[wtype] : NULL;
	if (fn) {
		fn(n, w, x, x_stride, nx, y, y_stride);
		return;
	}
	vec_dot_fn dot = KERNEL(k, dot, wtype);
	for (int64_t t = 0; t < nx; t++)
		y[(size_t)t * y_stride] = dot(n, w, (const uint8_t *)x + (size_t)t * x_stride);
}

void quant_vec_dot_mn(uint32_t wtype, int64_t n, const void *w, size_t w_stride, int64_t nw,
		      const void *x, size_t x_stride, int64_t nx, float *y, size_t y_wstride,
		      size_t y_stride)
{
	const struct quant_kernels *k = kernels();
	vec_dot_mn_fn fn = wtype < QT_TABLE ? k->dot_mn[wtype] : NULL;
	if (fn) {
		fn(n, w, w_stride, nw, x, x_stride, nx, y, y_wstride, y_stride);
		return;
	}
	for (int64_t r = 0; r < nw; r++)
		quant_vec_dot_n(wtype, n, (const uint8_t *)w + (size_t)r * w_stride, x, x_stride, nx,
				y + (size_t)r * y_wstride, y_stride);
}
