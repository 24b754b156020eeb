/* The one way meshd opens a connection on a pod's behalf: a non-blocking
 * TCP socket created inside the pod's netns, SO_MARK'd so the capture
 * programs let it through, optionally bound to a source, connecting. */
#ifndef MESHD_CORE_UPSTREAM_H
#define MESHD_CORE_UPSTREAM_H

#include <stdint.h>

#include "meshd/capture.h"

/* Returns the connecting socket (wait for EPOLLOUT, then check SO_ERROR)
 * or -errno. */
int upstream_connect(int netns_fd, const struct meshd_addr *dst, const struct meshd_addr *bind_src,
                     uint32_t mark);
/* SO_ERROR of a socket whose connect finished: 0 or a positive errno. */
int upstream_connect_result(int fd);
/* Closes a TCP socket with a reset: the peer learns the connection failed
 * rather than seeing a FIN, a clean end of stream. Ignores fd < 0. */
void close_with_reset(int fd);

#endif
