/* The mesh router (see mesh.h): the outbound route of a captured
 * connection on the live snapshot (an enrolled pod, a mesh workload over
 * HBONE, a Service through its VirtualServices and DestinationRules, else
 * passthrough), the clusters and outlier accounting behind it, and the
 * HBONE pool and server it owns. The identities are in identity.c. */
#include "mesh/mesh.h"
#include "mesh/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/store.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "enroll/pod_source.h"
#include "enroll/pods.h"
#include "hbone/pool.h"
#include "http/proxy.h"
#include "mesh/internal.h"
#include "pki/pki.h"
#include "proxy/hbone_inbound.h"
#include "proxy/outbound.h"
#include "proxy/records.h"
#include "route/clusters.h"
#include "route/resolve.h"

#define HANDSHAKE_TIMEOUT_NS (10ull * 1000000000ull)
#define IDLE_TIMEOUT_NS      (60ull * 1000000000ull)

static int authorize(void *ctx, const struct pod *pod, const char *peer_id,
                     const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct mesh *m = ctx;
    return m->authorize ? m->authorize(m->authorize_ctx, pod, peer_id, src, dst) : 0;
}

static int authorize_http(void *ctx, const struct pod *pod, const char *peer_id,
                          const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct mesh *m = ctx;
    return m->authorize_http ? m->authorize_http(m->authorize_ctx, pod, peer_id, src, dst) : 0;
}

static void pool_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                             const struct hbone_stream_stats *stats)
{
    struct mesh *m = ctx;
    outbound_on_stream_done(m->outbound, st, stream_ctx, err, stats);
}

static void http_pool_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                                  const struct hbone_stream_stats *stats)
{
    struct mesh *m = ctx;
    http_proxy_on_stream_done(m->http, st, stream_ctx, err, stats);
}

int mesh_hbone_attach(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    return hbone_inbound_attach_pod(m->server, pod);
}

void mesh_hbone_detach(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    hbone_inbound_detach_pod(m->server, pod);
}

void mesh_hbone_quiesce(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    hbone_inbound_quiesce_pod(m->server, pod);
}

int mesh_new(struct loop *loop, struct conns *conns, const struct mesh_opts *opts,
             struct mesh **out)
{
    struct mesh *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->authorize = opts->authorize;
    m->authorize_ctx = opts->authorize_ctx;
    m->authorize_http = opts->authorize_http;
    m->local_fast_path = opts->local_fast_path;
    m->wants_http = opts->wants_http;
    m->http_ctx = opts->http_ctx;
    int rc = mesh_identity_init(m, opts);
    if (rc) {
        free(m);
        return rc;
    }
    struct hbone_pool_opts po = {.owner = opts->owner,
                                 .max_streams = HBONE_MAX_STREAMS,
                                 .idle_timeout_ns = IDLE_TIMEOUT_NS,
                                 .handshake_timeout_ns = HANDSHAKE_TIMEOUT_NS,
                                 .verify_server = mesh_verify_server,
                                 .verify_ctx = m,
                                 .on_stream_done = pool_stream_done,
                                 .stream_ctx = m,
                                 .give_back = true}; /* the outbound proxy retries */
    /* The HTTP carrier's tunnels: one stream per upstream HTTP/1.1
     * connection, kept alive across requests; failures reach it as the
     * stream's socket closing, so nothing is given back. */
    struct hbone_pool_opts hpo = po;
    hpo.on_stream_done = http_pool_stream_done;
    hpo.stream_ctx = m;
    hpo.give_back = false;
    struct hbone_inbound_opts io = {.port = MESHD_PORT_HBONE,
                                    .handshake_timeout_ns = HANDSHAKE_TIMEOUT_NS,
                                    .idle_timeout_ns = IDLE_TIMEOUT_NS,
                                    .server_ctx = mesh_server_ctx,
                                    .verify_client = mesh_verify_client,
                                    .authorize = authorize,
                                    .ctx = m,
                                    .wants_http = opts->wants_http,
                                    .authorize_http = authorize_http,
                                    .serve_http = opts->serve_http,
                                    .http_ctx = opts->http_ctx};
    lb_state_init(&m->rng, (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)m);
    if ((rc = clusters_new((uint64_t)time(NULL), &m->clusters)) != 0 ||
        (rc = hbone_pool_new(loop, &po, &m->pool)) != 0 ||
        (rc = hbone_pool_new(loop, &hpo, &m->http_pool)) != 0 ||
        (rc = hbone_inbound_new(loop, conns, &io, &m->server)) != 0) {
        mesh_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mesh_free(struct mesh *m)
{
    if (!m)
        return;
    hbone_pool_free(m->pool);
    hbone_pool_free(m->http_pool);
    hbone_inbound_free(m->server);
    clusters_free(m->clusters);
    http_route_memo_free(m->route_memo);
    mesh_identity_deinit(m);
    free(m);
}

void mesh_set_pods(struct mesh *m, struct pods *pods)
{
    m->pods = pods;
}

void mesh_set_config(struct mesh *m, struct cfg_store *config)
{
    m->config = config;
}

void mesh_get_stats(const struct mesh *m, struct mesh_stats *st)
{
    struct hbone_pool_stats ps, hps;
    hbone_pool_get_stats(m->pool, &ps);
    hbone_pool_get_stats(m->http_pool, &hps); /* the HTTP carrier's tunnels count too */
    ps.sessions_opened += hps.sessions_opened;
    ps.sessions_reused += hps.sessions_reused;
    ps.sessions += hps.sessions;
    st->renewals = m->renewals;
    st->sessions_opened = ps.sessions_opened;
    st->sessions_reused = ps.sessions_reused;
    st->sessions = ps.sessions;
    st->no_route = m->no_route;
    st->no_endpoint = m->no_endpoint;
    st->overflows = m->overflows;
    st->ejections = m->ejections;
    st->clusters = clusters_count(m->clusters);
    struct hbone_inbound_stats hs;
    hbone_inbound_get_stats(m->server, &hs);
    st->server_self_calls = hs.self_calls;
    st->handshakes_pending = hs.pending;
    st->handshakes_refused = hs.handshakes_refused;
}

struct hbone_pool *mesh_pool(const struct mesh *m)
{
    return m->pool;
}

struct hbone_pool *mesh_http_pool(const struct mesh *m)
{
    return m->http_pool;
}

void mesh_set_http(struct mesh *m, struct http_proxy *hp)
{
    m->http = hp;
}

void mesh_set_outbound(struct mesh *m, void *outbound)
{
    m->outbound = outbound;
}

/* The pod's address of the same family as `like`, for Forwarded. */
static struct meshd_addr pod_addr_like(const struct pod *pod, const struct meshd_addr *like)
{
    for (size_t i = 0; i < pod->nips; i++)
        if (pod->ips[i].family == like->family)
            return pod->ips[i];
    return (struct meshd_addr){0};
}

void mesh_refuse(struct outbound_route *out, enum resp_flag flag)
{
    out->action = OUTBOUND_REFUSE;
    out->response_flag = flag;
}

/* An HBONE tunnel from `src` to `target` (ip:port), whose server must
 * prove the identity of dst_ns/dst_sa. */
static void route_hbone(struct mesh *m, const struct pod *src, const struct meshd_addr *target,
                        const char *dst_ns, const char *dst_sa, struct outbound_route *out)
{
    const struct pod_identity *sid = src->identity;
    out->action = OUTBOUND_HBONE;
    out->target = *target;
    out->client_ctx = sid->client;
    out->source = pod_addr_like(src, target);
    str_copy(out->key.src_id, sizeof(out->key.src_id), sid->cert->spiffe_id);
    /* spiffe://<trust domain>/ns/<namespace>/sa/<account>, whole or not at all */
    char *id = out->key.dst_id;
    size_t cap = sizeof(out->key.dst_id), n = 0;
    if (!str_append(id, cap, &n, "spiffe://") || !str_append(id, cap, &n, m->trust_domain) ||
        !str_append(id, cap, &n, "/ns/") || !str_append(id, cap, &n, dst_ns) ||
        !str_append(id, cap, &n, "/sa/") || !str_append(id, cap, &n, dst_sa ? dst_sa : "default")) {
        /* An identity we cannot express can never be verified: refuse. */
        mesh_refuse(out, RESP_FLAG_NR);
        return;
    }
    out->key.dst = *target;
    out->key.dst.port = htons(MESHD_PORT_HBONE);
}

/* Sends to a workload: over HBONE when it is in the mesh (a pod enrolled
 * here, or a workload of an ambient namespace), else plain TCP. */
void mesh_route_to_workload(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                            const struct cfg_workload *w, const struct meshd_addr *target,
                            struct outbound_route *out)
{
    const struct pod *local = m->pods ? pods_find_ip(m->pods, target) : NULL;
    if (local && local->identity) {
        route_hbone(m, src, target, local->ns, local->sa, out);
    } else if (w && route_in_mesh(snap, w)) {
        route_hbone(m, src, target, w->ns, w->service_account, out);
    } else {
        out->action = OUTBOUND_PASSTHROUGH;
        out->target = *target;
    }
}

/* The endpoint's address in the family the app used, with the port. */
static bool endpoint_addr(const struct cfg_workload *w, uint8_t family, uint16_t port,
                          struct meshd_addr *out)
{
    for (size_t i = 0; i < w->ips.n; i++) {
        if (w->ips.v[i].family == family) {
            *out = w->ips.v[i];
            out->port = htons(port);
            return true;
        }
    }
    return false;
}

/* Istio's outlierDetection, with its defaults for the fields not given. */
static void outlier_from_policy(const struct cfg_outlier *o, struct outlier_config *oc)
{
    memset(oc, 0, sizeof(*oc));
    if (!o->set)
        return;
    outlier_config_defaults(oc);
    if (o->consecutive_errors)
        oc->consecutive_errors = o->consecutive_errors;
    if (o->base_ejection_ns)
        oc->base_ejection_ns = o->base_ejection_ns;
    if (o->has_max_ejection)
        oc->max_ejection_percent = o->max_ejection_percent;
    if (o->has_min_health)
        oc->min_health_percent = o->min_health_percent;
}

/* How many connections (L4) or requests in flight (HTTP) a cluster takes
 * before Envoy's circuit breakers overflow; 0: no limit. At L4,
 * connectionPool.tcp.maxConnections. Per request, each in flight holds one
 * upstream connection, so maxConnections are busy and Envoy would queue up
 * to http1MaxPendingRequests more before overflowing; http2MaxRequests
 * bounds requests in flight whatever the connections. */
static uint64_t pool_limit(const struct cfg_conn_pool *p, bool per_request)
{
    if (!per_request)
        return p->max_connections;
    uint64_t lim = 0;
    if (p->max_connections && p->http.max_pending)
        lim = (uint64_t)p->max_connections + p->http.max_pending;
    if (p->http.max_requests && (!lim || p->http.max_requests < lim))
        lim = p->http.max_requests;
    return lim;
}

void mesh_route_service(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                        const struct meshd_addr *orig_dst, struct route_cluster *c,
                        struct outbound_route *out)
{
    struct cluster_state *cs = clusters_get(m->clusters, c->svc->fqdn, c->subset, c->port);
    enum lb_policy policy = route_lb_policy(c->policy.lb);
    if (policy == LB_PASSTHROUGH) {
        out->action = OUTBOUND_PASSTHROUGH;
        return;
    }
    uint64_t max = pool_limit(&c->policy.pool, out->per_request);
    if (max && cs->active >= max) {
        /* Envoy's circuit breakers: overflow, flag UO. */
        cs->overflows++;
        m->overflows++;
        log_ratelimited(LOG_INFO,
                        "mesh: %s%s%s port %u at its connectionPool limit %llu; refused (UO)",
                        c->svc->fqdn, c->subset ? " subset " : "", c->subset ? c->subset : "",
                        c->port, (unsigned long long)max);
        mesh_refuse(out, RESP_FLAG_UO);
        return;
    }
    uint32_t max_retries = c->policy.pool.http.max_retries;
    if (out->retry && out->per_request && max_retries && cs->retries >= max_retries) {
        cs->retry_overflows++; /* Envoy's upstream_rq_retry_overflow */
        log_ratelimited(LOG_INFO,
                        "mesh: %s port %u has %u retries in flight (maxRetries); "
                        "the failure stands",
                        c->svc->fqdn, c->port, cs->retries);
        mesh_refuse(out, RESP_FLAG_URX);
        out->retry_overflow = true;
        return;
    }
    out->max_requests_per_conn = c->policy.pool.http.max_requests_per_conn;
    out->idle_timeout_ns = c->policy.pool.http.idle_timeout_ns;
    size_t n = 0;
    int index[ROUTE_MAX_ENDPOINTS], slot[ROUTE_MAX_ENDPOINTS];
    for (size_t i = 0; i < c->nendpoints; i++) {
        struct meshd_addr a;
        if (!endpoint_addr(c->endpoints[i], orig_dst->family, c->target_ports[i], &a))
            continue;
        int e = cluster_endpoint(cs, &a);
        m->eps[n] = (struct lb_endpoint){.addr = a};
        if (e >= 0) {
            m->eps[n].active = cs->eps[e].active;
            m->eps[n].outlier = cs->eps[e].outlier;
        }
        slot[n] = e;
        index[n++] = (int)i;
    }
    struct outlier_config oc;
    outlier_from_policy(&c->policy.outlier, &oc);
    if (out->per_request && oc.enabled) {
        /* Per request Envoy counts consecutive 5xx (or gateway errors). */
        const struct cfg_outlier *o = &c->policy.outlier;
        uint32_t in_row = o->consecutive_5xx ? o->consecutive_5xx : o->consecutive_gateway;
        if (in_row)
            oc.consecutive_errors = in_row;
    }
    /* A retry avoids the endpoint that just failed, when another exists. */
    int exclude = -1;
    for (size_t i = 0; out->avoid_cluster == cs && i < n; i++)
        if (slot[i] >= 0 && slot[i] == out->avoid_endpoint)
            exclude = (int)i;
    struct meshd_addr from = pod_addr_like(src, orig_dst);
    int pick = lb_pick(policy, &cs->lb, m->eps, n, &from, &oc, loop_now_ns(), exclude);
    if (pick < 0) {
        m->no_endpoint++;
        log_ratelimited(LOG_WARN, "mesh: %s%s%s port %u has no ready endpoint; refused",
                        c->svc->fqdn, c->subset ? " subset " : "", c->subset ? c->subset : "",
                        c->port);
        mesh_refuse(out, RESP_FLAG_UH);
        return;
    }
    mesh_route_to_workload(m, snap, src, c->endpoints[index[pick]], &m->eps[pick].addr, out);
    if (out->action == OUTBOUND_REFUSE)
        return;
    /* connectionPool.tcp for the plain-TCP connect (HBONE sessions are
     * shared: they keep their own handshake timeout and keepalive). */
    const struct cfg_conn_pool *pool = &c->policy.pool;
    out->tuning = (struct upstream_tuning){.connect_timeout_ms =
                                               (uint32_t)(pool->connect_timeout_ns / 1000000),
                                           .keepalive = pool->keepalive,
                                           .keepalive_time_s = pool->keepalive_time_s,
                                           .keepalive_interval_s = pool->keepalive_interval_s,
                                           .keepalive_probes = pool->keepalive_probes};
    /* Counted now, released by mesh_conn_closed() when the record ends. */
    cluster_acquire(cs, slot[pick]);
    if (out->retry && out->per_request) {
        cs->retries++;
        out->retry_held = true;
    }
    out->cluster = cs;
    out->endpoint = slot[pick];
    out->service = c->svc->fqdn; /* valid for the call: the record copies it */
    /* Istio retries an HTTP route's failed connect twice unless told; TCP
     * routes and direct service traffic get what the route says (none). */
    const struct cfg_route *r = c->route;
    out->retries = !r ? 0 : r->has_retries ? r->retries : r->http ? 2 : 0;
    out->per_try_timeout_ns = r ? r->per_try_timeout_ns : 0;
    out->timeout_ns = r ? r->timeout_ns : 0;
    out->outlier = oc;
}

/* The client as the configuration knows it: its enrolled namespace and
 * its Pod object's labels (never another resource naming its IP). */
struct route_source mesh_source_of(const struct cfg_snapshot *snap, const struct pod *src)
{
    struct route_source rs = {.ns = src->ns};
    const struct cfg_labels *labels = pod_source_labels(snap, src);
    if (labels)
        rs.labels = *labels;
    return rs;
}

/* The same-node fast path: an L4 tunnel to a pod enrolled here needs no
 * TLS (this agent holds both identities and makes the destination's
 * decisions itself, proxy/local_path.c). A destination that takes the
 * connection request by request (HTTP at the destination: L7 policy)
 * keeps HBONE, where its HTTP carrier serves the stream. */
static void route_local(struct mesh *m, struct outbound_route *out)
{
    if (!m->local_fast_path || out->action != OUTBOUND_HBONE || !m->pods)
        return;
    const struct pod *dst = pods_find_ip(m->pods, &out->target);
    if (!dst || !dst->identity)
        return;
    if (m->wants_http && m->wants_http(m->http_ctx, dst, &out->target, false))
        return;
    out->action = OUTBOUND_LOCAL;
    out->local_pod = dst;
    memset(&out->key.dst, 0, sizeof(out->key.dst)); /* no 15008: the record says no HBONE */
}

static void mesh_route_l4(struct mesh *m, const struct pod *src, const struct meshd_addr *orig_dst,
                          struct outbound_route *out);

void mesh_route(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                struct outbound_route *out)
{
    struct mesh *m = ctx;
    mesh_route_l4(m, src, orig_dst, out);
    route_local(m, out);
}

/* A captured connection's route as bytes: HBONE, passthrough or refused. */
static void mesh_route_l4(struct mesh *m, const struct pod *src, const struct meshd_addr *orig_dst,
                          struct outbound_route *out)
{
    out->action = OUTBOUND_PASSTHROUGH;
    if (!src->identity) {
        /* Pending or contradicted by its Pod object: nothing leaves the
         * pod, neither through the mesh nor around it. */
        log_ratelimited(LOG_INFO, "mesh: %s/%s has no identity (%s); outbound refused", src->ns,
                        src->name, src->binding_why);
        mesh_refuse(out, RESP_FLAG_DENY);
        return;
    }
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    if (snap) {
        struct route_source rs = mesh_source_of(snap, src);
        struct route_result rr;
        route_resolve(snap, &rs, orig_dst, &m->rng, &m->scratch, &rr);
        switch (rr.kind) {
        case ROUTE_SERVICE:
            mesh_route_service(m, snap, src, orig_dst, &m->scratch, out);
            return;
        case ROUTE_WORKLOAD:
            mesh_route_to_workload(m, snap, src, rr.workload, orig_dst, out);
            return;
        case ROUTE_NO_ROUTE:
            m->no_route++;
            log_ratelimited(LOG_WARN, "mesh: no route for %s port %u: %s; refused",
                            m->scratch.svc->fqdn, m->scratch.port, rr.why);
            mesh_refuse(out, RESP_FLAG_NR);
            return;
        case ROUTE_PASSTHROUGH:
            break;
        }
    }
    /* Not in the configuration: a pod enrolled here is still in the mesh. */
    mesh_route_to_workload(m, snap, src, NULL, orig_dst, out);
    if (out->action == OUTBOUND_PASSTHROUGH)
        out->target = (struct meshd_addr){0}; /* as the app asked */
}

size_t mesh_revalidate(struct mesh *m)
{
    return hbone_inbound_revalidate(m->server);
}

/* Releases what routing counted for one attempt and reports its outcome
 * to outlier detection. */
static void release_attempt(struct mesh *m, struct cluster_state *cs, int32_t endpoint,
                            const struct outlier_config *oc, bool failed)
{
    if (!cluster_release(cs, endpoint, oc, failed, loop_now_ns()))
        return;
    const struct endpoint_state *ep = &cs->eps[endpoint];
    m->ejections++;
    char a[ADDR_STRLEN];
    log_info("mesh: endpoint %s ejected after %u consecutive connect failures (%u time%s)",
             addr_format(&ep->addr, a, sizeof(a)), oc->consecutive_errors, ep->outlier.ejections,
             ep->outlier.ejections == 1 ? "" : "s");
}

void mesh_conn_closed(struct mesh *m, const struct conn_record *rec)
{
    if (!rec->cluster)
        return;
    /* At L4 a failed connect (or an HBONE CONNECT answered 503) is the
     * gateway error outlier detection counts; anything that opened is a
     * success. */
    bool failed = rec->state == CONN_FAILED && resp_flag_is_connect_failure(rec->response_flag);
    release_attempt(m, rec->cluster, rec->endpoint, &rec->outlier, failed);
}

void mesh_route_released(void *ctx, const struct outbound_route *r, bool failed)
{
    struct mesh *m = ctx;
    if (!r->cluster)
        return;
    struct cluster_state *cs = r->cluster;
    if (r->retry_held && cs->retries)
        cs->retries--;
    struct outlier_config none = {0};
    release_attempt(m, r->cluster, r->endpoint, failed ? &r->outlier : &none, failed);
}

void mesh_tick(struct mesh *m, uint64_t now_ns)
{
    hbone_pool_expire(m->pool, now_ns);
    hbone_pool_expire(m->http_pool, now_ns);
    hbone_inbound_expire(m->server, now_ns);
    mesh_identity_renew(m, time(NULL));
}
