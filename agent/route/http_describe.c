/* One http[] route as a line a person reads (`meshctl proxy-config
 * routes`): its matches (ORed with " | ", fields ANDed with " && ") and
 * what it does. Truncated to the buffer, never past it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "route/http_route.h"

struct out {
    char *buf;
    size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->n >= o->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* clang 14's analyzer misreads va_start here (as in core/arena.c). */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    int w = vsnprintf(o->buf + o->n, o->len - o->n, fmt, ap);
    va_end(ap);
    if (w > 0)
        o->n = o->n + (size_t)w < o->len ? o->n + (size_t)w : o->len - 1;
}

static const char *kind_name(enum cfg_str_match_kind k)
{
    return k == CFG_STR_EXACT ? "exact" : k == CFG_STR_PREFIX ? "prefix" : "regex";
}

static void put_and(struct out *o, bool *first)
{
    put(o, "%s", *first ? "" : " && ");
    *first = false;
}

static void put_str(struct out *o, bool *first, const char *what, const struct cfg_str_match *m)
{
    if (!m->set)
        return;
    put_and(o, first);
    put(o, "%s %s %s", what, kind_name(m->kind), m->value);
}

static void put_headers(struct out *o, bool *first, const char *what,
                        const struct cfg_header_matches *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        put_and(o, first);
        if (hs->v[i].m.set)
            put(o, "%s %s %s %s", what, hs->v[i].name, kind_name(hs->v[i].m.kind),
                hs->v[i].m.value);
        else
            put(o, "%s %s present", what, hs->v[i].name);
    }
}

static void put_match(struct out *o, const struct cfg_match *m, const struct cfg_http_match *hm)
{
    bool first = true;
    if (hm) {
        put_str(o, &first, hm->ignore_uri_case ? "uri(icase)" : "uri", &hm->uri);
        put_str(o, &first, "method", &hm->method);
        put_str(o, &first, "authority", &hm->authority);
        put_str(o, &first, "scheme", &hm->scheme);
        put_headers(o, &first, "header", &hm->headers);
        put_headers(o, &first, "!header", &hm->without_headers);
        put_headers(o, &first, "query", &hm->query_params);
    }
    if (m->port) {
        put_and(o, &first);
        put(o, "port %u", m->port);
    }
    for (size_t i = 0; i < m->source_labels.n; i++) {
        put_and(o, &first);
        put(o, "source %s=%s", m->source_labels.v[i].key, m->source_labels.v[i].value);
    }
    if (m->source_namespace) {
        put_and(o, &first);
        put(o, "sourceNamespace %s", m->source_namespace);
    }
    if (first)
        put(o, "*");
}

size_t http_route_summary(const struct cfg_route *r, char *buf, size_t len)
{
    struct out o = {buf, len, 0};
    if (!len)
        return 0;
    buf[0] = '\0';
    const struct cfg_http_route *h = r->http_ext;
    for (size_t i = 0; i < r->nmatch; i++) {
        put(&o, "%s", i ? " | " : "");
        put_match(&o, &r->match[i], h ? &h->match[i] : NULL);
    }
    if (!r->nmatch)
        put(&o, "*");
    put(&o, " -> ");
    if (h && h->redirect.set) {
        put(&o, "redirect %u", h->redirect.code ? h->redirect.code : 301);
        if (h->redirect.scheme)
            put(&o, " scheme=%s", h->redirect.scheme);
        if (h->redirect.authority)
            put(&o, " authority=%s", h->redirect.authority);
        if (h->redirect.port)
            put(&o, " port=%u", h->redirect.port);
        if (h->redirect.uri)
            put(&o, " uri=%s", h->redirect.uri);
    } else if (h && h->direct.set) {
        put(&o, "direct_response %u", h->direct.status);
    } else {
        for (size_t i = 0; i < r->ndest; i++)
            put(&o, "%s%s%s%s %" PRIu32 "%%", i ? ", " : "", r->dest[i].dest.host,
                r->dest[i].dest.subset ? "/" : "",
                r->dest[i].dest.subset ? r->dest[i].dest.subset : "",
                r->ndest == 1 ? 100 : r->dest[i].weight);
        if (!r->ndest)
            put(&o, "nowhere");
    }
    if (h && h->rewrite.set)
        put(&o, "; rewrite");
    if (h && (h->fault.delay_set || h->fault.abort_set))
        put(&o, "; fault");
    if (h && h->nmirrors)
        put(&o, "; mirror");
    if (h && h->timeout_ns)
        put(&o, "; timeout %" PRIu64 "ms", h->timeout_ns / 1000000);
    if (h && h->retries.set)
        put(&o, "; retries %" PRIu32, h->retries.attempts);
    if (h && h->cors.set)
        put(&o, "; cors");
    return o.n;
}
