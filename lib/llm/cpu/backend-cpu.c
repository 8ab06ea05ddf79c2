/*
 * backend-cpu.c — the CPU engine backend: the struct llm_backend_ops the
 * registry (engine/backend.c) returns for device "cpu".
 *
 * Upload repacks the weights for the GEMM kernels (model-pack.c) and starts
 * the model's compute thread pool; KV storage is host memory (kv-store.c);
 * forward is forward.c. There is one CPU device: "cpu" takes no index.
 */
#include <stdio.h>

#include "llm/cpu/cpu-impl.h"
#include "llm/cpu/threads.h"
#include "llm/engine/model-impl.h"

#define LLM_POOL_SPIN_US 50

_Static_assert(LLM_MAX_THREADS <= THR_MAX_THREADS, "llm.h promises more threads than threads.h has");

static int cpu_probe(int index, char *err, size_t errlen)
{
	return 0;
}

static int cpu_open(int index, void **dev, char *err, size_t errlen)
{
	*dev = NULL;
	return 0;
}

static void cpu_close(void *dev)
{
}

static int cpu_upload(struct llm_model *m, char *err, size_t errlen)
{
	int rc = llm_pack_weights(m, err, errlen);
	if (rc)
		return rc;
	if (!(m->pool = thr_pool_new(1, err, errlen)))
		return -LLM_ENOMEM;
	/* A decode step is ~150 back-to-back pool runs; without a short spin
	 * every run pays a futex sleep and wake-up per worker (17% of a 2-thread
	 * SmolLM2 decode in the kernel's scheduler). With 50 us, 2-thread decode
	 * went from ~70 to ~85-110 tok/s; workers still sleep 50 us after the
	 * last run of a step. */
	thr_pool_set_spin_us(m->pool, LLM_POOL_SPIN_US);
	return 0;
}

static void cpu_release(struct llm_model *m)
{
	llm_pack_free(m);
	if (m->pool)
		thr_pool_free(m->pool);
	m->pool = NULL;
	llm_scratch_free(m->scr);
	m->scr = NULL;
}

static int cpu_set_threads(struct llm_model *m, unsigned n)
{
	return thr_pool_set_threads(m->pool, n) == 0 ? 0 : -LLM_ENOMEM;
}

static unsigned cpu_threads(const struct llm_model *m)
{
	return thr_pool_threads(m->pool);
}

const struct llm_backend_ops llm_backend_cpu = {
	.name = "cpu",
	.indexed = 0,
	.probe = cpu_probe,
	.open = cpu_open,
	.close = cpu_close,
	.upload = cpu_upload,
	.release = cpu_release,
	.kv_alloc = llm_cpu_kv_alloc,
	.kv_free = llm_cpu_kv_free,
	.forward = llm_cpu_forward,
	.set_threads = cpu_set_threads,
	.threads = cpu_threads,
};
