/*
 * synthetic.c — the `synthetic` row of the executor table: the pool's
 * synthetic executor (lib/pool/exec-synth.c), which echoes a prompt's words
 * back, for tests and benchmarks.
 *
 * Preparing costs nothing (no tokenizer), so prepare answers inline: the
 * callback runs before exec_prepare returns. A chat echoes its last
 * message. The cost is 1 unit unless the request names one.
 */
#include <stdio.h>
#include <string.h>

#include "exec/exec-impl.h"

static int synth_create(const struct exec_config *c, struct pool_executor *pe, void **ctx,
			char *err, size_t errlen)
{
	*pe = pool_synthetic_executor_new(c->model->params.tokens_per_sec);
	*ctx = NULL;
	if (!pe->ops || !pe->ctx) {
		snprintf(err, errlen, "synthetic executor: out of memory");
		return -EXEC_E_NOMEM;
	}
	return 0;
}

static const char *echo_text(const struct exec_request *r)
{
	if (r->prompt)
		return r->prompt;
	return r->n_messages ? r->messages[r->n_messages - 1].content : "";
}

static int synth_prepare(void *ctx, const struct exec_request *r, exec_prepared_fn cb,
			 void *cb_ctx, char *err, size_t errlen)
{
	const char *text = echo_text(r);
	struct exec_prepared *p = exec_prepared_new(0);
	uint32_t max = (r->has & EXEC_HAS_MAX_TOKENS) ? r->max_tokens : 0;

	(void)ctx;
	if (!p || !(p->sub.payload = pool_synth_payload_new(text, max))) {
		exec_prepared_free(p);
		snprintf(err, errlen, "out of memory");
		return -EXEC_E_NOMEM;
	}
	p->sub.payload_free = pool_synth_payload_free;
	p->max_tokens = max;
	p->sub.priority = r->priority;
	p->sub.cost = (r->has & EXEC_HAS_COST) ? r->cost : 1;
	p->sub.timeout_ns = (r->has & EXEC_HAS_TIMEOUT) ? r->timeout_ns : 0;
	p->sub.owner_uid = r->owner_uid;
	snprintf(p->label, sizeof(p->label), "%s", text);
	p->sub.label = p->label;
	cb(cb_ctx, p);
	return 0;
}

const struct exec_ops exec_synthetic_ops = {
	.name = "synthetic",
	.create = synth_create,
	.prepare = synth_prepare,
};
