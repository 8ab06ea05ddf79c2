/*
 * loop.c — the event loop: one epoll instance, run by one thread.
 *
 * DESIGN
 *   Everything the daemon waits for is a file descriptor: the listening
 *   socket, client sockets, a signalfd, the post queue's eventfd (every
 *   other thread reaches the loop through it: post.c) and a timerfd. Each
 *   has a struct loop_watch owned by the object behind the descriptor;
 *   epoll's data pointer is that watch. A "before sleep" hook runs after
 *   every batch of events (redis beforeSleep): the daemon uses it to free
 *   closed clients and flush output, so nothing is freed while the batch
 *   may still point at it.
 *
 *   The loop never blocks anywhere but in epoll_wait, and only the loop
 *   thread touches loop state.
 *
 * INVARIANTS
 *   A watch stays valid until loop_del() and the end of the current batch.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "plot/loop.h"

#define LOOP_BATCH 64

struct loop {
	int epfd;
	int stop;
	loop_hook_fn before_sleep;
	void *hook_ctx;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

void loop_set_before_sleep(struct loop *l, loop_hook_fn fn, void *ctx)
{
	l->before_sleep = fn;
	l->hook_ctx = ctx;
}

static int loop_ctl(struct loop *l, int op, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	return epoll_ctl(l->epfd, op, w->fd, &ev) < 0 ? -errno : 0;
}

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_ADD, w, events);
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_MOD, w, events);
}

void loop_del(struct loop *l, struct loop_watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->stop = 0; /* a loop may run again after it stopped */
	while (!l->stop) {
		int busy = l->before_sleep ? l->before_sleep(l, l->hook_ctx) : 0;
		if (l->stop)
			break;
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, busy ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = evs[i].data.ptr;
			w->fn(l, w, evs[i].events);
		}
	}
	if (l->before_sleep)
		l->before_sleep(l, l->hook_ctx);
	return 0;
}

/* ---- small descriptor helpers ------------------------------------------- */

uint64_t loop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void loop_fd_drain(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

int loop_timerfd_new(void)
{
	return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

/* Arm a timer ms from now, then every interval_ms (0: once); ms 0 disarms. */
int loop_timerfd_arm(int fd, uint64_t ms, uint64_t interval_ms)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_interval.tv_sec = (time_t)(interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}
