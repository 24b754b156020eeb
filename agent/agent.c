/* One meshd instance: start-up order, drain and stop.
 *
 * Start-up runs the module table (agent_modules.c) in order:
 * configuration (loaded, or the persisted last good one, or fail closed)
 * -> mounts and BPF capture (take over pins or attach) -> telemetry ->
 * connections -> mesh -> proxies -> pod registry (restore) -> admin socket
 * and HTTP endpoints -> loop. SIGTERM drains (listeners closed, open
 * connections get --drain-seconds), then shutdown runs the table in
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
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_modules.h"
#include "http/proxy.h"
#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proc.h"
#include "core/ticker.h"
#include "enroll/pods.h"
#include "proxy/conns.h"

/* Housekeeping, every second, in table order. */
static void on_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    for (size_t i = 0; i < agent_nmodules; i++)
        if (agent_modules[i].tick)
            agent_modules[i].tick(ag, now_ns);
}

/* Drain: done when no connection is left or the grace period is over. */
static void on_drain_tick(struct ticker *t, uint64_t now_ns)
{
    struct agent *ag = t->ctx;
    struct conns_stats cs;
    if (ag->http_proxy) /* keep-alive connections between requests end now */
        http_proxy_drain(ag->http_proxy);
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
    if (ag->http_proxy) /* keep-alive connections between requests end now */
        http_proxy_drain(ag->http_proxy);
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
    struct agent *ag = container_of(io, struct agent, signal_io);
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

/* Every module in table order; the first failure ends start-up (the
 * module logged why). */
static int start_modules(struct agent *ag)
{
    for (size_t i = 0; i < agent_nmodules; i++) {
        const struct agent_module *m = &agent_modules[i];
        if (m->start && m->start(ag) != 0) {
            log_debug("agent: start-up stopped at module %s", m->name);
            return -1;
        }
    }
    return 0;
}

/* Both passes in reverse, over every module (started or not). */
static void stop_modules(struct agent *ag)
{
    for (size_t i = agent_nmodules; i-- > 0;)
        if (agent_modules[i].stop)
            agent_modules[i].stop(ag);
    for (size_t i = agent_nmodules; i-- > 0;)
        if (agent_modules[i].free)
            agent_modules[i].free(ag);
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
    struct stat st;

    proc_raise_fd_limit(opts->max_conns);
    if ((err = proc_mkdir_p(opts->state_dir, 0700)) != 0) {
        log_error("agent: cannot create state dir %s: %s", opts->state_dir, strerror(-err));
        return 1;
    }
    /* --kube mirrors the API into the directory it serves (by default
     * <state-dir>/kube): on a fresh node it does not exist yet. */
    if (opts->kube && (err = proc_mkdir_p(opts->config_dir, 0700)) != 0) {
        log_error("agent: cannot create %s: %s", opts->config_dir, strerror(-err));
        return 1;
    }
    if (stat(opts->config_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        log_error("agent: --config %s is not a directory", opts->config_dir);
        return 1;
    }
    if ((err = loop_new(&ag.loop)) != 0 || (err = setup_signals(&ag)) != 0) {
        log_error("agent: event loop: %s", strerror(-err));
        goto out;
    }
    if (start_modules(&ag) != 0)
        goto out;
    if ((err = ticker_start(&ag.ticker, ag.loop, 1000, on_tick, &ag)) != 0) {
        log_error("agent: metrics: %s", strerror(-err));
        goto out;
    }
    log_info("agent: meshd %s node %s ready (config %s, admin %s)", MESHD_VERSION, opts->node,
             opts->config_dir, opts->admin_socket);
    err = loop_run(ag.loop);
    status = err ? 1 : 0;
out:
    ticker_stop(&ag.drain_ticker);
    ticker_stop(&ag.ticker);
    stop_modules(&ag);
    if (ag.signal_io.fd >= 0)
        close(ag.signal_io.fd);
    loop_free(ag.loop);
    if (status == 0)
        log_info("agent: stopped; enforcement left in place (pins under %s, state in %s); "
                 "`meshd uninstall --node %s` detaches everything",
                 ag.pin_dir, opts->state_dir, opts->node);
    return status;
}
