/*
 * util.h — tiny helpers shared by several lib/ modules (private to lib/).
 *
 * Only functions that were copied verbatim into more than one module live
 * here; anything module-specific stays in its module.
 */
#ifndef PLOT_LIB_UTIL_H
#define PLOT_LIB_UTIL_H

#include <stddef.h>

/* Format into the caller's error buffer; a NULL buffer or zero length is
 * allowed and ignored, so callers need not check before reporting. */
void plot_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
