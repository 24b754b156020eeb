/* Marked connects from inside a pod netns (see upstream.h). */
#include "core/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/netns.h"

/* Bounds a connect to an unresponsive destination (SYN retries). */
#define UPSTREAM_USER_TIMEOUT_MS 10000

int upstream_connect(int netns_fd, const struct meshd_addr *dst, const struct meshd_addr *bind_src,
                     uint32_t mark)
{
    struct sockaddr_storage ss, src;
    socklen_t sslen, srclen;
    int rc = addr_to_sockaddr(dst, &ss, &sslen);
    if (rc)
        return rc;
    int fd = netns_socket(netns_fd, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    unsigned int timeout = UPSTREAM_USER_TIMEOUT_MS;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1)
        goto fail; /* unmarked, our own connect would be captured again */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
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
