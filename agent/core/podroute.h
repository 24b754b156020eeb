/* Routing inside a pod's netns that lets meshd reach the app from the
 * client's own address, as ztunnel's in-pod mode does.
 *
 * meshd's app-facing socket is IP_TRANSPARENT, bound to the client's
 * address and marked PODROUTE_MARK. Its SYN reaches the app over the pod's
 * loopback with that mark; with tcp_fwmark_accept the app's accepted socket
 * (and its SYN-ACK) carry the mark, and the rule "fwmark PODROUTE_MARK ->
 * table PODROUTE_TABLE: local default dev lo" delivers everything the app
 * sends back to meshd's socket instead of out of the pod. fwmark_reflect
 * does the same for the kernel's resets. Nothing else in the pod carries
 * the mark, so nothing else is routed differently. */
#ifndef MESHD_CORE_PODROUTE_H
#define MESHD_CORE_PODROUTE_H

#include <stddef.h>

#define PODROUTE_MARK     0x111u /* ztunnel's in-pod value */
#define PODROUTE_TABLE    15006u
#define PODROUTE_PRIORITY 32764u

/* Idempotent. IPv6 is set up when the pod's netns has it. Returns 0 or
 * -errno with a message in err[errlen]. */
int podroute_install(int nsfd, char *err, size_t errlen);
/* Removes the rules and routes (the sysctls stay: with no marked sockets
 * they change nothing). Accepts a netns where nothing was installed. */
void podroute_remove(int nsfd);

#endif
