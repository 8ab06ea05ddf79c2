/*
 * exec-impl.h — the rows of the executor table (lib/exec/registry.c) and
 * what they share.
 */
#ifndef PLOT_EXEC_IMPL_H
#define PLOT_EXEC_IMPL_H

#include "plot/exec.h"

extern const struct exec_ops exec_synthetic_ops; /* synthetic.c */
extern const struct exec_ops exec_llm_ops;       /* llm.c */

/* A zeroed result with status set; NULL when out of memory. */
struct exec_prepared *exec_prepared_new(int status);

#endif
