/* meshctl dashboard (see dashboard.h): options, the routes of the web app
 * (assets.h), the scrapes behind /api/graph (graph.h), the OTLP collector
 * behind /v1/traces (traces.h), Prometheus as a child process, the
 * browser, and a clean exit on SIGINT/SIGTERM. */
#include "dashboard.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "dash_http.h"
#include "dash_sources.h"
#include "graph.h"
#include "traces.h"

extern char **environ;

enum dash_kind { DASH_KIALI, DASH_JAEGER, DASH_PROMETHEUS };

struct dash {
    enum dash_kind kind;
    const char *address, *prometheus;
    int port, interval_s;
    int browser; /* -1: when there is a display */
    struct dash_agents agents;
    struct prom_set scrapes[2]; /* [cur] the latest, the other the one before */
    double taken[2];
    int cur, nscrapes;
    char source_error[256];
    struct trace_store *traces;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = sig;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshctl dashboard kiali|jaeger|prometheus [flags]\n"
            "\n"
            "  kiali       the live service graph of every agent's Istio metrics, with\n"
            "              a panel per workload (metrics, recent connections)\n"
            "  jaeger      an OTLP/HTTP JSON collector (POST /v1/traces) with a bounded\n"
            "              store, trace search and a waterfall view\n"
            "  prometheus  Debian's prometheus scraping every agent (or --prometheus URL)\n"
            "\n"
            "  --address IP        listen address (default 127.0.0.1)\n"
            "  --port N            port (default kiali 20001, jaeger 16686, prometheus 9090)\n"
            "  --browser=false     only print the URL (default: open a browser when a\n"
            "                      display exists)\n"
            "  --agent SOCK        an agent's control socket, repeatable (default: meshctl's\n"
            "                      --agent, else every /run/meshd/*/meshd.sock)\n"
            "  --prometheus URL    a running Prometheus: kiali reads it, prometheus opens it\n"
            "  --interval S        seconds between scrapes (kiali; 1..60, default 2)\n"
            "  --spans N           spans the collector keeps (jaeger; default %d)\n",
            TRACE_DEFAULT_SPANS);
}

/* ---- the kiali data: two scrapes, the graph between them ------------------ */

static void scrape(void *ctx)
{
    struct dash *d = ctx;
    int next = d->nscrapes ? !d->cur : d->cur;
    struct prom_set *set = &d->scrapes[next];
    prom_set_free(set);
    if (d->prometheus) {
        char err[sizeof(d->source_error)] = "";
        /* Said once per new failure, not at every scrape. */
        if (dash_scrape_prometheus(d->prometheus, set, err, sizeof(err)) != 0 &&
            strcmp(err, d->source_error) != 0)
            fprintf(stderr, "meshctl dashboard: %s\n", err);
        memcpy(d->source_error, err, sizeof(err));
    } else {
        dash_scrape_agents(&d->agents, set);
    }
    d->taken[next] = mono_s();
    d->cur = next;
    d->nscrapes++;
}

static json_t *agents_json(const struct dash *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->agents.n; i++)
        json_array_append_new(arr, json_pack("{s:i,s:s,s:s,s:b}", "index", (int)i, "node",
                                             d->agents.node[i], "socket", d->agents.sock[i], "up",
                                             d->agents.up[i]));
    return arr;
}

static void api_graph(struct dash *d, struct dash_resp *r)
{
    const struct prom_set *cur = &d->scrapes[d->cur];
    const struct prom_set *prev = d->nscrapes > 1 ? &d->scrapes[!d->cur] : NULL;
    double dt = prev ? d->taken[d->cur] - d->taken[!d->cur] : 0;
    json_t *g = graph_build(prev, cur, dt);
    if (g) {
        json_object_set_new(g, "agents", agents_json(d));
        json_object_set_new(g, "source", json_string(d->prometheus ? d->prometheus : "agents"));
        json_object_set_new(g, "error", json_string(d->source_error));
    }
    dash_resp_json(r, g);
}

/* ?agent=I (an index into the agents) */
static long agent_index(const struct dash *d, const char *query)
{
    char v[16];
    char *end;
    long i = dash_query(query, "agent", v, sizeof(v)) ? strtol(v, &end, 10) : -1;
    return i >= 0 && (size_t)i < d->agents.n && *end == '\0' ? i : -1;
}

/* ---- the jaeger collector and queries -------------------------------------- */

static void otlp_traces(struct dash *d, const struct dash_req *q, struct dash_resp *r)
{
    char err[256] = "";
    size_t rejected = 0;
    if (strcmp(q->method, "POST") != 0) {
        r->status = 405, r->body_static = "POST an ExportTraceServiceRequest\n";
        return;
    }
    /* OTLP/HTTP JSON only: protobuf is answered 415, as the spec allows. */
    if (strncmp(q->content_type, "application/json", 16) != 0) {
        r->status = 415, r->body_static = "Content-Type: application/json only\n";
        return;
    }
    int n = trace_store_ingest(d->traces, q->body, q->body_len, &rejected, err, sizeof(err));
    if (n < 0) {
        r->status = n == -E2BIG ? 413 : 400;
        dash_resp_json(r, json_pack("{s:i,s:s}", "code", 3, "message", err));
        r->status = n == -E2BIG ? 413 : 400;
        return;
    }
    dash_resp_json(r, rejected ? json_pack("{s:{s:I,s:s}}", "partialSuccess", "rejectedSpans",
                                           (json_int_t)rejected, "errorMessage",
                                           "spans with invalid ids or times were rejected")
                               : json_object());
}

static void api_traces(struct dash *d, const struct dash_req *q, struct dash_resp *r)
{
    char service[256] = "", v[32];
    dash_query(q->query, "service", service, sizeof(service));
    unsigned long min_us =
        dash_query(q->query, "minDurationUs", v, sizeof(v)) ? strtoul(v, NULL, 10) : 0;
    unsigned long limit = dash_query(q->query, "limit", v, sizeof(v)) ? strtoul(v, NULL, 10) : 20;
    if (strncmp(q->path, "/api/traces/", 12) == 0) {
        json_t *t = trace_store_get(d->traces, q->path + 12);
        if (!t) {
            r->status = 404, r->body_static = "{\"error\":\"no such trace\"}";
            r->content_type = "application/json";
            return;
        }
        dash_resp_json(r, t);
        return;
    }
    struct trace_stats st;
    trace_store_stats(d->traces, &st);
    dash_resp_json(r, json_pack("{s:o,s:o,s:{s:I,s:I,s:I,s:I}}", "traces",
                                trace_store_search(d->traces, service, min_us, limit), "services",
                                trace_store_services(d->traces), "stats", "received",
                                (json_int_t)st.received, "stored", (json_int_t)st.stored, "evicted",
                                (json_int_t)st.evicted, "rejected", (json_int_t)st.rejected));
}

/* ---- routes ---------------------------------------------------------------- */

static void route(void *ctx, const struct dash_req *q, struct dash_resp *r)
{
    struct dash *d = ctx;
    const char *path = q->path;
    long i;
    if (strcmp(path, "/") == 0)
        path = d->kind == DASH_JAEGER ? "/jaeger.html" : "/kiali.html";
    if (strcmp(path, "/v1/traces") == 0 && d->traces)
        return otlp_traces(d, q, r);
    if (strcmp(q->method, "POST") == 0) {
        r->status = 405, r->body_static = "only /v1/traces takes a POST\n";
        return;
    }
    if (strcmp(path, "/api/graph") == 0 && d->kind == DASH_KIALI)
        return api_graph(d, r);
    if (strcmp(path, "/api/agents") == 0)
        return dash_resp_json(r, agents_json(d));
    if (strcmp(path, "/api/connections") == 0 && (i = agent_index(d, q->query)) >= 0)
        return dash_resp_json(r, dash_agent_connections(&d->agents, (size_t)i));
    if (strcmp(path, "/api/metrics") == 0 && (i = agent_index(d, q->query)) >= 0) {
        /* What the generated Prometheus scrapes: the agent, proxied. */
        size_t len;
        r->body = dash_agent_metrics(&d->agents, (size_t)i, &len);
        r->len = len;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (!r->body)
            r->status = 502, r->body_static = "the agent did not answer\n";
        return;
    }
    if (strncmp(path, "/api/traces", 11) == 0 && d->traces)
        return api_traces(d, q, r);
    if (strcmp(path, "/favicon.ico") == 0) { /* none: not a 404 in the console */
        r->status = 204;
        return;
    }
    for (size_t k = 0; k < dash_nassets; k++)
        if (strcmp(dash_assets[k].path, path) == 0) {
            r->content_type = dash_assets[k].content_type;
            r->body_static = (const char *)dash_assets[k].data;
            r->len = dash_assets[k].len;
            return;
        }
    r->status = 404, r->body_static = "not found\n";
}

/* ---- the browser, Prometheus --------------------------------------------- */

/* The first opener there is gets the URL, in the background. The URL
 * (built from flags: --address, --prometheus) is an argument of the shell,
 * never part of its script: no quoting can make it a command. */
static void open_browser(const char *url, int browser)
{
    if (browser == 0 || (browser < 0 && !getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY")))
        return;
    static const char script[] = "command -v \"$0\" >/dev/null || exit 1\n"
                                 "\"$0\" \"$1\" </dev/null >/dev/null 2>&1 &\n";
    static const char *const openers[] = {"xdg-open", "chromium", "sensible-browser"};
    for (size_t i = 0; i < sizeof(openers) / sizeof(openers[0]); i++) {
        char *argv[] = {"sh", "-c", (char *)script, (char *)openers[i], (char *)url, NULL};
        pid_t pid;
        int status;
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
            return;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            return;
    }
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

/* A scrape configuration of every agent through this process' /api/metrics
 * (the agents' control sockets reach any network namespace; their 15020
 * may not be reachable from here), then prometheus on address:port. */
static pid_t start_prometheus(const struct dash *d, int proxy_port, char *dir, size_t dirlen)
{
    snprintf(dir, dirlen, "/tmp/meshctl-prometheus.XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "meshctl dashboard: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char cfg[512], arg[4][600];
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fprintf(f, "global:\n  scrape_interval: %ds\nscrape_configs:\n", d->interval_s);
    for (size_t i = 0; i < d->agents.n; i++)
        fprintf(f,
                "  - job_name: meshd-%zu\n    metrics_path: /api/metrics\n"
                "    params: {agent: ['%zu']}\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                "        labels: {node: '%s'}\n",
                i, i, proxy_port, d->agents.node[i]);
    fclose(f);
    snprintf(arg[0], sizeof(arg[0]), "--config.file=%s", cfg);
    snprintf(arg[1], sizeof(arg[1]), "--storage.tsdb.path=%s/tsdb", dir);
    snprintf(arg[2], sizeof(arg[2]),
             strchr(d->address, ':') ? "--web.listen-address=[%s]:%d"
                                     : "--web.listen-address=%s:%d",
             d->address, d->port);
    snprintf(arg[3], sizeof(arg[3]), "--log.level=warn");
    const char *bin = getenv("MESHCTL_PROMETHEUS");
    bin = bin && *bin ? bin : "prometheus";
    pid_t pid = fork();
    if (pid == 0) {
        /* It goes with us, even when we are killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execlp(bin, bin, arg[0], arg[1], arg[2], arg[3], (char *)NULL);
        fprintf(stderr, "meshctl dashboard: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Prometheus died under us: stop serving. */
static void watch_child(void *ctx)
{
    pid_t *pid = ctx;
    if (*pid > 0 && waitpid(*pid, NULL, WNOHANG) == *pid) {
        fprintf(stderr, "meshctl dashboard: prometheus exited\n");
        *pid = -1;
        stop = SIGCHLD;
    }
}

struct prom_ctx {
    struct dash *d;
    pid_t pid;
};

static void prom_tick(void *ctx)
{
    watch_child(&((struct prom_ctx *)ctx)->pid);
}

static void prom_route(void *ctx, const struct dash_req *q, struct dash_resp *r)
{
    route(((struct prom_ctx *)ctx)->d, q, r);
}

/* ---- the command ----------------------------------------------------------- */

/* A decimal flag value within [lo, hi]. */
static bool num_arg(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse(struct dash *d, const char *agent, int argc, char **argv)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},
        {"browser", optional_argument, NULL, 'b'},
        {"agent", required_argument, NULL, 'g'},
        {"prometheus", required_argument, NULL, 'P'},
        {"interval", required_argument, NULL, 'i'},
        {"spans", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long spans = TRACE_DEFAULT_SPANS, v;
    int c;
    optind = 0; /* 0: glibc re-reads the ordering (main parsed with "+") */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            d->address = optarg;
            break;
        case 'p':
            if (!num_arg(optarg, 0, 65535, &v))
                return fprintf(stderr, "meshctl dashboard: --port 0..65535\n"), 2;
            d->port = (int)v;
            break;
        case 'b':
            d->browser = !optarg || strcmp(optarg, "true") == 0 ? 1
                         : strcmp(optarg, "false") == 0         ? 0
                                                                : -2;
            if (d->browser == -2)
                return fprintf(stderr, "meshctl dashboard: --browser=true|false\n"), 2;
            break;
        case 'g':
            if (!dash_agents_add(&d->agents, optarg))
                return fprintf(stderr, "meshctl dashboard: at most %d agents\n", DASH_MAX_AGENTS),
                       2;
            break;
        case 'P':
            d->prometheus = optarg;
            break;
        case 'i':
            if (!num_arg(optarg, 1, 60, &v))
                return fprintf(stderr, "meshctl dashboard: --interval 1..60 seconds\n"), 2;
            d->interval_s = (int)v;
            break;
        case 's':
            if (!num_arg(optarg, 1, 1000000, &spans))
                return fprintf(stderr, "meshctl dashboard: --spans 1..1000000\n"), 2;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc)
        return usage(stderr), 2;
    const char *kind = argv[optind];
    static const char *const kinds[] = {"kiali", "jaeger", "prometheus"};
    static const int ports[] = {20001, 16686, 9090};
    d->kind = (enum dash_kind) - 1;
    for (int k = 0; k < 3; k++)
        if (strcmp(kind, kinds[k]) == 0)
            d->kind = (enum dash_kind)k;
    if ((int)d->kind < 0 || optind + 1 < argc) {
        fprintf(stderr, "meshctl dashboard: unknown dashboard \"%s\" (kiali, jaeger, prometheus)\n",
                kind);
        return 2;
    }
    if (d->port < 0) /* --port 0: any free one */
        d->port = ports[d->kind];
    if (!d->address)
        d->address = "127.0.0.1";
    if (d->agents.n == 0 && agent)
        dash_agents_add(&d->agents, agent);
    if (d->agents.n == 0)
        dash_agents_discover(&d->agents);
    if (d->kind == DASH_JAEGER && trace_store_new((size_t)spans, &d->traces) != 0)
        return fprintf(stderr, "meshctl dashboard: out of memory\n"), 1;
    return 0;
}

static void url_of(const struct dash *d, int port, const char *path, char *out, size_t len)
{
    snprintf(out, len, strchr(d->address, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", d->address,
             port, path);
}

int ctl_dashboard(const char *agent, int argc, char **argv)
{
    struct dash d = {.port = -1, .interval_s = 2, .browser = -1};
    int rc = parse(&d, agent, argc, argv), fd = -1, port;
    char err[256], url[300], dir[128] = "";
    if (rc) {
        rc = rc < 0 ? 0 : rc; /* --help */
        goto out;
    }
    rc = 1;
    bool need_agents = d.kind != DASH_JAEGER && !d.prometheus;
    if (need_agents && dash_agents_probe(&d.agents) == 0) {
        if (d.agents.n == 0)
            fprintf(stderr, "meshctl dashboard: no agent found (no /run/meshd/*/meshd.sock)");
        else
            fprintf(stderr, "meshctl dashboard: no agent answered (tried");
        for (size_t i = 0; i < d.agents.n; i++)
            fprintf(stderr, " %s", d.agents.sock[i]);
        fprintf(stderr, "%s; is meshd running? give --agent SOCK or --prometheus URL\n",
                d.agents.n ? ")" : "");
        goto out;
    }
    if (!need_agents)
        dash_agents_probe(&d.agents); /* for node names; none needed */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (d.kind == DASH_PROMETHEUS) {
        if (d.prometheus) { /* a running one: only its address */
            printf("prometheus: %s\n", d.prometheus);
            fflush(stdout);
            open_browser(d.prometheus, d.browser);
            rc = 0;
            goto out;
        }
        /* Our own server on an ephemeral loopback port: the agents' pages. */
        port = 0;
        if (dash_http_listen("127.0.0.1", &port, &fd, err, sizeof(err)) != 0) {
            fprintf(stderr, "meshctl dashboard: %s\n", err);
            goto out;
        }
        struct prom_ctx pc = {&d, start_prometheus(&d, port, dir, sizeof(dir))};
        if (pc.pid < 0)
            goto out;
        url_of(&d, d.port, "/graph", url, sizeof(url));
        printf("prometheus: %s (scraping %zu agent%s through 127.0.0.1:%d)\n", url, d.agents.n,
               d.agents.n == 1 ? "" : "s", port);
        fflush(stdout);
        open_browser(url, d.browser);
        rc = dash_http_serve(fd, "127.0.0.1", prom_route, prom_tick, 500, &pc, &stop) ? 1 : 0;
        if (pc.pid > 0) {
            kill(pc.pid, SIGTERM);
            waitpid(pc.pid, NULL, 0);
        }
        rc = stop == SIGCHLD ? 1 : rc;
        goto out;
    }
    port = d.port;
    if (dash_http_listen(d.address, &port, &fd, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshctl dashboard: %s\n", err);
        goto out;
    }
    url_of(&d, port, "/", url, sizeof(url));
    printf("%s: %s\n", d.kind == DASH_KIALI ? "kiali" : "jaeger", url);
    if (d.kind == DASH_JAEGER) {
        url_of(&d, port, "/v1/traces", err, sizeof(err));
        printf("OTLP/HTTP JSON collector: %s\n", err);
    }
    fflush(stdout);
    open_browser(url, d.browser);
    rc = dash_http_serve(fd, d.address, route, d.kind == DASH_KIALI ? scrape : NULL,
                         d.interval_s * 1000, &d, &stop)
             ? 1
             : 0;
out:
    if (fd != -1)
        close(fd);
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    prom_set_free(&d.scrapes[0]);
    prom_set_free(&d.scrapes[1]);
    trace_store_free(d.traces);
    return rc;
}
