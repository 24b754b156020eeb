/* In-pod listening sockets (see listener.h). */
#include "proxy/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/log.h"
#include "core/netns.h"
#include "core/upstream.h"
#include "enroll/pods.h"

#define ACCEPT_BATCH 64

/* One descriptor held in reserve. Out of files, accept() fails with EMFILE
 * and leaves the connection queued: the listener stays readable and the
 * loop would spin on it. Giving the reserve up lets accept() take the
 * connection, which is reset at once (fail closed), and the reserve is
 * taken back. Process-wide because file limits are; the loop that uses it
 * is single-threaded. */
static int reserve_fd = -1;

static void reserve_take(void)
{
    if (reserve_fd < 0)
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of files: refuses the connection at the head of the queue. */
static bool refuse_one(int lfd)
{
    if (reserve_fd < 0)
        return false;
    close(reserve_fd);
    reserve_fd = -1;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close_with_reset(fd);
    reserve_take();
    return fd >= 0;
}

static void listener_on_io(struct loop_io *io, uint32_t events)
{
    struct listener *l = (struct listener *)io;
    /* Bounded per wakeup so one busy pod cannot starve the others. */
    for (int i = 0; i < ACCEPT_BATCH && l->io.fd >= 0; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            int err = errno;
            if (err == EMFILE || err == ENFILE) {
                log_ratelimited(LOG_WARN, "listener: out of open files; connection refused");
                if (refuse_one(io->fd))
                    continue;
            } else if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
                log_ratelimited(LOG_WARN, "listener: accept: %s", strerror(err));
            }
            return;
        }
        /* Request/response traffic through a proxy: never wait on Nagle
         * (it meets the peer's delayed ACK at 40 ms a round). */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->on_accept(l, fd, (struct sockaddr *)&peer, peerlen);
    }
}

struct meshd_addr listener_addr(int family, uint16_t port, int loopback)
{
    struct meshd_addr a = {.family = family == AF_INET ? MESHD_AF_INET : MESHD_AF_INET6,
                           .port = htons(port)};
    if (loopback && family == AF_INET)
        a.addr[0] = 127, a.addr[3] = 1;
    else if (loopback)
        a.addr[15] = 1;
    return a;
}

int listener_open(struct listener *l, struct loop *loop, int netns_fd,
                  const struct meshd_addr *addr, listener_accept_cb cb, void *ctx)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(l, 0, sizeof(*l));
    l->io.fd = -1;
    int err = addr_to_sockaddr(addr, &ss, &len);
    if (err)
        return err;
    int fd = netns_socket(netns_fd, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 4096) == -1) {
        err = -errno;
        close(fd);
        return err;
    }
    reserve_take();
    l->io.fd = fd;
    l->io.cb = listener_on_io;
    l->loop = loop;
    l->on_accept = cb;
    l->ctx = ctx;
    err = loop_add(loop, &l->io, EPOLLIN);
    if (err) {
        close(fd);
        l->io.fd = -1;
    }
    return err;
}

void listener_close(struct listener *l)
{
    if (l->io.fd < 0)
        return;
    loop_del(l->loop, &l->io);
    close(l->io.fd);
    l->io.fd = -1;
}

int listener_open_pod(struct listener l[2], struct loop *loop, const struct pod *pod, uint16_t port,
                      int loopback, listener_accept_cb cb, void *ctx, const char *what)
{
    struct meshd_addr a4 = listener_addr(AF_INET, port, loopback);
    struct meshd_addr a6 = listener_addr(AF_INET6, port, loopback);
    l[1].io.fd = -1;
    int err = listener_open(&l[0], loop, pod->netns_fd, &a4, cb, ctx);
    if (err)
        return err;
    err = listener_open(&l[1], loop, pod->netns_fd, &a6, cb, ctx);
    if (err)
        log_warn("%s: %s/%s: no IPv6 listener on %u (%s); IPv6 will be refused", what, pod->ns,
                 pod->name, port, strerror(-err));
    return 0;
}

void listener_close_pod(struct listener l[2])
{
    listener_close(&l[0]);
    listener_close(&l[1]);
}

struct upstream_source listener_app_source(const struct pod *pod, const struct meshd_addr *client,
                                           const struct meshd_addr *dst)
{
    struct upstream_source s = {.addr = {.family = dst->family}};
    if (pod->app_source_transparent && client && client->family == dst->family &&
        !listener_addr_is_loopback(client)) {
        s.addr = *client;
        s.addr.port = 0;
        s.transparent = true;
        s.self_map_fd = pod->app_source_self_map;
    } else if (dst->family == MESHD_AF_INET) {
        s.addr.addr[0] = 127, s.addr.addr[3] = 6;
    } else {
        s.addr = *dst;
        s.addr.port = 0;
    }
    return s;
}

bool listener_addr_is_loopback(const struct meshd_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (a->family == MESHD_AF_INET)
        return a->addr[0] == 127;
    return memcmp(a->addr, one, 16) == 0 ||
           (memcmp(a->addr, mapped, 12) == 0 && a->addr[12] == 127);
}

bool listener_is_pod_addr(const struct pod *pod, const struct meshd_addr *a)
{
    if (listener_addr_is_loopback(a))
        return false;
    if (pod->nips == 0)
        return true;
    struct meshd_addr ip = *a;
    ip.port = 0;
    for (size_t i = 0; i < pod->nips; i++)
        if (addr_equal(&pod->ips[i], &ip))
            return true;
    return false;
}

bool listener_peer_may_be_meshd(const struct meshd_addr *peer, const struct meshd_addr *local)
{
    if (listener_addr_is_loopback(peer))
        return true;
    return peer->family == MESHD_AF_INET6 && local->family == MESHD_AF_INET6 &&
           memcmp(peer->addr, local->addr, 16) == 0;
}
