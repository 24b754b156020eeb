/* Address blocks (CIDRs) as Istio writes them in ipBlocks and
 * remoteIpBlocks: config validates them, policy matches peers against
 * them. Leaf module: no state. */
#ifndef MESHD_CORE_CIDR_H
#define MESHD_CORE_CIDR_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/capture.h"

struct cidr {
    struct meshd_addr addr; /* port ignored */
    uint8_t prefix;
};

/* Parses "10.0.0.0/8", "fd00::/64" or a bare address (a full-length
 * prefix). 0 or -EINVAL; a string of 64 bytes or more is refused. */
int cidr_parse(const char *s, struct cidr *out);
/* An IPv4-mapped IPv6 address is compared as the IPv4 address it maps. */
bool cidr_contains(const struct cidr *c, const struct meshd_addr *a);

#endif
