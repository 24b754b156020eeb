/* Address conversion and formatting (see addr.h). */
#include "core/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int addr_to_sockaddr(const struct meshd_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == MESHD_AF_INET6 && memcmp(a->addr, v4mapped_prefix, 12) != 0) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = a->port;
        memcpy(&s6->sin6_addr, a->addr, 16);
        *len = sizeof(*s6);
        return 0;
    }
    if (a->family != MESHD_AF_INET && a->family != MESHD_AF_INET6)
        return -EINVAL;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = a->port;
    memcpy(&s4->sin_addr, a->family == MESHD_AF_INET ? a->addr : a->addr + 12, 4);
    *len = sizeof(*s4);
    return 0;
}

int addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct meshd_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a->family = MESHD_AF_INET;
        a->port = s4->sin_port;
        memcpy(a->addr, &s4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a->family = MESHD_AF_INET6;
        a->port = s6->sin6_port;
        memcpy(a->addr, &s6->sin6_addr, 16);
        return 0;
    }
    return -EINVAL;
}

/* "a.b.c.d" or "a.b.c.d:port" by hand into out[ADDR_STRLEN]: the data path
 * formats an endpoint per request (upstream_host, logs), and inet_ntop's
 * sprintf plus our snprintf cost more than the rest of the lookup. */
static size_t format_v4(const unsigned char *ip, bool with_port, uint16_t port, char *out)
{
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = ip[i];
        if (i)
            out[n++] = '.';
        if (v >= 100)
            out[n++] = (char)('0' + v / 100);
        if (v >= 10)
            out[n++] = (char)('0' + v / 10 % 10);
        out[n++] = (char)('0' + v % 10);
    }
    if (with_port) {
        out[n++] = ':';
        n += str_u64(out + n, port);
    }
    out[n] = '\0';
    return n;
}

static const char *format(const struct meshd_addr *a, bool with_port, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (len == 0)
        return buf;
    if (a->family == MESHD_AF_INET ||
        (a->family == MESHD_AF_INET6 && memcmp(a->addr, v4mapped_prefix, 12) == 0)) {
        char tmp[ADDR_STRLEN];
        format_v4(a->family == MESHD_AF_INET ? a->addr : a->addr + 12, with_port, ntohs(a->port),
                  tmp);
        str_copy(buf, len, tmp);
    } else if (a->family == MESHD_AF_INET6) {
        inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
        if (with_port)
            snprintf(buf, len, "[%s]:%u", ip, ntohs(a->port));
        else
            snprintf(buf, len, "%s", ip);
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

const char *addr_format(const struct meshd_addr *a, char *buf, size_t len)
{
    return format(a, true, buf, len);
}

const char *addr_format_ip(const struct meshd_addr *a, char *buf, size_t len)
{
    return format(a, false, buf, len);
}

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v > 65535 || s[0] == '-' || s[0] == '+')
        return -EINVAL;
    *port = htons((uint16_t)v);
    return 0;
}

int addr_parse(const char *s, struct meshd_addr *a)
{
    char host[INET6_ADDRSTRLEN];
    const char *port;
    memset(a, 0, sizeof(*a));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
        if (inet_pton(AF_INET6, host, a->addr) != 1)
            return -EINVAL;
        a->family = MESHD_AF_INET6;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
        if (inet_pton(AF_INET, host, a->addr) != 1)
            return -EINVAL;
        a->family = MESHD_AF_INET;
    }
    return parse_port(port, &a->port);
}

bool addr_equal(const struct meshd_addr *x, const struct meshd_addr *y)
{
    return x->family == y->family && x->port == y->port &&
           memcmp(x->addr, y->addr, x->family == MESHD_AF_INET ? 4 : 16) == 0;
}
