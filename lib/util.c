/*
 * util.c — helpers shared by several lib/ modules (see util.h).
 *
 * Design: plain functions, no state. lib/ never prints, so error text goes
 * only into caller-provided buffers.
 */
#include <stdarg.h>
#include <stdio.h>

#include "util.h"

void plot_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
