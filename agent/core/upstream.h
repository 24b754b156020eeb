/* The one way meshd opens a connection on a pod's behalf: a non-blocking
 * TCP socket created inside the pod's netns, registered as meshd's own so
 * the capture programs let it through, optionally bound to a source,
 * connecting. */
#ifndef MESHD_CORE_UPSTREAM_H
#define MESHD_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/capture.h"

/* Who meshd's upstream sockets belong to, for the capture programs
 * (bpf/capture.bpf.c). Each socket gets an entry in the meshd_own socket
 * storage before connect(): that entry, which a pod cannot write, is what
 * keeps meshd's own connect from being captured again. The mark is set too
 * (Istio's convention for its proxy's sockets; the capture counts a mark
 * without an entry as forged) but exempts nothing. */
struct upstream_owner {
    uint32_t mark;
    /* borrowed: the meshd_own map (capture_owner()). A registration that
     * fails fails the connect, so a zero-initialised owner (fd 0) connects
     * nothing. UPSTREAM_NO_CAPTURE (-1) skips registration: only for
     * processes with no capture programs to escape, the unit tests. */
    int own_map_fd;
    uint32_t agent_pid; /* written into each registration, for debugging */
};
#define UPSTREAM_NO_CAPTURE (-1)

/* Where meshd's connection to an app comes from. A local address
 * (127.0.0.6; the pod's own for IPv6), or the client's own, `transparent`:
 * IP_TRANSPARENT, marked PODROUTE_MARK, so that the pod's routing
 * (core/podroute) returns the app's replies to meshd. */
struct upstream_source {
    struct meshd_addr addr; /* port 0 */
    bool transparent;
    /* With `transparent`: the pod's meshd_in_self map (borrowed), where the
     * connection is named before connect() so that the pod's sk_lookup
     * program hands it to the app instead of back to meshd. */
    int self_map_fd;
};

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
int upstream_connect(int netns_fd, const struct meshd_addr *dst, const struct upstream_source *src,
                     const struct upstream_owner *owner, const struct upstream_tuning *t);
void upstream_connected(int fd);
/* SO_ERROR of a socket whose connect finished: 0 or a positive errno. */
int upstream_connect_result(int fd);
/* Closes a TCP socket with a reset: the peer learns the connection failed
 * rather than seeing a FIN, a clean end of stream. Ignores fd < 0. */
void close_with_reset(int fd);

#endif
