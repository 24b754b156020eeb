/* The control socket's commands and their JSON (see commands.h): what
 * meshctl shows comes from here, read from the modules the agent runs. */
#include "admin/commands.h"

#include <stdio.h>
#include <string.h>

#include "admin/explain.h"
#include "capture/capture.h"
#include "config/store.h"
#include "core/addr.h"
#include "enroll/autoenroll.h"
#include "enroll/pods.h"
#include "mesh/mesh.h"
#include "proxy/conns.h"
#include "proxy/outbound.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/kevents.h"

static json_t *cmd_enroll(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    const char *pod = json_string_value(json_object_get(req, "pod"));
    const char *netns = json_string_value(json_object_get(req, "netns"));
    if (v->draining) {
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
    if (pods_enroll(v->pods, &spec, err, errlen) != 0)
        return NULL;
    return json_pack("{s:s}", "enrolled", pod);
}

static json_t *cmd_unenroll(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    const char *pod = json_string_value(json_object_get(req, "pod"));
    if (!pod) {
        snprintf(err, errlen, "unenroll needs \"pod\" (namespace/name)");
        return NULL;
    }
    if (pods_unenroll(v->pods, pod, err, errlen) != 0)
        return NULL;
    return json_pack("{s:s}", "unenrolled", pod);
}

/* meshd-cni: the runtime created (ADD) or tore down (DEL) a pod's sandbox.
 * An ADD that fails fails the sandbox: the runtime retries, and the pod
 * never starts uncaptured. */
static json_t *cmd_cni_add(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    if (v->draining || !v->autoenroll) {
        snprintf(err, errlen, "%s",
                 v->draining ? "the agent is draining before it stops"
                             : "meshd runs without enrollment by label");
        return NULL;
    }
    struct autoenroll_cni c = {
        .ns = json_string_value(json_object_get(req, "namespace")),
        .name = json_string_value(json_object_get(req, "name")),
        .uid = json_string_value(json_object_get(req, "uid")),
        .netns = json_string_value(json_object_get(req, "netns")),
    };
    int rc = autoenroll_cni_add(v->autoenroll, cfg_store_current(v->config), &c, err, errlen);
    if (rc < 0)
        return NULL;
    return json_pack("{s:b}", "enrolled", rc == 1);
}

static json_t *cmd_cni_del(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    (void)err;
    (void)errlen;
    int rc = v->autoenroll
                 ? autoenroll_cni_del(v->autoenroll,
                                      json_string_value(json_object_get(req, "namespace")),
                                      json_string_value(json_object_get(req, "name")))
                 : 0;
    return json_pack("{s:b}", "released", rc == 1);
}

json_t *admin_pods_json(const struct admin_view *v)
{
    json_t *arr = json_array();
    for (const struct pod *p = pods_first(v->pods); p && arr; p = p->next) {
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
        if (o && v->mesh && mesh_pod_certificate(p, &spiffe, &not_after)) {
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
    if (r->local) /* the same-node fast path: no TLS, decided here for both ends */
        json_object_set_new(rec, "local", json_true());
    if (r->upstream.family) /* the endpoint connected to (the last attempt) */
        json_object_set_new(rec, "upstream",
                            json_string(addr_format(&r->upstream, upstream, sizeof(upstream))));
    json_array_append_new(arg, rec);
}

static json_t *cmd_connections(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    json_t *arr = json_array();
    if (arr)
        conns_foreach(v->conns, append_record, arr);
    return arr;
}

static json_t *mesh_status(const struct admin_view *v)
{
    if (!v->mesh)
        return NULL;
    struct mesh_stats ms;
    mesh_get_stats(v->mesh, &ms);
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

static json_t *config_status(const struct admin_view *v)
{
    struct cfg_store_status cs;
    cfg_store_status(v->config, &cs);
    const struct cfg_snapshot *snap = cfg_store_current(v->config);
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
                     v->config_dir, "version", cs.version, "loaded", cs.loaded, "serving",
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
    struct admin_view *v = ctx;
    const char *w = req_workload(req, "routes", err, errlen);
    return w ? explain_routes(cfg_store_current(v->config), w,
                              json_string_value(json_object_get(req, "service")), err, errlen)
             : NULL;
}

static json_t *cmd_tls_check(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct admin_view *v = ctx;
    const char *w = req_workload(req, "tls-check", err, errlen);
    return w ? explain_tls(cfg_store_current(v->config), v->trust_domain, w, err, errlen) : NULL;
}

json_t *admin_status_json(const struct admin_view *v)
{
    struct conn_telemetry_stats tstats;
    conn_telemetry_get_stats(v->telemetry, &tstats);
    uint64_t bpf[MESHD_STAT__MAX];
    struct conns_stats cs;
    conns_get_stats(v->conns, &cs);
    json_t *stats = json_object();
    if (capture_stats(v->capture, bpf) == 0)
        for (int i = 0; i < MESHD_STAT__MAX; i++)
            json_object_set_new(stats, capture_stat_name(i), json_integer((json_int_t)bpf[i]));
    struct outbound_stats obs;
    outbound_get_stats(v->outbound, &obs);
    json_t *st = json_pack(
        "{s:s,s:s,s:s,s:s,s:i,s:o,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o?,s:"
        "o}",
        "version", v->version, "node", v->node, "cgroup", v->cgroup_path, "pin_dir", v->pin_dir,
        "pods", (int)pods_count(v->pods), "bpf", stats, "telemetry", "events",
        (json_int_t)kevents_received(v->kevents), "matched", (json_int_t)tstats.kevents_joined,
        "unmatched", (json_int_t)tstats.kevents_unjoined, "connections", "accepted",
        (json_int_t)cs.accepted, "forwarded", (json_int_t)cs.forwarded, "failed",
        (json_int_t)cs.failed, "refused", (json_int_t)cs.refused, "overflow",
        (json_int_t)cs.overflow, "self_calls", (json_int_t)cs.self_calls, "active",
        (json_int_t)cs.active, "retries", (json_int_t)obs.retries, "timeouts",
        (json_int_t)obs.timeouts, "mesh", mesh_status(v), "config", config_status(v));
    if (st) /* the same-node fast path (proxy/local_path.h) */
        json_object_set_new(st, "local_fast_path",
                            json_pack("{s:I,s:I,s:I}", "connections",
                                      (json_int_t)obs.local_connections, "denied",
                                      (json_int_t)obs.local_denied, "self_calls",
                                      (json_int_t)obs.local_self_calls));
    return st;
}

static json_t *cmd_pods(void *ctx, const json_t *req, char *err, size_t errlen)
{
    return admin_pods_json(ctx);
}

static json_t *cmd_status(void *ctx, const json_t *req, char *err, size_t errlen)
{
    return admin_status_json(ctx);
}

void admin_commands(struct admin_view *v, struct admin_command out[ADMIN_NCOMMANDS])
{
    const struct admin_command cmds[ADMIN_NCOMMANDS] = {
        {"enroll", cmd_enroll, v},   {"unenroll", cmd_unenroll, v},
        {"pods", cmd_pods, v},       {"connections", cmd_connections, v},
        {"status", cmd_status, v},   {"config", cmd_config, v},
        {"routes", cmd_routes, v},   {"tls-check", cmd_tls_check, v},
        {"cni-add", cmd_cni_add, v}, {"cni-del", cmd_cni_del, v},
    };
    memcpy(out, cmds, sizeof(cmds));
}
