/*
 * bench-http.c — plotd's HTTP front against its Unix socket, in the same
 * run, on the same daemon (make bench-http).
 *
 * Each half runs ROUNDS rounds per front, alternating socket and HTTP so
 * that load changes hit both, and reports the medians.
 *
 * Round trip: CLIENTS connections, each running null tasks (a synthetic
 * task with an empty prompt: no output, so only the control plane is
 * measured) one after another. Socket: submit (detached) then result with
 * wait, as bench-roundtrip does; HTTP: one POST /v1/completions on a
 * keep-alive connection (the whole answer in one response). Both report
 * tasks per second; rt_ratio = socket / HTTP (goal <= 1.5).
 *
 * Streaming: CLIENTS streams of TOKENS greedy tokens each (ignore_eos) from
 * SmolLM2, as bench-serve's 16-stream round: socket (submit + subscribe
 * follow) then HTTP (POST /v1/completions with "stream": true, read to the
 * last event). tok/s = CLIENTS * TOKENS / (last end - first start);
 * stream_ratio = HTTP / socket (goal >= 0.95). Without the model file the
 * streaming half is left out, and the summary line says so (0 figures).
 *
 * The HTTP client here is a minimal one for the benchmark: it reads a
 * Content-Length body, or (streaming) the whole response up to EOF.
 *
 *   bench-http PLOTD
 * Environment: BENCH_HTTP_TASKS (round trips per client, default 2000),
 * BENCH_HTTP_TOKENS (tokens per stream, default 64), BENCH_HTTP_MODEL (the
 * SmolLM2 path; default as make models installs it).
 * Ends with one line:
 *   http: rt_tps=N sock_rt_tps=N rt_ratio=X stream_tps=N sock_stream_tps=N stream_ratio=X
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/stat.h>

#include "bench-daemon.h"
#include "plot/client.h"
#include "plot/pool.h"

#define CLIENTS 16
#define ROUNDS 3 /* per front, alternating; the median is reported */

static const char *prompt =
	"You are a careful assistant. Read the following notes about a small town and "
	"then continue the story in the same calm style. The town sits beside a slow "
	"river, and every morning the baker opens her shop before the sun rises.";

static int http_port;
static const char *sock_path;
static long n_tasks;
static unsigned n_tokens;
static pthread_barrier_t start_line;

struct worker {
	pthread_t th;
	double t0, t1;
	char err[256];
};

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 10) : def;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		bench_die("cannot find a free port");
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- a minimal HTTP client --------------------------------------------------- */

static int tcp_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bench_die("connect to the HTTP port");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			bench_die("HTTP send");
		s += w;
		n -= (size_t)w;
	}
}

static void post(int fd, const char *body, int keep)
{
	char req[2048];
	int n = snprintf(req, sizeof(req), "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
			 strlen(body), keep ? "" : "Connection: close\r\n", body);
	send_all(fd, req, (size_t)n);
}

/* One keep-alive response with a Content-Length body; fails unless 200. */
static void read_response(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end = NULL;

	while (!(end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
		ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			bench_die("HTTP response cut short");
		len += (size_t)r;
	}
	buf[len] = 0;
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		bench_die(buf);
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
	while (len < want) {
		ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			bench_die("HTTP body cut short");
		len += (size_t)r;
	}
}

/* ---- round trips --------------------------------------------------------------- */

static void *rt_http(void *arg)
{
	struct worker *w = arg;
	char buf[16384];
	int fd = tcp_connect();

	pthread_barrier_wait(&start_line);
	w->t0 = bench_now();
	for (long i = 0; i < n_tasks; i++) {
		post(fd, "{\"model\": \"nulltask\", \"prompt\": \"\"}", 1);
		read_response(fd, buf, sizeof(buf));
	}
	w->t1 = bench_now();
	close(fd);
	return NULL;
}

static void *rt_sock(void *arg)
{
	struct worker *w = arg;
	struct client *c;
	struct proto_msg m, r;

	if (client_connect(sock_path, NULL, &c, w->err, sizeof w->err) < 0)
		bench_die(w->err);
	pthread_barrier_wait(&start_line);
	w->t0 = bench_now();
	for (long i = 0; i < n_tasks; i++) {
		proto_msg_init(&m, PROTO_T_SUBMIT, 0);
		m.u.submit.prompt = "";
		m.u.submit.model = "nulltask";
		m.u.submit.detach = 1;
		memset(&r, 0, sizeof r);
		if (client_call(c, &m, &r, 10000, w->err, sizeof w->err) < 0)
			bench_die(w->err);
		uint64_t task = r.u.submitted.task;
		proto_msg_clear(&r);
		proto_msg_init(&m, PROTO_T_RESULT, 0);
		m.u.task_ref.task = task;
		m.u.task_ref.wait = 1;
		if (client_call(c, &m, &r, 10000, w->err, sizeof w->err) < 0)
			bench_die(w->err);
		proto_msg_clear(&r);
	}
	w->t1 = bench_now();
	client_free(c);
	return NULL;
}

/* ---- streams ------------------------------------------------------------------- */

static void *st_http(void *arg)
{
	struct worker *w = arg;
	char body[1024], buf[65536];
	int fd = tcp_connect();
	size_t total = 0;

	snprintf(body, sizeof(body), "{\"model\": \"smollm2\", \"prompt\": \"%s\", \"max_tokens\": "
		 "%u, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}", prompt, n_tokens);
	pthread_barrier_wait(&start_line);
	w->t0 = bench_now();
	post(fd, body, 0);
	for (;;) { /* to EOF: Connection: close */
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		if (total == 0 && strncmp(buf, "HTTP/1.1 200", 12) != 0)
			bench_die("HTTP stream: not 200");
		total += (size_t)r;
	}
	w->t1 = bench_now();
	close(fd);
	return NULL;
}

static void *st_sock(void *arg)
{
	struct worker *w = arg;
	struct client *c;
	struct proto_msg m, r;

	if (client_connect(sock_path, NULL, &c, w->err, sizeof w->err) < 0)
		bench_die(w->err);
	pthread_barrier_wait(&start_line);
	w->t0 = bench_now();
	proto_msg_init(&m, PROTO_T_SUBMIT, 0);
	m.u.submit.prompt = prompt;
	m.u.submit.model = "smollm2";
	m.u.submit.raw = 1;
	m.u.submit.has = PROTO_HAS_MAX_TOKENS | PROTO_HAS_TEMPERATURE;
	m.u.submit.max_tokens = n_tokens;
	m.u.submit.ignore_eos = 1;
	memset(&r, 0, sizeof r);
	if (client_call(c, &m, &r, 60000, w->err, sizeof w->err) < 0)
		bench_die(w->err);
	uint64_t task = r.u.submitted.task;
	proto_msg_clear(&r);
	proto_msg_init(&m, PROTO_T_SUBSCRIBE, 0);
	m.u.task_ref.task = task;
	m.u.task_ref.follow = 1;
	if (client_send(c, &m, w->err, sizeof w->err) < 0)
		bench_die(w->err);
	for (int more = 1; more;) {
		memset(&r, 0, sizeof r);
		if (client_recv(c, &r, 120000, w->err, sizeof w->err) < 0)
			bench_die(w->err);
		more = r.type != PROTO_T_END && r.type != PROTO_T_ERR;
		proto_msg_clear(&r);
	}
	w->t1 = bench_now();
	client_free(c);
	return NULL;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median3(double *v)
{
	qsort(v, ROUNDS, sizeof *v, cmp_dbl);
	return v[ROUNDS / 2];
}

/* Run CLIENTS workers of fn; the span from the first start to the last end. */
static double run(void *(*fn)(void *))
{
	struct worker w[CLIENTS];
	double t0 = 1e300, t1 = 0;

	memset(w, 0, sizeof w);
	pthread_barrier_init(&start_line, NULL, CLIENTS);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&w[i].th, NULL, fn, &w[i]);
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(w[i].th, NULL);
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
	}
	pthread_barrier_destroy(&start_line);
	return t1 - t0;
}

/* Bounded poll (30 s) until smollm2 is ready. */
static void wait_ready(void)
{
	char err[256];
	struct client *c;

	if (client_connect(sock_path, NULL, &c, err, sizeof err) < 0)
		bench_die(err);
	for (int i = 0; i < 600; i++) {
		struct proto_msg m, r;
		int ready = 0;
		proto_msg_init(&m, PROTO_T_MODELS, 0);
		memset(&r, 0, sizeof r);
		if (client_call(c, &m, &r, 10000, err, sizeof err) < 0)
			bench_die(err);
		for (uint32_t k = 0; k < r.u.models.n_models; k++)
			if (!strcmp(r.u.models.models[k].name, "smollm2"))
				ready = !strcmp(r.u.models.models[k].state, "ready");
		proto_msg_clear(&r);
		if (ready) {
			client_free(c);
			return;
		}
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	bench_die("smollm2 did not load in 30 s");
}

static const char *model_path(char *buf, size_t len)
{
	const char *env = getenv("BENCH_HTTP_MODEL"), *xdg = getenv("XDG_DATA_HOME");
	if (env && *env)
		return env;
	if (xdg && *xdg)
		snprintf(buf, len, "%s/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf", xdg);
	else
		snprintf(buf, len, "%s/.local/share/plot/models/SmolLM2-135M-Instruct.Q4_1.gguf",
			 getenv("HOME") ? getenv("HOME") : "/");
	return buf;
}

int main(int argc, char **argv)
{
	struct bench_daemon bd;
	char path[4096], config[8192];
	struct stat st;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-http PLOTD\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	n_tasks = (long)env_u64("BENCH_HTTP_TASKS", 2000);
	n_tokens = (unsigned)env_u64("BENCH_HTTP_TOKENS", 64);
	const char *model = model_path(path, sizeof(path));
	int have_model = stat(model, &st) == 0;
	http_port = free_port();
	int n = snprintf(config, sizeof(config),
		"daemon: { http: \"127.0.0.1:%d\", http_max_connections: 1024 }\n"
		"parking_lot:\n"
		"  limits:  { max_units: null, max_queue_depth: 100000, timeout_secs: 0 }\n"
		"  queue:   { backend: memory }\n"
		"  mailbox: { backend: memory, retention_secs: 1 }\n"
		"models:\n"
		"  - name: nulltask\n"
		"    executor: synthetic\n"
		"    params: { tokens_per_sec: 0 }\n", http_port);
	if (have_model)
		snprintf(config + n, sizeof(config) - (size_t)n,
			 "  - name: smollm2\n    executor: llm\n    path: %s\n"
			 "    params: { kvcache_mem_mb: 64, max_num_seqs: %d }\n", model, CLIENTS);
	bench_daemon_start(&bd, argv[1], config);
	sock_path = bd.sock;
	long want = n_tasks;
	n_tasks = want / 10 + 1; /* warm-up, both fronts */
	run(rt_sock);
	run(rt_http);
	n_tasks = want;
	double sv[ROUNDS], hv[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) { /* alternating: load drifts hit both */
		sv[i] = CLIENTS * n_tasks / run(rt_sock);
		hv[i] = CLIENTS * n_tasks / run(rt_http);
	}
	double sock_rt = median3(sv), http_rt = median3(hv);
	printf("round trip: %d clients x %ld null tasks, median of %d: socket %.0f tasks/s, "
	       "HTTP %.0f tasks/s\n", CLIENTS, n_tasks, ROUNDS, sock_rt, http_rt);
	double sock_st = 0, http_st = 0;
	if (have_model) {
		wait_ready();
		unsigned full = n_tokens;
		n_tokens = 4; /* warm-up */
		run(st_sock);
		n_tokens = full;
		for (int i = 0; i < ROUNDS; i++) {
			sv[i] = CLIENTS * n_tokens / run(st_sock);
			hv[i] = CLIENTS * n_tokens / run(st_http);
		}
		sock_st = median3(sv);
		http_st = median3(hv);
		printf("streams: %d x %u tokens, median of %d: socket %.1f tok/s, HTTP %.1f tok/s\n",
		       CLIENTS, n_tokens, ROUNDS, sock_st, http_st);
	} else {
		printf("streams: left out: no model at %s (make models)\n", model);
	}
	bench_daemon_stop(&bd);
	printf("http: rt_tps=%.0f sock_rt_tps=%.0f rt_ratio=%.2f stream_tps=%.1f "
	       "sock_stream_tps=%.1f stream_ratio=%.3f\n", http_rt, sock_rt, sock_rt / http_rt,
	       http_st, sock_st, sock_st > 0 ? http_st / sock_st : 0);
	return 0;
}
