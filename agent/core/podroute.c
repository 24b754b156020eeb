/* Pod-netns policy routing for transparent app connections (see podroute.h),
 * over rtnetlink with libmnl. */
#include "core/podroute.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include "core/netns.h"

/* The loopback device is ifindex 1 in every network namespace. */
#define LOOPBACK_IFINDEX 1

static int sysctl_set(int nsfd, const char *path, bool required)
{
    int fd = netns_open_file(nsfd, path, O_WRONLY);
    if (fd < 0)
        return required ? fd : 0;
    int rc = write(fd, "1\n", 2) == 2 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Sends one request and waits for its acknowledgement; 0 or -errno. */
static int rtnl_call(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    uint32_t portid = mnl_socket_get_portid(nl);
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0)
        return -errno;
    /* mnl_cb_run turns an NLMSG_ERROR into -1 with errno set. */
    return mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL) < 0 ? -errno : 0;
}

static int rule(struct mnl_socket *nl, int family, bool add)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
    nlh->nlmsg_flags = NLM_F_REQUEST | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
    struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
    frh->family = (uint8_t)family;
    frh->action = FR_ACT_TO_TBL;
    frh->table = RT_TABLE_UNSPEC; /* FRA_TABLE: ids above 255 */
    mnl_attr_put_u32(nlh, FRA_TABLE, PODROUTE_TABLE);
    mnl_attr_put_u32(nlh, FRA_PRIORITY, PODROUTE_PRIORITY);
    mnl_attr_put_u32(nlh, FRA_FWMARK, PODROUTE_MARK);
    mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
    int rc = rtnl_call(nl, nlh);
    return add && rc == -EEXIST ? 0 : rc;
}

static int local_default_route(struct mnl_socket *nl, int family, bool add)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = (uint8_t)family;
    rtm->rtm_table = RT_TABLE_UNSPEC; /* RTA_TABLE */
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_HOST;
    rtm->rtm_type = RTN_LOCAL;
    mnl_attr_put_u32(nlh, RTA_TABLE, PODROUTE_TABLE);
    mnl_attr_put_u32(nlh, RTA_OIF, LOOPBACK_IFINDEX);
    return rtnl_call(nl, nlh);
}

static struct mnl_socket *rtnl_open(int nsfd)
{
    int fd = netns_socket(nsfd, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    struct mnl_socket *nl = mnl_socket_fdopen(fd);
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        if (nl)
            mnl_socket_close(nl);
        else
            close(fd);
        errno = e;
        return NULL;
    }
    return nl;
}

static int install_family(struct mnl_socket *nl, int family, const char **what)
{
    bool v4 = family == AF_INET;
    *what = v4 ? "IPv4 rule" : "IPv6 rule";
    int rc = rule(nl, family, true);
    if (rc)
        return rc;
    *what = v4 ? "IPv4 route" : "IPv6 route";
    return local_default_route(nl, family, true);
}

int podroute_install(int nsfd, char *err, size_t errlen)
{
    int rc;
    if ((rc = sysctl_set(nsfd, "/proc/sys/net/ipv4/tcp_fwmark_accept", true)) != 0 ||
        (rc = sysctl_set(nsfd, "/proc/sys/net/ipv4/fwmark_reflect", true)) != 0 ||
        (rc = sysctl_set(nsfd, "/proc/sys/net/ipv6/fwmark_reflect", false)) != 0) {
        snprintf(err, errlen, "pod sysctls for transparent app connections: %s", strerror(-rc));
        return rc;
    }
    struct mnl_socket *nl = rtnl_open(nsfd);
    if (!nl) {
        rc = -errno;
        snprintf(err, errlen, "rtnetlink in the pod: %s", strerror(-rc));
        return rc;
    }
    const char *what;
    rc = install_family(nl, AF_INET, &what);
    if (rc == 0) {
        /* A pod without IPv6 answers EAFNOSUPPORT: IPv4 alone then. */
        int r6 = install_family(nl, AF_INET6, &what);
        if (r6 != -EAFNOSUPPORT)
            rc = r6;
    }
    if (rc)
        snprintf(err, errlen, "%s for transparent app connections: %s", what, strerror(-rc));
    mnl_socket_close(nl);
    return rc;
}

void podroute_remove(int nsfd)
{
    struct mnl_socket *nl = rtnl_open(nsfd);
    if (!nl)
        return;
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        rule(nl, families[i], false);
        local_default_route(nl, families[i], false);
    }
    mnl_socket_close(nl);
}
