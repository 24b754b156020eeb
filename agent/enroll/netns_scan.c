/* Running pods' namespaces by address (see netns_scan.h). */
#include "enroll/netns_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/netns.h"

struct addrs {
    struct meshd_addr *v;
    size_t n, max;
};

static int on_addr(const struct nlmsghdr *nlh, void *data)
{
    struct addrs *a = data;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (ifa->ifa_scope != RT_SCOPE_UNIVERSE || a->n >= a->max)
        return MNL_CB_OK;
    const struct nlattr *attr;
    mnl_attr_for_each(attr, nlh, sizeof(*ifa))
    {
        if (mnl_attr_get_type(attr) != IFA_ADDRESS)
            continue;
        struct meshd_addr *m = &a->v[a->n];
        memset(m, 0, sizeof(*m));
        if (ifa->ifa_family == AF_INET && mnl_attr_get_payload_len(attr) == 4) {
            m->family = MESHD_AF_INET;
            memcpy(m->addr, mnl_attr_get_payload(attr), 4);
        } else if (ifa->ifa_family == AF_INET6 && mnl_attr_get_payload_len(attr) == 16) {
            m->family = MESHD_AF_INET6;
            memcpy(m->addr, mnl_attr_get_payload(attr), 16);
        } else {
            continue;
        }
        a->n++;
        break;
    }
    return MNL_CB_OK;
}

int netns_addresses(const char *path, struct meshd_addr *out, size_t max)
{
    int nsfd = netns_open(path);
    if (nsfd < 0)
        return nsfd;
    int fd = netns_socket(nsfd, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    close(nsfd);
    if (fd < 0)
        return fd;
    struct mnl_socket *nl = mnl_socket_fdopen(fd);
    if (!nl) {
        close(fd);
        return -ENOMEM;
    }
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int err = mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ? -errno : 0;
    char buf[16384];
    struct addrs a = {out, 0, max};
    if (!err) {
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETADDR;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        nlh->nlmsg_seq = (uint32_t)time(NULL);
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = AF_UNSPEC;
        uint32_t seq = nlh->nlmsg_seq, portid = mnl_socket_get_portid(nl);
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
            err = -errno;
        /* A dump ends with NLMSG_DONE (mnl_cb_run returns 0); bounded. */
        for (int i = 0; !err && i < 256; i++) {
            ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
            if (n <= 0) {
                err = n < 0 ? -errno : -EIO;
                break;
            }
            int rc = mnl_cb_run(buf, (size_t)n, seq, portid, on_addr, &a);
            if (rc <= 0) {
                err = rc < 0 ? -errno : 0;
                break;
            }
        }
    }
    mnl_socket_close(nl);
    return err ? err : (int)a.n;
}

static bool seen_ino(const ino_t *inos, size_t n, ino_t ino)
{
    for (size_t i = 0; i < n; i++)
        if (inos[i] == ino)
            return true;
    return false;
}

static void consider(const char *path, ino_t self, ino_t *inos, size_t *ninos,
                     struct netns_found *out, size_t max, size_t *nout)
{
    struct stat st;
    if (*nout >= max || *ninos >= NETNS_SCAN_MAX || stat(path, &st) != 0 || st.st_ino == self ||
        seen_ino(inos, *ninos, st.st_ino))
        return;
    inos[(*ninos)++] = st.st_ino;
    struct netns_found *f = &out[*nout];
    if (snprintf(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path))
        return;
    int n = netns_addresses(path, f->ips, sizeof(f->ips) / sizeof(f->ips[0]));
    if (n > 0) {
        f->nips = (size_t)n;
        (*nout)++;
    }
}

int netns_scan(const char *const *dirs, int proc, struct netns_found *out, size_t max)
{
    static const char *const def[] = {"/var/run/netns", NULL};
    ino_t *inos = calloc(NETNS_SCAN_MAX, sizeof(*inos));
    if (!inos)
        return -ENOMEM;
    struct stat st;
    ino_t self = stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
    size_t ninos = 0, nout = 0;
    char path[512];
    for (const char *const *d = dirs ? dirs : def; *d; d++) {
        DIR *dir = opendir(*d);
        struct dirent *e;
        while (dir && (e = readdir(dir))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", *d, e->d_name);
            consider(path, self, inos, &ninos, out, max, &nout);
        }
        if (dir)
            closedir(dir);
    }
    DIR *p = proc ? opendir("/proc") : NULL;
    struct dirent *e;
    while (p && (e = readdir(p))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
        consider(path, self, inos, &ninos, out, max, &nout);
    }
    if (p)
        closedir(p);
    free(inos);
    return (int)nout;
}
