/*
 * sampler-params.c — the sampling parameters' table, defaults, validation
 * and parsing (include/plot/sampler.h).
 *
 * DESIGN
 *   smp_param_table is the one description of every field: name, type,
 *   offset, range and default. Defaults, smp_params_check, smp_param_set
 *   and whatever the CLI and daemon build on top (flags, request keys,
 *   help) all read it, so a range or default cannot drift between them.
 *
 * INVARIANTS
 *   - Range checks are written so that NaN fails them.
 *   - smp_param_set changes *p only when the new value is valid.
 */
#include "plot/sampler.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(struct smp_params, field)

const struct smp_param_info smp_param_table[] = {
	{ "temperature", SMP_PT_FLOAT, F(temperature), 0, SMP_MAX_TEMP, 0,
	  0.8, "in [0, 100]", "softmax temperature; 0 = greedy" },
	{ "top_k", SMP_PT_INT32, F(top_k), 0, INT32_MAX, 0, 40,
	  ">= 0 (0 = off)", "keep the k most likely tokens" },
	{ "top_p", SMP_PT_FLOAT, F(top_p), 0, 1, 1, 0.95, "in (0, 1]",
	  "keep the smallest set of tokens with this much probability; 1 = off" },
	{ "min_p", SMP_PT_FLOAT, F(min_p), 0, 1, 0, 0.05, "in [0, 1]",
	  "drop tokens less likely than min_p times the best; 0 = off" },
	{ "repetition_penalty", SMP_PT_FLOAT, F(repetition_penalty), 0, 10, 1,
	  1.0, "in (0, 10]",
	  "divide (or for negative logits multiply) recent tokens' logits; 1 = off" },
	{ "frequency_penalty", SMP_PT_FLOAT, F(frequency_penalty), -2, 2, 0,
	  0.0, "in [-2, 2]", "subtract this times a recent token's count" },
	{ "presence_penalty", SMP_PT_FLOAT, F(presence_penalty), -2, 2, 0,
	  0.0, "in [-2, 2]", "subtract this from every recent token" },
	{ "penalty_last_n", SMP_PT_INT32, F(penalty_last_n), 0, SMP_MAX_LAST_N,
	  0, 64, "in [0, 65536]", "how many recent tokens the penalties see" },
	{ "seed", SMP_PT_UINT64, F(seed), 0, 0, 0, 0, "any 64-bit unsigned",
	  "random seed; the same seed and prompt give the same output" },
	{ NULL, 0, 0, 0, 0, 0, 0, NULL, NULL },
};

const struct smp_param_info *smp_param_find(const char *name)
{
	for (const struct smp_param_info *e = smp_param_table; e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

void smp_params_default(struct smp_params *p)
{
	memset(p, 0, sizeof(*p));
	for (const struct smp_param_info *e = smp_param_table; e->name; e++) {
		char *f = (char *)p + e->offset;

		if (e->type == SMP_PT_FLOAT)
			*(float *)f = (float)e->def;
		else if (e->type == SMP_PT_INT32)
			*(int32_t *)f = (int32_t)e->def;
		else
			*(uint64_t *)f = (uint64_t)e->def;
	}
}

/* 0 if field e of p is in range, else -EINVAL with the message. */
static int check_one(const struct smp_param_info *e,
		     const struct smp_params *p, char *err, size_t errlen)
{
	const char *f = (const char *)p + e->offset;
	double v;

	if (e->type == SMP_PT_UINT64)
		return 0;
	v = e->type == SMP_PT_FLOAT ? *(const float *)f : *(const int32_t *)f;
	if ((e->min_open ? v > e->min : v >= e->min) && v <= e->max)
		return 0;
	if (e->type == SMP_PT_FLOAT)
		snprintf(err, errlen, "%s must be %s, got %g", e->name, e->range, v);
	else
		snprintf(err, errlen, "%s must be %s, got %d", e->name, e->range,
			 (int)*(const int32_t *)f);
	return -EINVAL;
}

int smp_params_check(const struct smp_params *p, char *err, size_t errlen)
{
	for (const struct smp_param_info *e = smp_param_table; e->name; e++)
		if (check_one(e, p, err, errlen) < 0)
			return -EINVAL;
	return 0;
}

/* Parse text into field e of q; -EINVAL with a message if it is not a
 * number of the field's type (range is checked by the caller). */
static int parse_one(const struct smp_param_info *e, const char *text,
		     struct smp_params *q, char *err, size_t errlen)
{
	char *f = (char *)q + e->offset, *end = NULL;

	errno = 0;
	if (e->type == SMP_PT_FLOAT) {
		double d = strtod(text, &end);

		if (end != text && !*end) {
			/* out of float range: inf, which the range rejects */
			*(float *)f = d > FLT_MAX ? INFINITY :
				      d < -FLT_MAX ? -INFINITY : (float)d;
			return 0;
		}
	} else if (e->type == SMP_PT_INT32) {
		long long v = strtoll(text, &end, 10);

		if (end != text && !*end && !errno && v >= INT32_MIN &&
		    v <= INT32_MAX) {
			*(int32_t *)f = (int32_t)v;
			return 0;
		}
	} else if (text[strspn(text, " \t")] != '-') {
		unsigned long long v = strtoull(text, &end, 10);

		if (end != text && !*end && !errno) {
			*(uint64_t *)f = (uint64_t)v;
			return 0;
		}
	}
	snprintf(err, errlen, "%s: not %s: '%.64s'", e->name,
		 e->type == SMP_PT_FLOAT ? "a number" : e->type == SMP_PT_INT32 ?
		 "a 32-bit integer" : "an unsigned 64-bit integer", text);
	return -EINVAL;
}

int smp_param_set(struct smp_params *p, const char *name, const char *text,
		  char *err, size_t errlen)
{
	const struct smp_param_info *e = smp_param_find(name);
	struct smp_params q = *p;

	if (!e) {
		snprintf(err, errlen, "unknown sampling parameter '%.64s'", name);
		return -EINVAL;
	}
	if (parse_one(e, text, &q, err, errlen) < 0 ||
	    check_one(e, &q, err, errlen) < 0)
		return -EINVAL;
	*p = q;
	return 0;
}
