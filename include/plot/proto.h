/*
 * proto.h — the wire protocol between plot (cmd/) and plotd (daemon/).
 *
 * FRAMING
 *   A connection is a Unix stream socket carrying frames in both directions.
 *   A frame is a 4-byte big-endian length N followed by N bytes holding
 *   exactly one msgpack map. N is bounded by proto_limits.max_frame (default
 *   PROTO_MAX_FRAME, 1 MiB; a client reading replies uses
 *   PROTO_MAX_FRAME_CLIENT because a result may carry a whole task output).
 *   Every string, bin, array and map inside is bounded too, and nesting is
 *   bounded by max_depth. Decoding never trusts a length: a frame is walked
 *   and checked against its own size and the limits before anything is
 *   allocated, and a bad one yields an error naming the byte offset or field.
 *
 * MESSAGES
 *   Every map has "t" (the message type, a short string: "hello", "submit",
 *   "ok", "err", "chunk", "end", ...) and "id" (the request id, chosen by the
 *   client, echoed in the reply and in every stream event of a subscribe).
 *   Replies also carry "op", the request type they answer; the body of an
 *   "ok" reply depends on op. All other keys are flat in the same map; each
 *   is documented with its struct below and in man/plot-protocol.7. Keys a
 *   receiver does not know are ignored (so a field can be added without a
 *   version bump); a known key with the wrong type or out of range, a
 *   required key missing, a string with an embedded NUL, or any key twice
 *   in one map is -PROTO_E_INVALID naming the field. Validation is the
 *   schema table's (lib/proto/proto-codec.c): it runs before anything acts
 *   on a request. Arrays are sent even when empty.
 *
 *   The first message on a connection is hello (carrying PROTO_VERSION); the
 *   server answers ok (its version) or err VERSION naming both versions.
 *
 * MEMORY
 *   A struct proto_msg built by a caller points at the caller's memory
 *   (strings need not outlive proto_encode). A decoded message owns all its
 *   strings and arrays in one arena released by proto_msg_clear(). Decoded
 *   strings are NUL-terminated; bin fields (output bytes) are not.
 *
 * ERRORS
 *   Functions return 0 (or a count) on success and a negative enum
 *   proto_code on failure, filling a caller-provided err buffer. lib/proto
 *   never prints.
 */
#ifndef PLOT_PROTO_H
#define PLOT_PROTO_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define PROTO_VERSION 1

/* Default bounds. See struct proto_limits. */
#define PROTO_MAX_FRAME (1u << 20)               /* 1 MiB: requests, most replies */
#define PROTO_MAX_FRAME_CLIENT (80u << 20)       /* replies may carry a 64 MiB output */
#define PROTO_MAX_FRAME_HARD (256u << 20)        /* no limit may be set above this */
#define PROTO_MAX_ARRAY 4096u                    /* elements of any one array */
#define PROTO_MAX_MAP 64u                        /* pairs of any one map */
#define PROTO_MAX_DEPTH 6u                       /* nesting of maps/arrays */

/* Wire error codes. The names (proto_code_name) are what travels in an "err"
 * reply's "code" and are stable; the numbers are this library's return
 * values (negated). Codes marked local never travel on the wire. */
enum proto_code {
	PROTO_OK = 0,
	PROTO_E_QUEUE_FULL = 1,  /* the model's queue is at max_queue_depth */
	PROTO_E_CAPACITY = 2,    /* cost > max_units: never queued */
	PROTO_E_NOT_FOUND = 3,   /* no such task (or pruned), model, or setting */
	PROTO_E_PERMISSION = 4,  /* the peer uid may not do this */
	PROTO_E_INVALID = 5,     /* a well-formed request with a bad field */
	PROTO_E_SHUTDOWN = 6,    /* the daemon is draining or shutting down */
	PROTO_E_VERSION = 7,     /* protocol version mismatch */
	PROTO_E_TOO_LARGE = 8,   /* frame / string / array / map over its bound */
	PROTO_E_CONTEXT = 9,     /* prompt + max_tokens exceed the model's context */
	PROTO_E_INTERNAL = 10,   /* a bug or resource failure in the daemon */
	PROTO_E_MALFORMED = 11,  /* not a msgpack map / truncated / bad framing */
	PROTO_E_TIMEOUT = 12,    /* a wait gave up (also: task expired/timed out) */
	PROTO_E_STATE = 13,      /* not valid in the task's state (cancel a done task) */
	PROTO_E_CONFIG = 14,     /* bad configuration (reload, limits set) */
	PROTO_E_NOMEM = 15,      /* allocation failed */
	PROTO_E_CANCELLED = 16,  /* the task was cancelled */
	/* local only */
	PROTO_E_IO = 17,         /* read/write on the socket failed */
	PROTO_E_EOF = 18,        /* the peer closed the connection */
	PROTO_E_AGAIN = 19,      /* non-blocking: no complete frame yet */
	PROTO_E_INTR = 20,       /* a blocking call was interrupted by a signal */
	PROTO_E_UNREACHABLE = 21,/* no daemon listens on the socket path */
	PROTO_E_STORE = 22,      /* the durable store cannot take the task (disk full,
	                          * read-only, ...): not accepted; reads still work */
};
#define PROTO_CODE_COUNT 23
const char *proto_code_name(int code);      /* "QUEUE_FULL"; code may be negated */
int proto_code_parse(const char *name);     /* enum value, or -1 if unknown */
/* The one table from enum pool_err (positive or negated) to proto codes;
 * POOL_OK -> PROTO_OK, anything unknown -> PROTO_E_INTERNAL. */
int proto_code_from_pool(int pool_err);

/* Per-connection bounds. Zero fields mean the default. */
struct proto_limits {
	uint32_t max_frame;   /* bytes after the length prefix; default PROTO_MAX_FRAME */
	uint32_t max_str;     /* bytes of any str/bin; default = max_frame */
	uint32_t max_array;   /* default PROTO_MAX_ARRAY */
	uint32_t max_map;     /* default PROTO_MAX_MAP */
	uint32_t max_depth;   /* default PROTO_MAX_DEPTH */
};
/* Fill zero fields with defaults and clamp max_frame to PROTO_MAX_FRAME_HARD. */
void proto_limits_resolve(struct proto_limits *l);

/* ---- messages ------------------------------------------------------------- */

enum proto_type {
	PROTO_T_NONE = 0,
	/* client -> server requests (each answered by exactly one ok/err) */
	PROTO_T_HELLO = 1,      /* u.hello                -> ok u.hello          */
	PROTO_T_SUBMIT = 2,     /* u.submit               -> ok u.submitted      */
	PROTO_T_STATUS = 3,     /* u.task_ref             -> ok u.task           */
	PROTO_T_RESULT = 4,     /* u.task_ref (+wait)     -> ok u.result         */
	PROTO_T_SUBSCRIBE = 5,  /* u.task_ref (+follow)   -> ok u.task, then chunk* end */
	PROTO_T_CANCEL = 6,     /* u.cancel               -> ok u.cancelled      */
	PROTO_T_STATS = 7,      /* u.filter (model)       -> ok u.stats          */
	PROTO_T_QUEUE = 8,      /* u.filter (model,state) -> ok u.queue          */
	PROTO_T_LIMITS_GET = 9, /* u.filter (model)       -> ok u.limits         */
	PROTO_T_LIMITS_SET = 10,/* u.limits_set           -> ok u.limits (new values) */
	PROTO_T_MODELS = 11,    /* u.models_req (load/unload, optional) -> ok u.models */
	PROTO_T_CONFIG = 12,    /* (no fields)            -> ok u.config         */
	PROTO_T_PING = 13,      /* (no fields)            -> ok (no fields)      */
	PROTO_T_DRAIN = 14,     /* u.stop: finish queued+running work, then exit -> ok */
	PROTO_T_SHUTDOWN = 15,  /* u.stop: cancel everything, then exit          -> ok */
	/* server -> client */
	PROTO_T_OK = 16,        /* success reply; op says which body is in u */
	PROTO_T_ERR = 17,       /* error reply: u.error */
	PROTO_T_CHUNK = 18,     /* stream event of a subscribe: u.chunk */
	PROTO_T_END = 19,       /* last stream event of a subscribe: u.end */
};
#define PROTO_TYPE_COUNT 20
const char *proto_type_name(int type);      /* wire name: "submit", "limits_set", "ok" */
int proto_type_parse(const char *name);     /* enum value, or -1 */

/* hello request: version + agent. ok reply: the server's version + agent and
 * pid. Keys: v, agent, pid. */
struct proto_hello {
	uint32_t version;      /* PROTO_VERSION of the sender */
	const char *agent;     /* "plot 0.1.0", "plotd 0.1.0"; may be NULL */
	uint32_t pid;          /* server pid in the reply; 0 in the request */
};

struct proto_chat_msg {
	const char *role;      /* "system" | "user" | "assistant" (key: role) */
	const char *content;   /* key: content */
};

/* Presence bits for optional submit fields (proto_submit.has). */
enum {
	PROTO_HAS_MAX_TOKENS = 1u << 0,
	PROTO_HAS_TEMPERATURE = 1u << 1,
	PROTO_HAS_TOP_K = 1u << 2,
	PROTO_HAS_TOP_P = 1u << 3,
	PROTO_HAS_MIN_P = 1u << 4,
	PROTO_HAS_SEED = 1u << 5,
	PROTO_HAS_DEADLINE = 1u << 6,
	PROTO_HAS_COST = 1u << 7,
	PROTO_HAS_REPETITION_PENALTY = 1u << 8,
	PROTO_HAS_FREQUENCY_PENALTY = 1u << 9,
	PROTO_HAS_PRESENCE_PENALTY = 1u << 10,
	PROTO_HAS_PENALTY_LAST_N = 1u << 11,
};

/* submit. Exactly one of prompt / messages should be given (the daemon
 * decides; the codec only bounds them). Keys in parentheses. */
struct proto_submit {
	const char *model;            /* (model) NULL = the default model */
	const char *prompt;           /* (prompt) */
	const struct proto_chat_msg *messages; /* (msgs) array of {role,content} */
	uint32_t n_messages;
	int priority;                 /* (prio) enum pool_prio; default normal */
	uint32_t has;                 /* PROTO_HAS_* bits: which below are set */
	uint32_t max_tokens;          /* (max_tokens) */
	double temperature;           /* (temp) */
	uint32_t top_k;               /* (top_k) */
	double top_p;                 /* (top_p) */
	double min_p;                 /* (min_p) */
	uint64_t seed;                /* (seed) */
	double repetition_penalty;    /* (repetition_penalty) */
	double frequency_penalty;     /* (frequency_penalty) */
	double presence_penalty;      /* (presence_penalty) */
	uint32_t penalty_last_n;      /* (penalty_last_n) */
	double deadline_secs;         /* (deadline) relative to arrival, > 0 */
	uint64_t cost;                /* (cost) units; overrides the computed cost */
	const char *const *stop;      /* (stop) array of strings */
	uint32_t n_stop;
	int detach;                   /* (detach) bool: survive the client's disconnect */
	int raw;                      /* (raw) bool: an llm model takes the prompt as
	                               * plain text; default: one user turn through
	                               * the chat template */
	int ignore_eos;               /* (ignore_eos) bool: llm models generate past
	                               * end-of-generation tokens (benchmarks) */
	const char *key;              /* (key) idempotency key: a second submit with the
	                               * same key from the same user gets the first
	                               * task's id instead of a new task */
};

/* ok reply to submit. Keys: task, model. */
struct proto_submitted {
	uint64_t task;                /* the new task id */
	const char *model;            /* the model it went to (default resolved) */
};

/* status / result / subscribe request. Keys: task, wait, follow. */
struct proto_task_ref {
	uint64_t task;
	int wait;        /* result: reply only once the task is terminal */
	int follow;      /* subscribe: 1 = replay then live until end; 0 = replay
	                  * what exists, then end (with the current state) */
};

/* One task as shown by status, queue, and the first reply of subscribe.
 * Times are seconds relative to the server's now, so no clocks need to
 * agree. Keys in parentheses. */
struct proto_task_info {
	uint64_t id;                  /* (task) */
	const char *model;            /* (model) */
	int priority;                 /* (prio) enum pool_prio */
	int state;                    /* (state) enum pool_state */
	uint64_t cost;                /* (cost) */
	uint64_t position;            /* (pos) 1-based queue position; 0 = not queued */
	double age_secs;              /* (age) since submit */
	double wait_secs;             /* (wait) queued time (so far, if still queued) */
	double run_secs;              /* (run) running time (so far, if running) */
	uint32_t has;                 /* PROTO_HAS_DEADLINE when dl is set */
	double deadline_in_secs;      /* (dl) time left; negative once past */
	uint64_t output_bytes;        /* (out) */
	uint64_t chunks;              /* (chunks) */
	uint32_t owner_uid;           /* (uid) */
	const char *error;            /* (error) why it failed/ended; NULL = none */
	const char *label;            /* (label) prompt head; NULL = none */
	const char *finish;           /* (finish) why it stopped: pool_finish_name
	                               * ("eos", "max_tokens", "stop", "cancel",
	                               * "deadline", "error"); NULL until it ended */
	uint64_t tokens;              /* (tokens) tokens generated */
	uint64_t prompt_tokens;       /* (ptokens) prompt tokens; 0 = not counted */
};

/* ok reply to result. Keys: task, state, data (bin), error. */
struct proto_result {
	uint64_t task;
	int state;                    /* enum pool_state; may be non-terminal without wait */
	const void *data;             /* output bytes so far */
	size_t len;
	const char *error;
};

/* cancel request. Keys: tasks (array of uint), all (bool), model. With all,
 * every task of the caller (or of model, when given) that is queued or
 * running is cancelled; the owner of the daemon cancels everyone's. */
struct proto_cancel {
	const uint64_t *tasks;
	uint32_t n_tasks;
	int all;
	const char *model;
};

/* ok reply to cancel: the tasks actually cancelled. Key: tasks. */
struct proto_cancelled {
	const uint64_t *tasks;
	uint32_t n_tasks;
};

/* stats / queue / limits_get request. Keys: model, state. */
struct proto_filter {
	const char *model;            /* NULL = all models */
	int state;                    /* queue only: enum pool_state, -1 = any */
	/* queue only, optional (has: PROTO_HAS_F_*): */
	uint32_t has;
	int all;                      /* (all) bool: finished tasks too, newest first */
	uint64_t owner;               /* (owner) only this uid's tasks */
	double since_secs;            /* (since) only tasks submitted this recently */
	uint64_t limit;               /* (limit) at most this many (newest) */
};
enum {
	PROTO_HAS_F_OWNER = 1u << 0,
	PROTO_HAS_F_SINCE = 1u << 1,
	PROTO_HAS_F_LIMIT = 1u << 2,
};

/* One model's pool statistics (ok reply to stats). Keys are the field names,
 * except qprio (array of 4 in pool_prio order), wait_p50 / wait_p99 (ms).
 * max_units / max_queue_depth / max_running / running_limit of UINT64_MAX
 * travel as nil (unlimited). threads: the executor's compute threads as set
 * (0 = its default); max_running: the configured cap on tasks at once;
 * running_limit: what admission uses, min(max_running, what the executor
 * can run: 0 while an llm model loads). */
struct proto_model_stats {
	const char *name;
	uint64_t queued, running, used_units, max_units, max_queue_depth;
	uint64_t threads, max_running, running_limit;
	uint64_t submitted, completed, failed, cancelled, expired, timed_out, rejected;
	uint64_t rejected_queue_full, rejected_capacity;
	uint64_t queued_by_prio[4];
	double queue_wait_p50_ms, queue_wait_p99_ms;
	uint64_t mailbox;
	uint64_t timeout_secs, retention_secs;
	/* model_ready: 1 while the model serves (loaded), 0 loading or failed;
	 * prompt_tokens, generated_tokens: summed over ended tasks (counters);
	 * kv_bytes: memory of the KV cache (llm: its blocks, at most
	 * kvcache_mem_mb; 0 until sized), 0 = none */
	uint64_t model_ready, prompt_tokens, generated_tokens, kv_bytes;
	/* executors with an engine only (has_engine set; wire key llm, kept for
	 * compatibility): the engine's figures. Keys:
	 * prefill_tps, decode_tps (tokens/s over the last 10 s), batch
	 * (sequences in the last step), kv_used, kv_total (KV blocks),
	 * ttft_p50, ttft_p99, itl_p50, itl_p99 (ms, vLLM definitions). */
	int has_engine;
	double prefill_tps, decode_tps;
	uint64_t batch_size, kv_blocks_used, kv_blocks_total;
	double ttft_p50_ms, ttft_p99_ms, itl_p50_ms, itl_p99_ms;
	/* the summaries' _count and _sum over every sample since the pool
	 * (queue wait) or the model (TTFT, ITL) started. Keys: wait_n,
	 * wait_sum, ttft_n, ttft_sum, itl_n, itl_sum (seconds) */
	uint64_t queue_wait_count, ttft_count, itl_count;
	double queue_wait_sum_secs, ttft_sum_secs, itl_sum_secs;
	uint64_t mem_bytes;           /* (mem_bytes) weights + KV cache the model
	                               * holds, as plot models says; 0 = none */
	const char *device;           /* (device) where an engine model runs:
	                               * once loaded the device resolved ("cpu",
	                               * "cuda:0"), before that as configured
	                               * ("cuda"); NULL (nil) for other executors */
	/* a model on a device with memory of its own (a GPU), once loaded:
	 * (device_name) the product ("NVIDIA H200"), NULL (nil) otherwise;
	 * (device_total_bytes, device_free_bytes) the device's memory in all and
	 * free now for every process, 0 = not applicable */
	const char *device_name;
	uint64_t device_total_bytes, device_free_bytes;
};

/* The shared queue of one postgres model, as the database counts it (every
 * daemon's tasks). Keys: model, queued, running, queued_units, running_units. */
struct proto_shared_stats {
	const char *model;
	uint64_t queued, running, queued_units, running_units;
};

/* One daemon's share of the shared queue, from its last heartbeat. Keys:
 * name, units, running, holding (leases held now), seen_ms (since the
 * heartbeat, database clock). */
struct proto_daemon_share {
	const char *name;
	uint64_t units, running, holding, seen_ms;
};

/* ok reply to stats. Keys: models (array of maps), uptime, clients, rss;
 * with a postgres model (optional, absent otherwise): shared (array), daemons
 * (array). */
struct proto_stats {
	const struct proto_model_stats *models;
	uint32_t n_models;
	double uptime_secs;
	uint64_t clients;             /* open connections */
	uint64_t rss_bytes;           /* (rss) plotd's resident memory; 0 = unknown */
	const struct proto_shared_stats *shared; /* (shared) */
	uint32_t n_shared;
	const struct proto_daemon_share *daemons; /* (daemons) */
	uint32_t n_daemons;
};

/* ok reply to queue: tasks in queue order (running first). Key: tasks. */
struct proto_queue {
	const struct proto_task_info *tasks;
	uint32_t n_tasks;
};

/* A setting as text: key is the short name of a cfg setting ("max_units"),
 * value its YAML text ("8", "null"). Keys: k, v. Values are parsed and
 * formatted by lib/cfg's table, so the protocol need not know the types. */
struct proto_kv {
	const char *key;
	const char *value;
};

/* One model's limits. Keys: name, kv. */
struct proto_model_limits {
	const char *name;
	const struct proto_kv *kv;
	uint32_t n_kv;
};

/* ok reply to limits_get and limits_set. Key: models. */
struct proto_limits_reply {
	const struct proto_model_limits *models;
	uint32_t n_models;
};

/* limits_set request. Keys: model (NULL = every model), kv. */
struct proto_limits_set {
	const char *model;
	const struct proto_kv *kv;
	uint32_t n_kv;
};

/* One configured model (ok reply to models). Keys: name, executor, path,
 * default (bool), state, progress (0..1 while loading), error (why it
 * failed), ctx (context length, 0 = unknown or none), kv_blocks (KV blocks
 * the budget holds, 0 = not sized or not an llm model). */
struct proto_model_info {
	const char *name;
	const char *executor;         /* "synthetic" | "llm" */
	const char *path;             /* NULL for synthetic */
	int is_default;
	const char *state;            /* "ready", "loading", "failed" */
	double progress;              /* 0..1; 1 once ready */
	const char *error;            /* NULL unless failed */
	uint64_t context_length, kv_blocks;
	double idle_in_secs;          /* (idle_in) seconds until it unloads for being
	                               * idle; 0 = it does not (busy, or no
	                               * idle_unload_secs, or not loaded) */
	int adhoc;                    /* (adhoc) bool: loaded by path, not configured */
	/* the model's generate.* settings: what a request that does not say
	 * gets (gen_max_tokens 0 = until the end of the text or context) */
	uint64_t gen_max_tokens, gen_top_k;            /* (gen_max_tokens, gen_top_k) */
	double gen_temperature, gen_top_p, gen_min_p;  /* (gen_temp, gen_top_p, gen_min_p) */
	uint64_t mem_bytes;           /* (mem) weights + KV cache the model holds;
	                               * 0 = none (synthetic) or not loaded yet */
	const char *device;           /* (device) where it runs ("cpu", "cuda:0");
	                               * NULL = not applicable or not loaded */
	/* (device_name, device_total_bytes, device_free_bytes): as in
	 * proto_model_stats */
	const char *device_name;
	uint64_t device_total_bytes, device_free_bytes;
};

/* models request (every field optional). Keys: load, name, unload.
 * load: a GGUF file's absolute path, served as a new llm model named name
 * (or, when it names a model, that model loaded again); unload: a model to
 * unload. Only the daemon's own user (and root) may load or unload. */
struct proto_models_req {
	const char *load;
	const char *name;
	const char *unload;
};

struct proto_models {
	const struct proto_model_info *models; /* key: models */
	uint32_t n_models;
};

/* ok reply to config. Keys: yaml (the effective config, cfg_dump text),
 * source (the file it came from, or "<built-in>"). */
struct proto_config {
	const char *yaml;
	const char *source;
};

/* drain / shutdown request. Key: timeout (seconds; 0 = the daemon's default). */
struct proto_stop {
	double timeout_secs;
};

/* err reply. Keys: code (proto_code_name string), msg. */
struct proto_error {
	int code;                     /* enum proto_code */
	const char *message;
};

/* chunk event. Keys: task, data (bin). */
struct proto_chunk {
	uint64_t task;
	const void *data;
	size_t len;
};

/* end event: the stream is over. Keys: task, state, error, finish,
 * tokens, ptokens, wait, run (as in proto_task_info). */
struct proto_end {
	uint64_t task;
	int state;                    /* enum pool_state (terminal when follow) */
	const char *error;            /* NULL = none */
	const char *finish;           /* why it stopped; NULL = not ended */
	uint64_t tokens, prompt_tokens;
	double wait_secs, run_secs;   /* queued and running time */
};

struct proto_msg {
	int type;                     /* enum proto_type (key: t) */
	uint64_t id;                  /* request id (key: id); 0 is allowed */
	int op;                       /* PROTO_T_OK / PROTO_T_ERR: the request type answered
	                               * (an ERR for an unreadable frame has op 0, no "op" key) */
	union {
		/* requests */
		struct proto_hello hello;        /* HELLO, and OK op=HELLO */
		struct proto_submit submit;      /* SUBMIT */
		struct proto_task_ref task_ref;  /* STATUS, RESULT, SUBSCRIBE */
		struct proto_cancel cancel;      /* CANCEL */
		struct proto_filter filter;      /* STATS, QUEUE, LIMITS_GET */
		struct proto_limits_set limits_set; /* LIMITS_SET */
		struct proto_stop stop;          /* DRAIN, SHUTDOWN */
		struct proto_models_req models_req; /* MODELS */
		/* OK bodies, by op */
		struct proto_submitted submitted;/* op SUBMIT */
		struct proto_task_info task;     /* op STATUS, op SUBSCRIBE */
		struct proto_result result;      /* op RESULT */
		struct proto_cancelled cancelled;/* op CANCEL */
		struct proto_stats stats;        /* op STATS */
		struct proto_queue queue;        /* op QUEUE */
		struct proto_limits_reply limits;/* op LIMITS_GET, LIMITS_SET */
		struct proto_models models;      /* op MODELS */
		struct proto_config config;      /* op CONFIG */
		/* (op PING, DRAIN, SHUTDOWN: no body) */
		/* other server messages */
		struct proto_error error;        /* ERR */
		struct proto_chunk chunk;        /* CHUNK */
		struct proto_end end;            /* END */
	} u;
	/* decoded: keys no schema row names, which are ignored (a newer
	 * peer's additions); the first one as "key" or "msgs[1].key" */
	uint32_t n_unknown;
	char unknown[64];
	void *arena_;                 /* decoded storage; private */
};

/* Zero m and set type, id and field defaults (priority normal, state -1). */
void proto_msg_init(struct proto_msg *m, int type, uint64_t id);
/* Shortcuts for the server: an ok reply to req (op and id copied) and an err
 * reply with a printf-style message (copied into m's arena). */
void proto_msg_ok(struct proto_msg *m, const struct proto_msg *req);
int proto_msg_err(struct proto_msg *m, const struct proto_msg *req, int code,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Free what decoding (or proto_msg_err) allocated; m is zeroed. */
void proto_msg_clear(struct proto_msg *m);

/* ---- byte buffer ----------------------------------------------------------- */

/* Growable buffer: output queues, encoded frames. len bytes of data are valid;
 * off bytes at the front have been consumed (written to the socket). */
struct proto_buf {
	char *data;
	size_t off, len, cap;
};
void proto_buf_init(struct proto_buf *b);
void proto_buf_free(struct proto_buf *b);
int proto_buf_append(struct proto_buf *b, const void *data, size_t len); /* 0 / -PROTO_E_NOMEM */
void proto_buf_consume(struct proto_buf *b, size_t n); /* drop n bytes at the front */
size_t proto_buf_pending(const struct proto_buf *b);   /* len - off */

/* ---- encode / decode ---------------------------------------------------- */

/* Append one complete frame (prefix + map) for m to out. Fails with
 * -PROTO_E_TOO_LARGE if the body exceeds max_frame (lim NULL = defaults),
 * -PROTO_E_INVALID for an unknown type/op, -PROTO_E_NOMEM. On failure out is
 * left as it was. */
int proto_encode(const struct proto_msg *m, const struct proto_limits *lim,
		 struct proto_buf *out, char *err, size_t errlen);

/* Decode one frame body (without the length prefix). On success returns 0 and
 * *out owns its storage (proto_msg_clear). Errors:
 *   -PROTO_E_TOO_LARGE  len, or a str/bin/array/map/depth over its bound
 *   -PROTO_E_MALFORMED  truncated/invalid msgpack, not a map, trailing bytes,
 *                       missing or unknown "t"
 *   -PROTO_E_INVALID    a known field with the wrong type or out of range;
 *                       out->type and out->id are set when they could be
 *                       read, so the server can answer that request
 * err names the offset or field ("offset 17: str length 5000000 exceeds
 * max_str 1048576", "field 'temp': expected a number, got str"). On error
 * *out holds no storage but type/id may be set. */
int proto_decode(const void *body, size_t len, const struct proto_limits *lim,
		 struct proto_msg *out, char *err, size_t errlen);

/* The wire keys of a message's body (besides t, id, op), nested objects'
 * keys included, for docs and tests: fills up to cap, returns how many
 * exist; 0 for an unknown type/op. */
size_t proto_msg_keys(int type, int op, const char **keys, size_t cap);

/* Schema introspection, for the protocol torture test and docs. Field i
 * (0-based) of the body of a message type/op, walked depth first: an
 * object array's element fields follow it, with parent naming the array.
 * Returns 1 and fills *fi, or 0 past the last field or for an unknown type. */
struct proto_field_info {
	const char *key;
	const char *parent;           /* NULL at top level */
	const char *kind;             /* "u64", "u64n", "u32", "int", "bool", "double",
	                               * "str", "bin", "code", "str[]", "u64[]", "u64[N]",
	                               * "obj[]" */
	int required;                 /* absent or nil is INVALID */
	int has_range;                /* the bounds below apply */
	int64_t min, max;             /* int, u32 */
	uint64_t umin, umax;          /* u64 */
	double dmin, dmax;            /* double */
};
int proto_schema_field(int type, int op, size_t i, struct proto_field_info *fi);

/* Check a hello's version. Returns 0, or -PROTO_E_VERSION with err naming
 * both ("protocol version mismatch: client speaks 2, plotd speaks 1"). */
int proto_check_version(uint32_t peer, char *err, size_t errlen);

/* ---- incremental frame reader (non-blocking sockets) ---------------------- */

/* Accumulates bytes and yields complete frames. Once it returns an error it
 * keeps returning it (the stream cannot be resynchronised): close the
 * connection after answering. */
struct proto_reader {
	struct proto_limits lim;
	struct proto_buf buf;
	int failed;                   /* the sticky error, negated code; 0 = fine */
	uint64_t offset;              /* stream offset of buf's first byte, for messages */
};
void proto_reader_init(struct proto_reader *r, const struct proto_limits *lim);
void proto_reader_free(struct proto_reader *r);
int proto_reader_feed(struct proto_reader *r, const void *data, size_t len);
/* Read what the fd has (one read() of up to 64 KiB, or up to the missing bytes
 * of a frame). Returns bytes read (> 0), -PROTO_E_EOF, -PROTO_E_AGAIN
 * (EAGAIN), -PROTO_E_INTR, or -PROTO_E_IO with err. */
int proto_reader_fill(struct proto_reader *r, int fd, char *err, size_t errlen);
/* Next complete frame: returns 1 and decodes it into *out, 0 when more bytes
 * are needed, or a negative code as proto_decode (plus -PROTO_E_TOO_LARGE as
 * soon as a length prefix exceeds max_frame, before the body arrives).
 * -PROTO_E_INVALID is not sticky: the frame was well formed, the next one
 * can be read. */
int proto_reader_next(struct proto_reader *r, struct proto_msg *out,
		      char *err, size_t errlen);

/* ---- blocking helpers (client side) --------------------------------------- */

/* Write all of data (retrying EINTR and short writes). 0 or -PROTO_E_IO/EOF. */
int proto_write_all(int fd, const void *data, size_t len, char *err, size_t errlen);
/* Encode m and write it. */
int proto_send(int fd, const struct proto_msg *m, const struct proto_limits *lim,
	       char *err, size_t errlen);
/* Read one message through r, waiting up to timeout_ms (-1 = forever). Returns
 * 0, -PROTO_E_TIMEOUT, -PROTO_E_INTR (a signal arrived; r keeps partial data,
 * call again), -PROTO_E_EOF, or a decode error. */
int proto_recv(int fd, struct proto_reader *r, struct proto_msg *out,
	       int timeout_ms, char *err, size_t errlen);

/* ---- stats figures (proto-stats.c) ---------------------------------------- */

/* The uint64 fields of proto_model_stats, in `plot stats --json` order. */
struct proto_stat_field {
	const char *key;       /* JSON key; Prometheus: plot_<key>[_total] */
	size_t off;
	int counter;           /* Prometheus counter (else gauge) */
	int nullable;          /* UINT64_MAX means unlimited */
	const char *help;
};
extern const struct proto_stat_field proto_stat_fields[];
extern const size_t proto_stat_n_fields;
uint64_t proto_stat_value(const struct proto_model_stats *m, const struct proto_stat_field *f);
/* Every key of a model's stats after its name, in `plot stats --json`
 * order, one call of visit each: proto_stat_fields (unlimited: null), the
 * device (device_name and the device's memory null off a GPU), the
 * queue wait, the llm figures (null for a model without an engine).
 * queued_by_priority is an object: OBJ, its keys, then END (key NULL).
 * plot stats --json and plotd's GET /v1/queues both render this walk. */
enum proto_stat_kind {
	PROTO_SV_NULL, PROTO_SV_U64, PROTO_SV_DBL, PROTO_SV_STR, PROTO_SV_OBJ, PROTO_SV_END,
};
struct proto_stat_val {
	const char *key;
	int kind;              /* enum proto_stat_kind: which of u, d, s holds */
	uint64_t u;
	double d;
	const char *s;
};
typedef void proto_stat_visit_fn(void *ctx, const struct proto_stat_val *v);
void proto_stats_model_walk(const struct proto_model_stats *m, proto_stat_visit_fn *visit,
			    void *ctx);
/* The Prometheus text of a stats reply to o. 0, or -1 on a write error. */
int proto_stats_prometheus(const struct proto_stats *s, FILE *o);

#endif
