/* Kernel connection events: drains the sockops program's ring buffer on
 * the event loop (libbpf ring_buffer, its epoll fd in our loop) and hands
 * each event to a callback. Never blocks the kernel side: a full ring drops
 * and counts (MESHD_STAT_EVENT_DROPS) rather than wait for us. */
#ifndef MESHD_TELEMETRY_KEVENTS_H
#define MESHD_TELEMETRY_KEVENTS_H

#include <stdint.h>

#include "meshd/telemetry.h"

struct loop;
struct kevents;

typedef void (*kevents_fn)(void *ctx, const struct meshd_conn_event *ev);

int kevents_new(struct loop *loop, int ring_fd, kevents_fn fn, void *ctx, struct kevents **out);
void kevents_free(struct kevents *k);
uint64_t kevents_received(const struct kevents *k);

#endif
