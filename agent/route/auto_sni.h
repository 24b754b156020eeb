/* The SNI an AUTO_PASSTHROUGH gateway server routes by: Istio's cluster
 * name of a service port, its '|' written "_." (BuildDNSSrvSubsetKey):
 *
 *   outbound_.<port>_.<subset>_.<host>      e.g. outbound_.80_._.a.ns.svc.cluster.local
 *
 * Envoy matches the whole name against the filter chains Istio generates
 * for every (service, port, DestinationRule subset) whose host the server
 * admits; meshd parses it, then decides the same question from the
 * configuration (mesh/gateway_router.c). The name is hostile input: the
 * parse is strict (no leading zero, port 1-65535, the subset a DNS label or
 * empty, the host a DNS name of lowercase labels), anything else -EINVAL.
 * Pure function. */
#ifndef MESHD_ROUTE_AUTO_SNI_H
#define MESHD_ROUTE_AUTO_SNI_H

#include <stdint.h>

#define GW_AUTO_SUBSET_MAX 64  /* a DNS label and its NUL */
#define GW_AUTO_HOST_MAX   254 /* a DNS name and its NUL */

struct gw_auto_sni {
    uint16_t port;
    char subset[GW_AUTO_SUBSET_MAX]; /* "": the whole service */
    char host[GW_AUTO_HOST_MAX];
};

/* 0, or -EINVAL when `sni` is not of that form. */
int gw_auto_sni_parse(const char *sni, struct gw_auto_sni *out);

#endif
