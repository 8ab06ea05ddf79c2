/*
 * ops.c — per-row operations of the forward pass: RMSNorm, RoPE, softmax,
 * gated activations, small float dot products.
 *
 * Invariant: every reduction runs in a fixed order over its own row only, so
 * a row's result never depends on other rows in the batch or on threads.
 * Sums of squares and softmax denominators accumulate in double, in eight
 * partial sums (element i into sum i % 8) combined in a fixed tree; the rest
 * is float. glu, rmsnorm, softmax and dot have AVX2 versions
 * (ops-avx2.c), chosen once per process; the first three give the same bits
 * as the reference versions here (see ops-impl.h), dot does not.
 *
 * Activations are g * sigmoid(z) with z = g (SiLU) or z = 2u (GELU-tanh:
 * 0.5 (1 + tanh u) = sigmoid(2u)), sigmoid(z) = 1 / (1 + e) for z >= 0 and
 * e / (1 + e) below, e = exp(-|z|) <= 1: nothing overflows and nothing
 * cancels. GELU's z carries a float-float low part: the activation is
 * ill-conditioned for g < 0 (its relative error is the absolute error of z,
 * and |z| reaches ~100 before the result goes subnormal); with z in plain
 * float the error reached 1.2e-5, with the low part it stays under 6e-7
 * (tests/unit/test-ops.c). The reference costs ~25-35 ns an element (fmaf is
 * a libm call without -mfma), the AVX2 version ~1; only CPUs without AVX2
 * and FMA run the reference.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "llm/cpu/ops-impl.h"

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t u_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

/* as _mm256_max_ps(a, b): b when either is NaN */
static float max_ps(float a, float b)
{
	return a > b ? a : b;
}

/* as _mm256_min_ps(a, b): b when either is NaN */
static float min_ps(float a, float b)
{
	return a < b ? a : b;
}

/* exp(xh + xl) for |xl| << 1, op for op as exp_avx2 in ops-avx2.c */
static float exp_ff(float xh, float xl)
{
	float x = min_ps(max_ps(xh, OPS_EXP_LO), OPS_EXP_HI); /* NaN -> LO */
	float nf = fmaf(x, OPS_LOG2E, OPS_MAGIC) - OPS_MAGIC;
	float r = fmaf(nf, -OPS_LN2_HI, x);
	r = fmaf(nf, -OPS_LN2_LO, r) + xl;
	float p = fmaf(OPS_EXP_P5, r, OPS_EXP_P4);
	p = fmaf(p, r, OPS_EXP_P3);
	p = fmaf(p, r, OPS_EXP_P2);
	p = fmaf(p, r, OPS_EXP_P1);
	p = fmaf(p, r, OPS_EXP_P0);
	p = fmaf(p, r * r, r) + 1.0f;
	/* n in [-150, 128]; gcc and clang shift negative ints arithmetically */
	int32_t n = (int32_t)nf, n1 = n >> 1, n2 = n - n1;
	float y = p * f_of((uint32_t)(n1 + 127) << 23) * f_of((uint32_t)(n2 + 127) << 23);
	y = xh < OPS_EXP_LO ? 0.0f : y; /* also when xl is NaN (GELU of +-inf) */
	return xh != xh ? xh : y;
}

float llm_exp_ref(float x)
{
	return exp_ff(x, 0.0f);
}

/* z = g (C1 + C2 g^2) as zh + zl, exact to ~2^-46 relative */
static void gelu_z(float g, float *zh, float *zl)
{
	float ph = g * g, pl = fmaf(g, g, -ph);
	float th = OPS_GELU_C2H * ph, tl = fmaf(OPS_GELU_C2H, ph, -th);
	float wh = OPS_GELU_C1H + th, bp = wh - OPS_GELU_C1H, ap = wh - bp;
	float we = (OPS_GELU_C1H - ap) + (th - bp); /* TwoSum: C1H + th = wh + we */
	float wl = we + tl + OPS_GELU_C1L + fmaf(OPS_GELU_C2L, ph, OPS_GELU_C2H * pl);
	*zh = g * wh;
	*zl = fmaf(g, wh, -*zh) + g * wl;
}

static float act_ref(float g, enum llm_act act)
{
	float zh = g, zl = 0.0f;
	if (act == LLM_ACT_GELU_TANH)
		gelu_z(g, &zh, &zl);
	uint32_t flip = ~u_of(zh) & 0x80000000u; /* sign bit where z >= +0 */
	float e = exp_ff(f_of(u_of(zh) ^ flip), f_of(u_of(zl) ^ flip)); /* e^-|z| */
	float num = flip ? 1.0f : e;
	/* -FLT_MAX: g = -inf gives -0, not -inf * 0 */
	return max_ps(-FLT_MAX, g) * num / (1.0f + e);
}

/* gate[i] = act(gate[i]) * up[i] */
void llm_glu_ref(float *gate, const float *up, uint32_t n, enum llm_act act)
{
	for (uint32_t i = 0; i < n; i++)
		gate[i] = act_ref(gate[i], act) * up[i];
}

/* The fixed combination tree of the eight partial sums (ops-avx2.c: hsum_pd) */
static double sum8(const double s[8])
{
	return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

void llm_rmsnorm_ref(float *y, const float *x, const float *w, uint32_t n, float eps)
{
	double s[8] = {0};
	for (uint32_t i = 0; i < n; i++)
		s[i % 8] += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(sum8(s) / n + eps));
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

void llm_softmax_ref(float *x, uint32_t n)
{
	float mx = -INFINITY;
	for (uint32_t i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	double s[8] = {0};
	for (uint32_t i = 0; i < n; i++) {
		x[i] = exp_ff(x[i] - mx, 0.0f);
		s[i % 8] += x[i];
	}
	float inv = (float)(1.0 / sum8(s));
	for (uint32_t i = 0; i < n; i++)
		x[i] *= inv;
}

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

int llm_ops_avx2(void)
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
	return llm_ops_avx2() ? llm_dot_f32_avx2(a, b, n) : dot_f32_scalar(a, b, n);
}

void llm_glu(float *gate, const float *up, uint32_t n, enum llm_act act)
{
	if (llm_ops_avx2())
		llm_glu_avx2(gate, up, n, act);
	else
		llm_glu_ref(gate, up, n, act);
}

void llm_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps)
{
	if (llm_ops_avx2())
		llm_rmsnorm_avx2(y, x, w, n, eps);
	else
		llm_rmsnorm_ref(y, x, w, n, eps);
}

void llm_softmax(float *x, uint32_t n)
{
	if (llm_ops_avx2())
		llm_softmax_avx2(x, n);
	else
		llm_softmax_ref(x, n);
}
