/* Configuration explained for one workload (see explain.h). */
#include "admin/explain.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "policy/peerauth.h"
#include "route/http_route.h"

/* The workload a reference names, as the configuration knows it. */
struct explained {
    char ns[64], name[256];
    const struct cfg_workload *w; /* the Pod or WorkloadEntry */
};

/* "ns/name", "name.ns" or "name" (in "default"). */
static bool split_ref(const char *ref, struct explained *x)
{
    const char *slash = strchr(ref, '/'), *dot = strchr(ref, '.');
    const char *name = ref, *ns = "default";
    size_t nl = strlen(ref), sl = strlen(ns);
    if (slash) {
        ns = ref, sl = (size_t)(slash - ref);
        name = slash + 1, nl = strlen(name);
    } else if (dot) {
        nl = (size_t)(dot - ref);
        ns = dot + 1, sl = strlen(ns);
    }
    if (!nl || !sl || nl >= sizeof(x->name) || sl >= sizeof(x->ns))
        return false;
    memcpy(x->name, name, nl);
    x->name[nl] = '\0';
    memcpy(x->ns, ns, sl);
    x->ns[sl] = '\0';
    return true;
}

static bool find_workload(const struct cfg_snapshot *s, const char *ref, struct explained *x,
                          char *err, size_t errlen)
{
    if (!split_ref(ref, x)) {
        snprintf(err, errlen, "\"%.80s\" is not a workload (NAMESPACE/NAME or NAME.NAMESPACE)",
                 ref);
        return false;
    }
    const struct cfg_pod *pod = cfg_find(s, CFG_POD, x->ns, x->name);
    const struct cfg_workload_entry *we =
        pod ? NULL : cfg_find(s, CFG_WORKLOAD_ENTRY, x->ns, x->name);
    x->w = pod ? cfg_workload_of(s, &pod->meta) : we ? cfg_workload_of(s, &we->meta) : NULL;
    if (!x->w) {
        snprintf(err, errlen, "no Pod or WorkloadEntry %s/%s in configuration version %s", x->ns,
                 x->name, cfg_snapshot_version(s));
        return false;
    }
    return true;
}

static json_t *ref_of(const struct cfg_meta *m)
{
    char buf[400];
    if (!m)
        return json_null();
    snprintf(buf, sizeof(buf), "%s/%s", m->ns, m->name);
    return json_string(buf);
}

/* "http[1]" or the route's own name: how istioctl names a route. */
static json_t *route_label(const struct cfg_virtual_service *vs, const struct cfg_route *r)
{
    if (!vs || !r)
        return json_null();
    if (r->name)
        return json_string(r->name);
    size_t idx = 0;
    for (const struct cfg_route *o = vs->routes; o < r; o++)
        idx += o->http == r->http;
    char buf[32];
    snprintf(buf, sizeof(buf), "%s[%zu]", r->http ? "http" : "tcp", idx);
    return json_string(buf);
}

static void set_count(json_t *o, const char *key, uint64_t v)
{
    if (v)
        json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void set_ms(json_t *o, const char *key, uint64_t ns)
{
    char buf[32];
    if (!ns)
        return;
    if (ns % 1000000000u == 0) /* as Istio writes durations: "5s", "250ms" */
        snprintf(buf, sizeof(buf), "%llus", (unsigned long long)(ns / 1000000000u));
    else
        snprintf(buf, sizeof(buf), "%llums", (unsigned long long)(ns / 1000000u));
    json_object_set_new(o, key, json_string(buf));
}

/* The merged connectionPool and outlierDetection a destination gets, in
 * Istio's field names; only what is set (the rest is Istio's default). */
static void policy_json(const struct cfg_policy_level *p, json_t *dest)
{
    static const char *const upgrade[] = {"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"};
    if (p->pool.set) {
        json_t *pool = json_object(), *tcp = json_object();
        set_count(tcp, "maxConnections", p->pool.max_connections);
        set_ms(tcp, "connectTimeout", p->pool.connect_timeout_ns);
        if (json_object_size(tcp))
            json_object_set_new(pool, "tcp", tcp);
        else
            json_decref(tcp);
        const struct cfg_http_pool *h = &p->pool.http;
        if (h->set) {
            json_t *http = json_object();
            set_count(http, "http1MaxPendingRequests", h->max_pending);
            set_count(http, "http2MaxRequests", h->max_requests);
            set_count(http, "maxRequestsPerConnection", h->max_requests_per_conn);
            set_count(http, "maxRetries", h->max_retries);
            set_ms(http, "idleTimeout", h->idle_timeout_ns);
            set_count(http, "maxConcurrentStreams", h->max_concurrent_streams);
            if (h->h2_upgrade != CFG_H2_UPGRADE_DEFAULT)
                json_object_set_new(http, "h2UpgradePolicy", json_string(upgrade[h->h2_upgrade]));
            if (h->use_client_protocol)
                json_object_set_new(http, "useClientProtocol", json_true());
            json_object_set_new(pool, "http", http);
        }
        json_object_set_new(dest, "connection_pool", pool);
    }
    if (p->outlier.set) {
        const struct cfg_outlier *o = &p->outlier;
        json_t *od = json_pack("{s:i,s:i}", "consecutive5xxErrors", (json_int_t)o->consecutive_5xx,
                               "consecutiveGatewayErrors", (json_int_t)o->consecutive_gateway);
        set_ms(od, "interval", o->interval_ns);
        set_ms(od, "baseEjectionTime", o->base_ejection_ns);
        if (o->has_max_ejection)
            json_object_set_new(od, "maxEjectionPercent", json_integer(o->max_ejection_percent));
        json_object_set_new(dest, "outlier_detection", od);
    }
}

static json_t *view_json(const struct route_view *v, const struct cfg_ips *ips)
{
    char addr[ADDR_STRLEN];
    json_t *dests = json_array();
    for (size_t i = 0; i < v->ndest; i++) {
        const struct route_view_dest *d = &v->dest[i];
        const char *lb = cfg_lb_name(d->policy.lb);
        json_t *dest = json_pack(
            "{s:s,s:s?,s:i,s:i,s:o,s:s,s:i,s:s?}", "host", d->svc ? d->svc->fqdn : d->host,
            "subset", d->subset, "port", d->port, "weight", d->weight, "destination_rule",
            ref_of(d->dr ? &d->dr->meta : NULL), "load_balancer", lb[0] ? lb : "ROUND_ROBIN",
            "ready_endpoints", (int)d->ready, "error", d->why);
        if (dest)
            policy_json(&d->policy, dest);
        json_array_append_new(dests, dest);
    }
    /* A Service without a clusterIP in the YAML has no VIP to capture. */
    json_t *vip = json_null();
    if (ips->n) {
        struct meshd_addr a = ips->v[0];
        a.port = htons(v->port);
        vip = json_string(addr_format(&a, addr, sizeof(addr)));
    }
    /* What a request gets on an HTTP port: the http[] routes in order. */
    json_t *http = json_array();
    for (size_t i = 0; v->vs && i < v->vs->nroutes; i++) {
        const struct cfg_route *r = &v->vs->routes[i];
        char line[512], label[600];
        if (!r->http)
            continue;
        http_route_summary(r, line, sizeof(line));
        json_t *name = route_label(v->vs, r);
        snprintf(label, sizeof(label), "%s: %s", json_string_value(name), line);
        json_decref(name);
        json_array_append_new(http, json_string(label));
    }
    return json_pack("{s:s,s:i,s:o,s:o,s:o,s:b,s:o,s:o}", "service", v->svc->fqdn, "port", v->port,
                     "vip", vip, "virtual_service", ref_of(v->vs ? &v->vs->meta : NULL), "route",
                     route_label(v->vs, v->route), "passthrough", v->passthrough, "destinations",
                     dests, "http_routes", http);
}

/* One row per port of a service (or ServiceEntry host). */
static void explain_service(const struct cfg_snapshot *s, const struct route_source *src,
                            const struct cfg_svc *svc, const struct cfg_ips *ips,
                            const uint16_t *ports, size_t nports, json_t *rows)
{
    static struct route_cluster scratch; /* large; one admin request at a time */
    for (size_t p = 0; p < nports; p++) {
        struct route_view v;
        route_describe(s, src, svc, ports[p], &scratch, &v);
        json_array_append_new(rows, view_json(&v, ips));
    }
}

/* A service named on the command line, found the way a pod's DNS search
 * path finds it ("name", "name.ns", "name.ns.svc", the full name), unlike
 * a host in the YAML, which Istio takes as written when it has a dot. */
static const char *cli_fqdn(const struct cfg_snapshot *s, const char *host, const char *ns,
                            char *buf, size_t len)
{
    const char *domain = cfg_snapshot_domain(s);
    if (!strchr(host, '.') || cfg_svc_by_fqdn(s, host))
        return cfg_fqdn(s, host, ns, buf, len);
    size_t n = strlen(host);
    bool svc = n > 4 && strcmp(host + n - 4, ".svc") == 0;
    int w = snprintf(buf, len, svc ? "%s.%s" : "%s.svc.%s", host, domain);
    if (w > 0 && (size_t)w < len && cfg_svc_by_fqdn(s, buf))
        return buf;
    return cfg_fqdn(s, host, ns, buf, len);
}

json_t *explain_routes(const struct cfg_snapshot *s, const char *workload, const char *service,
                       char *err, size_t errlen)
{
    struct explained x;
    if (!find_workload(s, workload, &x, err, errlen))
        return NULL;
    char fqdn[512];
    const char *only = service ? cli_fqdn(s, service, x.ns, fqdn, sizeof(fqdn)) : NULL;
    struct route_source src = {.ns = x.w->ns, .labels = x.w->labels};
    json_t *rows = json_array();
    uint16_t ports[64];
    for (size_t i = 0; i < cfg_count(s, CFG_SERVICE); i++) {
        const struct cfg_service *svc = cfg_at(s, CFG_SERVICE, i);
        const struct cfg_svc *v = cfg_svc_by_host(s, svc->meta.name, svc->meta.ns);
        if (!v || v->service != svc || !cfg_svc_visible(v, x.w->ns) ||
            (only && strcmp(only, v->fqdn) != 0))
            continue;
        size_t n = 0;
        for (; n < svc->nports && n < 64; n++)
            ports[n] = svc->ports[n].port;
        explain_service(s, &src, v, &svc->cluster_ips, ports, n, rows);
    }
    for (size_t i = 0; i < cfg_count(s, CFG_SERVICE_ENTRY); i++) {
        const struct cfg_service_entry *se = cfg_at(s, CFG_SERVICE_ENTRY, i);
        for (size_t h = 0; h < se->hosts.n; h++) {
            const struct cfg_svc *v = cfg_svc_by_fqdn(s, se->hosts.v[h]);
            if (!v || v->entry != se || !cfg_svc_visible(v, x.w->ns) ||
                (only && strcmp(only, v->fqdn) != 0))
                continue;
            size_t n = 0;
            for (; n < se->nports && n < 64; n++)
                ports[n] = se->ports[n].number;
            explain_service(s, &src, v, &se->addresses, ports, n, rows);
        }
    }
    return json_pack("{s:s,s:s,s:o}", "workload", workload, "config_version",
                     cfg_snapshot_version(s), "routes", rows);
}

static json_t *tls_row(const struct cfg_snapshot *s, const struct explained *x, uint16_t port)
{
    struct peerauth_result r;
    peerauth_mode(s, x->w->ns, &x->w->labels, port, &r);
    const char *scope = !r.by                                                        ? "default"
                        : r.by->selector.set                                         ? "workload"
                        : strcmp(r.by->meta.ns, cfg_snapshot_root_namespace(s)) == 0 ? "mesh"
                                                                                     : "namespace";
    return json_pack("{s:o,s:s,s:o,s:s}", "port", port ? json_integer(port) : json_string("*"),
                     "mode", cfg_mtls_name(r.mode), "policy", ref_of(r.by ? &r.by->meta : NULL),
                     "scope", scope);
}

static size_t add_port(uint16_t *list, size_t n, uint16_t port)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == port)
            return n;
    list[n] = port;
    return n + 1;
}

json_t *explain_tls(const struct cfg_snapshot *s, const char *trust_domain, const char *workload,
                    char *err, size_t errlen)
{
    struct explained x;
    if (!find_workload(s, workload, &x, err, errlen))
        return NULL;
    bool in_mesh = route_in_mesh(s, x.w);
    char id[512];
    snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", trust_domain, x.w->ns,
             x.w->service_account ? x.w->service_account : "default");
    /* "*", then each port the workload declares or a policy selecting it
     * names in portLevelMtls, once. */
    uint16_t list[128];
    size_t n = 0;
    list[n++] = 0;
    for (size_t i = 0; x.w->pod && i < x.w->pod->nports && n < 128; i++)
        n = add_port(list, n, x.w->pod->ports[i].port);
    struct cfg_iter it = {0};
    const struct cfg_peer_authentication *pa;
    while ((pa = cfg_next_in_ns(s, CFG_PEER_AUTHENTICATION, x.w->ns, &it)))
        for (size_t i = 0;
             pa->selector.set && cfg_labels_match(&pa->selector.match, &x.w->labels) &&
             i < pa->nports && n < 128;
             i++)
            n = add_port(list, n, pa->ports[i].port);
    json_t *ports = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ports, tls_row(s, &x, list[i]));
    /* Mesh clients reach a workload in the mesh over HBONE (mTLS) and any
     * other in plain TCP; STRICT on a workload outside the mesh is not
     * enforced by anyone (meshd does not capture its inbound). */
    bool conflict = false;
    for (size_t i = 0; i < json_array_size(ports); i++)
        conflict |=
            !in_mesh && strcmp(json_string_value(json_object_get(json_array_get(ports, i), "mode")),
                               "STRICT") == 0;
    return json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:o}", "workload", workload, "config_version",
                     cfg_snapshot_version(s), "identity", id, "in_mesh", in_mesh, "clients",
                     in_mesh ? "HBONE mTLS" : "plain TCP", "status",
                     conflict ? "CONFLICT: STRICT but outside the mesh, so nothing enforces it"
                              : "OK",
                     "ports", ports);
}
