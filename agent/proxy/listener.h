/* In-pod listeners: a listening socket created inside a pod's netns and
 * served by the agent's loop, handing each accepted socket to a callback. */
#ifndef MESHD_PROXY_LISTENER_H
#define MESHD_PROXY_LISTENER_H

#include <sys/socket.h>

#include "core/loop.h"
#include "meshd/capture.h"

struct listener;
typedef void (*listener_accept_cb)(struct listener *l, int fd, const struct sockaddr *peer,
                                   socklen_t peerlen);

struct listener {
    struct loop_io io; /* io.fd -1 when closed */
    struct loop *loop; /* borrowed */
    listener_accept_cb on_accept;
    void *ctx;
};

/* Binds `addr` inside netns `netns_fd` (IPV6_V6ONLY for IPv6). 0 or -errno. */
int listener_open(struct listener *l, struct loop *loop, int netns_fd,
                  const struct meshd_addr *addr, listener_accept_cb cb, void *ctx);
void listener_close(struct listener *l);

/* 127.0.0.1:port or [::1]:port; 0.0.0.0:port or [::]:port when !loopback. */
struct meshd_addr listener_addr(int family, uint16_t port, int loopback);

#endif
