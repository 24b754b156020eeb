/* Connects from inside a pod netns, registered as meshd's own (see
 * upstream.h). */
#include "core/upstream.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "core/addr.h"
#include "core/netns.h"
#include "core/podroute.h"

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
    struct meshd_own v = {.agent_pid = o->agent_pid};
    int err = bpf_map_update_elem(o->own_map_fd, &fd, &v, BPF_NOEXIST);
    return err < 0 ? err : 0;
}

void upstream_connected(int fd)
{
    unsigned int none = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &none, sizeof(none));
}

/* A source that is the client's own address: bindable although not local,
 * and marked for the pod's return route (core/podroute.h). */
static int set_transparent(int fd, int family)
{
    int one = 1;
    unsigned int mark = PODROUTE_MARK;
    int rc = family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one))
                               : setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
    if (rc == -1 || setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1)
        return -errno;
    return 0;
}

/* Names a transparent connection to the pod's sk_lookup program (the
 * source port is known once bound): without the entry the program would
 * steer it back to meshd's 15006 like any connection from outside. */
static int name_self(int fd, const struct meshd_addr *dst, int map_fd, struct meshd_self_key *k)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct meshd_addr local;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -errno;
    if (addr_from_sockaddr((struct sockaddr *)&ss, len, &local) != 0)
        return -EAFNOSUPPORT;
    memset(k, 0, sizeof(*k));
    k->family = dst->family;
    k->local_port = dst->port;
    k->remote_port = local.port;
    size_t n = dst->family == MESHD_AF_INET ? 4 : 16;
    memcpy(k->local, dst->addr, n);
    memcpy(k->remote, local.addr, n);
    uint8_t one = 1;
    return bpf_map_update_elem(map_fd, k, &one, BPF_ANY) == 0 ? 0 : -errno;
}

int upstream_connect(int netns_fd, const struct meshd_addr *dst,
                     const struct upstream_source *bind_src, const struct upstream_owner *owner,
                     const struct upstream_tuning *t)
{
    struct sockaddr_storage ss, src;
    socklen_t sslen, srclen;
    int rc = addr_to_sockaddr(dst, &ss, &sslen);
    if (rc)
        return rc;
    /* A bound source is meshd's app-facing side (127.0.0.6, the pod's own
     * IPv6 address, or the client's): never towards one of meshd's own in-pod ports,
     * which would have meshd accept its own connection. The proxies
     * refuse these earlier; this is the last line. */
    if (bind_src && meshd_port_in_pod(ntohs(dst->port)))
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
        if (addr_to_sockaddr(&bind_src->addr, &src, &srclen) != 0 ||
            src.ss_family != ss.ss_family) {
            errno = EAFNOSUPPORT;
            goto fail;
        }
        if (bind_src->transparent && (rc = set_transparent(fd, ss.ss_family)) != 0) {
            errno = -rc;
            goto fail;
        }
        if (bind(fd, (struct sockaddr *)&src, srclen) == -1)
            goto fail;
    }
    struct meshd_self_key self;
    bool named = bind_src && bind_src->transparent;
    if (named && (rc = name_self(fd, dst, bind_src->self_map_fd, &self)) != 0) {
        errno = -rc;
        goto fail;
    }
    if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 && errno != EINPROGRESS) {
        if (named)
            bpf_map_delete_elem(bind_src->self_map_fd, &self);
        goto fail;
    }
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
