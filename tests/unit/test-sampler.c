/*
 * test-sampler.c — lib/llm/sample/sampler.c and stop.c: greedy and tie-breaking,
 * the support of top-k / top-p / min-p (checked against a plain reference
 * computed here with a full sort), temperature, penalties as documented,
 * seeds, per-sequence independence, parameter errors, stop strings across
 * pieces, end conditions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plot/sampler.h"

/* ---- helpers ----------------------------------------------------------- */

static uint64_t lcg_state;

static uint32_t lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(lcg_state >> 33);
}

/* Deterministic pseudo-random logits in [lo, hi). */
static void fill_logits(float *l, int n, uint64_t seed, float lo, float hi)
{
	lcg_state = seed;
	for (int i = 0; i < n; i++)
		l[i] = lo + (hi - lo) * (float)(lcg() % 100000) / 100000.0f;
}

/* Everything off: greedy, no filters, no penalties. */
static struct smp_params plain(void)
{
	struct smp_params p;

	smp_params_default(&p);
	p.temperature = 0;
	p.top_k = 0;
	p.top_p = 1;
	p.min_p = 0;
	p.penalty_last_n = 0;
	return p;
}

static struct smp *mk(const struct smp_params *p)
{
	char err[256] = "";
	struct smp *s = smp_new(p, err, sizeof(err));

	if (!s)
		fail_msg("smp_new: %s", err);
	return s;
}

struct rank {
	int id;
	float l;
};

static int cmp_rank(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;

	if (x->l != y->l)
		return x->l > y->l ? -1 : 1;
	return x->id - y->id;
}

/* Reference support of top-k -> top-p -> min-p, by full sort, in double:
 * allowed[id] = 1 for kept tokens; returns how many. */
static int ref_support(const float *l, int n, int top_k, double top_p,
		       double min_p, char *allowed)
{
	struct rank *r = malloc(sizeof(*r) * (size_t)n);
	int k = top_k > 0 && top_k < n ? top_k : n, keep;
	double z = 0, cum = 0;

	for (int i = 0; i < n; i++)
		r[i] = (struct rank){ i, l[i] };
	qsort(r, (size_t)n, sizeof(*r), cmp_rank);
	for (int i = 0; i < k; i++)
		z += exp((double)r[i].l - r[0].l);
	for (keep = 0; keep < k; keep++) {
		double pr = exp((double)r[keep].l - r[0].l);

		if (pr < min_p)
			break;
		cum += pr / z;
		if (top_p < 1 && cum >= top_p) {
			keep++;
			break;
		}
	}
	memset(allowed, 0, (size_t)n);
	for (int i = 0; i < keep; i++)
		allowed[r[i].id] = 1;
	free(r);
	return keep;
}

/* Draw `draws` tokens from fixed logits; every one must be allowed; returns
 * how many distinct allowed tokens appeared. */
static int draw_within(const struct smp_params *p, const float *l, int n,
		       const char *allowed, int draws)
{
	struct smp *s = mk(p);
	char *seen = calloc((size_t)n, 1);
	int distinct = 0;

	for (int i = 0; i < draws; i++) {
		int t = smp_sample(s, l, n);

		assert_in_range(t, 0, n - 1);
		if (!allowed[t])
			fail_msg("token %d drawn outside the allowed set", t);
		distinct += !seen[t];
		seen[t] = 1;
	}
	free(seen);
	smp_free(s);
	return distinct;
}

/* ---- greedy ------------------------------------------------------------ */

static void test_greedy_argmax_ties(void **state)
{
	struct smp_params p = plain();
	struct smp *s = mk(&p);
	float l[16];

	fill_logits(l, 16, 1, -3, 3);
	l[7] = 9;
	assert_int_equal(smp_sample(s, l, 16), 7);
	l[3] = 9;
	l[12] = 9;
	assert_int_equal(smp_sample(s, l, 16), 3);
	l[0] = NAN;
	assert_int_equal(smp_sample(s, l, 16), 3);
	l[15] = INFINITY;
	assert_int_equal(smp_sample(s, l, 16), 15);
	for (int i = 0; i < 16; i++)
		l[i] = -INFINITY;
	assert_int_equal(smp_sample(s, l, 16), -EDOM);
	assert_int_equal(smp_sample(s, l, 0), -EINVAL);
	smp_free(s);
}

/* top_k = 1 is greedy at any temperature, ties included. */
static void test_top_k1_is_greedy(void **state)
{
	static float l[5000];
	struct smp_params g = plain(), p = plain();
	struct smp *sg = mk(&g), *sp;

	p.temperature = 1.7f;
	p.top_k = 1;
	p.top_p = 0.5f;
	sp = mk(&p);
	for (int it = 0; it < 50; it++) {
		fill_logits(l, 5000, 100 + (uint64_t)it, -5, 5);
		if (it % 5 == 0)
			l[4000] = l[77] = 6; /* tie: 77 must win */
		int a = smp_sample(sg, l, 5000);

		assert_int_equal(smp_sample(sp, l, 5000), a);
		if (it % 5 == 0)
			assert_int_equal(a, 77);
	}
	smp_free(sg);
	smp_free(sp);
}

/* ---- support of the filters -------------------------------------------- */

static void test_top_k_support(void **state)
{
	static float l[1000];
	static char allowed[1000];
	struct smp_params p = plain();

	fill_logits(l, 1000, 7, -1, 1);
	p.temperature = 3;
	p.top_k = 5;
	p.seed = 11;
	assert_int_equal(ref_support(l, 1000, 5, 1, 0, allowed), 5);
	assert_int_equal(draw_within(&p, l, 1000, allowed, 2000), 5);
	/* a tie at the boundary keeps the lower id, whatever the scan order
	 * did to the heap */
	float t[4] = { 3.0f, 3.0f, 5.0f, 1.0f };
	char a2[4] = { 1, 0, 1, 0 };
	p.top_k = 2;
	assert_int_equal(draw_within(&p, t, 4, a2, 500), 2);
}

/* A peaked distribution over a large vocabulary: the nucleus is a handful
 * of tokens (the heap's first round). */
static void test_top_p_support_peaked(void **state)
{
	static float l[20000];
	static char allowed[20000];
	struct smp_params p = plain();
	int n_allowed;

	fill_logits(l, 20000, 3, -20, -12);
	l[10] = 5.0f; l[12000] = 4.6f; l[333] = 4.2f; l[19999] = 4.0f;
	l[5] = 3.5f;
	p.temperature = 1;
	p.top_p = 0.8f;
	p.seed = 5;
	n_allowed = ref_support(l, 20000, 0, 0.8, 0, allowed);
	assert_in_range(n_allowed, 2, 5);
	assert_int_equal(draw_within(&p, l, 20000, allowed, 800), n_allowed);
}

/* A flat distribution: the nucleus has thousands of tokens, so the best-
 * first prefix must grow several times. */
static void test_top_p_support_flat(void **state)
{
	static float l[10000];
	static char allowed[10000];
	struct smp_params p = plain();
	int n_allowed, distinct;

	fill_logits(l, 10000, 9, 0, 2);
	p.temperature = 1;
	p.top_p = 0.5f;
	p.seed = 6;
	n_allowed = ref_support(l, 10000, 0, 0.5, 0, allowed);
	assert_in_range(n_allowed, 1000, 8000);
	distinct = draw_within(&p, l, 10000, allowed, 1500);
	assert_true(distinct > 800);
}

static void test_min_p_support(void **state)
{
	static float l[10000];
	static char allowed[10000];
	struct smp_params p = plain();
	int n_allowed;

	fill_logits(l, 10000, 21, -10, -3);
	l[1] = 2.0f; l[9000] = 1.5f; l[444] = 0.7f; l[7] = 0.3f;
	p.temperature = 1.5f;
	p.min_p = 0.2f;   /* ln 0.2 = -1.61: keeps 2.0, 1.5, 0.7 */
	p.seed = 8;
	n_allowed = ref_support(l, 10000, 0, 1, 0.2, allowed);
	assert_int_equal(n_allowed, 3);
	assert_int_equal(draw_within(&p, l, 10000, allowed, 600), 3);
	/* the same cut inside a top-k set, combined with top-p */
	p.top_k = 100;
	p.top_p = 0.99f;
	n_allowed = ref_support(l, 10000, 100, 0.99, 0.2, allowed);
	assert_int_equal(n_allowed, 3);
	assert_int_equal(draw_within(&p, l, 10000, allowed, 600), 3);
}

/* top-p is computed over what top-k kept (renormalized), as llama.cpp does:
 * with top_k 2 the two best share all the mass. */
static void test_top_p_after_top_k(void **state)
{
	float l[4] = { 1.0f, 0.9f, 0.8f, 0.7f };
	char allowed[4];
	struct smp_params p = plain();

	p.temperature = 1;
	p.top_k = 2;
	p.top_p = 0.6f;   /* 0.525 of the top-2 mass after token 0: need 1 */
	assert_int_equal(ref_support(l, 4, 2, 0.6, 0, allowed), 2);
	assert_int_equal(draw_within(&p, l, 4, allowed, 500), 2);
	p.top_p = 0.5f;
	assert_int_equal(ref_support(l, 4, 2, 0.5, 0, allowed), 1);
	assert_int_equal(draw_within(&p, l, 4, allowed, 500), 1);
}

/* ---- temperature ------------------------------------------------------- */

/* Frequency of token 1 for logits {0, ln 3, -inf...} at temperature t,
 * through each path: 0 = whole vocabulary, 1 = top-k heap, 2 = top-p
 * buckets. */
static double freq1(float t, int draws, int path)
{
	float l[8] = { 0.0f, logf(3.0f), -INFINITY, -INFINITY, -INFINITY,
		       -INFINITY, -INFINITY, -INFINITY };
	struct smp_params p = plain();
	struct smp *s;
	int c = 0;

	p.temperature = t;
	p.seed = 42;
	p.top_k = path == 1 ? 2 : 0;
	p.top_p = path == 2 ? 0.9999f : 1.0f;
	s = mk(&p);
	for (int i = 0; i < draws; i++)
		c += smp_sample(s, l, 8) == 1;
	smp_free(s);
	return (double)c / draws;
}

static void test_temperature(void **state)
{
	for (int path = 0; path < 3; path++) {
		/* p1 = 3^(1/t) / (1 + 3^(1/t)) */
		assert_true(fabs(freq1(1.0f, 20000, path) - 0.75) < 0.015);
		assert_true(fabs(freq1(0.5f, 20000, path) - 0.9) < 0.015);
		assert_true(fabs(freq1(2.0f, 20000, path) - 0.634) < 0.015);
		assert_true(freq1(0.05f, 2000, path) > 0.999);
	}
}

/* ---- penalties --------------------------------------------------------- */

/* Greedy pick after accepting `hist`, on a fresh sampler. */
static int pick_after(const struct smp_params *p, const int *hist, int nh,
		      const float *l, int n)
{
	struct smp *s = mk(p);
	int t;

	for (int i = 0; i < nh; i++)
		smp_accept(s, hist[i]);
	t = smp_sample(s, l, n);
	smp_free(s);
	return t;
}

static void test_repetition_penalty(void **state)
{
	struct smp_params p = plain();
	float pos[3] = { 2.0f, 1.9f, -1.0f }, neg[3] = { -1.0f, -1.2f, -5.0f };
	int h0[] = { 0 };

	p.penalty_last_n = 8;
	p.repetition_penalty = 1.5f;
	assert_int_equal(pick_after(&p, NULL, 0, pos, 3), 0);
	assert_int_equal(pick_after(&p, h0, 1, pos, 3), 1);  /* 2/1.5 < 1.9 */
	assert_int_equal(pick_after(&p, h0, 1, neg, 3), 1);  /* -1*1.5 < -1.2 */
	p.repetition_penalty = 1.04f;                        /* 1.92 > 1.9 */
	assert_int_equal(pick_after(&p, h0, 1, pos, 3), 0);
	p.repetition_penalty = 0.5f;                         /* encourages */
	float l2[2] = { 1.0f, 1.5f };
	assert_int_equal(pick_after(&p, h0, 1, l2, 2), 0);   /* 1/0.5 = 2 */
}

static void test_frequency_presence(void **state)
{
	struct smp_params p = plain();
	float l[2] = { 3.0f, 2.5f };
	int one[] = { 0 }, two[] = { 0, 1, 0 }, three[] = { 0, 0, 0 };

	p.penalty_last_n = 16;
	p.frequency_penalty = 0.3f;
	assert_int_equal(pick_after(&p, one, 1, l, 2), 0);   /* 2.7 > 2.5 */
	assert_int_equal(pick_after(&p, three, 2, l, 2), 1); /* 2.4 < 2.5 */
	assert_int_equal(pick_after(&p, two, 3, l, 2), 0);   /* 2.4 > 2.2 */
	p.frequency_penalty = 0;
	p.presence_penalty = 0.4f;                           /* once, any count */
	assert_int_equal(pick_after(&p, three, 3, l, 2), 0); /* 2.6 > 2.5 */
	p.presence_penalty = 0.6f;
	assert_int_equal(pick_after(&p, three, 3, l, 2), 1); /* 2.4 < 2.5 */
}

/* Only the last penalty_last_n accepted tokens count; tokens outside the
 * vocabulary in the history are ignored. */
static void test_penalty_window(void **state)
{
	struct smp_params p = plain();
	float l[8] = { 3.0f, 2.5f, 0, 0, 0, 0, 0, 0 };
	int old[] = { 0, 5, 6 }, recent[] = { 5, 0, 6 }, junk[] = { -4, 100000 };

	p.penalty_last_n = 2;
	p.presence_penalty = 1.0f;
	assert_int_equal(pick_after(&p, old, 3, l, 8), 0);
	assert_int_equal(pick_after(&p, recent, 3, l, 8), 1);
	assert_int_equal(pick_after(&p, junk, 2, l, 8), 0);
	/* a sampled token enters the history by itself */
	struct smp *s = mk(&p);
	assert_int_equal(smp_sample(s, l, 8), 0);
	assert_int_equal(smp_sample(s, l, 8), 1);
	smp_free(s);
}

/* Penalties shift a sampled distribution too: a presence penalty of ln 3
 * on token 1 of {0, ln 3} makes the two equally likely. */
static void test_penalty_distribution(void **state)
{
	float l[2] = { 0.0f, logf(3.0f) };
	struct smp_params p = plain();
	struct smp *s;
	int c = 0;

	p.temperature = 1;
	p.presence_penalty = logf(3.0f);
	p.penalty_last_n = 1;
	p.seed = 3;
	s = mk(&p);
	for (int i = 0; i < 20000; i++) {
		smp_accept(s, 1);                 /* window = {1} every time */
		c += smp_sample(s, l, 2) == 1;
	}
	smp_free(s);
	assert_true(fabs(c / 20000.0 - 0.5) < 0.015);
}

/* ---- seeds and independence -------------------------------------------- */

static void run_seq(struct smp *s, int *out, int n)
{
	static float l[3000];

	for (int i = 0; i < n; i++) {
		fill_logits(l, 3000, 1000 + (uint64_t)i, -2, 2);
		out[i] = smp_sample(s, l, 3000);
	}
}

static void test_seed(void **state)
{
	struct smp_params p;
	int a[60], b[60], c[60];
	struct smp *s;

	smp_params_default(&p);
	p.top_k = 0;
	p.top_p = 1;
	p.min_p = 0;
	p.temperature = 1;
	p.seed = 1234;
	s = mk(&p);
	run_seq(s, a, 60);
	smp_reset(s);
	run_seq(s, b, 60);
	smp_free(s);
	assert_memory_equal(a, b, sizeof(a));
	p.seed = 1235;
	s = mk(&p);
	run_seq(s, c, 60);
	smp_free(s);
	assert_memory_not_equal(a, c, sizeof(a));
}

/* Two sequences sampled interleaved give what each gives alone. */
static void test_sequences_independent(void **state)
{
	static float l[3000];
	struct smp_params p;
	int alone[2][40], mixed[2][40];
	struct smp *s[2];

	smp_params_default(&p);
	for (int k = 0; k < 2; k++) {
		p.seed = 77 + (uint64_t)k;
		p.repetition_penalty = 1.3f;
		s[k] = mk(&p);
		run_seq(s[k], alone[k], 40);
		smp_reset(s[k]);
	}
	for (int i = 0; i < 40; i++)
		for (int k = 0; k < 2; k++) {
			fill_logits(l, 3000, 1000 + (uint64_t)i, -2, 2);
			mixed[k][i] = smp_sample(s[k], l, 3000);
		}
	assert_memory_equal(alone, mixed, sizeof(alone));
	smp_free(s[0]);
	smp_free(s[1]);
}

/* Gemma-sized vocabulary through every path (not timed: correctness). */
static void test_large_vocab(void **state)
{
	static float l[262144];
	struct smp_params p = plain();
	struct smp *g = mk(&p), *s;

	fill_logits(l, 262144, 5, -20, 20);
	l[12345] = 25;
	int best = smp_sample(g, l, 262144);
	smp_params_default(&p);
	p.top_k = 1;
	s = mk(&p);
	assert_int_equal(smp_sample(s, l, 262144), best);
	smp_free(s);
	p.top_k = 0;          /* nucleus path */
	p.temperature = 0.01f;
	s = mk(&p);
	assert_int_equal(smp_sample(s, l, 262144), best);
	smp_free(s);
	smp_free(g);
}

/* ---- parameter validation ---------------------------------------------- */

static void expect_bad(struct smp_params p, const char *msg)
{
	char err[256] = "";

	assert_int_equal(smp_params_check(&p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
	assert_null(smp_new(&p, err, sizeof(err)));
}

static void test_params_check(void **state)
{
	struct smp_params p, q;
	char err[256] = "";

	smp_params_default(&p);
	assert_int_equal(smp_params_check(&p, err, sizeof(err)), 0);
	q = p; q.top_p = 2;
	expect_bad(q, "top_p must be in (0, 1], got 2");
	q = p; q.top_p = 0;
	expect_bad(q, "top_p must be in (0, 1], got 0");
	q = p; q.top_p = NAN;
	expect_bad(q, "top_p must be in (0, 1], got nan");
	q = p; q.temperature = -0.5f;
	expect_bad(q, "temperature must be in [0, 100], got -0.5");
	q = p; q.top_k = -1;
	expect_bad(q, "top_k must be >= 0 (0 = off), got -1");
	q = p; q.min_p = 1.5f;
	expect_bad(q, "min_p must be in [0, 1], got 1.5");
	q = p; q.repetition_penalty = 0;
	expect_bad(q, "repetition_penalty must be in (0, 10], got 0");
	q = p; q.frequency_penalty = 3;
	expect_bad(q, "frequency_penalty must be in [-2, 2], got 3");
	q = p; q.presence_penalty = -2.5f;
	expect_bad(q, "presence_penalty must be in [-2, 2], got -2.5");
	q = p; q.penalty_last_n = 70000;
	expect_bad(q, "penalty_last_n must be in [0, 65536], got 70000");
}

static void test_param_table(void **state)
{
	struct smp_params p, q;
	char err[256] = "";
	int n = 0;

	smp_params_default(&p);
	assert_true(p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f &&
		    p.min_p == 0.05f && p.repetition_penalty == 1.0f &&
		    p.penalty_last_n == 64 && p.seed == 0);
	for (const struct smp_param_info *e = smp_param_table; e->name; e++) {
		assert_ptr_equal(smp_param_find(e->name), e);
		n++;
	}
	assert_int_equal(n, 9);
	assert_null(smp_param_find("top-p"));
	assert_int_equal(smp_param_set(&p, "top_p", "0.5", err, sizeof(err)), 0);
	assert_true(p.top_p == 0.5f);
	assert_int_equal(smp_param_set(&p, "top_k", "7", err, sizeof(err)), 0);
	assert_int_equal(p.top_k, 7);
	assert_int_equal(smp_param_set(&p, "seed", "18446744073709551615", err,
				       sizeof(err)), 0);
	assert_true(p.seed == UINT64_MAX);
	q = p;
	assert_int_equal(smp_param_set(&p, "top_p", "2", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "top_p must be in (0, 1], got 2");
	assert_int_equal(smp_param_set(&p, "temperature", "1e40", err,
				       sizeof(err)), -EINVAL);
	assert_string_equal(err, "temperature must be in [0, 100], got inf");
	assert_int_equal(smp_param_set(&p, "top_k", "4x", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "top_k: not a 32-bit integer: '4x'");
	assert_int_equal(smp_param_set(&p, "top_k", "99999999999", err,
				       sizeof(err)), -EINVAL);
	assert_int_equal(smp_param_set(&p, "seed", "-1", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "seed: not an unsigned 64-bit integer: '-1'");
	assert_int_equal(smp_param_set(&p, "min_p", "", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(smp_param_set(&p, "topp", "1", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "unknown sampling parameter 'topp'");
	assert_memory_equal(&p, &q, sizeof(p)); /* failures changed nothing */
}

/* ---- stop strings ------------------------------------------------------ */

/* Feed pieces, concatenating what is emitted; returns the match index. */
static int feed_all(struct smp_stop *st, const char *const *pieces, int n,
		    char *out, size_t cap)
{
	int which = -1;
	size_t o = 0;

	for (int i = 0; i < n; i++) {
		const char *t;
		long k = smp_stop_feed(st, pieces[i], strlen(pieces[i]), &t,
				       &which);

		assert_true(k >= 0 && o + (size_t)k < cap);
		memcpy(out + o, t, (size_t)k);
		o += (size_t)k;
	}
	out[o] = 0;
	return which;
}

static struct smp_stop *mk_stop(const char *const *stops, size_t n)
{
	char err[256] = "";
	struct smp_stop *st = smp_stop_new(stops, n, err, sizeof(err));

	if (!st)
		fail_msg("smp_stop_new: %s", err);
	return st;
}

static void test_stop_spans_three_pieces(void **state)
{
	const char *stops[] = { "</end>" };
	const char *pieces[] = { "Hello </", "en", "d> more" };
	struct smp_stop *st = mk_stop(stops, 1);
	const char *t;
	int which;
	char out[64];

	assert_int_equal(smp_stop_feed(st, pieces[0], 8, &t, &which), 6);
	assert_memory_equal(t, "Hello ", 6);
	assert_int_equal(which, -1);
	assert_int_equal(smp_stop_feed(st, pieces[1], 2, &t, &which), 0);
	assert_int_equal(smp_stop_feed(st, pieces[2], 7, &t, &which), 0);
	assert_int_equal(which, 0);
	/* finished: nothing more comes out */
	assert_int_equal(smp_stop_feed(st, "x", 1, &t, &which), 0);
	assert_int_equal(which, 0);
	assert_int_equal(smp_stop_flush(st, &t), 0);
	smp_stop_free(st);
	st = mk_stop(stops, 1);
	assert_int_equal(feed_all(st, pieces, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "Hello ");
	smp_stop_free(st);
}

static void test_stop_false_prefix(void **state)
{
	const char *stops[] = { "STOP" };
	struct smp_stop *st = mk_stop(stops, 1);
	const char *t;
	int which;

	assert_int_equal(smp_stop_feed(st, "ab ST", 5, &t, &which), 3);
	assert_memory_equal(t, "ab ", 3);
	assert_int_equal(smp_stop_feed(st, "O", 1, &t, &which), 0);
	assert_int_equal(smp_stop_feed(st, "Xyz", 3, &t, &which), 6);
	assert_memory_equal(t, "STOXyz", 6);
	assert_int_equal(which, -1);
	/* held tail comes out on flush, and the matcher can be reused */
	assert_int_equal(smp_stop_feed(st, "..S", 3, &t, &which), 2);
	assert_int_equal(smp_stop_flush(st, &t), 1);
	assert_memory_equal(t, "S", 1);
	assert_int_equal(smp_stop_feed(st, "TOP", 3, &t, &which), 3);
	assert_int_equal(which, -1);
	smp_stop_free(st);
}

static void test_stop_at_start(void **state)
{
	const char *stops[] = { "STOP" };
	struct smp_stop *st = mk_stop(stops, 1);
	const char *t;
	int which;

	assert_int_equal(smp_stop_feed(st, "STOP now", 8, &t, &which), 0);
	assert_int_equal(which, 0);
	smp_stop_free(st);
}

static void test_stop_multiple(void **state)
{
	const char *stops[] = { "\n\n", "User:", "abc", "b" };
	const char *p1[] = { "hi Use", "r: x" };
	const char *p2[] = { "a\n", "\nUser:" };
	const char *p3[] = { "xa", "bc" };
	struct smp_stop *st;
	char out[64];

	st = mk_stop(stops, 4);
	assert_int_equal(feed_all(st, p1, 2, out, sizeof(out)), 1);
	assert_string_equal(out, "hi ");
	smp_stop_free(st);
	st = mk_stop(stops, 4);
	assert_int_equal(feed_all(st, p2, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "a");
	smp_stop_free(st);
	st = mk_stop(stops, 4);   /* "abc" starts before "b": it wins */
	assert_int_equal(feed_all(st, p3, 2, out, sizeof(out)), 2);
	assert_string_equal(out, "x");
	smp_stop_free(st);
}

/* Every emitted chunk ends on a UTF-8 character boundary. */
static void assert_whole_chars(const char *t, long n)
{
	if (n > 0)
		assert_true(((unsigned char)t[n - 1] & 0xC0) != 0xC0);
	for (long i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		int need = c < 0x80 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 :
			   c >= 0xC0 ? 1 : -1;

		assert_true(need >= 0 && i + need < n);
		i += need;
	}
}

static void test_stop_utf8(void **state)
{
	const char *stops[] = { "日本", "é!" };
	const char *pieces[] = { "これは", "日", "曜", "é", "日", "本です" };
	struct smp_stop *st = mk_stop(stops, 2);
	const char *t;
	int which = -1;
	char out[128];
	size_t o = 0;

	for (int i = 0; i < 6 && which < 0; i++) {
		long k = smp_stop_feed(st, pieces[i], strlen(pieces[i]), &t,
				       &which);

		assert_whole_chars(t, k);
		memcpy(out + o, t, (size_t)k);
		o += (size_t)k;
	}
	out[o] = 0;
	assert_int_equal(which, 0);
	assert_string_equal(out, "これは日曜é");
	smp_stop_free(st);
}

/* Random texts over a small alphabet, cut into random pieces: the output
 * is always the text up to its first stop (all of it after a flush). */
static void test_stop_random(void **state)
{
	const char *stops[] = { "abca", "cc", "bab" };
	char text[64], out[80], ref[64];

	lcg_state = 99;
	for (int it = 0; it < 3000; it++) {
		struct smp_stop *st = mk_stop(stops, 3);
		int n = 1 + (int)(lcg() % 40), which = -1;
		size_t o = 0, cut = (size_t)n;
		const char *t;

		for (int i = 0; i < n; i++)
			text[i] = "abc"[lcg() % 3];
		text[n] = 0;
		for (int k = 0; k < 3; k++) {
			const char *m = strstr(text, stops[k]);
			if (m && (size_t)(m - text) < cut)
				cut = (size_t)(m - text);
		}
		memcpy(ref, text, cut);
		ref[cut] = 0;
		for (int i = 0; i < n;) {
			int len = 1 + (int)(lcg() % 4);
			long k;

			len = len < n - i ? len : n - i;
			k = smp_stop_feed(st, text + i, (size_t)len, &t, &which);
			memcpy(out + o, t, (size_t)k);
			o += (size_t)k;
			i += len;
		}
		if (which < 0) {
			long k = smp_stop_flush(st, &t);
			memcpy(out + o, t, (size_t)k);
			o += (size_t)k;
		}
		out[o] = 0;
		assert_string_equal(out, ref);
		assert_int_equal(which >= 0, cut < (size_t)n);
		smp_stop_free(st);
	}
}

static void test_stop_none_and_errors(void **state)
{
	char err[256] = "", big[SMP_MAX_STOP_LEN + 2];
	const char *t, *empty[] = { "ok", "" }, *many[SMP_MAX_STOPS + 1];
	struct smp_stop *st = mk_stop(NULL, 0);
	int which;

	assert_int_equal(smp_stop_feed(st, "abc", 3, &t, &which), 3);
	assert_int_equal(which, -1);
	smp_stop_free(st);
	assert_null(smp_stop_new(empty, 2, err, sizeof(err)));
	assert_string_equal(err, "stop[1]: length must be in [1, 256] bytes, got 0");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	many[0] = big;
	assert_null(smp_stop_new(many, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "stop[0]: length"));
	for (int i = 0; i <= SMP_MAX_STOPS; i++)
		many[i] = "x";
	assert_null(smp_stop_new(many, SMP_MAX_STOPS + 1, err, sizeof(err)));
	assert_string_equal(err, "stop: at most 16 stop strings, got 17");
}

/* ---- end conditions ---------------------------------------------------- */

static void test_end_of(void **state)
{
	int32_t eog[] = { 2, 107 };

	assert_int_equal(smp_end_of(5, 1, 10, eog, 2), SMP_END_NONE);
	assert_int_equal(smp_end_of(107, 1, 10, eog, 2), SMP_END_EOG);
	assert_int_equal(smp_end_of(5, 10, 10, eog, 2), SMP_END_MAX_TOKENS);
	assert_int_equal(smp_end_of(2, 10, 10, eog, 2), SMP_END_EOG);
	assert_int_equal(smp_end_of(5, 1000000, 0, eog, 2), SMP_END_NONE);
	assert_int_equal(smp_end_of(5, 9, 10, NULL, 0), SMP_END_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greedy_argmax_ties),
		cmocka_unit_test(test_top_k1_is_greedy),
		cmocka_unit_test(test_top_k_support),
		cmocka_unit_test(test_top_p_support_peaked),
		cmocka_unit_test(test_top_p_support_flat),
		cmocka_unit_test(test_min_p_support),
		cmocka_unit_test(test_top_p_after_top_k),
		cmocka_unit_test(test_temperature),
		cmocka_unit_test(test_repetition_penalty),
		cmocka_unit_test(test_frequency_presence),
		cmocka_unit_test(test_penalty_window),
		cmocka_unit_test(test_penalty_distribution),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_sequences_independent),
		cmocka_unit_test(test_large_vocab),
		cmocka_unit_test(test_params_check),
		cmocka_unit_test(test_param_table),
		cmocka_unit_test(test_stop_spans_three_pieces),
		cmocka_unit_test(test_stop_false_prefix),
		cmocka_unit_test(test_stop_at_start),
		cmocka_unit_test(test_stop_multiple),
		cmocka_unit_test(test_stop_utf8),
		cmocka_unit_test(test_stop_random),
		cmocka_unit_test(test_stop_none_and_errors),
		cmocka_unit_test(test_end_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
