/* Network namespaces: sockets made inside a pod's netns from the agent's.
 *
 * setns() changes only the calling thread's namespace, so the agent enters
 * the pod's netns just long enough to create a socket and returns; the
 * socket stays in the namespace it was created in (ztunnel does the same). */
#ifndef MESHD_CORE_NETNS_H
#define MESHD_CORE_NETNS_H

#include <stdint.h>

/* Opens a netns handle (O_RDONLY|O_CLOEXEC) and checks it is one. */
int netns_open(const char *path);
/* Creates a socket inside netns `nsfd`; returns the fd or -errno. */
int netns_socket(int nsfd, int domain, int type, int protocol);
/* Opens a file as seen from inside netns `nsfd` (/proc/sys/net/... are
 * per netns); returns the fd or -errno. */
int netns_open_file(int nsfd, const char *path, int flags);
/* The kernel's cookie for the netns a socket lives in (SO_NETNS_COOKIE). */
int netns_cookie_of_socket(int sockfd, uint64_t *cookie);
/* The cookie of netns `nsfd`. */
int netns_cookie(int nsfd, uint64_t *cookie);

#endif
