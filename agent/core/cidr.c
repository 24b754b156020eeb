/* Address blocks: parsing "10.0.0.0/8", "fd00::/64" or a bare address,
 * and membership (see cidr.h). */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *s, struct cidr *out)
{
    char buf[64];
    memset(out, 0, sizeof(*out));
    if (strlen(s) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        prefix = strtol(slash + 1, &end, 10);
        if (*end || slash[1] == '\0' || prefix < 0)
            return -EINVAL;
    }
    if (inet_pton(AF_INET, buf, out->addr.addr) == 1) {
        out->addr.family = MESHD_AF_INET;
        if (prefix > 32)
            return -EINVAL;
        out->prefix = (uint8_t)(prefix < 0 ? 32 : prefix);
    } else if (inet_pton(AF_INET6, buf, out->addr.addr) == 1) {
        out->addr.family = MESHD_AF_INET6;
        if (prefix > 128)
            return -EINVAL;
        out->prefix = (uint8_t)(prefix < 0 ? 128 : prefix);
    } else {
        return -EINVAL;
    }
    return 0;
}

bool cidr_contains(const struct cidr *c, const struct meshd_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *bytes = a->addr;
    uint8_t family = a->family;
    if (family == MESHD_AF_INET6 && memcmp(a->addr, mapped, 12) == 0) {
        bytes = a->addr + 12; /* an IPv4 peer on a dual-stack socket */
        family = MESHD_AF_INET;
    }
    if (family != c->addr.family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(bytes, c->addr.addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (bytes[full] & mask) == (c->addr.addr[full] & mask);
}
