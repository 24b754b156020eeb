/* Whether a VirtualService http[] route admits one request (see
 * http_route.h): Istio's HTTPMatchRequest as Envoy evaluates it.
 *
 *   uri        the path without the query; exact and prefix honour
 *              ignoreUriCase, a regex does not (Envoy's case_sensitive
 *              covers only path and prefix);
 *   authority  the Host / :authority value as sent (port included);
 *   headers    by lower-cased name, several fields of one name joined
 *              with ',' (Envoy); a match with no value is presence;
 *              "host" is the authority and ":method", ":scheme",
 *              ":authority", ":path" the request's pseudo-headers;
 *   withoutHeaders  the inverse, an absent field read as "" (Istio's
 *                   treat_missing_header_as_empty); presence ({} or
 *                   regex "*") excludes any field of that name;
 *   queryParams     the first parameter of that name, percent-decoded.
 *
 * Regexes are full matches (RE2's FullMatch, Envoy's safe_regex) under
 * PCRE2's match, depth and heap limits: a pattern that runs out of them
 * does not match. The match data is one block per thread, made once. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route/http_route.h"

#define REGEX_MATCH_LIMIT 100000 /* calls of PCRE2's internal match() */
#define REGEX_DEPTH_LIMIT 1000   /* backtracking depth */
#define REGEX_HEAP_LIMIT  256    /* KiB of backtracking frames */
#define JOIN_MAX          8192   /* joined header values considered; longer: first value */

static pthread_once_t regex_once = PTHREAD_ONCE_INIT;
static pthread_key_t regex_key;
static pcre2_match_context *regex_ctx;

static void match_data_free(void *md)
{
    pcre2_match_data_free(md);
}

static void regex_init(void)
{
    regex_ctx = pcre2_match_context_create(NULL);
    if (regex_ctx) {
        pcre2_set_match_limit(regex_ctx, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(regex_ctx, REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(regex_ctx, REGEX_HEAP_LIMIT);
    }
    if (pthread_key_create(&regex_key, match_data_free) != 0) {
        pcre2_match_context_free(regex_ctx);
        regex_ctx = NULL;
    }
}

static bool regex_full_match(const pcre2_code *code, const char *value, size_t len)
{
    pthread_once(&regex_once, regex_init);
    if (!regex_ctx)
        return false;
    pcre2_match_data *md = pthread_getspecific(regex_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (!md || pthread_setspecific(regex_key, md) != 0) {
            pcre2_match_data_free(md);
            return false;
        }
    }
    /* A value that is not UTF-8 is an error here, so no match. */
    int rc = pcre2_match(code, (PCRE2_SPTR)value, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md,
                         regex_ctx);
    return rc >= 0; /* 0: matched, ovector too small for the groups */
}

bool http_str_match(const struct cfg_str_match *m, const char *value, size_t len, bool ignore_case)
{
    if (!m->set)
        return true;
    size_t n;
    switch (m->kind) {
    case CFG_STR_EXACT:
        n = strlen(m->value);
        return len == n &&
               (ignore_case ? strncasecmp(value, m->value, n) : memcmp(value, m->value, n)) == 0;
    case CFG_STR_PREFIX:
        n = strlen(m->value);
        return len >= n &&
               (ignore_case ? strncasecmp(value, m->value, n) : memcmp(value, m->value, n)) == 0;
    case CFG_STR_REGEX:
        return m->regex && regex_full_match(m->regex, value, len);
    }
    return false;
}

static bool match_str(const struct cfg_str_match *m, const char *value)
{
    return http_str_match(m, value ? value : "", value ? strlen(value) : 0, false);
}

/* The value a header match sees for `name` (lower case), or NULL when the
 * request has no such field. `buf` holds joined or built values. */
static const char *header_value(const struct http_request_view *req, const char *name, char *buf,
                                size_t cap)
{
    if (name[0] == ':' || strcmp(name, "host") == 0) {
        if (strcmp(name, ":method") == 0)
            return req->method;
        if (strcmp(name, ":scheme") == 0)
            return req->scheme;
        if (strcmp(name, ":authority") == 0 || strcmp(name, "host") == 0)
            return req->authority && *req->authority ? req->authority : NULL;
        if (strcmp(name, ":path") == 0) {
            const char *q = req->query ? req->query : "";
            int n = snprintf(buf, cap, "%s%s%s", req->path, *q ? "?" : "", q);
            return n >= 0 && (size_t)n < cap ? buf : req->path;
        }
        return NULL;
    }
    const char *first = NULL;
    size_t len = 0, count = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_field *f = &req->headers[i];
        if (strcasecmp(f->name, name) != 0)
            continue;
        if (!count++) {
            first = f->value;
            continue;
        }
        /* A second field: join them as Envoy does. */
        if (count == 2) {
            len = strlen(first);
            if (len >= cap)
                return first;
            memcpy(buf, first, len + 1);
        }
        if (len + 1 + f->value_len >= cap)
            return first;
        buf[len++] = ',';
        memcpy(buf + len, f->value, f->value_len + 1);
        len += f->value_len;
    }
    return count > 1 ? buf : first;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into buf (NUL-terminated); false if too long. */
static bool pct_decode(const char *s, size_t len, char *buf, size_t cap, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 1 >= cap)
            return false;
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            buf[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            buf[n++] = s[i];
        }
    }
    buf[n] = '\0';
    *out = n;
    return true;
}

/* The first query parameter named `name`, decoded into buf, or NULL. */
static const char *query_value(const char *query, const char *name, char *buf, size_t cap,
                               size_t *len)
{
    char key[256];
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen, kn;
        if (pct_decode(p, klen, key, sizeof(key), &kn) && strcmp(key, name) == 0) {
            const char *v = eq ? eq + 1 : p + plen;
            if (!pct_decode(v, (size_t)(p + plen - v), buf, cap, len))
                return NULL;
            return buf;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static bool http_match_l7(const struct cfg_http_match *hm, const struct http_request_view *req)
{
    char buf[JOIN_MAX];
    if (hm->uri.set) {
        bool icase = hm->ignore_uri_case && hm->uri.kind != CFG_STR_REGEX;
        const char *path = req->path ? req->path : "";
        if (!http_str_match(&hm->uri, path, strlen(path), icase))
            return false;
    }
    if (!match_str(&hm->scheme, req->scheme) || !match_str(&hm->method, req->method) ||
        (hm->authority.set && !match_str(&hm->authority, req->authority)))
        return false;
    for (size_t i = 0; i < hm->headers.n; i++) {
        const struct cfg_header_match *h = &hm->headers.v[i];
        const char *v = header_value(req, h->name, buf, sizeof(buf));
        if (!v || !match_str(&h->m, v))
            return false;
    }
    for (size_t i = 0; i < hm->without_headers.n; i++) {
        const struct cfg_header_match *h = &hm->without_headers.v[i];
        const char *v = header_value(req, h->name, buf, sizeof(buf));
        /* Presence: excluded when present. A value: an absent field is
         * the empty value (Istio sets treat_missing_header_as_empty). */
        if ((v || h->m.set) && match_str(&h->m, v))
            return false;
    }
    for (size_t i = 0; i < hm->query_params.n; i++) {
        const struct cfg_header_match *q = &hm->query_params.v[i];
        size_t len = 0;
        const char *v = query_value(req->query, q->name, buf, sizeof(buf), &len);
        if (!v || !http_str_match(&q->m, v, len, false))
            return false;
    }
    return true;
}

bool http_route_matches(const struct cfg_route *r, const struct route_source *src, uint16_t port,
                        const struct http_request_view *req)
{
    if (!r->nmatch)
        return true;
    for (size_t i = 0; i < r->nmatch; i++) {
        const struct cfg_match *m = &r->match[i];
        if (!route_match_l4(m, src, port))
            continue;
        /* destinationSubnets is not decided yet: not matching, as at L4. */
        if (m->l7 && strcmp(m->l7, "destinationSubnets") == 0)
            continue;
        if (!r->http_ext) {
            if (!m->l7)
                return true;
            continue;
        }
        if (http_match_l7(&r->http_ext->match[i], req))
            return true;
    }
    return false;
}
