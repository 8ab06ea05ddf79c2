/*
 * loop.h — the event loop (one epoll instance, one thread) and the one way
 * other threads reach it: the post queue.
 *
 * LOOP (lib/loop/loop.c)
 *   Everything the daemon waits for is a file descriptor with a struct
 *   loop_watch owned by the object behind it; epoll's data pointer is that
 *   watch. A before-sleep hook runs after every batch of events. Only the
 *   loop thread touches loop state. A watch stays valid until loop_del()
 *   and the end of the current batch.
 *
 * POST (lib/loop/post.c)
 *   Threads never call into loop-owned state: they post. post_send() queues
 *   (fn, ctx, arg); post_note() queues (fn, ctx, key) at most once until it
 *   is delivered, so a stream emitting a million chunks between two loop
 *   iterations is noted once. Posting never blocks for long (one mutex, no
 *   allocation in the steady state) and writes the queue's eventfd only when
 *   the queue goes from empty to non-empty, so a burst costs one wake-up.
 *   The loop delivers in posting order, each fn called as fn(ctx, key, arg,
 *   1) on the loop thread, for at most a time budget per wake-up; what is
 *   left waits for the next iteration (the loop is woken again), so other
 *   descriptors are served in between. post_free() calls every item still
 *   queued with live = 0: it must then only free what arg owns.
 */
#ifndef PLOT_LOOP_H
#define PLOT_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_watch;
typedef void (*loop_fn)(struct loop *l, struct loop_watch *w, uint32_t events);
/* Runs before every wait; returns nonzero when it left work that no
 * descriptor will announce: the next wait then only polls. */
typedef int (*loop_hook_fn)(struct loop *l, void *ctx);
struct loop_watch {
	int fd;
	loop_fn fn;
};

struct loop *loop_new(void);
void loop_free(struct loop *l);
void loop_set_before_sleep(struct loop *l, loop_hook_fn fn, void *ctx);
int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);
void loop_del(struct loop *l, struct loop_watch *w);
int loop_run(struct loop *l);           /* until loop_stop; 0 or -errno */
void loop_stop(struct loop *l);
int loop_timerfd_new(void);
int loop_timerfd_arm(int fd, uint64_t ms, uint64_t interval_ms);
void loop_fd_drain(int fd);             /* read one counter (eventfd, timerfd) */
uint64_t loop_now_ns(void);             /* CLOCK_MONOTONIC, the pools' clock too */

/* ---- post: threads -> loop ------------------------------------------------ */

struct post;
/* live: 1 delivered on the loop thread; 0 discarded at post_free. */
typedef void (*post_fn)(void *ctx, uint64_t key, void *arg, int live);

/* A queue delivered on l's thread, budget_us microseconds at most per wake-up
 * (0 = no bound). NULL on error (errno set). */
struct post *post_new(struct loop *l, uint64_t budget_us);
/* Loop thread, after the loop stopped: discard what is queued, free. */
void post_free(struct post *p);
/* Any thread. 0, or -1 when out of memory (nothing queued; the caller still
 * owns arg). */
int post_send(struct post *p, post_fn fn, void *ctx, void *arg);
/* Any thread: queue fn(ctx, key) unless it is already queued and not yet
 * delivered. Out of memory drops the note but still wakes the loop. */
void post_note(struct post *p, post_fn fn, void *ctx, uint64_t key);
/* Loop thread: deliver everything queued now, ignoring the budget (a
 * shutdown that must see every last note). */
void post_flush(struct post *p);

#endif
