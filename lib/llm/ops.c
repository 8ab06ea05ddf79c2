/*
 * ops.c — per-row operations of the forward pass: RMSNorm, RoPE, softmax,
 * gated activations, small float dot products.
 *
 * Invariant: every reduction runs in a fixed order over its own row only, so
 * a row's result never depends on other rows in the batch or on threads.
 * Sums of squares and softmax denominators accumulate in double; the rest is
 * float. The attention dot/axpy have AVX2 versions (ops-avx2.c), chosen once
 * per process.
 */
#include <math.h>
#include <stdatomic.h>

#include "llm/model-impl.h"

void llm_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps)
{
	double ss = 0.0;
	for (uint32_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(ss / n + eps));
	for (uint32_t i = 0; i < n; i++)
		y[i] = x[i] * r * w[i];
}

/* cs gets (n_rot/2) pairs (cos, sin) for position pos; the angle of pair i
 * is pos * scale * base^(-2i/n_rot) / ff[i] (ff: rope_freqs.weight, Llama 3.1
 * style, or NULL), computed in double. */
void llm_rope_table(float *cs, uint32_t n_rot, uint32_t pos, float base, float scale,
		    const float *ff)
{
	for (uint32_t i = 0; i < n_rot / 2; i++) {
		double th = (double)pos * scale * pow(base, -2.0 * i / n_rot);
		if (ff)
			th /= ff[i];
		cs[2 * i] = (float)cos(th);
		cs[2 * i + 1] = (float)sin(th);
	}
}

/* Rotate the first n_rot elements of one head vector x. */
void llm_rope_apply(float *x, const float *cs, uint32_t n_rot, enum llm_rope_mode mode)
{
	uint32_t half = n_rot / 2;
	for (uint32_t i = 0; i < half; i++) {
		uint32_t a = mode == LLM_ROPE_NEOX ? i : 2 * i;
		uint32_t b = mode == LLM_ROPE_NEOX ? i + half : 2 * i + 1;
		float c = cs[2 * i], s = cs[2 * i + 1];
		float x0 = x[a], x1 = x[b];
		x[a] = x0 * c - x1 * s;
		x[b] = x0 * s + x1 * c;
	}
}

void llm_softmax(float *x, uint32_t n)
{
	float mx = -INFINITY;
	for (uint32_t i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	double sum = 0.0;
	for (uint32_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - mx);
		sum += x[i];
	}
	float inv = (float)(1.0 / sum);
	for (uint32_t i = 0; i < n; i++)
		x[i] *= inv;
}

/* gate[i] = act(gate[i]) * up[i] */
void llm_glu(float *gate, const float *up, uint32_t n, enum llm_act act)
{
	const float k = 0.7978845608028654f; /* sqrt(2/pi) */
	for (uint32_t i = 0; i < n; i++) {
		float g = gate[i];
		if (act == LLM_ACT_SILU)
			g = g / (1.0f + expf(-g));
		else
			g = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g)));
		gate[i] = g * up[i];
	}
}

float llm_dot_f32_avx2(const float *a, const float *b, uint32_t n);
void llm_axpy_avx2(float *y, float a, const float *x, uint32_t n);

/* Eight partial sums so the compiler can vectorise; the order is fixed. */
static float dot_f32_scalar(const float *a, const float *b, uint32_t n)
{
	float s[8] = {0};
	uint32_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (uint32_t j = 0; j < 8; j++)
			s[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s[0] += a[i] * b[i];
	return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static void axpy_scalar(float *y, float a, const float *x, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		y[i] += a * x[i];
}

static int have_avx2(void)
{
	static _Atomic int cached = -1; /* every thread computes the same value */
	int v = atomic_load_explicit(&cached, memory_order_relaxed);
	if (v < 0) {
		v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
		atomic_store_explicit(&cached, v, memory_order_relaxed);
	}
	return v;
}

float llm_dot_f32(const float *a, const float *b, uint32_t n)
{
	return have_avx2() ? llm_dot_f32_avx2(a, b, n) : dot_f32_scalar(a, b, n);
}

void llm_axpy(float *y, float a, const float *x, uint32_t n)
{
	if (have_avx2())
		llm_axpy_avx2(y, a, x, n);
	else
		axpy_scalar(y, a, x, n);
}
