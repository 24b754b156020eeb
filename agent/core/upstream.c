/* Connects from inside a pod netns, registered as meshd's own (see
 * upstream.h). */
#include "core/upstream.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "core/addr.h"
#include "core/netns.h"

/* Bounds a connect to an unresponsive destination (SYN retries). */
#define UPSTREAM_USER_TIMEOUT_MS 10000

static void set_keepalive(int fd, const struct upstream_tuning *t)
{
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    int v;
    if ((v = (int)t->keepalive_time_s) > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
    if ((v = (int)t->keepalive_interval_s) > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
    if ((v = (int)t->keepalive_probes) > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
}

/* Adds `fd` to meshd_own. Must precede connect(): the capture programs
 * decide at connect() time. */
static int register_own(const struct upstream_owner *o, int fd)
{
    if (o->own_map_fd == UPSTREAM_NO_CAPTURE)
        return 0;
    struct meshd_own v = {.agent_pid = (uint32_t)getpid()};
    int err = bpf_map_update_elem(o->own_map_fd, &fd, &v, BPF_NOEXIST);
    return err < 0 ? err : 0;
}

void upstream_connected(int fd)
{
    unsigned int none = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &none, sizeof(none));
}

int upstream_connect(int netns_fd, const struct meshd_addr *dst, const struct meshd_addr *bind_src,
                     const struct upstream_owner *owner, const struct upstream_tuning *t)
{
    struct sockaddr_storage ss, src;
    socklen_t sslen, srclen;
    int rc = addr_to_sockaddr(dst, &ss, &sslen);
    if (rc)
        return rc;
    /* A bound source is meshd's app-facing side (127.0.0.6 or the pod's
     * own IPv6 address): never towards one of meshd's own in-pod ports,
     * which would have meshd accept its own connection. The proxies
     * refuse these earlier; this is the last line. */
    uint16_t port = ntohs(dst->port);
    if (bind_src &&
        (port == MESHD_PORT_OUTBOUND || port == MESHD_PORT_INBOUND || port == MESHD_PORT_HBONE))
        return -ELOOP;
    int fd = netns_socket(netns_fd, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    /* Fail closed: unregistered, our own connect would be captured again
     * (and loop back into meshd). */
    if ((rc = register_own(owner, fd)) != 0) {
        close(fd);
        return rc;
    }
    int one = 1;
    unsigned int timeout =
        t && t->connect_timeout_ms ? t->connect_timeout_ms : UPSTREAM_USER_TIMEOUT_MS;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &owner->mark, sizeof(owner->mark)) == -1)
        goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
    if (t && t->keepalive)
        set_keepalive(fd, t);
    if (bind_src) {
        if (addr_to_sockaddr(bind_src, &src, &srclen) != 0 || src.ss_family != ss.ss_family) {
            errno = EAFNOSUPPORT;
            goto fail;
        }
        if (bind(fd, (struct sockaddr *)&src, srclen) == -1)
            goto fail;
    }
    if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 && errno != EINPROGRESS)
        goto fail;
    return fd;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

int upstream_connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        return errno;
    return soerr;
}

void close_with_reset(int fd)
{
    if (fd < 0)
        return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}
