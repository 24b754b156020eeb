/* Socket creation inside other network namespaces (see netns.h). */
#include "core/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <stdlib.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* The calling thread's own netns, opened once per thread: every proxied
 * connection creates a socket in a pod netns and comes back here, and
 * re-opening /proc for each one was a measurable share of connection
 * setup. Thread-local because setns() is per thread. */
static __thread int home_netns = -1;

static int home_netns_fd(void)
{
    if (home_netns == -1)
        home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return home_netns;
}

int netns_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    struct statfs sfs;
    if (fstatfs(fd, &sfs) == -1 || (sfs.f_type != NSFS_MAGIC && sfs.f_type != PROC_SUPER_MAGIC)) {
        close(fd);
        return -EINVAL;
    }
    /* setns() with CLONE_NEWNET fails with EINVAL when fd is another kind
     * of namespace: probe now so enrollment errors are caught up front. */
    int self = home_netns_fd();
    if (self == -1) {
        int err = -errno;
        close(fd);
        return err;
    }
    int rc = setns(fd, CLONE_NEWNET);
    int err = rc == -1 ? -errno : 0;
    if (rc == 0 && setns(self, CLONE_NEWNET) == -1)
        abort(); /* stuck in another netns would be a security bug */
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* Enters netns `nsfd`; returns the home netns fd to come back with, or
 * -errno. */
static int enter(int nsfd)
{
    int self = home_netns_fd();
    if (self == -1)
        return -errno;
    if (setns(nsfd, CLONE_NEWNET) == -1)
        return -errno;
    return self;
}

static void leave(int self)
{
    /* Stuck in the pod's netns would be a security bug: bail out hard. */
    if (setns(self, CLONE_NEWNET) == -1)
        abort();
}

int netns_socket(int nsfd, int domain, int type, int protocol)
{
    int self = enter(nsfd);
    if (self < 0)
        return self;
    int fd = socket(domain, type, protocol);
    int err = fd == -1 ? -errno : 0;
    leave(self);
    return fd == -1 ? err : fd;
}

int netns_open_file(int nsfd, const char *path, int flags)
{
    int self = enter(nsfd);
    if (self < 0)
        return self;
    int fd = open(path, flags | O_CLOEXEC);
    int err = fd == -1 ? -errno : 0;
    leave(self);
    return fd == -1 ? err : fd;
}

int netns_cookie_of_socket(int sockfd, uint64_t *cookie)
{
    socklen_t len = sizeof(*cookie);
    if (getsockopt(sockfd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) == -1)
        return -errno;
    return 0;
}

int netns_cookie(int nsfd, uint64_t *cookie)
{
    int s = netns_socket(nsfd, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return s;
    int rc = netns_cookie_of_socket(s, cookie);
    close(s);
    return rc;
}
