/* The agent's module table (see agent_modules.h): how each module of one
 * meshd instance is started from the options, wired to the others, ticked,
 * stopped and freed. The order of the table is the start-up order:
 * configuration (loaded, or the persisted last good one, or fail closed)
 * -> mounts and BPF capture (take over pins or attach) -> telemetry ->
 * connections -> mesh -> proxies -> kernel events -> pod registry (restore)
 * -> admin socket -> HTTP endpoints. */
#include "agent_modules.h"

#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/endpoints.h"
#include "admin/http.h"
#include "capture/capture.h"
#include "capture/mounts.h"
#include "config/mesh_config.h"
#include "config/store.h"
#include "core/log.h"
#include "enroll/autoenroll.h"
#include "enroll/pod_source.h"
#include "gateway/gateway.h"
#include "http/proxy.h"
#include "telemetry/http_metrics.h"
#include "mesh/mesh.h"
#include "proxy/conns.h"
#include "http/inbound.h"
#include "kube/kube.h"
#include "proxy/inbound.h"
#include "proxy/outbound.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/kevents.h"
#include "telemetry/tcp_metrics.h"
#include "telemetry/tracer.h"

/* ---- configuration ------------------------------------------------------ */

/* A new configuration: open connections are judged by its policies too
 * (Istio re-evaluates a changed policy against existing connections). */
/* A same-node fast-path connection, judged by its destination record as
 * the HBONE server judges its streams: the source's enrolled identity. */
static bool keep_local(void *gate, const struct conn_record *rec)
{
    const struct admit_gate *g = gate;
    const struct pod *pod = g->pods ? pods_find_ip(g->pods, &rec->orig_dst) : NULL;
    if (!pod)
        return true; /* unenrolled since: not ours to judge */
    return admit_gate_authorize(gate, pod, rec->peer_identity, &rec->src, &rec->orig_dst) == 0;
}

static void on_config_applied(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old)
{
    struct agent *ag = ctx;
    if (!ag->v.conns || !ag->v.pods)
        return; /* the first load, before the data path exists */
    /* Pod objects may have arrived, changed or gone: identities first, so
     * that the revalidation below judges by who each pod now is. */
    pods_rebind(ag->v.pods, ag->v.mesh ? mesh_identity_rebind : NULL, ag->v.mesh);
    if (ag->gateway)
        gateway_reconfigure(ag->gateway); /* Secrets re-read: new handshakes see them */
    if (ag->v.autoenroll)                 /* namespaces relabelled, pods come and go */
        autoenroll_reconcile(ag->v.autoenroll, now);
    size_t closed = conns_revalidate(ag->v.conns, "inbound", admit_gate_keep_plaintext, &ag->gate);
    if (ag->v.mesh)
        closed += mesh_revalidate(ag->v.mesh);
    closed += conns_revalidate_twins(ag->v.conns, keep_local, &ag->gate);
    if (closed)
        log_info("authz: %zu open connection%s closed: no longer allowed by version %s", closed,
                 closed == 1 ? "" : "s", cfg_snapshot_version(now));
}

/* Loaded first, before any pod is restored, so a restored pod is never
 * served without a configuration: the operator's, else the last good one
 * persisted in the state dir, else none and fail closed. */
static int config_start(struct agent *ag)
{
    struct cfg_store_opts o = {.dir = ag->opts->config_dir,
                               .state_dir = ag->opts->state_dir,
                               .gateway_cert_dir = ag->opts->gateway_cert_dir,
                               .applied = on_config_applied,
                               .ctx = ag};
    int err = cfg_store_new(ag->loop, &o, &ag->v.config);
    if (err)
        log_error("agent: configuration %s: %s", ag->opts->config_dir, strerror(-err));
    ag->gate.config = ag->v.config;
    return err;
}

static void config_free(struct agent *ag)
{
    cfg_store_free(ag->v.config);
}

/* ---- the Kubernetes API ----------------------------------------------- */

/* Before the configuration: the mirror directory the store serves must
 * exist. The lists go out once the loop runs; until they are in, the
 * store serves what the mirror held (the last run's objects). */
/* The store starts after kube (kube's mirror is its directory): looked up
 * when a list comes. */
static void kube_hold_config(void *ctx, bool on)
{
    struct agent *ag = ctx;
    cfg_store_hold(ag->v.config, on);
}

static int kube_start(struct agent *ag)
{
    const struct agent_opts *opts = ag->opts;
    if (!opts->kube)
        return 0;
    struct kube_target t;
    char err[300];
    int rc = opts->kubeconfig ? kube_target_kubeconfig(opts->kubeconfig, &t, err, sizeof(err))
                              : kube_target_in_cluster(NULL, &t, err, sizeof(err));
    if (rc) {
        log_error("agent: kube: %s", err);
        return rc;
    }
    struct kube_opts o = {.mirror_dir = opts->config_dir,
                          .node = opts->node,
                          .hold = kube_hold_config,
                          .hold_ctx = ag};
    return kube_new(ag->loop, &t, &o, &ag->kube); /* logged by kube_new */
}

static void kube_stop(struct agent *ag)
{
    kube_free(ag->kube);
    ag->kube = NULL;
}

/* ---- capture ------------------------------------------------------------ */

static int capture_start(struct agent *ag)
{
    const struct agent_opts *opts = ag->opts;
    char bpffs[256];
    if (mounts_ensure("cgroup2", NULL, "/run/meshd/cgroup2", ag->cgroup_path,
                      sizeof(ag->cgroup_path)) != 0)
        return -1;
    if (opts->bpffs)
        snprintf(bpffs, sizeof(bpffs), "%s", opts->bpffs);
    else if (mounts_ensure("bpf", "/sys/fs/bpf", "/sys/fs/bpf", bpffs, sizeof(bpffs)) != 0)
        return -1;
    snprintf(ag->pin_dir, sizeof(ag->pin_dir), "%s/meshd/%s", bpffs, opts->instance);
    struct capture_opts o = {.pin_dir = ag->pin_dir,
                             .cgroup_path = ag->cgroup_path,
                             .sock_mark = MESHD_SOCK_MARK,
                             .outbound_port = MESHD_PORT_OUTBOUND,
                             .ring_bytes = opts->ring_bytes};
    return capture_open(&o, &ag->v.capture); /* logged by capture_open */
}

/* Pins stay: a handover, whatever the reason we stop. */
static void capture_free(struct agent *ag)
{
    capture_close(ag->v.capture, false);
}

/* ---- telemetry ---------------------------------------------------------- */

static int telemetry_start(struct agent *ag)
{
    struct conn_telemetry_opts o = {.config = ag->v.config,
                                    .trust_domain = ag->opts->trust_domain,
                                    .access_log_all = ag->opts->access_log,
                                    .log_json = ag->opts->log_json};
    int err = conn_telemetry_new(&o, &ag->v.telemetry);
    if (err)
        log_error("agent: metrics: %s", strerror(-err));
    return err;
}

static void telemetry_free(struct agent *ag)
{
    conn_telemetry_free(ag->v.telemetry); /* stdout gets its flags back */
}

static void telemetry_tick(struct agent *ag, uint64_t now_ns)
{
    conn_telemetry_tick(ag->v.telemetry, now_ns);
}

/* ---- connections -------------------------------------------------------- */

static void on_conn_opened(void *ctx, const struct conn_record *rec)
{
    struct agent *ag = ctx;
    conn_telemetry_opened(ag->v.telemetry, rec);
}

static void on_conn_closed(void *ctx, const struct conn_record *rec)
{
    struct agent *ag = ctx;
    if (ag->v.mesh)
        mesh_conn_closed(ag->v.mesh, rec);
    conn_telemetry_closed(ag->v.telemetry, rec);
    if (ag->tracer && !rec->per_request) { /* a byte stream's span, if its Telemetry asks */
        struct tcp_labels labels;
        conn_telemetry_request_labels(ag->v.telemetry, rec, NULL, false, &labels);
        snprintf(labels.v[TL_REQUEST_PROTOCOL], sizeof(labels.v[0]), "tcp");
        tracer_connection(ag->tracer, rec, &labels);
    }
}

static int conns_start(struct agent *ag)
{
    struct conns_opts o = {
        .max_conns = ag->opts->max_conns,
        .records = 1024,
        .owner = capture_owner(ag->v.capture),
        .observer = {.opened = on_conn_opened, .closed = on_conn_closed, .ctx = ag}};
    int err = conns_new(ag->loop, &o, &ag->v.conns);
    if (err)
        log_error("agent: connections: %s", strerror(-err));
    return err;
}

/* Resets what is still open; the records reach telemetry. */
static void conns_stop(struct agent *ag)
{
    conns_free(ag->v.conns);
    ag->v.conns = NULL;
}

/* ---- request telemetry (both sides of the HTTP carrier) ----------------- */

/* One request, labelled by its connection's record and, at the source,
 * by where this request went (requests of one connection may go to
 * different services and endpoints). */
static void on_http_request(void *ctx, struct http_request_record *r,
                            const struct conn_record *conn, const struct http_decision *d)
{
    struct agent *ag = ctx;
    struct http_request_dest dst = {0};
    bool outbound = conn && strcmp(conn->direction, "outbound") == 0;
    if (outbound && d && d->verdict == HTTP_FORWARD) {
        dst.service = d->route.service;
        dst.endpoint = d->route.target.family ? &d->route.target : NULL;
        dst.peer_identity = d->route.action == OUTBOUND_HBONE ? d->route.key.dst_id : "";
    }
    if (conn)
        conn_telemetry_request_labels_id(ag->v.telemetry, conn, outbound ? &dst : NULL, r->grpc,
                                         &r->labels, &r->labels_id);
    if (r->source_principal) { /* an ISTIO_MUTUAL gateway's client, verified */
        snprintf(r->labels.v[TL_SOURCE_PRINCIPAL], sizeof(r->labels.v[0]), "%s",
                 r->source_principal);
        r->labels_id = 0; /* no longer the kept set's labels: compared */
    }
    conn_telemetry_request(ag->v.telemetry, conn, r);
    tracer_end(ag->tracer, r->trace, r, conn);
}

/* ---- tracing (--trace-collector) ---------------------------------------- */

static void on_http_trace_begin(void *ctx, const char *ns, const char *name, bool server,
                                const struct http_request_view *req, struct trace_span *out)
{
    tracer_begin(ctx, ns, name, server, req, out);
}

/* MeshConfig's providers, resolved now (start-up: DNS may block). */
static int mesh_providers(struct agent *ag, struct tracer_opts *o, struct mesh_config *mc)
{
    char err[256];
    int rc = mesh_config_load(ag->opts->mesh_config, mc, err, sizeof(err));
    if (rc) {
        log_error("agent: --mesh-config %s: %s", ag->opts->mesh_config, err);
        return rc;
    }
    if (mc->skipped[0])
        log_warn("agent: mesh config: tracing providers not used: %s", mc->skipped);
    for (size_t i = 0; i < mc->ntracing && o->nexporters < TRACER_MAX_EXPORTERS; i++) {
        const struct mesh_trace_provider *p = &mc->tracing[i];
        struct otlp_opts *e = &o->exporters[o->nexporters];
        if ((rc = otlp_collector_resolve(p->name, p->service, p->port, p->path, &e->collector))) {
            log_error("agent: tracing provider %s: %s:%u: %s", p->name, p->service, p->port,
                      strerror(-rc));
            return rc;
        }
        e->timeout_ms = p->timeout_ms;
        o->nexporters++;
    }
    o->default_provider = mc->default_tracing[0] ? mc->default_tracing : NULL;
    return 0;
}

static int tracing_start(struct agent *ag)
{
    if (!ag->opts->trace_collector && !ag->opts->mesh_config)
        return 0;
    struct tracer_opts o = {
        .config = ag->v.config, .node = ag->opts->node, .mesh_id = ag->opts->trust_domain};
    struct mesh_config mc;
    int err = ag->opts->mesh_config ? mesh_providers(ag, &o, &mc) : 0;
    if (!err && ag->opts->trace_collector && o.nexporters < TRACER_MAX_EXPORTERS &&
        (err = otlp_collector_parse(ag->opts->trace_collector,
                                    &o.exporters[o.nexporters].collector)) == 0)
        o.nexporters++;
    if (!err && !o.nexporters) {
        log_warn("agent: no OTLP/HTTP tracing provider: no spans are exported");
        return 0;
    }
    if (!err)
        err = tracer_new(ag->loop, &o, &ag->tracer);
    if (err)
        log_error("agent: tracing: %s", strerror(-err));
    else
        log_info("agent: tracing: %zu provider%s, default %s", o.nexporters,
                 o.nexporters == 1 ? "" : "s",
                 o.default_provider ? o.default_provider : o.exporters[0].collector.name);
    ag->v.tracer = ag->tracer;
    return err;
}

static void tracing_free(struct agent *ag)
{
    tracer_free(ag->tracer);
    ag->tracer = ag->v.tracer = NULL;
}

/* ---- HTTP at the destination (before the mesh, whose server uses it) ---- */

static int http_inbound_start(struct agent *ag)
{
    struct http_inbound_opts o = {.gate = &ag->gate, .report = on_http_request, .report_ctx = ag};
    return http_inbound_new(&o, &ag->http_inbound);
}

static void http_inbound_module_free(struct agent *ag)
{
    http_inbound_free(ag->http_inbound);
    ag->http_inbound = NULL;
}

/* ---- mesh: identities, the HBONE server and pool (--ca-dir) -------------- */

static int mesh_start(struct agent *ag)
{
    const struct agent_opts *opts = ag->opts;
    if (!opts->ca_dir)
        return 0;
    struct mesh_opts o = {.ca_dir = opts->ca_dir,
                          .trust_domain = opts->trust_domain,
                          .owner = capture_owner(ag->v.capture),
                          .node = opts->node,
                          .cert_ttl_s = opts->cert_ttl_s,
                          .authorize = admit_gate_authorize,
                          .authorize_ctx = &ag->gate,
                          .wants_http = http_inbound_wants,
                          .authorize_http = http_inbound_authorize_connection,
                          .serve_http = http_inbound_serve_stream,
                          .http_ctx = ag->http_inbound,
                          .local_fast_path = !opts->no_local_fast_path};
    return mesh_new(ag->loop, ag->v.conns, &o, &ag->v.mesh); /* logged by mesh_new */
}

/* Closes tunnels, whose records end in conns, which must not report to
 * the mesh afterwards. */
static void mesh_stop(struct agent *ag)
{
    mesh_free(ag->v.mesh);
    ag->v.mesh = NULL;
}

static bool mesh_identity_hooks(struct agent *ag, struct pod_hooks *out)
{
    *out = (struct pod_hooks){
        .attach = mesh_identity_attach, .detach = mesh_identity_detach, .ctx = ag->v.mesh};
    return ag->v.mesh != NULL;
}

static bool mesh_hbone_hooks(struct agent *ag, struct pod_hooks *out)
{
    *out = (struct pod_hooks){.attach = mesh_hbone_attach,
                              .detach = mesh_hbone_detach,
                              .quiesce = mesh_hbone_quiesce,
                              .ctx = ag->v.mesh};
    return ag->v.mesh != NULL;
}

static void mesh_module_tick(struct agent *ag, uint64_t now_ns)
{
    if (ag->v.mesh)
        mesh_tick(ag->v.mesh, now_ns);
}

/* ---- the HTTP carrier (with a mesh: it routes per request) -------------- */

static int http_proxy_start(struct agent *ag)
{
    if (!ag->v.mesh)
        return 0;
    struct http_proxy_opts o = {.owner = capture_owner(ag->v.capture),
                                .pool = mesh_http_pool(ag->v.mesh),
                                .trace_begin = ag->tracer ? on_http_trace_begin : NULL,
                                .trace_ctx = ag->tracer,
                                .head_timeout_ns = ag->opts->http_header_timeout_s * 1000000000ull};
    int err = http_proxy_new(ag->loop, &o, &ag->http_proxy);
    if (err) {
        log_error("agent: HTTP carrier: %s", strerror(-err));
        return err;
    }
    http_inbound_set_proxy(ag->http_inbound, ag->http_proxy);
    mesh_set_http(ag->v.mesh, ag->http_proxy);
    return 0;
}

/* Before the mesh and the connection table it reports into. */
static void http_proxy_stop(struct agent *ag)
{
    http_inbound_set_proxy(ag->http_inbound, NULL);
    if (ag->v.mesh)
        mesh_set_http(ag->v.mesh, NULL);
    http_proxy_free(ag->http_proxy);
    ag->http_proxy = NULL;
}

/* ---- the ingress gateway (with the HTTP carrier) ------------------------- */

/* PASSTHROUGH bytes ride the outbound proxy's flows (started after). */
static void gateway_carry(void *ctx, struct pod *gw, struct conn *c,
                          const struct outbound_route *route)
{
    struct agent *ag = ctx;
    outbound_carry(ag->v.outbound, gw, c, route);
}

static int gateway_start(struct agent *ag)
{
    if (!ag->http_proxy)
        return 0;
    struct gateway_opts o = {.conns = ag->v.conns,
                             .http = ag->http_proxy,
                             .config = ag->v.config,
                             .http_route = mesh_gateway_http_route,
                             .route_released = mesh_route_released,
                             .route_ctx = ag->v.mesh,
                             .report = on_http_request,
                             .report_ctx = ag,
                             .tls_route = mesh_gateway_tls_route,
                             .carry = gateway_carry,
                             .carry_ctx = ag,
                             .tcp_route = mesh_gateway_tcp_route,
                             .workload_ctx = mesh_gateway_server_ctx,
                             .workload_leaf = mesh_gateway_workload_leaf,
                             .verify_client = mesh_gateway_verify_client,
                             .auto_route = mesh_gateway_auto_route};
    int err = gateway_new(ag->loop, &o, &ag->gateway);
    if (err)
        log_error("agent: gateway: %s", strerror(-err));
    return err;
}

/* After the carrier ended its sessions, whose routers point here. */
static void gateway_module_free(struct agent *ag)
{
    gateway_free(ag->gateway);
    ag->gateway = NULL;
}

static bool gateway_hooks(struct agent *ag, struct pod_hooks *out)
{
    *out = (struct pod_hooks){
        .attach = gateway_attach_pod, .detach = gateway_detach_pod, .ctx = ag->gateway};
    return ag->gateway != NULL;
}

static void gateway_module_tick(struct agent *ag, uint64_t now_ns)
{
    if (ag->gateway)
        gateway_tick(ag->gateway, now_ns);
}

/* ---- proxies ------------------------------------------------------------ */

static int outbound_start(struct agent *ag)
{
    struct outbound_opts o = {.port = MESHD_PORT_OUTBOUND};
    if (ag->v.mesh) {
        o.route = mesh_route;
        o.route_released = mesh_route_released;
        o.route_ctx = ag->v.mesh;
        o.pool = mesh_pool(ag->v.mesh);
        o.http = ag->http_proxy;
        o.http_sniff = http_sniff;
        o.http_start = http_session_start;
        o.protocol = mesh_protocol;
        o.http_route = mesh_http_route;
        o.http_mirror = mesh_http_mirror;
        o.http_report = on_http_request;
        o.http_report_ctx = ag;
        o.local_authorize = admit_gate_authorize; /* the HBONE server's decision */
        o.local_authorize_ctx = &ag->gate;
    }
    int err = outbound_new(ag->loop, ag->v.capture, ag->v.conns, &o, &ag->v.outbound);
    if (err)
        log_error("agent: proxies: %s", strerror(-err));
    return err;
}

static void outbound_module_free(struct agent *ag)
{
    outbound_free(ag->v.outbound);
}

static bool outbound_hooks(struct agent *ag, struct pod_hooks *out)
{
    *out = (struct pod_hooks){.attach = outbound_attach_pod,
                              .detach = outbound_detach_pod,
                              .quiesce = outbound_quiesce_pod,
                              .ctx = ag->v.outbound};
    return true;
}

static int inbound_start(struct agent *ag)
{
    struct inbound_opts o = {.port = MESHD_PORT_INBOUND,
                             .pin_dir = ag->pin_dir,
                             .mtls_mode = admit_gate_mtls,
                             .authorize = admit_gate_authorize,
                             .mtls_ctx = &ag->gate,
                             .wants_http = http_inbound_wants,
                             .authorize_http = http_inbound_authorize_connection,
                             .serve_http = http_inbound_serve,
                             .http_ctx = ag->http_inbound,
                             .gateway_accept = ag->gateway ? gateway_accept : NULL,
                             .gateway_ctx = ag->gateway};
    int err = inbound_new(ag->loop, ag->v.conns, &o, &ag->inbound);
    if (err)
        log_error("agent: proxies: %s", strerror(-err));
    return err;
}

static void inbound_module_free(struct agent *ag)
{
    inbound_free(ag->inbound);
}

static bool inbound_hooks(struct agent *ag, struct pod_hooks *out)
{
    *out = (struct pod_hooks){.attach = inbound_attach_pod,
                              .detach = inbound_detach_pod,
                              .quiesce = inbound_quiesce_pod,
                              .ctx = ag->inbound};
    return true;
}

/* ---- kernel connection events ------------------------------------------ */

/* Attach RTT/retransmits to meshd's record of the socket. */
static void on_kernel_event(void *ctx, const struct meshd_conn_event *ev)
{
    struct agent *ag = ctx;
    conn_telemetry_kernel_event(ag->v.telemetry, conns_kernel_event(ag->v.conns, ev), ev);
}

static int kevents_start(struct agent *ag)
{
    int err = kevents_new(ag->loop, capture_events_fd(ag->v.capture), on_kernel_event, ag,
                          &ag->v.kevents);
    if (err)
        log_error("agent: connection-event ring: %s", strerror(-err));
    return err;
}

static void kevents_stop(struct agent *ag)
{
    kevents_free(ag->v.kevents);
    ag->v.kevents = NULL;
}

/* ---- pod registry ------------------------------------------------------- */

/* An enrolled pod is who its Pod object in the served configuration says. */
static enum pod_binding bind_pod(void *ctx, struct pod *pod)
{
    struct agent *ag = ctx;
    return pod_source_bind(cfg_store_current(ag->v.config), ag->opts->node, pod);
}

static int pods_start(struct agent *ag)
{
    struct pod_hooks hooks[PODS_MAX_HOOKS];
    size_t n = 0;
    for (size_t i = 0; i < agent_nmodules && n < PODS_MAX_HOOKS; i++)
        if (agent_modules[i].pod_hooks && agent_modules[i].pod_hooks(ag, &hooks[n]))
            n++;
    char state_file[320];
    snprintf(state_file, sizeof(state_file), "%s/pods.json", ag->opts->state_dir);
    int err = pods_new(ag->v.capture, state_file, hooks, n, &ag->v.pods);
    if (err) {
        log_error("agent: pod registry: %s", strerror(-err));
        return err;
    }
    ag->gate.pods = ag->v.pods;
    pods_set_binder(ag->v.pods, bind_pod, ag);
    if (ag->v.mesh) {
        mesh_set_pods(ag->v.mesh, ag->v.pods);
        mesh_set_config(ag->v.mesh, ag->v.config);
        mesh_set_outbound(ag->v.mesh, ag->v.outbound);
    }
    pods_restore(ag->v.pods);
    if (ag->opts->enroll_by_label) {
        struct autoenroll_opts ao = {.node = ag->opts->node,
                                     .netns_dir = ag->opts->netns_dir,
                                     .scan_proc = !ag->opts->netns_dir};
        if ((err = autoenroll_new(ag->v.pods, &ao, &ag->v.autoenroll)) != 0) {
            log_error("agent: enrollment by label: %s", strerror(-err));
            return err;
        }
        /* Pods already running when the agent starts are found now. */
        autoenroll_reconcile(ag->v.autoenroll, cfg_store_current(ag->v.config));
    }
    return 0;
}

/* A handover: enrolled pods stay enrolled in the kernel and fail closed
 * until the next agent (never open). */
static void pods_stop(struct agent *ag)
{
    autoenroll_free(ag->v.autoenroll);
    ag->v.autoenroll = NULL;
    pods_free(ag->v.pods, true);
    ag->v.pods = ag->gate.pods = NULL;
}

/* ---- admin: the control socket, the HTTP endpoints ---------------------- */

static int admin_start(struct agent *ag)
{
    /* The table outlives the admin: it lives with the agent. */
    static struct admin_command cmds[ADMIN_NCOMMANDS + 1];
    admin_commands(&ag->v, cmds);
    /* The exposition, for meshctl dashboard (admin/endpoints.h). */
    cmds[ADMIN_NCOMMANDS] = (struct admin_command){"metrics", admin_metrics_command, &ag->v};
    return admin_new(ag->loop, ag->opts->admin_socket, cmds, ADMIN_NCOMMANDS + 1, &ag->v.admin);
}

static void admin_stop(struct agent *ag)
{
    admin_free(ag->v.admin);
    ag->v.admin = NULL;
}

static int http_start(struct agent *ag)
{
    return admin_endpoints_start(ag->loop, &ag->v);
}

static void http_stop(struct agent *ag)
{
    for (int i = 0; i < 3; i++) {
        http_server_free(ag->v.http[i]);
        ag->v.http[i] = NULL;
    }
}

const struct agent_module agent_modules[] = {
    {"kube", kube_start, kube_stop, NULL, NULL, NULL},
    {"config", config_start, NULL, config_free, NULL, NULL},
    {"capture", capture_start, NULL, capture_free, NULL, NULL},
    {"telemetry", telemetry_start, NULL, telemetry_free, NULL, telemetry_tick},
    {"tracing", tracing_start, NULL, tracing_free, NULL, NULL},
    {"conns", conns_start, conns_stop, NULL, NULL, NULL},
    {"http-inbound", http_inbound_start, NULL, http_inbound_module_free, NULL, NULL},
    {"mesh", mesh_start, mesh_stop, NULL, mesh_identity_hooks, mesh_module_tick},
    {"http-proxy", http_proxy_start, http_proxy_stop, NULL, NULL, NULL},
    {"gateway", gateway_start, NULL, gateway_module_free, gateway_hooks, gateway_module_tick},
    {"outbound", outbound_start, NULL, outbound_module_free, outbound_hooks, NULL},
    {"inbound", inbound_start, NULL, inbound_module_free, inbound_hooks, NULL},
    {"hbone-server", NULL, NULL, NULL, mesh_hbone_hooks, NULL},
    {"kevents", kevents_start, kevents_stop, NULL, NULL, NULL},
    {"pods", pods_start, pods_stop, NULL, NULL, NULL},
    {"admin", admin_start, admin_stop, NULL, NULL, NULL},
    {"http", http_start, http_stop, NULL, NULL, NULL},
};
const size_t agent_nmodules = sizeof(agent_modules) / sizeof(agent_modules[0]);
