/* HTTP at the destination (see http_inbound.h). */
#include "http/inbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/store.h"
#include "enroll/pods.h"
#include "http/proxy.h"
#include "policy/admit.h"
#include "proxy/conns.h"
#include "route/http_route.h"

struct http_inbound {
    struct http_inbound_opts opts;
};

/* One session's router state: who is served, from whom. The pod is found
 * again by its address at each request: it may be unenrolled meanwhile. */
struct hin_session {
    struct http_inbound *hin;
    struct conn_record rec; /* the connection's, as it began: labels */
    struct meshd_addr pod_ip;
};

int http_inbound_new(const struct http_inbound_opts *opts, struct http_inbound **out)
{
    struct http_inbound *hin = calloc(1, sizeof(*hin));
    if (!hin)
        return -ENOMEM;
    hin->opts = *opts;
    *out = hin;
    return 0;
}

void http_inbound_free(struct http_inbound *hin)
{
    free(hin);
}

void http_inbound_set_proxy(struct http_inbound *hin, struct http_proxy *hp)
{
    if (hin)
        hin->opts.http = hp;
}

/* The protocol a Service declares for `dst` of one of our pods; none
 * known (no workload): PROTO_TCP, never parsed. */
static enum http_proto port_protocol(const struct cfg_snapshot *snap, const struct meshd_addr *dst)
{
    const struct cfg_workload *w = cfg_workload_by_ip(snap, dst);
    return w ? http_workload_port_protocol(snap, w, ntohs(dst->port)) : PROTO_TCP;
}

static bool declared_http(enum http_proto proto)
{
    return proto == PROTO_HTTP || proto == PROTO_HTTP2 || proto == PROTO_GRPC;
}

bool http_inbound_wants(void *ctx, const struct pod *pod, const struct meshd_addr *dst,
                        bool said_http)
{
    struct http_inbound *hin = ctx;
    const struct cfg_snapshot *snap =
        hin->opts.gate->config ? cfg_store_current(hin->opts.gate->config) : NULL;
    if (!hin->opts.http || !snap)
        return false;
    enum http_proto proto = port_protocol(snap, dst);
    /* A port declared TCP (tcp-*, mongo, redis, ...) stays bytes whatever
     * the policy: parsing would break its protocol, and L4 judges the
     * policy's HTTP-only rules as Istio does on TCP (an ALLOW never
     * matches, a DENY always does). */
    if (proto == PROTO_TCP)
        return false;
    /* The source's word only chooses the parser on an unnamed port; its
     * connection is still refused as on L4 (authorize_connection). */
    return declared_http(proto) || said_http || policy_needs_http(snap, pod);
}

int http_inbound_authorize_connection(void *gate, const struct pod *pod, const char *peer_id,
                                      const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct admit_gate *g = gate;
    const struct cfg_snapshot *snap = g->config ? cfg_store_current(g->config) : NULL;
    /* No snapshot: the gate denies whichever is asked; ask the stricter. */
    if (snap && declared_http(port_protocol(snap, dst)))
        return admit_gate_authorize_http_connection(gate, pod, peer_id, src, dst);
    return admit_gate_authorize_sniffed_connection(gate, pod, peer_id, src, dst);
}

static const struct pod *hin_pod(void *user)
{
    struct hin_session *hs = user;
    struct pods *pods = hs->hin->opts.gate->pods;
    return pods ? pods_find_ip(pods, &hs->pod_ip) : NULL;
}

static void hin_route(void *user, const struct pod *pod, const struct meshd_addr *orig,
                      const struct http_request_view *req, struct http_decision *d)
{
    struct hin_session *hs = user;
    /* Envoy's name for the destination's own cluster (access logs). */
    snprintf(d->cluster, sizeof(d->cluster), "inbound|%u||", ntohs(orig->port));
    size_t cap = 3 * strlen(req->path) + strlen(req->query) + 3;
    char *path = malloc(cap);
    const char *peer = hs->rec.peer_identity[0] ? hs->rec.peer_identity : NULL;
    int rc = path ? admit_gate_authorize_request(hs->hin->opts.gate, pod, peer, &hs->rec.src, orig,
                                                 req, path, cap)
                  : -ENOMEM;
    if (rc) {
        free(path);
        d->verdict = HTTP_RESPOND;
        d->status = rc == -EINVAL ? 400 : rc == -ENOMEM ? 503 : 403;
        d->body = rc == -EACCES ? "RBAC: access denied" : "";
        d->body_len = strlen(d->body);
        d->flag = rc == -EACCES ? RESP_FLAG_DENY : RESP_FLAG_NONE;
        return;
    }
    d->verdict = HTTP_FORWARD; /* to the app's connection the session holds */
    d->route.action = OUTBOUND_PASSTHROUGH;
    d->route.target = *orig;
    d->target = path;
}

static void hin_free(void *user, const struct outbound_route *r, bool failed)
{
    (void)user;
    (void)r;
    (void)failed;
}

static void hin_report(void *user, struct http_request_record *r, const struct conn_record *conn,
                       const struct http_decision *d)
{
    struct hin_session *hs = user;
    if (hs->hin->opts.report)
        hs->hin->opts.report(hs->hin->opts.report_ctx, r, conn ? conn : &hs->rec, d);
}

static void hin_release(void *user)
{
    free(user);
}

static const struct http_router hin_router = {.pod = hin_pod,
                                              .route = hin_route,
                                              .free = hin_free,
                                              .report = hin_report,
                                              .release = hin_release};

/* The router's state for one session: the connection's record. */
static struct hin_session *hin_session_new(struct http_inbound *hin, const struct conn_record *rec)
{
    struct hin_session *hs = malloc(sizeof(*hs));
    if (!hs)
        return NULL;
    hs->hin = hin;
    hs->rec = *rec;
    hs->pod_ip = rec->orig_dst;
    hs->pod_ip.port = 0;
    return hs;
}

int http_inbound_serve(void *ctx, const struct pod *pod, struct conn *c,
                       const struct conn_record *rec, int down_fd, int app_fd)
{
    struct http_inbound *hin = ctx;
    struct hin_session *hs = hin_session_new(hin, rec);
    if (!hs) {
        close_with_reset(down_fd);
        close_with_reset(app_fd);
        if (c)
            conn_end(c, -ENOMEM, 0, 0, RESP_FLAG_NONE);
        return -ENOMEM;
    }
    int rc = http_session_start_inbound(hin->opts.http, c, down_fd, app_fd, rec->pod,
                                        &rec->orig_dst, &hin_router, hs);
    if (rc)
        free(hs);
    return rc;
}

int http_inbound_serve_stream(void *ctx, const struct pod *pod, const struct conn_record *rec,
                              struct hbone_stream *st, int app_fd)
{
    struct http_inbound *hin = ctx;
    struct hin_session *hs = hin_session_new(hin, rec);
    if (!hs) {
        close_with_reset(app_fd);
        return -ENOMEM;
    }
    /* On a failure the session released hs (hin_release). */
    return http_session_start_inbound_stream(hin->opts.http, st, app_fd, rec->pod, &rec->orig_dst,
                                             &hin_router, hs);
}
