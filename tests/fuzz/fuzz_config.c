/* libFuzzer driver: the configuration loader and analyzers on arbitrary
 * bytes (YAML syntax, aliases, every kind's decoder, the indexes), then
 * what the data path and meshctl derive from the snapshot: each Pod's
 * routes to every service (host matching, wildcards, exportTo, subsets,
 * policy merging) and its mTLS modes; and each gateway pod's servers
 * (Istio Gateways and those translated from the Gateway API) with a
 * request, a TCP connection and an SNI routed through them. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin/explain.h"
#include "config/analyze.h"
#include "config/config.h"
#include "route/gateway_route.h"

static void explain_pods(const struct cfg_snapshot *s)
{
    size_t n = cfg_count(s, CFG_POD);
    for (size_t i = 0; i < n && i < 8; i++) {
        const struct cfg_pod *p = cfg_at(s, CFG_POD, i);
        char ref[400], err[300];
        snprintf(ref, sizeof(ref), "%s/%s", p->meta.ns, p->meta.name);
        json_decref(explain_routes(s, ref, NULL, err, sizeof(err)));
        json_decref(explain_tls(s, "cluster.local", ref, err, sizeof(err)));
    }
}

static void route_gateways(const struct cfg_snapshot *s)
{
    size_t n = cfg_count(s, CFG_POD);
    for (size_t i = 0; i < n && i < 8; i++) {
        const struct cfg_pod *p = cfg_at(s, CFG_POD, i);
        struct gw_server gs[16];
        size_t k = gw_pod_servers(s, p, gs, 16);
        struct route_source src = {.ns = p->meta.ns, .labels = p->meta.labels};
        for (size_t j = 0; j < k; j++) {
            const char *host = gs[j].srv->hosts.n ? gs[j].srv->hosts.v[0] : "a.example.com";
            struct http_request_view req = {.method = "GET",
                                            .path = "/api/x",
                                            .query = "",
                                            .authority = host,
                                            .scheme = "https"};
            struct gw_http_result r;
            const struct cfg_virtual_service *vs;
            gw_route_http(s, &gs[j], &src, &req, &r);
            gw_route_tcp(s, &gs[j], &src, &vs);
            gw_route_sni(s, &gs[j], host, &vs);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_diags diags;
    struct cfg_snapshot *s = NULL;
    cfg_diags_init(&diags);
    if (cfg_load_buffer("fuzz.yaml", (const char *)data, size, NULL, &diags, &s) == 0) {
        cfg_analyze(s, &diags);
        for (size_t i = 0; i < diags.n; i++) {
            char line[1200];
            cfg_diag_format(&diags.v[i], line, sizeof(line));
        }
        explain_pods(s);
        route_gateways(s);
        cfg_snapshot_unref(s);
    }
    cfg_diags_fini(&diags);
    return 0;
}
