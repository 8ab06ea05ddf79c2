/*
 * exec-prep.c — the prep thread: turn a request into a pool_submit.
 *
 * DESIGN
 *   llm_exec_prepare() deep-copies the request (the caller's buffers may go
 *   away at once) and appends it to a FIFO guarded by the executor's mutex.
 *   The prep thread waits until the model is sized (tokenizer ready) or
 *   failed, then per request: checks the sampling parameters, max_tokens and
 *   stop strings, renders the chat template, tokenizes, checks the context
 *   length, computes the cost in KV blocks and hands the result to the
 *   request's callback. Tokenizing is the only heavy part and never runs on
 *   the caller's (event loop) thread.
 *
 * INVARIANT: every accepted request gets exactly one callback: from the prep
 * thread, or with SHUTDOWN from exec_prep_drain() when the executor stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/exec/exec-impl.h"
#include "plot/template.h"

void exec_payload_free(void *p)
{
	struct exec_payload *pl = p;
	if (!pl)
		return;
	for (size_t i = 0; i < pl->n_stop; i++)
		free(pl->stop[i]);
	free(pl->stop);
	free(pl->ids);
	free(pl);
}

void exec_prep_req_free(struct prep_req *q)
{
	if (!q)
		return;
	free(q->prompt);
	for (size_t i = 0; i < q->n_msgs; i++) {
		free((char *)q->msgs[i].role);
		free((char *)q->msgs[i].content);
	}
	free(q->msgs);
	for (size_t i = 0; i < q->n_stop; i++)
		free(q->stop[i]);
	free(q->stop);
	free(q);
}

void llm_exec_prepared_free(struct llm_exec_prepared *r)
{
	if (!r)
		return;
	if (r->sub.payload && r->sub.payload_free)
		r->sub.payload_free(r->sub.payload);
	free(r);
}

/* ---- request copy (caller's thread) ------------------------------------------ */

static int copy_strs(char ***out, const char *const *in, size_t n)
{
	*out = calloc(n ? n : 1, sizeof **out);
	if (!*out)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((*out)[i] = strdup(in[i])))
			return -1;
	return 0;
}

static int copy_msgs(struct prep_req *q, const struct llm_exec_request *r)
{
	q->msgs = calloc(r->n_messages ? r->n_messages : 1, sizeof *q->msgs);
	if (!q->msgs)
		return -1;
	q->n_msgs = r->n_messages;
	for (size_t i = 0; i < r->n_messages; i++) {
		q->msgs[i].role = strdup(r->messages[i].role);
		q->msgs[i].content = strdup(r->messages[i].content);
		if (!q->msgs[i].role || !q->msgs[i].content)
			return -1;
	}
	return 0;
}

/* Shape checks that need no model: sizes are bounded before copying. */
static int check_request(const struct llm_exec_request *r, char *err, size_t errlen)
{
	size_t total = r->prompt ? strlen(r->prompt) : 0;
	if (!r->prompt && r->n_messages == 0) {
		snprintf(err, errlen, "request: no prompt and no messages");
		return -1;
	}
	if (r->n_messages > LLM_EXEC_MAX_MESSAGES) {
		snprintf(err, errlen, "request: %zu messages, at most %u", r->n_messages,
			 LLM_EXEC_MAX_MESSAGES);
		return -1;
	}
	for (size_t i = 0; i < r->n_messages; i++) {
		if (!r->messages[i].role || !r->messages[i].content) {
			snprintf(err, errlen, "messages[%zu]: role or content missing", i);
			return -1;
		}
		total += strlen(r->messages[i].content);
	}
	if (total > LLM_EXEC_MAX_PROMPT) {
		snprintf(err, errlen, "request: prompt of %zu bytes, at most %u", total,
			 LLM_EXEC_MAX_PROMPT);
		return -1;
	}
	if (r->n_stop > SMP_MAX_STOPS || (r->n_stop && !r->stop)) {
		snprintf(err, errlen, "stop: %zu strings, at most %d", r->n_stop, SMP_MAX_STOPS);
		return -1;
	}
	for (size_t i = 0; i < r->n_stop; i++) {
		size_t n = r->stop[i] ? strlen(r->stop[i]) : 0;
		if (n < 1 || n > SMP_MAX_STOP_LEN) {
			snprintf(err, errlen, "stop[%zu]: %zu bytes, want 1..%d", i, n,
				 SMP_MAX_STOP_LEN);
			return -1;
		}
	}
	return 0;
}

int llm_exec_prepare(struct llm_exec *x, const struct llm_exec_request *r,
		     llm_exec_prepared_fn cb, void *cb_ctx, char *err, size_t errlen)
{
	if (check_request(r, err, errlen) < 0)
		return -LLM_EXEC_E_INVALID;
	struct prep_req *q = calloc(1, sizeof *q);
	if (!q || (r->prompt && !(q->prompt = strdup(r->prompt))) || copy_msgs(q, r) < 0 ||
	    copy_strs(&q->stop, r->stop, r->n_stop) < 0) {
		if (q)
			q->n_stop = r->n_stop;
		exec_prep_req_free(q);
		snprintf(err, errlen, "request: out of memory");
		return -LLM_EXEC_E_NOMEM;
	}
	q->n_stop = r->n_stop;
	q->r = *r;
	q->cb = cb;
	q->cb_ctx = cb_ctx;
	q->arrival_ns = exec_now_ns();
	pthread_mutex_lock(&x->mu);
	if (x->stopping) {
		pthread_mutex_unlock(&x->mu);
		exec_prep_req_free(q);
		snprintf(err, errlen, "model %s: shutting down", x->name);
		return -LLM_EXEC_E_SHUTDOWN;
	}
	if (x->prep_tail)
		x->prep_tail->next = q;
	else
		x->prep_head = q;
	x->prep_tail = q;
	pthread_cond_signal(&x->prep_cv);
	pthread_mutex_unlock(&x->mu);
	return 0;
}

/* ---- preparing (prep thread) ------------------------------------------------- */

static int fail(struct llm_exec_prepared *res, int code, const char *fmt, const char *a)
{
	res->status = -code;
	snprintf(res->error, sizeof res->error, fmt, a);
	return -1;
}

static int render(struct llm_exec *x, const struct tmpl_msg *msgs, size_t n, char **text,
		  size_t *len, unsigned *flags, struct llm_exec_prepared *res);

/* The prompt text to tokenize and how (chat: template markup is special). A
 * plain prompt becomes one user turn when asked and the model has a
 * template; otherwise it is tokenized as it is. */
static int prompt_text(struct llm_exec *x, struct prep_req *q, char **text, size_t *len,
		       unsigned *flags, struct llm_exec_prepared *res)
{
	struct tmpl_msg turn = { "user", q->prompt };
	if (q->n_msgs == 0 && q->r.prompt_as_turn && x->tmpl)
		return render(x, &turn, 1, text, len, flags, res);
	if (q->n_msgs == 0) {
		*text = q->prompt;
		*len = strlen(q->prompt);
		*flags = TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL;
		return 0;
	}
	if (!x->tmpl)
		return fail(res, LLM_EXEC_E_INVALID, "chat messages need a chat template: %s",
			    x->tmpl_err);
	return render(x, q->msgs, q->n_msgs, text, len, flags, res);
}

/* Messages through the model's template; its markup is special text. */
static int render(struct llm_exec *x, const struct tmpl_msg *msgs, size_t n, char **text,
		  size_t *len, unsigned *flags, struct llm_exec_prepared *res)
{
	char e[256];
	size_t bl = 0, el = 0;
	const char *b = tok_text(x->tok, tok_bos(x->tok), &bl);
	const char *eo = tok_text(x->tok, tok_eos(x->tok), &el);
	char bos[512] = "", eos[512] = "";
	if (b && bl < sizeof bos)
		memcpy(bos, b, bl), bos[bl] = 0;
	if (eo && el < sizeof eos)
		memcpy(eos, eo, el), eos[el] = 0;
	if (tmpl_render(x->tmpl, msgs, n, 1, bos, eos, text, len, e, sizeof e) < 0)
		return fail(res, LLM_EXEC_E_INVALID, "chat template: %.200s", e);
	*flags = TOK_PARSE_SPECIAL | (tmpl_emits_bos(x->tmpl) ? 0 : TOK_ADD_SPECIAL);
	return 0;
}

/* Label: the head of the last message (or the prompt), cut on a character. */
static void make_label(struct prep_req *q, struct llm_exec_prepared *res)
{
	const char *s = q->n_msgs ? q->msgs[q->n_msgs - 1].content : q->prompt;
	size_t n = strlen(s), cap = sizeof res->label - 1;
	if (n > cap) {
		n = cap;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(res->label, s, n);
	res->label[n] = 0;
}

static int tokenize(struct llm_exec *x, struct prep_req *q, struct tok_ids *ids,
		    struct llm_exec_prepared *res)
{
	char *text = NULL, e[256];
	size_t len = 0;
	unsigned flags = 0;
	if (prompt_text(x, q, &text, &len, &flags, res) < 0)
		return -1;
	int rc = tok_encode(x->tok, text, len, flags, ids, e, sizeof e);
	if (text != q->prompt)
		free(text);
	if (rc < 0)
		return fail(res, rc == TOK_E_NOMEM ? LLM_EXEC_E_NOMEM : LLM_EXEC_E_INVALID,
			    "tokenizer: %.200s", e);
	if (ids->n == 0)
		return fail(res, LLM_EXEC_E_INVALID, "%sprompt is empty", "");
	return 0;
}

/* max_tokens 0: as many as the context, the KV cache and the model's
 * max_units leave after the prompt (a task's blocks are reserved whole, so
 * this is its reservation; it never costs more than the model can hold). */
static void fill_max_tokens(struct llm_exec *x, struct prep_req *q, size_t n_prompt)
{
	uint64_t room = x->n_ctx, bs = x->cfg.block_size;
	uint64_t kv = (uint64_t)llm_exec_blocks_total(x) * bs;
	uint64_t units = x->pool ? pool_get_limit(x->pool, POOL_LIMIT_MAX_UNITS) : POOL_UNLIMITED;
	if (q->r.max_tokens || n_prompt >= room)
		return;
	if (units != POOL_UNLIMITED && units < kv / bs)
		kv = units * bs;
	if (kv && kv < room)
		room = kv;
	q->r.max_tokens = n_prompt < room ? (uint32_t)(room - n_prompt) : 1;
}

static int check_fit(struct llm_exec *x, struct prep_req *q, size_t n_prompt,
		     struct llm_exec_prepared *res)
{
	fill_max_tokens(x, q, n_prompt);
	if (q->r.max_tokens == 0)
		q->r.max_tokens = 1; /* the prompt fills the context: refused below */
	uint64_t need = (uint64_t)n_prompt + q->r.max_tokens;
	if (need <= x->n_ctx)
		return 0;
	res->status = -LLM_EXEC_E_CONTEXT;
	snprintf(res->error, sizeof res->error,
		 "prompt of %zu tokens + max_tokens %u exceeds the context of %u", n_prompt,
		 q->r.max_tokens, x->n_ctx);
	return -1;
}

static int check_params(struct prep_req *q, struct llm_exec_prepared *res)
{
	char e[200];
	if (smp_params_check(&q->r.params, e, sizeof e) < 0)
		return fail(res, LLM_EXEC_E_INVALID, "%s", e);
	return 0;
}

static void fill_submit(struct llm_exec *x, struct prep_req *q, struct exec_payload *pl,
			struct llm_exec_prepared *res)
{
	uint64_t bs = x->cfg.block_size;
	res->prompt_tokens = pl->n_prompt;
	res->sub.priority = q->r.priority;
	res->sub.cost = ((uint64_t)pl->n_prompt + pl->max_tokens + bs - 1) / bs;
	res->sub.deadline_ns = q->r.deadline_ns;
	res->sub.timeout_ns = q->r.timeout_ns;
	res->sub.owner_uid = q->r.owner_uid;
	res->sub.payload = pl;
	res->sub.payload_free = exec_payload_free;
	make_label(q, res);
	res->sub.label = res->label;
}

static void prepare_one(struct llm_exec *x, struct prep_req *q, struct llm_exec_prepared *res)
{
	struct tok_ids ids = { 0 };
	if (check_params(q, res) < 0 || tokenize(x, q, &ids, res) < 0 ||
	    check_fit(x, q, ids.n, res) < 0) {
		tok_ids_free(&ids);
		return;
	}
	struct exec_payload *pl = calloc(1, sizeof *pl);
	if (!pl) {
		tok_ids_free(&ids);
		fail(res, LLM_EXEC_E_NOMEM, "%sout of memory", "");
		return;
	}
	pl->ids = ids.v; /* ownership moves */
	pl->n_prompt = (uint32_t)ids.n;
	pl->max_tokens = q->r.max_tokens;
	pl->params = q->r.params;
	pl->stop = q->stop;
	pl->n_stop = q->n_stop;
	q->stop = NULL;
	q->n_stop = 0;
	pl->ignore_eos = q->r.ignore_eos;
	pl->arrival_ns = q->arrival_ns;
	fill_submit(x, q, pl, res);
}

static void answer(struct prep_req *q, int code, const char *why)
{
	struct llm_exec_prepared *res = calloc(1, sizeof *res);
	if (!res) {
		/* Nothing to report with: the callback still runs, with NULL. */
		q->cb(q->cb_ctx, NULL);
		return;
	}
	res->status = -code;
	snprintf(res->error, sizeof res->error, "%s", why);
	q->cb(q->cb_ctx, res);
}

static void process(struct llm_exec *x, struct prep_req *q, int state, const char *why)
{
	if (state == LLM_EXEC_FAILED) {
		char e[300];
		snprintf(e, sizeof e, "model %s failed to load: %s", x->name, why);
		answer(q, LLM_EXEC_E_LOAD, e);
		return;
	}
	struct llm_exec_prepared *res = calloc(1, sizeof *res);
	if (!res) {
		answer(q, LLM_EXEC_E_NOMEM, "out of memory");
		return;
	}
	prepare_one(x, q, res);
	q->cb(q->cb_ctx, res);
}

void *exec_prep_main(void *arg)
{
	struct llm_exec *x = arg;
	char why[256];
	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (!x->stopping && (!x->prep_head || !x->sized))
			pthread_cond_wait(&x->prep_cv, &x->mu);
		if (x->stopping)
			break;
		struct prep_req *q = x->prep_head;
		x->prep_head = q->next;
		if (!x->prep_head)
			x->prep_tail = NULL;
		int state = x->state;
		snprintf(why, sizeof why, "%s", x->error);
		pthread_mutex_unlock(&x->mu);
		process(x, q, state, why);
		exec_prep_req_free(q);
		pthread_mutex_lock(&x->mu);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* After the threads are joined: answer what is still queued. */
void exec_prep_drain(struct llm_exec *x)
{
	pthread_mutex_lock(&x->mu);
	struct prep_req *q = x->prep_head;
	x->prep_head = x->prep_tail = NULL;
	pthread_mutex_unlock(&x->mu);
	while (q) {
		struct prep_req *nx = q->next;
		answer(q, LLM_EXEC_E_SHUTDOWN, "model is shutting down");
		exec_prep_req_free(q);
		q = nx;
	}
}
