/*
 * backend.c — the registry of engine backends: a device name ("cpu",
 * "cuda", "cuda:N") to the struct llm_backend_ops that serves it.
 *
 * Design: one table of every device name we know (CPU always built, CUDA
 * with make CUDA=1). A name is checked for syntax first, then for being
 * built, so "cuda:x" is malformed in every build. Parsing is
 * pure string work: no backend is probed here, so llm_device_check() is
 * cheap enough for a config check on the daemon's event loop; the loader
 * probes (which may initialise a GPU driver) off the loop.
 */
#include <stdio.h>
#include <string.h>

#include "llm/engine/backend-impl.h"

#define DEVICE_MAX_INDEX 255

/* Every device name we know, built or not: ops NULL says why it is absent,
 * so "cuda" in a CPU-only build says how to get it rather than "unknown". */
static const struct {
	const char *name;
	int indexed;                        /* takes ":N" (as ops->indexed) */
	const struct llm_backend_ops *ops;
	const char *why;
} known[] = {
	{ "cpu", 0, &llm_backend_cpu, NULL },
#ifdef PLOT_CUDA
	{ "cuda", 1, &llm_backend_cuda, NULL },
#else
	{ "cuda", 1, NULL, "this build has no CUDA backend (rebuild with make CUDA=1)" },
#endif
};

/* ":N" after the backend name: N a decimal device index. -1 if malformed. */
static int parse_index(const char *s)
{
	if (*s == '\0')
		return 0;
	if (*s != ':' || s[1] == '\0')
		return -1;
	int n = 0;
	for (s++; *s; s++) {
		if (*s < '0' || *s > '9' || (n = n * 10 + (*s - '0')) > DEVICE_MAX_INDEX)
			return -1;
	}
	return n;
}

/* Length of the name before any ':'. */
static size_t prefix_len(const char *device)
{
	const char *c = strchr(device, ':');
	return c ? (size_t)(c - device) : strlen(device);
}

static int name_is(const char *device, size_t n, const char *name)
{
	return strlen(name) == n && strncmp(device, name, n) == 0;
}

static int unknown(const char *device, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "'%.64s': %s (want cpu, cuda or cuda:N with N 0..%d)", device,
		 what, DEVICE_MAX_INDEX);
	return -LLM_EINVAL;
}

int llm_backend_find(const char *device, const struct llm_backend_ops **ops, int *index,
		     char *err, size_t errlen)
{
	if (!device)
		device = "cpu";
	size_t n = prefix_len(device);
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		if (!name_is(device, n, known[i].name))
			continue;
		int ix = parse_index(device + n);
		if (ix < 0 || (device[n] == ':' && !known[i].indexed))
			return unknown(device, "malformed device index", err, errlen);
		if (!known[i].ops) {
			snprintf(err, errlen, "%.64s: %s", device, known[i].why);
			return -LLM_EUNSUP;
		}
		*ops = known[i].ops;
		*index = ix;
		return 0;
	}
	return unknown(device, "unknown device", err, errlen);
}

int llm_device_check(const char *device, char *err, size_t errlen)
{
	const struct llm_backend_ops *ops;
	int index;
	return llm_backend_find(device, &ops, &index, err, errlen);
}
