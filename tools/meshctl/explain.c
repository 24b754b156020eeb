/* meshctl proxy-config routes / authn tls-check: the configuration
 * explained for one workload, from the agent's served snapshot or, with
 * -f, offline from YAML (agent/admin/explain.h does the work). */
#include "explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/explain.h"
#include "agent_client.h"
#include "config/config.h"

struct explain_args {
    const char *workload, *service, *trust_domain;
    const char *files[64];
    size_t nfiles;
    int json;
};

static int parse_args(int argc, char **argv, bool routes, struct explain_args *a)
{
    memset(a, 0, sizeof(*a));
    a->trust_domain = "cluster.local";
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) && i + 1 < argc &&
            a->nfiles < sizeof(a->files) / sizeof(a->files[0]))
            a->files[a->nfiles++] = argv[++i];
        else if (routes && strcmp(argv[i], "--service") == 0 && i + 1 < argc)
            a->service = argv[++i];
        else if (!routes && strcmp(argv[i], "--trust-domain") == 0 && i + 1 < argc)
            a->trust_domain = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0)
            a->json = 1, i++;
        else if (!a->workload && argv[i][0] != '-')
            a->workload = argv[i];
        else
            return -1;
    }
    return a->workload ? 0 : -1;
}

/* The explanation, from YAML when files were given, else from the agent. */
static json_t *fetch(const char *agent, const struct explain_args *a, bool routes)
{
    if (!a->nfiles) {
        if (!agent) {
            fprintf(stderr, "meshctl: which agent? use --agent SOCK, --node NAME, $MESHD_AGENT, "
                            "or -f YAML to explain offline\n");
            return NULL;
        }
        return agent_call(agent, json_pack("{s:s,s:s,s:s?}", "cmd", routes ? "routes" : "tls-check",
                                           "workload", a->workload, "service", a->service));
    }
    struct cfg_load_opts opts;
    cfg_load_opts_default(&opts);
    struct cfg_diags diags;
    cfg_diags_init(&diags);
    struct cfg_snapshot *snap = NULL;
    json_t *res = NULL;
    char err[300] = "";
    if (cfg_load(a->files, a->nfiles, &opts, &diags, &snap) != 0) {
        snprintf(err, sizeof(err), "out of memory");
    } else if (diags.counts[CFG_ERROR]) {
        /* As the agent would: a configuration with errors is not served. */
        snprintf(err, sizeof(err), "the configuration has %zu errors (meshctl analyze shows them)",
                 diags.counts[CFG_ERROR]);
    } else {
        res = routes ? explain_routes(snap, a->workload, a->service, err, sizeof(err))
                     : explain_tls(snap, a->trust_domain, a->workload, err, sizeof(err));
    }
    if (!res)
        fprintf(stderr, "meshctl: %s\n", err);
    cfg_snapshot_unref(snap);
    cfg_diags_fini(&diags);
    return res;
}

/* Arguments, then the explanation; NULL with *rc set (2: usage). */
static json_t *parse_and_fetch(const char *agent, int argc, char **argv, bool routes,
                               const char *usage, struct explain_args *a, int *rc)
{
    *rc = 2;
    if (parse_args(argc, argv, routes, a) != 0) {
        fprintf(stderr, "usage: meshctl %s (WORKLOAD: NAMESPACE/NAME or NAME.NAMESPACE)\n", usage);
        return NULL;
    }
    *rc = 1;
    return fetch(agent, a, routes);
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "-";
}

static int finish(json_t *res, int json)
{
    if (json) {
        json_dumpf(res, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    }
    json_decref(res);
    return 0;
}

int ctl_proxy_routes(const char *agent, int argc, char **argv, int json)
{
    struct explain_args a;
    int rc;
    json_t *res =
        parse_and_fetch(agent, argc, argv, true,
                        "proxy-config routes WORKLOAD [--service HOST] [-f YAML]...", &a, &rc);
    if (!res)
        return rc;
    if (json || a.json)
        return finish(res, 1);
    printf("%-44s %-22s %-24s %-9s %s\n", "SERVICE", "VIP:PORT", "VIRTUALSERVICE", "ROUTE",
           "DESTINATIONS");
    size_t i, j;
    json_t *r, *d;
    json_array_foreach(json_object_get(res, "routes"), i, r)
    {
        char dests[1024] = "";
        size_t len = 0;
        json_array_foreach(json_object_get(r, "destinations"), j, d)
        {
            const char *subset = json_string_value(json_object_get(d, "subset"));
            const char *error = json_string_value(json_object_get(d, "error"));
            int n = snprintf(dests + len, sizeof(dests) - len, "%s%s%s%s:%lld %lld%% ",
                             j ? ", " : "", str(d, "host"), subset ? "|" : "", subset ? subset : "",
                             json_integer_value(json_object_get(d, "port")),
                             json_integer_value(json_object_get(d, "weight")));
            if (n > 0 && (size_t)n < sizeof(dests) - len)
                len += (size_t)n;
            if (error)
                n = snprintf(dests + len, sizeof(dests) - len, "(NR: %s)", error);
            else
                n = snprintf(dests + len, sizeof(dests) - len, "(%lld ready, %s%s%s)",
                             json_integer_value(json_object_get(d, "ready_endpoints")),
                             str(d, "load_balancer"),
                             json_is_string(json_object_get(d, "destination_rule")) ? ", DR " : "",
                             json_is_string(json_object_get(d, "destination_rule"))
                                 ? str(d, "destination_rule")
                                 : "");
            if (n > 0 && (size_t)n < sizeof(dests) - len)
                len += (size_t)n;
        }
        if (json_is_true(json_object_get(r, "passthrough")))
            snprintf(dests, sizeof(dests), "passthrough (no endpoints: the original destination)");
        char port[64];
        if (json_is_string(json_object_get(r, "vip")))
            snprintf(port, sizeof(port), "%s", str(r, "vip"));
        else /* no clusterIP in the configuration: nothing to capture */
            snprintf(port, sizeof(port), "(no VIP):%lld",
                     json_integer_value(json_object_get(r, "port")));
        printf("%-44s %-22s %-24s %-9s %s\n", str(r, "service"), port, str(r, "virtual_service"),
               str(r, "route"), dests);
        /* The DestinationRule policy each destination gets, merged. */
        json_array_foreach(json_object_get(r, "destinations"), j, d)
        {
            const json_t *pool = json_object_get(d, "connection_pool");
            const json_t *od = json_object_get(d, "outlier_detection");
            char *p = pool ? json_dumps(pool, JSON_COMPACT) : NULL;
            char *o = od ? json_dumps(od, JSON_COMPACT) : NULL;
            const char *subset = json_string_value(json_object_get(d, "subset"));
            if (p || o)
                printf("    policy %s%s%s:%s%s%s%s\n", str(d, "host"), subset ? "|" : "",
                       subset ? subset : "", p ? " connectionPool " : "", p ? p : "",
                       o ? " outlierDetection " : "", o ? o : "");
            free(p);
            free(o);
        }
        /* Per request on an HTTP port: each http[] route, first match wins. */
        size_t k;
        const json_t *h;
        json_array_foreach(json_object_get(r, "http_routes"), k, h)
        {
            printf("    %s\n", json_string_value(h));
        }
    }
    return finish(res, 0);
}

int ctl_tls_check(const char *agent, int argc, char **argv, int json)
{
    struct explain_args a;
    int rc;
    const char *usage = "authn tls-check WORKLOAD [--trust-domain TD] [-f YAML]...";
    if (argc < 2 || strcmp(argv[1], "tls-check") != 0) {
        fprintf(stderr, "usage: meshctl %s\n", usage);
        return 2;
    }
    json_t *res = parse_and_fetch(agent, argc - 1, argv + 1, false, usage, &a, &rc);
    if (!res)
        return rc;
    if (json || a.json)
        return finish(res, 1);
    printf("WORKLOAD:  %s\nIDENTITY:  %s\nIN MESH:   %s (clients connect with %s)\nSTATUS:    "
           "%s\n\n",
           str(res, "workload"), str(res, "identity"),
           json_is_true(json_object_get(res, "in_mesh")) ? "yes" : "no", str(res, "clients"),
           str(res, "status"));
    printf("%-6s %-11s %-10s %s\n", "PORT", "MODE", "SCOPE", "PEERAUTHENTICATION");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(res, "ports"), i, p)
    {
        char port[16];
        const json_t *pv = json_object_get(p, "port");
        if (json_is_integer(pv))
            snprintf(port, sizeof(port), "%lld", json_integer_value(pv));
        else
            snprintf(port, sizeof(port), "%s", json_string_value(pv));
        printf("%-6s %-11s %-10s %s\n", port, str(p, "mode"), str(p, "scope"), str(p, "policy"));
    }
    return finish(res, 0);
}
