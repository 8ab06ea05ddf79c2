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
 * Usage: bench-roundtrip PLOTD [TASKS]. Ends with
 *   roundtrip: tps=N floor_tps=N overhead=X
 */
#include <pthread.h>

#include "bench-daemon.h"

#define WINDOW 256
#define DEFAULT_TASKS 200000

static const char *config =
	"parking_lot:\n"
	"  pool:    { max_running: 1 }\n"
	"  limits:  { max_units: null, max_queue_depth: 100000, timeout_secs: 0 }\n"
	"  mailbox: { backend: memory, retention_secs: 1 }\n"
	"models:\n"
	"  - name: nulltask\n"
	"    executor: synthetic\n"
	"    params: { tokens_per_sec: 0 }\n";

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

int main(int argc, char **argv)
{
	struct bench_daemon bd;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-roundtrip PLOTD [TASKS]\n");
		return 2;
	}
	long n = argc > 2 ? atol(argv[2]) : DEFAULT_TASKS;
	signal(SIGPIPE, SIG_IGN);
	bench_daemon_start(&bd, argv[1], config);
	run(bench_connect(bd.sock), n / 10); /* warm-up */
	int fd = bench_connect(bd.sock);
	if (fd < 0)
		bench_die("connect to plotd");
	double tps = run(fd, n);
	double floor_tps = run_floor(bd.dir, n);
	bench_daemon_stop(&bd);
	printf("tasks=%ld window=%d (2 requests per task)\n", n, WINDOW);
	printf("roundtrip: tps=%.0f floor_tps=%.0f overhead=%.2f\n", tps, floor_tps,
	       floor_tps / tps);
	return 0;
}
