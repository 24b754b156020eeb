/* epoll event loop with deferred release (see loop.h). */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 128

struct loop {
    int epfd;
    bool stop;
    struct loop_deferred *deferred;
    struct loop_task *tasks, **tasks_tail; /* FIFO */
    uint64_t woke_ns;                      /* loop_woke_ns() */
};

int loop_new(struct loop **out)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1) {
        int err = -errno;
        free(loop);
        return err;
    }
    *out = loop;
    return 0;
}

static void loop_run_deferred(struct loop *loop)
{
    while (loop->deferred) {
        struct loop_deferred *d = loop->deferred;
        loop->deferred = d->next;
        d->fn(d);
    }
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    loop_run_deferred(loop);
    close(loop->epfd);
    free(loop);
}

int loop_add(struct loop *loop, struct loop_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) == -1)
        return -errno;
    io->events = events;
    io->registered = true;
    return 0;
}

int loop_set(struct loop *loop, struct loop_io *io, uint32_t events)
{
    if (!io->registered)
        return loop_add(loop, io, events);
    if (io->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
        return -errno;
    io->events = events;
    return 0;
}

void loop_del(struct loop *loop, struct loop_io *io)
{
    if (!io->registered)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = false;
    io->events = 0;
}

void loop_defer(struct loop *loop, struct loop_deferred *d)
{
    d->next = loop->deferred;
    loop->deferred = d;
}

void loop_task_queue(struct loop *loop, struct loop_task *t)
{
    if (t->queued)
        return;
    t->queued = true;
    t->next = NULL;
    if (loop->tasks)
        *loop->tasks_tail = t;
    else
        loop->tasks = t;
    loop->tasks_tail = &t->next;
}

/* Tasks may queue tasks (run in this pass, after the ones before them). */
static void loop_run_tasks(struct loop *loop)
{
    while (loop->tasks) {
        struct loop_task *t = loop->tasks;
        loop->tasks = t->next;
        t->queued = false;
        t->fn(t);
    }
}

void loop_stop(struct loop *loop)
{
    loop->stop = true;
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
    struct epoll_event events[LOOP_BATCH];
    if (loop->tasks) { /* queued outside a batch: not after a wait */
        loop_run_tasks(loop);
        loop_run_deferred(loop);
    }
    int n = epoll_wait(loop->epfd, events, LOOP_BATCH, timeout_ms);
    loop->woke_ns = loop_now_ns();
    if (n == -1)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct loop_io *io = events[i].data.ptr;
        /* An object deleted earlier in this batch stays allocated until
         * loop_run_deferred(); its io is unregistered, so skip it. */
        if (io->registered)
            io->cb(io, events[i].events);
    }
    loop_run_tasks(loop);
    loop_run_deferred(loop);
    return n;
}

int loop_run(struct loop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        int n = loop_run_once(loop, -1);
        if (n < 0)
            return n;
    }
    return 0;
}

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t loop_woke_ns(const struct loop *loop)
{
    return loop->woke_ns ? loop->woke_ns : loop_now_ns();
}
