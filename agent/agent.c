/* One meshd instance: start-up order, drain and stop.
 *
 * Start-up: configuration (loaded, or the persisted last good one, or fail
 * closed) -> mounts -> BPF capture (take over pins or attach) -> proxies ->
 * pod registry (restore) -> admin socket -> loop. SIGTERM drains (listeners
 * closed, open connections get --drain-seconds), then shutdown runs in
 * reverse but hands over: pins, BPF enrollment and pods.json stay, so
 * enrolled pods fail closed until the next agent restores them. Detaching
 * everything is `meshd uninstall` (agent/uninstall.c).
 *
 * What the modules decide lives with them: admission in policy/admit,
 * the control socket's commands in admin/commands, the HTTP endpoints and
 * /metrics in admin/endpoints and telemetry/agent_metrics, what becomes
 * of a connection record in telemetry/conn_telemetry. */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/commands.h"
#include "admin/endpoints.h"
#include "admin/http.h"
#include "capture/capture.h"
#include "capture/mounts.h"
#include "config/store.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proc.h"
#include "core/ticker.h"
#include "enroll/pod_source.h"
#include "enroll/pods.h"
#include "mesh/mesh.h"
#include "policy/admit.h"
#include "proxy/conns.h"
#include "proxy/inbound.h"
#include "proxy/outbound.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/kevents.h"

struct agent {
    const struct agent_opts *opts;
    struct loop *loop;
    struct admin_view v; /* the running modules, as the admin side sees them */
    struct inbound *inbound;
    struct admit_gate gate;
    struct ticker ticker;
    struct loop_io signal_io;
    struct ticker drain_ticker;
    uint64_t drain_deadline_ns; /* 0: not draining */
    char cgroup_path[256];
    char pin_dir[384];
};

/* An enrolled pod is who its Pod object in the served configuration says. */
static enum pod_binding agent_bind_pod(void *ctx, struct pod *pod)
{
    struct agent *ag = ctx;
    return pod_source_bind(cfg_store_current(ag->v.config), ag->opts->node, pod);
}

/* A new configuration: open connections are judged by its policies too
 * (Istio re-evaluates a changed policy against existing connections). */
static void on_config_applied(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old)
{
    struct agent *ag = ctx;
    if (!ag->v.conns || !ag->v.pods)
        return; /* the first load, before the data path exists */
    /* Pod objects may have arrived, changed or gone: identities first, so
     * that the revalidation below judges by who each pod now is. */
    pods_rebind(ag->v.pods, ag->v.mesh ? mesh_identity_rebind : NULL, ag->v.mesh);
    size_t closed = conns_revalidate(ag->v.conns, "inbound", admit_gate_keep_plaintext, &ag->gate);
    if (ag->v.mesh)
        closed += mesh_revalidate(ag->v.mesh);
    if (closed)
        log_info("authz: %zu open connection%s closed: no longer allowed by version %s", closed,
                 closed == 1 ? "" : "s", cfg_snapshot_version(now));
}

/* A kernel connection event: attach RTT/retransmits to meshd's record. */
static void on_kernel_event(void *ctx, const struct meshd_conn_event *ev)
{
    struct agent *ag = ctx;
    conn_telemetry_kernel_event(ag->v.telemetry, conns_kernel_event(ag->v.conns, ev), ev);
}

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
}

static void on_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    conn_telemetry_tick(ag->v.telemetry, now_ns);
    if (ag->v.mesh)
        mesh_tick(ag->v.mesh, now_ns);
}

/* Drain: done when no connection is left or the grace period is over. */
static void on_drain_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    struct conns_stats cs;
    conns_get_stats(ag->v.conns, &cs);
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
    conns_get_stats(ag->v.conns, &cs);
    ag->drain_deadline_ns = loop_now_ns() + (uint64_t)ag->opts->drain_s * 1000000000ull;
    ag->v.draining = true;
    pods_quiesce(ag->v.pods);
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
        if (ag->drain_deadline_ns || !ag->opts->drain_s || !ag->v.pods)
            loop_stop(ag->loop);
        else
            begin_drain(ag);
    }
}

static int setup_signals(struct agent *ag)
{
    if ((ag->signal_io.fd = proc_signalfd()) < 0)
        return ag->signal_io.fd;
    ag->signal_io.cb = on_signal;
    return loop_add(ag->loop, &ag->signal_io, EPOLLIN);
}

/* The proxies' and the registry's hooks, per pod: attached in this order,
 * detached in reverse. A pod's identity exists before its HBONE server,
 * which goes before the identity. */
static size_t pod_hooks_of(const struct agent *ag, struct pod_hooks hooks[PODS_MAX_HOOKS])
{
    size_t n = 0;
    if (ag->v.mesh)
        hooks[n++] = (struct pod_hooks){
            .attach = mesh_identity_attach, .detach = mesh_identity_detach, .ctx = ag->v.mesh};
    hooks[n++] = (struct pod_hooks){.attach = outbound_attach_pod,
                                    .detach = outbound_detach_pod,
                                    .quiesce = outbound_quiesce_pod,
                                    .ctx = ag->v.outbound};
    hooks[n++] = (struct pod_hooks){.attach = inbound_attach_pod,
                                    .detach = inbound_detach_pod,
                                    .quiesce = inbound_quiesce_pod,
                                    .ctx = ag->inbound};
    if (ag->v.mesh)
        hooks[n++] = (struct pod_hooks){.attach = mesh_hbone_attach,
                                        .detach = mesh_hbone_detach,
                                        .quiesce = mesh_hbone_quiesce,
                                        .ctx = ag->v.mesh};
    return n;
}

/* Mounts, then BPF capture: take over the pins of a previous agent, or
 * attach. */
static int start_capture(struct agent *ag)
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
    snprintf(ag->pin_dir, sizeof(ag->pin_dir), "%s/meshd/%s", bpffs, opts->node);
    struct capture_opts copts = {.pin_dir = ag->pin_dir,
                                 .cgroup_path = ag->cgroup_path,
                                 .sock_mark = MESHD_SOCK_MARK,
                                 .outbound_port = MESHD_PORT_OUTBOUND,
                                 .ring_bytes = opts->ring_bytes};
    return capture_open(&copts, &ag->v.capture);
}

/* Connections, the mesh (with --ca-dir), the proxies, the kernel events. */
static int start_data_path(struct agent *ag)
{
    const struct agent_opts *opts = ag->opts;
    struct conns_opts conns_opts = {
        .max_conns = opts->max_conns,
        .records = 1024,
        .owner = capture_owner(ag->v.capture),
        .observer = {.opened = on_conn_opened, .closed = on_conn_closed, .ctx = ag}};
    struct inbound_opts in_opts = {.port = MESHD_PORT_INBOUND,
                                   .pin_dir = ag->pin_dir,
                                   .mtls_mode = admit_gate_mtls,
                                   .authorize = admit_gate_authorize,
                                   .mtls_ctx = &ag->gate};
    struct outbound_opts out_opts = {.port = MESHD_PORT_OUTBOUND};
    int err;
    if ((err = conns_new(ag->loop, &conns_opts, &ag->v.conns)) != 0) {
        log_error("agent: connections: %s", strerror(-err));
        return err;
    }
    if (opts->ca_dir) {
        struct mesh_opts mo = {.ca_dir = opts->ca_dir,
                               .trust_domain = opts->trust_domain,
                               .owner = capture_owner(ag->v.capture),
                               .node = opts->node,
                               .cert_ttl_s = opts->cert_ttl_s,
                               .authorize = admit_gate_authorize,
                               .authorize_ctx = &ag->gate};
        if ((err = mesh_new(ag->loop, ag->v.conns, &mo, &ag->v.mesh)) != 0)
            return err; /* logged by mesh_new */
        out_opts.route = mesh_route;
        out_opts.route_released = mesh_route_released;
        out_opts.route_ctx = ag->v.mesh;
        out_opts.pool = mesh_pool(ag->v.mesh);
    }
    if ((err = outbound_new(ag->loop, ag->v.capture, ag->v.conns, &out_opts, &ag->v.outbound)) !=
            0 ||
        (err = inbound_new(ag->loop, ag->v.conns, &in_opts, &ag->inbound)) != 0) {
        log_error("agent: proxies: %s", strerror(-err));
        return err;
    }
    if ((err = kevents_new(ag->loop, capture_events_fd(ag->v.capture), on_kernel_event, ag,
                           &ag->v.kevents)) != 0)
        log_error("agent: connection-event ring: %s", strerror(-err));
    return err;
}

int agent_run(const struct agent_opts *opts)
{
    struct agent ag = {.opts = opts,
                       .v = {.version = MESHD_VERSION,
                             .node = opts->node,
                             .config_dir = opts->config_dir,
                             .trust_domain = opts->trust_domain},
                       .signal_io.fd = -1,
                       .ticker.io.fd = -1,
                       .drain_ticker.io.fd = -1};
    ag.v.cgroup_path = ag.cgroup_path;
    ag.v.pin_dir = ag.pin_dir;
    int status = 1, err;
    char state_file[320];
    struct stat st;

    proc_raise_fd_limit(opts->max_conns);
    if (stat(opts->config_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        log_error("agent: --config %s is not a directory", opts->config_dir);
        return 1;
    }
    if ((err = proc_mkdir_p(opts->state_dir, 0700)) != 0) {
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
    if ((err = cfg_store_new(ag.loop, &cfg_opts, &ag.v.config)) != 0) {
        log_error("agent: configuration %s: %s", opts->config_dir, strerror(-err));
        goto out;
    }
    ag.gate.config = ag.v.config;
    if (start_capture(&ag) != 0)
        goto out;
    struct conn_telemetry_opts topts = {.config = ag.v.config,
                                        .trust_domain = opts->trust_domain,
                                        .access_log_all = opts->access_log,
                                        .log_json = opts->log_json};
    if ((err = conn_telemetry_new(&topts, &ag.v.telemetry)) != 0 ||
        (err = ticker_start(&ag.ticker, ag.loop, 1000, on_tick, &ag)) != 0) {
        log_error("agent: metrics: %s", strerror(-err));
        goto out;
    }
    if (start_data_path(&ag) != 0)
        goto out;
    struct pod_hooks hooks[PODS_MAX_HOOKS];
    size_t nhooks = pod_hooks_of(&ag, hooks);
    snprintf(state_file, sizeof(state_file), "%s/pods.json", opts->state_dir);
    if ((err = pods_new(ag.v.capture, state_file, hooks, nhooks, &ag.v.pods)) != 0) {
        log_error("agent: pod registry: %s", strerror(-err));
        goto out;
    }
    ag.gate.pods = ag.v.pods;
    pods_set_binder(ag.v.pods, agent_bind_pod, &ag);
    if (ag.v.mesh) {
        mesh_set_pods(ag.v.mesh, ag.v.pods);
        mesh_set_config(ag.v.mesh, ag.v.config);
        mesh_set_outbound(ag.v.mesh, ag.v.outbound);
    }
    pods_restore(ag.v.pods);

    struct admin_command cmds[ADMIN_NCOMMANDS];
    admin_commands(&ag.v, cmds);
    if (admin_new(ag.loop, opts->admin_socket, cmds, ADMIN_NCOMMANDS, &ag.v.admin) != 0)
        goto out;
    if (admin_endpoints_start(ag.loop, &ag.v) != 0)
        goto out;
    log_info("agent: meshd %s node %s ready (config %s, admin %s)", MESHD_VERSION, opts->node,
             opts->config_dir, opts->admin_socket);
    err = loop_run(ag.loop);
    status = err ? 1 : 0;
out:
    for (int i = 0; i < 3; i++)
        http_server_free(ag.v.http[i]);
    admin_free(ag.v.admin);
    ticker_stop(&ag.drain_ticker);
    /* A handover, whatever the reason we stop: enrolled pods stay enrolled
     * in the kernel and fail closed until the next agent (never open). */
    pods_free(ag.v.pods, true);
    ag.gate.pods = NULL;
    mesh_free(ag.v.mesh); /* closes tunnels: their records end in conns */
    ag.v.mesh = NULL;     /* conns_free below must not report to it */
    kevents_free(ag.v.kevents);
    conns_free(ag.v.conns);
    ticker_stop(&ag.ticker);
    conn_telemetry_free(ag.v.telemetry); /* stdout gets its flags back */
    inbound_free(ag.inbound);
    outbound_free(ag.v.outbound);
    capture_close(ag.v.capture, false);
    cfg_store_free(ag.v.config);
    if (ag.signal_io.fd >= 0)
        close(ag.signal_io.fd);
    loop_free(ag.loop);
    if (status == 0)
        log_info("agent: stopped; enforcement left in place (pins under %s, state in %s); "
                 "`meshd uninstall --node %s` detaches everything",
                 ag.pin_dir, opts->state_dir, opts->node);
    return status;
}
