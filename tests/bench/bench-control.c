/*
 * bench-control.c — does plotd keep answering while 256 tasks stream at once?
 *
 * 256 synthetic streams run at full speed (tokens_per_sec 0) for DURATION
 * seconds: CONNS connections each keep PER_CONN streams alive (submit, then
 * subscribe, read every chunk to the end, submit the next). Meanwhile a
 * separate connection sends stats requests back to back and times each round
 * trip. Submit -> first chunk is timed for every stream.
 *
 * Usage: bench-control PLOTD [SECS]. Ends with
 *   control: streams=256 stats_p50_ms=X stats_p99_ms=X first_chunk_p99_ms=X
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bench-daemon.h"
#include "plot/client.h"

#define CONNS 8
#define PER_CONN 32
#define STREAMS (CONNS * PER_CONN)
#define WORDS 2000
#define MAX_SAMPLES 1000000

static const char *config =
	"parking_lot:\n"
	"  pool:    { max_running: 256 }\n"
	"  limits:  { max_units: null, max_queue_depth: 10000, timeout_secs: 0 }\n"
	"  queue:   { backend: memory }\n"
	"  mailbox: { backend: memory, retention_secs: 2 }\n"
	"models:\n"
	"  - name: echo\n"
	"    executor: synthetic\n"
	"    params: { tokens_per_sec: 0 }\n";

struct slot {
	double submitted_at;
	int got_first;
};

static char *prompt;
static atomic_int stop_flag;
static double *first_chunk_ms;
static size_t n_first;
static pthread_mutex_t first_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_long chunks_total, bytes_total, tasks_done;

static void record_first(double ms)
{
	pthread_mutex_lock(&first_mu);
	if (n_first < MAX_SAMPLES)
		first_chunk_ms[n_first++] = ms;
	pthread_mutex_unlock(&first_mu);
}

static void submit(struct pclient *pc, struct slot *s, int k)
{
	struct proto_msg m;
	proto_msg_init(&m, PROTO_T_SUBMIT, (uint64_t)(k * 2 + 1));
	m.u.submit.prompt = prompt;
	pc_queue(pc, &m);
	s->submitted_at = bench_now();
	s->got_first = 0;
}

static void subscribe(struct pclient *pc, int k, uint64_t task)
{
	struct proto_msg m;
	proto_msg_init(&m, PROTO_T_SUBSCRIBE, (uint64_t)(k * 2 + 2));
	m.u.task_ref.task = task;
	m.u.task_ref.follow = 1;
	pc_queue(pc, &m);
}

static void on_msg(struct pclient *pc, struct slot *slots, const struct proto_msg *m)
{
	int k = (int)((m->id - 1) / 2);
	if (k < 0 || k >= PER_CONN)
		bench_die("reply with an unknown id");
	struct slot *s = &slots[k];
	switch (m->type) {
	case PROTO_T_ERR:
		bench_die(m->u.error.message ? m->u.error.message : "error reply");
		break;
	case PROTO_T_OK:
		if (m->op == PROTO_T_SUBMIT)
			subscribe(pc, k, m->u.submitted.task);
		break;
	case PROTO_T_CHUNK:
		if (!s->got_first) {
			s->got_first = 1;
			record_first((bench_now() - s->submitted_at) * 1e3);
		}
		atomic_fetch_add(&chunks_total, 1);
		atomic_fetch_add(&bytes_total, (long)m->u.chunk.len);
		break;
	case PROTO_T_END:
		atomic_fetch_add(&tasks_done, 1);
		if (!atomic_load(&stop_flag))
			submit(pc, s, k);
		break;
	}
}

/* One connection keeping PER_CONN streams alive until stop_flag. */
static void *streams_main(void *arg)
{
	const char *sock = arg;
	struct pclient pc;
	struct slot slots[PER_CONN];
	struct proto_msg m;

	pc_init(&pc, bench_connect(sock));
	pc_hello(&pc);
	for (int k = 0; k < PER_CONN; k++)
		submit(&pc, &slots[k], k);
	while (!atomic_load(&stop_flag)) {
		pc_flush(&pc);
		pc_poll_read(&pc, 100);
		while (pc_next(&pc, &m)) {
			on_msg(&pc, slots, &m);
			proto_msg_clear(&m);
		}
	}
	pc_free(&pc); /* run clients vanish: plotd cancels their tasks */
	return NULL;
}

/* Back-to-back stats round trips; fills samples (ms), returns how many. */
static size_t stats_loop(const char *sock, double *samples, size_t cap, double until)
{
	struct client *c;
	char err[256];
	size_t n = 0;

	if (client_connect(sock, NULL, &c, err, sizeof(err)) < 0)
		bench_die(err);
	while (bench_now() < until && n < cap) {
		struct proto_msg req, rep;
		proto_msg_init(&req, PROTO_T_STATS, 0);
		double t0 = bench_now();
		int rc = client_call(c, &req, &rep, 5000, err, sizeof(err));
		samples[n++] = (bench_now() - t0) * 1e3;
		proto_msg_clear(&rep);
		if (rc < 0)
			bench_die(err);
	}
	client_free(c);
	return n;
}

static char *make_prompt(void)
{
	char *p = malloc(WORDS * 6 + 1), *q = p;
	for (int i = 0; i < WORDS; i++)
		q += sprintf(q, "w%03d ", i % 1000);
	return p;
}

int main(int argc, char **argv)
{
	struct bench_daemon bd;
	pthread_t th[CONNS];

	if (argc < 2) {
		fprintf(stderr, "usage: bench-control PLOTD [SECS]\n");
		return 2;
	}
	double secs = argc > 2 ? atof(argv[2]) : 3.0;
	signal(SIGPIPE, SIG_IGN);
	prompt = make_prompt();
	first_chunk_ms = calloc(MAX_SAMPLES, sizeof(double));
	double *stats_ms = calloc(MAX_SAMPLES, sizeof(double));
	bench_daemon_start(&bd, argv[1], config);
	for (int i = 0; i < CONNS; i++)
		pthread_create(&th[i], NULL, streams_main, bd.sock);
	double t0 = bench_now();
	size_t n_stats = stats_loop(bd.sock, stats_ms, MAX_SAMPLES, t0 + secs);
	double dt = bench_now() - t0;
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < CONNS; i++)
		pthread_join(th[i], NULL);
	bench_daemon_stop(&bd);
	printf("%.1fs: %ld streams finished, %ld chunk events (%.1f MB/s), %zu stats calls, "
	       "%zu first chunks\n", dt, atomic_load(&tasks_done), atomic_load(&chunks_total),
	       (double)atomic_load(&bytes_total) / dt / 1e6, n_stats, n_first);
	printf("control: streams=%d stats_p50_ms=%.3f stats_p99_ms=%.3f first_chunk_p99_ms=%.3f\n",
	       STREAMS, bench_pct(stats_ms, n_stats, 0.5), bench_pct(stats_ms, n_stats, 0.99),
	       bench_pct(first_chunk_ms, n_first, 0.99));
	free(stats_ms);
	free(first_chunk_ms);
	free(prompt);
	return 0;
}
