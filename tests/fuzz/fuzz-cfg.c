/*
 * fuzz-cfg.c — libFuzzer harness for the plot.yaml loader. Any text either
 * loads or fails with an error message; a config that loads must dump to
 * YAML that loads again and dumps to the same text (the dump is faithful).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c, *d;
	char err[512], *t1, *t2;
	size_t n1, n2;

	if (cfg_load_string((const char *)data, size, "fuzz.yaml", &c, err, sizeof err) != 0) {
		if (!err[0])
			abort(); /* every failure explains itself */
		return 0;
	}
	if (cfg_dump(c, &t1, &n1) != 0)
		abort();
	if (cfg_load_string(t1, n1, "fuzz.yaml", &d, err, sizeof err) != 0)
		abort();
	if (cfg_dump(d, &t2, &n2) != 0)
		abort();
	if (n1 != n2 || memcmp(t1, t2, n1) != 0)
		abort();
	free(t1);
	free(t2);
	cfg_free(c);
	cfg_free(d);
	return 0;
}
