/* One meshd instance: start-up order, admin commands, drain and stop.
 *
 * Start-up: configuration (loaded, or the persisted last good one, or fail
 * closed) -> mounts -> BPF capture (take over pins or attach) -> proxies ->
 * pod registry (restore) -> admin socket -> loop. SIGTERM drains (listeners
 * closed, open connections get --drain-seconds), then shutdown runs in
 * reverse but hands over: pins, BPF enrollment and pods.json stay, so
 * enrolled pods fail closed until the next agent restores them. Detaching
 * everything is `meshd uninstall` (agent/uninstall.c). */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/admin.h"
#include "admin/explain.h"
#include "admin/http.h"
#include "admin/reqserver.h"
#include "capture/capture.h"
#include "capture/mounts.h"
#include "config/store.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "enroll/pod_source.h"
#include "enroll/pods.h"
#include "mesh/mesh.h"
#include "policy/authz.h"
#include "policy/peerauth.h"
#include "policy/telemetry.h"
#include "proxy/conns.h"
#include "proxy/inbound.h"
#include "proxy/outbound.h"
#include "telemetry/accesslog.h"
#include "telemetry/kernel_metrics.h"
#include "telemetry/kevents.h"
#include "telemetry/tcp_metrics.h"
#include "telemetry/workload_labels.h"
#include "core/ticker.h"

struct agent {
    const struct agent_opts *opts;
    struct loop *loop;
    struct capture *capture;
    struct conns *conns;
    struct outbound *outbound;
    struct inbound *inbound;
    struct mesh *mesh; /* NULL without --ca-dir */
    struct cfg_store *config;
    struct authz_policy *authz_buf; /* the policies selected for one decision */
    size_t authz_cap;
    uint64_t authz_denied;
    int stdout_flags; /* before we made stdout non-blocking; -1: untouched */
    struct kevents *kevents;
    struct tcp_metrics *tcp_metrics;
    struct kernel_metrics *kernel_metrics;
    struct ticker ticker;
    struct http_server *http[3]; /* admin 15000, metrics 15020, health 15021 */
    uint64_t kevents_matched, kevents_unmatched;
    uint64_t access_log_lines, access_log_dropped;
    struct pods *pods;
    struct admin *admin;
    struct loop_io signal_io;
    struct ticker drain_ticker;
    uint64_t drain_deadline_ns; /* 0: not draining */
    char cgroup_path[256];
    char pin_dir[384];
};

static json_t *cmd_enroll(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    const char *pod = json_string_value(json_object_get(req, "pod"));
    const char *netns = json_string_value(json_object_get(req, "netns"));
    if (ag->drain_deadline_ns) {
        snprintf(err, errlen, "the agent is draining before it stops; enroll with the next one");
        return NULL;
    }
    if (!pod || !netns) {
        snprintf(err, errlen, "enroll needs \"pod\" (namespace/name) and \"netns\" (a path)");
        return NULL;
    }
    struct pod_spec spec = {
        .ref = pod, .netns_path = netns, .sa = json_string_value(json_object_get(req, "sa"))};
    const json_t *ips = json_object_get(req, "ips");
    if (ips && (!json_is_array(ips) || json_array_size(ips) > POD_MAX_IPS)) {
        snprintf(err, errlen, "\"ips\" must be a list of at most %d addresses", POD_MAX_IPS);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(ips); i++) {
        const char *ip = json_string_value(json_array_get(ips, i));
        char buf[64];
        /* Addresses come without a port: parse them with a dummy one. */
        snprintf(buf, sizeof(buf), strchr(ip ? ip : "", ':') ? "[%s]:0" : "%s:0", ip ? ip : "");
        if (!ip || addr_parse(buf, &spec.ips[spec.nips]) != 0) {
            snprintf(err, errlen, "\"%.64s\" is not an IP address", ip ? ip : "(not a string)");
            return NULL;
        }
        spec.nips++;
    }
    if (pods_enroll(ag->pods, &spec, err, errlen) != 0)
        return NULL;
    return json_pack("{s:s}", "enrolled", pod);
}

static json_t *cmd_unenroll(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    const char *pod = json_string_value(json_object_get(req, "pod"));
    if (!pod) {
        snprintf(err, errlen, "unenroll needs \"pod\" (namespace/name)");
        return NULL;
    }
    if (pods_unenroll(ag->pods, pod, err, errlen) != 0)
        return NULL;
    return json_pack("{s:s}", "unenrolled", pod);
}

static json_t *cmd_pods(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    json_t *arr = json_array();
    for (const struct pod *p = pods_first(ag->pods); p && arr; p = p->next) {
        json_t *ips = json_array();
        for (size_t i = 0; i < p->nips && ips; i++) {
            char a[ADDR_STRLEN];
            json_array_append_new(ips, json_string(addr_format_ip(&p->ips[i], a, sizeof(a))));
        }
        json_t *o =
            json_pack("{s:s,s:s,s:s?,s:s,s:o?,s:I,s:i,s:s,s:s}", "namespace", p->ns, "name",
                      p->name, "sa", p->sa[0] ? p->sa : NULL, "netns", p->netns_path, "ips", ips,
                      "netns_cookie", (json_int_t)p->netns_cookie, "id", (int)p->id, "binding",
                      pod_binding_name(p->binding), "binding_reason", p->binding_why);
        const char *spiffe;
        long not_after;
        if (o && ag->mesh && mesh_pod_certificate(p, &spiffe, &not_after)) {
            json_object_set_new(o, "identity", json_string(spiffe));
            json_object_set_new(o, "cert_not_after", json_integer(not_after));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static void append_record(const struct conn_record *r, void *arg)
{
    char src[ADDR_STRLEN], dst[ADDR_STRLEN], hbone[ADDR_STRLEN], upstream[ADDR_STRLEN];
    json_t *rec = json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s?}", "id", (json_int_t)r->id, "direction",
        r->direction, "pod", r->pod, "src", addr_format(&r->src, src, sizeof(src)), "original_dst",
        addr_format(&r->orig_dst, dst, sizeof(dst)), "state", conn_state_name(r->state),
        "response_flags", resp_flag_name(r->response_flag), "start_unix_ms",
        (json_int_t)r->start_unix_ms, "duration_ms", (json_int_t)r->duration_ms, "bytes_sent",
        (json_int_t)r->bytes_sent, "bytes_received", (json_int_t)r->bytes_received, "error",
        r->error ? strerror(r->error) : NULL);
    if (!rec)
        return;
    if (r->kernel_seen) { /* from the sockops ring, once the socket closed */
        json_object_set_new(rec, "rtt_us", json_integer(r->rtt_us));
        json_object_set_new(rec, "retransmits", json_integer(r->retrans));
    }
    if (r->peer_identity[0])
        json_object_set_new(rec, "peer_identity", json_string(r->peer_identity));
    if (r->hbone.family)
        json_object_set_new(rec, "hbone",
                            json_string(addr_format(&r->hbone, hbone, sizeof(hbone))));
    if (r->upstream.family) /* the endpoint connected to (the last attempt) */
        json_object_set_new(rec, "upstream",
                            json_string(addr_format(&r->upstream, upstream, sizeof(upstream))));
    json_array_append_new(arg, rec);
}

static json_t *cmd_connections(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    json_t *arr = json_array();
    if (arr)
        conns_foreach(ag->conns, append_record, arr);
    return arr;
}

static json_t *mesh_status(const struct agent *ag)
{
    if (!ag->mesh)
        return NULL;
    struct mesh_stats ms;
    mesh_get_stats(ag->mesh, &ms);
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I}}", "cert_renewals",
        (json_int_t)ms.renewals, "hbone_sessions_opened", (json_int_t)ms.sessions_opened,
        "hbone_sessions_reused", (json_int_t)ms.sessions_reused, "hbone_sessions",
        (json_int_t)ms.sessions, "refused_no_route", (json_int_t)ms.no_route, "refused_no_endpoint",
        (json_int_t)ms.no_endpoint, "clusters", (json_int_t)ms.clusters, "refused_overflow",
        (json_int_t)ms.overflows, "ejections", (json_int_t)ms.ejections, "hbone_server",
        "self_calls", (json_int_t)ms.server_self_calls, "handshakes_pending",
        (json_int_t)ms.handshakes_pending, "handshakes_refused", (json_int_t)ms.handshakes_refused);
}

static json_t *config_status(const struct agent *ag)
{
    struct cfg_store_status cs;
    cfg_store_status(ag->config, &cs);
    const struct cfg_snapshot *snap = cfg_store_current(ag->config);
    json_t *errors = json_array(), *resources = json_object();
    for (size_t i = 0; i < cs.nerrors; i++)
        json_array_append_new(errors, json_string(cs.errors[i]));
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        json_object_set_new(resources, cfg_kind_name((enum cfg_kind)k),
                            json_integer((json_int_t)cfg_count(snap, (enum cfg_kind)k)));
    json_t *findings = json_object();
    for (size_t i = 0; i < cs.nfindings; i++)
        json_object_set_new(findings, cs.findings[i].code,
                            json_integer((json_int_t)cs.findings[i].count));
    return json_pack("{s:s,s:s,s:b,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:o,s:o,s:o}", "dir",
                     ag->opts->config_dir, "version", cs.version, "loaded", cs.loaded, "serving",
                     cfg_serving_name(cs.serving), "persisted_version", cs.persisted_version,
                     "fail_closed", cs.serving == CFG_SERVING_NONE, "persist_failures",
                     (json_int_t)cs.persist_failures, "generation", (json_int_t)cs.generation,
                     "applied", (json_int_t)cs.applied, "rejected", (json_int_t)cs.rejected,
                     "unchanged", (json_int_t)cs.unchanged, "loaded_unix_ms",
                     (json_int_t)cs.loaded_unix_ms, "load_seconds", cs.last_load_seconds, "files",
                     (json_int_t)cfg_snapshot_files(snap), "resources", resources, "last_errors",
                     errors, "findings", findings);
}

static json_t *cmd_config(void *ctx, const json_t *req, char *err, size_t errlen)
{
    return config_status(ctx);
}

/* meshctl proxy-config routes / authn tls-check, on the served snapshot. */
static const char *req_workload(const json_t *req, const char *cmd, char *err, size_t errlen)
{
    const char *w = json_string_value(json_object_get(req, "workload"));
    if (!w)
        snprintf(err, errlen, "%s needs \"workload\" (NAMESPACE/NAME or NAME.NAMESPACE)", cmd);
    return w;
}

static json_t *cmd_routes(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    const char *w = req_workload(req, "routes", err, errlen);
    return w ? explain_routes(cfg_store_current(ag->config), w,
                              json_string_value(json_object_get(req, "service")), err, errlen)
             : NULL;
}

static json_t *cmd_tls_check(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    const char *w = req_workload(req, "tls-check", err, errlen);
    return w ? explain_tls(cfg_store_current(ag->config), ag->opts->trust_domain, w, err, errlen)
             : NULL;
}

static json_t *cmd_status(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct agent *ag = ctx;
    uint64_t bpf[MESHD_STAT__MAX];
    struct conns_stats cs;
    conns_get_stats(ag->conns, &cs);
    json_t *stats = json_object();
    if (capture_stats(ag->capture, bpf) == 0)
        for (int i = 0; i < MESHD_STAT__MAX; i++)
            json_object_set_new(stats, capture_stat_name(i), json_integer((json_int_t)bpf[i]));
    struct outbound_stats obs;
    outbound_get_stats(ag->outbound, &obs);
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:i,s:o,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o?,s:"
        "o}",
        "version", MESHD_VERSION, "node", ag->opts->node, "cgroup", ag->cgroup_path, "pin_dir",
        ag->pin_dir, "pods", (int)pods_count(ag->pods), "bpf", stats, "telemetry", "events",
        (json_int_t)kevents_received(ag->kevents), "matched", (json_int_t)ag->kevents_matched,
        "unmatched", (json_int_t)ag->kevents_unmatched, "connections", "accepted",
        (json_int_t)cs.accepted, "forwarded", (json_int_t)cs.forwarded, "failed",
        (json_int_t)cs.failed, "refused", (json_int_t)cs.refused, "overflow",
        (json_int_t)cs.overflow, "self_calls", (json_int_t)cs.self_calls, "active",
        (json_int_t)cs.active, "retries", (json_int_t)obs.retries, "timeouts",
        (json_int_t)obs.timeouts, "mesh", mesh_status(ag), "config", config_status(ag));
}

/* PeerAuthentication for plaintext arriving at an enrolled pod's port:
 * its enrolled namespace and its Pod object's labels (enroll/pod_source). */
static enum mtls_mode agent_mtls_mode(void *ctx, const struct pod *pod, uint16_t port)
{
    struct agent *ag = ctx;
    if (cfg_store_fail_closed(ag->config))
        return MTLS_STRICT; /* no good configuration yet: no plaintext */
    const struct cfg_snapshot *snap = cfg_store_current(ag->config);
    if (!pod_source_bound(pod))
        return MTLS_STRICT; /* who it is is unknown: nothing in plaintext */
    struct peerauth_result r;
    peerauth_mode(snap, pod->ns, pod_source_labels(snap, pod), port, &r);
    switch (r.mode) {
    case CFG_MTLS_STRICT:
        return MTLS_STRICT;
    case CFG_MTLS_DISABLE:
        return MTLS_DISABLE;
    default:
        return MTLS_PERMISSIVE;
    }
}

/* AuthorizationPolicy at the destination, on the live snapshot: the
 * policies of the pod's namespace and the root namespace that select it,
 * evaluated with Istio's L4 semantics (policy/authz). Plaintext peers
 * (peer_id NULL) have no principal or namespace. */
static int agent_authorize(void *ctx, const struct pod *pod, const char *peer_id,
                           const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct agent *ag = ctx;
    if (cfg_store_fail_closed(ag->config)) {
        /* Never less policy than the last good configuration: with none
         * known yet, nothing is allowed in. */
        ag->authz_denied++;
        log_ratelimited(LOG_INFO,
                        "authz: %s/%s: denied: no configuration has loaded yet "
                        "(fail closed)",
                        pod->ns, pod->name);
        return -EACCES;
    }
    const struct cfg_snapshot *snap = cfg_store_current(ag->config);
    if (!pod_source_bound(pod)) {
        ag->authz_denied++;
        log_ratelimited(LOG_INFO, "authz: %s/%s is %s (%s); denied", pod->ns, pod->name,
                        pod_binding_name(pod->binding), pod->binding_why);
        return -EACCES;
    }
    size_t total = cfg_count(snap, CFG_AUTHORIZATION_POLICY);
    if (total == 0)
        return 0;
    if (total > ag->authz_cap) {
        struct authz_policy *v = realloc(ag->authz_buf, total * sizeof(*v));
        if (!v) {
            log_ratelimited(LOG_ERROR, "authz: out of memory; denying (fail closed)");
            return -EACCES;
        }
        ag->authz_buf = v;
        ag->authz_cap = total;
    }
    size_t n =
        cfg_authz_select(snap, pod->ns, pod_source_labels(snap, pod), ag->authz_buf, ag->authz_cap);
    if (n == 0)
        return 0;
    /* Istio's principal is the SPIFFE id without its scheme:
     * "cluster.local/ns/<ns>/sa/<sa>"; the namespace is the part after ns/. */
    struct authz_request req = {.source = *src, .destination = *dst};
    char ns[64] = "";
    if (peer_id && strncmp(peer_id, "spiffe://", 9) == 0) {
        req.principal = peer_id + 9;
        const char *p = strstr(req.principal, "/ns/");
        if (p && sscanf(p, "/ns/%63[^/]/", ns) == 1)
            req.namespace_ = ns;
    }
    struct authz_decision d;
    authz_evaluate(ag->authz_buf, n, &req, &d);
    char s[ADDR_STRLEN], t[ADDR_STRLEN];
    if (d.audit)
        log_info("authz: %s -> %s/%s %s matched AUDIT policy %s",
                 req.principal ? req.principal : addr_format(src, s, sizeof(s)), pod->ns, pod->name,
                 addr_format(dst, t, sizeof(t)), d.audit->name);
    if (d.allow)
        return 0;
    ag->authz_denied++;
    log_ratelimited(LOG_INFO, "authz: %s -> %s/%s %s denied by %s",
                    req.principal ? req.principal : addr_format(src, s, sizeof(s)), pod->ns,
                    pod->name, addr_format(dst, t, sizeof(t)),
                    d.by ? d.by->name : "no ALLOW policy matching");
    return -EACCES;
}

/* An enrolled pod is who its Pod object in the served configuration says. */
static enum pod_binding agent_bind_pod(void *ctx, struct pod *pod)
{
    struct agent *ag = ctx;
    return pod_source_bind(cfg_store_current(ag->config), ag->opts->node, pod);
}

/* A relayed plaintext inbound connection still allowed? */
static bool keep_plaintext(void *ctx, const struct conn_record *rec)
{
    struct agent *ag = ctx;
    const struct pod *pod = pods_find_ip(ag->pods, &rec->orig_dst);
    return !pod || agent_authorize(ag, pod, NULL, &rec->src, &rec->orig_dst) == 0;
}

/* A new configuration: open connections are judged by its policies too
 * (Istio re-evaluates a changed policy against existing connections). */
static void on_config_applied(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old)
{
    struct agent *ag = ctx;
    if (!ag->conns || !ag->pods)
        return; /* the first load, before the data path exists */
    /* Pod objects may have arrived, changed or gone: identities first, so
     * that the revalidation below judges by who each pod now is. */
    pods_rebind(ag->pods, ag->mesh ? mesh_identity_rebind : NULL, ag->mesh);
    size_t closed = conns_revalidate(ag->conns, "inbound", keep_plaintext, ag);
    if (ag->mesh)
        closed += mesh_revalidate(ag->mesh);
    if (closed)
        log_info("authz: %zu open connection%s closed: no longer allowed by version %s", closed,
                 closed == 1 ? "" : "s", cfg_snapshot_version(now));
}

/* A kernel connection event: attach RTT/retransmits to meshd's record. */
static void on_kernel_event(void *ctx, const struct meshd_conn_event *ev)
{
    struct agent *ag = ctx;
    const struct conn_record *rec = conns_kernel_event(ag->conns, ev);
    if (rec) {
        ag->kevents_matched++;
        kernel_metrics_observe(ag->kernel_metrics, rec, ev);
    } else
        ag->kevents_unmatched++; /* the app's own connections, not proxied */
}

/* ---- Istio metrics ------------------------------------------------------ */

/* Istio's labels: what the record knows, then what the configuration says
 * about both workloads. */
static void labels_of(const struct agent *ag, const struct conn_record *rec, struct tcp_labels *l)
{
    tcp_labels_from_record(rec, l);
    tcp_labels_from_config(cfg_store_current(ag->config), ag->opts->trust_domain, rec, l);
}

static void on_conn_opened(void *ctx, const struct conn_record *rec)
{
    struct agent *ag = ctx;
    struct tcp_labels l;
    labels_of(ag, rec, &l);
    tcp_metrics_opened(ag->tcp_metrics, &l, loop_now_ns());
}

/* Access logs must never block the loop (see telemetry/accesslog.h):
 * stdout turns non-blocking when the first line is due, and gets its
 * flags back at exit (it may be a terminal the shell shares). */
static void stdout_nonblocking(struct agent *ag)
{
    if (ag->stdout_flags >= 0 || (ag->stdout_flags = fcntl(STDOUT_FILENO, F_GETFL)) < 0)
        return;
    fcntl(STDOUT_FILENO, F_SETFL, ag->stdout_flags | O_NONBLOCK);
}

/* --access-log logs every connection; otherwise the Telemetry resources
 * decide for the record's pod (the source's for outbound, the
 * destination's for inbound). */
static bool access_log_wanted(const struct agent *ag, const struct conn_record *rec)
{
    if (ag->opts->access_log)
        return true;
    const struct cfg_snapshot *snap = cfg_store_current(ag->config);
    if (!cfg_count(snap, CFG_TELEMETRY))
        return false;
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (pods_parse_ref(rec->pod, ns, name) != 0)
        return false;
    const struct cfg_pod *p = cfg_find(snap, CFG_POD, ns, name);
    struct access_log_decision d;
    telemetry_access_log(snap, ns, p ? &p->meta.labels : NULL,
                         strcmp(rec->direction, "inbound") == 0, &d);
    return d.enabled;
}

static void on_conn_closed(void *ctx, const struct conn_record *rec)
{
    struct agent *ag = ctx;
    if (ag->mesh)
        mesh_conn_closed(ag->mesh, rec);
    struct tcp_labels l;
    labels_of(ag, rec, &l);
    /* Istio counts from the destination's view whatever the reporter:
     * sent = response bytes, received = request bytes. A record's
     * bytes_sent is the request direction for both of our directions. */
    tcp_metrics_closed(ag->tcp_metrics, &l, rec->bytes_received, rec->bytes_sent,
                       rec->state == CONN_FAILED, loop_now_ns());
    if (access_log_wanted(ag, rec)) {
        stdout_nonblocking(ag);
        if (accesslog_write(STDOUT_FILENO, rec,
                            ag->opts->log_json ? ACCESSLOG_JSON : ACCESSLOG_TEXT))
            ag->access_log_lines++;
        else
            ag->access_log_dropped++;
    }
}

static void on_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    tcp_metrics_expire(ag->tcp_metrics, now_ns);
    if (ag->mesh)
        mesh_tick(ag->mesh, now_ns);
}

/* ---- HTTP endpoints ---------------------------------------------------- */

static void metric(struct http_response *r, const char *name, const char *type, const char *help)
{
    http_printf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void http_metrics(void *ctx, const char *method, const char *path, const char *query,
                         struct http_response *r)
{
    struct agent *ag = ctx;
    struct conns_stats cs;
    uint64_t bpf[MESHD_STAT__MAX];
    conns_get_stats(ag->conns, &cs);
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metric(r, "meshd_build_info", "gauge", "meshd version and node.");
    http_printf(r, "meshd_build_info{version=\"%s\",node=\"%s\"} 1\n", MESHD_VERSION,
                ag->opts->node);
    struct cfg_store_status cfs;
    cfg_store_status(ag->config, &cfs);
    metric(r, "meshd_config_info", "gauge", "The configuration version being served.");
    http_printf(r, "meshd_config_info{version=\"%s\",loaded=\"%s\"} 1\n", cfs.version,
                cfs.loaded ? "true" : "false");
    metric(r, "meshd_config_serving", "gauge",
           "Where the served configuration comes from: live (the --config files), persisted "
           "(the last good one of a previous run), none (fail closed: inbound refused).");
    for (int k = CFG_SERVING_NONE; k <= CFG_SERVING_LIVE; k++)
        http_printf(r, "meshd_config_serving{source=\"%s\"} %d\n",
                    cfg_serving_name((enum cfg_serving)k), cfs.serving == (enum cfg_serving)k);
    metric(r, "meshd_config_persist_failures_total", "counter",
           "Applied configurations that could not be persisted in the state directory.");
    http_printf(r, "meshd_config_persist_failures_total %llu\n",
                (unsigned long long)cfs.persist_failures);
    metric(r, "meshd_config_reloads_total", "counter",
           "Configuration loads by result (rejected: errors, last good kept).");
    http_printf(r, "meshd_config_reloads_total{result=\"applied\"} %llu\n",
                (unsigned long long)cfs.applied);
    http_printf(r, "meshd_config_reloads_total{result=\"rejected\"} %llu\n",
                (unsigned long long)cfs.rejected);
    http_printf(r, "meshd_config_reloads_total{result=\"unchanged\"} %llu\n",
                (unsigned long long)cfs.unchanged);
    metric(r, "meshd_config_findings", "gauge",
           "What analysis found in the served configuration (meshctl analyze), by code.");
    for (size_t i = 0; i < cfs.nfindings; i++)
        http_printf(r, "meshd_config_findings{code=\"%s\",level=\"%s\"} %u\n", cfs.findings[i].code,
                    cfg_level_name(cfs.findings[i].level), cfs.findings[i].count);
    metric(r, "meshd_config_load_seconds", "gauge", "Time the last applied load took.");
    http_printf(r, "meshd_config_load_seconds %.6f\n", cfs.last_load_seconds);
    metric(r, "meshd_config_resources", "gauge", "Resources in the served configuration.");
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        http_printf(r, "meshd_config_resources{kind=\"%s\"} %zu\n", cfg_kind_name((enum cfg_kind)k),
                    cfg_count(cfg_store_current(ag->config), (enum cfg_kind)k));
    metric(r, "meshd_enrolled_pods", "gauge", "Pods whose traffic this agent captures.");
    http_printf(r, "meshd_enrolled_pods %zu\n", pods_count(ag->pods));
    if (ag->mesh) {
        metric(r, "meshd_workload_cert_expiry_timestamp_seconds", "gauge",
               "When each enrolled pod's workload certificate expires (renewed at half-life).");
        for (const struct pod *p = pods_first(ag->pods); p; p = p->next) {
            const char *spiffe;
            long not_after;
            if (mesh_pod_certificate(p, &spiffe, &not_after))
                http_printf(r,
                            "meshd_workload_cert_expiry_timestamp_seconds{pod=\"%s/%s\","
                            "identity=\"%s\"} %ld\n",
                            p->ns, p->name, spiffe, not_after);
        }
        struct mesh_stats ms;
        mesh_get_stats(ag->mesh, &ms);
        metric(r, "meshd_workload_cert_renewals_total", "counter",
               "Workload certificates renewed.");
        http_printf(r, "meshd_workload_cert_renewals_total %llu\n",
                    (unsigned long long)ms.renewals);
        metric(r, "meshd_hbone_sessions", "gauge", "HBONE client sessions in the pool now.");
        http_printf(r, "meshd_hbone_sessions %llu\n", (unsigned long long)ms.sessions);
        metric(r, "meshd_hbone_sessions_total", "counter",
               "HBONE sessions the pool opened (a handshake each) and connections that reused "
               "one.");
        http_printf(r, "meshd_hbone_sessions_total{event=\"opened\"} %llu\n",
                    (unsigned long long)ms.sessions_opened);
        http_printf(r, "meshd_hbone_sessions_total{event=\"reused\"} %llu\n",
                    (unsigned long long)ms.sessions_reused);
        metric(r, "meshd_route_refused_total", "counter",
               "Connections routing refused, by Envoy response flag.");
        http_printf(r, "meshd_route_refused_total{response_flags=\"NR\"} %llu\n",
                    (unsigned long long)ms.no_route);
        http_printf(r, "meshd_route_refused_total{response_flags=\"UH\"} %llu\n",
                    (unsigned long long)ms.no_endpoint);
        http_printf(r, "meshd_route_refused_total{response_flags=\"UO\"} %llu\n",
                    (unsigned long long)ms.overflows);
        metric(r, "meshd_hbone_server_handshakes", "gauge",
               "HBONE server connections not yet authenticated.");
        http_printf(r, "meshd_hbone_server_handshakes %llu\n",
                    (unsigned long long)ms.handshakes_pending);
        metric(r, "meshd_hbone_server_refused_total", "counter",
               "HBONE server connections reset at accept: a pending-handshake cap was full, "
               "or the client was meshd itself (self_call).");
        http_printf(r, "meshd_hbone_server_refused_total{reason=\"handshake_cap\"} %llu\n",
                    (unsigned long long)ms.handshakes_refused);
        http_printf(r, "meshd_hbone_server_refused_total{reason=\"self_call\"} %llu\n",
                    (unsigned long long)ms.server_self_calls);
        metric(r, "meshd_outlier_ejections_total", "counter", "Endpoints ejected.");
        http_printf(r, "meshd_outlier_ejections_total %llu\n", (unsigned long long)ms.ejections);
    }
    metric(r, "meshd_connections_active", "gauge", "Connections meshd is carrying now.");
    http_printf(r, "meshd_connections_active %llu\n", (unsigned long long)cs.active);
    metric(r, "meshd_connections_total", "counter", "Captured connections by what became of them.");
    const struct {
        const char *outcome;
        uint64_t v;
    } outcomes[] = {{"accepted", cs.accepted}, {"forwarded", cs.forwarded},
                    {"failed", cs.failed},     {"refused", cs.refused},
                    {"overflow", cs.overflow}, {"self_call", cs.self_calls}};
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        http_printf(r, "meshd_connections_total{outcome=\"%s\"} %llu\n", outcomes[i].outcome,
                    (unsigned long long)outcomes[i].v);
    if (capture_stats(ag->capture, bpf) == 0) {
        metric(r, "meshd_bpf_events_total", "counter",
               "Decisions counted by meshd's BPF programs.");
        for (int i = 0; i < MESHD_STAT__MAX; i++)
            http_printf(r, "meshd_bpf_events_total{event=\"%s\"} %llu\n", capture_stat_name(i),
                        (unsigned long long)bpf[i]);
    }
    struct capture_prog_stats ps[3];
    size_t nps = capture_prog_stats(ag->capture, ps, 3);
    metric(r, "meshd_bpf_program_runs_total", "counter",
           "Runs of each meshd BPF program (counted while kernel.bpf_stats_enabled=1).");
    for (size_t i = 0; i < nps; i++)
        http_printf(r, "meshd_bpf_program_runs_total{program=\"%s\"} %llu\n", ps[i].name,
                    (unsigned long long)ps[i].run_cnt);
    metric(r, "meshd_bpf_program_run_seconds_total", "counter",
           "Time spent in each meshd BPF program (while kernel.bpf_stats_enabled=1).");
    for (size_t i = 0; i < nps; i++)
        http_printf(r, "meshd_bpf_program_run_seconds_total{program=\"%s\"} %.9f\n", ps[i].name,
                    (double)ps[i].run_time_ns / 1e9);
    metric(r, "meshd_kernel_conn_events_total", "counter",
           "Kernel connection events read from the ring buffer, by join result.");
    http_printf(r, "meshd_kernel_conn_events_total{joined=\"true\"} %llu\n",
                (unsigned long long)ag->kevents_matched);
    http_printf(r, "meshd_kernel_conn_events_total{joined=\"false\"} %llu\n",
                (unsigned long long)ag->kevents_unmatched);
    metric(r, "meshd_access_log_lines_total", "counter",
           "Access-log lines by outcome (dropped: stdout would have blocked).");
    http_printf(r, "meshd_access_log_lines_total{outcome=\"written\"} %llu\n",
                (unsigned long long)ag->access_log_lines);
    http_printf(r, "meshd_access_log_lines_total{outcome=\"dropped\"} %llu\n",
                (unsigned long long)ag->access_log_dropped);
    metric(r, "meshd_istio_series", "gauge", "Series in the istio_tcp_* table.");
    http_printf(r, "meshd_istio_series %zu\n", tcp_metrics_series(ag->tcp_metrics));
    metric(r, "meshd_istio_series_dropped_total", "counter",
           "New label sets refused because the series table was full.");
    http_printf(r, "meshd_istio_series_dropped_total %llu\n",
                (unsigned long long)tcp_metrics_dropped(ag->tcp_metrics));
    tcp_metrics_render(ag->tcp_metrics, r);
    kernel_metrics_render(ag->kernel_metrics, r);
    static const char *const endpoints[3] = {"admin", "metrics", "health"}, *control = "control";
    struct reqserver_stats hs[3] = {0}, as = {0};
    for (int i = 0; i < 3; i++)
        if (ag->http[i])
            http_server_get_stats(ag->http[i], &hs[i]);
    if (ag->admin)
        admin_get_stats(ag->admin, &as);
    http_render_client_stats(r, "meshd_admin_http", endpoints, hs, 3);
    http_render_client_stats(r, "meshd_control", &control, &as, 1);
}

static void http_ready(void *ctx, const char *method, const char *path, const char *query,
                       struct http_response *r)
{
    /* Reached only once start-up attached BPF and opened every listener;
     * ready also needs the operator's configuration to have loaded. */
    struct agent *ag = ctx;
    struct cfg_store_status cs;
    cfg_store_status(ag->config, &cs);
    if (ag->drain_deadline_ns) {
        r->status = 503;
        http_printf(r, "draining: stopping\n");
        return;
    }
    if (!cs.loaded) {
        r->status = 503;
        http_printf(r,
                    "configuration not loaded (%zu errors; see meshctl proxy-config config); "
                    "serving %s%s\n",
                    cs.nerrors,
                    cs.serving == CFG_SERVING_PERSISTED ? "the persisted version "
                                                        : "nothing: inbound refused",
                    cs.serving == CFG_SERVING_PERSISTED ? cs.version : "");
        return;
    }
    http_printf(r, "ready\n");
}

/* Workloads and services of the served snapshot, as istioctl's
 * proxy-config would show them. */
static json_t *config_dump(const struct cfg_snapshot *s)
{
    json_t *services = json_array(), *workloads = json_array();
    char a[ADDR_STRLEN];
    for (size_t i = 0; i < cfg_count(s, CFG_SERVICE); i++) {
        const struct cfg_service *svc = cfg_at(s, CFG_SERVICE, i);
        json_t *vips = json_array(), *ports = json_array();
        for (size_t j = 0; j < svc->cluster_ips.n; j++)
            json_array_append_new(vips,
                                  json_string(addr_format(&svc->cluster_ips.v[j], a, sizeof(a))));
        for (size_t j = 0; j < svc->nports; j++)
            json_array_append_new(ports, json_integer(svc->ports[j].port));
        const struct cfg_svc *v = cfg_svc_by_host(s, svc->meta.name, svc->meta.ns);
        json_array_append_new(services, json_pack("{s:s,s:s,s:s?,s:o,s:o,s:i}", "namespace",
                                                  svc->meta.ns, "name", svc->meta.name, "host",
                                                  v ? v->fqdn : NULL, "vips", vips, "ports", ports,
                                                  "endpoints", v ? (int)v->nendpoints : 0));
    }
    for (size_t i = 0; i < cfg_count(s, CFG_POD); i++) {
        const struct cfg_pod *p = cfg_at(s, CFG_POD, i);
        json_t *ips = json_array();
        for (size_t j = 0; j < p->ips.n; j++)
            json_array_append_new(ips, json_string(addr_format(&p->ips.v[j], a, sizeof(a))));
        json_array_append_new(workloads,
                              json_pack("{s:s,s:s,s:s?,s:s,s:o,s:b}", "namespace", p->meta.ns,
                                        "name", p->meta.name, "node", p->node, "service_account",
                                        p->service_account, "ips", ips, "ready", p->ready));
    }
    return json_pack("{s:s,s:o,s:o}", "version", cfg_snapshot_version(s), "services", services,
                     "workloads", workloads);
}

static void http_config_dump(void *ctx, const char *method, const char *path, const char *query,
                             struct http_response *r)
{
    struct agent *ag = ctx;
    char err[64];
    json_t *pods = cmd_pods(ag, NULL, err, sizeof(err));
    json_t *status = cmd_status(ag, NULL, err, sizeof(err));
    json_t *doc = json_pack("{s:o?,s:o?,s:o?}", "pods", pods, "status", status, "config",
                            config_dump(cfg_store_current(ag->config)));
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    r->content_type = "application/json";
    if (text)
        http_printf(r, "%s\n", text);
    else
        r->status = 503;
    free(text);
    json_decref(doc);
}

static void http_logging(void *ctx, const char *method, const char *path, const char *query,
                         struct http_response *r)
{
    /* POST /logging?level=debug changes the level; GET shows it. */
    if (strncmp(query, "level=", 6) == 0) {
        int level = log_level_parse(query + 6);
        if (level < 0 || strcmp(method, "POST") != 0) {
            r->status = 400;
            http_printf(r, "use POST /logging?level=error|warn|info|debug\n");
            return;
        }
        log_set_level((enum log_level)level);
        log_info("agent: log level set to %s over the admin API", log_level_name(level));
    }
    http_printf(r, "level: %s\n", log_level_name(log_get_level()));
}

static int start_http(struct agent *ag)
{
    static const char *const names[3] = {"admin", "metrics", "health"};
    /* The route tables live as long as the agent: static, with ctx set here. */
    static struct http_route admin_routes[2], metrics_routes[2], health_routes[1];
    admin_routes[0] = (struct http_route){"/config_dump", http_config_dump, ag, 0};
    /* The only state change: served on 127.0.0.1:15000 alone (http.h). */
    admin_routes[1] = (struct http_route){"/logging", http_logging, ag, HTTP_ROUTE_POST};
    metrics_routes[0] = (struct http_route){"/metrics", http_metrics, ag, 0};
    metrics_routes[1] = (struct http_route){"/stats/prometheus", http_metrics, ag, 0};
    health_routes[0] = (struct http_route){"/healthz/ready", http_ready, ag, 0};
    const struct {
        struct http_route *routes;
        size_t n;
        uint16_t port;
        int loopback;
    } eps[3] = {{admin_routes, 2, MESHD_PORT_ADMIN, 1},
                {metrics_routes, 2, MESHD_PORT_METRICS, 0},
                {health_routes, 1, MESHD_PORT_HEALTH, 0}};
    for (int i = 0; i < 3; i++) {
        struct meshd_addr a = {.family = MESHD_AF_INET, .port = htons(eps[i].port)};
        if (eps[i].loopback)
            a.addr[0] = 127, a.addr[3] = 1;
        struct http_server_opts o = {.name = names[i], .addr = &a, .local_only = eps[i].loopback};
        int err = http_server_new(ag->loop, &o, eps[i].routes, eps[i].n, &ag->http[i]);
        if (err) {
            log_error("agent: %s endpoint on port %u: %s", names[i], eps[i].port, strerror(-err));
            return err;
        }
    }
    return 0;
}

/* Drain: done when no connection is left or the grace period is over. */
static void on_drain_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    struct conns_stats cs;
    conns_get_stats(ag->conns, &cs);
    if (cs.active == 0 || now_ns >= ag->drain_deadline_ns) {
        if (cs.active)
            log_info("agent: drain period over; closing %llu connection%s",
                     (unsigned long long)cs.active, cs.active == 1 ? "" : "s");
        loop_stop(ag->loop);
    }
}

/* The first SIGTERM drains: listeners stop accepting (captured connects
 * are refused, sk_lookup drops, HBONE sessions get GOAWAY) while open
 * connections have --drain-seconds to finish. A second signal stops now. */
static void begin_drain(struct agent *ag)
{
    struct conns_stats cs;
    conns_get_stats(ag->conns, &cs);
    ag->drain_deadline_ns = loop_now_ns() + (uint64_t)ag->opts->drain_s * 1000000000ull;
    pods_quiesce(ag->pods);
    log_info("agent: draining: listeners closed, %llu open connection%s get up to %u s",
             (unsigned long long)cs.active, cs.active == 1 ? "" : "s", ag->opts->drain_s);
    if (cs.active == 0 || ticker_start(&ag->drain_ticker, ag->loop, 100, on_drain_tick, ag) != 0)
        loop_stop(ag->loop);
}

static void on_signal(struct loop_io *io, uint32_t events)
{
    struct agent *ag = (struct agent *)((char *)io - offsetof(struct agent, signal_io));
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
        log_info("agent: %s received; %s", strsignal((int)si.ssi_signo),
                 ag->drain_deadline_ns || !ag->opts->drain_s ? "stopping" : "draining");
        if (ag->drain_deadline_ns || !ag->opts->drain_s || !ag->pods)
            loop_stop(ag->loop);
        else
            begin_drain(ag);
    }
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) == -1 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    return mkdir(buf, mode) == -1 && errno != EEXIST ? -errno : 0;
}

static int setup_signals(struct agent *ag)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        return -errno;
    ag->signal_io.fd = fd;
    ag->signal_io.cb = on_signal;
    return loop_add(ag->loop, &ag->signal_io, EPOLLIN);
}

/* Two sockets per proxied connection: the soft default of 1024 would cap
 * the agent near 500 connections, far below --max-conns. */
static void raise_fd_limit(size_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = (rlim_t)max_conns * 2 + 1024;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            log_warn("agent: cannot raise the open-file limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_conns * 2)
        log_warn("agent: open-file limit %llu allows fewer than --max-conns %zu connections",
                 (unsigned long long)rl.rlim_cur, max_conns);
}

int agent_run(const struct agent_opts *opts)
{
    struct agent ag = {.opts = opts,
                       .signal_io.fd = -1,
                       .ticker.io.fd = -1,
                       .drain_ticker.io.fd = -1,
                       .stdout_flags = -1};
    int status = 1, err;
    char bpffs[256], state_file[320];
    struct stat st;

    raise_fd_limit(opts->max_conns);
    if (stat(opts->config_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        log_error("agent: --config %s is not a directory", opts->config_dir);
        return 1;
    }
    if ((err = mkdir_p(opts->state_dir, 0700)) != 0) {
        log_error("agent: cannot create state dir %s: %s", opts->state_dir, strerror(-err));
        return 1;
    }
    if ((err = loop_new(&ag.loop)) != 0 || (err = setup_signals(&ag)) != 0) {
        log_error("agent: event loop: %s", strerror(-err));
        goto out;
    }
    /* Loaded here, before any pod is restored, so a restored pod is never
     * served without a configuration: the operator's, else the last good
     * one persisted in the state dir, else none and fail closed. */
    struct cfg_store_opts cfg_opts = {.dir = opts->config_dir,
                                      .state_dir = opts->state_dir,
                                      .applied = on_config_applied,
                                      .ctx = &ag};
    if ((err = cfg_store_new(ag.loop, &cfg_opts, &ag.config)) != 0) {
        log_error("agent: configuration %s: %s", opts->config_dir, strerror(-err));
        goto out;
    }
    if (mounts_ensure("cgroup2", NULL, "/run/meshd/cgroup2", ag.cgroup_path,
                      sizeof(ag.cgroup_path)) != 0)
        goto out;
    if (opts->bpffs)
        snprintf(bpffs, sizeof(bpffs), "%s", opts->bpffs);
    else if (mounts_ensure("bpf", "/sys/fs/bpf", "/sys/fs/bpf", bpffs, sizeof(bpffs)) != 0)
        goto out;
    snprintf(ag.pin_dir, sizeof(ag.pin_dir), "%s/meshd/%s", bpffs, opts->node);

    struct capture_opts copts = {.pin_dir = ag.pin_dir,
                                 .cgroup_path = ag.cgroup_path,
                                 .sock_mark = MESHD_SOCK_MARK,
                                 .outbound_port = MESHD_PORT_OUTBOUND,
                                 .ring_bytes = opts->ring_bytes};
    if (capture_open(&copts, &ag.capture) != 0)
        goto out;
    /* Series of workloads gone for 10 minutes are dropped (Istio's
     * metric expiry is comparable). */
    if ((err = tcp_metrics_new(600ull * 1000000000ull, &ag.tcp_metrics)) != 0 ||
        (err = kernel_metrics_new(&ag.kernel_metrics)) != 0 ||
        (err = ticker_start(&ag.ticker, ag.loop, 1000, on_tick, &ag)) != 0) {
        log_error("agent: metrics: %s", strerror(-err));
        goto out;
    }
    struct conns_opts conns_opts = {
        .max_conns = opts->max_conns,
        .records = 1024,
        .owner = capture_owner(ag.capture),
        .observer = {.opened = on_conn_opened, .closed = on_conn_closed, .ctx = &ag}};
    struct inbound_opts in_opts = {.port = MESHD_PORT_INBOUND,
                                   .pin_dir = ag.pin_dir,
                                   .mtls_mode = agent_mtls_mode,
                                   .authorize = agent_authorize,
                                   .mtls_ctx = &ag};
    struct outbound_opts out_opts = {.port = MESHD_PORT_OUTBOUND};
    if ((err = conns_new(ag.loop, &conns_opts, &ag.conns)) != 0) {
        log_error("agent: connections: %s", strerror(-err));
        goto out;
    }
    if (opts->ca_dir) {
        struct mesh_opts mo = {.ca_dir = opts->ca_dir,
                               .trust_domain = opts->trust_domain,
                               .owner = capture_owner(ag.capture),
                               .node = opts->node,
                               .cert_ttl_s = opts->cert_ttl_s,
                               .authorize = agent_authorize,
                               .authorize_ctx = &ag};
        if (mesh_new(ag.loop, ag.conns, &mo, &ag.mesh) != 0) /* logged by mesh_new */
            goto out;
        out_opts.route = mesh_route;
        out_opts.route_released = mesh_route_released;
        out_opts.route_ctx = ag.mesh;
        out_opts.pool = mesh_pool(ag.mesh);
    }
    if ((err = outbound_new(ag.loop, ag.capture, ag.conns, &out_opts, &ag.outbound)) != 0 ||
        (err = inbound_new(ag.loop, ag.conns, &in_opts, &ag.inbound)) != 0) {
        log_error("agent: proxies: %s", strerror(-err));
        goto out;
    }
    if ((err = kevents_new(ag.loop, capture_events_fd(ag.capture), on_kernel_event, &ag,
                           &ag.kevents)) != 0) {
        log_error("agent: connection-event ring: %s", strerror(-err));
        goto out;
    }
    /* Attached in this order, detached in reverse: a pod's identity exists
     * before its HBONE server, which goes before the identity. */
    struct pod_hooks hooks[PODS_MAX_HOOKS];
    size_t nhooks = 0;
    if (ag.mesh)
        hooks[nhooks++] = (struct pod_hooks){
            .attach = mesh_identity_attach, .detach = mesh_identity_detach, .ctx = ag.mesh};
    hooks[nhooks++] = (struct pod_hooks){.attach = outbound_attach_pod,
                                         .detach = outbound_detach_pod,
                                         .quiesce = outbound_quiesce_pod,
                                         .ctx = ag.outbound};
    hooks[nhooks++] = (struct pod_hooks){.attach = inbound_attach_pod,
                                         .detach = inbound_detach_pod,
                                         .quiesce = inbound_quiesce_pod,
                                         .ctx = ag.inbound};
    if (ag.mesh)
        hooks[nhooks++] = (struct pod_hooks){.attach = mesh_hbone_attach,
                                             .detach = mesh_hbone_detach,
                                             .quiesce = mesh_hbone_quiesce,
                                             .ctx = ag.mesh};
    snprintf(state_file, sizeof(state_file), "%s/pods.json", opts->state_dir);
    if ((err = pods_new(ag.capture, state_file, hooks, nhooks, &ag.pods)) != 0) {
        log_error("agent: pod registry: %s", strerror(-err));
        goto out;
    }
    pods_set_binder(ag.pods, agent_bind_pod, &ag);
    if (ag.mesh) {
        mesh_set_pods(ag.mesh, ag.pods);
        mesh_set_config(ag.mesh, ag.config);
        mesh_set_outbound(ag.mesh, ag.outbound);
    }
    pods_restore(ag.pods);

    const struct admin_command cmds[] = {
        {"enroll", cmd_enroll, &ag}, {"unenroll", cmd_unenroll, &ag},
        {"pods", cmd_pods, &ag},     {"connections", cmd_connections, &ag},
        {"status", cmd_status, &ag}, {"config", cmd_config, &ag},
        {"routes", cmd_routes, &ag}, {"tls-check", cmd_tls_check, &ag},
    };
    if (admin_new(ag.loop, opts->admin_socket, cmds, sizeof(cmds) / sizeof(cmds[0]), &ag.admin) !=
        0)
        goto out;
    if (start_http(&ag) != 0)
        goto out;
    log_info("agent: meshd %s node %s ready (config %s, admin %s)", MESHD_VERSION, opts->node,
             opts->config_dir, opts->admin_socket);
    err = loop_run(ag.loop);
    status = err ? 1 : 0;
out:
    for (int i = 0; i < 3; i++)
        http_server_free(ag.http[i]);
    admin_free(ag.admin);
    ticker_stop(&ag.drain_ticker);
    /* A handover, whatever the reason we stop: enrolled pods stay enrolled
     * in the kernel and fail closed until the next agent (never open). */
    pods_free(ag.pods, true);
    mesh_free(ag.mesh); /* closes tunnels: their records end in conns */
    ag.mesh = NULL;     /* conns_free below must not report to it */
    kevents_free(ag.kevents);
    conns_free(ag.conns);
    ticker_stop(&ag.ticker);
    tcp_metrics_free(ag.tcp_metrics);
    kernel_metrics_free(ag.kernel_metrics);
    inbound_free(ag.inbound);
    outbound_free(ag.outbound);
    capture_close(ag.capture, false);
    cfg_store_free(ag.config);
    if (ag.stdout_flags >= 0)
        fcntl(STDOUT_FILENO, F_SETFL, ag.stdout_flags);
    free(ag.authz_buf);
    if (ag.signal_io.fd != -1)
        close(ag.signal_io.fd);
    loop_free(ag.loop);
    if (status == 0)
        log_info("agent: stopped; enforcement left in place (pins under %s, state in %s); "
                 "`meshd uninstall --node %s` detaches everything",
                 ag.pin_dir, opts->state_dir, opts->node);
    return status;
}
