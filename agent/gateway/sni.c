/* ClientHello SNI (see sni.h). RFC 8446 4.1.2 and RFC 6066 3:
 *   record: type 22, version 3.x, length (<= 2^14)
 *   handshake: type 1 (client_hello), 24-bit length
 *   legacy_version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
 *   compression_methods<1..255> extensions<8..2^16-1>
 *   server_name (0): list<1..>: name_type 0 (host_name), host_name<1..> */
#include "gateway/sni.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct rd {
    const uint8_t *p;
    size_t n, off;
};

static int take(struct rd *r, size_t k, const uint8_t **out)
{
    if (r->n - r->off < k)
        return -EINVAL;
    *out = r->p + r->off;
    r->off += k;
    return 0;
}

/* A length-prefixed vector of `width` bytes: its body in *body. */
static int vec(struct rd *r, size_t width, struct rd *body)
{
    const uint8_t *l;
    if (take(r, width, &l))
        return -EINVAL;
    size_t len = width == 1 ? l[0] : width == 2 ? (size_t)l[0] << 8 | l[1] : 0;
    const uint8_t *b;
    if (take(r, len, &b))
        return -EINVAL;
    *body = (struct rd){.p = b, .n = len};
    return 0;
}

static bool host_ok(const uint8_t *h, size_t n)
{
    if (!n || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum(h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static int server_name(struct rd *ext, char *sni, size_t len)
{
    struct rd list, name;
    if (vec(ext, 2, &list))
        return -EINVAL;
    while (list.off < list.n) {
        const uint8_t *type;
        if (take(&list, 1, &type) || vec(&list, 2, &name))
            return -EINVAL;
        if (type[0] != 0)
            continue;
        if (!host_ok(name.p, name.n) || name.n >= len)
            return -EINVAL;
        memcpy(sni, name.p, name.n);
        sni[name.n] = '\0';
        return 0;
    }
    return 0;
}

int sni_parse(const uint8_t *p, size_t n, char *sni, size_t len)
{
    sni[0] = '\0';
    if (n >= 1 && p[0] != 22)
        return -EINVAL;
    if (n >= 2 && p[1] != 3)
        return -EINVAL;
    if (n < 5)
        return -EAGAIN;
    size_t rec = (size_t)p[3] << 8 | p[4];
    if (rec > 16384 || rec < 4)
        return -EINVAL; /* too long for TLS, or too short for a handshake header */
    if (n >= 6 && p[5] != 1)
        return -EINVAL; /* not a client_hello */
    size_t hs = 0;
    if (n >= 9) {
        hs = (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8];
        if (hs + 4 > rec)
            return -E2BIG; /* the hello continues in another record */
    }
    if (n < 5 + rec)
        return -EAGAIN;
    struct rd r = {.p = p + 9, .n = hs}; /* n >= 9 here: hs + 4 <= rec was checked */
    const uint8_t *skip;
    struct rd v;
    if (take(&r, 2 + 32, &skip) || vec(&r, 1, &v) || vec(&r, 2, &v) || vec(&r, 1, &v))
        return -EINVAL;
    if (r.off == r.n)
        return 0; /* no extensions */
    struct rd exts;
    if (vec(&r, 2, &exts))
        return -EINVAL;
    while (exts.off < exts.n) {
        const uint8_t *type;
        struct rd body;
        if (take(&exts, 2, &type) || vec(&exts, 2, &body))
            return -EINVAL;
        if (type[0] == 0 && type[1] == 0)
            return server_name(&body, sni, len);
    }
    return 0;
}
