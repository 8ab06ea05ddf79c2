/*
 * bench-sampler.c — cost of one smp_sample() on a Gemma-sized vocabulary.
 *
 * Usage: bench-sampler [n_vocab [iters]]   (default 262144, 200)
 *
 * Logits are Gaussian-like (sum of uniforms, sd ~3), a shape close to a
 * real model's. Each configuration takes the same logits; the peer figure
 * is a plain arg-max loop over the raw array, the floor for any sampler.
 * Last line: sampler: vocab=N argmax_us=X greedy_us=X default_us=X ...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "plot/sampler.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void fill(float *l, int n)
{
	uint64_t x = 12345;

	for (int i = 0; i < n; i++) {
		float s = 0;

		for (int k = 0; k < 4; k++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			s += (float)(x >> 40) / (float)(1u << 24);
		}
		l[i] = (s - 2.0f) * 5.2f; /* sd ~3 */
	}
}

static int argmax(const float *l, int n)
{
	int b = 0;

	for (int i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

/* Microseconds per sample for params p; history of 64 tokens first. */
static double per_sample(const struct smp_params *p, const float *l, int n,
			 int iters)
{
	char err[256];
	struct smp *s = smp_new(p, err, sizeof(err));
	double t0;
	long sink = 0;

	if (!s) {
		fprintf(stderr, "bench-sampler: %s\n", err);
		exit(1);
	}
	for (int i = 0; i < 64; i++)
		smp_accept(s, (i * 7919) % n);
	t0 = now_us();
	for (int i = 0; i < iters; i++)
		sink += smp_sample(s, l, n);
	t0 = (now_us() - t0) / iters;
	smp_free(s);
	return sink < 0 ? -1 : t0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 262144;
	int iters = argc > 2 ? atoi(argv[2]) : 200;
	struct smp_params dflt, greedy, nucleus, full, pen;
	double t_arg, t_greedy, t_dflt, t_nuc, t_full, t_pen;
	float *l;
	long sink = 0;

	if (n < 2 || n > 1 << 24 || iters < 1 || iters > 1000000) {
		fprintf(stderr, "bench-sampler: n_vocab in [2, 2^24], iters in [1, 1e6]\n");
		return 2;
	}
	l = malloc(sizeof(*l) * (size_t)n);
	if (!l)
		return 1;
	fill(l, n);
	smp_params_default(&dflt);
	greedy = dflt;
	greedy.temperature = 0;
	nucleus = dflt;
	nucleus.top_k = 0;
	nucleus.min_p = 0;
	full = nucleus;
	full.top_p = 1;
	full.temperature = 1;
	pen = dflt;
	pen.repetition_penalty = 1.1f;
	pen.frequency_penalty = 0.2f;
	pen.presence_penalty = 0.2f;
	t_arg = now_us();
	for (int i = 0; i < iters; i++)
		sink += argmax(l, n);
	t_arg = (now_us() - t_arg) / iters;
	t_greedy = per_sample(&greedy, l, n, iters);
	t_dflt = per_sample(&dflt, l, n, iters);
	t_nuc = per_sample(&nucleus, l, n, iters);
	t_full = per_sample(&full, l, n, iters);
	t_pen = per_sample(&pen, l, n, iters);
	printf("vocab %d, %d iterations, microseconds per sample (sink %ld)\n",
	       n, iters, sink % 7);
	printf("  raw argmax loop         %9.1f\n", t_arg);
	printf("  greedy                  %9.1f\n", t_greedy);
	printf("  default (k40 p.95 m.05) %9.1f\n", t_dflt);
	printf("  top-p .95 only          %9.1f\n", t_nuc);
	printf("  whole vocabulary, T=1   %9.1f\n", t_full);
	printf("  default + penalties     %9.1f\n", t_pen);
	printf("sampler: vocab=%d argmax_us=%.1f greedy_us=%.1f default_us=%.1f "
	       "top_p_us=%.1f full_us=%.1f penalties_us=%.1f "
	       "default_vs_argmax=%.2f\n", n, t_arg, t_greedy, t_dflt, t_nuc,
	       t_full, t_pen, t_dflt / t_arg);
	free(l);
	return 0;
}
