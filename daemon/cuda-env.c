/*
 * cuda-env.c — a test aid: PLOT_CUDA_EMULATE=1 in plotd's environment (a
 * make CUDA=1 build only) puts lib/cuda's emulated device (cuda-emu.cu)
 * behind `device: cuda`, so the serving tests (tests/cli/serve-cuda.bats)
 * run the whole CUDA backend through plotd on machines without a GPU.
 * PLOT_CUDA_EMULATE_MB=N then gives the emulated device N MiB in all, for
 * the out-of-memory tests and the device memory figures of plot stats.
 * Read once, before any model loads; unset, it never applies. It lives here, not in lib/, because lib/ reads no
 * environment.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda-env.h"

#ifdef PLOT_CUDA
#include "cuda/cuda-host.h"
#endif

const char *plotd_cuda_env(void)
{
	const char *on = getenv("PLOT_CUDA_EMULATE");

	if (!on || !*on || !strcmp(on, "0"))
		return NULL;
#ifdef PLOT_CUDA
	cuda_set_emulation(1);
	const char *mb = getenv("PLOT_CUDA_EMULATE_MB");
	char *end = NULL;
	unsigned long long v = mb && *mb ? strtoull(mb, &end, 10) : 0;
	if (mb && *mb && (*end || v == 0 || v > (1ull << 30)))
		return "PLOT_CUDA_EMULATE=1: device cuda is the host emulation (a test aid); "
		       "PLOT_CUDA_EMULATE_MB is not a number of MiB (1..2^30): ignored";
	if (v)
		cuda_emu_set_budget((size_t)v << 20);
	return "PLOT_CUDA_EMULATE=1: device cuda is the host emulation (a test aid)";
#else
	return "PLOT_CUDA_EMULATE is set but this build has no CUDA backend: ignored";
#endif
}
