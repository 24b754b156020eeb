/* Gateway API resources other than routes (gateway.networking.k8s.io):
 * Gateway (listeners, TLS, allowedRoutes) and ReferenceGrant, and the
 * object references every Gateway API kind uses (decode_httproute.c
 * decodes the routes; config/gateway_api.c binds and translates them).
 *
 * Validation is the CRDs' (OpenAPI schema and CEL rules of
 * sigs.k8s.io/gateway-api, standard channel), no stricter: what the API
 * server would refuse is an error that rejects the resource; what it
 * accepts and Istio does not serve (another gatewayClassName, a protocol
 * Istio lacks) is kept and reported by the translation, as Istio's status
 * conditions would say it. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "config/decode.h"

#define MAX_LISTENERS   64 /* the CRD's maxItems */
#define MAX_CERT_REFS   64
#define MAX_KINDS       8
#define MAX_GRANT_PEERS 16

/* The CRD's Hostname: lower-case DNS labels, an optional "*." first; no
 * IP address, no bare "*", at most 253 characters. */
bool cfg_gwapi_valid_hostname(const char *h)
{
    size_t len = strlen(h);
    if (!len || len > 253)
        return false;
    if (h[0] == '*') {
        if (h[1] != '.')
            return false;
        h += 2;
    }
    bool digits_only = true;
    for (const char *p = h;;) {
        size_t n = strcspn(p, ".");
        if (!n || n > 63 || p[0] == '-' || p[n - 1] == '-')
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!islower((unsigned char)p[i]) && !isdigit((unsigned char)p[i]) && p[i] != '-')
                return false;
            digits_only &= isdigit((unsigned char)p[i]) != 0;
        }
        p += n;
        if (!*p)
            break;
        p++;
    }
    return !digits_only; /* "1.2.3.4" is an address, which the CRD refuses */
}

/* SectionName and ObjectName: a DNS subdomain (ObjectName up to 253). */
static void check_name(struct cfg_dec *d, const struct ynode *at, const char *what, const char *s)
{
    if (s && !cfg_valid_dns_subdomain(s))
        dec_error(d, at, "%s: \"%.80s\" is not a valid name (lowercase letters, digits, '-', '.')",
                  what, s);
}

void dec_gwapi_ref(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_ref *r)
{
    r->pos = dec_here(d, n);
    r->weight = 1;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "group"))
            dec_str(d, v, k, &r->group);
        else if (dec_is(k, "kind"))
            dec_str(d, v, k, &r->kind);
        else if (dec_is(k, "name"))
            dec_str(d, v, k, &r->name);
        else if (dec_is(k, "namespace"))
            dec_str(d, v, k, &r->ns);
        else if (dec_is(k, "sectionName"))
            dec_str(d, v, k, &r->section);
        else if (dec_is(k, "port"))
            dec_port(d, v, k, &r->port);
        else if (dec_is(k, "weight"))
            dec_uint(d, v, k, 1000000, &r->weight);
        else if (!dec_is(k, "filters")) /* backendRefs[].filters: checked by the route */
            dec_unknown(d, k, v);
    }
    if (!r->name)
        dec_error(d, n, "name is required");
    check_name(d, n, "name", r->name);
    check_name(d, n, "sectionName", r->section);
    if (r->ns && !cfg_valid_dns_label(r->ns))
        dec_error(d, n, "namespace: \"%.80s\" is not a valid namespace", r->ns);
    if (r->kind && !*r->kind)
        dec_error(d, n, "kind must not be empty");
}

/* ---- Gateway ---- */

static void decode_cert_ref(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_ref *r)
{
    dec_gwapi_ref(d, n, r);
}

static void decode_tls(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_listener *l)
{
    static const char *const modes[] = {"Terminate", "Passthrough", NULL};
    size_t m = dec_push(d, "tls");
    l->tls_mode = "Terminate";
    int x;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "mode") && dec_enum(d, v, k, modes, &x) && x >= 0)
            l->tls_mode = modes[x];
        else if (dec_is(k, "certificateRefs"))
            DECODE_LIST(d, v, k, struct cfg_gwapi_ref, decode_cert_ref, l->certs, l->ncerts);
        else if (!dec_is(k, "mode") && !dec_is(k, "options") && !dec_is(k, "frontendValidation"))
            dec_unknown(d, k, v);
    }
    if (l->ncerts > MAX_CERT_REFS)
        dec_error(d, n, "certificateRefs: at most %d items", MAX_CERT_REFS);
    if (!strcmp(l->tls_mode, "Terminate") && !l->ncerts && ynode_is_null(ymap_get(n, "options")))
        dec_error(d, n, "certificateRefs or options must be specified when mode is Terminate");
    dec_pop(d, m);
}

static void decode_kind_entry(struct cfg_dec *d, const struct ynode *n, const char **kind)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (dec_is(k, "kind"))
            dec_str(d, v, k, kind);
        else if (!dec_is(k, "group"))
            dec_unknown(d, k, v);
    if (!*kind)
        dec_error(d, n, "kind is required");
}

static void decode_allowed(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_listener *l)
{
    static const char *const froms[] = {"Same", "All", "Selector", NULL};
    size_t m = dec_push(d, "allowedRoutes");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "namespaces")) {
            size_t m2 = dec_push(d, k);
            const char *k2;
            const struct ynode *v2;
            int x;
            for (size_t j = 0; dec_each(d, v, &j, &k2, &v2);) {
                if (dec_is(k2, "from") && dec_enum(d, v2, k2, froms, &x) && x >= 0)
                    l->from = (enum cfg_gwapi_from)x;
                else if (dec_is(k2, "selector"))
                    dec_match_labels(d, v2, k2, &l->ns_selector);
                else if (!dec_is(k2, "from"))
                    dec_unknown(d, k2, v2);
            }
            if (l->from == CFG_FROM_SELECTOR && !l->ns_selector.set)
                dec_error(d, v, "selector must be specified when from is Selector");
            dec_pop(d, m2);
        } else if (dec_is(k, "kinds")) {
            const char **kinds = NULL;
            size_t nk = 0;
            DECODE_LIST(d, v, k, const char *, decode_kind_entry, kinds, nk);
            if (nk > MAX_KINDS)
                dec_error(d, v, "kinds: at most %d items", MAX_KINDS);
            l->kinds = (struct cfg_strs){kinds, nk};
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
}

static void decode_listener(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_listener *l)
{
    l->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "name"))
            dec_str(d, v, k, &l->name);
        else if (dec_is(k, "hostname"))
            dec_str(d, v, k, &l->hostname);
        else if (dec_is(k, "port"))
            dec_port(d, v, k, &l->port);
        else if (dec_is(k, "protocol"))
            dec_str(d, v, k, &l->protocol);
        else if (dec_is(k, "tls"))
            decode_tls(d, v, l);
        else if (dec_is(k, "allowedRoutes"))
            decode_allowed(d, v, l);
        else
            dec_unknown(d, k, v);
    }
    if (!l->name)
        dec_error(d, n, "name is required");
    check_name(d, n, "name", l->name);
    if (!l->port)
        dec_error(d, n, "port is required (1-65535)");
    if (!l->protocol || !*l->protocol)
        dec_error(d, n, "protocol is required");
    if (l->hostname && !cfg_gwapi_valid_hostname(l->hostname))
        dec_error(d, n, "hostname: \"%.128s\" is not a valid hostname (lower case, \"*.\" first)",
                  l->hostname);
    if (!l->protocol)
        return;
    bool tls_proto = !strcmp(l->protocol, "HTTPS") || !strcmp(l->protocol, "TLS");
    bool l4 = !strcmp(l->protocol, "TCP") || !strcmp(l->protocol, "UDP");
    if (tls_proto && !l->tls_mode)
        dec_error(d, n, "tls must be specified for protocols ['HTTPS', 'TLS']");
    if (!tls_proto && l->tls_mode && (l4 || !strcmp(l->protocol, "HTTP")))
        dec_error(d, n, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']");
    if (l4 && l->hostname)
        dec_error(d, n, "hostname must not be specified for protocols ['TCP', 'UDP']");
    if (!strcmp(l->protocol, "HTTPS") && l->tls_mode && !strcmp(l->tls_mode, "Passthrough"))
        dec_error(d, n, "tls mode must be Terminate for protocol HTTPS");
}

void decode_k8s_gateway(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_k8s_gateway *g = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "gatewayClassName"))
            dec_str(d, v, k, &g->class_name);
        else if (dec_is(k, "listeners"))
            DECODE_LIST(d, v, k, struct cfg_gwapi_listener, decode_listener, g->listeners,
                        g->nlisteners);
        else if (!dec_is(k, "addresses") && !dec_is(k, "infrastructure") &&
                 !dec_is(k, "backendTLS") && !dec_is(k, "allowedListeners"))
            dec_unknown(d, k, v);
    }
    dec_pop(d, m);
    const struct ynode *at = spec ? spec : doc;
    if (!g->class_name || !*g->class_name)
        dec_error(d, at, "spec.gatewayClassName is required");
    /* The standard CRD wants one; with ListenerSets (allowedListeners) a
     * Gateway may have none, and Istio accepts it: it serves nothing. */
    if (!g->nlisteners && !d->failed)
        dec_warn(d, at, MSH_GWAPI, "spec.listeners: no listener, nothing is served");
    if (g->nlisteners > MAX_LISTENERS)
        dec_error(d, at, "spec.listeners: at most %d listeners", MAX_LISTENERS);
    /* The CRD's CEL rules: names unique; port, protocol and hostname
     * combinations unique. */
    for (size_t i = 0; i < g->nlisteners && i < MAX_LISTENERS; i++) {
        const struct cfg_gwapi_listener *a = &g->listeners[i];
        for (size_t j = 0; j < i; j++) {
            const struct cfg_gwapi_listener *b = &g->listeners[j];
            if (a->name && b->name && !strcmp(a->name, b->name))
                dec_error(d, at, "spec.listeners[%zu]: listener name \"%.64s\" must be unique", i,
                          a->name);
            if (a->port == b->port && a->protocol && b->protocol &&
                !strcmp(a->protocol, b->protocol) &&
                !strcmp(a->hostname ? a->hostname : "", b->hostname ? b->hostname : ""))
                dec_error(d, at,
                          "spec.listeners[%zu]: combination of port, protocol and hostname must "
                          "be unique for each listener",
                          i);
        }
    }
}

/* ---- ReferenceGrant ---- */

static void decode_peer(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_grant_peer *p,
                        bool to)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "group"))
            dec_str(d, v, k, &p->group);
        else if (dec_is(k, "kind"))
            dec_str(d, v, k, &p->kind);
        else if (dec_is(k, "namespace") && !to)
            dec_str(d, v, k, &p->ns);
        else if (dec_is(k, "name") && to)
            dec_str(d, v, k, &p->name);
        else
            dec_unknown(d, k, v);
    }
    if (!p->group)
        dec_error(d, n, "group is required (\"\" for the core API group)");
    if (!p->kind || !*p->kind)
        dec_error(d, n, "kind is required");
    if (!to && !p->ns)
        dec_error(d, n, "namespace is required");
    else if (!to && !cfg_valid_dns_label(p->ns))
        dec_error(d, n, "namespace: \"%.80s\" is not a valid namespace", p->ns);
}

static void decode_from(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_grant_peer *p)
{
    decode_peer(d, n, p, false);
}

static void decode_to(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_grant_peer *p)
{
    decode_peer(d, n, p, true);
}

void decode_reference_grant(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_reference_grant *g = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "from"))
            DECODE_LIST(d, v, k, struct cfg_gwapi_grant_peer, decode_from, g->from, g->nfrom);
        else if (dec_is(k, "to"))
            DECODE_LIST(d, v, k, struct cfg_gwapi_grant_peer, decode_to, g->to, g->nto);
        else
            dec_unknown(d, k, v);
    }
    dec_pop(d, m);
    const struct ynode *at = spec ? spec : doc;
    if (!g->nfrom || g->nfrom > MAX_GRANT_PEERS)
        dec_error(d, at, "spec.from: 1 to %d items are required", MAX_GRANT_PEERS);
    if (!g->nto || g->nto > MAX_GRANT_PEERS)
        dec_error(d, at, "spec.to: 1 to %d items are required", MAX_GRANT_PEERS);
}
