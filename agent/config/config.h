/* meshd's configuration: Kubernetes and Istio YAML loaded into one
 * immutable, indexed snapshot.
 *
 *   cfg_load()  reads files and directory trees (bounded: file sizes, total
 *               bytes, documents, nesting), decodes every resource into the
 *               typed model (config/model.h), reports problems as
 *               diagnostics with file:line:col, and indexes what decoded.
 *   lookups     are hash-table reads on the immutable snapshot: O(1), no
 *               locks; a snapshot is shared by reference counting, so a
 *               connection can keep the one it started with while a reload
 *               swaps in the next.
 *
 * Resources with errors are left out of the snapshot; the agent applies a
 * snapshot only when the load had no errors (the last good one keeps
 * serving), `meshctl analyze` reports on whatever decoded. */
#ifndef MESHD_CONFIG_CONFIG_H
#define MESHD_CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"
#include "config/index.h"
#include "config/model.h"
#include "config/yaml.h"

struct cfg_load_opts {
    const char *root_namespace; /* mesh-wide policies; default "istio-system" */
    const char *domain;         /* default "cluster.local" */
    struct ylimits yaml;
    size_t max_file_bytes;  /* default 16 MiB */
    size_t max_total_bytes; /* default 256 MiB */
    size_t max_files;       /* default 10000 */
    /* Optional: each file's bytes exactly as read, before decoding (the
     * store persists the last good configuration from these). */
    void (*file_read)(void *ctx, const char *name, const char *buf, size_t len);
    void *file_read_ctx;
    /* Gateway servers' file certificates are read only below this
     * directory (config/gateway_files.c); NULL: refused. */
    const char *gateway_cert_dir;
    /* Optional: set (by another thread) to give the load up before its
     * next file, -ECANCELED: a store freed at SIGTERM does not wait for a
     * load of thousands of files. */
    const atomic_bool *cancel;
};

/* A workload: a Pod, or a WorkloadEntry / ServiceEntry endpoint. */
struct cfg_workload {
    const struct cfg_meta *meta; /* the Pod or WorkloadEntry (or ServiceEntry) */
    const char *ns, *name;
    struct cfg_labels labels;
    const char *service_account;
    const char *node; /* Pods only */
    struct cfg_ips ips;
    bool ready;
    const struct cfg_pod *pod; /* NULL for WorkloadEntries */
    const struct cfg_workload_entry_spec *entry;
};

/* A Service or a ServiceEntry host, with its endpoints resolved. */
struct cfg_svc {
    const char *fqdn;
    const char *ns, *name;
    const struct cfg_service *service; /* or */
    const struct cfg_service_entry *entry;
    const struct cfg_workload *const *endpoints; /* selector-matched, ready or not */
    size_t nendpoints;
};

/* A Service VIP:port. */
struct cfg_vip {
    struct meshd_addr addr; /* ip:port */
    const struct cfg_svc *svc;
    const struct cfg_service_port *port;     /* Services */
    const struct cfg_named_port *entry_port; /* ServiceEntries */
};

struct cfg_snapshot;

void cfg_load_opts_default(struct cfg_load_opts *o);
/* Always produces a snapshot (possibly empty) unless out of memory
 * (-ENOMEM); errors are in `diags`. */
int cfg_load(const char *const *paths, size_t npaths, const struct cfg_load_opts *opts,
             struct cfg_diags *diags, struct cfg_snapshot **out);

/* The same over one in-memory file (tests, fuzzing, stdin). */
int cfg_load_buffer(const char *name, const char *buf, size_t len, const struct cfg_load_opts *opts,
                    struct cfg_diags *diags, struct cfg_snapshot **out);

struct cfg_snapshot *cfg_snapshot_ref(struct cfg_snapshot *s);
void cfg_snapshot_unref(struct cfg_snapshot *s); /* accepts NULL */

/* Content hash of the files read (16 hex digits), stable across hosts. */
const char *cfg_snapshot_version(const struct cfg_snapshot *s);
const char *cfg_snapshot_root_namespace(const struct cfg_snapshot *s);
const char *cfg_snapshot_domain(const struct cfg_snapshot *s);
size_t cfg_snapshot_files(const struct cfg_snapshot *s);
size_t cfg_snapshot_bytes(const struct cfg_snapshot *s);
size_t cfg_snapshot_memory(const struct cfg_snapshot *s);

/* Every resource of a kind, in load order (sorted file path, then position). */
size_t cfg_count(const struct cfg_snapshot *s, enum cfg_kind kind);
const void *cfg_at(const struct cfg_snapshot *s, enum cfg_kind kind, size_t i);
/* By namespace and name; cluster-scoped kinds take ns NULL. */
const void *cfg_find(const struct cfg_snapshot *s, enum cfg_kind kind, const char *ns,
                     const char *name);
/* Resources of a kind in a namespace: iterate from {0} until NULL. */
const void *cfg_next_in_ns(const struct cfg_snapshot *s, enum cfg_kind kind, const char *ns,
                           struct cfg_iter *it);

/* Host names as Istio resolves them: a name without a dot is a short
 * name, completed in `ctx_ns` ("name.ctx_ns.svc.cluster.local"); any
 * other host ("github.com", "name.ns", "*", an IP) is taken as written.
 * ServiceEntry hosts are always full names. Writes the FQDN to buf;
 * returns buf or NULL if too long. */
const char *cfg_fqdn(const struct cfg_snapshot *s, const char *host, const char *ctx_ns, char *buf,
                     size_t len);
const struct cfg_svc *cfg_svc_by_host(const struct cfg_snapshot *s, const char *host,
                                      const char *ctx_ns);
/* The Service ("name.ns.svc.<domain>") or ServiceEntry host, exactly. */
const struct cfg_svc *cfg_svc_by_fqdn(const struct cfg_snapshot *s, const char *fqdn);
/* Every Service or ServiceEntry host of this FQDN (entries of several
 * namespaces may share one): iterate from {0} until NULL. */
const struct cfg_svc *cfg_next_svc_for_fqdn(const struct cfg_snapshot *s, const char *fqdn,
                                            struct cfg_iter *it);
const struct cfg_vip *cfg_vip_lookup(const struct cfg_snapshot *s,
                                     const struct meshd_addr *ip_port);
const struct cfg_workload *cfg_workload_by_ip(const struct cfg_snapshot *s,
                                              const struct meshd_addr *ip);
/* The workload a Pod or WorkloadEntry is, or NULL. Linear: for admin
 * commands, not the data path. */
const struct cfg_workload *cfg_workload_of(const struct cfg_snapshot *s, const struct cfg_meta *m);
/* Pods scheduled on `node`: iterate from {0} until NULL. */
const struct cfg_workload *cfg_next_on_node(const struct cfg_snapshot *s, const char *node,
                                            struct cfg_iter *it);
/* A Pod scheduled on `node` (spec.nodeName) running as service account
 * `sa` of namespace `ns`, or NULL: the node authorizer's question, asked on
 * every handshake with a node-signed certificate, so one hash lookup. */
const struct cfg_workload *cfg_pod_identity_on_node(const struct cfg_snapshot *s, const char *node,
                                                    const char *ns, const char *sa);
/* VirtualServices / DestinationRules whose host is `fqdn` (exact), in load order. */
const struct cfg_virtual_service *cfg_next_vs_for_host(const struct cfg_snapshot *s,
                                                       const char *fqdn, struct cfg_iter *it);
const struct cfg_destination_rule *cfg_next_dr_for_host(const struct cfg_snapshot *s,
                                                        const char *fqdn, struct cfg_iter *it);
/* Those whose host is a wildcard ("*.ns.svc.cluster.local", "*.local",
 * "*") matching `fqdn`: the most specific first, then in load order.
 * Iterate from *it = 0 until NULL. */
const struct cfg_virtual_service *cfg_next_vs_wildcard(const struct cfg_snapshot *s,
                                                       const char *fqdn, size_t *it);
const struct cfg_destination_rule *cfg_next_dr_wildcard(const struct cfg_snapshot *s,
                                                        const char *fqdn, size_t *it);
/* Istio's exportTo: whether a resource of namespace `owner` is visible from
 * namespace `ns`. Empty or "*": everywhere; ".": its own namespace; "~":
 * nowhere; otherwise the namespaces listed. */
bool cfg_exported_to(const struct cfg_strs *export_to, const char *owner, const char *ns);
/* Whether a service is visible from namespace `ns` (the Service's
 * networking.istio.io/exportTo annotation, a ServiceEntry's exportTo). */
bool cfg_svc_visible(const struct cfg_svc *svc, const char *ns);

/* The AuthorizationPolicies that apply to a workload (its namespace and
 * labels; labels NULL matches only selector-less policies), compiled for
 * policy/authz, copied into out[max]. Returns how many apply; more than
 * max means out holds the first max and the caller must fail closed. */
struct authz_policy;
size_t cfg_authz_select(const struct cfg_snapshot *s, const char *ns,
                        const struct cfg_labels *labels, struct authz_policy *out, size_t max);

/* Label matching: every selector label is present with the same value. */
bool cfg_labels_match(const struct cfg_labels *selector, const struct cfg_labels *labels);
const char *cfg_label(const struct cfg_labels *labels, const char *key);
/* "k=v,k2=v2" into buf (truncated to len, always terminated). */
void cfg_labels_format(const struct cfg_labels *l, char *buf, size_t len);
/* Istio's spelling of the enums, for output. */
const char *cfg_mtls_name(enum cfg_mtls m);
const char *cfg_lb_name(enum cfg_lb lb); /* "" for UNSET */
/* Whether the namespace is enrolled: istio.io/dataplane-mode=ambient, or
 * no dataplane mode and istio-injection=enabled. */
bool cfg_namespace_in_mesh(const struct cfg_snapshot *s, const char *ns);

#endif
