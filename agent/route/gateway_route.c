/* Routing at an ingress gateway (see gateway_route.h). */
#include "route/gateway_route.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route/http_route.h"

#define GW_MAX_MATCHES 32 /* a route's matches considered at a gateway */

/* The pod's port for server port `port`: the targetPort of a Service
 * port `port` of a Service selecting the pod (a named targetPort: the
 * pod's container port of that name), else `port` itself. */
static uint16_t listen_port(const struct cfg_snapshot *s, const struct cfg_pod *pod, uint32_t port)
{
    struct cfg_iter it = {0};
    const struct cfg_service *svc;
    while ((svc = cfg_next_in_ns(s, CFG_SERVICE, pod->meta.ns, &it))) {
        if (!svc->selector.set || !svc->selector.match.n ||
            !cfg_labels_match(&svc->selector.match, &pod->meta.labels))
            continue;
        for (size_t i = 0; i < svc->nports; i++) {
            const struct cfg_service_port *sp = &svc->ports[i];
            if (sp->port != port)
                continue;
            if (sp->target.number)
                return sp->target.number;
            if (!sp->target.name)
                return (uint16_t)port;
            for (size_t c = 0; c < pod->nports; c++)
                if (pod->ports[c].name && strcmp(pod->ports[c].name, sp->target.name) == 0)
                    return pod->ports[c].port;
        }
    }
    return (uint16_t)port;
}

bool gw_pod_is_gateway(const struct cfg_pod *pod)
{
    return cfg_label(&pod->meta.labels, "istio") ||
           cfg_label(&pod->meta.labels, "gateway.networking.k8s.io/gateway-name") ||
           cfg_label(&pod->meta.labels, "istio.io/gateway-name");
}

size_t gw_pod_servers(const struct cfg_snapshot *s, const struct cfg_pod *pod,
                      struct gw_server *out, size_t max)
{
    size_t n = 0;
    if (!gw_pod_is_gateway(pod))
        return 0;
    for (size_t i = 0; i < cfg_count(s, CFG_GATEWAY); i++) {
        const struct cfg_gateway *gw = cfg_at(s, CFG_GATEWAY, i);
        /* No selector selects nothing at a gateway (Istio: every proxy of
         * the mesh; meshd serves only selected pods). */
        if (!gw->selector.set || !gw->selector.match.n ||
            !cfg_labels_match(&gw->selector.match, &pod->meta.labels))
            continue;
        /* A Gateway API listener: its own namespace's pods, on its port. */
        if (gw->k8s && strcmp(gw->meta.ns, pod->meta.ns) != 0)
            continue;
        for (size_t j = 0; j < gw->nservers && n < max; j++)
            out[n++] = (struct gw_server){.gw = gw,
                                          .srv = &gw->servers[j],
                                          .listen_port =
                                              gw->k8s ? (uint16_t)gw->servers[j].port
                                                      : listen_port(s, pod, gw->servers[j].port)};
    }
    return n;
}

static const char *strip_ns(const char *gw_host)
{
    const char *slash = strchr(gw_host, '/');
    return slash ? slash + 1 : gw_host;
}

bool gw_host_matches(const char *pattern, const char *host)
{
    size_t hl = strcspn(host, ":");
    if (host[0] == '[') /* an IPv6 literal: up to its bracket */
        hl = strcspn(host, "]") + 1;
    if (strcmp(pattern, "*") == 0)
        return true;
    if (pattern[0] == '*') {
        size_t pl = strlen(pattern + 1);
        return pl < hl && strncasecmp(host + hl - pl, pattern + 1, pl) == 0;
    }
    return strlen(pattern) == hl && strncasecmp(pattern, host, hl) == 0;
}

/* Two host patterns that some name matches both (a VirtualService's host
 * against a server's). */
static bool hosts_intersect(const char *a, const char *b)
{
    if (a[0] == '*' && b[0] == '*') {
        size_t la = strlen(a + 1), lb = strlen(b + 1);
        const char *longer = la > lb ? a + 1 : b + 1, *shorter = la > lb ? b + 1 : a + 1;
        size_t ll = strlen(longer), sl = strlen(shorter);
        return strcasecmp(longer + ll - sl, shorter) == 0;
    }
    return a[0] == '*' ? gw_host_matches(a, b) : gw_host_matches(b, a);
}

bool gw_host_admits(const char *gw_host, const char *gw_ns, const char *host, const char *vs_ns)
{
    const char *slash = strchr(gw_host, '/');
    if (slash && vs_ns) {
        size_t n = (size_t)(slash - gw_host);
        bool any = n == 1 && gw_host[0] == '*';
        bool own = n == 1 && gw_host[0] == '.';
        if (!any && !(own && strcmp(vs_ns, gw_ns) == 0) &&
            !(strlen(vs_ns) == n && strncmp(vs_ns, gw_host, n) == 0))
            return false;
    }
    return hosts_intersect(strip_ns(gw_host), host);
}

bool gw_binds(const struct cfg_strs *gateways, const char *vs_ns, const struct cfg_gateway *gw)
{
    for (size_t i = 0; i < gateways->n; i++) {
        const char *g = gateways->v[i];
        const char *slash = strchr(g, '/');
        if (slash) {
            size_t n = (size_t)(slash - g);
            if (strlen(gw->meta.ns) == n && strncmp(g, gw->meta.ns, n) == 0 &&
                strcmp(slash + 1, gw->meta.name) == 0)
                return true;
            continue;
        }
        /* "name" in the VirtualService's namespace, or "name.ns[.svc...]". */
        size_t n = strcspn(g, ".");
        if (strlen(gw->meta.name) != n || strncmp(g, gw->meta.name, n) != 0)
            continue;
        const char *ns = g[n] ? g + n + 1 : vs_ns;
        size_t nl = strcspn(ns, ".");
        if (strlen(gw->meta.ns) == nl && strncmp(ns, gw->meta.ns, nl) == 0)
            return true;
    }
    return false;
}

const struct gw_server *gw_server_for(const struct gw_server *servers, size_t n, uint16_t port,
                                      const char *host)
{
    for (size_t i = 0; i < n; i++) {
        if (servers[i].listen_port != port)
            continue;
        const struct cfg_strs *hosts = &servers[i].srv->hosts;
        for (size_t h = 0; h < hosts->n; h++)
            if (!host || !*host || gw_host_matches(strip_ns(hosts->v[h]), host))
                return &servers[i];
    }
    return NULL;
}

/* How specifically `pattern` names `host`: exact beats every wildcard,
 * a longer suffix beats a shorter; -1: no match. */
static int specificity(const char *pattern, const char *host)
{
    if (!gw_host_matches(pattern, host))
        return -1;
    return pattern[0] == '*' ? (int)strlen(pattern) : 1 << 20;
}

/* The host of `vs` best matching `host` among those server `gs` admits. */
static int vs_score(const struct cfg_virtual_service *vs, const struct gw_server *gs,
                    const char *host)
{
    int best = -1;
    for (size_t i = 0; i < vs->hosts.n; i++) {
        int sc = specificity(vs->hosts.v[i], host);
        if (sc <= best)
            continue;
        for (size_t h = 0; h < gs->srv->hosts.n; h++)
            if (gw_host_admits(gs->srv->hosts.v[h], gs->gw->meta.ns, vs->hosts.v[i], vs->meta.ns)) {
                best = sc;
                break;
            }
    }
    return best;
}

/* The VirtualService bound to the server's Gateway best matching `host`. */
static const struct cfg_virtual_service *
best_vs(const struct cfg_snapshot *s, const struct gw_server *gs, const char *host, bool want_tls)
{
    const struct cfg_virtual_service *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < cfg_count(s, CFG_VIRTUAL_SERVICE); i++) {
        const struct cfg_virtual_service *vs = cfg_at(s, CFG_VIRTUAL_SERVICE, i);
        if ((want_tls ? !vs->ntls : !vs->nroutes) || !gw_binds(&vs->gateways, vs->meta.ns, gs->gw))
            continue;
        int sc = vs_score(vs, gs, host);
        if (sc > best_score) { /* ties: the first loaded, as Istio */
            best = vs;
            best_score = sc;
        }
    }
    return best;
}

/* A route's matches as they apply at this gateway: those whose own
 * `gateways` (when given) bind it, with that field cleared so the mesh's
 * L4 check admits them. false: none does. */
static bool gateway_view(const struct cfg_route *r, const struct cfg_virtual_service *vs,
                         const struct cfg_gateway *gw, struct cfg_match *buf,
                         struct cfg_route *view)
{
    *view = *r;
    if (!r->nmatch)
        return true;
    size_t n = 0;
    for (size_t i = 0; i < r->nmatch && n < GW_MAX_MATCHES; i++) {
        const struct cfg_match *m = &r->match[i];
        if (m->gateways.n && !gw_binds(&m->gateways, vs->meta.ns, gw))
            continue;
        buf[n] = *m;
        buf[n].gateways = (struct cfg_strs){0};
        n++;
    }
    view->match = buf;
    view->nmatch = n;
    return n > 0;
}

void gw_route_http(const struct cfg_snapshot *s, const struct gw_server *gs,
                   const struct route_source *src, const struct http_request_view *req,
                   struct gw_http_result *out)
{
    memset(out, 0, sizeof(*out));
    out->vs = best_vs(s, gs, req->authority, false);
    struct cfg_match buf[GW_MAX_MATCHES];
    for (size_t i = 0; out->vs && i < out->vs->nroutes; i++) {
        const struct cfg_route *r = &out->vs->routes[i];
        struct cfg_route view;
        if (!r->http || !gateway_view(r, out->vs, gs->gw, buf, &view))
            continue;
        /* match.port is the Gateway server's port. */
        if (http_route_matches(&view, src, (uint16_t)gs->srv->port, req)) {
            out->route = r;
            return;
        }
    }
}

static bool tls_match(const struct cfg_tls_match *m, const struct cfg_virtual_service *vs,
                      const struct gw_server *gs, const char *sni)
{
    if (m->port && m->port != gs->srv->port)
        return false;
    if (m->gateways.n && !gw_binds(&m->gateways, vs->meta.ns, gs->gw))
        return false;
    for (size_t i = 0; i < m->sni_hosts.n; i++)
        if (gw_host_matches(m->sni_hosts.v[i], sni))
            return true;
    return false;
}

const struct cfg_tls_route *gw_route_sni(const struct cfg_snapshot *s, const struct gw_server *gs,
                                         const char *sni, const struct cfg_virtual_service **vs)
{
    *vs = best_vs(s, gs, sni, true);
    for (size_t i = 0; *vs && i < (*vs)->ntls; i++) {
        const struct cfg_tls_route *r = &(*vs)->tls_routes[i];
        for (size_t m = 0; m < r->nmatch; m++)
            if (tls_match(&r->match[m], *vs, gs, sni))
                return r;
    }
    return NULL;
}

/* Does the server admit one of the VirtualService's hosts? */
static bool server_admits(const struct gw_server *gs, const struct cfg_virtual_service *vs)
{
    for (size_t i = 0; i < vs->hosts.n; i++)
        for (size_t h = 0; h < gs->srv->hosts.n; h++)
            if (gw_host_admits(gs->srv->hosts.v[h], gs->gw->meta.ns, vs->hosts.v[i], vs->meta.ns))
                return true;
    return false;
}

static bool tcp_match(const struct cfg_route *r, const struct cfg_virtual_service *vs,
                      const struct gw_server *gs, const struct route_source *src)
{
    if (!r->nmatch)
        return true;
    for (size_t i = 0; i < r->nmatch; i++) {
        struct cfg_match m = r->match[i];
        if (m.gateways.n && !gw_binds(&m.gateways, vs->meta.ns, gs->gw))
            continue;
        m.gateways = (struct cfg_strs){0}; /* decided here, not as the mesh's */
        if (!m.l7 && route_match_l4(&m, src, (uint16_t)gs->srv->port))
            return true;
    }
    return false;
}

const struct cfg_route *gw_route_tcp(const struct cfg_snapshot *s, const struct gw_server *gs,
                                     const struct route_source *src,
                                     const struct cfg_virtual_service **vs)
{
    *vs = NULL;
    for (size_t i = 0; i < cfg_count(s, CFG_VIRTUAL_SERVICE); i++) {
        const struct cfg_virtual_service *v = cfg_at(s, CFG_VIRTUAL_SERVICE, i);
        if (!gw_binds(&v->gateways, v->meta.ns, gs->gw) || !server_admits(gs, v))
            continue;
        for (size_t r = 0; r < v->nroutes; r++) {
            if (v->routes[r].http || !tcp_match(&v->routes[r], v, gs, src))
                continue;
            *vs = v;
            return &v->routes[r];
        }
    }
    return NULL;
}
