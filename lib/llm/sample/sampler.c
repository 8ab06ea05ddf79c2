/*
 * sampler.c — per-sequence token sampling (include/plot/sampler.h).
 *
 * DESIGN
 *   The caller's logits are never copied or modified. Penalties touch at
 *   most penalty_last_n distinct tokens, so they are kept as a small list
 *   of (id, penalized logit) sorted by id, and every pass over the
 *   vocabulary reads "logits with overrides" through struct view, merging
 *   that list in as it walks the ids in order.
 *
 *   Candidate sets are never fully sorted unless they must be:
 *   - top-k (k < n_vocab): one pass with a k-entry min-heap, then a sort of
 *     the k survivors;
 *   - top-p without top-k: one pass sums the softmax mass into 4096
 *     buckets by logit (monotone: a token in an earlier bucket outranks
 *     every token in a later one), which tells the bucket where the
 *     nucleus ends; a second pass collects the buckets ahead of it
 *     (unsorted: all kept) and the cut bucket, and only the cut bucket is
 *     sorted. Three passes over n_vocab, whatever the distribution;
 *   - neither: min-p is a threshold on logits (p >= min_p * p_max
 *     <=> logit >= max + ln(min_p)), so the draw walks the vocabulary in id
 *     order once, summing weights per 256-token block, and then walks
 *     only the chosen block again; no sort.
 *   Weights are exp((logit - max) / T): never overflow, NaN-free since
 *   logits are cleaned (NaN -> -inf, +inf -> FLT_MAX) on read.
 *
 * INVARIANTS
 *   - hist holds the last min(accepted, penalty_last_n) tokens, ring order.
 *   - Ties between equal logits always go to the lower token id: greedy
 *     arg-max scans with a strict '>', the heap ranks equal logits by id.
 *   - The RNG is only advanced by a draw (one 64-bit output per non-greedy
 *     sample), so (seed, logits sequence) fully determines the tokens.
 */
#include "plot/sampler.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cand {
	int32_t id;
	float l;                  /* penalized logit */
	float w;                  /* draw weight, set by draw_cands */
};

struct smp {
	struct smp_params p;
	uint64_t rng[4];          /* xoshiro256** state */
	int32_t *hist;            /* (penalty_last_n) ring of accepted tokens */
	int32_t n_hist, hist_pos;
	int32_t *pen_id;          /* (penalty_last_n) distinct ids, sorted */
	float *pen_val;           /* (penalty_last_n) their penalized logits */
	int32_t *tmp;             /* (penalty_last_n) sort scratch */
	struct cand *cand;        /* (cand_cap) candidate scratch */
	size_t cand_cap;
	double *blk;              /* (blk_cap) per-block weight sums, draw_all */
	size_t blk_cap;
	double *bmass;            /* (NB) top-p buckets, allocated on first use */
	int32_t *bcount;          /* (NB) */
};

/* Logits with the penalty overrides merged in (see DESIGN). */
struct view {
	const float *lg;          /* (n) raw logits */
	int32_t n;
	const int32_t *pid;       /* (np) overridden ids, ascending */
	const float *pval;        /* (np) their values */
	int32_t np;
};

#define NB 4096           /* logit buckets for the top-p cut */
#define BLK 256           /* draw_all block: one block is walked twice */
#define LOGIT_SPAN 40.0f  /* below max - 40 (p < 4e-18 p_max): last bucket */

/* ---- RNG: splitmix64 seeds xoshiro256** ------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static void rng_seed(uint64_t s[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		s[i] = splitmix64(&seed);
}

/* ---- lifecycle and history -------------------------------------------- */

struct smp *smp_new(const struct smp_params *p, char *err, size_t errlen)
{
	struct smp *s;
	size_t n;

	if (smp_params_check(p, err, errlen) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	n = p->penalty_last_n ? (size_t)p->penalty_last_n : 1;
	if (s) {
		s->p = *p;
		s->hist = calloc(n, sizeof(*s->hist));
		s->pen_id = calloc(n, sizeof(*s->pen_id));
		s->pen_val = calloc(n, sizeof(*s->pen_val));
		s->tmp = calloc(n, sizeof(*s->tmp));
	}
	if (!s || !s->hist || !s->pen_id || !s->pen_val || !s->tmp) {
		snprintf(err, errlen, "sampler: out of memory");
		smp_free(s);
		return NULL;
	}
	smp_reset(s);
	return s;
}

void smp_free(struct smp *s)
{
	if (!s)
		return;
	free(s->hist);
	free(s->pen_id);
	free(s->pen_val);
	free(s->tmp);
	free(s->cand);
	free(s->blk);
	free(s->bmass);
	free(s->bcount);
	free(s);
}

void smp_reset(struct smp *s)
{
	s->n_hist = 0;
	s->hist_pos = 0;
	rng_seed(s->rng, s->p.seed);
}

const struct smp_params *smp_get_params(const struct smp *s)
{
	return &s->p;
}

void smp_accept(struct smp *s, int32_t token)
{
	int32_t n = s->p.penalty_last_n;

	if (n == 0)
		return;
	s->hist[s->hist_pos] = token;
	s->hist_pos = (s->hist_pos + 1) % n;
	if (s->n_hist < n)
		s->n_hist++;
}

/* ---- penalties --------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* NaN reads as -inf, +inf as FLT_MAX, so weights stay finite. */
static inline float clean(float l)
{
	if (l != l)
		return -INFINITY;
	return l > FLT_MAX ? FLT_MAX : l;
}

static float penalize(const struct smp_params *p, float l, int32_t count)
{
	if (p->repetition_penalty != 1.0f)
		l = l <= 0 ? l * p->repetition_penalty : l / p->repetition_penalty;
	return l - (float)count * p->frequency_penalty - p->presence_penalty;
}

/* Fill v with the logits and the penalty overrides for the distinct
 * in-range tokens of the history. */
static void build_view(struct smp *s, const float *logits, int32_t n,
		       struct view *v)
{
	const struct smp_params *p = &s->p;
	int32_t np = 0;

	*v = (struct view){ .lg = logits, .n = n, .pid = s->pen_id,
			    .pval = s->pen_val };
	if (s->n_hist == 0 || (p->repetition_penalty == 1.0f &&
	    p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f))
		return;
	memcpy(s->tmp, s->hist, (size_t)s->n_hist * sizeof(*s->tmp));
	qsort(s->tmp, (size_t)s->n_hist, sizeof(*s->tmp), cmp_i32);
	for (int32_t i = 0, j; i < s->n_hist; i = j) {
		for (j = i + 1; j < s->n_hist && s->tmp[j] == s->tmp[i]; j++)
			;
		if (s->tmp[i] < 0 || s->tmp[i] >= n)
			continue;
		s->pen_id[np] = s->tmp[i];
		s->pen_val[np++] = penalize(p, clean(logits[s->tmp[i]]), j - i);
	}
	v->np = np;
}

/* Logit i of the view; *j walks the override list (ids ascending). */
static inline float view_at(const struct view *v, int32_t i, int32_t *j)
{
	if (*j < v->np && v->pid[*j] == i)
		return clean(v->pval[(*j)++]);
	return clean(v->lg[i]);
}

/* ---- selection --------------------------------------------------------- */

/* a ranks below b: lower logit, or the same logit and a higher id. */
static inline int worse(struct cand a, struct cand b)
{
	return a.l < b.l || (a.l == b.l && a.id > b.id);
}

static void sift_down(struct cand *h, int32_t n, int32_t i)
{
	for (;;) {
		int32_t c = 2 * i + 1;

		if (c >= n)
			return;
		if (c + 1 < n && worse(h[c + 1], h[c]))
			c++;
		if (!worse(h[c], h[i]))
			return;
		struct cand t = h[c];
		h[c] = h[i];
		h[i] = t;
		i = c;
	}
}

static void sift_up(struct cand *h, int32_t i)
{
	while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
		struct cand t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static int cmp_best_first(const void *a, const void *b)
{
	struct cand x = *(const struct cand *)a, y = *(const struct cand *)b;

	return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

/* The best m candidates above -inf into h, best first; returns how many. */
static int32_t select_top(const struct view *v, struct cand *h, int32_t m)
{
	int32_t cnt = 0, j = 0;

	for (int32_t i = 0; i < v->n; i++) {
		struct cand c = { i, view_at(v, i, &j), 0 };

		/* fast reject: most tokens rank below the heap's worst */
		if (c.l == -INFINITY || (cnt == m && c.l < h[0].l))
			continue;
		if (cnt < m) {
			h[cnt] = c;
			sift_up(h, cnt++);
		} else if (worse(h[0], c)) {
			h[0] = c;
			sift_down(h, cnt, 0);
		}
	}
	qsort(h, (size_t)cnt, sizeof(*h), cmp_best_first);
	return cnt;
}

static int ensure_cand(struct smp *s, size_t n)
{
	struct cand *c;

	if (n <= s->cand_cap)
		return 0;
	c = realloc(s->cand, n * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->cand = c;
	s->cand_cap = n;
	return 0;
}

static int ensure_buckets(struct smp *s)
{
	if (!s->bmass)
		s->bmass = malloc(NB * sizeof(*s->bmass));
	if (!s->bcount)
		s->bcount = malloc(NB * sizeof(*s->bcount));
	return s->bmass && s->bcount ? 0 : -ENOMEM;
}

/* Greedy: the highest logit, the lowest id among equals; -1 if none. */
static int32_t argmax(const struct view *v)
{
	int32_t best = -1, j = 0;
	float bl = -INFINITY;

	for (int32_t i = 0; i < v->n; i++) {
		float l = view_at(v, i, &j);

		if (l > bl) {
			bl = l;
			best = i;
		}
	}
	return best;
}

/* Highest and lowest logit above -inf (both -inf if there is none). */
static void view_range(const struct view *v, float *max, float *min)
{
	float hi = -INFINITY, lo = INFINITY;
	int32_t j = 0;

	for (int32_t i = 0; i < v->n; i++) {
		float l = view_at(v, i, &j);

		if (l == -INFINITY)
			continue;
		hi = l > hi ? l : hi;
		lo = l < lo ? l : lo;
	}
	*max = hi;
	*min = hi == -INFINITY ? -INFINITY : lo;
}

/* Length of the prefix of the best-first candidates a[0..cnt) (total mass
 * z relative to max = a[0].l) that top-p and then min-p keep: the shorter
 * of the two cuts, at least 1. */
static int32_t cut_prefix(const struct smp_params *p, const struct cand *a,
			  int32_t cnt, float max, double z)
{
	float thr = p->min_p > 0 ? max + logf(p->min_p) : -INFINITY;
	double cum = 0;

	for (int32_t i = 0; i < cnt; i++) {
		if (a[i].l < thr)
			return i; /* i >= 1: a[0] is the max */
		cum += expf(a[i].l - max);
		if (p->top_p < 1 && cum >= (double)p->top_p * z)
			return i + 1;
	}
	return cnt;
}

/* ---- drawing ----------------------------------------------------------- */

/* Draw from softmax(a[0..n).l / temp); one exp per candidate, kept in w. */
static int32_t draw_cands(struct smp *s, struct cand *a, int32_t n, float max)
{
	float t = s->p.temperature;
	double sum = 0, u;

	for (int32_t i = 0; i < n; i++)
		sum += a[i].w = expf((a[i].l - max) / t);
	u = rng_uniform(s->rng) * sum;
	for (int32_t i = 0; i < n; i++) {
		u -= a[i].w;
		if (u < 0)
			return a[i].id;
	}
	return a[n - 1].id; /* rounding left u >= 0: the last one */
}

static inline float weight(float l, float max, float t, float thr)
{
	return l >= thr && l > -INFINITY ? expf((l - max) / t) : 0.0f;
}

static int ensure_blocks(struct smp *s, size_t n)
{
	double *b;

	if (n <= s->blk_cap)
		return 0;
	b = realloc(s->blk, n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	s->blk = b;
	s->blk_cap = n;
	return 0;
}

/* The override cursor for a walk that starts at id `from`. */
static int32_t view_seek(const struct view *v, int32_t from)
{
	int32_t j = 0;

	while (j < v->np && v->pid[j] < from)
		j++;
	return j;
}

/* Walk block b (ids [b*BLK, ...)) subtracting weights from u; the token
 * where u goes negative, else the block's last token with weight > 0. */
static int32_t draw_in_block(const struct view *v, int32_t b, double u,
			     float max, float t, float thr)
{
	int32_t lo = b * BLK, hi = lo + BLK < v->n ? lo + BLK : v->n;
	int32_t j = view_seek(v, lo), last = -1;

	for (int32_t i = lo; i < hi; i++) {
		float w = weight(view_at(v, i, &j), max, t, thr);

		if (w > 0) {
			last = i;
			u -= w;
			if (u < 0)
				return i;
		}
	}
	return last;
}

/* Draw over the whole vocabulary, min-p as a threshold: one exp per token
 * into per-block sums, then the chosen block is walked again. */
static int32_t draw_all(struct smp *s, const struct view *v, float max)
{
	float t = s->p.temperature;
	float thr = s->p.min_p > 0 ? max + logf(s->p.min_p) : -INFINITY;
	int32_t nblk = (int32_t)(((int64_t)v->n + BLK - 1) / BLK), j = 0;
	int32_t pick = -1;
	double sum = 0, u;

	if (ensure_blocks(s, (size_t)nblk) < 0)
		return -ENOMEM;
	for (int32_t b = 0, i = 0; b < nblk; b++) {
		double bs = 0;

		for (; i < v->n && i < (b + 1) * BLK; i++)
			bs += weight(view_at(v, i, &j), max, t, thr);
		s->blk[b] = bs;
		sum += bs;
	}
	u = rng_uniform(s->rng) * sum;
	for (int32_t b = 0; b < nblk; b++) {
		if (s->blk[b] <= 0)
			continue;
		pick = b;
		if (u < s->blk[b])
			break;
		u -= s->blk[b];
	}
	return draw_in_block(v, pick, u, max, t, thr);
}

/* top-k set: heap-select k, then top-p/min-p within it. */
static int32_t sample_top_k(struct smp *s, const struct view *v)
{
	int32_t k = s->p.top_k, cnt, n;
	double z = 0;

	if (ensure_cand(s, (size_t)k) < 0)
		return -ENOMEM;
	cnt = select_top(v, s->cand, k);
	if (cnt == 0)
		return -EDOM;
	for (int32_t i = 0; i < cnt; i++)
		z += expf(s->cand[i].l - s->cand[0].l);
	n = cut_prefix(&s->p, s->cand, cnt, s->cand[0].l, z);
	return draw_cands(s, s->cand, n, s->cand[0].l);
}

static inline int32_t bucket_of(float l, float max, float scale)
{
	float d = (max - l) * scale;

	return d >= NB - 1 ? NB - 1 : (int32_t)d;
}

/* Pass 1 of the nucleus: mass and count per logit bucket; the total mass. */
static double bucket_pass(struct smp *s, const struct view *v, float max,
			  float scale)
{
	double z = 0;
	int32_t j = 0;

	memset(s->bmass, 0, NB * sizeof(*s->bmass));
	memset(s->bcount, 0, NB * sizeof(*s->bcount));
	for (int32_t i = 0; i < v->n; i++) {
		float l = view_at(v, i, &j);
		int32_t b;
		double w;

		if (l == -INFINITY)
			continue;
		b = bucket_of(l, max, scale);
		w = expf(l - max);
		s->bmass[b] += w;
		s->bcount[b]++;
		z += w;
	}
	return z;
}

/* The bucket in which the cumulative mass reaches target; *before is the
 * mass of the buckets ahead of it. */
static int32_t cut_bucket(const struct smp *s, double target, double *before)
{
	int32_t b, last = 0;

	*before = 0;
	for (b = 0; b < NB; b++) {
		if (s->bcount[b] == 0)
			continue;
		if (*before + s->bmass[b] >= target)
			return b;
		*before += s->bmass[b];
		last = b;
	}
	*before -= s->bmass[last]; /* rounding: the last bucket is the cut */
	return last;
}

/* Pass 2: tokens of buckets < cut (and >= thr) to cand[0..), return how
 * many; the cut bucket's tokens to cand[at..), *nb how many. */
static int32_t collect(struct smp *s, const struct view *v, float max,
		       float scale, int32_t cut, float thr, int32_t at,
		       int32_t *nb)
{
	int32_t k = 0, j = 0;

	*nb = 0;
	for (int32_t i = 0; i < v->n; i++) {
		float l = view_at(v, i, &j);
		int32_t b;

		if (l == -INFINITY || l < thr)
			continue;
		b = bucket_of(l, max, scale);
		if (b < cut)
			s->cand[k++] = (struct cand){ i, l, 0 };
		else if (b == cut)
			s->cand[at + (*nb)++] = (struct cand){ i, l, 0 };
	}
	return k;
}

/* No top-k: the top-p prefix via logit buckets (see DESIGN). Every token
 * in a bucket ahead of the cut bucket outranks every token in it, so only
 * the cut bucket is sorted. The result is in cand[0..n), in id order then
 * best-first: deterministic. */
static int32_t sample_nucleus(struct smp *s, const struct view *v, float max,
			      float min)
{
	float lo = min > max - LOGIT_SPAN ? min : max - LOGIT_SPAN;
	float scale = max > lo ? (NB - 1) / (max - lo) : 1.0f;
	float thr = s->p.min_p > 0 ? max + logf(s->p.min_p) : -INFINITY;
	double z, target, cum;
	int32_t cut, ahead = 0, k, nb;

	if (ensure_buckets(s) < 0)
		return -ENOMEM;
	z = bucket_pass(s, v, max, scale);
	target = (double)s->p.top_p * z;
	cut = cut_bucket(s, target, &cum);
	for (int32_t b = 0; b < cut; b++)
		ahead += s->bcount[b];
	if (ensure_cand(s, (size_t)ahead + (size_t)s->bcount[cut]) < 0)
		return -ENOMEM;
	k = collect(s, v, max, scale, cut, thr, ahead, &nb);
	qsort(s->cand + ahead, (size_t)nb, sizeof(*s->cand), cmp_best_first);
	for (int32_t i = 0; i < nb && cum < target; i++) {
		cum += expf(s->cand[ahead + i].l - max);
		s->cand[k++] = s->cand[ahead + i];
	}
	return draw_cands(s, s->cand, k, max);
}

static int32_t sample_dist(struct smp *s, const struct view *v)
{
	float max, min;

	if (s->p.top_k > 0 && s->p.top_k < v->n)
		return sample_top_k(s, v);
	view_range(v, &max, &min);
	if (max == -INFINITY)
		return -EDOM;
	if (s->p.top_p >= 1)
		return draw_all(s, v, max);
	return sample_nucleus(s, v, max, min);
}

int32_t smp_sample(struct smp *s, const float *logits, int32_t n_vocab)
{
	struct view v;
	int32_t tok;

	if (!logits || n_vocab < 1)
		return -EINVAL;
	build_view(s, logits, n_vocab, &v);
	if (s->p.temperature <= 0) {
		tok = argmax(&v);
		tok = tok < 0 ? -EDOM : tok;
	} else {
		tok = sample_dist(s, &v);
	}
	if (tok >= 0)
		smp_accept(s, tok);
	return tok;
}

/* ---- end conditions ---------------------------------------------------- */

enum smp_end smp_end_of(int32_t tok, int64_t n_generated, int64_t max_tokens,
			const int32_t *eog, size_t n_eog)
{
	for (size_t i = 0; i < n_eog; i++)
		if (eog[i] == tok)
			return SMP_END_EOG;
	if (max_tokens > 0 && n_generated >= max_tokens)
		return SMP_END_MAX_TOKENS;
	return SMP_END_NONE;
}
