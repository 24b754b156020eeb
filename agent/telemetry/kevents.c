/* Ring-buffer consumer on the event loop (see kevents.h). */
#include "telemetry/kevents.h"

#include <errno.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "core/log.h"
#include "core/loop.h"

struct kevents {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    struct ring_buffer *rb;
    kevents_fn fn;
    void *ctx;
    uint64_t received, malformed;
};

static int on_sample(void *ctx, void *data, size_t size)
{
    struct kevents *k = ctx;
    if (size < sizeof(struct meshd_conn_event)) {
        k->malformed++;
        return 0;
    }
    k->received++;
    k->fn(k->ctx, data);
    return 0;
}

static void on_readable(struct loop_io *io, uint32_t events)
{
    struct kevents *k = (struct kevents *)io;
    int n = ring_buffer__consume(k->rb);
    if (n < 0)
        log_ratelimited(LOG_WARN, "telemetry: ring buffer: %d", n);
}

int kevents_new(struct loop *loop, int ring_fd, kevents_fn fn, void *ctx, struct kevents **out)
{
    struct kevents *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->loop = loop;
    k->fn = fn;
    k->ctx = ctx;
    k->rb = ring_buffer__new(ring_fd, on_sample, k, NULL);
    if (!k->rb) {
        int err = -errno;
        free(k);
        return err;
    }
    k->io.fd = ring_buffer__epoll_fd(k->rb);
    k->io.cb = on_readable;
    int err = loop_add(loop, &k->io, EPOLLIN);
    if (err) {
        ring_buffer__free(k->rb);
        free(k);
        return err;
    }
    *out = k;
    return 0;
}

void kevents_free(struct kevents *k)
{
    if (!k)
        return;
    loop_del(k->loop, &k->io);
    ring_buffer__free(k->rb);
    free(k);
}

uint64_t kevents_received(const struct kevents *k)
{
    return k->received;
}
