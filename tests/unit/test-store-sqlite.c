/*
 * test-store-sqlite.c — the sqlite backend and the store writer.
 *
 * Each test gets its own directory under $TMPDIR. The backend: records
 * round-trip through the columns (output in chunks, a put without output or
 * request keeps the stored ones), the id sequence only grows, a second
 * opener is refused as locked, the file is in WAL mode, a garbage file is
 * refused as corrupted, a symlink and a group-writable directory as unsafe
 * (a read-only file and a full disk: tests/cli/daemon-store.bats, which can
 * mount file systems). The writer: one batch per wake-up, a
 * completion runs after its writes are committed, the sequence follows the
 * committed ids, a failed commit reports failure to the completion and
 * leaves nothing behind, a frozen writer drops new writes.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plot/pool.h"
#include "plot/store.h"

struct fx {
	char dir[256];
	char path[300];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/plot-sqlite-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/db/plot.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static struct store *open_ok(const char *path)
{
	struct store_open_args a = { .path = path };
	struct store *s = NULL;
	char err[512];
	int rc = store_sqlite_open(&a, &s, err, sizeof err);
	if (rc < 0)
		print_error("open: %s\n", err);
	assert_int_equal(rc, 0);
	return s;
}

static int open_err(const char *path, char *err, size_t len)
{
	struct store_open_args a = { .path = path };
	struct store *s = NULL;
	int rc = store_sqlite_open(&a, &s, err, len);
	if (rc == 0)
		store_free(s);
	return rc;
}

static void record(struct store_record *r, uint64_t id, int state)
{
	memset(r, 0, sizeof *r);
	r->id = id;
	r->state = state;
	r->priority = POOL_PRIO_HIGH;
	r->cost = 3;
	r->created_ns = 100;
	r->deadline_ns = UINT64_MAX;
	r->owner_uid = 4000000000u;
	r->model = "echo";
	r->label = "the label";
	r->key = "k-1";
	r->attempts = 2;
}

static int collect(void *arg, struct store_record *r)
{
	uint64_t *ids = arg;
	ids[++ids[0]] = r->id;
	store_record_clear(r);
	return 0;
}

/* Every column round-trips; the output is chunked and comes back whole. */
static void t_roundtrip(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f->path);
	struct store_record r, out;
	size_t big = 200000; /* more than one 64 KiB chunk */
	char *o = malloc(big);
	for (size_t i = 0; i < big; i++)
		o[i] = (char)(i * 7);
	record(&r, 7, POOL_DONE);
	r.output = o;
	r.output_len = big;
	r.request = "\x81\xa1t\xa6submit";
	r.request_len = 9;
	assert_int_equal(store_put(s, &r), 0);
	assert_int_equal(store_get(s, 7, &out), 0);
	assert_int_equal(out.state, POOL_DONE);
	assert_int_equal(out.priority, POOL_PRIO_HIGH);
	assert_int_equal(out.deadline_ns, UINT64_MAX);
	assert_int_equal(out.owner_uid, 4000000000u);
	assert_int_equal(out.attempts, 2);
	assert_string_equal(out.key, "k-1");
	assert_string_equal(out.label, "the label");
	assert_int_equal(out.output_len, big);
	assert_memory_equal(out.output, o, big);
	assert_int_equal(out.request_len, 9);
	store_record_clear(&out);
	/* a put without output or request keeps both */
	record(&r, 7, POOL_FAILED);
	r.error = "boom";
	assert_int_equal(store_put(s, &r), 0);
	assert_int_equal(store_get(s, 7, &out), 0);
	assert_int_equal(out.state, POOL_FAILED);
	assert_string_equal(out.error, "boom");
	assert_int_equal(out.output_len, big);
	assert_int_equal(out.request_len, 9);
	store_record_clear(&out);
	assert_int_equal(store_del(s, 7), 0);
	assert_int_equal(store_get(s, 7, &out), -1);
	assert_int_equal(store_del(s, 7), -1);
	free(o);
	store_free(s);
}

/* Output appended as it grows comes back whole, in order; a put without
 * output keeps it; a put with empty output clears it. */
static void t_append(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f->path);
	struct store_record r, out;
	record(&r, 3, POOL_RUNNING);
	assert_int_equal(store_put(s, &r), 0);
	assert_int_equal(store_append(s, 3, 0, "hello ", 6), 0);
	assert_int_equal(store_append(s, 3, 6, "brave ", 6), 0);
	assert_int_equal(store_append(s, 3, 12, "world", 5), 0);
	record(&r, 3, POOL_DONE);
	r.output_len = 17; /* the end record: no output, its length */
	assert_int_equal(store_put(s, &r), 0);
	store_free(s);
	s = open_ok(f->path);
	assert_int_equal(store_get(s, 3, &out), 0);
	assert_int_equal(out.state, POOL_DONE);
	assert_int_equal(out.output_len, 17);
	assert_memory_equal(out.output, "hello brave world", 17);
	store_record_clear(&out);
	record(&r, 3, POOL_QUEUED);
	r.output = "";
	assert_int_equal(store_put(s, &r), 0); /* a requeue: the partial output goes */
	assert_int_equal(store_get(s, 3, &out), 0);
	assert_int_equal(out.output_len, 0);
	store_record_clear(&out);
	store_free(s);
}

/* Records survive a close; scan is in id order; the sequence only grows. */
static void t_reopen_scan_seq(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f->path);
	struct store_record r;
	uint64_t next, ids[8] = {0};
	assert_int_equal(s->ops->seq_get(s->ctx, &next), 0);
	assert_int_equal(next, 1);
	uint64_t order[] = { 5, 2, 9 };
	for (int i = 0; i < 3; i++) {
		record(&r, order[i], POOL_QUEUED);
		assert_int_equal(store_put(s, &r), 0);
	}
	assert_int_equal(s->ops->seq_put(s->ctx, 10), 0);
	assert_int_equal(s->ops->seq_put(s->ctx, 4), 0); /* never goes back */
	store_free(s);
	s = open_ok(f->path);
	assert_int_equal(s->ops->seq_get(s->ctx, &next), 0);
	assert_int_equal(next, 10);
	assert_int_equal(s->ops->scan(s->ctx, collect, ids), 0);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 5);
	assert_int_equal(ids[3], 9);
	assert_int_equal(s->ops->count(s->ctx), 3);
	store_free(s);
}

/* The database is in WAL mode (plot.yaml(5) store): the file header says
 * so after a close, bytes 18 and 19 (read and write version) being 2. */
static void t_wal(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f->path);
	struct store_record r;
	record(&r, 1, POOL_QUEUED);
	assert_int_equal(store_put(s, &r), 0);
	store_free(s);
	unsigned char hdr[20];
	FILE *fp = fopen(f->path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(hdr, 1, sizeof hdr, fp), sizeof hdr);
	fclose(fp);
	assert_memory_equal(hdr, "SQLite format 3", 16);
	assert_int_equal(hdr[18], 2);
	assert_int_equal(hdr[19], 2);
}

/* A second opener while the first holds it: refused, naming the file. */
static void t_locked(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f->path);
	char err[512];
	assert_int_equal(open_err(f->path, err, sizeof err), -1);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "locked"));
	store_free(s);
	struct store *again = open_ok(f->path); /* free once the first is gone */
	store_free(again);
}

static void write_file(const char *path, const char *data)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(data, fp);
	fclose(fp);
}

static void t_corrupted(void **state)
{
	struct fx *f = *state;
	char err[512], dir[300];
	snprintf(dir, sizeof dir, "%s/db", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(f->path, "this is not a database, not at all, but long enough to look like one"
			    " to nobody at all......................................................");
	assert_int_equal(open_err(f->path, err, sizeof err), -1);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "corrupted"));
}

static void t_unsafe_paths(void **state)
{
	struct fx *f = *state;
	char err[512], dir[300], target[300];
	/* a symlink in place of the file */
	snprintf(dir, sizeof dir, "%s/db", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(target, sizeof target, "%s/elsewhere.db", f->dir);
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(open_err(f->path, err, sizeof err), -1);
	assert_non_null(strstr(err, "symlink"));
	unlink(f->path);
	/* a directory others may write to */
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(open_err(f->path, err, sizeof err), -1);
	assert_non_null(strstr(err, "not writable by group or others"));
	/* relative paths are refused */
	assert_int_equal(open_err("plot.db", err, sizeof err), -1);
	assert_non_null(strstr(err, "absolute"));
}

/* ---- the writer ------------------------------------------------------------- */

struct done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n, ok;
};

static void on_done(void *ctx, void *arg, int ok)
{
	struct done *d = ctx;
	(void)arg;
	pthread_mutex_lock(&d->mu);
	d->n++;
	d->ok = ok;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void wait_done(struct done *d, int n)
{
	pthread_mutex_lock(&d->mu);
	while (d->n < n)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

static void t_writer_group_commit(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store_writer *w = store_writer_new(open_ok(f->path), err, sizeof err);
	assert_non_null(w);
	struct store *fac = store_writer_store(w);
	struct done d = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct store_record r;
	for (uint64_t id = 1; id <= 1000; id++) {
		record(&r, id, POOL_QUEUED);
		r.created_ns = 0; /* (pool clock) */
		assert_int_equal(store_put(fac, &r), 0);
	}
	assert_int_equal(store_writer_sync(w, on_done, &d, NULL), 0);
	wait_done(&d, 1);
	assert_int_equal(d.ok, 1);
	uint64_t batches, recs;
	store_writer_counts(w, &batches, &recs);
	assert_true(batches < 1000); /* grouped, not one commit per record */
	assert_int_equal(recs, 1001);
	store_writer_freeze(w);
	record(&r, 5000, POOL_QUEUED);
	store_put(fac, &r); /* dropped */
	store_writer_free(w);

	struct store *s = open_ok(f->path);
	uint64_t next;
	assert_int_equal(s->ops->count(s->ctx), 1000);
	assert_int_equal(s->ops->seq_get(s->ctx, &next), 0);
	assert_int_equal(next, 1001);
	store_free(s);
}

/* A backend whose commit fails: the completion hears it, the error stays. */
static int fail_commit(void *ctx)
{
	(void)ctx;
	return -1;
}

static const char *fail_error(void *ctx)
{
	(void)ctx;
	return "store /x: disk full";
}

static void t_writer_failure(void **state)
{
	(void)state;
	char err[512];
	struct store *m = store_memory_new();
	static struct store_ops ops;
	ops = *m->ops;
	ops.commit = fail_commit;
	ops.error = fail_error;
	m->ops = &ops;
	struct store_writer *w = store_writer_new(m, err, sizeof err);
	assert_non_null(w);
	struct done d = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct store_record r;
	record(&r, 1, POOL_QUEUED);
	store_put(store_writer_store(w), &r);
	store_writer_sync(w, on_done, &d, NULL);
	wait_done(&d, 1);
	assert_int_equal(d.ok, 0);
	assert_int_equal(store_writer_error(w, err, sizeof err), 1);
	assert_string_equal(err, "store /x: disk full");
	store_writer_free(w);
}

/* Times go in as wall clock and come back as the same monotonic ones. */
static void t_times(void **state)
{
	(void)state;
	struct store_record r = { .created_ns = 5000000000ull, .started_ns = 5000000001ull,
				  .deadline_ns = UINT64_MAX };
	store_record_times(&r, 1);
	assert_true(r.created_ns > 1600000000ull * 1000000000ull); /* after 2020 */
	assert_int_equal(r.started_ns - r.created_ns, 1);
	assert_int_equal(r.ended_ns, 0);
	assert_int_equal(r.deadline_ns, UINT64_MAX);
	store_record_times(&r, 0);
	assert_int_equal(r.started_ns - r.created_ns, 1);
	assert_true(r.created_ns > 4999000000ull && r.created_ns < 5001000000ull);
	struct store_record old = { .deadline_ns = 1000 }; /* 1970: long past */
	store_record_times(&old, 0);
	assert_int_equal(old.deadline_ns, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(t_append, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reopen_scan_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(t_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(t_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(t_corrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(t_unsafe_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(t_writer_group_commit, setup, teardown),
		cmocka_unit_test(t_writer_failure),
		cmocka_unit_test(t_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
