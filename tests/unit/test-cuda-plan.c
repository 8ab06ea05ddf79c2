/*
 * test-cuda-plan.c — the CUDA backend's host-side arithmetic
 * (lib/cuda/cuda-plan.c), which runs in every build, and, in make CUDA=1
 * builds, the kernels' weight decoder and activation compiled for the host
 * (lib/cuda/cuda-host.h). No GPU is needed for any of it.
 *
 *   - The device KV layout is the CPU backend's: every (seq, layer, pos)
 *     K/V element offset equals kv-store.c's address, so test-backend can
 *     copy a CPU cache to the device byte for byte.
 *   - Size overflows and kernel limits are refused with a message.
 *   - A batch plan holds each entry's token, position, slot and table
 *     offset, the logit rows in order, and each sequence's table once.
 *   - CUDA builds: every weight type's 32-element chunks decode bit for
 *     bit as quant-ref.c's dequantizer on random blocks (all bit patterns
 *     of scales and high bits), the matvec kernel run on the CPU matches
 *     X W^T in double and gives a token the same bits alone and in a
 *     batch, the activation matches ops.c's, and the
 *     attention kernel's phases, run on the CPU over a CPU cache through
 *     a batch plan, match a double-precision softmax(q.K) V (F32 within
 *     2e-5; F16 within 2e-3, its probabilities being rounded to half).
 *   - CUDA builds: the emulated device reports its name, its size and what
 *     live allocations leave free (llm_model_device_mem, plot stats'
 *     device figures); the CPU has none.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cuda/cuda-plan.h"
#include "helper-rng.h"
#include "plot/llm.h"
#include "llm/cpu/cpu-impl.h"
#include "llm/cpu/ops-impl.h"
#include "llm/engine/kv-impl.h"
#include "llm/engine/model-impl.h"
#include "llm/quant/quant-impl.h"
#include "llm/quant/quant.h"
#ifdef PLOT_CUDA
#include "cuda/backend-cuda.h"
#include "cuda/cuda-host.h"
#include "cuda/cuda-impl.h"
#endif

static struct llm_kv *cpu_kv(uint32_t elem, uint32_t n_layer, uint32_t kdim, uint32_t vdim,
			     uint32_t bs, uint32_t n_blocks, uint32_t max_seqs)
{
	char err[256];
	struct llm_kv_geom g = { .type = elem == 2 ? LLM_KV_F16 : LLM_KV_F32, .elem_bytes = elem,
				 .n_layer = n_layer, .kdim = kdim, .vdim = vdim, .block_size = bs,
				 .n_blocks = n_blocks };
	struct llm_kv *kv = llm_kv_create(&llm_backend_cpu, NULL, NULL, &g, max_seqs, err,
					  sizeof err);
	if (!kv)
		fail_msg("%s", err);
	return kv;
}

/* K and V element offsets of every reserved (seq, layer, pos) equal kv-store.c's. */
static void check_layout(uint32_t elem)
{
	struct llm_kv *kv = cpu_kv(elem, 3, 12, 8, 4, 7, 2);
	struct cuda_kv_layout L;
	assert_int_equal(cuda_plan_kv(&L, elem, 3, 4, 7, 12, 8, NULL, 0), 0);
	assert_int_equal(L.bytes, (size_t)7 * 3 * 4 * 20 * elem);
	assert_int_equal(llm_kv_seq_reserve(kv, 0, 9), 0);  /* blocks 0, 1, 2 */
	assert_int_equal(llm_kv_seq_reserve(kv, 1, 13), 0); /* blocks 3..6 */
	const unsigned char *base = llm_cpu_kv_k(kv, 0, 0, 0); /* block 0, layer 0, slot 0 */
	uint32_t lens[2] = { 9, 13 };
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t l = 0; l < 3; l++)
			for (uint32_t p = 0; p < lens[s]; p++) {
				uint32_t slot = cuda_plan_slot(&L, llm_kv_block(kv, s, p), p);
				size_t k = (size_t)((const unsigned char *)llm_cpu_kv_k(kv, s, l, p) - base);
				size_t v = (size_t)((const unsigned char *)llm_cpu_kv_v(kv, s, l, p) - base);
				assert_int_equal(cuda_plan_k_off(&L, l, slot) * elem, k);
				assert_int_equal(cuda_plan_v_off(&L, l, slot) * elem, v);
			}
	llm_kv_free(kv);
}

static void test_kv_layout_is_cpu_layout(void **state)
{
	(void)state;
	check_layout(2);
	check_layout(4);
}

static void test_kv_limits(void **state)
{
	(void)state;
	struct cuda_kv_layout L;
	char err[200];
	assert_int_equal(cuda_plan_kv(&L, 3, 1, 16, 4, 8, 8, err, sizeof err), CUDA_OP_EINVAL);
	assert_non_null(strstr(err, "element size"));
	assert_int_equal(cuda_plan_kv(&L, 2, 0, 16, 4, 8, 8, err, sizeof err), CUDA_OP_EINVAL);
	/* 2^31 blocks of 2^20-element layers: bytes overflow size_t */
	assert_int_equal(cuda_plan_kv(&L, 4, 1u << 20, 16, 1u << 31, 1u << 15, 1u << 15, err,
				      sizeof err), CUDA_OP_EINVAL);
	assert_non_null(strstr(err, "overflows"));
	/* slots must fit 32 bits: n_blocks * block_size <= UINT32_MAX */
	assert_int_equal(cuda_plan_kv(&L, 2, 1, 1u << 16, 1u << 16, 1, 1, err, sizeof err),
			 CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_kv(&L, 2, 16, 16, 1000, 512, 512, err, sizeof err), 0);
	assert_int_equal(L.layer_elems, 16 * 1024);
	assert_int_equal(L.block_elems, 16 * 16 * 1024);
}

static void test_gemm_tile(void **state)
{
	(void)state;
	assert_int_equal(cuda_plan_gemm_tile(100, 64, 1 << 20), 100);          /* all fit */
	assert_int_equal(cuda_plan_gemm_tile(128256, 2048, 64u << 20), 16384); /* 64 MiB / 4 KiB */
	assert_int_equal(cuda_plan_gemm_tile(10000, 2048, 300000), 64);        /* 73 rows fit */
	assert_int_equal(cuda_plan_gemm_tile(10000, 2048, 1000), 64);          /* floor of one tile */
	assert_int_equal(cuda_plan_gemm_tile(50, 2048, 1000), 50);
}

static void test_attn_limits(void **state)
{
	(void)state;
	char err[200];
	assert_int_equal(cuda_plan_attn(32, 8, 64, 64, err, sizeof err), 0);   /* Llama 1B */
	assert_int_equal(cuda_plan_attn(4, 1, 256, 256, err, sizeof err), 0);  /* Gemma 3 270M */
	assert_int_equal(cuda_plan_attn(9, 3, 64, 64, err, sizeof err), 0);    /* SmolLM2 135M */
	assert_int_equal(cuda_plan_attn(28, 4, 128, 128, err, sizeof err), 0); /* Qwen2 7B */
	assert_int_equal(cuda_plan_attn(8, 1, 512, 512, err, sizeof err), CUDA_OP_EINVAL);
	assert_non_null(strstr(err, "head dims 512/512"));
	assert_int_equal(cuda_plan_attn(32, 1, 64, 64, err, sizeof err), CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_attn(16, 1, 256, 256, err, sizeof err), CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_attn(10, 4, 64, 64, err, sizeof err), CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_attn(0, 0, 64, 64, err, sizeof err), CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_attn_segs(0), 1);
	assert_int_equal(cuda_plan_attn_segs(CUDA_ATTN_SEG), 1);
	assert_int_equal(cuda_plan_attn_segs(CUDA_ATTN_SEG + 1), 2);
	/* 64 rows x 8 KV heads x 3 segments x (4 heads x 64 values + 4 maxima + 4 sums) */
	assert_int_equal(cuda_plan_attn_part(64, 32, 8, 64, 3), (size_t)64 * 8 * 3 * (256 + 8));
}

static void test_matvec_grid(void **state)
{
	(void)state;
	uint32_t x, y;
	cuda_plan_matvec(2048, 1, &x, &y);
	assert_int_equal(x, 1);
	assert_int_equal(y, 2048 / CUDA_MATVEC_WARPS);
	cuda_plan_matvec(2049, CUDA_MATVEC_TILE + 1, &x, &y);
	assert_int_equal(x, 2);
	assert_int_equal(y, 2048 / CUDA_MATVEC_WARPS + 1);
}

static void test_weight_types(void **state)
{
	(void)state;
	char err[200];
	assert_int_equal(cuda_plan_weight(Q_Q4_K, 512, 2 * 144, err, sizeof err), 0);
	assert_int_equal(cuda_plan_weight(Q_F16, 45, 90, err, sizeof err), 0);
	assert_int_equal(cuda_plan_weight(Q_Q2_K, 256, 84, err, sizeof err), CUDA_OP_EINVAL);
	assert_non_null(strstr(err, "Q2_K"));
	assert_int_equal(cuda_plan_weight(Q_Q4_K, 100, 144, err, sizeof err), CUDA_OP_EINVAL);
	assert_int_equal(cuda_plan_weight(Q_Q8_0, 64, 60, err, sizeof err), CUDA_OP_EINVAL);
	assert_non_null(strstr(err, "60 bytes where 68 expected"));
	const uint32_t ok[] = { Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0,
				Q_Q4_K, Q_Q5_K, Q_Q6_K };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_int_equal(cuda_plan_weight(ok[i], 512, quant_row_bytes(ok[i], 512), err,
						  sizeof err), 0);
}

/* Two sequences interleaved, one starting mid-way: every field of the plan. */
static void test_batch_plan(void **state)
{
	(void)state;
	struct llm_kv *kv = cpu_kv(2, 2, 8, 8, 4, 16, 3);
	struct cuda_kv_layout L;
	assert_int_equal(cuda_plan_kv(&L, 2, 2, 4, 16, 8, 8, NULL, 0), 0);
	assert_int_equal(llm_kv_seq_reserve(kv, 2, 3), 0);  /* seq 2: block 0 */
	assert_int_equal(llm_kv_seq_reserve(kv, 0, 10), 0); /* seq 0: blocks 1, 2, 3 */
	/* seq 0 at positions 7..9, seq 2 at 0..2, interleaved */
	struct llm_batch_entry e[6] = {
		{ .seq = 0, .pos = 7, .token = 11 }, { .seq = 2, .pos = 0, .token = 12, .want_logits = 1 },
		{ .seq = 0, .pos = 8, .token = 13 }, { .seq = 2, .pos = 1, .token = 14 },
		{ .seq = 0, .pos = 9, .token = 15, .want_logits = 1 }, { .seq = 2, .pos = 2, .token = 16 },
	};
	struct llm_batch b = { .n = 6, .e = e };
	uint32_t seq_off[3], buf[64];
	struct cuda_batch_plan p;
	memset(buf, 0xAB, sizeof buf);
	cuda_plan_batch(kv, &L, &b, 1, seq_off, NULL, 0, &p); /* count only */
	assert_int_equal(p.n, 6);
	assert_int_equal(p.n_out, 2);
	assert_int_equal(p.words, 6 * 4 + 2 + 3 + 1);
	cuda_plan_batch(kv, &L, &b, 1, seq_off, buf, p.words - 1, &p); /* too small: untouched */
	assert_int_equal(buf[0], 0xABABABABu);
	cuda_plan_batch(kv, &L, &b, 1, seq_off, buf, sizeof buf / 4, &p);
	for (uint32_t i = 0; i < 6; i++) {
		assert_int_equal(buf[p.tokens + i], (uint32_t)e[i].token);
		assert_int_equal(buf[p.pos + i], e[i].pos);
		assert_int_equal(buf[p.slots + i], llm_kv_block(kv, e[i].seq, e[i].pos) * 4 + e[i].pos % 4);
		const uint32_t *tab = buf + p.tab + buf[p.tab_off + i];
		assert_int_equal(tab[e[i].pos / 4], llm_kv_block(kv, e[i].seq, e[i].pos));
	}
	assert_int_equal(buf[p.rows], 1);
	assert_int_equal(buf[p.rows + 1], 4);
	assert_int_equal(buf[p.tab_off + 0], 0); /* seq 0 first: its 3 blocks, then seq 2's one */
	assert_int_equal(buf[p.tab_off + 1], 3);
	assert_int_equal(buf[p.tab + 0], 1);
	assert_int_equal(buf[p.tab + 3], 0);
	assert_int_equal(buf[p.words], 0xABABABABu); /* nothing past the plan */
	cuda_plan_batch(kv, &L, &b, 0, seq_off, buf, sizeof buf / 4, &p); /* no logits wanted */
	assert_int_equal(p.n_out, 0);
	assert_int_equal(p.words, 6 * 4 + 3 + 1);
	llm_kv_free(kv);
}

#ifdef PLOT_CUDA
static uint16_t rnd_half(void)
{
	uint16_t h;
	do
		h = (uint16_t)test_rnd();
	while ((h & 0x7C00) == 0x7C00); /* no inf/NaN: NaN payloads need not agree */
	return h;
}

/* Random bytes (every bit pattern of quants, scales, high bits) with valid
 * f16 scale fields at their offsets. */
static void random_row(uint32_t type, uint8_t *row, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		row[i] = (uint8_t)test_rnd();
	uint32_t bb = quant_block_bytes(type);
	int offs[2] = { -1, -1 };
	switch (type) {
	case Q_F16: case Q_BF16:
		for (size_t i = 0; i < bytes / 2; i++) {
			uint16_t h = type == Q_F16 ? rnd_half() : (uint16_t)((test_rnd() & 0x3FFF) | 0x3000);
			memcpy(row + 2 * i, &h, 2);
		}
		return;
	case Q_F32:
		for (size_t i = 0; i < bytes / 4; i++) {
			float f = test_gauss();
			memcpy(row + 4 * i, &f, 4);
		}
		return;
	case Q_Q4_1: case Q_Q5_1: case Q_Q4_K: case Q_Q5_K: offs[0] = 0; offs[1] = 2; break;
	case Q_Q6_K: offs[0] = 208; break;
	default: offs[0] = 0; break;
	}
	for (size_t b = 0; b < bytes / bb; b++)
		for (int k = 0; k < 2; k++)
			if (offs[k] >= 0) {
				uint16_t h = rnd_half();
				memcpy(row + b * bb + offs[k], &h, 2);
			}
}

static void check_chunks(uint32_t type, uint32_t cols)
{
	size_t rb = quant_row_bytes(type, cols);
	uint8_t *row = aligned_alloc(16, (rb + 15) / 16 * 16);
	float *ref = malloc(cols * sizeof(float)), v[32];
	assert_non_null(row);
	random_row(type, row, rb);
	quant_dequant_row_ref(type, row, ref, cols);
	for (uint32_t c = 0; c < (cols + 31) / 32; c++) {
		assert_int_equal(cuda_host_chunk(type, row, c, cols, v), 0);
		for (uint32_t k = 0; k < 32; k++) {
			uint32_t e = c * 32 + k;
			if (e < cols && memcmp(&v[k], &ref[e], 4))
				fail_msg("%s cols %u: element %u is %a, reference %a", quant_name(type), cols,
					 e, v[k], ref[e]);
			if (e >= cols && v[k] != 0.0f)
				fail_msg("%s cols %u: element %u past the row is %a", quant_name(type), cols,
					 e, v[k]);
		}
	}
	free(row);
	free(ref);
}

static void test_chunk_decoder(void **state)
{
	(void)state;
	const uint32_t types[] = { Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0,
				   Q_Q4_K, Q_Q5_K, Q_Q6_K };
	test_rng_seed(12);
	for (int rep = 0; rep < 20; rep++)
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			check_chunks(types[i], quant_block_elems(types[i]) == 256 ? 768 : 96);
	check_chunks(Q_F32, 45);  /* partial last chunk, scalar path */
	check_chunks(Q_F16, 77);
	check_chunks(Q_BF16, 33);
	float v[32];
	assert_int_equal(cuda_host_chunk(Q_Q2_K, v, 0, 256, v), CUDA_OP_EINVAL);
}

/* act(g) as the GLU kernel computes it, against ops.c's reference (up = 1). */
static void test_activation(void **state)
{
	(void)state;
	for (int act = 0; act < 2; act++)
		for (float g = -30.0f; g <= 30.0f; g += 0.0137f) {
			float cpu = g, one = 1.0f;
			llm_glu_ref(&cpu, &one, 1, (enum llm_act)act);
			float gpu = cuda_host_act(g, act);
			float tol = 2e-6f * fabsf(cpu) + 1e-30f;
			if (fabsf(gpu - cpu) > tol)
				fail_msg("act %d g %.6g: %.9g vs CPU %.9g", act, g, gpu, cpu);
		}
}

/* cuda_matvec's kernel on the CPU: Y = X W^T against double, and a token's
 * bits alone equal its bits in a batch of 11 (two tiles, one partial). */
static void check_matvec(uint32_t type, uint32_t rows, uint32_t cols)
{
	enum { N = 11 };
	size_t rb = quant_row_bytes(type, cols);
	uint8_t *w = aligned_alloc(16, (rows * rb + 15) / 16 * 16);
	float *x = malloc((size_t)N * cols * sizeof(float)), *y = malloc((size_t)N * rows * 4);
	float *wf = malloc(cols * sizeof(float)), y1[16];
	assert_true(w && x && y && wf && rows <= 16);
	for (uint32_t r = 0; r < rows; r++)
		random_row(type, w + r * rb, rb);
	for (size_t i = 0; i < (size_t)N * cols; i++)
		x[i] = test_gauss();
	memset(y, 0xFF, (size_t)N * rows * 4);
	assert_int_equal(cuda_host_matvec(y, w, type, rb, rows, cols, x, N), 0);
	for (uint32_t r = 0; r < rows; r++) {
		quant_dequant_row_ref(type, w + r * rb, wf, cols);
		for (uint32_t t = 0; t < N; t++) {
			double ref = 0, mag = 0;
			for (uint32_t i = 0; i < cols; i++) {
				ref += (double)wf[i] * x[(size_t)t * cols + i];
				mag += fabs((double)wf[i] * x[(size_t)t * cols + i]);
			}
			float got = y[(size_t)t * rows + r];
			if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30))
				fail_msg("%s %ux%u: row %u token %u: %.9g vs %.9g", quant_name(type), rows, cols,
					 r, t, got, ref);
			assert_int_equal(cuda_host_matvec(y1, w, type, rb, rows, cols,
							  x + (size_t)t * cols, 1), 0);
			if (memcmp(&y1[r], &got, 4))
				fail_msg("%s: row %u token %u alone %a, in the batch %a", quant_name(type), r, t,
					 y1[r], got);
		}
	}
	free(w);
	free(x);
	free(y);
	free(wf);
}

static void test_matvec_kernel(void **state)
{
	(void)state;
	const uint32_t types[] = { Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0,
				   Q_Q4_K, Q_Q5_K, Q_Q6_K };
	test_rng_seed(99);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		check_matvec(types[i], 7, quant_block_elems(types[i]) == 256 ? 1280 : 1120);
	check_matvec(Q_F32, 5, 45);
	check_matvec(Q_F16, 9, 77);
	check_matvec(Q_BF16, 3, 1);
}

/* ---- cuda_attn's kernel run phase by phase on the CPU --------------------- */

#define AH 6   /* query heads */
#define AKV 2  /* KV heads: groups of 3 */
#define AHK 40 /* key dim: not a multiple of 32 (lanes' tails) */
#define AHV 24
#define ABS 4  /* block size: tables of many blocks */

/* out (AHV) for query q (AHK) of query head hq at entry (seq, pos), over
 * [lo, pos], in double through the CPU cache's rows */
static void attn_ref(struct llm_kv *kv, int f16, uint32_t seq, uint32_t pos, uint32_t lo,
		     uint32_t layer, uint32_t hq, const float *q, float scale, double *out)
{
	double *sc = malloc((pos + 1 - lo) * sizeof(double)), mx = -INFINITY, sum = 0;
	uint32_t kvh = hq / (AH / AKV);
	assert_non_null(sc);
	for (uint32_t j = lo; j <= pos; j++) {
		const void *k = llm_cpu_kv_k(kv, seq, layer, j);
		double d = 0;
		for (uint32_t i = 0; i < AHK; i++) {
			size_t e = (size_t)kvh * AHK + i;
			float kf = f16 ? fp16_to_f32(((const uint16_t *)k)[e]) : ((const float *)k)[e];
			d += (double)q[i] * kf;
		}
		sc[j - lo] = d * scale;
		mx = sc[j - lo] > mx ? sc[j - lo] : mx;
	}
	for (uint32_t j = lo; j <= pos; j++)
		sum += sc[j - lo] = exp(sc[j - lo] - mx);
	memset(out, 0, AHV * sizeof(double));
	for (uint32_t j = lo; j <= pos; j++) {
		const void *v = llm_cpu_kv_v(kv, seq, layer, j);
		for (uint32_t i = 0; i < AHV; i++) {
			size_t e = (size_t)kvh * AHV + i;
			float vf = f16 ? fp16_to_f32(((const uint16_t *)v)[e]) : ((const float *)v)[e];
			out[i] += sc[j - lo] / sum * vf;
		}
	}
	free(sc);
}

/* Random K/V in every reserved slot of both layers (as the CPU stores them). */
static void fill_kv(struct llm_kv *kv, int f16, uint32_t seq, uint32_t len)
{
	float k[AKV * AHK], v[AKV * AHV];
	for (uint32_t l = 0; l < 2; l++)
		for (uint32_t p = 0; p < len; p++) {
			for (int i = 0; i < AKV * AHK; i++)
				k[i] = test_gauss();
			for (int i = 0; i < AKV * AHV; i++)
				v[i] = test_gauss();
			if (f16) {
				llm_f16_row(llm_cpu_kv_k(kv, seq, l, p), k, AKV * AHK);
				llm_f16_row(llm_cpu_kv_v(kv, seq, l, p), v, AKV * AHV);
			} else {
				memcpy(llm_cpu_kv_k(kv, seq, l, p), k, sizeof k);
				memcpy(llm_cpu_kv_v(kv, seq, l, p), v, sizeof v);
			}
		}
}

/* The kernel over a CPU cache: seq 0 at positions len0 - 11 .. len0 - 1
 * (a prefill tail; tiles of 32 and, past CUDA_ATTN_SEG, segments cross),
 * seq 1 decoding at 36; all rows, then the compacted rows wanting logits;
 * with split the segments go to separate blocks and are combined. An
 * entry's bits do not depend on whether the batch was split when it has
 * one segment: *one_seg keeps seq 1's output across calls to compare. */
static void check_attn(int f16, uint32_t window, uint32_t len0, int split, float *one_seg)
{
	struct llm_kv *kv = cpu_kv(f16 ? 2 : 4, 2, AKV * AHK, AKV * AHV, ABS, 200, 2);
	struct cuda_kv_layout L;
	assert_int_equal(cuda_plan_kv(&L, f16 ? 2 : 4, 2, ABS, 200, AKV * AHK, AKV * AHV, NULL, 0), 0);
	assert_int_equal(llm_kv_seq_reserve(kv, 0, len0), 0); /* first: holds block 0 */
	assert_int_equal(llm_kv_seq_reserve(kv, 1, 37), 0);
	fill_kv(kv, f16, 0, len0);
	fill_kv(kv, f16, 1, 37);
	struct llm_batch_entry e[12];
	uint32_t n = 0;
	for (uint32_t p = len0 - 11; p < len0; p++)
		e[n++] = (struct llm_batch_entry){ .seq = 0, .pos = p, .want_logits = p % 3 == 0 };
	e[n++] = (struct llm_batch_entry){ .seq = 1, .pos = 36, .want_logits = 1 };
	struct llm_batch b = { .n = n, .e = e };
	uint32_t seq_off[2], buf[512];
	struct cuda_batch_plan p;
	cuda_plan_batch(kv, &L, &b, 1, seq_off, buf, 512, &p);
	assert_true(p.words <= 512);
	uint32_t n_seg = split ? cuda_plan_attn_segs(len0) : 1;
	float *part = split ? malloc(cuda_plan_attn_part(n, AH, AKV, AHV, n_seg) * sizeof(float)) : NULL;
	float q[12 * AH * AHK], out[12 * AH * AHV], scale = 0.158f;
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
		q[i] = f16 ? fp16_to_f32(f32_to_fp16(test_gauss())) : test_gauss();
	for (int use_rows = 0; use_rows < 2; use_rows++) {
		uint32_t nr = use_rows ? p.n_out : n;
		memset(out, 0xFF, sizeof out); /* NaN: an unwritten element fails */
		if (part)
			memset(part, 0xFF, cuda_plan_attn_part(n, AH, AKV, AHV, n_seg) * sizeof(float));
		struct cuda_attn_args a = {
			.out = out, .q = q, .kv = llm_cpu_kv_k(kv, 0, 0, 0), .L = L, .layer = 1,
			.pos = buf + p.pos, .tab = buf + p.tab, .tab_off = buf + p.tab_off,
			.rows = use_rows ? buf + p.rows : NULL, .n = n, .n_rows = nr, .n_head = AH,
			.n_head_kv = AKV, .head_dim_k = AHK, .head_dim_v = AHV, .window = window,
			.scale = scale, .round_p = f16, .part = part, .n_seg = n_seg,
		};
		assert_int_equal(cuda_host_attn(&a), 0);
		for (uint32_t j = 0; j < nr; j++) {
			uint32_t t = use_rows ? buf[p.rows + j] : j;
			uint32_t lo = window && e[t].pos + 1 > window ? e[t].pos + 1 - window : 0;
			for (uint32_t h = 0; h < AH; h++) {
				double ref[AHV];
				attn_ref(kv, f16, e[t].seq, e[t].pos, lo, 1, h, q + ((size_t)t * AH + h) * AHK,
					 scale, ref);
				for (uint32_t i = 0; i < AHV; i++) {
					double got = out[((size_t)j * AH + h) * AHV + i];
					/* f16: probabilities rounded to half (2^-11 relative each) */
					if (!(fabs(got - ref[i]) <= (f16 ? 2e-3 : 2e-5)))
						fail_msg("f16 %d window %u len %u split %d rows %d: entry %u head %u "
							 "dim %u: %.7g vs %.7g", f16, window, len0, split, use_rows, t, h,
							 i, got, ref[i]);
				}
			}
		}
		if (!use_rows && one_seg && split) /* seq 1's row: equal to the unsplit run's */
			assert_memory_equal(one_seg, out + (size_t)(n - 1) * AH * AHV, AH * AHV * 4);
		else if (!use_rows && one_seg)
			memcpy(one_seg, out + (size_t)(n - 1) * AH * AHV, AH * AHV * 4);
	}
	free(part);
	llm_kv_free(kv);
}

static void test_attention_kernel(void **state)
{
	(void)state;
	float one_seg[AH * AHV];
	for (int f16 = 0; f16 < 2; f16++) {
		/* the same random cache and q for the unsplit and split runs */
		const uint32_t windows[] = { 0, 8, 40, 300 };
		for (size_t w = 0; w < 4; w++)
			for (int split = 0; split < 2; split++) {
				test_rng_seed(7 + w);
				check_attn(f16, windows[w], 45, split, NULL);
				test_rng_seed(70 + w);
				check_attn(f16, windows[w], 600, split, w == 0 ? one_seg : NULL);
			}
	}
}

/* ---- the whole backend on the emulated device ------------------------------ */

struct pair {
	struct llm_model *m[2]; /* cpu (float activations), cuda (emulated) */
	struct llm_kv *kv[2];
	uint32_t n_vocab;
	double worst;           /* largest error seen, relative to the row's max |logit| */
};

static void pair_open(struct pair *p, const char *path, enum llm_kv_type kvt)
{
	char err[256];
	const char *dev[2] = { "cpu", "cuda" };
	cuda_set_emulation(1);
	for (int i = 0; i < 2; i++) {
		p->m[i] = llm_model_load_on(path, dev[i], err, sizeof err);
		if (!p->m[i])
			fail_msg("%s on %s: %s", path, dev[i], err);
		p->kv[i] = llm_kv_new(p->m[i], kvt, 1 << 20, 4, 4, err, sizeof err);
		if (!p->kv[i])
			fail_msg("%s", err);
	}
	assert_string_equal(llm_model_device(p->m[1]), "cuda:0");
	llm_model_set_float_acts(p->m[0], 1);
	p->n_vocab = llm_model_hparams(p->m[0])->n_vocab;
	p->worst = 0;
}

static void pair_close(struct pair *p)
{
	for (int i = 0; i < 2; i++) {
		llm_kv_free(p->kv[i]);
		llm_model_free(p->m[i]);
	}
	cuda_set_emulation(0);
}

/* One batch on both; every logit row within tol of the CPU's (relative to
 * the row's largest |logit|). */
static void pair_step(struct pair *p, const struct llm_batch_entry *e, uint32_t n, double tol)
{
	char err[256];
	uint32_t n_out = 0;
	for (uint32_t i = 0; i < n; i++)
		n_out += e[i].want_logits;
	float *lg[2];
	struct llm_batch b = { .n = n, .e = e };
	for (int i = 0; i < 2; i++) {
		lg[i] = malloc((size_t)(n_out ? n_out : 1) * p->n_vocab * sizeof(float));
		if (llm_forward(p->m[i], p->kv[i], &b, lg[i], err, sizeof err))
			fail_msg("forward on %s: %s", llm_model_device(p->m[i]), err);
	}
	for (uint32_t r = 0; r < n_out; r++) {
		const float *c = lg[0] + (size_t)r * p->n_vocab, *g = lg[1] + (size_t)r * p->n_vocab;
		double mx = 0, d = 0;
		for (uint32_t v = 0; v < p->n_vocab; v++) {
			mx = fabs(c[v]) > mx ? fabs(c[v]) : mx;
			d = fabs((double)g[v] - c[v]) > d || g[v] != g[v] ? fabs((double)g[v] - c[v]) : d;
		}
		if (!(d <= tol * mx))
			fail_msg("logit row %u of %u: max error %.3g, %.3g of the largest logit %.3g "
				 "(tolerance %.3g)", r, n_out, d, d / mx, mx, tol);
		p->worst = d / mx > p->worst ? d / mx : p->worst;
	}
	free(lg[0]);
	free(lg[1]);
}

/* Seq 0's 70-token prompt in two batches of 40 and 30 and seq 2's in one of
 * 70 (the cuBLAS path: f16 operands, looser), then decode steps of seq 0
 * beside a 5-token prefill and decode of seq 1 (matvec path, last-layer
 * row compaction), past the gemma fixture's window of 3; then seq 3's 300
 * positions, whose attention splits into segments. */
static void check_model(const char *path, enum llm_kv_type kvt)
{
	struct pair p;
	struct llm_batch_entry e[80];
	/* f32 activations on both sides: float summation order only; an F16
	 * cache adds probabilities rounded at different points (2^-11) */
	double tight = kvt == LLM_KV_F16 ? 5e-3 : 1e-4;
	pair_open(&p, path, kvt);
	for (uint32_t s = 0; s < 3; s++) {
		uint32_t seq = s < 2 ? 0 : 2, lo = s == 1 ? 40 : 0, hi = s == 0 ? 40 : 70;
		for (uint32_t i = lo; i < hi; i++)
			e[i - lo] = (struct llm_batch_entry){ .seq = seq, .pos = i,
							      .token = (int32_t)((i * 7 + 3 + seq) % p.n_vocab),
							      .want_logits = i % 9 == 0 || i + 1 == hi };
		/* f16 operands: ~2^-11 relative per product, worst over a row's sums */
		pair_step(&p, e, hi - lo, hi - lo > CUDA_MATVEC_MAX_N ? 2e-2 : tight);
	}
	for (uint32_t s = 0; s < 6; s++) {
		uint32_t n = 0;
		e[n++] = (struct llm_batch_entry){ .seq = 0, .pos = 70 + s, .token = (int32_t)(s * 5 % p.n_vocab),
						   .want_logits = 1 };
		for (uint32_t k = 0; k < (s == 0 ? 5u : 1u); k++)
			e[n++] = (struct llm_batch_entry){ .seq = 1, .pos = s == 0 ? k : 4 + s,
							   .token = (int32_t)((k + s * 3 + 1) % p.n_vocab),
							   .want_logits = s > 0 || k == 4 };
		pair_step(&p, e, n, tight);
	}
	/* seq 3: 300 positions in batches of 60, so attention splits in two
	 * segments (CUDA_ATTN_SEG 256) for the last ones */
	for (uint32_t lo = 0; lo < 300; lo += 60) {
		for (uint32_t i = 0; i < 60; i++)
			e[i] = (struct llm_batch_entry){ .seq = 3, .pos = lo + i,
							 .token = (int32_t)((lo + i * 11) % p.n_vocab),
							 .want_logits = i == 59 || i == 0 };
		pair_step(&p, e, 60, tight);
	}
	print_message("%s %s: worst logit error %.3g of the largest\n", path,
		      kvt == LLM_KV_F16 ? "f16" : "f32", p.worst);
	pair_close(&p);
}

static void test_backend_emulated(void **state)
{
	(void)state;
	check_model("tests/fixtures/llm-tiny.gguf", LLM_KV_F16);
	check_model("tests/fixtures/llm-tiny.gguf", LLM_KV_F32);
	check_model("tests/fixtures/llm-tiny-gemma3.gguf", LLM_KV_F16);
	check_model("tests/fixtures/llm-tiny-gemma3.gguf", LLM_KV_F32);
	check_model("tests/fixtures/llm-tiny-qwen2.gguf", LLM_KV_F16);
	check_model("tests/fixtures/llm-tiny-f16.gguf", LLM_KV_F16);
}

/* Out of device memory while uploading, allocating the cache or running a
 * batch: an error naming the device and what was being done, and nothing
 * leaked (LeakSanitizer in the SAN build). */
static void test_backend_out_of_memory(void **state)
{
	(void)state;
	char err[256];
	const char *tiny = "tests/fixtures/llm-tiny.gguf";
	cuda_set_emulation(1);
	cuda_emu_set_budget(20000); /* token_embd and a few layer tensors */
	assert_null(llm_model_load_on(tiny, "cuda", err, sizeof err));
	if (!strstr(err, "cuda:0: out of device memory uploading blk.") || !strstr(err, " MiB"))
		fail_msg("upload: %s", err);
	cuda_set_emulation(1);
	struct llm_model *m = llm_model_load_on(tiny, "cuda", err, sizeof err);
	if (!m)
		fail_msg("%s", err);
	cuda_emu_set_budget(1000);
	assert_null(llm_kv_new(m, LLM_KV_F16, 1 << 20, 4, 2, err, sizeof err));
	if (!strstr(err, "cuda:0: out of device memory for the KV cache"))
		fail_msg("kv: %s", err);
	cuda_emu_set_budget(SIZE_MAX);
	struct llm_kv *kv = llm_kv_new(m, LLM_KV_F16, 1 << 20, 4, 2, err, sizeof err);
	assert_non_null(kv);
	cuda_emu_set_budget(100); /* the forward pass's scratch does not fit */
	struct llm_batch_entry e = { .seq = 0, .pos = 0, .token = 1, .want_logits = 1 };
	struct llm_batch b = { .n = 1, .e = &e };
	float logits[64];
	assert_int_equal(llm_forward(m, kv, &b, logits, err, sizeof err), -LLM_ENOMEM);
	if (!strstr(err, "cuda:0: forward: cudaMalloc(") || !strstr(err, "out of memory"))
		fail_msg("forward: %s", err);
	cuda_emu_set_budget(SIZE_MAX); /* and the next batch runs */
	assert_int_equal(llm_forward(m, kv, &b, logits, err, sizeof err), 0);
	llm_kv_free(kv);
	llm_model_free(m);
	cuda_set_emulation(0);
}

/* Two emulated CUDA models of path, fused kernels on (m[0]) and off (m[1]):
 * every batch's logits and the whole KV cache bitwise the same, through
 * decode batches, prefill chunks of up to 64 tokens and a 70-token prefill
 * (cuBLAS path), the split attention past 256 positions included. Returns
 * the launches per layer of a batch-1 decode, fused and not. */
static void fused_vs_unfused(const char *path, enum llm_kv_type kvt, uint32_t launches[2])
{
	char err[256];
	struct llm_model *m[2];
	struct llm_kv *kv[2];
	struct llm_batch_entry e[80];
	cuda_set_emulation(1);
	for (int i = 0; i < 2; i++) {
		if (!(m[i] = llm_model_load_on(path, "cuda", err, sizeof err)) ||
		    !(kv[i] = llm_kv_new(m[i], kvt, 1 << 20, 4, 4, err, sizeof err)))
			fail_msg("%s: %s", path, err);
	}
	assert_int_equal(cuda_backend_set_fused(m[1], 0), 0);
	uint32_t nv = llm_model_hparams(m[0])->n_vocab, pos[4] = { 0 };
	size_t lg_bytes = 80 * (size_t)nv * sizeof(float);
	float *lg[2] = { malloc(lg_bytes), malloc(lg_bytes) };
	/* batches: (seq, tokens) — prefill 40, 30 (matvec), 70 (cuBLAS), then
	 * decode of three sequences, and seq 3 on to 300 positions (split) */
	const uint32_t plan[][2] = { { 0, 40 }, { 0, 30 }, { 2, 70 }, { 3, 64 }, { 3, 64 },
				     { 3, 64 }, { 3, 64 }, { 3, 44 } };
	for (size_t s = 0; s < sizeof plan / sizeof plan[0] + 4; s++) {
		uint32_t n = 0;
		if (s < sizeof plan / sizeof plan[0])
			for (uint32_t i = 0; i < plan[s][1]; i++, n++)
				e[n] = (struct llm_batch_entry){ .seq = plan[s][0], .pos = pos[plan[s][0]]++,
								 .token = (int32_t)((i * 13 + s) % nv),
								 .want_logits = i % 7 == 0 || i + 1 == plan[s][1] };
		else /* decode: 1 then 3 sequences */
			for (uint32_t q = 0; q < (s == sizeof plan / sizeof plan[0] ? 1u : 3u); q++, n++)
				e[n] = (struct llm_batch_entry){ .seq = q == 0 ? 0 : q == 1 ? 2 : 3,
								 .pos = pos[q == 0 ? 0 : q == 1 ? 2 : 3]++,
								 .token = (int32_t)((s * 5 + q) % nv),
								 .want_logits = 1 };
		uint32_t n_out = 0;
		for (uint32_t i = 0; i < n; i++)
			n_out += e[i].want_logits;
		struct llm_batch b = { .n = n, .e = e };
		for (int i = 0; i < 2; i++)
			if (llm_forward(m[i], kv[i], &b, lg[i], err, sizeof err))
				fail_msg("%s: forward: %s", path, err);
		if (memcmp(lg[0], lg[1], (size_t)n_out * nv * sizeof(float)))
			fail_msg("%s: batch %zu (%u entries): fused logits differ from unfused", path, s, n);
		if (s == sizeof plan / sizeof plan[0]) /* the batch-1 decode (71 positions: no split) */
			for (int i = 0; i < 2; i++) {
				uint32_t pass;
				assert_int_equal(cuda_backend_launches(m[i], &launches[i], &pass), 0);
			}
	}
	const struct cuda_kv_store *ks[2] = { kv[0]->store, kv[1]->store };
	assert_memory_equal(ks[0]->d, ks[1]->d, ks[0]->L.bytes);
	for (int i = 0; i < 2; i++) {
		free(lg[i]);
		llm_kv_free(kv[i]);
		llm_model_free(m[i]);
	}
	cuda_set_emulation(0);
}

/* The fused kernels (cuda_add_rmsnorm, cuda_rope_kv, cuda_matvec_multi for
 * q/k/v and gate/up) against the ops they
 * replace, end to end on every architecture, weight kind and cache type,
 * and the launches they save in layer 0 of these 2-layer models during a
 * batch-1 decode, exactly as counted by hand from cuda-forward.c (a change
 * there must update these). Layer 0 still runs its own first RMSNorm; a
 * middle layer of a deeper model finds it fused into the previous layer's
 * last add, one launch fewer (llama 9, qwen2 9, gemma3 11: tests/gpu/run
 * reports them from llm-compare). */
static void test_fused_kernels(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		enum llm_kv_type kvt;
		uint32_t fused, unfused;
	} cases[] = {
		{ "tests/fixtures/llm-tiny.gguf", LLM_KV_F16, 10, 17 },      /* llama */
		{ "tests/fixtures/llm-tiny.gguf", LLM_KV_F32, 10, 16 },      /* no q rounding */
		{ "tests/fixtures/llm-tiny-f16.gguf", LLM_KV_F16, 10, 17 },
		{ "tests/fixtures/llm-tiny-qwen2.gguf", LLM_KV_F16, 10, 20 }, /* biases in q/k/v's launch */
		/* QK-norm, post-norms; 6 layers: layer 3 is measured */
		{ "tests/fixtures/llm-tiny-gemma3.gguf", LLM_KV_F16, 11, 21 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint32_t l[2];
		fused_vs_unfused(cases[i].path, cases[i].kvt, l);
		print_message("%s %s: launches per layer, batch-1 decode: %u fused, %u unfused\n",
			      cases[i].path, cases[i].kvt == LLM_KV_F16 ? "f16" : "f32", l[0], l[1]);
		assert_int_equal(l[0], cases[i].fused);
		assert_int_equal(l[1], cases[i].unfused);
	}
}

/* llm_model_device_mem: on the (emulated) GPU its name, its size and
 * what the live allocations leave free, a free giving its bytes back; on
 * the CPU nothing (-LLM_EUNSUP). */
static void test_device_mem(void **state)
{
	(void)state;
	char err[256];
	struct llm_device_mem dm, dm2;
	const char *tiny = "tests/fixtures/llm-tiny.gguf";
	struct llm_model *c = llm_model_load(tiny, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(llm_model_device_mem(c, &dm, err, sizeof err), -LLM_EUNSUP);
	llm_model_free(c);
	cuda_set_emulation(1);
	cuda_emu_set_budget(64u << 20);
	struct llm_model *m = llm_model_load_on(tiny, "cuda", err, sizeof err);
	if (!m)
		fail_msg("%s", err);
	assert_string_equal(llm_model_device(m), "cuda:0");
	assert_int_equal(llm_model_device_mem(m, &dm, err, sizeof err), 0);
	assert_string_equal(dm.name, "emulated");
	assert_int_equal(dm.total_bytes, 64u << 20);
	size_t w = cuda_backend_weight_bytes(m);
	assert_true(w > 0 && dm.free_bytes <= dm.total_bytes - w);
	struct llm_kv *kv = llm_kv_new(m, LLM_KV_F16, 1 << 20, 4, 2, err, sizeof err);
	assert_non_null(kv);
	assert_int_equal(llm_model_device_mem(m, &dm2, err, sizeof err), 0);
	assert_true(dm2.free_bytes <= dm.free_bytes - (1 << 20) + 4096);
	assert_true(dm2.free_bytes < dm.free_bytes);
	llm_kv_free(kv); /* its bytes come back */
	assert_int_equal(llm_model_device_mem(m, &dm2, err, sizeof err), 0);
	assert_int_equal(dm2.free_bytes, dm.free_bytes);
	llm_model_free(m);
	size_t fr, tot;
	assert_int_equal(cuda_mem_info(&fr, &tot, err, sizeof err), 0);
	assert_int_equal(fr, tot); /* everything given back */
	assert_int_equal(tot, 64u << 20);
	cuda_set_emulation(0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_layout_is_cpu_layout),
		cmocka_unit_test(test_kv_limits),
		cmocka_unit_test(test_gemm_tile),
		cmocka_unit_test(test_attn_limits),
		cmocka_unit_test(test_matvec_grid),
		cmocka_unit_test(test_weight_types),
		cmocka_unit_test(test_batch_plan),
#ifdef PLOT_CUDA
		cmocka_unit_test(test_chunk_decoder),
		cmocka_unit_test(test_activation),
		cmocka_unit_test(test_matvec_kernel),
		cmocka_unit_test(test_attention_kernel),
		cmocka_unit_test(test_backend_emulated),
		cmocka_unit_test(test_backend_out_of_memory),
		cmocka_unit_test(test_device_mem),
		cmocka_unit_test(test_fused_kernels),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
