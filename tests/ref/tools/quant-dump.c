/*
 * quant-dump — expose lib/llm/quant/quant.c to the Python oracle tests.
 *
 *   quant-dump dequant TYPE [ref]   stdin: whole blocks of TYPE; stdout: float32
 *   quant-dump quantize TYPE [ref]  stdin: float32, a multiple of the block
 *                                   size; stdout: blocks of TYPE
 * TYPE is a quant_name ("Q4_K"). Without "ref" the dispatched (SIMD) kernel
 * runs. Exit 2 on bad usage or input that is not whole blocks.
 */
#include "llm/quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(size_t *n)
{
	size_t cap = 1 << 16;
	unsigned char *p = malloc(cap);
	*n = 0;
	for (size_t r; p && (r = fread(p + *n, 1, cap - *n, stdin)) > 0;) {
		*n += r;
		if (*n == cap)
			p = realloc(p, cap *= 2);
	}
	return p;
}

static int type_by_name(const char *name)
{
	for (uint32_t t = 0; t < 64; t++)
		if (quant_supported(t) && strcmp(quant_name(t), name) == 0)
			return (int)t;
	if (strcmp(name, "Q8_K") == 0)
		return Q_Q8_K;
	if (strcmp(name, "Q8_1") == 0)
		return Q_Q8_1;
	return -1;
}

int main(int argc, char **argv)
{
	int t = argc >= 3 ? type_by_name(argv[2]) : -1;
	if (argc < 3 || t < 0) {
		fprintf(stderr, "usage: quant-dump dequant|quantize TYPE [ref]\n");
		return 2;
	}
	quant_force_ref(argc > 3 && strcmp(argv[3], "ref") == 0);
	size_t n;
	unsigned char *in = slurp(&n);
	uint32_t be = quant_block_elems((uint32_t)t), bb = quant_block_bytes((uint32_t)t);
	int deq = strcmp(argv[1], "dequant") == 0;
	size_t unit = deq ? bb : be * sizeof(float);
	if (!in || n % unit) {
		fprintf(stderr, "quant-dump: input is not whole blocks of %s\n", argv[2]);
		return 2;
	}
	int64_t elems = (int64_t)(n / unit) * be;
	size_t out_bytes = deq ? (size_t)elems * sizeof(float) : n / unit * bb;
	void *out = malloc(out_bytes ? out_bytes : 1);
	if (deq)
		quant_dequant_row((uint32_t)t, in, out, elems);
	else
		quant_quantize_row((uint32_t)t, (const float *)in, out, elems);
	fwrite(out, 1, out_bytes, stdout);
	free(in);
	free(out);
	return 0;
}
