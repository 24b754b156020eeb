/* See gwapi_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "route/gateway_route.h"
#include "support/gwapi_fixture.h"

struct cfg_snapshot *gwapi_load(const char *yaml, struct cfg_diags *diags)
{
    cfg_diags_init(diags);
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load_buffer("gwapi.yaml", yaml, strlen(yaml), NULL, diags, &s), 0);
    return s;
}

const char *gwapi_find_diag(const struct cfg_diags *d, enum cfg_level level, const char *part)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].level == level && strstr(d->v[i].message, part))
            return d->v[i].message;
    return NULL;
}

void gwapi_dump(const struct cfg_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "  [%d] %s\n", (int)d->v[i].level, d->v[i].message);
}

void gwapi_outcome(const struct cfg_snapshot *s, const char *host, const char *path,
                   const struct http_field *hdrs, size_t nh, char *out, size_t len)
{
    struct gw_server gs[8];
    size_t n = gw_pod_servers(s, cfg_find(s, CFG_POD, "default", "gw-istio-1"), gs, 8);
    const struct gw_server *srv = gw_server_for(gs, n, 8443, host);
    if (!srv) {
        snprintf(out, len, "404 no server");
        return;
    }
    struct route_source src = {.ns = "default"};
    struct http_request_view req = {.method = "GET",
                                    .path = path,
                                    .query = "",
                                    .authority = host,
                                    .scheme = "https",
                                    .headers = hdrs,
                                    .nheaders = nh};
    struct gw_http_result r;
    gw_route_http(s, srv, &src, &req, &r);
    if (!r.route) {
        snprintf(out, len, "404");
        return;
    }
    const struct cfg_http_route *h = r.route->http_ext;
    if (h && h->redirect.set) {
        snprintf(out, len, "redirect %u %s %s %s", h->redirect.code, h->redirect.scheme,
                 h->redirect.authority, h->redirect.uri ? h->redirect.uri : "(path)");
        return;
    }
    size_t o = (size_t)snprintf(out, len, "dests");
    for (size_t i = 0; i < r.route->ndest && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, " %.2s:%u", r.route->dest[i].dest.host,
                              r.route->ndest > 1 ? r.route->dest[i].weight : 100);
    for (size_t i = 0; h && i < h->headers.request.nset && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, " set %s=%s", h->headers.request.set[i].key,
                              h->headers.request.set[i].value);
    for (size_t i = 0; h && i < h->headers.request.remove.n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, " remove %s", h->headers.request.remove.v[i]);
}
