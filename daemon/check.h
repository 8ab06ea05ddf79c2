/*
 * check.h — plotd --check-config's checks beyond the file itself (check.c).
 */
#ifndef PLOTD_CHECK_H
#define PLOTD_CHECK_H

#include <stdio.h>

#include "plot/cfg.h"

/* Check every model of c without loading one: an llm model's file opens
 * and starts with the GGUF magic (errors), its context_length is within
 * the training context the file declares, and no params setting is given
 * that only another executor reads (warnings). Each finding is one line
 * "plotd: SOURCE: models[i] (NAME): ..." on out. Returns the number of
 * errors. */
int check_models(const struct cfg *c, FILE *out);

#endif
