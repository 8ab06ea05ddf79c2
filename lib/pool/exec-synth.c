/*
 * exec-synth.c — the synthetic executor: echoes a prompt's words back as
 * output chunks, for tests, benchmarks and the daemon's synthetic models.
 *
 * DESIGN (batch-style, like the llm engine)
 *   `threads` driver threads (0 = 1). Each driver owns a set of running
 *   tasks and steps them round-robin: one round emits at most one chunk per
 *   task whose due time has come, so no stream can starve another and a
 *   driver never runs one task to the end while others wait. A chunk is one
 *   word plus the whitespace after it; after a chunk the task is next due
 *   1/tokens_per_sec later (0: at once, so at full speed a driver just loops
 *   over its tasks). A round's chunks go to the pool in one batch
 *   (pool_emit_batch): one pool lock hold per round, not one per chunk, so
 *   the event loop reading the streams is not fighting the driver for the
 *   pool's lock at every chunk. Between rounds a driver sleeps on its own condition
 *   variable (CLOCK_MONOTONIC) until the earliest due time, new work, a
 *   cancel nudge, a lowering or stop: nothing polls or sleeps blindly.
 *
 *   start() hands the task to the least-loaded driver's inbox and signals
 *   it; cancel() wakes every driver (there are few), which check each task's
 *   cancel flag every round, due or not. A cancelled task is handed back ok
 *   with its partial output; the pool turns it into CANCELLED or TIMEOUT.
 *   A prompt starting with "!fail" fails right after its first chunk.
 *
 *   set_threads(n) adds drivers at once; lowering marks the surplus drivers
 *   retiring: each hands its tasks, mid-stream, to the least-loaded staying
 *   driver and exits (no work is killed or restarted). Exited drivers are
 *   joined and freed at the next set_threads, or joined at stop. Capacity
 *   is POOL_NO_CAP: the pool's max_running and units are the only bounds.
 *
 * INVARIANTS (under sx->mu)
 *   - d->load = tasks in d's inbox + tasks in d's running set.
 *   - start() never picks a retiring driver; a retiring driver's inbox is
 *     emptied by that driver only, under sx->mu, before it exits.
 *   - pool_task_finish() is called without sx->mu (it may call start()).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plot/pool.h"

/* One running task, owned by exactly one driver (its inbox or its set). */
struct run {
	struct pool_task *t;
	const char *s;       /* next chunk */
	uint32_t emitted, max_tokens;
	int fail;            /* "!fail": fail after the first chunk */
	uint64_t due_ns;     /* next chunk may go at this monotonic time */
	int st;              /* enum step, this round */
	int emit_rc;         /* the last emit's result */
	struct run *next;    /* inbox link */
};

enum step { STEP_MORE, STEP_DONE, STEP_FAILED };

struct synth;

struct driver {
	struct synth *sx;
	pthread_t tid;
	pthread_cond_t cv;   /* inbox, wake, retire, stop, or a due time */
	struct run *in_head, *in_tail; /* started, not yet taken (under mu) */
	unsigned load;       /* under mu, see INVARIANTS */
	int wake;            /* a cancel nudge arrived (under mu) */
	int retire, exited, joined;
	uint64_t next_due;   /* earliest due time of the set; driver thread only */
	struct run **v;      /* (n) the running set; driver thread only */
	struct pool_emit *e; /* (cap) a round's chunks, for pool_emit_batch */
	struct run **er;     /* (cap) the run of each e[] entry */
	size_t n, cap;
};

struct synth {
	pthread_mutex_t mu;
	struct driver **d;   /* (nd) every driver ever started, retired ones too */
	size_t nd, dcap;
	unsigned alive;      /* drivers not retiring */
	int stopping;
	uint64_t step_ns;    /* 1e9 / tokens_per_sec; 0 = full speed */
};

static void *driver_main(void *arg);

/* ---- payloads ------------------------------------------------------------- */

struct pool_synth_payload *pool_synth_payload_new(const char *prompt, uint32_t max_tokens)
{
	struct pool_synth_payload *sp = calloc(1, sizeof *sp);
	if (!sp)
		return NULL;
	sp->prompt = strdup(prompt ? prompt : "");
	if (!sp->prompt) {
		free(sp);
		return NULL;
	}
	sp->max_tokens = max_tokens;
	return sp;
}

void pool_synth_payload_free(void *payload)
{
	struct pool_synth_payload *sp = payload;
	if (!sp)
		return;
	free(sp->prompt);
	free(sp);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of the next chunk at s: one word plus the whitespace after it. */
static size_t next_chunk(const char *s)
{
	size_t n = 0;
	while (s[n] && !is_space(s[n]))
		n++;
	while (s[n] && is_space(s[n]))
		n++;
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- one round -------------------------------------------------------------- */

static int exhausted(const struct run *r)
{
	return !*r->s || (r->max_tokens && r->emitted >= r->max_tokens);
}

/* Before the round's emits: has r ended (cancelled: the pool turns that into
 * CANCELLED or TIMEOUT), and is its next chunk due? */
static enum step step_before(struct run *r, uint64_t now, int *due)
{
	*due = 0;
	if (pool_task_cancelled(r->t) || exhausted(r))
		return STEP_DONE;
	*due = r->due_ns <= now;
	return STEP_MORE;
}

/* After r's chunk of n bytes went out with result rc: advance r. */
static enum step step_after(struct synth *sx, struct run *r, int rc, size_t n, uint64_t now)
{
	r->emit_rc = rc;
	if (rc < 0)
		return STEP_FAILED;
	r->s += n;
	r->emitted++;
	if (r->fail)
		return STEP_FAILED;
	if (exhausted(r))
		return STEP_DONE;
	r->due_ns += sx->step_ns;
	if (r->due_ns < now)
		r->due_ns = now; /* fell behind: resume the pace, no burst */
	return STEP_MORE;
}

/* Hand back the tasks that ended this round. Returns how many. */
static unsigned reap(struct driver *d)
{
	uint64_t next = UINT64_MAX;
	unsigned ended = 0;
	char err[128];

	for (size_t i = 0; i < d->n;) {
		struct run *r = d->v[i];
		if (r->st == STEP_MORE) {
			if (r->due_ns < next)
				next = r->due_ns;
			i++;
			continue;
		}
		d->v[i] = d->v[--d->n]; /* order within a round does not matter */
		if (r->emit_rc < 0)
			snprintf(err, sizeof err, "emit failed: %s", pool_err_name(r->emit_rc));
		else
			snprintf(err, sizeof err, "synthetic failure after first chunk");
		pool_task_set_outcome(r->t, *r->s ? POOL_FINISH_MAX_TOKENS : POOL_FINISH_EOS,
				      r->emitted, 0);
		pool_task_finish(r->t, r->st == STEP_DONE, r->st == STEP_DONE ? NULL : err);
		free(r);
		ended++;
	}
	d->next_due = next;
	return ended;
}

/* One round over the driver's set: one chunk per due task, all of them
 * handed to the pool in one batch, then the ended ones handed back. Runs
 * without sx->mu. Returns how many ended. */
static unsigned round_robin(struct driver *d)
{
	uint64_t now = mono_ns();
	size_t ne = 0;

	for (size_t i = 0; i < d->n; i++) {
		struct run *r = d->v[i];
		int due;
		r->st = step_before(r, now, &due);
		if (!due)
			continue;
		d->e[ne] = (struct pool_emit){ .t = r->t, .data = r->s, .len = next_chunk(r->s) };
		d->er[ne++] = r;
	}
	pool_emit_batch(d->e, ne);
	for (size_t k = 0; k < ne; k++)
		d->er[k]->st = step_after(d->sx, d->er[k], d->e[k].rc, d->e[k].len, now);
	return reap(d);
}

/* ---- drivers ------------------------------------------------------------------ */

/* Under mu: the staying driver with the fewest tasks, or NULL if none. */
static struct driver *least_loaded(struct synth *sx)
{
	struct driver *best = NULL;
	for (size_t i = 0; i < sx->nd; i++) {
		struct driver *d = sx->d[i];
		if (!d->retire && !d->exited && (!best || d->load < best->load))
			best = d;
	}
	return best;
}

/* Under mu: append r to d's inbox. */
static void inbox_push(struct driver *d, struct run *r)
{
	r->next = NULL;
	if (d->in_tail)
		d->in_tail->next = r;
	else
		d->in_head = r;
	d->in_tail = r;
	d->load++;
	pthread_cond_signal(&d->cv);
}

/* Double the running set and the round's arrays. Driver thread. */
static int grow_set(struct driver *d)
{
	size_t c = d->cap ? d->cap * 2 : 64;
	struct run **v = realloc(d->v, c * sizeof *v);
	if (v)
		d->v = v;
	struct pool_emit *e = v ? realloc(d->e, c * sizeof *e) : NULL;
	if (e)
		d->e = e;
	struct run **er = e ? realloc(d->er, c * sizeof *er) : NULL;
	if (!er)
		return -1; /* what did grow stays, cap does not: still consistent */
	d->er = er;
	d->cap = c;
	return 0;
}

/* Move the taken inbox list into the running set. Driver thread, no lock.
 * Returns -1 if the set cannot grow (the runs stay on the list). */
static int take_inbox(struct driver *d, struct run **list)
{
	for (struct run *r = *list; r; r = *list) {
		if (d->n == d->cap && grow_set(d) < 0)
			return -1;
		*list = r->next;
		d->v[d->n++] = r;
		if (r->due_ns < d->next_due)
			d->next_due = r->due_ns;
	}
	return 0;
}

/* Under mu, on a retiring driver: give every task (set and inbox) to the
 * staying drivers, mid-stream. There is always one: alive >= 1. */
static void hand_over(struct synth *sx, struct driver *d)
{
	struct run *in = d->in_head;
	d->in_head = d->in_tail = NULL;
	for (struct run *r = in, *nx; r; r = nx) {
		nx = r->next;
		inbox_push(least_loaded(sx), r);
	}
	for (size_t i = 0; i < d->n; i++)
		inbox_push(least_loaded(sx), d->v[i]);
	d->n = 0;
	d->load = 0;
}

static void abs_mono(uint64_t at_ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(at_ns / 1000000000ull);
	ts->tv_nsec = (long)(at_ns % 1000000000ull);
}

/* Under mu: wait until there is a round to run. Returns 0 with the inbox
 * taken into *in, or -1 when the driver leaves (retired, or stop with
 * nothing left). */
static int driver_wait(struct synth *sx, struct driver *d, struct run **in)
{
	for (;;) {
		if (d->retire)
			return -1;
		if (d->in_head || d->wake || (d->n && d->next_due <= mono_ns()))
			break;
		if (!d->n && sx->stopping)
			return -1;
		if (!d->n) {
			pthread_cond_wait(&d->cv, &sx->mu);
			continue;
		}
		struct timespec ts;
		abs_mono(d->next_due, &ts);
		pthread_cond_timedwait(&d->cv, &sx->mu, &ts);
	}
	*in = d->in_head;
	d->in_head = d->in_tail = NULL;
	d->wake = 0;
	return 0;
}

/* Out of memory growing the set: the taken runs go back to the inbox front
 * (under mu) and are retried next round, after the set has shrunk. */
static void inbox_unshift(struct driver *d, struct run *list)
{
	if (!list)
		return;
	struct run *tail = list;
	while (tail->next)
		tail = tail->next;
	tail->next = d->in_head;
	if (!d->in_head)
		d->in_tail = tail;
	d->in_head = list;
}

static void *driver_main(void *arg)
{
	struct driver *d = arg;
	struct synth *sx = d->sx;
	struct run *in;

	pthread_mutex_lock(&sx->mu);
	while (driver_wait(sx, d, &in) == 0) {
		pthread_mutex_unlock(&sx->mu);
		int full = take_inbox(d, &in);
		unsigned ended = round_robin(d);
		pthread_mutex_lock(&sx->mu);
		d->load -= ended;
		if (full < 0)
			inbox_unshift(d, in);
	}
	if (d->retire)
		hand_over(sx, d);
	d->exited = 1;
	pthread_mutex_unlock(&sx->mu);
	return NULL;
}

/* ---- pool_executor_ops ------------------------------------------------------ */

static int synth_start(void *ctx, struct pool_task *t)
{
	struct synth *sx = ctx;
	const struct pool_synth_payload *sp = pool_task_payload(t);
	struct run *r = calloc(1, sizeof *r);
	if (!r)
		return -POOL_E_NOMEM;
	r->t = t;
	r->s = "";
	if (sp && sp->prompt) {
		r->s = sp->prompt;
		r->fail = strncmp(sp->prompt, "!fail", 5) == 0;
		r->max_tokens = sp->max_tokens;
	}
	while (is_space(*r->s))
		r->s++;
	r->due_ns = mono_ns();
	pthread_mutex_lock(&sx->mu);
	inbox_push(least_loaded(sx), r);
	pthread_mutex_unlock(&sx->mu);
	return 0;
}

static void synth_cancel(void *ctx, struct pool_task *t)
{
	struct synth *sx = ctx;
	(void)t; /* whichever driver has it checks every flag next round */
	pthread_mutex_lock(&sx->mu);
	for (size_t i = 0; i < sx->nd; i++) {
		if (!sx->d[i]->exited) {
			sx->d[i]->wake = 1;
			pthread_cond_signal(&sx->d[i]->cv);
		}
	}
	pthread_mutex_unlock(&sx->mu);
}

/* Under mu: start one more driver. */
static int spawn(struct synth *sx)
{
	if (sx->nd == sx->dcap) {
		size_t c = sx->dcap ? sx->dcap * 2 : 8;
		struct driver **v = realloc(sx->d, c * sizeof *v);
		if (!v)
			return -1;
		sx->d = v;
		sx->dcap = c;
	}
	struct driver *d = calloc(1, sizeof *d);
	pthread_condattr_t ca;
	if (!d)
		return -1;
	d->sx = sx;
	d->next_due = UINT64_MAX;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc || pthread_create(&d->tid, NULL, driver_main, d)) {
		if (!rc)
			pthread_cond_destroy(&d->cv);
		free(d);
		return -1;
	}
	sx->d[sx->nd++] = d;
	sx->alive++;
	return 0;
}

/* Join drivers that have exited; called without mu, from set_threads or
 * stop only (never concurrently: the pool serialises them). */
static void join_exited(struct synth *sx, int all)
{
	pthread_mutex_lock(&sx->mu);
	size_t nd = sx->nd;
	pthread_mutex_unlock(&sx->mu);
	for (size_t i = 0; i < nd; i++) {
		struct driver *d = sx->d[i];
		pthread_mutex_lock(&sx->mu);
		int ready = !d->joined && (all || d->exited);
		d->joined |= ready;
		pthread_mutex_unlock(&sx->mu);
		if (ready)
			pthread_join(d->tid, NULL);
	}
}

/* Under mu: forget joined drivers, so raising and lowering threads again and
 * again keeps the array as long as the drivers alive. Nobody points at a
 * joined driver: start, cancel and hand_over skip exited ones. */
static void prune_joined(struct synth *sx)
{
	size_t k = 0;
	for (size_t i = 0; i < sx->nd; i++) {
		struct driver *d = sx->d[i];
		if (!d->joined) {
			sx->d[k++] = d;
			continue;
		}
		pthread_cond_destroy(&d->cv);
		free(d->v);
		free(d->e);
		free(d->er);
		free(d);
	}
	sx->nd = k;
}

static int synth_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	struct synth *sx = ctx;
	int rc = 0;

	if (n == 0)
		n = 1;
	join_exited(sx, 0);
	pthread_mutex_lock(&sx->mu);
	prune_joined(sx);
	while (sx->alive < n && rc == 0)
		rc = spawn(sx);
	for (size_t i = sx->nd; i-- > 0 && sx->alive > n;) {
		struct driver *d = sx->d[i];
		if (!d->retire && !d->exited) {
			d->retire = 1; /* it hands its tasks over and exits */
			sx->alive--;
			pthread_cond_signal(&d->cv);
		}
	}
	*capacity = POOL_NO_CAP;
	rc = sx->alive ? 0 : -POOL_E_NOMEM;
	pthread_mutex_unlock(&sx->mu);
	return rc;
}

static void synth_stop(void *ctx)
{
	struct synth *sx = ctx;
	pthread_mutex_lock(&sx->mu);
	sx->stopping = 1;
	for (size_t i = 0; i < sx->nd; i++)
		pthread_cond_signal(&sx->d[i]->cv);
	pthread_mutex_unlock(&sx->mu);
	join_exited(sx, 1);
}

static void synth_free(void *ctx)
{
	struct synth *sx = ctx;
	synth_stop(sx); /* a no-op after pool_free's stop; not so if pool_new failed */
	for (size_t i = 0; i < sx->nd; i++) {
		struct driver *d = sx->d[i];
		pthread_cond_destroy(&d->cv);
		free(d->v);
		free(d->e);
		free(d->er);
		free(d);
	}
	free(sx->d);
	pthread_mutex_destroy(&sx->mu);
	free(sx);
}

static const struct pool_executor_ops synth_ops = {
	.start = synth_start,
	.cancel = synth_cancel,
	.set_threads = synth_set_threads,
	.stop = synth_stop,
	.free = synth_free,
};

/* Out of memory: an executor whose set_threads fails, so pool_new reports
 * it; ops is never NULL. */
static int nil_set_threads(void *ctx, unsigned n, unsigned *capacity)
{
	(void)ctx;
	(void)n;
	*capacity = 0;
	return -POOL_E_NOMEM;
}
static int nil_start(void *ctx, struct pool_task *t) { (void)ctx; (void)t; return -POOL_E_NOMEM; }
static void nil_free(void *ctx) { (void)ctx; }
static const struct pool_executor_ops nil_ops = {
	.start = nil_start, .set_threads = nil_set_threads, .free = nil_free,
};

struct pool_executor pool_synthetic_executor_new(double tokens_per_sec)
{
	struct pool_executor e = { &nil_ops, NULL };
	struct synth *sx = calloc(1, sizeof *sx);
	if (!sx || pthread_mutex_init(&sx->mu, NULL)) {
		free(sx);
		return e;
	}
	sx->step_ns = tokens_per_sec > 0 ? (uint64_t)(1e9 / tokens_per_sec) : 0;
	e.ops = &synth_ops;
	e.ctx = sx;
	return e;
}
