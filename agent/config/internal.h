/* The snapshot's layout, shared by the loader, the indexer and the
 * analyzers (internal to the config module). */
#ifndef MESHD_CONFIG_INTERNAL_H
#define MESHD_CONFIG_INTERNAL_H

#include <stdatomic.h>

#include "config/config.h"
#include "config/index.h"
#include "policy/authz.h"

/* A VirtualService or DestinationRule host "*<suffix>" ("*" itself: an
 * empty suffix, every host). */
struct cfg_wild_host {
    const char *suffix;
    size_t len;
    const struct cfg_meta *m;
};

struct cfg_wild_hosts {
    struct cfg_wild_host *v; /* arena; most specific (longest) first */
    size_t n;
};

/* A ServiceEntry address block with one of its ports: looked up, longest
 * prefix first, when no exact VIP:port matches. */
struct cfg_vip_range {
    struct cfg_cidr net;
    struct cfg_vip vip; /* addr: the network with the port */
};

/* A resource of a kind meshd does not apply but the analyzers consult:
 * Nodes (topology labels), Gateway API Gateways (VirtualService refs). */
struct cfg_other {
    const char *kind, *group, *ns, *name; /* arena; ns NULL when not given */
    struct cfg_labels labels;
};

struct cfg_snapshot {
    atomic_int refs;
    struct arena arena;
    char version[17];
    const char *root_ns, *domain;
    size_t nfiles, bytes;
    struct cfg_list kinds[CFG_KIND_COUNT];
    struct cfg_index by_name[CFG_KIND_COUNT]; /* "ns/name" */
    struct cfg_index by_ns[CFG_KIND_COUNT];
    struct cfg_index svc_by_host;     /* fqdn -> cfg_svc */
    struct cfg_index vip;             /* ip:port -> cfg_vip */
    struct cfg_vip_range *vip_ranges; /* arena; longest prefix first */
    size_t nvip_ranges;
    struct cfg_index workload_by_ip; /* ip -> cfg_workload */
    struct cfg_index pods_by_node;   /* node -> cfg_workload */
    struct cfg_index pod_identities; /* "node\0ns\0sa" -> Pod (node authorizer) */
    struct cfg_index vs_by_host;     /* fqdn -> VirtualService */
    struct cfg_index dr_by_host;     /* fqdn -> DestinationRule */
    struct cfg_wild_hosts vs_wild, dr_wild;
    struct cfg_index workloads_by_label; /* "ns\0key\0value" -> cfg_workload */
    struct cfg_workload *workloads;
    size_t nworkloads;
    struct cfg_list others;     /* struct cfg_other, in load order */
    struct authz_policy *authz; /* compiled twin of kinds[CFG_AUTHORIZATION_POLICY] */
    /* AuthorizationPolicies by scope: "ns" for selector-less ones,
     * "ns\0key\0value" by their selector's first label. */
    struct cfg_index authz_plain, authz_by_label;
};

/* The other resource of this kind and API group ("" core) named ns/name
 * (ns NULL: any), or NULL. */
const struct cfg_other *cfg_find_other(const struct cfg_snapshot *s, const char *kind,
                                       const char *group, const char *ns, const char *name);

/* Builds every index; reports duplicates into diags. 0 or -ENOMEM. */
int cfg_snapshot_index(struct cfg_snapshot *s, struct cfg_diags *diags);

/* Reads Gateway servers' file certificates (below `dir`; NULL: refused,
 * said) into Secrets their servers name (gateway_files.c). 0 or -ENOMEM. */
int cfg_gateway_files(struct cfg_snapshot *s, const char *dir, struct cfg_diags *diags);

/* Translates the Gateway API kinds into generated Gateways and
 * VirtualServices (gateway_api.c), before the indexes. 0 or -ENOMEM. */
int cfg_gwapi_translate(struct cfg_snapshot *s, struct cfg_diags *diags);

#define CFG_GWAPI_MAX_ROUTES 262144 /* routes generated from the Gateway API, in all */

/* The lookups the translation makes before the snapshot's own indexes
 * exist, and its budget (gateway_api.c). */
struct cfg_gwapi_ix {
    struct cfg_index gateways;   /* "ns/name" -> cfg_k8s_gateway */
    struct cfg_index namespaces; /* name -> cfg_namespace */
    struct cfg_index secrets;    /* "ns/name" -> cfg_secret */
    struct cfg_index grants;     /* ns -> cfg_reference_grant, several a key */
    size_t routes_left;          /* generated routes still allowed */
    bool routes_full;            /* the budget ran out (said once) */
};
/* Builds them in the snapshot arena (gateway_api_ix.c). 0 or -ENOMEM. */
int cfg_gwapi_ix_build(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, size_t max_routes);
/* Does a ReferenceGrant of `to_ns` let a `from_kind` (Gateway API group)
 * of `from_ns` name the core `to_kind` called `name`? */
bool cfg_gwapi_granted(const struct cfg_gwapi_ix *ix, const char *from_kind, const char *from_ns,
                       const char *to_kind, const char *to_ns, const char *name);
/* One generated VirtualService: listener `gw`, `host`, the routes of
 * `kind` attached there (gateway_api_vs.c). 0 or -ENOMEM. */
int cfg_gwapi_build_vs(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                       struct cfg_gateway *gw, const char *host, enum cfg_kind kind,
                       const struct cfg_gwapi_route *const *routes, size_t n);

/* Compiles every AuthorizationPolicy (config/authz.c). 0 or -ENOMEM. */
int cfg_authz_compile(struct cfg_snapshot *s);

/* Analyzers shared between analyze.c and analyze_conflicts.c. */
bool cfg_vs_binds_mesh(const struct cfg_virtual_service *vs); /* no gateways, or "mesh" */
void cfg_analyze_vs_conflicts(const struct cfg_snapshot *s, struct cfg_diags *diags); /* IST0109 */
/* Gateway API routes' backends and Gateways' pods (analyze_gwapi.c). */
void cfg_analyze_gateway_api(const struct cfg_snapshot *s, struct cfg_diags *diags);
/* AUTO_PASSTHROUGH servers without a service, unused tls routes (analyze_gw_modes.c). */
void cfg_analyze_gateway_modes(const struct cfg_snapshot *s, struct cfg_diags *diags);
/* PeerAuthentication, AuthorizationPolicy, Telemetry, namespaces (analyze_security.c). */
void cfg_analyze_security(const struct cfg_snapshot *s, struct cfg_diags *diags);

/* Every resource of a kind, as `const type *var`. */
#define CFG_FOR_EACH(s, kind, type, var)                                                           \
    for (size_t i_##var = 0; i_##var < cfg_count((s), (kind)); i_##var++)                          \
        for (const type *var = cfg_at((s), (kind), i_##var); var; var = NULL)
/* MSH0201 for one VirtualService's http[] routes, per port protocol (analyze_http.c). */
void cfg_analyze_http_routes(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                             struct cfg_diags *diags);

/* Index keys for addresses (family + 16 bytes [+ port]). */
size_t cfg_ip_key(const struct meshd_addr *a, bool with_port, unsigned char key[20]);
/* The node authorizer's key: a service account of a namespace, on a node
 * ("node\0ns\0sa"). Its length, or -1 when it does not fit. */
int cfg_identity_key(char *buf, size_t len, const char *node, const char *ns, const char *sa);

#endif
