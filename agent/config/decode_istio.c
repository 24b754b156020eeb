/* networking.istio.io kinds. Istio's schemas are strict, so an unknown
 * field is reported (a typo such as `wieght` would otherwise be silently
 * ignored); valid fields meshd does not apply at L4 are accepted and
 * named in a warning, with the behaviour meshd applies instead. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"

/* ---- VirtualService ---- */

void dec_destination(struct cfg_dec *d, const struct ynode *n, struct cfg_destination *dst)
{
    dst->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "host")) {
            dec_str(d, v, k, &dst->host);
        } else if (dec_is(k, "subset")) {
            dec_str(d, v, k, &dst->subset);
        } else if (dec_is(k, "port")) {
            size_t m = dec_push(d, k);
            const char *pk;
            const struct ynode *pv;
            for (size_t j = 0; dec_each(d, v, &j, &pk, &pv);)
                if (dec_is(pk, "number"))
                    dec_port(d, pv, pk, &dst->port);
                else
                    dec_unknown(d, pk, pv);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!dst->host)
        dec_error(d, n, "host is required");
}

void dec_route_destination(struct cfg_dec *d, const struct ynode *n,
                           struct cfg_route_destination *rd, struct cfg_headers *headers)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "destination")) {
            size_t m = dec_push(d, k);
            dec_destination(d, v, &rd->dest);
            dec_pop(d, m);
        } else if (dec_is(k, "weight")) {
            rd->has_weight = dec_uint(d, v, k, 100000, &rd->weight);
        } else if (dec_is(k, "headers") && headers) {
            size_t m = dec_push(d, k);
            dec_http_headers(d, v, headers);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (ynode_is_null(ymap_get(n, "destination")))
        dec_error(d, n, "destination is required");
}

static void decode_tcp_destination(struct cfg_dec *d, const struct ynode *n,
                                   struct cfg_route_destination *rd)
{
    dec_route_destination(d, n, rd, NULL);
}

bool dec_l4_match_field(struct cfg_dec *d, const char *k, const struct ynode *v,
                        struct cfg_match *mt)
{
    if (dec_is(k, "port"))
        dec_port(d, v, k, &mt->port);
    else if (dec_is(k, "sourceLabels"))
        dec_labels(d, v, k, &mt->source_labels);
    else if (dec_is(k, "sourceNamespace"))
        dec_str(d, v, k, &mt->source_namespace);
    else if (dec_is(k, "gateways"))
        dec_strs(d, v, k, &mt->gateways);
    else if (dec_is(k, "destinationSubnets"))
        mt->l7 = "destinationSubnets"; /* not decided yet: treated as not matching */
    else
        return false;
    return true;
}

/* An L4MatchAttributes entry. */
static void decode_tcp_match(struct cfg_dec *d, const struct ynode *n, struct cfg_match *mt)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (!dec_l4_match_field(d, k, v, mt))
            dec_unknown(d, k, v);
}

static void decode_tcp_route(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r)
{
    r->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "match"))
            DECODE_LIST(d, v, k, struct cfg_match, decode_tcp_match, r->match, r->nmatch);
        else if (dec_is(k, "route"))
            DECODE_LIST(d, v, k, struct cfg_route_destination, decode_tcp_destination, r->dest,
                        r->ndest);
        else
            dec_unknown(d, k, v);
    }
    if (!r->ndest)
        dec_error(d, n, "route is required");
}

void decode_virtual_service(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_virtual_service *vs = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    struct cfg_route *http = NULL, *tcp = NULL;
    size_t nhttp = 0, ntcp = 0;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "hosts"))
            dec_strs(d, v, k, &vs->hosts);
        else if (dec_is(k, "gateways"))
            dec_strs(d, v, k, &vs->gateways);
        else if (dec_is(k, "exportTo"))
            dec_strs(d, v, k, &vs->export_to);
        else if (dec_is(k, "http"))
            DECODE_LIST(d, v, k, struct cfg_route, decode_http_route, http, nhttp);
        else if (dec_is(k, "tcp"))
            DECODE_LIST(d, v, k, struct cfg_route, decode_tcp_route, tcp, ntcp);
        else if (dec_is(k, "tls"))
            dec_tls_routes(d, v, vs); /* config/decode_gateway.c */
        else
            dec_unknown(d, k, v);
    }
    dec_pop(d, m);
    /* No hosts: a delegate, which only another VirtualService's
     * http[].delegate reaches (Istio's ValidateVirtualService). */
    if (!vs->hosts.n && vs->gateways.n)
        dec_error(d, spec, "spec: a delegate VirtualService (no hosts) must have no gateways");
    if (!vs->hosts.n && ntcp)
        dec_error(d, spec, "spec: a delegate VirtualService (no hosts) must have no tcp routes");
    if (!vs->hosts.n && ymap_get(spec, "tls"))
        dec_error(d, spec, "spec: a delegate VirtualService (no hosts) must have no tls routes");
    /* One list, http[] first: Istio's L4 view of an HTTP route is its
     * catch-all, and the first match wins across both. */
    struct cfg_route *all = arena_array(d->arena, nhttp + ntcp + 1, sizeof(*all));
    if (all) {
        for (size_t i = 0; i < nhttp; i++)
            all[i] = http[i];
        for (size_t i = 0; i < ntcp; i++)
            all[nhttp + i] = tcp[i];
        vs->routes = all;
        vs->nroutes = nhttp + ntcp;
    }
}

/* ---- DestinationRule ---- */

/* An endpoint address: an IP, a host name (DNS resolution), or a Unix
 * socket "unix:///path" or abstract "unix://@name" (Istio's CRD: absolute
 * or abstract, not a directory). */
static void decode_we_address(struct cfg_dec *d, const struct ynode *v,
                              struct cfg_workload_entry_spec *w)
{
    if (!dec_str(d, v, "address", &w->address) || !w->address)
        return;
    const char *a = w->address;
    if (strncmp(a, "unix://", 7) == 0) {
        size_t m = dec_push(d, "address");
        if (a[7] != '/' && a[7] != '@')
            dec_error(d, v, "UDS must be an absolute path or abstract socket: \"%.80s\"", a);
        else if (a[strlen(a) - 1] == '/')
            dec_error(d, v, "UDS may not be a directory: \"%.80s\"", a);
        dec_pop(d, m);
        return;
    }
    if (a[0] != '/' && (strchr(a, ':') || strspn(a, "0123456789.") == strlen(a)))
        w->has_ip = dec_ip(d, v, "address", &w->ip);
}

/* Istio's CRD: a port name is [a-zA-Z0-9](-?[a-zA-Z0-9])* under 63
 * characters, a number 1-65535. */
static void check_we_ports(struct cfg_dec *d, const struct ynode *ports)
{
    size_t mark = dec_push(d, "ports");
    for (size_t i = 0; ports->type == YNODE_MAP && i < ports->map.n; i++) {
        const struct ynode *key = ports->map.v[i].key, *val = ports->map.v[i].value;
        const char *name = key->scalar.s;
        size_t len = strlen(name);
        bool ok = len && len < 63 && isalnum((unsigned char)name[0]) &&
                  isalnum((unsigned char)name[len - 1]);
        for (size_t c = 0; ok && c < len; c++)
            ok = isalnum((unsigned char)name[c]) || name[c] == '-';
        if (!ok)
            dec_error(d, key, "\"%.64s\" is not a valid port name", name);
        uint16_t port = 0;
        dec_port(d, val, name, &port);
    }
    dec_pop(d, mark);
}

static void decode_we_spec(struct cfg_dec *d, const struct ynode *n,
                           struct cfg_workload_entry_spec *w)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "address")) {
            decode_we_address(d, v, w);
        } else if (dec_is(k, "ports")) {
            if (dec_labels(d, v, k, &w->ports))
                check_we_ports(d, v);
        } else if (dec_is(k, "labels")) {
            dec_labels(d, v, k, &w->labels);
        } else if (dec_is(k, "serviceAccount")) {
            dec_str(d, v, k, &w->service_account);
        } else if (dec_is(k, "network")) {
            dec_str(d, v, k, &w->network);
        } else if (dec_is(k, "weight")) {
            dec_uint(d, v, k, 1000000, &w->weight);
        } else if (!dec_is(k, "locality")) {
            dec_unknown(d, k, v);
        }
    }
    /* Istio's CRD rules for a WorkloadEntry and each endpoint. */
    if (!w->address && !w->network)
        dec_error(d, n, "address is required (or a network, for a gateway-reached endpoint)");
    if (w->address && strncmp(w->address, "unix://", 7) == 0 && w->ports.n)
        dec_error(d, ymap_get(n, "ports"), "ports: a UDS endpoint may not include ports");
}

static void decode_se_port(struct cfg_dec *d, const struct ynode *n, struct cfg_named_port *p)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "number"))
            dec_port(d, v, k, &p->number);
        else if (dec_is(k, "name"))
            dec_str(d, v, k, &p->name);
        else if (dec_is(k, "protocol"))
            dec_str(d, v, k, &p->protocol);
        else if (dec_is(k, "targetPort"))
            dec_port(d, v, k, &p->target_port);
        else
            dec_unknown(d, k, v);
    }
    if (!p->number)
        dec_error(d, n, "number is required");
}

/* Addresses or CIDR blocks ("13.229.188.59/32", "140.82.112.0/20"): a
 * full-length block is one address; wider ones are kept as blocks. */
static void decode_se_addresses(struct cfg_dec *d, const struct ynode *v,
                                struct cfg_service_entry *se)
{
    size_t n;
    struct meshd_addr *ips = dec_seq(d, v, "addresses", sizeof(*ips), &n);
    struct cfg_cidr *blocks = ips ? arena_array(d->arena, n ? n : 1, sizeof(*blocks)) : NULL;
    if (!ips || !blocks)
        return;
    size_t mark = dec_push(d, "addresses"), ni = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        size_t mi = dec_push_index(d, i);
        const struct ynode *e = v->seq.v[i];
        const char *slash = e->type == YNODE_SCALAR ? strchr(e->scalar.s, '/') : NULL;
        if (!slash) {
            if (dec_ip(d, e, "", &ips[ni]) && !ynode_is_null(e))
                ni++;
            dec_pop(d, mi);
            continue;
        }
        struct ynode addr = *e;
        char buf[64];
        snprintf(buf, sizeof(buf), "%.*s", (int)(slash - e->scalar.s), e->scalar.s);
        addr.scalar.s = buf;
        addr.scalar.len = strlen(buf);
        uint32_t prefix = 0;
        struct ynode pfx = *e;
        pfx.scalar.s = slash + 1;
        pfx.scalar.len = strlen(slash + 1);
        struct cfg_cidr c = {0};
        if (dec_ip(d, &addr, "", &c.addr) &&
            dec_uint(d, &pfx, "", c.addr.family == MESHD_AF_INET ? 32 : 128, &prefix)) {
            unsigned full = c.addr.family == MESHD_AF_INET ? 32 : 128;
            c.prefix = (uint8_t)prefix;
            if (prefix == full)
                ips[ni++] = c.addr;
            else
                blocks[nb++] = c;
        }
        dec_pop(d, mi);
    }
    dec_pop(d, mark);
    se->addresses = (struct cfg_ips){ips, ni};
    se->cidrs = (struct cfg_cidrs){blocks, nb};
}

static const struct ynode *at_or(const struct ynode *n, const char *key)
{
    const struct ynode *v = ymap_get(n, key);
    return v ? v : n;
}

/* Istio's ServiceEntry rules (its CRD's x-kubernetes-validations and
 * ValidateServiceEntry in pkg/config/validation), no stricter. */
static void validate_service_entry(struct cfg_dec *d, const struct ynode *spec,
                                   const struct cfg_service_entry *se)
{
    static const char *const resolutions[] = {"NONE",        "STATIC", "DNS", "DNS_ROUND_ROBIN",
                                              "DYNAMIC_DNS", NULL};
    static const char *const locations[] = {"MESH_EXTERNAL", "MESH_INTERNAL", NULL};
    int x;
    dec_enum(d, ymap_get(spec, "resolution"), "spec.resolution", resolutions, &x);
    dec_enum(d, ymap_get(spec, "location"), "spec.location", locations, &x);
    const char *res = se->resolution ? se->resolution : "NONE";
    for (size_t i = 0; i < se->hosts.n; i++)
        if (strcmp(se->hosts.v[i], "*") == 0)
            dec_error(d, at_or(spec, "hosts"), "spec.hosts[%zu]: a hostname cannot be \"*\"", i);
    if (se->workload_selector.set && ymap_get(spec, "endpoints"))
        dec_error(d, spec, "spec: only one of workloadSelector or endpoints can be set");
    for (size_t i = 0; i < se->workload_selector.match.n; i++)
        if (strchr(se->workload_selector.match.v[i].value, '*') ||
            strchr(se->workload_selector.match.v[i].key, '*'))
            dec_error(d, at_or(spec, "workloadSelector"),
                      "spec.workloadSelector: wildcard is not supported in selector");
    if (se->cidrs.n && strcmp(res, "NONE") != 0 && strcmp(res, "STATIC") != 0)
        dec_error(d, at_or(spec, "addresses"),
                  "spec.addresses: CIDR addresses are allowed only for NONE/STATIC resolution");
    for (size_t i = 0; i < se->nports; i++) {
        for (size_t j = 0; j < i; j++) {
            if (se->ports[i].number && se->ports[i].number == se->ports[j].number)
                dec_error(d, at_or(spec, "ports"), "spec.ports[%zu]: port number %u is duplicated",
                          i, se->ports[i].number);
            if (se->ports[i].name && se->ports[j].name &&
                strcmp(se->ports[i].name, se->ports[j].name) == 0)
                dec_error(d, at_or(spec, "ports"), "spec.ports[%zu]: port name %s is duplicated", i,
                          se->ports[i].name);
        }
    }
    if (strcmp(res, "NONE") == 0 && ymap_get(spec, "endpoints"))
        dec_error(d, at_or(spec, "endpoints"),
                  "spec.endpoints: resolution NONE cannot set endpoints");
    if (strcmp(res, "DNS_ROUND_ROBIN") == 0 && se->nendpoints > 1)
        dec_error(d, at_or(spec, "endpoints"),
                  "spec.endpoints: resolution DNS_ROUND_ROBIN cannot have more than one endpoint");
}

void decode_service_entry(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_service_entry *se = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "hosts")) {
            dec_strs(d, v, k, &se->hosts);
        } else if (dec_is(k, "addresses")) {
            decode_se_addresses(d, v, se);
        } else if (dec_is(k, "ports")) {
            DECODE_LIST(d, v, k, struct cfg_named_port, decode_se_port, se->ports, se->nports);
        } else if (dec_is(k, "location")) {
            dec_str(d, v, k, &se->location);
        } else if (dec_is(k, "resolution")) {
            dec_str(d, v, k, &se->resolution);
        } else if (dec_is(k, "endpoints")) {
            DECODE_LIST(d, v, k, struct cfg_workload_entry_spec, decode_we_spec, se->endpoints,
                        se->nendpoints);
        } else if (dec_is(k, "workloadSelector")) {
            size_t m2 = dec_push(d, k);
            se->workload_selector.set = true;
            dec_labels(d, ymap_get(v, "labels"), "labels", &se->workload_selector.match);
            dec_pop(d, m2);
        } else if (dec_is(k, "exportTo")) {
            dec_strs(d, v, k, &se->export_to);
        } else if (!dec_is(k, "subjectAltNames")) {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
    if (!se->hosts.n)
        dec_error(d, spec, "spec.hosts is required");
    validate_service_entry(d, spec, se);
}

void decode_workload_entry(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_workload_entry *we = out;
    size_t m = dec_push(d, "spec");
    decode_we_spec(d, ymap_get(doc, "spec"), &we->spec);
    dec_pop(d, m);
}
