/* Path normalization and the L7 matchers of AuthorizationPolicy (see
 * authz_http.h). Everything here reads bounded, NUL-terminated strings a
 * peer sent: no recursion, no backtracking, one pass or a few. */
#include "policy/authz_http.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config/pattern.h"
#include "policy/authz.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Pass 1: decode what RFC 3986 says is the same character, refuse what
 * no client may send. Returns the length written or -errno. */
static int decode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        unsigned char c = *p;
        char enc = 0; /* a byte that stays (or becomes) %XX */
        if (c <= 0x20 || c == 0x7f || c == '#' || c == '?')
            return -EINVAL;
        if (c == '%') {
            int hi = hexval((char)p[1]), lo = hi < 0 ? -1 : hexval((char)p[2]);
            if (hi < 0 || lo < 0)
                return -EINVAL; /* not an escape: refused rather than guessed */
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
            if (c == 0)
                return -EINVAL; /* %00: Istio refuses it too */
            enc = !pattern_unreserved(c);
        } else if (c == '\\') {
            c = '/';
        } else if (c >= 0x80) {
            enc = 1;
        }
        if (w + (enc ? 3 : 1) >= cap)
            return -ENOSPC;
        if (enc) {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        } else {
            out[w++] = (char)c;
        }
    }
    out[w] = '\0';
    return (int)w;
}

/* Pass 2, in place: RFC 3986 remove_dot_segments on "/...". The output
 * so far always ends with '/', and never outruns the input. */
static size_t remove_dots(char *s, size_t n)
{
    size_t w = 1, r = 1;
    while (r <= n) {
        size_t len = strcspn(s + r, "/");
        bool last = r + len >= n;
        if (len == 1 && s[r] == '.') {
            /* "." : nothing */
        } else if (len == 2 && s[r] == '.' && s[r + 1] == '.') {
            if (w > 1) { /* drop the last segment, keep its leading '/' */
                w--;
                while (w > 0 && s[w - 1] != '/')
                    w--;
            }
        } else {
            memmove(s + w, s + r, len);
            w += len;
            if (!last)
                s[w++] = '/';
        }
        r += len + 1;
    }
    s[w] = '\0';
    return w;
}

int authz_path_normalize(const char *path, char *out, size_t cap)
{
    if (!path || cap < 2)
        return -ENOSPC;
    if (strcmp(path, "*") == 0) { /* OPTIONS * */
        strcpy(out, "*");
        return 1;
    }
    if (path[0] != '/')
        return -EINVAL;
    int n = decode(path, out, cap);
    if (n < 0)
        return n;
    return (int)remove_dots(out, (size_t)n);
}

/* ---- paths ------------------------------------------------------------ */

static bool all_glob(const char *s, size_t n, bool slash)
{
    for (size_t i = 0; i < n; i++)
        if (!pattern_pchar((unsigned char)s[i]) && !(slash && s[i] == '/'))
            return false;
    return true;
}

/* Envoy's regex for the template, walked segment by segment: a literal is
 * itself, {*} is [pchar]+, and {**} (last, only literals after it) is
 * [pchar/]* followed by the literal rest. */
static bool template_match(const char *p, const char *s)
{
    if (*p++ != '/' || *s++ != '/')
        return false;
    for (;;) {
        size_t plen = strcspn(p, "/");
        if (plen == 4 && strncmp(p, "{**}", 4) == 0) {
            const char *tail = p + 4;
            size_t sl = strlen(s), tl = strlen(tail);
            return sl >= tl && strcmp(s + sl - tl, tail) == 0 && all_glob(s, sl - tl, true);
        }
        if (plen == 3 && strncmp(p, "{*}", 3) == 0) {
            size_t n = strcspn(s, "/");
            if (n == 0 || !all_glob(s, n, false))
                return false;
            s += n;
        } else {
            if (strncmp(s, p, plen) != 0)
                return false;
            s += plen;
        }
        p += plen;
        if (*p == '\0')
            return *s == '\0';
        if (*s != '/')
            return false;
        p++;
        s++;
    }
}

bool authz_path_match(const char *pattern, const char *path)
{
    if (!pattern || !path)
        return false;
    if (pattern_path_is_template(pattern))
        return template_match(pattern, path);
    return pattern_match(pattern, path);
}

/* ---- hosts ------------------------------------------------------------ */

static bool match_nocase(const char *pattern, const char *v, size_t vl)
{
    size_t pl = strlen(pattern);
    if (pl == 1 && pattern[0] == '*')
        return vl > 0;
    if (pl > 0 && pattern[pl - 1] == '*')
        return vl >= pl - 1 && strncasecmp(pattern, v, pl - 1) == 0;
    if (pl > 0 && pattern[0] == '*')
        return vl >= pl - 1 && strncasecmp(v + vl - (pl - 1), pattern + 1, pl - 1) == 0;
    return vl == pl && strncasecmp(pattern, v, pl) == 0;
}

/* The length of `a` without a trailing ":port" ("[::1]:80" -> "[::1]"). */
static size_t without_port(const char *a, size_t n)
{
    size_t i = n;
    while (i > 0 && a[i - 1] >= '0' && a[i - 1] <= '9')
        i--;
    if (i == n || i == 0 || a[i - 1] != ':')
        return n;
    i--;
    /* A bare IPv6 address has colons of its own; only "[...]:port" has a port. */
    if (memchr(a, ':', i) && !(a[0] == '[' && a[i - 1] == ']'))
        return n;
    return i;
}

bool authz_host_match(const char *pattern, const char *authority)
{
    if (!authority || !authority[0])
        return false;
    size_t n = strlen(authority), h = without_port(authority, n);
    return match_nocase(pattern, authority, n) || (h < n && match_nocase(pattern, authority, h));
}

/* ---- headers ---------------------------------------------------------- */

/* The value Envoy matches: every field `name` joined with `sep`, walked
 * without copying. */
struct joined {
    const struct http_field *f;
    size_t n;
    const char *name;
    char sep;
};

/* Number of fields and total length of the joined value. */
static size_t joined_len(const struct joined *j, size_t *count)
{
    size_t len = 0;
    *count = 0;
    for (size_t i = 0; i < j->n; i++)
        if (strcasecmp(j->f[i].name, j->name) == 0) {
            len += j->f[i].value_len + (*count ? 1 : 0);
            (*count)++;
        }
    return len;
}

/* [off, off + m) of the joined value equals s. */
static bool joined_eq(const struct joined *j, size_t off, const char *s, size_t m)
{
    size_t pos = 0;
    bool first = true;
    for (size_t i = 0; i < j->n && m; i++) {
        if (strcasecmp(j->f[i].name, j->name) != 0)
            continue;
        for (int part = first ? 1 : 0; part < 2 && m; part++) {
            const char *p = part ? j->f[i].value : &j->sep;
            size_t len = part ? j->f[i].value_len : 1;
            if (off < pos + len) {
                size_t k = off - pos, c = len - k < m ? len - k : m;
                if (memcmp(p + k, s, c) != 0)
                    return false;
                s += c;
                off += c;
                m -= c;
            }
            pos += len;
        }
        first = false;
    }
    return m == 0;
}

static bool joined_match(const struct joined *j, const char *pattern)
{
    size_t count, vl = joined_len(j, &count), pl = strlen(pattern);
    if (!count)
        return false;
    if (pl == 1 && pattern[0] == '*')
        return true; /* present */
    if (pl > 0 && pattern[pl - 1] == '*')
        return vl >= pl - 1 && joined_eq(j, 0, pattern, pl - 1);
    if (pl > 0 && pattern[0] == '*')
        return vl >= pl - 1 && joined_eq(j, vl - (pl - 1), pattern + 1, pl - 1);
    return vl == pl && joined_eq(j, 0, pattern, pl);
}

/* The view's own value for Envoy's pseudo-headers (Host is :authority
 * there), or NULL for a header to look up. */
static const char *const *pseudo_of(const struct http_request_view *v, const char *name)
{
    if (strcasecmp(name, ":method") == 0)
        return &v->method;
    if (strcasecmp(name, ":scheme") == 0)
        return &v->scheme;
    if (strcasecmp(name, ":authority") == 0 || strcasecmp(name, "host") == 0)
        return &v->authority;
    return NULL;
}

bool authz_header_match(const struct http_request_view *v, const char *name, const char *pattern)
{
    struct http_field pseudo[2];
    struct joined j = {v->headers, v->nheaders, name, ','};
    const char *const *one = pseudo_of(v, name);
    if (one) {
        if (!*one || !(*one)[0])
            return false; /* none sent */
        pseudo[0] = http_field_of(name, *one);
        j = (struct joined){pseudo, 1, name, ','};
    } else if (strcmp(name, ":path") == 0) {
        bool query = v->query && v->query[0];
        pseudo[0] = http_field_of(name, v->path ? v->path : "");
        pseudo[1] = http_field_of(name, query ? v->query : "");
        j = (struct joined){pseudo, query ? 2 : 1, name, '?'};
    }
    return joined_match(&j, pattern);
}
