/* meshd's HTTP endpoints and what they answer: 15000 admin
 * (/config_dump, /logging), 15020 /metrics and /stats/prometheus
 * (telemetry/agent_metrics over every module's stats), 15021
 * /healthz/ready. The servers themselves are admin/http.c. */
#include "admin/endpoints.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http.h"
#include "admin/reqserver.h"
#include "capture/capture.h"
#include "config/store.h"
#include "core/addr.h"
#include "core/log.h"
#include "enroll/pods.h"
#include "mesh/mesh.h"
#include "meshd/capture.h"
#include "proxy/conns.h"
#include "telemetry/agent_metrics.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/http_metrics.h"
#include "telemetry/tcp_metrics.h"

/* Every module's statistics, now, for telemetry/agent_metrics. */
static void http_metrics(void *ctx, const char *method, const char *path, const char *query,
                         struct http_response *r)
{
    struct admin_view *v = ctx;
    struct agent_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        r->status = 503;
        return;
    }
    m->version = v->version;
    m->node = v->node;
    cfg_store_status(v->config, &m->config);
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        m->resources[k] = cfg_count(cfg_store_current(v->config), (enum cfg_kind)k);
    m->pods = pods_count(v->pods);
    m->pod_list = pods_first(v->pods);
    if ((m->has_mesh = v->mesh != NULL))
        mesh_get_stats(v->mesh, &m->mesh);
    conns_get_stats(v->conns, &m->conns);
    m->has_bpf = capture_stats(v->capture, m->bpf) == 0;
    m->nprogs = capture_prog_stats(v->capture, m->progs, AGENT_METRICS_PROGS);
    conn_telemetry_get_stats(v->telemetry, &m->telemetry);
    m->tcp = conn_telemetry_tcp(v->telemetry);
    m->kernel = conn_telemetry_kernel(v->telemetry);
    m->requests = conn_telemetry_http(v->telemetry);
    if ((m->has_tracing = v->tracer != NULL))
        tracer_get_stats(v->tracer, &m->trace);
    m->istio_series = tcp_metrics_series(m->tcp) + http_metrics_series(m->requests);
    m->istio_series_dropped = tcp_metrics_dropped(m->tcp) + http_metrics_dropped(m->requests);
    r->content_type = AGENT_METRICS_CONTENT_TYPE;
    agent_metrics_render(m, &r->body);
    free(m);
    /* The admin servers' own clients, after every module's series. */
    static const char *const endpoints[3] = {"admin", "metrics", "health"}, *control = "control";
    struct reqserver_stats http[3] = {0}, ctl = {0};
    for (int i = 0; i < 3; i++)
        if (v->http[i])
            http_server_get_stats(v->http[i], &http[i]);
    if (v->admin)
        admin_get_stats(v->admin, &ctl);
    http_render_client_stats(r, "meshd_admin_http", endpoints, http, 3);
    http_render_client_stats(r, "meshd_control", &control, &ctl, 1);
}

json_t *admin_metrics_command(void *ctx, const json_t *req, char *err, size_t errlen)
{
    struct http_response r = {.status = 200};
    http_metrics(ctx, "GET", "/metrics", "", &r);
    json_t *out = NULL;
    if (r.status == 200 && !r.body.oom && r.body.data)
        out = json_pack("{s:s,s:s%}", "content_type", AGENT_METRICS_CONTENT_TYPE, "text",
                        r.body.data, r.body.len);
    if (!out)
        snprintf(err, errlen, "metrics: out of memory rendering the exposition");
    textbuf_free(&r.body);
    return out;
}

static void http_ready(void *ctx, const char *method, const char *path, const char *query,
                       struct http_response *r)
{
    /* Reached only once start-up attached BPF and opened every listener;
     * ready also needs the operator's configuration to have loaded. */
    struct admin_view *v = ctx;
    struct cfg_store_status cs;
    cfg_store_status(v->config, &cs);
    if (v->draining) {
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
    struct admin_view *v = ctx;
    json_t *pods = admin_pods_json(v);
    json_t *status = admin_status_json(v);
    json_t *doc = json_pack("{s:o?,s:o?,s:o?}", "pods", pods, "status", status, "config",
                            config_dump(cfg_store_current(v->config)));
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

int admin_endpoints_start(struct loop *loop, struct admin_view *v)
{
    static const char *const names[3] = {"admin", "metrics", "health"};
    /* The route tables live as long as the agent: static, with ctx set here. */
    static struct http_route admin_routes[2], metrics_routes[2], health_routes[1];
    admin_routes[0] = (struct http_route){"/config_dump", http_config_dump, v, 0};
    /* The only state change: served on 127.0.0.1:15000 alone (http.h). */
    admin_routes[1] = (struct http_route){"/logging", http_logging, v, HTTP_ROUTE_POST};
    metrics_routes[0] = (struct http_route){"/metrics", http_metrics, v, 0};
    metrics_routes[1] = (struct http_route){"/stats/prometheus", http_metrics, v, 0};
    health_routes[0] = (struct http_route){"/healthz/ready", http_ready, v, 0};
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
        int err = http_server_new(loop, &o, eps[i].routes, eps[i].n, &v->http[i]);
        if (err) {
            log_error("agent: %s endpoint on port %u: %s", names[i], eps[i].port, strerror(-err));
            return err;
        }
    }
    return 0;
}
