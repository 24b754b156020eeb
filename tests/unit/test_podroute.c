/* Transparent app connections (agent/core/podroute.c) on the running
 * kernel: in a fresh network namespace, a socket bound to a foreign client
 * address reaches a local server, which sees that address as its peer and
 * whose replies come back, only while the pod routing is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "core/netns.h"
#include "core/podroute.h"

struct ns {
    int fd; /* the test's pod netns */
};

/* A new netns for this thread's use through its fd; the thread returns to
 * its own netns at once. */
static int ns_new(void)
{
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(home >= 0);
    if (unshare(CLONE_NEWNET) == -1) {
        close(home);
        return -errno;
    }
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_int_equal(setns(home, CLONE_NEWNET), 0);
    close(home);
    return fd;
}

static void lo_up(int nsfd)
{
    int s = netns_socket(nsfd, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
}

/* ip addr add ADDR/len dev lo, inside the netns. */
static void lo_addr(int nsfd, int family, const void *addr, uint8_t plen)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    int fd = netns_socket(nsfd, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    assert_true(fd >= 0);
    struct mnl_socket *nl = mnl_socket_fdopen(fd);
    assert_non_null(nl);
    assert_int_equal(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
    nlh->nlmsg_seq = 1;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = (uint8_t)family;
    ifa->ifa_prefixlen = plen;
    ifa->ifa_flags = IFA_F_NODAD;
    ifa->ifa_index = 1;
    mnl_attr_put(nlh, IFA_LOCAL, family == AF_INET ? 4 : 16, addr);
    mnl_attr_put(nlh, IFA_ADDRESS, family == AF_INET ? 4 : 16, addr);
    assert_true(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) > 0);
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    assert_true(n > 0);
    assert_true(mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), NULL, NULL) >= 0);
    mnl_socket_close(nl);
}

static void sockaddr_of(int family, const char *ip, uint16_t port, struct sockaddr_storage *ss,
                        socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        *len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        *len = sizeof(*s6);
    }
}

/* Connects from `client` (a foreign address) to `server`:8080 in the netns
 * as meshd's app-facing socket does. Returns 1 when the handshake
 * completed within 500 ms and the server saw `client` as its peer, 0 when
 * it did not complete. */
static int transparent_connect(int nsfd, int family, const char *server, const char *client)
{
    struct sockaddr_storage ss, cs;
    socklen_t sslen, cslen;
    sockaddr_of(family, server, 8080, &ss, &sslen);
    sockaddr_of(family, client, 0, &cs, &cslen);
    int lsn = netns_socket(nsfd, family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lsn >= 0);
    int one = 1;
    setsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lsn, (struct sockaddr *)&ss, sslen) != 0)
        fail_msg("bind %s: %s", server, strerror(errno));
    assert_int_equal(listen(lsn, 4), 0);
    int c = netns_socket(nsfd, family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    unsigned int mark = PODROUTE_MARK;
    if (family == AF_INET)
        assert_int_equal(setsockopt(c, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)), 0);
    else
        assert_int_equal(setsockopt(c, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)), 0);
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
    if (bind(c, (struct sockaddr *)&cs, cslen) != 0)
        fail_msg("bind %s: %s", client, strerror(errno));
    int rc = connect(c, (struct sockaddr *)&ss, sslen);
    assert_true(rc == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    int soerr = -1;
    socklen_t len = sizeof(soerr);
    int ok = 0;
    if (poll(&p, 1, 500) == 1 && getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
        soerr == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int a = accept(lsn, (struct sockaddr *)&peer, &plen);
        assert_true(a >= 0);
        char got[INET6_ADDRSTRLEN];
        const void *ip = family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)&peer)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr;
        inet_ntop(family, ip, got, sizeof(got));
        assert_string_equal(got, client);
        /* And the app's bytes come back to the transparent socket. */
        assert_int_equal(write(a, "hi", 2), 2);
        struct pollfd r = {.fd = c, .events = POLLIN};
        char b[2];
        assert_int_equal(poll(&r, 1, 500), 1);
        assert_int_equal(read(c, b, 2), 2);
        close(a);
        ok = 1;
    }
    close(c);
    close(lsn);
    return ok;
}

static void app_sees_the_client_address_only_with_pod_routing(void **state)
{
    int nsfd = ns_new();
    if (nsfd == -EPERM) {
        skip(); /* not root: no namespaces */
        return;
    }
    assert_true(nsfd >= 0);
    lo_up(nsfd);
    struct in_addr a4;
    struct in6_addr a6;
    inet_pton(AF_INET, "10.77.0.2", &a4);
    inet_pton(AF_INET6, "fd77::2", &a6);
    lo_addr(nsfd, AF_INET, &a4, 32);
    lo_addr(nsfd, AF_INET6, &a6, 128);

    assert_int_equal(transparent_connect(nsfd, AF_INET, "10.77.0.2", "192.0.2.77"), 0);
    char err[256];
    assert_int_equal(podroute_install(nsfd, err, sizeof(err)), 0);
    assert_int_equal(podroute_install(nsfd, err, sizeof(err)), 0); /* idempotent */
    assert_int_equal(transparent_connect(nsfd, AF_INET, "10.77.0.2", "192.0.2.77"), 1);
    assert_int_equal(transparent_connect(nsfd, AF_INET6, "fd77::2", "2001:db8::77"), 1);
    podroute_remove(nsfd);
    assert_int_equal(transparent_connect(nsfd, AF_INET, "10.77.0.2", "192.0.2.78"), 0);
    assert_int_equal(transparent_connect(nsfd, AF_INET6, "fd77::2", "2001:db8::78"), 0);
    podroute_remove(nsfd); /* nothing left to remove: harmless */
    close(nsfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(app_sees_the_client_address_only_with_pod_routing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
