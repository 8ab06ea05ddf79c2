/*
 * cfg.h — plot.yaml: the daemon's configuration, driven by one table.
 *
 * DESIGN
 *   Every setting is one row of a declarative table (struct cfg_setting):
 *   name, type, bounds, default, nullable, runtime-changeable, the field's
 *   offset, the short key used by `plot limits`, and a doc string. The YAML
 *   loader, the effective-config dump, `plot limits get/set`, `plot config`,
 *   man/plot.yaml.5 and the shell completions all read that table, so they
 *   cannot drift. Iterate it with cfg_setting_count()/cfg_setting_at().
 *
 *   Settings live in one of four scopes, each a struct:
 *     CFG_SCOPE_ROOT    struct cfg             daemon.*, default_model
 *     CFG_SCOPE_LOT     struct cfg_lot         parking_lot.* (defaults) and
 *                                              models[].parking_lot.* (overrides)
 *     CFG_SCOPE_MODEL   struct cfg_model       models[].name, executor, path
 *     CFG_SCOPE_PARAMS  struct cfg_params      models[].params.*
 *   A model's effective parking lot is the defaults with its overrides on top,
 *   wherever in the file either appears.
 *
 * SCHEMA (see man/plot.yaml.5, generated from the table)
 *   parking_lot:
 *     pool:    { max_running: null, threads: 0 }
 *     limits:  { max_units: null, max_queue_depth: 1000, timeout_secs: 0 }
 *     generate: { max_tokens: null, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 }
 *     queue:   { backend: sqlite }
 *     mailbox: { backend: sqlite, retention_secs: 3600 }
 *   daemon: { socket, log_level, log_file, pid_file, allow_users, allow_groups }
 *   default_model: echo
 *   models:
 *     - { name, executor: synthetic|llm, path, params: {...}, parking_lot: {...} }
 *
 * ERRORS
 *   Unknown key, wrong type, out of range, duplicate key or model, missing
 *   name: every error is "FILE:LINE:COL: SETTING: expected FORM, got VALUE",
 *   e.g. `plot.yaml:7:18: parking_lot.limits.max_queue_depth: expected an
 *   integer 0..1000000, got "lots"`. Functions return 0 or a negative
 *   enum cfg_err and fill a caller-provided buffer; lib/cfg never prints.
 */
#ifndef PLOT_CFG_H
#define PLOT_CFG_H

#include <stddef.h>
#include <stdint.h>

enum cfg_err {
	CFG_OK = 0,
	CFG_E_IO = 1,          /* the file cannot be opened or read */
	CFG_E_SYNTAX = 2,      /* not valid YAML, or a YAML feature we refuse (anchors, tags) */
	CFG_E_UNKNOWN = 3,     /* unknown key / setting name */
	CFG_E_TYPE = 4,        /* wrong type (a map where a scalar belongs, "lots" for an integer) */
	CFG_E_RANGE = 5,       /* out of range, or not one of the choices */
	CFG_E_DUPLICATE = 6,   /* a key twice in one map, or two models with one name */
	CFG_E_MISSING = 7,     /* a required key is absent (models[].name) */
	CFG_E_REF = 8,         /* default_model names no model; no models at all */
	CFG_E_READONLY = 9,    /* runtime set of a setting that is not runtime-changeable */
	CFG_E_NOMEM = 10,
	CFG_E_TOO_LARGE = 11,  /* file over CFG_MAX_FILE, too many models, too deep */
};
const char *cfg_err_name(int err); /* "UNKNOWN", ...; err may be negated */

#define CFG_MAX_FILE (1u << 20)   /* bytes of plot.yaml */
#define CFG_MAX_MODELS 256
#define CFG_MAX_LIST 1024         /* entries of allow_users / allow_groups */
#define CFG_MAX_STR 4096          /* bytes of any string value */
#define CFG_NULL UINT64_MAX       /* a nullable integer that is null (= unlimited) */

enum cfg_type {
	CFG_T_UINT = 0,    /* uint64_t; nullable ones store CFG_NULL for null */
	CFG_T_DOUBLE = 1,  /* double */
	CFG_T_BOOL = 2,    /* int 0/1 */
	CFG_T_STRING = 3,  /* char * (malloc'd; NULL = null) */
	CFG_T_ENUM = 4,    /* int: index into choices */
	CFG_T_STRLIST = 5, /* struct cfg_strlist */
	CFG_T_DEVICE = 6,  /* char[CFG_DEVICE_MAX]: "cpu", "cuda" or "cuda:N", N 0..63 */
};
#define CFG_DEVICE_MAX 16  /* bytes of a device name, NUL included */

enum cfg_scope {
	CFG_SCOPE_ROOT = 0,
	CFG_SCOPE_LOT = 1,
	CFG_SCOPE_MODEL = 2,
	CFG_SCOPE_PARAMS = 3,
};

enum {
	CFG_F_NULLABLE = 1u << 0, /* null is allowed */
	CFG_F_RUNTIME = 1u << 1,  /* changeable at runtime (limits set, SIGHUP) */
	CFG_F_REQUIRED = 1u << 2, /* must be present (models[].name) */
};

struct cfg_setting {
	const char *name;          /* path within the scope: "limits.max_units" */
	const char *key;           /* short name for plot limits ("max_units"); NULL if none */
	enum cfg_scope scope;
	enum cfg_type type;
	unsigned flags;            /* CFG_F_* */
	double min, max;           /* UINT / DOUBLE bounds, inclusive */
	const char *def;           /* default as YAML text: "1000", "null", "memory", "[]" */
	const char *const *choices;/* ENUM: NULL-terminated names */
	size_t offset;             /* offsetof in the scope's struct */
	int pool_limit;            /* enum pool_limit it drives at runtime, or -1 */
	uint64_t pool_scale;       /* value * pool_scale = the pool's unit (1e9: secs -> ns) */
	const char *doc;           /* one or two sentences for the man page */
};

size_t cfg_setting_count(void);
const struct cfg_setting *cfg_setting_at(size_t i);
/* Full dotted name: "parking_lot.limits.max_units", "models[].params.tokens_per_sec".
 * Lot settings are listed once, as parking_lot.*; they also apply under
 * models[].parking_lot. Returns snprintf's count. */
int cfg_setting_fullname(const struct cfg_setting *s, char *buf, size_t len);
/* Find by full name, by scope-relative name ("limits.max_units") or, for lot
 * settings, by short key ("max_units", "max_running"). NULL if none. */
const struct cfg_setting *cfg_setting_find(const char *name);
/* The name an enum setting's value v stands for ("parking_lot.queue.backend",
 * 0 -> "memory"); NULL for an unknown setting or value. */
const char *cfg_choice_name(const char *setting, int v);
/* "an integer 0..1000000", "null or an integer 1..1000000000000",
 * "one of synthetic|llm", "a list of strings": the expected form for messages. */
int cfg_setting_expect(const struct cfg_setting *s, char *buf, size_t len);

struct cfg_strlist {
	char **v;
	size_t n;
	int *line, *col;           /* where entry i was in the file; 0 = unknown */
};

enum cfg_backend { CFG_BACKEND_MEMORY = 0, CFG_BACKEND_SQLITE = 1, CFG_BACKEND_POSTGRES = 2 };
enum cfg_sync { CFG_SYNC_NORMAL = 0, CFG_SYNC_FULL = 1 };
enum cfg_restart { CFG_RESTART_REQUEUE = 0, CFG_RESTART_FAIL = 1 };
enum cfg_executor { CFG_EXEC_SYNTHETIC = 0, CFG_EXEC_LLM = 1 };
enum cfg_log_level { CFG_LOG_ERROR = 0, CFG_LOG_WARN = 1, CFG_LOG_INFO = 2, CFG_LOG_DEBUG = 3 };

/* A parking lot (one pool's settings). */
struct cfg_lot {
	uint64_t max_running;      /* pool.max_running: tasks at once; CFG_NULL = as
	                            * many as the executor can */
	uint64_t threads;          /* pool.threads: executor compute threads; 0 = its default */
	uint64_t max_units;        /* limits.max_units; CFG_NULL = unlimited */
	uint64_t max_queue_depth;  /* limits.max_queue_depth; 0..1000000 */
	uint64_t timeout_secs;     /* limits.timeout_secs; 0 = none */
	int queue_backend;         /* queue.backend; enum cfg_backend */
	int mailbox_backend;       /* mailbox.backend */
	uint64_t retention_secs;   /* mailbox.retention_secs */
	uint64_t retention_tasks;  /* mailbox.retention_tasks; 0 = no bound */
	uint64_t retention_bytes;  /* mailbox.retention_bytes; 0 = no bound */
	uint64_t max_units_per_user; /* limits.max_units_per_user; CFG_NULL = off */
	uint64_t max_units_owner;  /* limits.max_units_owner; CFG_NULL = off */
	uint64_t priority_aging_secs; /* limits.priority_aging_secs; 0 = off */
	/* generate.*: what a request that does not say gets (the daemon fills
	 * them in before the executor sees the request) */
	uint64_t gen_max_tokens;   /* CFG_NULL = until the end of the text or context */
	double gen_temperature, gen_top_p, gen_min_p;
	uint64_t gen_top_k;
};

/* Executor parameters. Each applies to the executor named in its doc. */
struct cfg_params {
	double tokens_per_sec;     /* synthetic: pace; 0 = as fast as possible */
	uint64_t context_length;   /* llm: CFG_NULL = the model's own */
	char device[CFG_DEVICE_MAX]; /* llm: "cpu", "cuda" or "cuda:N" (N 0..63); a fixed
	                            * buffer, so the struct copies by value */
	uint64_t kvcache_mem_mb;   /* llm: KV budget */
	uint64_t block_size;       /* llm: tokens per KV block (the unit) */
	uint64_t max_num_seqs;     /* llm: running sequences */
	uint64_t max_batch_tokens; /* llm: tokens per forward pass */
	int kv_type;               /* llm: KV-cache element type; 0 = f16, 1 = f32
	                            * (enum llm_kv_type's values) */
};

struct cfg_model {
	char *name;
	int executor;              /* enum cfg_executor */
	char *path;                /* model file; NULL for synthetic */
	uint64_t idle_unload_secs; /* unload after this long without tasks; CFG_NULL: never */
	struct cfg_params params;
	struct cfg_lot lot;        /* effective: parking_lot defaults + overrides */
	struct cfg_lot over;       /* the override values themselves */
	uint32_t over_mask;        /* bit i set: lot setting i (in table order) overridden */
	int line;                  /* where the model is declared, for messages */
};

struct cfg_daemon {
	char *socket;              /* NULL = resolve (see client_socket_path) */
	int log_level;             /* enum cfg_log_level */
	char *log_file;            /* NULL = stderr */
	char *pid_file;            /* NULL = none */
	struct cfg_strlist allow_users;
	struct cfg_strlist allow_groups;
	uint64_t frame_timeout_secs; /* a partial frame older than this closes its connection; 0 = none */
	uint64_t max_client_output; /* pending output of one connection, bytes */
	uint64_t max_input_mb;     /* buffered request bytes of all connections together, MiB */
	uint64_t max_output_mb;    /* pending reply/stream bytes of all connections, MiB */
	char *http;                /* "HOST:PORT" of the HTTP front; NULL = off */
	char *http_token;          /* bearer token; NULL = none */
	char *http_token_file;     /* file holding it; NULL = none */
	uint64_t http_max_body, http_max_header, http_max_connections, http_idle_secs,
		http_max_output;
};

/* The durable store (store.*): one database for the whole daemon. */
struct cfg_store {
	char *path;                /* NULL = $XDG_STATE_HOME/plot/plot.db */
	int synchronous;           /* enum cfg_sync */
	int restart_policy;        /* enum cfg_restart: tasks running at a restart */
};

/* The shared queue (postgres.*): one database, many daemons. */
struct cfg_postgres {
	char *url;                 /* NULL = the PG* environment */
	char *name;                /* NULL = HOST:PID */
	uint64_t lease_ms;         /* a claim's lease; the heartbeat runs every third */
};

struct cfg {
	struct cfg_lot lot;        /* parking_lot: defaults for every model */
	struct cfg_daemon daemon;
	struct cfg_store store;
	struct cfg_postgres postgres;
	char *default_model;       /* after load: never NULL (first model when null) */
	struct cfg_model *models;
	size_t n_models;
	char *source;              /* file path, or "<built-in>" */
};

/* The built-in default config without the default model: one synthetic
 * model "echo" at 20 tokens/s, the default. */
const char *cfg_builtin_yaml(void);

/* The default model's file, looked for in $XDG_DATA_HOME/plot/models
 * ($HOME/.local/share/plot/models when unset); `make models` installs it. */
#define CFG_DEFAULT_MODEL_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"
/* The path of that file (whether or not it exists). Returns 0, or
 * -CFG_E_TOO_LARGE (out is "") when it does not fit or neither variable is
 * set. */
int cfg_builtin_model_path(char *out, size_t outlen);
/* The built-in default config when the default model is installed at
 * model_path: "smollm2" (executor llm, device cpu, kvcache_mem_mb 256,
 * block_size 16, max_num_seqs 64, max_batch_tokens 512, context_length null,
 * max_units null = every KV block) as default_model, and "echo" beside it.
 * malloc'd; NULL when out of memory or model_path is absurdly long. */
char *cfg_builtin_yaml_llm(const char *model_path);

/* Where the config comes from. */
enum cfg_source {
	CFG_SRC_OPTION = 0,        /* --config */
	CFG_SRC_ENV = 1,           /* $PLOT_CONFIG */
	CFG_SRC_XDG = 2,           /* $XDG_CONFIG_HOME/plot/plot.yaml ($HOME/.config when unset) */
	CFG_SRC_BUILTIN = 3,
};
/* Resolve the location: opt_path (--config) if non-NULL, then $PLOT_CONFIG
 * if set and non-empty, then the XDG file if it exists, else built-in (out
 * is then ""). The option and the variable are taken as given even if the
 * file is missing, so the loader reports it. Returns 0, or -CFG_E_TOO_LARGE
 * if the option's or the variable's path does not fit in outlen (an XDG path
 * that does not fit is treated as absent). */
int cfg_locate(const char *opt_path, char *out, size_t outlen, enum cfg_source *src);

/* Parse YAML text. name is used in messages ("plot.yaml"). Every error is
 * "name:line:col: ...". On success *out is a complete config with defaults
 * filled, overrides resolved, default_model checked. */
int cfg_load_string(const char *text, size_t len, const char *name,
		    struct cfg **out, char *err, size_t errlen);
int cfg_load_file(const char *path, struct cfg **out, char *err, size_t errlen);
/* cfg_locate + load. When nothing is found: the built-in text, with the
 * default model if its file (cfg_builtin_model_path) is readable, else
 * cfg_builtin_yaml(). */
int cfg_load(const char *opt_path, struct cfg **out, char *err, size_t errlen);
void cfg_free(struct cfg *c);

const struct cfg_model *cfg_model_find(const struct cfg *c, const char *name);

/* The effective config as YAML (malloc'd, NUL-terminated), loadable again to
 * the same effective config. Per-model parking_lot lists only overrides. */
int cfg_dump(const struct cfg *c, char **out, size_t *len);

/* ---- runtime limits ---------------------------------------------------- */

/* Format a lot setting's value as YAML text ("8", "null"). key as for
 * cfg_setting_find. Returns 0, -CFG_E_UNKNOWN (err says which keys exist). */
int cfg_lot_get(const struct cfg_lot *lot, const char *key, char *buf, size_t len,
		char *err, size_t errlen);
/* Validate and set a runtime-changeable lot setting from text. Returns 0,
 * -CFG_E_UNKNOWN, -CFG_E_READONLY, -CFG_E_TYPE, -CFG_E_RANGE; err is like
 * "max_queue_depth: expected an integer 0..1000000, got \"lots\"". On error
 * lot is unchanged. */
int cfg_lot_set(struct cfg_lot *lot, const char *key, const char *value,
		char *err, size_t errlen);
/* The pool limit a lot setting drives and its value in the pool's unit
 * (secs -> ns). Returns 0, or -1 if the setting drives no pool limit. */
int cfg_lot_pool_limit(const struct cfg_lot *lot, const struct cfg_setting *s,
		       int *which, uint64_t *value);

/* Fill a struct pool_config's limit fields (name, max_units,
 * max_queue_depth, max_running, threads, timeout_ns, retention_ns) from a lot. The rest of
 * *pc is left alone; name is stored as given (not copied). */
struct pool_config;
void cfg_lot_pool_config(const struct cfg_lot *lot, const char *name,
			 struct pool_config *pc);

/* ---- the man page ------------------------------------------------------ */

/* man/plot.yaml.5 as roff (malloc'd), generated from the table. A unit test
 * checks that the committed page equals this text. */
int cfg_man_page(char **out);

/* Every params setting of m given a value (other than its default) that
 * only another executor reads: fn(ctx, "models[].params.NAME", "llm").
 * Returns how many, or -CFG_E_NOMEM. */
typedef void (*cfg_unused_fn)(void *ctx, const char *setting, const char *executor);
int cfg_params_unused(const struct cfg_model *m, cfg_unused_fn fn, void *ctx);

#endif
