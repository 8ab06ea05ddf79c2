/*
 * test-pg.c — the PostgreSQL shared queue (lib/store/pg-*.c) against a real
 * server: the one named by the PG* environment (`make unit` runs this binary
 * through tests/tools/pg-cluster.sh run, which starts a private cluster when
 * CI has not). No server is an error, never a skip.
 *
 * The file gets its own database (plot_test_<pid>, dropped at the end);
 * tests of migrations get fresh ones. Each queue test starts from empty
 * tables. Several "daemons" are several struct pgq, each its own connection.
 * One test restarts the server (tests/tools/pg-cluster.sh restart, run
 * from the repository root as make does).
 * Time passing for leases and deadlines is done by moving the row's
 * timestamps into the past with SQL (the database clock is the only clock
 * the queue reads), except one test that lets a 50 ms lease really expire.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "plot/pgq.h"
#include "plot/pool.h"

static char g_dbname[64];
static char g_url[128];   /* "dbname=plot_test_<pid>": the rest from PG* */
static PGconn *g_admin;   /* to the server's default database */
static PGconn *g_db;      /* to the test database: direct SQL */
static char err[512];

/* ---- helpers ---------------------------------------------------------------- */

static void sql_on(PGconn *c, const char *fmt, ...)
{
	char q[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof q, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(c, q);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	PQclear(r);
}
#define sql(...) sql_on(g_db, __VA_ARGS__)

/* one integer from a query on the test database */
static long long sql_int(const char *fmt, ...)
{
	char q[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof q, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(g_db, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	long long v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* a fresh, empty database; its conninfo in url */
static void fresh_db(const char *suffix, char *url, size_t len)
{
	sql_on(g_admin, "DROP DATABASE IF EXISTS %s_%s WITH (FORCE)", g_dbname, suffix);
	sql_on(g_admin, "CREATE DATABASE %s_%s", g_dbname, suffix);
	snprintf(url, len, "dbname=%s_%s", g_dbname, suffix);
}

static void drop_db(const char *suffix)
{
	sql_on(g_admin, "DROP DATABASE IF EXISTS %s_%s WITH (FORCE)", g_dbname, suffix);
}

static struct pgq *open_as(const char *name)
{
	struct pgq *q = NULL;
	int rc = pgq_open(g_url, name, &q, err, sizeof err);
	if (rc != 0)
		fail_msg("pgq_open %s: %s", name, err);
	return q;
}

static uint64_t submit(struct pgq *q, const char *model, int prio, uint64_t cost)
{
	struct pgq_submit s = { .model = model, .priority = prio, .cost = cost, .owner_uid = 1000,
				.label = "lbl", .max_restarts = 1, .request = "req", .request_len = 3 };
	uint64_t id = 0;
	assert_int_equal(pgq_submit(q, &s, &id, err, sizeof err), 0);
	return id;
}

static size_t claim(struct pgq *q, const char *model, uint64_t free_u, uint64_t max_u,
		    struct pgq_claimed *out, size_t cap)
{
	struct pgq_want w = { model, free_u, max_u, 0 };
	size_t n = 99;
	int rc = pgq_claim(q, &w, 1, 60000, out, cap, &n, err, sizeof err);
	if (rc != 0)
		fail_msg("claim: %s", err);
	return n;
}

static void clear_all(struct pgq_claimed *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pgq_claimed_clear(&c[i]);
}

static int state_of(uint64_t id)
{
	return (int)sql_int("SELECT state FROM plot_tasks WHERE id = %llu", (unsigned long long)id);
}

/* ---- fixtures ---------------------------------------------------------------- */

static void quiet(void *arg, const char *msg)
{
}

static int group_setup(void **st)
{
	g_admin = PQconnectdb("");
	if (PQstatus(g_admin) != CONNECTION_OK) {
		fprintf(stderr, "test-pg: no PostgreSQL server through PG* (run me through "
			"tests/tools/pg-cluster.sh run): %s", PQerrorMessage(g_admin));
		return -1;
	}
	PQsetNoticeProcessor(g_admin, quiet, NULL); /* DROP ... IF EXISTS chatter */
	snprintf(g_dbname, sizeof g_dbname, "plot_test_%d", (int)getpid());
	fresh_db("q", g_url, sizeof g_url);
	g_db = PQconnectdb(g_url);
	if (PQstatus(g_db) != CONNECTION_OK)
		return -1;
	struct pgq *q = open_as("setup"); /* creates the schema */
	pgq_free(q);
	return 0;
}

static int group_teardown(void **st)
{
	PQfinish(g_db);
	drop_db("q");
	PQfinish(g_admin);
	return 0;
}

static int empty_tables(void **st)
{
	sql("TRUNCATE plot_tasks, plot_output, plot_daemons RESTART IDENTITY");
	return 0;
}

/* ---- migrations --------------------------------------------------------------- */

static void t_migrate_idempotent(void **st)
{
	char url[128];
	struct pgq *q;
	int v = -1;
	fresh_db("m1", url, sizeof url);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pgq_open(url, "d", &q, err, sizeof err), 0);
		assert_int_equal(pgq_schema_version(q, &v, err, sizeof err), 0);
		assert_int_equal(v, PGQ_SCHEMA_VERSION);
		pgq_free(q);
	}
	PGconn *c = PQconnectdb(url);
	sql_on(c, "UPDATE plot_schema_version SET version = 99");
	PQfinish(c);
	assert_int_equal(pgq_open(url, "d", &q, err, sizeof err), -PGQ_E_SCHEMA);
	assert_non_null(strstr(err, "version 99, newer than this plotd's 2"));
	drop_db("m1");
}

/* A database at version 1 (before the key column) migrates to the current
 * version at open, keeping its tasks. */
static void t_migrate_from_v1(void **st)
{
	char url[128];
	struct pgq *q;
	fresh_db("m3", url, sizeof url);
	assert_int_equal(pgq_open(url, "d", &q, err, sizeof err), 0);
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1 };
	uint64_t id;
	assert_int_equal(pgq_submit(q, &s, &id, err, sizeof err), 0);
	pgq_free(q);
	PGconn *c = PQconnectdb(url);
	sql_on(c, "DROP INDEX plot_tasks_key; ALTER TABLE plot_tasks DROP COLUMN key;"
		  "UPDATE plot_schema_version SET version = 1");
	assert_int_equal(pgq_open(url, "d", &q, err, sizeof err), 0);
	int v;
	assert_int_equal(pgq_schema_version(q, &v, err, sizeof err), 0);
	assert_int_equal(v, 2);
	s.key = "k";
	uint64_t id2;
	assert_int_equal(pgq_submit(q, &s, &id2, err, sizeof err), 0);
	assert_int_equal(id2, id + 1);
	pgq_free(q);
	PQfinish(c);
	drop_db("m3");
}

struct mig_arg {
	const char *url;
	pthread_barrier_t *bar;
	int rc;
	char err[512];
};

static void *mig_thread(void *p)
{
	struct mig_arg *a = p;
	struct pgq *q = NULL;
	pthread_barrier_wait(a->bar);
	a->rc = pgq_open(a->url, "racer", &q, a->err, sizeof a->err);
	pgq_free(q);
	return NULL;
}

/* Daemons starting together on an empty database: one migrates, none fails. */
static void t_migrate_concurrent(void **st)
{
	enum { N = 4 };
	char url[128];
	pthread_t th[N];
	pthread_barrier_t bar;
	struct mig_arg a[N];
	fresh_db("m2", url, sizeof url);
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		a[i] = (struct mig_arg){ .url = url, .bar = &bar };
		pthread_create(&th[i], NULL, mig_thread, &a[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (a[i].rc != 0)
			fail_msg("racer %d: %s", i, a[i].err);
	}
	pthread_barrier_destroy(&bar);
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, "SELECT count(*), max(version) FROM plot_schema_version");
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	assert_int_equal(atoi(PQgetvalue(r, 0, 1)), PGQ_SCHEMA_VERSION);
	PQclear(r);
	PQfinish(c);
	drop_db("m2");
}

/* ---- claiming ----------------------------------------------------------------- */

static void t_claim_priority_then_fifo(void **st)
{
	struct pgq *a = open_as("A");
	uint64_t n1 = submit(a, "m", POOL_PRIO_NORMAL, 1), h1 = submit(a, "m", POOL_PRIO_HIGH, 1);
	uint64_t l1 = submit(a, "m", POOL_PRIO_LOW, 1), h2 = submit(a, "m", POOL_PRIO_HIGH, 1);
	uint64_t c1 = submit(a, "m", POOL_PRIO_CRITICAL, 1), n2 = submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c[8];
	assert_int_equal(claim(a, "m", 100, 100, c, 8), 6);
	uint64_t want[] = { c1, h1, h2, n1, n2, l1 };
	for (int i = 0; i < 6; i++) {
		assert_int_equal(c[i].id, want[i]);
		assert_int_equal(state_of(c[i].id), POOL_RUNNING);
		assert_int_equal(c[i].request_len, 3);
		assert_memory_equal(c[i].request, "req", 3);
		assert_string_equal(c[i].model, "m");
		assert_int_not_equal(c[i].lease, 0);
	}
	assert_int_not_equal(c[0].lease, c[1].lease);
	clear_all(c, 6);
	pgq_free(a);
}

/* Claims take what fits the free units, passing over what does not. */
static void t_claim_fits_units(void **st)
{
	struct pgq *a = open_as("A");
	uint64_t big1 = submit(a, "m", POOL_PRIO_NORMAL, 3), big2 = submit(a, "m", POOL_PRIO_NORMAL, 3);
	uint64_t small = submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c[4];
	assert_int_equal(claim(a, "m", 4, 8, c, 4), 2);
	assert_int_equal(c[0].id, big1);
	assert_int_equal(c[1].id, small);
	assert_int_equal(state_of(big2), POOL_QUEUED);
	assert_int_equal(sql_int("SELECT skips FROM plot_tasks WHERE id = %llu",
				 (unsigned long long)big2), 1);
	clear_all(c, 2);
	assert_int_equal(claim(a, "m", 2, 8, c, 4), 0); /* 3 units do not fit in 2 */
	assert_int_equal(claim(a, "m", 3, 8, c, 4), 1);
	assert_int_equal(c[0].id, big2);
	clear_all(c, 1);
	pgq_free(a);
}

/* A task passed over skip_limit times reserves, unless it is bigger than the
 * daemon's total units. */
static void t_claim_big_task_reserves(void **st)
{
	struct pgq *a = open_as("A");
	uint64_t big = submit(a, "m", POOL_PRIO_NORMAL, 4);
	for (int i = 0; i < 6; i++)
		submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c[8];
	struct pgq_want w = { "m", 2, 4, 2 };
	size_t n;
	assert_int_equal(pgq_claim(a, &w, 1, 60000, c, 8, &n, err, sizeof err), 0);
	assert_int_equal(n, 2); /* two small ones pass the big one: 2 skips */
	clear_all(c, n);
	assert_int_equal(sql_int("SELECT skips FROM plot_tasks WHERE id = %llu",
				 (unsigned long long)big), 2);
	assert_int_equal(pgq_claim(a, &w, 1, 60000, c, 8, &n, err, sizeof err), 0);
	assert_int_equal(n, 0); /* it reserves now */
	w.max_units = 3;        /* a daemon that can never run it: no reservation */
	assert_int_equal(pgq_claim(a, &w, 1, 60000, c, 8, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	clear_all(c, n);
	pgq_free(a);
}

/* A claim takes no more than the caller has room for, and passes nobody. */
static void t_claim_room(void **st)
{
	struct pgq *a = open_as("A");
	uint64_t big = submit(a, "m", POOL_PRIO_HIGH, 9);
	uint64_t first = submit(a, "m", POOL_PRIO_NORMAL, 1);
	submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c[1];
	assert_int_equal(claim(a, "m", 5, 10, c, 1), 1);
	assert_int_equal(c[0].id, first);
	assert_int_equal(sql_int("SELECT skips FROM plot_tasks WHERE id = %llu",
				 (unsigned long long)big), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE state = 0"), 2);
	clear_all(c, 1);
	pgq_free(a);
}

static void t_claim_only_served_models(void **st)
{
	struct pgq *a = open_as("A");
	submit(a, "x", POOL_PRIO_CRITICAL, 1);
	uint64_t y = submit(a, "y", POOL_PRIO_LOW, 1);
	uint64_t z = submit(a, "z", POOL_PRIO_LOW, 2);
	struct pgq_want w[] = { { "y", 5, 5, 0 }, { "z", 1, 5, 0 }, { "nope", 5, 5, 0 } };
	struct pgq_claimed c[4];
	size_t n;
	assert_int_equal(pgq_claim(a, w, 3, 60000, c, 4, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].id, y);
	assert_int_equal(state_of(z), POOL_QUEUED);
	clear_all(c, n);
	pgq_free(a);
}

/* ---- N claimers, M tasks: each task claimed exactly once ------------------------- */

enum { CLAIMERS = 4, TASKS = 200 };
static int claimed_by[TASKS + 1];
static pthread_mutex_t claimed_mu = PTHREAD_MUTEX_INITIALIZER;

struct claimer {
	char name[16];
	pthread_barrier_t *bar;
	int got, rc;
	char err[512];
};

static int run_claimed(struct pgq *q, struct pgq_claimed *c, size_t n, struct claimer *me)
{
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&claimed_mu);
		claimed_by[c[i].id]++;
		pthread_mutex_unlock(&claimed_mu);
		int rc = pgq_append(q, c[i].id, c[i].lease, me->name, strlen(me->name), me->err,
				    sizeof me->err);
		if (rc == 0)
			rc = pgq_finish(q, c[i].id, c[i].lease, POOL_DONE, NULL, me->err,
					sizeof me->err);
		pgq_claimed_clear(&c[i]);
		if (rc)
			return rc;
	}
	me->got += (int)n;
	return 0;
}

static void *claimer_thread(void *p)
{
	struct claimer *me = p;
	struct pgq *q = NULL;
	me->rc = pgq_open(g_url, me->name, &q, me->err, sizeof me->err);
	pthread_barrier_wait(me->bar);
	struct pgq_want w = { "m", 3, 3, 0 };
	struct pgq_claimed c[3];
	size_t n = 1;
	while (me->rc == 0 && n > 0) {
		me->rc = pgq_claim(q, &w, 1, 60000, c, 3, &n, me->err, sizeof me->err);
		if (me->rc == 0)
			me->rc = run_claimed(q, c, n, me);
	}
	pgq_free(q);
	return NULL;
}

/* CLAIMERS threads claim and finish every queued task of model m. */
static void run_claimers(void)
{
	memset(claimed_by, 0, sizeof claimed_by);
	pthread_t th[CLAIMERS];
	struct claimer cl[CLAIMERS];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, CLAIMERS);
	for (int i = 0; i < CLAIMERS; i++) {
		cl[i] = (struct claimer){ .bar = &bar };
		snprintf(cl[i].name, sizeof cl[i].name, "d%d", i);
		pthread_create(&th[i], NULL, claimer_thread, &cl[i]);
	}
	int total = 0;
	for (int i = 0; i < CLAIMERS; i++) {
		pthread_join(th[i], NULL);
		if (cl[i].rc)
			fail_msg("%s: %s", cl[i].name, cl[i].err);
		total += cl[i].got;
		printf("# %s claimed %d\n", cl[i].name, cl[i].got);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(total, TASKS);
	for (int id = 1; id <= TASKS; id++)
		if (claimed_by[id] != 1)
			fail_msg("task %d claimed %d times", id, claimed_by[id]);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE state = %d", POOL_DONE), TASKS);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_output"), TASKS);
}

static void t_skip_locked_each_task_once(void **st)
{
	struct pgq *a = open_as("submitter");
	for (int i = 0; i < TASKS; i++)
		assert_int_equal(submit(a, "m", i % POOL_PRIO_COUNT, 1), i + 1);
	run_claimers();
	pgq_free(a);
}

/* Claims racing on one model still take tasks in one global order: no task
 * claimed by a later claim transaction ranks ahead (higher priority, or the
 * same and older) of one claimed by an earlier transaction. A trigger logs
 * every claim with its transaction, numbered in claim order (the claim lock
 * orders the transactions; without it a second claimer passes the window a
 * first one has locked and takes lower tasks). */
static void t_claim_order_global_under_concurrency(void **st)
{
	sql("CREATE TABLE claim_log (no bigserial, id bigint, tx bigint)");
	sql("CREATE FUNCTION log_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
	    " INSERT INTO claim_log (id, tx) VALUES (NEW.id, txid_current()); RETURN NEW; END $$");
	sql("CREATE TRIGGER log_claim AFTER UPDATE ON plot_tasks FOR EACH ROW"
	    " WHEN (OLD.state = 0 AND NEW.state = 1) EXECUTE FUNCTION log_claim()");
	struct pgq *a = open_as("submitter");
	for (int i = 0; i < TASKS; i++)
		submit(a, "m", (i * 7) % POOL_PRIO_COUNT, 1);
	run_claimers();
	long long claims = sql_int("SELECT count(DISTINCT tx) FROM claim_log");
	long long bad = sql_int(
		"SELECT count(*) FROM claim_log x JOIN claim_log y ON y.no > x.no AND y.tx <> x.tx"
		" JOIN plot_tasks tx ON tx.id = x.id JOIN plot_tasks ty ON ty.id = y.id"
		" WHERE ty.priority > tx.priority OR (ty.priority = tx.priority AND ty.id < tx.id)");
	printf("# %lld claim transactions, %lld pairs out of order\n", claims, bad);
	sql("DROP TRIGGER log_claim ON plot_tasks");
	sql("DROP FUNCTION log_claim()");
	sql("DROP TABLE claim_log");
	assert_true(claims >= TASKS / 3);
	assert_int_equal(bad, 0);
	pgq_free(a);
}

/* The claim lock is the advisory lock (class 'plot', FNV-1a of the model's
 * name): one held by a stuck claim makes another claim of the model give up
 * after its lock timeout with nothing claimed (not an error, the task stays
 * queued), and claim it once the lock is free. */
static void t_claim_gives_up_on_a_stuck_lock(void **st)
{
	uint32_t h = 2166136261u;
	for (const char *p = "m"; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct pgq *a = open_as("A");
	uint64_t id = submit(a, "m", POOL_PRIO_NORMAL, 1);
	sql("BEGIN");
	sql("SELECT pg_advisory_xact_lock(1886154612, %d)", (int)(int32_t)h);
	struct pgq_claimed c[1];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(claim(a, "m", 1, 1, c, 1), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec >= 1); /* it waited, then gave up */
	assert_int_equal(state_of(id), POOL_QUEUED);
	sql("COMMIT");
	assert_int_equal(claim(a, "m", 1, 1, c, 1), 1);
	assert_int_equal(c[0].id, id);
	clear_all(c, 1);
	pgq_free(a);
}

/* ---- leases ----------------------------------------------------------------- */

static void expire_leases(void)
{
	sql("UPDATE plot_tasks SET lease_expires = now() - interval '1 second' WHERE state = 1");
}

/* A's lease expires; B's sweep requeues (attempts + 1, A's output gone); B
 * runs it; every write of A is refused and its renew reports the loss. */
static void t_lost_lease_requeued_and_refused(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	uint64_t id = submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed ca, cb;
	assert_int_equal(claim(a, "m", 1, 1, &ca, 1), 1);
	assert_int_equal(pgq_append(a, id, ca.lease, "old", 3, err, sizeof err), 0);
	expire_leases();
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
	assert_int_equal(sw.requeued, 1);
	assert_int_equal(sw.failed, 0);
	assert_int_equal(state_of(id), POOL_QUEUED);
	assert_int_equal(sql_int("SELECT attempts FROM plot_tasks WHERE id = %llu",
				 (unsigned long long)id), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_output"), 0);
	assert_int_equal(claim(b, "m", 1, 1, &cb, 1), 1);
	assert_int_equal(cb.attempts, 1);
	assert_int_not_equal(cb.lease, ca.lease);

	assert_int_equal(pgq_append(a, id, ca.lease, "late", 4, err, sizeof err), -PGQ_E_LOST);
	assert_non_null(strstr(err, "not held"));
	assert_int_equal(pgq_finish(a, id, ca.lease, POOL_DONE, NULL, err, sizeof err), -PGQ_E_LOST);
	struct pgq_lease held = { id, ca.lease };
	struct pgq_lost lost[1];
	size_t nlost;
	assert_int_equal(pgq_renew(a, &held, 1, 60000, 1, 1, lost, &nlost, err, sizeof err), 0);
	assert_int_equal(nlost, 1);
	assert_int_equal(lost[0].id, id);
	assert_int_equal(lost[0].lease, ca.lease);

	assert_int_equal(pgq_append(b, id, cb.lease, "new", 3, err, sizeof err), 0);
	assert_int_equal(pgq_finish(b, id, cb.lease, POOL_DONE, NULL, err, sizeof err), 0);
	assert_int_equal(pgq_finish(b, id, cb.lease, POOL_DONE, NULL, err, sizeof err), -PGQ_E_LOST);
	struct store_record r;
	char runner[64];
	assert_int_equal(pgq_get(a, id, &r, runner, err, sizeof err), 0);
	assert_int_equal(r.state, POOL_DONE);
	assert_int_equal(r.output_len, 3);
	assert_memory_equal(r.output, "new", 3);
	assert_string_equal(runner, "B");
	store_record_clear(&r);
	pgq_claimed_clear(&ca);
	pgq_claimed_clear(&cb);
	pgq_free(a);
	pgq_free(b);
}

/* Past max_restarts a lost lease fails the task, naming the daemon. */
static void t_lost_lease_fails_per_policy(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .max_restarts = 0 };
	uint64_t id;
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), 0);
	struct pgq_claimed c;
	assert_int_equal(claim(a, "m", 1, 1, &c, 1), 1);
	expire_leases();
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
	assert_int_equal(sw.failed, 1);
	assert_int_equal(sw.requeued, 0);
	struct store_record r;
	assert_int_equal(pgq_get(b, id, &r, NULL, err, sizeof err), 0);
	assert_int_equal(r.state, POOL_FAILED);
	assert_int_equal(r.attempts, 1);
	assert_non_null(r.error);
	assert_non_null(strstr(r.error, "lease of daemon A expired"));
	assert_int_not_equal(r.ended_ns, 0);
	store_record_clear(&r);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* The heartbeat keeps a lease: a sweep does nothing to it, and the
 * daemon's share is recorded. */
static void t_renew_keeps_lease(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	uint64_t id = submit(a, "m", POOL_PRIO_NORMAL, 2);
	struct pgq_claimed c;
	struct pgq_want w = { "m", 4, 4, 0 };
	size_t n;
	assert_int_equal(pgq_claim(a, &w, 1, 1, &c, 1, &n, err, sizeof err), 0); /* 1 ms lease */
	assert_int_equal(n, 1);
	struct pgq_lease held = { id, c.lease };
	struct pgq_lost lost[1];
	size_t nlost = 9;
	assert_int_equal(pgq_renew(a, &held, 1, 60000, 4, 2, lost, &nlost, err, sizeof err), 0);
	assert_int_equal(nlost, 0);
	assert_int_equal(sql_int("SELECT (lease_expires > now() + interval '50 seconds')::int FROM plot_tasks"
				 " WHERE id = %llu", (unsigned long long)id), 1);
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
	assert_int_equal(sw.requeued + sw.failed, 0);
	assert_int_equal(state_of(id), POOL_RUNNING);
	assert_int_equal(sql_int("SELECT units * 10 + running FROM plot_daemons WHERE name = 'A'"), 42);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* The one test on the real clock: a 50 ms lease, nobody renews, a sweep
 * requeues it once it has passed (bounded wait). */
static void t_lease_expires_in_real_time(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	uint64_t id = submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c;
	struct pgq_want w = { "m", 1, 1, 0 };
	size_t n;
	assert_int_equal(pgq_claim(a, &w, 1, 50, &c, 1, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	struct pgq_swept sw = { 0 };
	for (int i = 0; i < 250 && sw.requeued == 0; i++) {
		assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
		if (!sw.requeued)
			nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	assert_int_equal(sw.requeued, 1);
	assert_int_equal(state_of(id), POOL_QUEUED);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* A daemon process killed with -9 while it holds tasks: once its 200 ms
 * leases pass, another daemon's sweep requeues them and they complete
 * there, each exactly once, with none of the dead one's output. */
static void t_kill9_holder_tasks_finish_elsewhere(void **st)
{
	struct pgq *b = open_as("B");
	for (int i = 0; i < 3; i++)
		submit(b, "m", POOL_PRIO_NORMAL, 1);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the doomed daemon: its own connection */
		struct pgq *a;
		struct pgq_claimed c[3];
		struct pgq_want w = { "m", 3, 3, 0 };
		size_t n = 0;
		char e[512];
		if (pgq_open(g_url, "A", &a, e, sizeof e) == 0 &&
		    pgq_claim(a, &w, 1, 200, c, 3, &n, e, sizeof e) == 0)
			for (size_t i = 0; i < n; i++)
				pgq_append(a, c[i].id, c[i].lease, "dead", 4, e, sizeof e);
		char k = (char)n;
		if (write(fds[1], &k, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char k = 0;
	assert_int_equal(read(fds[0], &k, 1), 1);
	assert_int_equal(k, 3);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	struct pgq_swept sw = { 0 };
	size_t requeued = 0;
	for (int i = 0; i < 250 && requeued < 3; i++) {
		assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
		requeued += sw.requeued;
		if (requeued < 3)
			nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	assert_int_equal(requeued, 3);
	struct pgq_claimed c[4];
	assert_int_equal(claim(b, "m", 4, 4, c, 4), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].attempts, 1);
		assert_int_equal(pgq_append(b, c[i].id, c[i].lease, "B", 1, err, sizeof err), 0);
		assert_int_equal(pgq_finish(b, c[i].id, c[i].lease, POOL_DONE, NULL, err, sizeof err), 0);
	}
	clear_all(c, 3);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE state = %d AND attempts = 1"
				 " AND lease_owner = 'B'", POOL_DONE), 3);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_output WHERE data = 'dead'"), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_output WHERE data = 'B'"), 3);
	pgq_free(b);
}

/* ---- deadlines --------------------------------------------------------------- */

static void t_deadlines_by_any_daemon(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .timeout_ms = 3600000 };
	uint64_t queued, running, hidden, fine;
	assert_int_equal(pgq_submit(a, &s, &running, err, sizeof err), 0);
	struct pgq_claimed c, c2;
	assert_int_equal(claim(a, "m", 1, 1, &c, 1), 1);
	assert_int_equal(pgq_submit(a, &s, &queued, err, sizeof err), 0);
	assert_int_equal(pgq_submit(a, &s, &hidden, err, sizeof err), 0);
	s.timeout_ms = 0;
	assert_int_equal(pgq_submit(a, &s, &fine, err, sizeof err), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE deadline IS NULL"), 1);
	sql("UPDATE plot_tasks SET deadline = now() - interval '1 second' WHERE deadline IS NOT NULL");
	/* a claim never takes a task past its deadline, even before any sweep */
	assert_int_equal(claim(b, "m", 5, 5, &c2, 1), 1);
	assert_int_equal(c2.id, fine);
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
	assert_int_equal(sw.expired, 2);
	assert_int_equal(sw.timed_out, 1);
	assert_int_equal(state_of(queued), POOL_EXPIRED);
	assert_int_equal(state_of(hidden), POOL_EXPIRED);
	assert_int_equal(state_of(running), POOL_TIMEOUT);
	/* the holder learns it on its renew and can write no more */
	struct pgq_lease held = { running, c.lease };
	struct pgq_lost lost[1];
	size_t nlost;
	assert_int_equal(pgq_renew(a, &held, 1, 60000, 1, 1, lost, &nlost, err, sizeof err), 0);
	assert_int_equal(nlost, 1);
	assert_int_equal(lost[0].state, POOL_TIMEOUT);
	assert_int_equal(pgq_append(a, running, c.lease, "x", 1, err, sizeof err), -PGQ_E_LOST);
	pgq_claimed_clear(&c);
	pgq_claimed_clear(&c2);
	pgq_free(a);
	pgq_free(b);
}

/* ---- cancel -------------------------------------------------------------------- */

/* cancel_all: queued and running tasks of the named models only, one
 * owner's with has_owner, oldest first up to max; ended ones untouched. */
static void t_cancel_all_by_model_and_owner(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .owner_uid = 7 };
	uint64_t mine[3], other, elsewhere, ended;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pgq_submit(a, &s, &mine[i], err, sizeof err), 0);
	other = submit(a, "m", POOL_PRIO_NORMAL, 1);       /* uid 1000 */
	elsewhere = submit(a, "n", POOL_PRIO_NORMAL, 1);   /* another model */
	struct pgq_claimed c;
	assert_int_equal(claim(a, "m", 1, 1, &c, 1), 1);  /* mine[0] runs on A */
	assert_int_equal(c.id, mine[0]);
	assert_int_equal(pgq_cancel(a, mine[2], err, sizeof err), 0);
	ended = mine[2];
	const char *models[] = { "m", "x\"y" };
	uint64_t *ids;
	size_t n;
	assert_int_equal(pgq_cancel_all(b, models, 2, 1, 7, 1, &ids, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);                            /* max 1: the oldest */
	assert_int_equal(ids[0], mine[0]);
	free(ids);
	assert_int_equal(pgq_cancel_all(b, models, 2, 1, 7, 100, &ids, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], mine[1]);
	free(ids);
	assert_int_equal(state_of(ended), POOL_CANCELLED);
	assert_int_equal(state_of(other), POOL_QUEUED);
	assert_int_equal(pgq_cancel_all(b, models, 1, 0, 0, 100, &ids, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);                            /* any owner: uid 1000's too */
	assert_int_equal(ids[0], other);
	free(ids);
	assert_int_equal(state_of(elsewhere), POOL_QUEUED);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

static void t_cancel_from_any_daemon(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	uint64_t run_id = submit(a, "m", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c;
	assert_int_equal(claim(a, "m", 1, 1, &c, 1), 1);
	uint64_t q_id = submit(a, "m", POOL_PRIO_NORMAL, 1);
	assert_int_equal(pgq_cancel(b, q_id, err, sizeof err), 0);
	assert_int_equal(state_of(q_id), POOL_CANCELLED);
	assert_int_equal(pgq_cancel(b, q_id, err, sizeof err), -PGQ_E_STATE);
	assert_non_null(strstr(err, "already ended (cancelled)"));
	assert_int_equal(pgq_cancel(b, 999999, err, sizeof err), -PGQ_E_NOTFOUND);
	assert_non_null(strstr(err, "no task 999999"));

	assert_int_equal(pgq_append(a, run_id, c.lease, "kept", 4, err, sizeof err), 0);
	assert_int_equal(pgq_cancel(b, run_id, err, sizeof err), 0);
	struct pgq_lease held = { run_id, c.lease };
	struct pgq_lost lost[1];
	size_t nlost;
	assert_int_equal(pgq_renew(a, &held, 1, 60000, 1, 1, lost, &nlost, err, sizeof err), 0);
	assert_int_equal(nlost, 1);
	assert_int_equal(lost[0].state, POOL_CANCELLED);
	assert_int_equal(pgq_append(a, run_id, c.lease, "x", 1, err, sizeof err), -PGQ_E_LOST);
	assert_int_equal(pgq_finish(a, run_id, c.lease, POOL_DONE, NULL, err, sizeof err),
			 -PGQ_E_LOST);
	struct store_record r;
	assert_int_equal(pgq_get(a, run_id, &r, NULL, err, sizeof err), 0);
	assert_int_equal(r.state, POOL_CANCELLED);
	assert_int_equal(r.output_len, 4);
	assert_non_null(strstr(r.error, "daemon B"));
	store_record_clear(&r);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* ---- NOTIFY ---------------------------------------------------------------------- */

struct heard {
	int n;
	char channel[32], payload[64];
};

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct heard *h = arg;
	h->n++;
	snprintf(h->channel, sizeof h->channel, "%s", channel);
	snprintf(h->payload, sizeof h->payload, "%s", payload);
}

/* Wait (poll, bounded) until q's socket delivers a notification. */
static void wait_notify(struct pgq *q, struct heard *h)
{
	memset(h, 0, sizeof *h);
	for (int i = 0; i < 50 && h->n == 0; i++) {
		struct pollfd p = { .fd = pgq_fd(q), .events = POLLIN };
		assert_true(poll(&p, 1, 100) >= 0);
		assert_true(pgq_notifications(q, on_notify, h, err, sizeof err) >= 0);
	}
	assert_int_not_equal(h->n, 0);
}

static void t_notify_wakes_listeners(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct heard h;
	assert_int_equal(pgq_listen(a, err, sizeof err), 0);
	assert_int_equal(pgq_listen(b, err, sizeof err), 0);
	assert_int_equal(pgq_notifications(b, on_notify, &h, err, sizeof err), 0);
	uint64_t id = submit(a, "qwen", POOL_PRIO_NORMAL, 1);
	wait_notify(b, &h);
	assert_string_equal(h.channel, "plot_submit");
	assert_string_equal(h.payload, "qwen");
	wait_notify(a, &h); /* the submitter hears its own too */

	struct pgq_claimed c;
	assert_int_equal(claim(a, "qwen", 1, 1, &c, 1), 1);
	assert_int_equal(pgq_cancel(b, id, err, sizeof err), 0);
	wait_notify(a, &h);
	assert_string_equal(h.channel, "plot_cancel");
	char ids[24];
	snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
	assert_string_equal(h.payload, ids);
	pgq_claimed_clear(&c);

	/* a requeue by the sweep wakes idle daemons as a submit does */
	submit(a, "qwen", POOL_PRIO_NORMAL, 1);
	wait_notify(b, &h);
	assert_int_equal(claim(a, "qwen", 1, 1, &c, 1), 1);
	expire_leases();
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(a, &sw, err, sizeof err), 0);
	assert_int_equal(sw.requeued, 1);
	wait_notify(b, &h);
	assert_string_equal(h.channel, "plot_submit");
	assert_string_equal(h.payload, "qwen");
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* ---- results from any daemon ---------------------------------------------------- */

static void t_result_from_other_daemon(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct pgq_submit s = { .model = "m", .priority = POOL_PRIO_HIGH, .cost = 3, .owner_uid = 77,
				.label = "hello label", .timeout_ms = 60000 };
	uint64_t id;
	assert_int_equal(pgq_submit(b, &s, &id, err, sizeof err), 0);
	struct pgq_claimed c;
	assert_int_equal(claim(a, "m", 3, 3, &c, 1), 1);
	assert_int_equal(c.request_len, 0);
	assert_int_equal(c.owner_uid, 77);
	assert_int_not_equal(c.deadline_ns, 0);
	assert_int_equal(pgq_append(a, id, c.lease, "hel\0", 4, err, sizeof err), 0);
	assert_int_equal(pgq_append(a, id, c.lease, "lo", 2, err, sizeof err), 0);
	assert_int_equal(pgq_finish(a, id, c.lease, POOL_DONE, NULL, err, sizeof err), 0);
	struct store_record r;
	char runner[64];
	assert_int_equal(pgq_get(b, id, &r, runner, err, sizeof err), 0);
	assert_int_equal(r.id, id);
	assert_string_equal(r.model, "m");
	assert_string_equal(r.label, "hello label");
	assert_null(r.error);
	assert_int_equal(r.priority, POOL_PRIO_HIGH);
	assert_int_equal(r.state, POOL_DONE);
	assert_int_equal(r.cost, 3);
	assert_int_equal(r.owner_uid, 77);
	assert_int_equal(r.output_len, 6);
	assert_memory_equal(r.output, "hel\0lo", 6);
	assert_true(r.created_ns > 0 && r.created_ns <= r.started_ns && r.started_ns <= r.ended_ns);
	assert_int_equal(r.deadline_ns, c.deadline_ns);
	assert_true(r.deadline_ns >= r.created_ns + 60000ull * 1000000 - 1000);
	assert_string_equal(runner, "A");
	assert_int_equal(r.attempts, 0);
	assert_null(r.key);
	assert_int_equal(r.request_len, 0);
	store_record_clear(&r);
	assert_int_equal(pgq_get(b, id + 1, &r, NULL, err, sizeof err), -PGQ_E_NOTFOUND);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* A tail from another daemon follows the output by its chunk cursor. */
struct chunks {
	char buf[64];
	size_t len;
	int n;
};

static void on_chunk(void *arg, uint64_t seq, const void *data, size_t len)
{
	struct chunks *c = arg;
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->n++;
}

static void t_tail_from_other_daemon(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	uint64_t id = submit(b, "m", POOL_PRIO_NORMAL, 1), seq = 0;
	struct pgq_claimed c;
	struct chunks got = { 0 };
	int state;
	assert_int_equal(claim(a, "m", 1, 1, &c, 1), 1);
	assert_int_equal(pgq_output_since(b, id, 0, on_chunk, &got, &seq, &state, NULL, err,
					  sizeof err), 0);
	assert_int_equal(got.n, 0);
	assert_int_equal(seq, 0);
	assert_int_equal(state, POOL_RUNNING);
	assert_int_equal(pgq_append(a, id, c.lease, "ab", 2, err, sizeof err), 0);
	assert_int_equal(pgq_append(a, id, c.lease, "c", 1, err, sizeof err), 0);
	assert_int_equal(pgq_output_since(b, id, seq, on_chunk, &got, &seq, &state, NULL, err,
					  sizeof err), 0);
	assert_int_equal(got.n, 2);
	uint64_t mark = seq;
	assert_int_equal(pgq_append(a, id, c.lease, "de", 2, err, sizeof err), 0);
	assert_int_equal(pgq_finish(a, id, c.lease, POOL_DONE, NULL, err, sizeof err), 0);
	assert_int_equal(pgq_output_since(b, id, seq, on_chunk, &got, &seq, &state, NULL, err,
					  sizeof err), 0);
	assert_int_equal(got.n, 3);
	assert_true(seq > mark);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.buf, "abcde", 5);
	assert_int_equal(state, POOL_DONE);
	assert_int_equal(pgq_output_since(b, id + 7, 0, on_chunk, &got, &seq, &state, NULL, err,
					  sizeof err),
			 -PGQ_E_NOTFOUND);
	pgq_claimed_clear(&c);
	pgq_free(a);
	pgq_free(b);
}

/* A reader sees a requeue as a change of attempts: the chunks after its
 * last one are then the new run's, from its start (the old run's are gone). */
static void t_tail_sees_requeue(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B"), *r = open_as("R");
	uint64_t id = submit(a, "m", POOL_PRIO_NORMAL, 1), seq = 0;
	struct pgq_claimed ca, cb;
	struct chunks got = { 0 };
	int state, attempts;
	assert_int_equal(claim(a, "m", 1, 1, &ca, 1), 1);
	assert_int_equal(pgq_append(a, id, ca.lease, "old", 3, err, sizeof err), 0);
	assert_int_equal(pgq_output_since(r, id, 0, on_chunk, &got, &seq, &state, &attempts,
					  err, sizeof err), 0);
	assert_int_equal(attempts, 0);
	expire_leases();
	struct pgq_swept sw;
	assert_int_equal(pgq_sweep(b, &sw, err, sizeof err), 0);
	assert_int_equal(claim(b, "m", 1, 1, &cb, 1), 1);
	assert_int_equal(pgq_append(b, id, cb.lease, "new", 3, err, sizeof err), 0);
	assert_int_equal(pgq_output_since(r, id, seq, on_chunk, &got, &seq, &state, &attempts,
					  err, sizeof err), 0);
	assert_int_equal(attempts, 1);
	assert_int_equal(got.len, 6);
	assert_memory_equal(got.buf, "oldnew", 6); /* what a follower must not print */
	pgq_claimed_clear(&ca);
	pgq_claimed_clear(&cb);
	pgq_free(a);
	pgq_free(b);
	pgq_free(r);
}

static void t_stats_share(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	for (int i = 0; i < 3; i++)
		submit(a, "m", POOL_PRIO_NORMAL, 2);
	submit(a, "n", POOL_PRIO_NORMAL, 1);
	struct pgq_claimed c[2];
	assert_int_equal(claim(b, "m", 4, 4, c, 2), 2);
	struct pgq_lease held[2] = { { c[0].id, c[0].lease }, { c[1].id, c[1].lease } };
	struct pgq_lost lost[2];
	size_t nlost, nm, nd;
	assert_int_equal(pgq_renew(b, held, 2, 60000, 4, 2, lost, &nlost, err, sizeof err), 0);
	assert_int_equal(pgq_renew(a, NULL, 0, 60000, 8, 0, lost, &nlost, err, sizeof err), 0);
	struct pgq_model_stat m[4];
	struct pgq_daemon_stat d[4];
	assert_int_equal(pgq_stats(a, m, 4, &nm, d, 4, &nd, err, sizeof err), 0);
	assert_int_equal(nm, 2);
	assert_string_equal(m[0].model, "m");
	assert_int_equal(m[0].queued, 1);
	assert_int_equal(m[0].running, 2);
	assert_int_equal(m[0].queued_units, 2);
	assert_int_equal(m[0].running_units, 4);
	assert_string_equal(m[1].model, "n");
	assert_int_equal(m[1].queued, 1);
	assert_int_equal(nd, 2);
	assert_string_equal(d[0].name, "A");
	assert_int_equal(d[0].units, 8);
	assert_int_equal(d[0].holding, 0);
	assert_string_equal(d[1].name, "B");
	assert_int_equal(d[1].running, 2);
	assert_int_equal(d[1].holding, 2);
	assert_true(d[1].seen_ms_ago < 60000);
	clear_all(c, 2);
	pgq_free(a);
	pgq_free(b);
}

/* The shared depth holds across daemons submitting at once. */
struct filler {
	pthread_barrier_t *bar;
	int ok, full, rc;
	char err[512];
};

static void *filler_thread(void *p)
{
	struct filler *f = p;
	struct pgq *q = NULL;
	f->rc = pgq_open(g_url, "filler", &q, f->err, sizeof f->err);
	pthread_barrier_wait(f->bar);
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .max_queued = 10 };
	for (int i = 0; i < 10 && f->rc == 0; i++) {
		uint64_t id;
		int rc = pgq_submit(q, &s, &id, f->err, sizeof f->err);
		if (rc == -PGQ_E_FULL)
			f->full++;
		else if (rc == 0)
			f->ok++;
		else
			f->rc = rc;
	}
	pgq_free(q);
	return NULL;
}

static void t_queue_full_at_shared_depth(void **st)
{
	pthread_t th[2];
	pthread_barrier_t bar;
	struct filler f[2] = { { .bar = &bar }, { .bar = &bar } };
	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, filler_thread, &f[i]);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (f[i].rc)
			fail_msg("filler %d: %s", i, f[i].err);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(f[0].ok + f[1].ok, 10);
	assert_int_equal(f[0].full + f[1].full, 10);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE state = 0"), 10);
	struct pgq *a = open_as("A");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .max_queued = 10 };
	uint64_t id;
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), -PGQ_E_FULL);
	assert_non_null(strstr(err, "shared queue of model 'm' is full (10 queued, max_queued 10)"));
	s.model = "other"; /* the depth is per model */
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), 0);
	pgq_free(a);
}

/* The server drops the connection: calls fail naming it; a reconnect
 * restores it, LISTEN included. */
static void t_reconnect_after_connection_loss(void **st)
{
	struct pgq *a = open_as("A");
	struct heard h;
	assert_int_equal(pgq_listen(a, err, sizeof err), 0);
	assert_int_equal(sql_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				 " WHERE application_name = 'plotd' AND datname = current_database()"), 1);
	uint64_t id;
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1 };
	int rc = pgq_submit(a, &s, &id, err, sizeof err);
	assert_int_equal(rc, -PGQ_E_QUERY);
	assert_non_null(strstr(err, "lost the connection to postgres"));
	assert_non_null(strstr(err, g_url));
	assert_int_equal(pgq_connected(a), 0);
	assert_int_equal(pgq_reconnect(a, err, sizeof err), 0);
	assert_int_equal(pgq_connected(a), 1);
	struct pgq *b = open_as("B");
	submit(b, "after", POOL_PRIO_NORMAL, 1);
	wait_notify(a, &h);
	assert_string_equal(h.payload, "after");
	pgq_free(a);
	pgq_free(b);
}

/* A retried submit (same owner, same key) from any daemon is one task, with
 * its key and request kept in the record; another owner's key is its own. */
static void t_submit_key_once(void **st)
{
	struct pgq *a = open_as("A"), *b = open_as("B");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .owner_uid = 5, .key = "job-1",
				.request = "frame", .request_len = 5, .max_queued = 1 };
	uint64_t id, again, other;
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), 0);
	assert_int_equal(pgq_submit(b, &s, &again, err, sizeof err), 1); /* full, but known */
	assert_int_equal(again, id);
	s.max_queued = 0;
	assert_int_equal(pgq_submit(b, &s, &again, err, sizeof err), 1);
	assert_int_equal(again, id);
	s.owner_uid = 6;
	assert_int_equal(pgq_submit(b, &s, &other, err, sizeof err), 0);
	assert_int_not_equal(other, id);
	s.key = "job-2";
	s.max_queued = 2;
	assert_int_equal(pgq_submit(b, &s, &other, err, sizeof err), -PGQ_E_FULL);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks"), 2);
	struct store_record r;
	assert_int_equal(pgq_get(b, id, &r, NULL, err, sizeof err), 0);
	assert_string_equal(r.key, "job-1");
	assert_int_equal(r.request_len, 5);
	assert_memory_equal(r.request, "frame", 5);
	store_record_clear(&r);
	pgq_free(a);
	pgq_free(b);
}

/* The server restarts under a stream of submits: the submitter reconnects
 * with backoff and retries with the same idempotency key, so every submit
 * that was acknowledged is there afterwards, and none is there twice (a
 * submit whose commit landed but whose answer was lost is not queued again). */
struct restart_run {
	atomic_int acked, stop, reconnects, done; /* shared with the main thread */
	uint64_t ids[4096];                       /* read after the join */
	int rc;
	char err[512];
};

static int submit_retrying(struct pgq *q, struct restart_run *rr, int i)
{
	char key[32];
	snprintf(key, sizeof key, "restart-%d", i);
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 1, .key = key };
	long backoff_ms = 5;
	for (int tries = 0; tries < 200; tries++) {
		int rc = pgq_submit(q, &s, &rr->ids[i], rr->err, sizeof rr->err);
		if (rc >= 0)
			return 0;
		if (pgq_connected(q))
			return rc;
		nanosleep(&(struct timespec){ 0, backoff_ms * 1000 * 1000 }, NULL);
		backoff_ms = backoff_ms < 200 ? backoff_ms * 2 : 200;
		if (pgq_reconnect(q, rr->err, sizeof rr->err) == 0)
			atomic_fetch_add(&rr->reconnects, 1);
	}
	return -PGQ_E_CONNECT;
}

static void *restart_submitter(void *p)
{
	struct restart_run *rr = p;
	struct pgq *q = NULL;
	rr->rc = pgq_open(g_url, "submitter", &q, rr->err, sizeof rr->err);
	for (int i = 0; rr->rc == 0 && i < 4096 && !atomic_load(&rr->stop); i++) {
		rr->rc = submit_retrying(q, rr, i);
		if (rr->rc == 0)
			atomic_fetch_add(&rr->acked, 1);
	}
	pgq_free(q);
	atomic_store(&rr->done, 1);
	return NULL;
}

/* Bounded wait for n acknowledged submits; on failure stop the submitter and
 * report its error (read only after the join). */
static void wait_acked(struct restart_run *rr, pthread_t th, int n)
{
	for (int i = 0; i < 1000 && atomic_load(&rr->acked) < n && !atomic_load(&rr->done); i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	if (atomic_load(&rr->acked) >= n)
		return;
	atomic_store(&rr->stop, 1);
	pthread_join(th, NULL);
	fail_msg("only %d of %d submits acknowledged: %s", atomic_load(&rr->acked), n, rr->err);
}

static void t_server_restart_loses_nothing_acknowledged(void **st)
{
	static struct restart_run rr;
	memset(&rr, 0, sizeof rr);
	if (!getenv("PLOT_PG_DIR"))
		fail_msg("PLOT_PG_DIR unset: run me through tests/tools/pg-cluster.sh run");
	pthread_t th;
	pthread_create(&th, NULL, restart_submitter, &rr);
	wait_acked(&rr, th, 50);
	assert_int_equal(system("tests/tools/pg-cluster.sh restart"), 0);
	int before = atomic_load(&rr.acked);
	wait_acked(&rr, th, before + 50);
	atomic_store(&rr.stop, 1);
	pthread_join(th, NULL);
	if (rr.rc)
		fail_msg("submitter: %s", rr.err);
	assert_true(atomic_load(&rr.reconnects) >= 1);
	PQreset(g_db);
	PQreset(g_admin);
	int acked = atomic_load(&rr.acked);
	assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks"), acked);
	for (int i = 0; i < acked; i++)
		assert_int_equal(sql_int("SELECT count(*) FROM plot_tasks WHERE id = %llu AND key ="
					 " 'restart-%d'", (unsigned long long)rr.ids[i], i), 1);
	printf("# %d submits acknowledged, %d reconnects\n", acked, atomic_load(&rr.reconnects));
}

static void t_bad_arguments(void **st)
{
	struct pgq *a = open_as("A");
	struct pgq_submit s = { .model = "m", .priority = 1, .cost = 0 };
	uint64_t id;
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), -PGQ_E_INVAL);
	assert_non_null(strstr(err, "cost must be >= 1"));
	s.cost = 1;
	s.priority = 9;
	assert_int_equal(pgq_submit(a, &s, &id, err, sizeof err), -PGQ_E_INVAL);
	assert_int_equal(pgq_finish(a, 1, 1, POOL_QUEUED, NULL, err, sizeof err), -PGQ_E_INVAL);
	struct pgq *q;
	assert_int_equal(pgq_open(g_url, "", &q, err, sizeof err), -PGQ_E_INVAL);
	pgq_free(a);
}

/* ---- errors at open ------------------------------------------------------------- */

static void t_bad_url_names_it_without_password(void **st)
{
	struct pgq *q = (struct pgq *)1;
	assert_int_equal(pgq_open("postgresql://plotuser:s3cret@127.0.0.1:1/nodb", "d", &q, err,
				  sizeof err), -PGQ_E_CONNECT);
	assert_null(q);
	assert_non_null(strstr(err, "postgres.url 'postgresql://plotuser:***@127.0.0.1:1/nodb'"));
	assert_null(strstr(err, "s3cret"));
	assert_non_null(strstr(err, "cannot connect"));
	assert_int_equal(pgq_open("host=/nonexistent password=hunter2 dbname=x", "d", &q, err,
				  sizeof err), -PGQ_E_CONNECT);
	assert_non_null(strstr(err, "'host=/nonexistent password=*** dbname=x'"));
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(pgq_open("postgresql://[oops", "d", &q, err, sizeof err), -PGQ_E_CONNECT);
	assert_non_null(strstr(err, "postgresql://[oops"));
	/* a database that does not exist, on a server that does */
	assert_int_equal(pgq_open("dbname=plot_no_such_db", "d", &q, err, sizeof err),
			 -PGQ_E_CONNECT);
	assert_non_null(strstr(err, "plot_no_such_db"));
}

static void t_redact(void **st)
{
	char out[256];
	pgq_redact_url("postgres://u:pw@h/db", out, sizeof out);
	assert_string_equal(out, "postgres://u:***@h/db");
	pgq_redact_url("postgres://u@h:5/db", out, sizeof out);
	assert_string_equal(out, "postgres://u@h:5/db");
	pgq_redact_url("postgres://h/db?user=u&password=pw&sslmode=off", out, sizeof out);
	assert_string_equal(out, "postgres://h/db?user=u&password=***&sslmode=off");
	pgq_redact_url("dbname=x password='a b\\' c' user=u", out, sizeof out);
	assert_string_equal(out, "dbname=x password=*** user=u");
	pgq_redact_url(NULL, out, sizeof out);
	assert_string_equal(out, "PG* environment");
}

/* A role that may connect but not create tables: a clear schema error. */
static void t_missing_permission(void **st)
{
	char url[160];
	fresh_db("perm", url, sizeof url);
	sql_on(g_admin, "DO $$ BEGIN CREATE ROLE plot_noperm LOGIN; "
			"EXCEPTION WHEN duplicate_object THEN NULL; END $$");
	strcat(url, " user=plot_noperm");
	struct pgq *q;
	assert_int_equal(pgq_open(url, "d", &q, err, sizeof err), -PGQ_E_SCHEMA);
	assert_non_null(strstr(err, "user=plot_noperm"));
	assert_non_null(strstr(err, "cannot create the schema"));
	assert_non_null(strstr(err, "permission denied"));
	assert_non_null(strstr(err, "needs CREATE"));
	assert_null(strstr(err, "ERROR:"));
	printf("# %s\n", err);
	drop_db("perm");
}

/* Opened through the PG* environment alone, errors say so. */
static void t_env_connection(void **st)
{
	struct pgq *q;
	char *old = getenv("PGDATABASE") ? strdup(getenv("PGDATABASE")) : NULL;
	setenv("PGDATABASE", "plot_no_such_db", 1);
	int rc = pgq_open(NULL, "d", &q, err, sizeof err);
	if (old)
		setenv("PGDATABASE", old, 1);
	else
		unsetenv("PGDATABASE");
	free(old);
	assert_int_equal(rc, -PGQ_E_CONNECT);
	assert_non_null(strstr(err, "PG* environment: host="));
	assert_non_null(strstr(err, "dbname=plot_no_such_db"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_redact),
		cmocka_unit_test(t_migrate_idempotent),
		cmocka_unit_test(t_migrate_concurrent),
		cmocka_unit_test(t_migrate_from_v1),
		cmocka_unit_test(t_missing_permission),
		cmocka_unit_test(t_bad_url_names_it_without_password),
		cmocka_unit_test(t_env_connection),
		cmocka_unit_test_setup(t_claim_priority_then_fifo, empty_tables),
		cmocka_unit_test_setup(t_claim_fits_units, empty_tables),
		cmocka_unit_test_setup(t_claim_big_task_reserves, empty_tables),
		cmocka_unit_test_setup(t_claim_room, empty_tables),
		cmocka_unit_test_setup(t_claim_only_served_models, empty_tables),
		cmocka_unit_test_setup(t_skip_locked_each_task_once, empty_tables),
		cmocka_unit_test_setup(t_claim_order_global_under_concurrency, empty_tables),
		cmocka_unit_test_setup(t_claim_gives_up_on_a_stuck_lock, empty_tables),
		cmocka_unit_test_setup(t_lost_lease_requeued_and_refused, empty_tables),
		cmocka_unit_test_setup(t_lost_lease_fails_per_policy, empty_tables),
		cmocka_unit_test_setup(t_renew_keeps_lease, empty_tables),
		cmocka_unit_test_setup(t_lease_expires_in_real_time, empty_tables),
		cmocka_unit_test_setup(t_kill9_holder_tasks_finish_elsewhere, empty_tables),
		cmocka_unit_test_setup(t_deadlines_by_any_daemon, empty_tables),
		cmocka_unit_test_setup(t_cancel_from_any_daemon, empty_tables),
		cmocka_unit_test_setup(t_cancel_all_by_model_and_owner, empty_tables),
		cmocka_unit_test_setup(t_notify_wakes_listeners, empty_tables),
		cmocka_unit_test_setup(t_result_from_other_daemon, empty_tables),
		cmocka_unit_test_setup(t_tail_from_other_daemon, empty_tables),
		cmocka_unit_test_setup(t_tail_sees_requeue, empty_tables),
		cmocka_unit_test_setup(t_stats_share, empty_tables),
		cmocka_unit_test_setup(t_queue_full_at_shared_depth, empty_tables),
		cmocka_unit_test_setup(t_reconnect_after_connection_loss, empty_tables),
		cmocka_unit_test_setup(t_submit_key_once, empty_tables),
		cmocka_unit_test_setup(t_server_restart_loses_nothing_acknowledged, empty_tables),
		cmocka_unit_test_setup(t_bad_arguments, empty_tables),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
