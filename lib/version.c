/* version.c — the one place the version string and protocol number live. */
#include "plot/version.h"

const char *plot_version(void)
{
	return PLOT_VERSION;
}
