/*
 * bench-serve.c — serving SmolLM2 through plotd: N concurrent streaming
 * clients for N = 1, 4, 16, 64 (make bench-serve).
 *
 * Each client is a thread with its own connection (lib/client, as `plot
 * run` uses it): submit (greedy, ignore_eos, max_tokens TOKENS, a fixed
 * ~128-token prompt), subscribe with follow, read chunks until the end
 * event. Times are taken on the client, so they include the socket, the
 * loop and the prep thread; vLLM's definitions:
 *   TTFT  submit sent -> first chunk;  ITL  gap between consecutive chunks
 *   of one stream;  E2E  submit sent -> end event;
 *   tps   aggregate output tokens / (last end - first submit) of the round.
 * While the largest round runs, one more client sends `stats` requests
 * back to back (10 ms apart) and records their round trips.
 *
 *   bench-serve PLOTD
 * Environment: BENCH_SERVE_MODEL (default the `make models` SmolLM2 path),
 * BENCH_SERVE_TOKENS (output tokens per stream, default 128: lower it for a
 * quick run), BENCH_SERVE_THREADS (compute threads, default the online
 * CPUs), BENCH_SERVE_NS (rounds, default "1,4,16,64"; at most 256),
 * BENCH_SERVE_DEVICE (the model's params.device, default cpu: the device
 * mode of tests/gpu/bench-serve.sh serves cuda), BENCH_SERVE_KV_BYTES (KV
 * bytes per token of the model, default SmolLM2's 46080, F16) and
 * BENCH_SERVE_PROMPT_TOKENS (a bound on the prompt's tokens, default 192;
 * a byte-level tokenizer needs ~700): they size kvcache_mem_mb so every
 * stream fits at once.
 *
 * Ends with one line (ttft/itl p50/p99 are the largest round's; a round
 * left out of BENCH_SERVE_NS reports 0):
 *   serve: n1_tps=X n4_tps=X n16_tps=X n64_tps=X n256_tps=X scale16=X
 *          ttft_p50_ms=X ttft_p99_ms=X itl_p50_ms=X itl_p99_ms=X
 *          stats_p99_ms=X max_n=N device=D
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "bench-daemon.h"
#include "plot/client.h"
#include "plot/pool.h"

#define MAX_N 256
/* ~128 SmolLM2 tokens of plain English */
static const char *prompt =
	"You are a careful assistant. Read the following notes about a small town and "
	"then continue the story in the same calm style. The town sits beside a slow "
	"river, and every morning the baker opens her shop before the sun rises. The "
	"children walk to school across an old stone bridge, and the teacher waits at "
	"the gate with a list of names. In the afternoon the market fills with farmers "
	"who bring apples, cheese and bread from the hills. At night the lamps along the "
	"river are lit one by one, and the town grows quiet. One autumn day a stranger "
	"arrived with a wooden box under his arm, and";

struct stream {
	pthread_t th;
	const char *sock;
	uint32_t tokens;
	double t0, t_first, t_end;
	double *gaps;        /* (tokens + 8): ITL samples */
	uint32_t n_gaps, chunks;
	char err[256];
};

struct round {
	uint32_t n;
	double tps, ttft_p50, ttft_p99, itl_p50, itl_p99, e2e_p50, e2e_p99;
};

static atomic_int stats_stop;
static pthread_barrier_t start_line;

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n) (sorts v). */
static double pct(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_dbl);
	size_t k = (size_t)ceil(q * (double)n);
	return v[k ? k - 1 : 0];
}

static uint64_t env_u64(const char *name, uint64_t def, uint64_t lo, uint64_t hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "bench-serve: %s must be %llu..%llu\n", name,
			(unsigned long long)lo, (unsigned long long)hi);
		exit(2);
	}
	return v;
}

/* ---- one streaming client ---------------------------------------------------- */

static int submit(struct client *c, struct stream *s, uint64_t *task)
{
	struct proto_msg m, r;
	proto_msg_init(&m, PROTO_T_SUBMIT, 0);
	m.u.submit.prompt = prompt;
	m.u.submit.has = PROTO_HAS_MAX_TOKENS | PROTO_HAS_TEMPERATURE;
	m.u.submit.max_tokens = s->tokens;
	m.u.submit.temperature = 0;
	m.u.submit.ignore_eos = 1;
	memset(&r, 0, sizeof r);
	int rc = client_call(c, &m, &r, 60000, s->err, sizeof s->err);
	if (rc == 0)
		*task = r.u.submitted.task;
	proto_msg_clear(&r);
	return rc;
}

/* One event of the subscription: 1 = more to come, 0 = ended, -1 = error. */
static int on_event(struct stream *s, const struct proto_msg *m, double *last)
{
	double now = bench_now();
	if (m->type == PROTO_T_ERR) {
		snprintf(s->err, sizeof s->err, "%s", m->u.error.message ? m->u.error.message : "err");
		return -1;
	}
	if (m->type == PROTO_T_END) {
		s->t_end = now;
		if (m->u.end.state != POOL_DONE)
			snprintf(s->err, sizeof s->err, "task ended in state %s",
				 pool_state_name(m->u.end.state));
		return m->u.end.state == POOL_DONE ? 0 : -1;
	}
	if (m->type != PROTO_T_CHUNK)
		return 1;
	if (s->chunks++ == 0)
		s->t_first = now;
	else if (s->n_gaps < s->tokens + 8)
		s->gaps[s->n_gaps++] = now - *last;
	*last = now;
	return 1;
}

static int follow(struct client *c, struct stream *s, uint64_t task)
{
	struct proto_msg m;
	double last = 0;
	proto_msg_init(&m, PROTO_T_SUBSCRIBE, 0);
	m.u.task_ref.task = task;
	m.u.task_ref.follow = 1;
	if (client_send(c, &m, s->err, sizeof s->err) < 0)
		return -1;
	for (int more = 1; more > 0;) {
		memset(&m, 0, sizeof m);
		if (client_recv(c, &m, 120000, s->err, sizeof s->err) < 0)
			return -1;
		more = on_event(s, &m, &last);
		proto_msg_clear(&m);
		if (more < 0)
			return -1;
	}
	return 0;
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct client *c = NULL;
	uint64_t task = 0;
	if (client_connect(s->sock, NULL, &c, s->err, sizeof s->err) < 0) {
		pthread_barrier_wait(&start_line);
		return NULL;
	}
	pthread_barrier_wait(&start_line);
	s->t0 = bench_now();
	if (submit(c, s, &task) == 0 && follow(c, s, task) == 0)
		s->err[0] = 0;
	else if (!s->err[0])
		snprintf(s->err, sizeof s->err, "failed");
	client_free(c);
	return NULL;
}

/* ---- stats round trips while streams run ------------------------------------- */

struct stats_probe {
	pthread_t th;
	const char *sock;
	double rtt[100000];
	size_t n;
};

static void *stats_main(void *arg)
{
	struct stats_probe *p = arg;
	struct client *c = NULL;
	char err[256];
	if (client_connect(p->sock, NULL, &c, err, sizeof err) < 0)
		bench_die(err);
	while (!atomic_load(&stats_stop) && p->n < sizeof p->rtt / sizeof p->rtt[0]) {
		struct proto_msg m, r;
		proto_msg_init(&m, PROTO_T_STATS, 0);
		memset(&r, 0, sizeof r);
		double t = bench_now();
		if (client_call(c, &m, &r, 10000, err, sizeof err) < 0)
			bench_die(err);
		p->rtt[p->n++] = bench_now() - t;
		proto_msg_clear(&r);
		struct timespec ts = { 0, 10 * 1000000L }; /* pacing, not waiting */
		nanosleep(&ts, NULL);
	}
	client_free(c);
	return NULL;
}

/* ---- a round of n streams ----------------------------------------------------- */

static void summarize(struct stream *s, uint32_t n, struct round *r)
{
	double *ttft = calloc(n, sizeof *ttft), *e2e = calloc(n, sizeof *e2e);
	size_t ng = 0;
	for (uint32_t i = 0; i < n; i++)
		ng += s[i].n_gaps;
	double *itl = calloc(ng + 1, sizeof *itl), t0 = s[0].t0, t1 = s[0].t_end;
	if (!ttft || !e2e || !itl)
		bench_die("out of memory");
	ng = 0;
	for (uint32_t i = 0; i < n; i++) {
		ttft[i] = s[i].t_first - s[i].t0;
		e2e[i] = s[i].t_end - s[i].t0;
		memcpy(itl + ng, s[i].gaps, s[i].n_gaps * sizeof *itl);
		ng += s[i].n_gaps;
		t0 = s[i].t0 < t0 ? s[i].t0 : t0;
		t1 = s[i].t_end > t1 ? s[i].t_end : t1;
	}
	*r = (struct round){ n, (double)n * s[0].tokens / (t1 - t0),
			     pct(ttft, n, 0.5) * 1e3, pct(ttft, n, 0.99) * 1e3,
			     pct(itl, ng, 0.5) * 1e3, pct(itl, ng, 0.99) * 1e3,
			     pct(e2e, n, 0.5) * 1e3, pct(e2e, n, 0.99) * 1e3 };
	free(ttft);
	free(e2e);
	free(itl);
}

/* Run n streams at once; print their figures unless quiet (the warm-up). */
static void run_round(const char *sock, uint32_t n, uint32_t tokens, int quiet,
		      struct round *r)
{
	struct stream *s = calloc(n, sizeof *s);
	if (!s || pthread_barrier_init(&start_line, NULL, n) != 0)
		bench_die("out of memory");
	for (uint32_t i = 0; i < n; i++) {
		s[i] = (struct stream){ .sock = sock, .tokens = tokens,
					.gaps = calloc(tokens + 8, sizeof(double)) };
		if (!s[i].gaps || pthread_create(&s[i].th, NULL, stream_main, &s[i]) != 0)
			bench_die("cannot start a client thread");
	}
	for (uint32_t i = 0; i < n; i++)
		pthread_join(s[i].th, NULL);
	for (uint32_t i = 0; i < n; i++)
		if (s[i].err[0]) {
			fprintf(stderr, "bench-serve: stream %u of %u: %s\n", i, n, s[i].err);
			bench_die("a stream failed");
		}
	summarize(s, n, r);
	for (uint32_t i = 0; i < n; i++)
		free(s[i].gaps);
	free(s);
	pthread_barrier_destroy(&start_line);
	if (quiet)
		return;
	printf("n=%-3u tps=%.1f ttft_p50_ms=%.1f ttft_p99_ms=%.1f itl_p50_ms=%.1f "
	       "itl_p99_ms=%.1f e2e_p50_ms=%.0f e2e_p99_ms=%.0f\n", n, r->tps, r->ttft_p50,
	       r->ttft_p99, r->itl_p50, r->itl_p99, r->e2e_p50, r->e2e_p99);
	fflush(stdout);
}

/* ---- setup --------------------------------------------------------------------- */

static const char *model_path(char *buf, size_t len)
{
	const char *p = getenv("BENCH_SERVE_MODEL"), *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	struct stat st;
	if (!p || !*p) {
		if (xdg && *xdg)
			snprintf(buf, len, "%s/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf", xdg);
		else
			snprintf(buf, len, "%s/.local/share/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf",
				 home ? home : "");
		p = buf;
	}
	if (stat(p, &st) != 0) {
		fprintf(stderr, "bench-serve: no model at %s: run make models\n", p);
		exit(1);
	}
	return p;
}

/* Rounds from BENCH_SERVE_NS ("1,4,16,64"). */
static size_t parse_ns(uint32_t *ns, size_t cap)
{
	const char *s = getenv("BENCH_SERVE_NS");
	size_t k = 0;
	if (!s || !*s)
		s = "1,4,16,64";
	for (char *end; *s && k < cap; s = *end ? end + 1 : end) {
		unsigned long v = strtoul(s, &end, 10);
		if (end == s || v < 1 || v > MAX_N || (*end && *end != ',')) {
			fprintf(stderr, "bench-serve: BENCH_SERVE_NS: want 1..%d, comma-separated\n",
				MAX_N);
			exit(2);
		}
		ns[k++] = (uint32_t)v;
	}
	return k;
}

static double tps_of(const struct round *r, size_t n, uint32_t want)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].n == want)
			return r[i].tps;
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096], config[8192];
	uint32_t ns[16], max_n = 0;
	struct round r[16];
	static struct stats_probe probe;
	struct bench_daemon bd;

	if (argc != 2) {
		fprintf(stderr, "usage: bench-serve PLOTD\n");
		return 2;
	}
	uint32_t tokens = (uint32_t)env_u64("BENCH_SERVE_TOKENS", 128, 1, 4096);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t threads = (uint32_t)env_u64("BENCH_SERVE_THREADS", cpus > 0 ? (uint64_t)cpus : 1,
					     1, 512);
	size_t nr = parse_ns(ns, 16);
	for (size_t i = 0; i < nr; i++)
		max_n = ns[i] > max_n ? ns[i] : max_n;
	/* every stream's prompt + output fits at once */
	uint64_t kv_tok = env_u64("BENCH_SERVE_KV_BYTES", 46080, 1, 1 << 24);
	const char *dev = getenv("BENCH_SERVE_DEVICE");
	dev = dev && *dev ? dev : "cpu";
	uint64_t ptok = env_u64("BENCH_SERVE_PROMPT_TOKENS", 192, 1, 65536);
	uint64_t kv_mb = (uint64_t)max_n * (tokens + ptok) * kv_tok / (1 << 20) + 16;
	snprintf(config, sizeof config,
		 "parking_lot:\n"
		 "  pool: { threads: %u }\n"
		 "  limits: { max_units: null, max_queue_depth: 1000, timeout_secs: 0 }\n"
		 "default_model: smollm2\n"
		 "models:\n"
		 "  - name: smollm2\n"
		 "    executor: llm\n"
		 "    path: %s\n"
		 "    params: { device: '%s', kvcache_mem_mb: %llu, block_size: 16, "
		 "max_num_seqs: %u, max_batch_tokens: 512 }\n",
		 threads, model_path(path, sizeof path), dev, (unsigned long long)kv_mb, max_n);
	bench_daemon_start(&bd, argv[1], config);
	printf("bench-serve: %u output tokens per stream, %u compute threads, rounds:", tokens,
	       threads);
	for (size_t i = 0; i < nr; i++)
		printf(" %u", ns[i]);
	printf("\n");
	struct round warm;
	run_round(bd.sock, 1, tokens < 8 ? tokens : 8, 1, &warm); /* waits for the load */
	for (size_t i = 0; i < nr; i++) {
		int probing = ns[i] == max_n;
		probe.sock = bd.sock;
		atomic_store(&stats_stop, 0);
		if (probing && pthread_create(&probe.th, NULL, stats_main, &probe) != 0)
			bench_die("cannot start the stats thread");
		run_round(bd.sock, ns[i], tokens, 0, &r[i]);
		if (probing) {
			atomic_store(&stats_stop, 1);
			pthread_join(probe.th, NULL);
		}
	}
	bench_daemon_stop(&bd);
	const struct round *big = &r[0];
	for (size_t i = 0; i < nr; i++)
		big = r[i].n == max_n ? &r[i] : big;
	double n1 = tps_of(r, nr, 1), n16 = tps_of(r, nr, 16);
	double stats_p99 = pct(probe.rtt, probe.n, 0.99) * 1e3;
	printf("stats round trips during n=%u: %zu, p50 %.2f ms\n", max_n, probe.n,
	       pct(probe.rtt, probe.n, 0.5) * 1e3);
	printf("serve: n1_tps=%.1f n4_tps=%.1f n16_tps=%.1f n64_tps=%.1f n256_tps=%.1f scale16=%.2f "
	       "ttft_p50_ms=%.1f ttft_p99_ms=%.1f itl_p50_ms=%.1f itl_p99_ms=%.1f stats_p99_ms=%.2f "
	       "max_n=%u device=%s\n", n1, tps_of(r, nr, 4), n16, tps_of(r, nr, 64),
	       tps_of(r, nr, 256), n1 > 0 ? n16 / n1 : 0, big->ttft_p50, big->ttft_p99,
	       big->itl_p50, big->itl_p99, stats_p99, max_n, dev);
	return 0;
}
