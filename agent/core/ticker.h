/* A periodic callback on the event loop (timerfd), for housekeeping that
 * scans: idle HBONE sessions, handshake deadlines, certificate renewal. */
#ifndef MESHD_CORE_TICKER_H
#define MESHD_CORE_TICKER_H

#include <stdint.h>

#include "core/loop.h"

struct ticker {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    void (*fn)(struct ticker *t, uint64_t now_ns);
    void *ctx;
};

int ticker_start(struct ticker *t, struct loop *loop, unsigned interval_ms,
                 void (*fn)(struct ticker *t, uint64_t now_ns), void *ctx);
void ticker_stop(struct ticker *t);

#endif
