/*
 * bench-roundtrip.c — null tasks submit -> done through plotd, against a raw
 * msgpack echo over an identical Unix socket (the floor).
 *
 * A null task is a synthetic task with an empty prompt: it produces no
 * output, so what is measured is the control plane: framing, decoding,
 * dispatch, pool admission and completion, the pool -> loop wakeup, and the
 * result reply. Each task is two requests on one connection: submit
 * (detached), then result with wait, sent as soon as the submit is answered.
 * WINDOW tasks are kept in flight.
 *
 * The floor runs the same client, encoding and decoding the same frames, but
 * the server is a thread that writes every byte straight back, so it costs
 * only the socket round trips. overhead = floor_tps / tps.
 *
 * It runs once per store backend in the same run: memory, then sqlite
 * (synchronous=normal, group commit; a submit is answered only once its
 * record is committed), and prints both rates, their ratio and the p50/p99
 * submit latency (submit sent -> its reply) of each.
 *
 * With PGHOST set (make bench-roundtrip runs it under pg-cluster.sh run), the
 * postgres backend too, on a database of its own: through one daemon, then
 * through three on the same database (one client connection per daemon,
 * the tasks split evenly; max_running 64, the most a daemon claims at once),
 * BENCH_PG_TASKS tasks (default 5000) each; and
 * the claim latency (created -> started, the database's clock) p50/p99 of
 * the three-daemon run. A result with wait for a task the daemon does not
 * hold (yet) is answered by polling the database every 100 ms, so these
 * rates include that poll.
 *
 * Usage: bench-roundtrip PLOTD [TASKS]. Ends with
 *   roundtrip: tps=N floor_tps=N overhead=X
 *   store: memory_tps=N sqlite_tps=N ratio=X sqlite_submit_p99_ms=X
 *   postgres: pg1_tps=N pg3_tps=N claim_p50_ms=X claim_p99_ms=X (with PGHOST)
 */
#include <pthread.h>

#include "bench-daemon.h"

#define WINDOW 256
#define DEFAULT_TASKS 200000

#define CONFIG_RUNNING(backend, running) \
	"parking_lot:\n" \
	"  pool:    { max_running: " running " }\n" \
	"  limits:  { max_units: null, max_queue_depth: 100000, timeout_secs: 0 }\n" \
	"  queue:   { backend: " backend " }\n" \
	"  mailbox: { backend: " backend ", retention_secs: 1 }\n" \
	"store: { synchronous: normal }\n" \
	"models:\n" \
	"  - name: nulltask\n" \
	"    executor: synthetic\n" \
	"    params: { tokens_per_sec: 0 }\n"
#define CONFIG(backend) CONFIG_RUNNING(backend, "1")
/* A postgres daemon claims at most max_running tasks per claim (its running
 * slots): with 1, every task costs a claim round trip of its own. */
#define CONFIG_PG CONFIG_RUNNING("postgres", "64")

/* Submit latencies of one run, by request id (ids are 2, 3, ... per task:
 * a submit and a result each take one). */
static double *sent_at, *lat;
static long nlat, nlat_done;

static void queue_submit(struct pclient *pc, uint64_t id)
{
	struct proto_msg m;
	proto_msg_init(&m, PROTO_T_SUBMIT, id);
	m.u.submit.prompt = "";
	m.u.submit.detach = 1;
	pc_queue(pc, &m);
}

static void queue_result(struct pclient *pc, uint64_t id, uint64_t task)
{
	struct proto_msg m;
	proto_msg_init(&m, PROTO_T_RESULT, id);
	m.u.task_ref.task = task;
	m.u.task_ref.wait = 1;
	pc_queue(pc, &m);
}

/* One message back: 1 when a task is done. An echoed submit stands for the
 * submit reply, an echoed result for the result reply. */
static int on_msg(struct pclient *pc, const struct proto_msg *m, int *next_id)
{
	if (m->type == PROTO_T_ERR)
		bench_die(m->u.error.message ? m->u.error.message : "error reply");
	if (m->type == PROTO_T_SUBMIT || (m->type == PROTO_T_OK && m->op == PROTO_T_SUBMIT)) {
		uint64_t task = m->type == PROTO_T_OK ? m->u.submitted.task : 1;
		if (sent_at && m->id < (uint64_t)(2 * nlat + 16) && nlat_done < nlat)
			lat[nlat_done++] = bench_now() - sent_at[m->id];
		queue_result(pc, (uint64_t)(*next_id)++, task);
		return 0;
	}
	if (m->type == PROTO_T_RESULT || (m->type == PROTO_T_OK && m->op == PROTO_T_RESULT))
		return 1;
	return 0;
}

/* Run n tasks through the server at fd; returns tasks per second. */
static double run(int fd, long n)
{
	struct pclient pc;
	struct proto_msg m;
	long sent = 0, done = 0;
	int next_id = 2;

	pc_init(&pc, fd);
	pc_hello(&pc);
	double t0 = bench_now();
	while (done < n) {
		while (sent - done < WINDOW && sent < n) {
			if (sent_at)
				sent_at[next_id] = bench_now();
			queue_submit(&pc, (uint64_t)next_id++);
			sent++;
		}
		pc_flush(&pc);
		if (!pc_poll_read(&pc, 5000) && !proto_buf_pending(&pc.out))
			bench_die("no reply in 5 s");
		while (pc_next(&pc, &m)) {
			done += on_msg(&pc, &m, &next_id);
			proto_msg_clear(&m);
		}
	}
	double dt = bench_now() - t0;
	pc_free(&pc);
	return (double)n / dt;
}

/* ---- the floor: a byte echo server on a socket just like plotd's -------- */

struct echo {
	int lfd;
	char path[100];
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	char buf[65536];
	int fd = accept(e->lfd, NULL, NULL);

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static double run_floor(const char *dir, long n)
{
	struct echo e;
	struct sockaddr_un sa;
	pthread_t th;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (snprintf(e.path, sizeof(e.path), "%s/echo.sock", dir) >= (int)sizeof(e.path))
		bench_die("path too long");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e.path);
	e.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e.lfd < 0 || bind(e.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(e.lfd, 8) < 0)
		bench_die("echo socket");
	pthread_create(&th, NULL, echo_main, &e);
	int fd = bench_connect(e.path);
	if (fd < 0)
		bench_die("connect to echo");
	double tps = run(fd, n);
	pthread_join(th, NULL);
	close(e.lfd);
	unlink(e.path);
	return tps;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* plotd with the given config: tasks per second, submit p50/p99 in ms. */
static double run_daemon(const char *plotd, const char *config, long n, double *p50,
			 double *p99, struct bench_daemon *bd)
{
	bench_daemon_start(bd, plotd, config);
	run(bench_connect(bd->sock), n / 10); /* warm-up */
	int fd = bench_connect(bd->sock);
	if (fd < 0)
		bench_die("connect to plotd");
	nlat = n;
	nlat_done = 0;
	sent_at = calloc((size_t)(2 * n + 16), sizeof(double));
	lat = calloc((size_t)n, sizeof(double));
	if (!sent_at || !lat)
		bench_die("out of memory");
	double tps = run(fd, n);
	long k = nlat_done ? nlat_done : 1;
	qsort(lat, (size_t)k, sizeof(double), cmp_d);
	*p50 = lat[k / 2] * 1e3;
	*p99 = lat[k - 1 - k / 100] * 1e3;
	free(sent_at);
	free(lat);
	sent_at = lat = NULL;
	return tps;
}

/* ---- postgres: one daemon, then three on one database ------------------ */

struct pg_client {
	const char *sock;
	long n;
};

static void *pg_client_main(void *arg)
{
	struct pg_client *c = arg;
	int fd = bench_connect(c->sock);
	if (fd < 0)
		bench_die("connect to plotd");
	run(fd, c->n);
	return NULL;
}

/* k daemons on database db, n tasks split over them: tasks per second. */
static double run_pg(const char *plotd, int k, long n)
{
	struct bench_daemon bd[3];
	struct pg_client cl[3];
	pthread_t th[3];

	for (int i = 0; i < k; i++)
		bench_daemon_start(&bd[i], plotd, CONFIG_PG);
	run(bench_connect(bd[0].sock), n / 10 > 0 ? n / 10 : 1); /* warm-up */
	double t0 = bench_now();
	for (int i = 0; i < k; i++) {
		cl[i] = (struct pg_client){ bd[i].sock, n / k };
		pthread_create(&th[i], NULL, pg_client_main, &cl[i]);
	}
	for (int i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	double dt = bench_now() - t0;
	for (int i = 0; i < k; i++)
		bench_daemon_stop(&bd[i]);
	return (double)(n / k * k) / dt;
}

/* p50 and p99 of claim latency (started - created) in ms, from psql. */
static void claim_latency(const char *db, double *p50, double *p99)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "psql -X -A -t -q -d '%s' -c \"SELECT "
		 "1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY "
		 "started_at - created_at)), 1000 * extract(epoch FROM percentile_cont(0.99) "
		 "WITHIN GROUP (ORDER BY started_at - created_at)) FROM plot_tasks "
		 "WHERE started_at IS NOT NULL\"", db);
	FILE *f = popen(cmd, "r");
	*p50 = *p99 = -1;
	if (!f || fscanf(f, "%lf|%lf", p50, p99) != 2)
		fprintf(stderr, "bench-roundtrip: claim latency: psql gave nothing\n");
	if (f)
		pclose(f);
}

static void bench_pg(const char *plotd)
{
	const char *e = getenv("BENCH_PG_TASKS");
	long n = e ? atol(e) : 5000;
	char db[64], cmd[160];
	double p50, p99;

	snprintf(db, sizeof db, "plot_bench_%ld", (long)getpid());
	snprintf(cmd, sizeof cmd, "createdb '%s'", db);
	if (system(cmd) != 0)
		bench_die("createdb (is the cluster of pg-cluster.sh running?)");
	setenv("PGDATABASE", db, 1); /* postgres.url null: the PG* environment */
	double t1 = run_pg(plotd, 1, n);
	snprintf(cmd, sizeof cmd, "psql -X -q -d '%s' -c 'TRUNCATE plot_tasks, plot_output'", db);
	if (system(cmd) != 0)
		bench_die("truncate");
	double t3 = run_pg(plotd, 3, n);
	claim_latency(db, &p50, &p99);
	snprintf(cmd, sizeof cmd, "dropdb '%s'", db);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-roundtrip: could not drop %s\n", db);
	printf("postgres: pg1_tps=%.0f pg3_tps=%.0f claim_p50_ms=%.2f claim_p99_ms=%.2f "
	       "(tasks=%ld)\n", t1, t3, p50, p99, n);
}

int main(int argc, char **argv)
{
	struct bench_daemon bd;
	char state[] = "/tmp/plot-bench-state.XXXXXX", rm[64];
	double m50, m99, s50, s99;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-roundtrip PLOTD [TASKS]\n");
		return 2;
	}
	long n = argc > 2 ? atol(argv[2]) : DEFAULT_TASKS;
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(state))
		bench_die("mkdtemp");
	setenv("XDG_STATE_HOME", state, 1); /* the sqlite database: never the user's */
	double tps = run_daemon(argv[1], CONFIG("memory"), n, &m50, &m99, &bd);
	double floor_tps = run_floor(bd.dir, n);
	bench_daemon_stop(&bd);
	double stps = run_daemon(argv[1], CONFIG("sqlite"), n, &s50, &s99, &bd);
	bench_daemon_stop(&bd);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", state);
	if (system(rm) != 0)
		fprintf(stderr, "bench-roundtrip: could not remove %s\n", state);
	printf("tasks=%ld window=%d (2 requests per task)\n", n, WINDOW);
	printf("roundtrip: tps=%.0f floor_tps=%.0f overhead=%.2f\n", tps, floor_tps,
	       floor_tps / tps);
	printf("submit latency ms: memory p50=%.3f p99=%.3f; sqlite p50=%.3f p99=%.3f\n",
	       m50, m99, s50, s99);
	printf("store: memory_tps=%.0f sqlite_tps=%.0f ratio=%.2f sqlite_submit_p99_ms=%.3f\n",
	       tps, stps, tps / stps, s99);
	if (getenv("PGHOST"))
		bench_pg(argv[1]);
	return 0;
}
