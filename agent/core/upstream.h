/* The one way meshd opens a connection on a pod's behalf: a non-blocking
 * TCP socket created inside the pod's netns, SO_MARK'd so the capture
 * programs let it through, optionally bound to a source, connecting. */
#ifndef MESHD_CORE_UPSTREAM_H
#define MESHD_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/capture.h"

/* DestinationRule connectionPool.tcp for one connection. */
struct upstream_tuning {
    uint32_t connect_timeout_ms; /* 0: Istio's default, 10 s */
    bool keepalive;              /* tcpKeepalive given */
    uint32_t keepalive_time_s, keepalive_interval_s, keepalive_probes; /* 0: the kernel's */
};

/* Returns the connecting socket (wait for EPOLLOUT, then check SO_ERROR)
 * or -errno. The connect timeout is TCP_USER_TIMEOUT, enforced by the
 * kernel at the SYN retransmissions; call upstream_connected() once the
 * connect succeeded, so that it does not also bound unacknowledged data
 * on the established connection. `t` NULL: defaults. */
int upstream_connect(int netns_fd, const struct meshd_addr *dst, const struct meshd_addr *bind_src,
                     uint32_t mark, const struct upstream_tuning *t);
void upstream_connected(int fd);
/* SO_ERROR of a socket whose connect finished: 0 or a positive errno. */
int upstream_connect_result(int fd);
/* Closes a TCP socket with a reset: the peer learns the connection failed
 * rather than seeing a FIN, a clean end of stream. Ignores fd < 0. */
void close_with_reset(int fd);

#endif
