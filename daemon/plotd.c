/* plotd.c — placeholder entry point until the control-plane issue lands. */
#include <stdio.h>
int main(void)
{
	fputs("plotd: not built yet\n", stderr);
	return 1;
}
