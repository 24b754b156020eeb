/* Periodic timerfd callback (see ticker.h). */
#include "core/ticker.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void ticker_on_io(struct loop_io *io, uint32_t events)
{
    struct ticker *t = (struct ticker *)io;
    uint64_t expirations;
    if (read(io->fd, &expirations, sizeof(expirations)) == sizeof(expirations))
        t->fn(t, loop_now_ns());
}

int ticker_start(struct ticker *t, struct loop *loop, unsigned interval_ms,
                 void (*fn)(struct ticker *t, uint64_t now_ns), void *ctx)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd == -1)
        return -errno;
    struct itimerspec its = {
        .it_interval = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000L},
    };
    its.it_value = its.it_interval;
    if (timerfd_settime(fd, 0, &its, NULL) == -1) {
        int err = -errno;
        close(fd);
        return err;
    }
    t->io.fd = fd;
    t->io.cb = ticker_on_io;
    t->loop = loop;
    t->fn = fn;
    t->ctx = ctx;
    int err = loop_add(loop, &t->io, EPOLLIN);
    if (err) {
        close(fd);
        t->io.fd = -1;
    }
    return err;
}

void ticker_stop(struct ticker *t)
{
    if (!t->loop || t->io.fd < 0)
        return;
    loop_del(t->loop, &t->io);
    close(t->io.fd);
    t->io.fd = -1;
}
