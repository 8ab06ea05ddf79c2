/* plot.c — placeholder entry point until the control-plane issue lands. */
#include <stdio.h>
int main(void)
{
	fputs("plot: not built yet\n", stderr);
	return 1;
}
