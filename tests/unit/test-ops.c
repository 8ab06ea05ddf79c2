/*
 * test-ops.c — the row operations of lib/llm/cpu/ops.c against double precision,
 * and the AVX2 versions against the scalar reference bit for bit.
 *
 * Error measure (err_add): relative error where the double result, rounded
 * to float, is a normal float; below FLT_MIN, where a float has fewer bits,
 * the absolute error in units of FLT_TRUE_MIN (the subnormal spacing),
 * tracked separately and divided by 1 + |g| for the activations (g e^z with
 * a subnormal e^z carries e's half-spacing error times |g|).
 * Bounds: activations 2e-6 relative over [-20, 20] (GELU-tanh is
 * ill-conditioned for g < 0, so this also guards the float-float argument),
 * exp 3e-7 relative (a few ulp), subnormal results within 1 spacing (times
 * 1 + |g|); rmsnorm and softmax a few ulp plus, for softmax, the rounding of
 * x - max.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/cpu/ops-impl.h"

#define ACT_REL_MAX 2e-6
#define EXP_REL_MAX 3e-7
#define SUB_ULPS_MAX 1.0
#define CHUNK 4096

struct errs {
	double rel, sub; /* max relative error, max subnormal error in spacings */
	double at;       /* input of the worst relative error */
};

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static float uniform(float lo, float hi)
{
	return lo + (hi - lo) * (float)(next_u32() >> 8) * 0x1p-24f;
}

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static double act_double(double g, enum llm_act act)
{
	double z = g;
	if (act == LLM_ACT_GELU_TANH) /* 0.5 g (1 + tanh u) = g / (1 + e^-2u) */
		z = 2.0 * sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g);
	return g / (1.0 + exp(-z));
}

/* sub_scale: subnormal spacings allowed per spacing of the bound */
static void err_add(struct errs *e, float got, double want, double in, double sub_scale)
{
	if (isinf((float)want))
		want = (float)want;
	double d = fabs((double)got - want);
	if (isnan(got) || isnan(want) || isinf(got) != isinf(want)) {
		fail_msg("input %.9g: got %.9g, want %.17g", in, got, want);
	} else if (isinf(want)) {
		if (got != want)
			fail_msg("input %.9g: got %.9g, want %.17g", in, got, want);
	} else if (fabs(want) >= FLT_MIN) {
		if (d / fabs(want) > e->rel) {
			e->rel = d / fabs(want);
			e->at = in;
		}
	} else if (d / FLT_TRUE_MIN / sub_scale > e->sub) {
		e->sub = d / FLT_TRUE_MIN / sub_scale;
	}
}

/* act over g[0..n) through the dispatched llm_glu (up = 1) */
static void glu_check(struct errs *e, const float *g, uint32_t n, enum llm_act act)
{
	static float gate[CHUNK], up[CHUNK];
	assert_true(n <= CHUNK);
	memcpy(gate, g, n * sizeof(float));
	for (uint32_t i = 0; i < n; i++)
		up[i] = 1.0f;
	llm_glu(gate, up, n, act);
	for (uint32_t i = 0; i < n; i++)
		err_add(e, gate[i], act_double(g[i], act), g[i], 1.0 + fabsf(g[i]));
}

static void glu_accuracy(enum llm_act act, const char *name)
{
	static float g[CHUNK];
	struct errs e = {0};
	uint32_t n = 0;
	for (int32_t k = -20 * 4096; k <= 20 * 4096; k++) { /* step 2^-12 */
		g[n++] = (float)k * 0x1p-12f;
		if (n == CHUNK) {
			glu_check(&e, g, n, act);
			n = 0;
		}
	}
	glu_check(&e, g, n, act);
	for (int r = 0; r < 64; r++) {
		for (n = 0; n < CHUNK; n++)
			g[n] = uniform(-20.0f, 20.0f);
		glu_check(&e, g, n, act);
	}
	print_message("%s: max rel err %.3g (at %.6g), subnormal %.3g spacings\n", name, e.rel,
		      e.at, e.sub);
	assert_true(e.rel <= ACT_REL_MAX);
	assert_true(e.sub <= SUB_ULPS_MAX);
}

static void test_silu_accuracy(void **state)
{
	glu_accuracy(LLM_ACT_SILU, "silu");
}

static void test_gelu_accuracy(void **state)
{
	glu_accuracy(LLM_ACT_GELU_TANH, "gelu-tanh");
}

/* Large, infinite and NaN inputs: finite and right where the limit is, no
 * inf * 0 or inf / inf. */
static void test_glu_specials(void **state)
{
	static const float in[] = {30.0f, -30.0f, 100.0f, -100.0f, 1e4f, -1e4f, 1e20f, -1e20f,
				   FLT_MAX, -FLT_MAX, 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-44f};
	enum llm_act acts[] = {LLM_ACT_SILU, LLM_ACT_GELU_TANH};
	size_t n = sizeof in / sizeof in[0];
	for (size_t a = 0; a < 2; a++) {
		struct errs e = {0};
		glu_check(&e, in, (uint32_t)n, acts[a]);
		assert_true(e.rel <= ACT_REL_MAX);
		assert_true(e.sub <= SUB_ULPS_MAX);
		float x[4] = {INFINITY, -INFINITY, NAN, -NAN}, up[4] = {1, 1, 1, 1};
		llm_glu(x, up, 4, acts[a]);
		assert_true(x[0] == INFINITY);
		assert_true(x[1] == 0.0f);
		assert_true(isnan(x[2]) && isnan(x[3]));
	}
}

static void test_exp(void **state)
{
	struct errs e = {0};
	for (int32_t k = -105 * 1024; k <= 90 * 1024; k++) {
		float x = (float)k * 0x1p-10f + uniform(0.0f, 0x1p-10f);
		err_add(&e, llm_exp_ref(x), exp((double)x), x, 1.0);
	}
	print_message("exp: max rel err %.3g (at %.6g), subnormal %.3g spacings\n", e.rel, e.at,
		      e.sub);
	assert_true(e.rel <= EXP_REL_MAX);
	assert_true(e.sub <= SUB_ULPS_MAX);
	assert_true(llm_exp_ref(0.0f) == 1.0f);
	assert_true(llm_exp_ref(-INFINITY) == 0.0f);
	assert_true(llm_exp_ref(-104.0f) == 0.0f);
	assert_true(llm_exp_ref(INFINITY) == INFINITY);
	assert_true(llm_exp_ref(88.73f) == INFINITY);
	assert_true(llm_exp_ref(88.72f) < FLT_MAX);
	assert_true(isnan(llm_exp_ref(NAN)));
}

static void test_rmsnorm_accuracy(void **state)
{
	static const uint32_t lens[] = {1, 7, 9, 64, 256, 640, 2047};
	static float x[2048], w[2048], y[2048];
	double worst = 0.0;
	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
		uint32_t n = lens[l];
		double ss = 0.0;
		for (uint32_t i = 0; i < n; i++) {
			x[i] = uniform(-8.0f, 8.0f);
			w[i] = uniform(-2.0f, 2.0f);
			ss += (double)x[i] * x[i];
		}
		llm_rmsnorm(y, x, w, n, 1e-6f);
		double r = 1.0 / sqrt(ss / n + (double)1e-6f);
		for (uint32_t i = 0; i < n; i++) {
			double want = x[i] * r * w[i];
			worst = fmax(worst, fabs(y[i] - want) / fabs(want));
		}
	}
	print_message("rmsnorm: max rel err %.3g\n", worst);
	assert_true(worst <= 3e-7);
}

static void test_softmax_accuracy(void **state)
{
	static const uint32_t lens[] = {1, 2, 7, 8, 9, 100, 513, 2048};
	static float x[2048], in[2048];
	double worst = 0.0;
	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
		uint32_t n = lens[l];
		double mx = -INFINITY, sum = 0.0;
		for (uint32_t i = 0; i < n; i++) {
			in[i] = x[i] = uniform(-30.0f, 10.0f);
			mx = fmax(mx, in[i]);
		}
		for (uint32_t i = 0; i < n; i++)
			sum += exp(in[i] - mx);
		llm_softmax(x, n);
		for (uint32_t i = 0; i < n; i++) {
			double want = exp(in[i] - mx) / sum;
			/* x - max is rounded to float: 2^-24 |x - max| relative */
			double tol = 4e-7 + 0x1p-24 * (mx - in[i]);
			double rel = fabs(x[i] - want) / want;
			worst = fmax(worst, rel / tol);
		}
	}
	print_message("softmax: max err %.3g of the bound\n", worst);
	assert_true(worst <= 1.0);
}

/* bit-equal, or both NaN */
static void assert_same(const float *a, const float *b, uint32_t n, const char *what)
{
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i])))
			fail_msg("%s n=%u [%u]: ref %a, avx2 %a", what, n, i, a[i], b[i]);
}

/* Random floats of every magnitude and sign (no NaN) */
static float any_float(void)
{
	float f;
	do
		f = f_of(next_u32());
	while (isnan(f));
	return f;
}

static void glu_same(const float *g, const float *up, uint32_t n)
{
	static float a[CHUNK], b[CHUNK];
	for (int act = 0; act < 2; act++) {
		memcpy(a, g, n * sizeof(float));
		memcpy(b, g, n * sizeof(float));
		llm_glu_ref(a, up, n, (enum llm_act)act);
		llm_glu_avx2(b, up, n, (enum llm_act)act);
		assert_same(a, b, n, act ? "gelu" : "silu");
	}
}

/* Strided over the bit patterns of all floats, then the ops on random rows
 * of every length up to 67 and the model sizes. */
static void test_avx2_same_bits(void **state)
{
	if (!llm_ops_avx2()) {
		print_message("no AVX2+FMA on this CPU: only the reference runs\n");
		return;
	}
	static float g[CHUNK], up[CHUNK], a[CHUNK], b[CHUNK], w[CHUNK];
	for (uint32_t i = 0; i < CHUNK; i++)
		up[i] = 1.0f;
	for (uint64_t u = 0, n = 0; u < 0x100000000u; u += 4093) {
		g[n++] = f_of((uint32_t)u);
		if (n == CHUNK || u + 4093 >= 0x100000000u) {
			glu_same(g, up, (uint32_t)n);
			n = 0;
		}
	}
	static const uint32_t big[] = {640, 1024, 2048, 2049, CHUNK};
	for (uint32_t k = 1; k < 68 + 5; k++) {
		uint32_t n = k < 68 ? k : big[k - 68];
		for (uint32_t i = 0; i < n; i++) {
			g[i] = i % 5 ? uniform(-40.0f, 40.0f) : any_float();
			up[i] = uniform(-3.0f, 3.0f);
			w[i] = uniform(-3.0f, 3.0f);
		}
		glu_same(g, up, n);
		llm_rmsnorm_ref(a, g, w, n, 1e-5f);
		llm_rmsnorm_avx2(b, g, w, n, 1e-5f);
		assert_same(a, b, n, "rmsnorm");
		for (uint32_t i = 0; i < n; i++)
			a[i] = b[i] = uniform(-100.0f, 20.0f);
		llm_softmax_ref(a, n);
		llm_softmax_avx2(b, n);
		assert_same(a, b, n, "softmax");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silu_accuracy),
		cmocka_unit_test(test_gelu_accuracy),
		cmocka_unit_test(test_glu_specials),
		cmocka_unit_test(test_exp),
		cmocka_unit_test(test_rmsnorm_accuracy),
		cmocka_unit_test(test_softmax_accuracy),
		cmocka_unit_test(test_avx2_same_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
