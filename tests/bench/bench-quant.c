/*
 * bench-quant — matrix x vector throughput of each weight type's vec_dot,
 * reference vs the dispatched fast path, on the shipped models' shapes:
 * 32-element types as SmolLM2's ffn_up (1536 rows of 576), K-quants as
 * Gemma 3's ffn_down (640 rows of 2048). Weights fit in L2/L3, so this
 * measures the kernels, not DRAM. Best of 5 timed runs per figure.
 * Also a batch of 16 activation rows through quant_vec_dot_n (ns per row
 * per activation). Last line: "quant: <type>_ref_ns=.. <type>_fast_ns=..
 * <type>_speedup=.. <type>_b16_ns=.. ..." (ns per row).
 */
#include "llm/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile float sink;

/* ns per row of one matvec, best of 5 */
static double time_matvec(uint32_t t, int rows, int n, const uint8_t *w, const void *xq)
{
	size_t rb = quant_row_bytes(t, (uint64_t)n);
	double best = 1e9;
	for (int rep = 0; rep < 5; rep++) {
		int iters = 0;
		double t0 = now(), el;
		do {
			float s = 0;
			for (int r = 0; r < rows; r++)
				s += quant_vec_dot(t, n, w + (size_t)r * rb, xq);
			sink = s;
			iters++;
		} while ((el = now() - t0) < 0.02);
		if (el / iters < best)
			best = el / iters;
	}
	return best * 1e9 / rows;
}

/* ns per (row x activation) of a batched matvec: 16 activation rows */
static double time_matvec16(uint32_t t, int rows, int n, const uint8_t *w, const uint8_t *xq,
			    size_t xrb)
{
	size_t rb = quant_row_bytes(t, (uint64_t)n);
	static float y[16];
	double best = 1e9;
	for (int rep = 0; rep < 5; rep++) {
		int iters = 0;
		double t0 = now(), el;
		do {
			for (int r = 0; r < rows; r++)
				quant_vec_dot_n(t, n, w + (size_t)r * rb, xq, xrb, 16, y, 1);
			sink = y[0];
			iters++;
		} while ((el = now() - t0) < 0.02);
		if (el / iters < best)
			best = el / iters;
	}
	return best * 1e9 / rows / 16;
}

static void bench(uint32_t t, int rows, int n, char *line, size_t cap)
{
	size_t rb = quant_row_bytes(t, (uint64_t)n);
	uint32_t dt = quant_dot_type(t);
	float *f = malloc((size_t)rows * n * sizeof *f);
	uint8_t *w = malloc(rb * rows);
	size_t xrb = quant_row_bytes(dt, (uint64_t)n);
	uint8_t *xq = malloc(xrb * 16);
	srand(1);
	for (size_t i = 0; i < (size_t)rows * n; i++)
		f[i] = (float)rand() / RAND_MAX - 0.5f;
	for (int r = 0; r < rows; r++)
		quant_quantize_row(t, f + (size_t)r * n, w + (size_t)r * rb, n);
	for (int k = 0; k < 16; k++)
		quant_quantize_row(dt, f + (size_t)k * n, xq + k * xrb, n);
	quant_force_ref(1);
	double ref = time_matvec(t, rows, n, w, xq);
	quant_force_ref(0);
	double fast = time_matvec(t, rows, n, w, xq);
	double b16 = time_matvec16(t, rows, n, w, xq, xrb);
	printf("%-5s %4d x %4d  ref %8.1f ns/row  %-6s %7.1f ns/row  %6.2f GB/s  x%4.1f"
	       "  | batch16 %6.1f ns/row/act  x%.1f\n",
	       quant_name(t), rows, n, ref, quant_impl_name(), fast, (double)rb / fast, ref / fast,
	       b16, fast / b16);
	size_t len = strlen(line);
	snprintf(line + len, cap - len, " %s_ref_ns=%.1f %s_fast_ns=%.1f %s_speedup=%.2f %s_b16_ns=%.1f",
		 quant_name(t), ref, quant_name(t), fast, quant_name(t), ref / fast, quant_name(t), b16);
	free(f);
	free(w);
	free(xq);
}

int main(void)
{
	static const uint32_t legacy[] = { Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q5_0, Q_Q5_1, Q_Q8_0 };
	static const uint32_t kq[] = { Q_Q4_K, Q_Q5_K, Q_Q6_K };
	char line[2048] = "quant:";
	printf("dispatch: %s\n", quant_impl_name());
	for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
		bench(legacy[i], 1536, 576, line, sizeof line);
	for (size_t i = 0; i < sizeof kq / sizeof kq[0]; i++)
		bench(kq[i], 640, 2048, line, sizeof line);
	printf("%s impl=%s\n", line, quant_impl_name());
	return 0;
}
