/*
 * backend-cuda.c — the CUDA engine backend's entry in the registry
 * (lib/llm/engine/backend.c), for device names "cuda" and "cuda:N".
 * Compiled into every build, empty unless make CUDA=1 defines PLOT_CUDA.
 *
 * What is real today: probe asks the runtime (cuda-dev.cu) whether device
 * N exists and answers, so "cuda:1" on a one-GPU machine fails with
 * "cuda:1: no such CUDA device (found 1)". What is not: open refuses with
 * "the CUDA engine backend is not implemented yet (issue #12)", so no
 * model ever reaches the other ops; they refuse the same way should one
 * be called. Issue #12 fills them in: upload copies the weights to the
 * device, kv_alloc is cudaMalloc'ed blocks the host's block tables index,
 * forward runs the kernels; the host-side bookkeeping is already shared.
 */
#ifdef PLOT_CUDA

#include <stdio.h>

#include "cuda/cuda-dev.h"
#include "llm/engine/backend-impl.h"

#define NOT_YET "the CUDA engine backend is not implemented yet (issue #12)"

static int cuda_probe(int index, char *err, size_t errlen)
{
	char e[200];
	int n;
	struct cuda_dev_info info;
	if (cuda_dev_count(&n, e, sizeof e) != 0) {
		snprintf(err, errlen, "cuda:%d: no usable CUDA device: %s", index, e);
		return -LLM_EUNSUP;
	}
	if (index >= n) {
		snprintf(err, errlen, "cuda:%d: no such CUDA device (found %d)", index, n);
		return -LLM_EUNSUP;
	}
	if (cuda_dev_info(index, &info, e, sizeof e) != 0) {
		snprintf(err, errlen, "cuda:%d: %s", index, e);
		return -LLM_EUNSUP;
	}
	return 0;
}

static int cuda_open(int index, void **dev, char *err, size_t errlen)
{
	*dev = NULL;
	snprintf(err, errlen, "cuda:%d: " NOT_YET, index);
	return -LLM_EUNSUP;
}

static void cuda_close(void *dev)
{
}

static int cuda_upload(struct llm_model *m, char *err, size_t errlen)
{
	snprintf(err, errlen, "cuda: " NOT_YET);
	return -LLM_EUNSUP;
}

static void cuda_release(struct llm_model *m)
{
}

static int cuda_kv_alloc(void *dev, const struct llm_kv_geom *g, void **store, char *err,
			 size_t errlen)
{
	snprintf(err, errlen, "cuda: KV storage: " NOT_YET);
	return -LLM_EUNSUP;
}

static void cuda_kv_free(void *dev, void *store)
{
}

static int cuda_forward(struct llm_model *m, struct llm_kv *kv, const struct llm_batch *b,
			float *logits, char *err, size_t errlen)
{
	snprintf(err, errlen, "cuda: forward: " NOT_YET);
	return -LLM_EUNSUP;
}

const struct llm_backend_ops llm_backend_cuda = {
	.name = "cuda",
	.indexed = 1,
	.probe = cuda_probe,
	.open = cuda_open,
	.close = cuda_close,
	.upload = cuda_upload,
	.release = cuda_release,
	.kv_alloc = cuda_kv_alloc,
	.kv_free = cuda_kv_free,
	.forward = cuda_forward,
	.set_threads = NULL,
	.threads = NULL,
};

#endif /* PLOT_CUDA */
