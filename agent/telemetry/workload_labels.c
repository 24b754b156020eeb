/* Workload labels from the configuration (see workload_labels.h). */
#include "telemetry/workload_labels.h"

#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "enroll/pods.h"
#include "proxy/records.h"

#define SET(l, i, ...)   snprintf((l)->v[i], sizeof((l)->v[i]), __VA_ARGS__)
#define SET_STR(l, i, s) str_copy((l)->v[i], sizeof((l)->v[i]), (s))

static const char *first_label(const struct cfg_labels *l, const char *a, const char *b)
{
    const char *v = cfg_label(l, a);
    return v ? v : b ? cfg_label(l, b) : NULL;
}

static const char *workload_name(const struct cfg_snapshot *s, const struct cfg_workload *w)
{
    struct cfg_iter it = {0};
    const struct cfg_deployment *d;
    while (w->pod && (d = cfg_next_in_ns(s, CFG_DEPLOYMENT, w->ns, &it)))
        if (d->selector.match.n && cfg_labels_match(&d->selector.match, &w->labels))
            return d->meta.name;
    return w->name;
}

/* The labels of one side: workload, namespace, principal, app, version,
 * canonical service and revision, in tcp_label order from `first`. */
static void set_side(const struct cfg_snapshot *s, const char *td, const struct cfg_workload *w,
                     bool source, struct tcp_labels *l)
{
    enum tcp_label wl = source ? TL_SOURCE_WORKLOAD : TL_DESTINATION_WORKLOAD;
    const char *name = workload_name(s, w);
    const char *app = first_label(&w->labels, "app", "app.kubernetes.io/name");
    const char *version = first_label(&w->labels, "version", "app.kubernetes.io/version");
    const char *csvc = first_label(&w->labels, "service.istio.io/canonical-name", NULL);
    const char *crev = first_label(&w->labels, "service.istio.io/canonical-revision", NULL);
    SET_STR(l, wl, name);
    SET_STR(l, source ? TL_SOURCE_WORKLOAD_NAMESPACE : TL_DESTINATION_WORKLOAD_NAMESPACE, w->ns);
    SET(l, source ? TL_SOURCE_PRINCIPAL : TL_DESTINATION_PRINCIPAL, "spiffe://%s/ns/%s/sa/%s", td,
        w->ns, w->service_account);
    if (app)
        SET_STR(l, source ? TL_SOURCE_APP : TL_DESTINATION_APP, app);
    if (version)
        SET_STR(l, source ? TL_SOURCE_VERSION : TL_DESTINATION_VERSION, version);
    SET_STR(l, source ? TL_SOURCE_CANONICAL_SERVICE : TL_DESTINATION_CANONICAL_SERVICE,
            csvc  ? csvc
            : app ? app
                  : name);
    SET_STR(l, source ? TL_SOURCE_CANONICAL_REVISION : TL_DESTINATION_CANONICAL_REVISION,
            crev      ? crev
            : version ? version
                      : "latest");
}

static const struct cfg_workload *local_workload(const struct cfg_snapshot *s,
                                                 const struct conn_record *rec)
{
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (pods_parse_ref(rec->pod, ns, name) != 0)
        return NULL;
    const struct cfg_pod *p = cfg_find(s, CFG_POD, ns, name);
    for (size_t i = 0; p && i < p->ips.n; i++) {
        const struct cfg_workload *w = cfg_workload_by_ip(s, &p->ips.v[i]);
        if (w && w->pod == p)
            return w;
    }
    return NULL;
}

static void set_service(struct tcp_labels *l, const char *fqdn, const char *name, const char *ns)
{
    SET_STR(l, TL_DESTINATION_SERVICE, fqdn);
    SET_STR(l, TL_DESTINATION_SERVICE_NAME, name);
    SET_STR(l, TL_DESTINATION_SERVICE_NAMESPACE, ns);
}

/* The first Service of the workload's namespace whose selector picks it. */
static void service_of(const struct cfg_snapshot *s, const struct cfg_workload *w,
                       struct tcp_labels *l)
{
    struct cfg_iter it = {0};
    const struct cfg_service *svc;
    while ((svc = cfg_next_in_ns(s, CFG_SERVICE, w->ns, &it))) {
        if (!svc->selector.set || !svc->selector.match.n ||
            !cfg_labels_match(&svc->selector.match, &w->labels))
            continue;
        const struct cfg_svc *v = cfg_svc_by_host(s, svc->meta.name, svc->meta.ns);
        if (v)
            set_service(l, v->fqdn, svc->meta.name, svc->meta.ns);
        return;
    }
}

void tcp_labels_from_config(const struct cfg_snapshot *s, const char *trust_domain,
                            const struct conn_record *rec, struct tcp_labels *l)
{
    bool outbound = strcmp(rec->direction, "outbound") == 0;
    const struct cfg_workload *local = local_workload(s, rec);
    struct meshd_addr peer_ip = outbound ? rec->upstream : rec->src;
    peer_ip.port = 0;
    const struct cfg_workload *peer = peer_ip.family ? cfg_workload_by_ip(s, &peer_ip) : NULL;
    /* The record's own principal for the peer is the verified one; keep it. */
    char verified[TCP_LABEL_MAX];
    enum tcp_label peer_principal = outbound ? TL_DESTINATION_PRINCIPAL : TL_SOURCE_PRINCIPAL;
    str_copy(verified, sizeof(verified), l->v[peer_principal]);
    if (local)
        set_side(s, trust_domain, local, outbound, l);
    if (peer)
        set_side(s, trust_domain, peer, !outbound, l);
    if (verified[0] || peer) /* plaintext: no peer principal, whatever the config says */
        str_copy(l->v[peer_principal], sizeof(l->v[peer_principal]), verified);
    const struct cfg_workload *dst = outbound ? peer : local;
    if (outbound && rec->dst_service[0]) {
        const struct cfg_svc *v = cfg_svc_by_host(s, rec->dst_service, NULL);
        if (v)
            set_service(l, v->fqdn, v->name, v->ns);
    } else if (dst) {
        service_of(s, dst, l);
    }
}
