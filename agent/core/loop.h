/* The event loop: one epoll instance per worker thread, nothing blocks on it.
 *
 * Users embed a `struct loop_io` in their own object and get called back with
 * the epoll events. Objects that die while their events may still be pending
 * in the current epoll batch are released through loop_defer(), which runs
 * the release after the batch is dispatched. */
#ifndef MESHD_CORE_LOOP_H
#define MESHD_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_io;

typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);

struct loop_io {
    int fd;
    uint32_t events; /* current interest, as registered */
    loop_io_cb cb;
    bool registered;
};

struct loop_deferred {
    struct loop_deferred *next;
    void (*fn)(struct loop_deferred *d);
};

/* Work queued for the end of the current batch, before deferred releases:
 * what several events of one batch produced leaves once (a session's TLS
 * records in one write, as h2o flushes its output). Queued outside a
 * batch, it runs before the next wait. Queuing a queued task does nothing;
 * the objects a task touches stay allocated until it ran (their release
 * is deferred, and deferred releases run after the tasks). */
struct loop_task {
    struct loop_task *next;
    void (*fn)(struct loop_task *t);
    bool queued;
};

int loop_new(struct loop **out);
void loop_free(struct loop *loop);

/* Registers io->fd with `events`; io->cb must be set. */
int loop_add(struct loop *loop, struct loop_io *io, uint32_t events);
/* Changes the interest set; a no-op when unchanged. */
int loop_set(struct loop *loop, struct loop_io *io, uint32_t events);
void loop_del(struct loop *loop, struct loop_io *io);

/* Runs until loop_stop(); returns 0 or -errno. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
/* Waits up to timeout_ms for one batch of events and dispatches it.
 * Returns the number of events, or -errno. */
int loop_run_once(struct loop *loop, int timeout_ms);
/* Runs d->fn(d) after the current batch of events (or at once when idle). */
void loop_defer(struct loop *loop, struct loop_deferred *d);

void loop_task_queue(struct loop *loop, struct loop_task *t);

/* Monotonic clock in nanoseconds. */
uint64_t loop_now_ns(void);
/* loop_now_ns() as the current batch's wait returned (loop_now_ns() before
 * the first): for stamps no finer than a batch needs, such as activity
 * for idle timeouts, which the data path sets several times a request. */
uint64_t loop_woke_ns(const struct loop *loop);

#endif
