/* CORS (see cors.h). */
#include "http/cors.h"

#include <stdio.h>
#include <string.h>

#include "route/http_route.h"

const char *http_cors_origin(const struct cfg_cors *c, const struct http_request_view *req)
{
    const char *origin = http_field_get(req->headers, req->nheaders, "origin");
    if (!c || !c->set || !origin || !*origin)
        return NULL;
    for (size_t i = 0; i < c->norigins; i++) {
        const struct cfg_str_match *m = &c->allow_origins[i];
        /* the legacy allowOrigin "*" is stored as an exact "*": any origin */
        if ((m->kind == CFG_STR_EXACT && strcmp(m->value, "*") == 0) ||
            http_str_match(m, origin, strlen(origin), false))
            return origin;
    }
    return NULL;
}

bool http_cors_is_preflight(const struct http_request_view *req)
{
    return strcmp(req->method, "OPTIONS") == 0 &&
           http_field_get(req->headers, req->nheaders, "origin") &&
           http_field_get(req->headers, req->nheaders, "access-control-request-method");
}

/* Appends "a,b,c" of `l` to buf; returns the value, or NULL when empty or
 * it does not fit. */
static const char *joined(const struct cfg_strs *l, char **buf, size_t *len)
{
    if (!l->n)
        return NULL;
    char *start = *buf;
    size_t used = 0;
    for (size_t i = 0; i < l->n; i++) {
        int n = snprintf(start + used, *len - used, "%s%s", i ? "," : "", l->v[i]);
        if (n < 0 || (size_t)n >= *len - used)
            return NULL;
        used += (size_t)n;
    }
    *buf += used + 1;
    *len -= used + 1;
    return start;
}

static void add(struct http_field *out, size_t *n, const char *name, const char *value)
{
    if (!value)
        return;
    out[(*n)++] = http_field_of(name, value);
}

size_t http_cors_fields(const struct cfg_cors *c, const char *origin, bool preflight,
                        struct http_field *out, char *buf, size_t len)
{
    size_t n = 0;
    add(out, &n, "access-control-allow-origin", origin);
    if (c->has_allow_credentials && c->allow_credentials)
        add(out, &n, "access-control-allow-credentials", "true");
    if (!preflight) {
        add(out, &n, "access-control-expose-headers", joined(&c->expose_headers, &buf, &len));
        return n;
    }
    add(out, &n, "access-control-allow-methods", joined(&c->allow_methods, &buf, &len));
    add(out, &n, "access-control-allow-headers", joined(&c->allow_headers, &buf, &len));
    if (c->max_age_s && len > 24) {
        snprintf(buf, len, "%llu", (unsigned long long)c->max_age_s);
        add(out, &n, "access-control-max-age", buf);
    }
    return n;
}
