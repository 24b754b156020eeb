/* AUTO_PASSTHROUGH SNI names (see auto_sni.h). */
#include "route/auto_sni.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define PREFIX "outbound_."
#define SEP    "_."

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One DNS-1123 label of n bytes: [a-z0-9]([a-z0-9-]*[a-z0-9])?, <= 63. */
static bool label_ok(const char *p, size_t n)
{
    if (n == 0 || n > 63 || !lower_alnum(p[0]) || !lower_alnum(p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(p[i]) && p[i] != '-')
            return false;
    return true;
}

static bool host_ok(const char *h, size_t len)
{
    if (len == 0 || len >= GW_AUTO_HOST_MAX)
        return false;
    for (size_t off = 0;;) {
        const char *dot = memchr(h + off, '.', len - off);
        size_t n = dot ? (size_t)(dot - (h + off)) : len - off;
        if (!label_ok(h + off, n))
            return false; /* also an empty label: "..", a leading or trailing dot */
        if (!dot)
            return true;
        off += n + 1;
    }
}

int gw_auto_sni_parse(const char *sni, struct gw_auto_sni *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = sni ? strnlen(sni, 256) : 0;
    if (len == 0 || len > 253 || strncmp(sni, PREFIX, sizeof(PREFIX) - 1) != 0)
        return -EINVAL;
    const char *p = sni + sizeof(PREFIX) - 1, *end = sni + len;
    /* the port: 1-5 digits, no leading zero */
    uint32_t port = 0;
    size_t digits = 0;
    while (p + digits < end && p[digits] >= '0' && p[digits] <= '9' && digits < 6)
        port = port * 10 + (uint32_t)(p[digits++] - '0');
    if (digits == 0 || digits > 5 || p[0] == '0' || port > 65535)
        return -EINVAL;
    p += digits;
    if ((size_t)(end - p) < 2 || memcmp(p, SEP, 2) != 0)
        return -EINVAL;
    p += 2;
    /* the subset, up to the next "_." (a label has no '_') */
    const char *sep = p;
    while (sep < end && *sep != '_')
        sep++;
    size_t sublen = (size_t)(sep - p);
    if ((size_t)(end - sep) < 2 || memcmp(sep, SEP, 2) != 0)
        return -EINVAL;
    if (sublen && !label_ok(p, sublen))
        return -EINVAL;
    const char *host = sep + 2;
    size_t hostlen = (size_t)(end - host);
    if (!host_ok(host, hostlen))
        return -EINVAL;
    out->port = (uint16_t)port;
    memcpy(out->subset, p, sublen);
    out->subset[sublen] = '\0';
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    return 0;
}
