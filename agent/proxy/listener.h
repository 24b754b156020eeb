/* In-pod listeners: a listening socket created inside a pod's netns and
 * served by the agent's loop, handing each accepted socket to a callback. */
#ifndef MESHD_PROXY_LISTENER_H
#define MESHD_PROXY_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "core/upstream.h"
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

struct pod;

/* A pod's IPv4 and IPv6 listeners on `port` (loopback or any address).
 * IPv4 is required; a pod without IPv6 gets a warning and l[1].io.fd -1.
 * `what` names the proxy in that warning. */
int listener_open_pod(struct listener l[2], struct loop *loop, const struct pod *pod, uint16_t port,
                      int loopback, listener_accept_cb cb, void *ctx, const char *what);
void listener_close_pod(struct listener l[2]);

/* Where meshd connects to a pod's app at `dst` from, for `client` (the
 * plaintext peer, or the HBONE tunnel's source pod; NULL: unknown): the
 * client's own address, transparently, when the pod has the return route
 * (pod->app_source_transparent), so the app sees its real client as with
 * ztunnel in-pod. Else 127.0.0.6 for IPv4, the pod's own address for IPv6
 * (replies to ::1 from a global address can leave the pod). The sk_lookup
 * program leaves all of these alone (they arrive over the pod's lo). */
struct upstream_source listener_app_source(const struct pod *pod, const struct meshd_addr *client,
                                           const struct meshd_addr *dst);

/* Self-connection guards. The invariant (docs/ARCHITECTURE.md): a
 * connection meshd opens is never accepted by meshd again, and nothing
 * meshd proxies is sent to one of its own in-pod ports
 * (meshd_port_in_pod, meshd/capture.h). */

/* 127.0.0.0/8, ::1 or an IPv4-mapped loopback address. */
bool listener_addr_is_loopback(const struct meshd_addr *a);
/* Is `a` (port ignored) one of the pod's addresses? A pod whose addresses
 * enrollment was not told: any address that is not loopback. */
bool listener_is_pod_addr(const struct pod *pod, const struct meshd_addr *a);
/* Could `peer`, seen on a socket whose local address is `local`, be meshd
 * itself? True for a loopback peer (listener_app_source's 127.0.0.6, or
 * anything else on the pod's loopback) and for an IPv6 peer that is the
 * local address (the IPv6 app source). */
bool listener_peer_may_be_meshd(const struct meshd_addr *peer, const struct meshd_addr *local);

#endif
