/*
 * bench-pgq.c — what the PostgreSQL shared queue costs per task, against the
 * floor of one bare round trip to the same server.
 *
 * Against the server named by PG* (make bench-pgq starts a private one): a
 * fresh database, BENCH_PGQ_TASKS (default 2000) null tasks submitted by one
 * connection (submit latency), then drained by C claimers (C = 1, then 3),
 * each its own connection, each claiming one task at a time (free units 1),
 * then finishing it. Claim latency is one pgq_claim call that got a task;
 * tasks/s is claim + finish over the drain. Floor: `SELECT 1` round trips on
 * one connection. The last line is
 * "pgq: submit_p50_us=.. claim_p50_us=.. claim_p99_us=.. tps_1=.. tps_3=..
 *  floor_p50_us=.. claim_over_floor=.." (claim p50 / floor p50).
 * Figures only; nothing here is asserted.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plot/pgq.h"
#include "plot/pool.h"

static char url[128];

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	return v[(size_t)(p * (double)(n - 1))];
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "bench-pgq: %s: %s\n", what, err);
	exit(1);
}

static void sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(q, PQresultErrorMessage(r));
	PQclear(r);
}

struct drainer {
	char name[16];
	uint64_t *lat;      /* claim latencies, room for all tasks */
	size_t n;
};

static void *drain(void *p)
{
	struct drainer *d = p;
	struct pgq *q;
	char err[512];
	if (pgq_open(url, d->name, &q, err, sizeof err))
		die("open", err);
	struct pgq_want w = { "null", 1, 1, 0 };
	for (;;) {
		struct pgq_claimed c;
		size_t n;
		uint64_t t0 = now_us();
		if (pgq_claim(q, &w, 1, 60000, &c, 1, &n, err, sizeof err))
			die("claim", err);
		if (!n)
			break;
		d->lat[d->n++] = now_us() - t0;
		if (pgq_finish(q, c.id, c.lease, POOL_DONE, NULL, err, sizeof err))
			die("finish", err);
		pgq_claimed_clear(&c);
	}
	pgq_free(q);
	return NULL;
}

static void submit_all(struct pgq *q, size_t tasks, uint64_t *lat)
{
	char err[512];
	struct pgq_submit s = { .model = "null", .priority = POOL_PRIO_NORMAL, .cost = 1 };
	for (size_t i = 0; i < tasks; i++) {
		uint64_t id, t0 = now_us();
		s.priority = (int)(i % POOL_PRIO_COUNT);
		if (pgq_submit(q, &s, &id, err, sizeof err))
			die("submit", err);
		lat[i] = now_us() - t0;
	}
}

/* Drain tasks with c claimers; returns tasks/s, claim latencies into all. */
static double drain_with(int c, size_t tasks, uint64_t *all, size_t *nall)
{
	pthread_t th[3];
	struct drainer d[3];
	uint64_t t0 = now_us();
	for (int i = 0; i < c; i++) {
		d[i] = (struct drainer){ .lat = calloc(tasks, sizeof(uint64_t)) };
		snprintf(d[i].name, sizeof d[i].name, "bench%d", i);
		pthread_create(&th[i], NULL, drain, &d[i]);
	}
	*nall = 0;
	for (int i = 0; i < c; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + *nall, d[i].lat, d[i].n * sizeof *all);
		*nall += d[i].n;
		free(d[i].lat);
	}
	return (double)*nall * 1e6 / (double)(now_us() - t0);
}

static uint64_t floor_p50(PGconn *c, size_t n, uint64_t *lat)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_us();
		PQclear(PQexec(c, "SELECT 1"));
		lat[i] = now_us() - t0;
	}
	return pct(lat, n, 0.5);
}

int main(void)
{
	size_t tasks = getenv("BENCH_PGQ_TASKS") ? strtoul(getenv("BENCH_PGQ_TASKS"), NULL, 10) : 2000;
	if (tasks < 10)
		tasks = 10;
	PGconn *admin = PQconnectdb("");
	if (PQstatus(admin) != CONNECTION_OK)
		die("connect (PG* environment)", PQerrorMessage(admin));
	char db[64], q[128];
	snprintf(db, sizeof db, "plot_bench_%d", (int)getpid());
	snprintf(q, sizeof q, "CREATE DATABASE %s", db);
	sql(admin, q);
	snprintf(url, sizeof url, "dbname=%s", db);

	uint64_t *lat = calloc(tasks, sizeof *lat), *all = calloc(tasks, sizeof *all);
	struct pgq *sq;
	char err[512];
	if (pgq_open(url, "submitter", &sq, err, sizeof err))
		die("open", err);
	submit_all(sq, tasks, lat);
	uint64_t sub50 = pct(lat, tasks, 0.5);
	size_t n1, n3;
	double tps1 = drain_with(1, tasks, all, &n1);
	uint64_t c50 = pct(all, n1, 0.5), c99 = pct(all, n1, 0.99);
	submit_all(sq, tasks, lat);
	double tps3 = drain_with(3, tasks, all, &n3);
	uint64_t c50_3 = pct(all, n3, 0.5), c99_3 = pct(all, n3, 0.99);
	uint64_t fl = floor_p50(admin, tasks, lat);
	printf("bench-pgq: %zu tasks; submit p50 %llu us; 1 claimer: %.0f tasks/s, claim p50 %llu "
	       "us p99 %llu us; 3 claimers: %.0f tasks/s, claim p50 %llu us p99 %llu us; "
	       "SELECT 1 p50 %llu us\n", tasks, (unsigned long long)sub50, tps1,
	       (unsigned long long)c50, (unsigned long long)c99, tps3, (unsigned long long)c50_3,
	       (unsigned long long)c99_3, (unsigned long long)fl);
	printf("pgq: submit_p50_us=%llu claim_p50_us=%llu claim_p99_us=%llu tps_1=%.0f tps_3=%.0f "
	       "floor_p50_us=%llu claim_over_floor=%.1f\n", (unsigned long long)sub50,
	       (unsigned long long)c50, (unsigned long long)c99, tps1, tps3,
	       (unsigned long long)fl, fl ? (double)c50 / (double)fl : 0.0);
	pgq_free(sq);
	snprintf(q, sizeof q, "DROP DATABASE %s WITH (FORCE)", db);
	sql(admin, q);
	PQfinish(admin);
	free(lat);
	free(all);
	return (n1 == tasks && n3 == tasks) ? 0 : 1;
}
