/*
 * sampler.h — per-sequence token sampling and stop conditions.
 *
 * Every sequence in a batch owns one struct smp with its own parameters,
 * RNG state and recent-token history, so sequences never influence each
 * other's choices and a given (seed, logits sequence) always yields the same
 * tokens. A struct smp is not thread-safe; one thread at a time calls it.
 * There is no shared or global state, so different sequences' samplers may
 * run in parallel (e.g. one per compute thread after a batched step: a
 * sample over a 262144-token vocabulary costs about 1-4 arg-max passes,
 * see make bench-sampler).
 *
 * smp_sample() applies, in llama.cpp's default order:
 *   1. penalties   over the last penalty_last_n accepted tokens, for each
 *                  distinct token t seen c times there:
 *                    logit = logit <= 0 ? logit * repetition_penalty
 *                                       : logit / repetition_penalty
 *                    logit -= c * frequency_penalty + presence_penalty
 *   2. top-k       keep the k highest logits (ties: lower token id first)
 *   3. top-p       keep the shortest best-first prefix whose softmax mass
 *                  (over what top-k kept, temperature 1) reaches top_p
 *   4. min-p       keep tokens with p >= min_p * p_max
 *   5. temperature divide the remaining logits by temperature
 *   6. draw        one token from their softmax, with the sequence's RNG
 * temperature 0 is greedy: the arg-max of the penalized logits, ties to the
 * lowest id (steps 2-4 never drop the arg-max, so they are skipped).
 *
 * Stop strings are matched on detokenized text by struct smp_stop (see
 * below). max_tokens and end-of-generation tokens: smp_end_of().
 */
#ifndef PLOT_SAMPLER_H
#define PLOT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#define SMP_MAX_LAST_N   65536  /* penalty_last_n upper bound */
#define SMP_MAX_TEMP     100.0f
#define SMP_MAX_STOPS    16     /* stop strings per sequence */
#define SMP_MAX_STOP_LEN 256    /* bytes per stop string */

struct smp_params {
	float temperature;        /* 0 = greedy; [0, 100] */
	int32_t top_k;            /* 0 = off; >= 0 (>= n_vocab is off too) */
	float top_p;              /* (0, 1]; 1 = off */
	float min_p;              /* [0, 1]; 0 = off */
	float repetition_penalty; /* (0, 10]; 1 = off */
	float frequency_penalty;  /* [-2, 2]; 0 = off */
	float presence_penalty;   /* [-2, 2]; 0 = off */
	int32_t penalty_last_n;   /* [0, SMP_MAX_LAST_N]; 0 = no penalties */
	uint64_t seed;            /* the whole RNG state derives from it */
};

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repetition_penalty 1, frequency/presence 0, penalty_last_n 64, seed 0.
 * The library never picks a random seed: callers that want one draw it and
 * report it, so a run can be repeated. */
void smp_params_default(struct smp_params *p);

/* 0 if every field is in range; else -EINVAL and err names the field, its
 * range and the bad value, e.g. "top_p must be in (0, 1], got 2". */
int smp_params_check(const struct smp_params *p, char *err, size_t errlen);

/* The declarative table of the fields above, for the CLI's flags, the
 * daemon's request keys, help, man page and completions: one entry per
 * field, in struct order, ending with a NULL name. */
enum smp_ptype { SMP_PT_FLOAT, SMP_PT_INT32, SMP_PT_UINT64 };

struct smp_param_info {
	const char *name;        /* "top_p": the field, the request key */
	enum smp_ptype type;
	size_t offset;           /* into struct smp_params */
	double min, max;         /* inclusive unless min_open */
	int min_open;            /* 1: the range is (min, max] */
	double def;              /* default */
	const char *range;       /* as in messages: "in (0, 1]" */
	const char *help;        /* one line */
};

extern const struct smp_param_info smp_param_table[];

const struct smp_param_info *smp_param_find(const char *name);

/* Parse text as the value of field `name` and store it in *p if it is in
 * range; else -EINVAL, *p unchanged, and err says why ("top_p must be in
 * (0, 1], got 2", "top_k: not an integer: 'x'", "unknown sampling
 * parameter 'foo'"). */
int smp_param_set(struct smp_params *p, const char *name, const char *text,
		  char *err, size_t errlen);

struct smp;

/* A sampler with a copy of *p (checked as by smp_params_check). NULL on
 * error with err filled. */
struct smp *smp_new(const struct smp_params *p, char *err, size_t errlen);
void smp_free(struct smp *s);

/* Pick the next token from logits (n_vocab floats; NaN counts as -inf) and
 * accept it into the history. Returns the token id (>= 0), or -EINVAL
 * (n_vocab < 1 or no logits), -EDOM (every logit is -inf/NaN), -ENOMEM.
 * The logits are not modified. Memory: besides the history, up to
 * 8 * min(top_k, n_vocab) bytes of scratch, 8 * n_vocab in the worst case
 * of top-p without top-k over a flat distribution. */
int32_t smp_sample(struct smp *s, const float *logits, int32_t n_vocab);

/* Add a token to the penalty history without sampling it (e.g. the
 * prompt, if prompt tokens should be penalized: llama.cpp's server does). */
void smp_accept(struct smp *s, int32_t token);

/* Forget the history and reseed the RNG from the parameters' seed. */
void smp_reset(struct smp *s);

const struct smp_params *smp_get_params(const struct smp *s);

/* ---- stop strings ------------------------------------------------------
 *
 * struct smp_stop watches the detokenized output for any of up to
 * SMP_MAX_STOPS byte strings, which may span several pieces. Each feed
 * tells how many bytes are safe to emit: everything except a suffix that
 * could still grow into a stop string, which is held back and emitted later
 * (intact) once it can no longer match. When a stop string completes, the
 * text before it is emitted, the stop string and anything after it are
 * not, and the matcher is finished. Pieces that are whole UTF-8 characters
 * (what the detokenizer produces) come out as whole characters.
 */
struct smp_stop;

/* stops[0..n) are NUL-terminated, each 1..SMP_MAX_STOP_LEN bytes; n may be
 * 0 (nothing is ever held back). NULL on error with err filled. */
struct smp_stop *smp_stop_new(const char *const *stops, size_t n, char *err,
			      size_t errlen);
void smp_stop_free(struct smp_stop *st);

/* Feed the next piece. Returns the number of bytes safe to emit now, which
 * are at *text (valid until the next call on st), or -ENOMEM. *which is the
 * index of the stop string that matched, else -1. After a match every feed
 * returns 0 and the same *which. */
long smp_stop_feed(struct smp_stop *st, const char *piece, size_t len,
		   const char **text, int *which);

/* Generation ended for another reason: the held-back bytes, now safe (0
 * after a match). The matcher is then empty and may be fed again. */
long smp_stop_flush(struct smp_stop *st, const char **text);

/* ---- end conditions ----------------------------------------------------- */

enum smp_end {
	SMP_END_NONE = 0,       /* keep going */
	SMP_END_EOG,            /* the token is end-of-generation (EOS/EOT):
	                           it is not detokenized or shown */
	SMP_END_MAX_TOKENS,     /* the token is shown, then generation stops */
};

/* Why generation ends with token tok, the n_generated-th generated token
 * (counting it). eog[0..n_eog) are the model's end-of-generation ids (from
 * the tokenizer); max_tokens 0 means no limit. EOG wins over max_tokens.
 * Stop strings are the third reason and come from smp_stop_feed. */
enum smp_end smp_end_of(int32_t tok, int64_t n_generated, int64_t max_tokens,
			const int32_t *eog, size_t n_eog);

#endif
