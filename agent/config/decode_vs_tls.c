/* A VirtualService's tls[] routes (part of VirtualService decoding, see
 * decode_istio.c): matches on sniHosts (required, host names with Istio's
 * wildcard rule), port and gateways, and TCP-like destinations; the
 * ingress gateway's PASSTHROUGH servers route by them. */
#include <string.h>

#include "config/decode.h"
#include "config/gateway.h"

static void decode_tls_match(struct cfg_dec *d, const struct ynode *n, struct cfg_tls_match *mt)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "sniHosts"))
            dec_strs(d, v, k, &mt->sni_hosts);
        else if (dec_is(k, "port"))
            dec_port(d, v, k, &mt->port);
        else if (dec_is(k, "gateways"))
            dec_strs(d, v, k, &mt->gateways);
        else if (!dec_is(k, "destinationSubnets") && !dec_is(k, "sourceLabels") &&
                 !dec_is(k, "sourceNamespace"))
            dec_unknown(d, k, v);
    }
    if (!mt->sni_hosts.n)
        dec_error(d, n, "sniHosts is required");
    for (size_t i = 0; i < mt->sni_hosts.n; i++)
        if (strcmp(mt->sni_hosts.v[i], "*") != 0 && !cfg_valid_wildcard_host(mt->sni_hosts.v[i]))
            dec_error(d, n, "sniHosts[%zu]: \"%.128s\" is not a valid (wildcard) domain name", i,
                      mt->sni_hosts.v[i]);
}

static void decode_tls_dest(struct cfg_dec *d, const struct ynode *n,
                            struct cfg_route_destination *rd)
{
    dec_route_destination(d, n, rd, NULL);
}

static void decode_tls_route(struct cfg_dec *d, const struct ynode *n, struct cfg_tls_route *r)
{
    r->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "match"))
            DECODE_LIST(d, v, k, struct cfg_tls_match, decode_tls_match, r->match, r->nmatch);
        else if (dec_is(k, "route"))
            DECODE_LIST(d, v, k, struct cfg_route_destination, decode_tls_dest, r->dest, r->ndest);
        else
            dec_unknown(d, k, v);
    }
    if (!r->nmatch)
        dec_error(d, n, "TLS route must have at least one match condition");
    if (!r->ndest)
        dec_error(d, n, "TLS route is required");
}

void dec_tls_routes(struct cfg_dec *d, const struct ynode *v, struct cfg_virtual_service *vs)
{
    struct cfg_tls_route *r = NULL;
    size_t n = 0;
    DECODE_LIST(d, v, "tls", struct cfg_tls_route, decode_tls_route, r, n);
    vs->tls_routes = r;
    vs->ntls = n;
}
