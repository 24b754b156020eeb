/* Finding the network namespace of a pod that is already running: the
 * node's named namespaces (/var/run/netns, where CNI runtimes and `ip
 * netns` put them) and every process's (/proc/PID/ns/net), each asked
 * over rtnetlink for its addresses, matched to the Pod object's IPs (as
 * ztunnel's in-pod mode reconciles pods it did not see start).
 *
 * Bounded: at most NETNS_SCAN_MAX namespaces a scan (distinct by inode),
 * 64 addresses each. Runs on the loop at a reconcile (a configuration
 * change), never per connection. */
#ifndef MESHD_ENROLL_NETNS_SCAN_H
#define MESHD_ENROLL_NETNS_SCAN_H

#include <stddef.h>

#include "meshd/capture.h"

#define NETNS_SCAN_MAX 4096

struct netns_found {
    char path[256];
    struct meshd_addr ips[8]; /* global addresses (not loopback, not link-local) */
    size_t nips;
};

/* Scans `dirs` (NULL-terminated; NULL: /var/run/netns) and, with `proc`,
 * /proc/PID/ns/net, skipping the agent's own namespace. Returns how many
 * went into out[max] (heap-free), or -errno. */
int netns_scan(const char *const *dirs, int proc, struct netns_found *out, size_t max);
/* The global addresses of the namespace at `path` (rtnetlink dump inside
 * it). Returns how many, or -errno. */
int netns_addresses(const char *path, struct meshd_addr *out, size_t max);

#endif
