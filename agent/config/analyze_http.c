/* What a VirtualService http[] route gets on each port it applies to
 * (MSH0201), as meshd's carriers decide it (route/http_route.h's
 * protocol selection):
 *  - a port named HTTP, HTTP/2 or gRPC, or unnamed (sniffed): carried
 *    request by request, every match and action applies: nothing to say;
 *  - a port named TCP-like (tcp, tls, mongo, ..., appProtocol): carried
 *    as bytes. There the route applies per connection (its port,
 *    sourceLabels and sourceNamespace matches, its weights, its timeout
 *    and retries bound the connect), its request matches never match and
 *    its request actions are not applied: the warning says which;
 *  - on any port, what the HTTP carrier does not implement yet (mirror,
 *    corsPolicy, delegate).
 * Read-only over the snapshot, like every analyzer. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"
#include "config/protocol.h"

#define HOSTS_MAX 64 /* services one VirtualService's hosts name, deduplicated */

/* A bounded list ("a, b, c"); the text stays terminated, items that do
 * not fit are dropped and counted. A finding is at most 512 bytes, so a
 * port list keeps to PORTS_TEXT_MAX. */
#define PORTS_TEXT_MAX 120

struct list {
    char buf[400];
    size_t len, n, dropped;
    size_t cap;      /* 0: sizeof(buf) */
    const char *sep; /* NULL: ", " */
};

static void list_add(struct list *l, const char *item)
{
    size_t cap = l->cap && l->cap < sizeof(l->buf) ? l->cap : sizeof(l->buf);
    int w = snprintf(l->buf + l->len, cap - l->len, "%s%s",
                     !l->n    ? ""
                     : l->sep ? l->sep
                              : ", ",
                     item);
    if (w > 0 && (size_t)w < cap - l->len) {
        l->len += (size_t)w;
        l->n++;
    } else {
        l->buf[l->len] = '\0'; /* no part of an item that does not fit */
        l->dropped++;
    }
}

/* A ServiceEntry port read as a Service port: its protocol field names
 * the protocol, as Istio reads it. */
static struct cfg_service_port entry_port(const struct cfg_named_port *p)
{
    return (struct cfg_service_port){.app_protocol = p->protocol, .port = p->number};
}

static const char *port_label(const struct cfg_service_port *p)
{
    if (p->app_protocol)
        return p->app_protocol;
    if (p->name)
        return p->name;
    if (p->protocol && strcasecmp(p->protocol, "TCP") != 0)
        return p->protocol;
    return "unnamed, a server-first protocol's port";
}

enum bytes_kind { BYTES_TCP, BYTES_KINDS };

static int bytes_kind(enum http_proto proto)
{
    /* HTTP/2 and gRPC ports are carried per request (http/h2_session.h). */
    return proto == PROTO_TCP ? BYTES_TCP : -1;
}

/* Whether r has no match or a match naming `port` (or none); and in
 * *by_connection, whether one of those has no request attribute, so that
 * it admits connections on a byte carrier. */
static bool route_names_port(const struct cfg_route *r, uint16_t port, bool *by_connection)
{
    *by_connection = !r->nmatch;
    bool named = !r->nmatch;
    for (size_t m = 0; m < r->nmatch; m++) {
        if (r->match[m].port && r->match[m].port != port)
            continue;
        named = true;
        *by_connection |= !r->match[m].l7;
    }
    return named;
}

/* The ports of each byte carrier, apart by whether the route admits
 * connections there ([1]) or only requests ([0]). */
struct port_groups {
    struct list ports[BYTES_KINDS][2];
};

static void add_port(struct port_groups *g, const struct cfg_route *r,
                     const struct cfg_service_port *p)
{
    int kind = bytes_kind(http_port_protocol(p));
    bool by_conn;
    if (kind < 0 || !route_names_port(r, p->port, &by_conn))
        return;
    char item[160];
    snprintf(item, sizeof(item), "%u (%s)", p->port, port_label(p));
    g->ports[kind][by_conn].cap = PORTS_TEXT_MAX;
    list_add(&g->ports[kind][by_conn], item);
}

static bool has_ops(const struct cfg_header_ops *o)
{
    return o->nset || o->nadd || o->remove.n;
}

static bool has_header_edits(const struct cfg_route *r)
{
    const struct cfg_http_route *h = r->http_ext;
    if (has_ops(&h->headers.request) || has_ops(&h->headers.response))
        return true;
    for (size_t i = 0; h->dest_headers && i < r->ndest; i++)
        if (has_ops(&h->dest_headers[i].request) || has_ops(&h->dest_headers[i].response))
            return true;
    return false;
}

/* The request-level parts of r a byte carrier cannot apply (what the HTTP
 * carrier does not apply either is said once, by check_not_yet). */
static void request_parts(const struct cfg_route *r, struct list *l)
{
    const struct cfg_http_route *h = r->http_ext;
    struct list matches = {.sep = "/"};
    for (size_t m = 0; m < r->nmatch; m++) {
        bool again = !r->match[m].l7;
        for (size_t e = 0; e < m && !again; e++)
            again = r->match[e].l7 && strcmp(r->match[e].l7, r->match[m].l7) == 0;
        if (!again)
            list_add(&matches, r->match[m].l7);
    }
    if (matches.n) {
        char item[sizeof(matches.buf) + 16];
        snprintf(item, sizeof(item), "its %s match%s", matches.buf, matches.n > 1 ? "es" : "");
        list_add(l, item);
    }
    if (h->rewrite.set)
        list_add(l, "rewrite");
    if (has_header_edits(r))
        list_add(l, "headers");
    if (h->redirect.set)
        list_add(l, "redirect");
    if (h->direct.set)
        list_add(l, "directResponse");
    if (h->fault.delay_set || h->fault.abort_set)
        list_add(l, "fault");
}

/* What r does per connection where it admits connections. */
static void connection_parts(const struct cfg_route *r, struct list *l)
{
    bool port = false, labels = false, ns = false;
    for (size_t m = 0; m < r->nmatch; m++) {
        if (r->match[m].l7)
            continue;
        port |= r->match[m].port != 0;
        labels |= r->match[m].source_labels.n != 0;
        ns |= r->match[m].source_namespace != NULL;
    }
    struct list fields = {.sep = "/"};
    if (port)
        list_add(&fields, "port");
    if (labels)
        list_add(&fields, "sourceLabels");
    if (ns)
        list_add(&fields, "sourceNamespace");
    if (fields.n) {
        char item[sizeof(fields.buf) + 16];
        snprintf(item, sizeof(item), "its %s match%s", fields.buf, fields.n > 1 ? "es" : "");
        list_add(l, item);
    }
    if (r->ndest > 1)
        list_add(l, "its weights split connections rather than requests");
    else if (r->ndest)
        list_add(l, "connections go to its destination");
    if (r->timeout_ns)
        list_add(l, "its timeout bounds the connect including retries");
    if (r->has_retries)
        list_add(l, "its retries re-attempt the connect");
}

static void warn_bytes(const struct cfg_virtual_service *vs, const struct cfg_route *r, size_t idx,
                       int kind, bool by_connection, const struct list *ports,
                       struct cfg_diags *diags)
{
    static const char *const carried[] = {
        [BYTES_TCP] = "named for a TCP protocol, carried as bytes",
    };
    struct list req = {0}, conn = {0};
    request_parts(r, &req);
    const char *plural = ports->n + ports->dropped > 1 ? "s" : "";
    char where[PORTS_TEXT_MAX + 32];
    if (ports->dropped)
        snprintf(where, sizeof(where), "%s and %zu more", ports->buf, ports->dropped);
    else
        snprintf(where, sizeof(where), "%s", ports->buf);
    if (!by_connection) {
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "http[%zu]: port%s %s: %s; this route matches on request attributes (%s), so "
                     "it never matches there and connections fall through to the next route",
                     idx, plural, where, carried[kind], req.buf);
        return;
    }
    connection_parts(r, &conn);
    if (!r->ndest) {
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "http[%zu]: port%s %s: %s; this route has no destination, so connections "
                     "there skip it%s%s%s",
                     idx, plural, where, carried[kind], req.n ? " (" : "", req.buf,
                     req.n ? " not applied)" : "");
        return;
    }
    cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                 "http[%zu]: port%s %s: %s; there this route applies per connection (%s)%s%s", idx,
                 plural, where, carried[kind], conn.buf, req.n ? "; not applied: " : "", req.buf);
}

/* What the HTTP carrier does not apply yet, on any port. */
static void check_not_yet(const struct cfg_virtual_service *vs, const struct cfg_route *r,
                          size_t idx, struct cfg_diags *diags)
{
    const struct cfg_http_route *h = r->http_ext;
    if (h->nmirrors)
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "http[%zu]: %s is not applied yet: requests go to the route's destinations "
                     "only and no copy is sent",
                     idx, h->nmirrors > 1 ? "mirrors" : "mirror");
    if (h->cors.set)
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "http[%zu]: corsPolicy is not applied yet: preflight requests reach the app "
                     "and responses get no CORS headers from meshd",
                     idx);
    if (!r->ndest && !h->redirect.set && !h->direct.set)
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "http[%zu]: delegate is not applied: requests this route admits are answered "
                     "503 (no route)",
                     idx);
}

/* The services a VirtualService's hosts name, each once. */
static size_t vs_services(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                          const struct cfg_svc **out)
{
    size_t n = 0;
    for (size_t i = 0; i < vs->hosts.n && n < HOSTS_MAX; i++) {
        const struct cfg_svc *svc = cfg_svc_by_host(s, vs->hosts.v[i], vs->meta.ns);
        bool seen = !svc;
        for (size_t j = 0; j < n && !seen; j++)
            seen = out[j] == svc;
        if (!seen)
            out[n++] = svc;
    }
    return n;
}

void cfg_analyze_http_routes(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                             struct cfg_diags *diags)
{
    if (!cfg_vs_binds_mesh(vs))
        return; /* a gateway's routes: its proxy applies them */
    const struct cfg_svc *svcs[HOSTS_MAX];
    size_t nsvcs = vs_services(s, vs, svcs);
    size_t idx = 0;
    for (size_t i = 0; i < vs->nroutes; i++) {
        const struct cfg_route *r = &vs->routes[i];
        if (!r->http)
            continue;
        size_t at = idx++; /* index within http[] */
        if (!r->http_ext)
            continue;
        struct port_groups g = {0};
        for (size_t v = 0; v < nsvcs; v++) {
            const struct cfg_svc *svc = svcs[v];
            for (size_t p = 0; svc->service && p < svc->service->nports; p++)
                add_port(&g, r, &svc->service->ports[p]);
            for (size_t p = 0; svc->entry && p < svc->entry->nports; p++) {
                struct cfg_service_port sp = entry_port(&svc->entry->ports[p]);
                add_port(&g, r, &sp);
            }
        }
        for (int k = 0; k < BYTES_KINDS; k++)
            for (int c = 0; c < 2; c++)
                if (g.ports[k][c].n)
                    warn_bytes(vs, r, at, k, c, &g.ports[k][c], diags);
        check_not_yet(vs, r, at, diags);
    }
}
