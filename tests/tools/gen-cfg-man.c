/*
 * gen-cfg-man.c — prints man/plot.yaml.5, generated from lib/cfg's settings
 * table (`make man-cfg`). test-cfg fails when the committed page differs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "plot/cfg.h"

int main(void)
{
	char *text;
	if (cfg_man_page(&text)) {
		fputs("gen-cfg-man: out of memory\n", stderr);
		return 1;
	}
	fputs(text, stdout);
	free(text);
	return 0;
}
