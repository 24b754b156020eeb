/* The leaves of config/: names of kinds and enums, label selectors and
 * exportTo. They read no snapshot and call no other config file, so every
 * config file (and policy/, route/, telemetry/) may use them without a
 * cycle (docs/ARCHITECTURE.md, "Dependency order"). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

const char *cfg_kind_name(enum cfg_kind k)
{
    static const char *const names[CFG_KIND_COUNT] = {
        [CFG_NAMESPACE] = "Namespace",
        [CFG_SERVICE] = "Service",
        [CFG_POD] = "Pod",
        [CFG_DEPLOYMENT] = "Deployment",
        [CFG_SECRET] = "Secret",
        [CFG_GATEWAY] = "Gateway",
        [CFG_VIRTUAL_SERVICE] = "VirtualService",
        [CFG_DESTINATION_RULE] = "DestinationRule",
        [CFG_SERVICE_ENTRY] = "ServiceEntry",
        [CFG_WORKLOAD_ENTRY] = "WorkloadEntry",
        [CFG_PEER_AUTHENTICATION] = "PeerAuthentication",
        [CFG_AUTHORIZATION_POLICY] = "AuthorizationPolicy",
        [CFG_TELEMETRY] = "Telemetry",
        [CFG_K8S_GATEWAY] = "Gateway.gateway.networking.k8s.io",
        [CFG_HTTP_ROUTE] = "HTTPRoute",
        [CFG_TLS_ROUTE] = "TLSRoute",
        [CFG_TCP_ROUTE] = "TCPRoute",
        [CFG_REFERENCE_GRANT] = "ReferenceGrant",
    };
    return (unsigned)k < CFG_KIND_COUNT && names[k] ? names[k] : "?";
}

bool cfg_labels_match(const struct cfg_labels *selector, const struct cfg_labels *labels)
{
    /* Both sorted by key: one merge pass. */
    size_t j = 0;
    for (size_t i = 0; i < selector->n; i++) {
        while (j < labels->n && strcmp(labels->v[j].key, selector->v[i].key) < 0)
            j++;
        if (j == labels->n || strcmp(labels->v[j].key, selector->v[i].key) != 0 ||
            strcmp(labels->v[j].value, selector->v[i].value) != 0)
            return false;
    }
    return true;
}

const char *cfg_label(const struct cfg_labels *labels, const char *key)
{
    size_t lo = 0, hi = labels->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(labels->v[mid].key, key);
        if (c == 0)
            return labels->v[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool cfg_exported_to(const struct cfg_strs *export_to, const char *owner, const char *ns)
{
    if (export_to->n == 0)
        return true;
    for (size_t i = 0; i < export_to->n; i++) {
        const char *e = export_to->v[i];
        if (strcmp(e, "*") == 0 || strcmp(e, ns) == 0 ||
            (strcmp(e, ".") == 0 && strcmp(owner, ns) == 0))
            return true;
    }
    return false;
}

const char *cfg_mtls_name(enum cfg_mtls m)
{
    static const char *const names[] = {"UNSET", "PERMISSIVE", "STRICT", "DISABLE"};
    return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

const char *cfg_lb_name(enum cfg_lb lb)
{
    static const char *const names[] = {"",
                                        "ROUND_ROBIN",
                                        "LEAST_REQUEST",
                                        "RANDOM",
                                        "PASSTHROUGH",
                                        "consistentHash(useSourceIp)",
                                        "consistentHash(L7)"};
    return (unsigned)lb < sizeof(names) / sizeof(names[0]) ? names[lb] : "?";
}

void cfg_labels_format(const struct cfg_labels *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", i ? "," : "", l->v[i].key,
                                l->v[i].value);
}
