/* bench/config_load: the configuration model at scale (issue 3's goal:
 * 10k Services, 50k Pods, 10k VirtualServices and DestinationRules, 5k
 * AuthorizationPolicies in under 2 s and 300 MiB).
 *
 * Generates that configuration as YAML files in a temporary directory,
 * then measures, in this one run:
 *   - parse only: libyaml's own document loader over the same files, the
 *     floor any YAML-reading agent pays (the baseline);
 *   - meshd's full load: compose, decode, validate, index, hash;
 *   - peak RSS of the process (VmHWM) after the load;
 *   - the lookups one captured connection makes (VIP, workload by IP,
 *     host -> VirtualService and DestinationRule), per connection;
 *   - a reload of the same size through cfg_store on a live event loop,
 *     with a 1 ms timer on that loop: the largest gap between its ticks
 *     is the stall the data path would see (baseline: the whole load
 *     time, which is what loading on the loop would stall it for).
 * Prints a markdown table. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config.h"
#include "config/store.h"
#include "core/addr.h"
#include "core/loop.h"
#include "policy/authz.h"
#include "route/resolve.h"

static const struct meshd_addr src_addr_any = {.family = MESHD_AF_INET};

#define NAMESPACES      100
#define SVC_PER_NS      100 /* 10,000 Services, VirtualServices, DestinationRules */
#define PODS_PER_SVC    5   /* 50,000 Pods */
#define POLICIES_PER_NS 50  /* 5,000 AuthorizationPolicies */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static FILE *open_out(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void generate(const char *dir)
{
    FILE *svc = open_out(dir, "services.yaml"), *routing = open_out(dir, "routing.yaml"),
         *authz = open_out(dir, "authz.yaml");
    for (int n = 0; n < NAMESPACES; n++) {
        char name[32];
        snprintf(name, sizeof(name), "pods-%02d.yaml", n / 10);
        /* Ten namespaces per pods file: append (the directory starts empty). */
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *pods = fopen(path, "a");
        if (!pods) {
            perror(path);
            exit(1);
        }
        fprintf(svc,
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-%d\n  labels:\n"
                "    istio.io/dataplane-mode: ambient\n---\n",
                n);
        for (int s = 0; s < SVC_PER_NS; s++) {
            int id = n * SVC_PER_NS + s;
            fprintf(svc,
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%d\n  namespace: ns-%d\n"
                    "spec:\n  clusterIP: 10.96.%d.%d\n  selector:\n    app: svc-%d\n  ports:\n"
                    "  - name: http\n    port: 80\n    targetPort: 8080\n---\n",
                    s, n, id / 250, id % 250 + 1, s);
            for (int p = 0; p < PODS_PER_SVC; p++) {
                int pid = id * PODS_PER_SVC + p;
                fprintf(
                    pods,
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: svc-%d-%d\n"
                    "  namespace: ns-%d\n  labels:\n    app: svc-%d\n    version: v%d\n"
                    "spec:\n  nodeName: node-%d\n  serviceAccountName: svc-%d\n"
                    "  containers:\n  - name: app\n    image: example/app:1\n    ports:\n"
                    "    - containerPort: 8080\nstatus:\n  phase: Running\n"
                    "  podIP: 10.%d.%d.%d\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
                    "---\n",
                    s, p, n, s, p == 0 ? 2 : 1, pid % 50, s, 1 + pid / 62500, (pid / 250) % 250,
                    pid % 250 + 1);
            }
            fprintf(routing,
                    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
                    "  name: svc-%d\n  namespace: ns-%d\nspec:\n  hosts: [svc-%d]\n  http:\n"
                    "  - route:\n    - destination: {host: svc-%d, subset: v1}\n      weight: 90\n"
                    "    - destination: {host: svc-%d, subset: v2}\n      weight: 10\n---\n"
                    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
                    "  name: svc-%d\n  namespace: ns-%d\nspec:\n  host: svc-%d\n"
                    "  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 100}}\n"
                    "  subsets:\n  - name: v1\n    labels: {version: v1}\n"
                    "  - name: v2\n    labels: {version: v2}\n---\n",
                    s, n, s, s, s, s, n, s);
        }
        for (int a = 0; a < POLICIES_PER_NS; a++)
            fprintf(authz,
                    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n"
                    "  name: allow-%d\n  namespace: ns-%d\nspec:\n  selector:\n"
                    "    matchLabels: {app: svc-%d}\n  rules:\n  - from:\n    - source:\n"
                    "        principals: [cluster.local/ns/ns-%d/sa/svc-%d]\n"
                    "    to:\n    - operation: {ports: [\"8080\"]}\n---\n",
                    a, n, a, (n + 1) % NAMESPACES, a);
        fclose(pods);
    }
    fclose(svc);
    fclose(routing);
    fclose(authz);
}

/* The baseline: libyaml's document loader over every file, nothing else. */
static double parse_only(const char *dir)
{
    static const char *const files[] = {"services.yaml", "routing.yaml", "authz.yaml", NULL};
    double t0 = now_s();
    for (int i = 0; i < 13; i++) {
        char path[512];
        if (files[i < 3 ? i : 3] && i < 3)
            snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        else
            snprintf(path, sizeof(path), "%s/pods-%02d.yaml", dir, i - 3);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        yaml_parser_t p;
        yaml_parser_initialize(&p);
        yaml_parser_set_input_file(&p, f);
        for (;;) {
            yaml_document_t doc;
            if (!yaml_parser_load(&p, &doc))
                break;
            int empty = yaml_document_get_root_node(&doc) == NULL;
            yaml_document_delete(&doc);
            if (empty)
                break;
        }
        yaml_parser_delete(&p);
        fclose(f);
    }
    return now_s() - t0;
}

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static double lookup_ns(const struct cfg_snapshot *s)
{
    const long iters = 2000000;
    unsigned hits = 0;
    char host[64];
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        int id = (int)((i * 7919) % (NAMESPACES * SVC_PER_NS));
        struct meshd_addr vip = {.family = MESHD_AF_INET, .port = htons(80)};
        vip.addr[0] = 10, vip.addr[1] = 96, vip.addr[2] = (uint8_t)(id / 250);
        vip.addr[3] = (uint8_t)(id % 250 + 1);
        const struct cfg_vip *v = cfg_vip_lookup(s, &vip);
        struct meshd_addr src = {.family = MESHD_AF_INET};
        int pid = id * PODS_PER_SVC;
        src.addr[0] = 10, src.addr[1] = (uint8_t)(1 + pid / 62500);
        src.addr[2] = (uint8_t)((pid / 250) % 250), src.addr[3] = (uint8_t)(pid % 250 + 1);
        const struct cfg_workload *w = cfg_workload_by_ip(s, &src);
        if (v) {
            struct cfg_iter it = {0};
            hits += cfg_next_vs_for_host(s, v->svc->fqdn, &it) != NULL;
            it = (struct cfg_iter){0};
            hits += cfg_next_dr_for_host(s, v->svc->fqdn, &it) != NULL;
        }
        hits += w != NULL;
    }
    double per = (now_s() - t0) / (double)iters * 1e9;
    snprintf(host, sizeof(host), "%u", hits);
    if (hits != 3 * iters) {
        fprintf(stderr, "lookup: %s hits of %ld: the generated config is not what was indexed\n",
                host, 3 * iters);
        exit(1);
    }
    return per;
}

/* The whole routing decision a captured connection costs: resolve the VIP
 * through its VirtualService (90/10 between subsets) and DestinationRule
 * to the subset's endpoints, then pick one round-robin. */
static double route_ns(const struct cfg_snapshot *s)
{
    const long iters = 500000;
    static struct route_cluster c;
    struct lb_state rng, rr;
    lb_state_init(&rng, 7);
    lb_state_init(&rr, 11);
    struct route_source src = {.ns = "ns-1"};
    struct lb_endpoint eps[PODS_PER_SVC];
    unsigned picked = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        int id = (int)((i * 7919) % (NAMESPACES * SVC_PER_NS));
        struct meshd_addr vip = {.family = MESHD_AF_INET, .port = htons(80)};
        vip.addr[0] = 10, vip.addr[1] = 96, vip.addr[2] = (uint8_t)(id / 250);
        vip.addr[3] = (uint8_t)(id % 250 + 1);
        struct route_result r;
        route_resolve(s, &src, &vip, &rng, &c, &r);
        size_t n = c.nendpoints < PODS_PER_SVC ? c.nendpoints : PODS_PER_SVC;
        for (size_t e = 0; e < n; e++)
            eps[e] = (struct lb_endpoint){.addr = c.endpoints[e]->ips.v[0]};
        picked += r.kind == ROUTE_SERVICE &&
                  lb_pick(LB_ROUND_ROBIN, &rr, eps, n, &src_addr_any, NULL, 0, -1) >= 0;
    }
    double per = (now_s() - t0) / (double)iters * 1e9;
    if (picked != iters) {
        fprintf(stderr, "route: %u of %ld decisions found an endpoint\n", picked, iters);
        exit(1);
    }
    return per;
}

/* Issue 6's measure: the policies of one namespace holding 5,000
 * AuthorizationPolicies (each selecting its own app), selected for one
 * workload and evaluated, per connection. */
static double authz_ns(void)
{
    size_t cap = 5000 * 400 + 1000, len = 0;
    char *yaml = malloc(cap);
    if (!yaml)
        exit(1);
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(
            yaml + len, cap - len,
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p%d, "
            "namespace: big}\nspec:\n  selector: {matchLabels: {app: app-%d}}\n  rules:\n"
            "  - from: [{source: {principals: [cluster.local/ns/big/sa/client-%d]}}]\n---\n",
            i, i, i);
    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s;
    if (cfg_load_buffer("authz.yaml", yaml, len, NULL, &d, &s) || d.counts[CFG_ERROR])
        exit(1);
    free(yaml);
    struct cfg_kv kv[] = {{"app", "app-4242"}, {"version", "v1"}};
    struct cfg_labels labels = {kv, 2};
    static struct authz_policy buf[5000];
    struct authz_request req = {.principal = "cluster.local/ns/big/sa/client-4242",
                                .namespace_ = "big"};
    const long iters = 20000;
    unsigned allowed = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        size_t n = cfg_authz_select(s, "big", &labels, buf, 5000);
        struct authz_decision dec;
        authz_evaluate(buf, n, &req, &dec);
        allowed += dec.allow;
    }
    double per = (now_s() - t0) / (double)iters * 1e9;
    if (allowed != iters) {
        fprintf(stderr, "authz: the policy should allow\n");
        exit(1);
    }
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
    return per;
}

struct tick_probe {
    struct loop_io io;
    double last, max_gap;
};

static void on_tick(struct loop_io *io, uint32_t events)
{
    struct tick_probe *t = (struct tick_probe *)io;
    uint64_t n;
    if (read(io->fd, &n, sizeof(n)) != sizeof(n))
        return;
    double now = now_s();
    if (t->last && now - t->last > t->max_gap)
        t->max_gap = now - t->last;
    t->last = now;
}

static void on_applied(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old)
{
    (*(int *)ctx)++;
}

/* Reload through the agent's store with a 1 ms ticker on the same loop. */
static void reload_stall(const char *dir, double *stall_ms, double *reload_s)
{
    struct loop *loop;
    if (loop_new(&loop))
        exit(1);
    int applied = 0;
    struct cfg_store_opts o = {.dir = dir, .applied = on_applied, .ctx = &applied};
    struct cfg_store *st;
    if (cfg_store_new(loop, &o, &st) || applied != 1) {
        fprintf(stderr, "store: initial load failed\n");
        exit(1);
    }
    struct tick_probe t = {.io.cb = on_tick};
    t.io.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
    timerfd_settime(t.io.fd, 0, &its, NULL);
    loop_add(loop, &t.io, EPOLLIN);
    /* A real change: a load with the served content is applied as
     * "unchanged", without a new snapshot. */
    char extra[600];
    snprintf(extra, sizeof(extra), "%s/zz-edit.yaml", dir);
    FILE *f = fopen(extra, "w");
    if (!f || fputs("apiVersion: v1\nkind: Namespace\nmetadata: {name: edited}\n", f) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "store: cannot write %s\n", extra);
        exit(1);
    }
    double t0 = now_s();
    cfg_store_reload(st);
    while (applied < 2 && now_s() - t0 < 60)
        loop_run_once(loop, 5);
    *reload_s = now_s() - t0;
    unlink(extra);
    if (applied < 2) {
        fprintf(stderr, "store: the reload was not applied within 60 s\n");
        exit(1);
    }
    *stall_ms = t.max_gap * 1e3;
    loop_del(loop, &t.io);
    close(t.io.fd);
    cfg_store_free(st);
    loop_free(loop);
}

int main(void)
{
    char dir[] = "/tmp/meshd-bench-config-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    generate(dir);
    double base = parse_only(dir);
    long hwm_before = vm_hwm_kib();

    struct cfg_diags diags;
    cfg_diags_init(&diags);
    struct cfg_snapshot *s;
    const char *paths[] = {dir};
    double t0 = now_s();
    if (cfg_load(paths, 1, NULL, &diags, &s)) {
        fprintf(stderr, "load failed\n");
        return 1;
    }
    double load = now_s() - t0;
    long hwm = vm_hwm_kib();
    if (diags.counts[CFG_ERROR] ||
        cfg_count(s, CFG_POD) != NAMESPACES * SVC_PER_NS * PODS_PER_SVC ||
        cfg_count(s, CFG_AUTHORIZATION_POLICY) != NAMESPACES * POLICIES_PER_NS) {
        fprintf(stderr, "load: %zu errors, %zu pods\n", diags.counts[CFG_ERROR],
                cfg_count(s, CFG_POD));
        return 1;
    }
    double per_conn = lookup_ns(s);
    double per_route = route_ns(s);
    double per_authz = authz_ns();
    size_t mem = cfg_snapshot_memory(s), bytes = cfg_snapshot_bytes(s);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&diags);
    double stall_ms, reload_s;
    reload_stall(dir, &stall_ms, &reload_s);

    printf("\n### Configuration at scale (10k Services, 50k Pods, 10k VS + 10k DR, 5k AuthZ; "
           "%.1f MiB of YAML)\n\n",
           (double)bytes / (1 << 20));
    printf("| measure | meshd | baseline | ratio |\n|---|---|---|---|\n");
    printf("| load time, s (baseline: libyaml parse only) | %.2f | %.2f | %.2fx |\n", load, base,
           load / base);
    printf("| peak RSS after load, MiB (baseline: before load) | %.0f | %.0f | %.2fx |\n",
           hwm / 1024.0, hwm_before / 1024.0, (double)hwm / (double)hwm_before);
    printf("| snapshot memory, MiB | %.0f | | |\n", (double)mem / (1 << 20));
    printf("| lookups per connection (VIP, workload, VS, DR), ns | %.0f | | |\n", per_conn);
    printf("| routing decision per connection (VIP -> VirtualService 90/10 -> subset -> "
           "endpoint), ns | %.0f | | |\n",
           per_route);
    printf("| AuthorizationPolicy selection + evaluation per connection, 5,000 policies in the "
           "namespace, ns | %.0f | | |\n",
           per_authz);
    printf("| reload on the store's worker, s | %.2f | | |\n", reload_s);
    /* A loader on the event loop would stall it for the whole load. */
    printf("| longest event-loop stall during a reload, ms (baseline: loading on the loop) | "
           "%.1f | %.0f | %.3fx |\n",
           stall_ms, load * 1e3, stall_ms / (load * 1e3));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
