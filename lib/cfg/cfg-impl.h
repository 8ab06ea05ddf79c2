/*
 * cfg-impl.h — lib/cfg private declarations shared by its files.
 */
#ifndef PLOT_CFG_IMPL_H
#define PLOT_CFG_IMPL_H

#include <stddef.h>

#include "plot/cfg.h"

#define CFG_MAX_DEPTH 16       /* YAML nesting */
#define CFG_MAX_MAP 256        /* pairs in one YAML mapping */

/* The field of setting s inside a scope struct. */
void *cfg_field(void *base, const struct cfg_setting *s);
const void *cfg_cfield(const void *base, const struct cfg_setting *s);

/* Parse scalar text into s's field of base (not STRLIST). plain: the scalar
 * was unquoted in YAML (only plain scalars can be numbers, bools or null).
 * On error returns -CFG_E_TYPE / -CFG_E_RANGE / -CFG_E_NOMEM and writes
 * "expected FORM, got VALUE" to why; base is unchanged. */
int cfg_value_parse(const struct cfg_setting *s, const char *text, size_t len, int plain,
		    void *base, char *why, size_t whylen);
/* Format s's value as YAML text; strings double-quoted when quote is set. */
int cfg_value_format(const struct cfg_setting *s, const void *base, int quote,
		     char *buf, size_t len);
/* Append a copy of text to a string list. 0 or -CFG_E_NOMEM. */
int cfg_strlist_push(struct cfg_strlist *l, const char *text, size_t len);
int cfg_strlist_push_at(struct cfg_strlist *l, const char *text, size_t len, int line, int col);

/* Set every setting of scope in base to its default / free what it owns. */
int cfg_scope_defaults(enum cfg_scope scope, void *base);
void cfg_scope_free(enum cfg_scope scope, void *base);

/* Bit index of a lot setting among the lot settings (for over_mask), -1 if
 * s is not a lot setting. */
int cfg_lot_bit(const struct cfg_setting *s);
/* Prefix of a scope's full names: "", "parking_lot.", "models[].", ... */
const char *cfg_scope_prefix(enum cfg_scope scope);

/* Why a setting that no longer exists is gone and what replaced it
 * (name relative to the scope, as in the table), or NULL. */
const char *cfg_retired(enum cfg_scope scope, const char *name);
/* A key of the config format plot replaces (matched by its last
 * component, at any level): what plot uses instead, or NULL.
 * cfg_foreign_at walks the list (0, or -1 past its end). */
const char *cfg_foreign(const char *name);
int cfg_foreign_at(size_t i, const char **key, const char **why);

/* YAML double-quoted form of s (into buf, always NUL-terminated). */
void cfg_quote(const char *s, char *buf, size_t len);

#endif
