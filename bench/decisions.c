/* bench/decisions: the per-connection decisions meshd makes on the data
 * path, timed over many iterations: AuthorizationPolicy evaluation
 * (a typical set and 5,000 policies) and endpoint choice (each LB policy
 * over 10 and 1,000 endpoints, weighted canary split). Baseline in the
 * same run: an empty loop of the same shape. Prints a markdown table. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cidr.h"
#include "policy/authz.h"
#include "route/lb.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile int sink;

#define TIME(label, iters, body)                                                                   \
    do {                                                                                           \
        double t0 = now_ns();                                                                      \
        for (long i_ = 0; i_ < (iters); i_++) {                                                    \
            body;                                                                                  \
        }                                                                                          \
        printf("| %s | %.1f |\n", label, (now_ns() - t0) / (double)(iters));                       \
    } while (0)

int main(void)
{
    struct authz_request req = {.principal = "cluster.local/ns/foo/sa/client", .namespace_ = "foo"};
    cidr_parse("10.244.1.11", &(struct cidr){0});
    struct cidr src, dst;
    cidr_parse("10.244.1.11", &src);
    cidr_parse("10.244.2.11", &dst);
    req.source = src.addr;
    req.destination = dst.addr;
    req.destination.port = htons(8080);

    /* A typical set: a mesh-wide deny of one namespace, two namespace
     * allows by principal and port. */
    static const char *const deny_ns[] = {"untrusted"};
    static const char *const p1[] = {"cluster.local/ns/bar/*"};
    static const char *const p2[] = {"cluster.local/ns/foo/sa/client"};
    static const uint16_t ports[] = {8080};
    struct authz_source s_deny = {.namespaces = {deny_ns, 1}};
    struct authz_source s1 = {.principals = {p1, 1}}, s2 = {.principals = {p2, 1}};
    struct authz_operation op = {.ports = {ports, 1}};
    struct authz_rule r_deny = {.from = &s_deny, .nfrom = 1};
    struct authz_rule r1 = {.from = &s1, .nfrom = 1, .to = &op, .nto = 1};
    struct authz_rule r2 = {.from = &s2, .nfrom = 1, .to = &op, .nto = 1};
    struct authz_policy typical[3] = {
        {.name = "istio-system/deny-untrusted",
         .action = AUTHZ_DENY,
         .rules = &r_deny,
         .nrules = 1},
        {.name = "foo/allow-bar", .action = AUTHZ_ALLOW, .rules = &r1, .nrules = 1},
        {.name = "foo/allow-client", .action = AUTHZ_ALLOW, .rules = &r2, .nrules = 1},
    };
    /* 5,000 policies applying to one workload (no index narrowing them):
     * 4,999 ALLOWs for other principals, the matching one last. */
    enum { N = 5000 };
    struct authz_policy *many = calloc(N, sizeof(*many));
    struct authz_source *srcs = calloc(N, sizeof(*srcs));
    struct authz_rule *rules = calloc(N, sizeof(*rules));
    char(*names)[64] = calloc(N, 64);
    const char **pp = calloc(N, sizeof(*pp));
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 64, "cluster.local/ns/ns%d/sa/sa%d", i, i);
        pp[i] = i == N - 1 ? p2[0] : names[i];
        srcs[i] = (struct authz_source){.principals = {&pp[i], 1}};
        rules[i] = (struct authz_rule){.from = &srcs[i], .nfrom = 1, .to = &op, .nto = 1};
        many[i] = (struct authz_policy){.action = AUTHZ_ALLOW, .rules = &rules[i], .nrules = 1};
    }
    struct authz_decision d;

    struct lb_endpoint *eps = calloc(1000, sizeof(*eps));
    for (int i = 0; i < 1000; i++) {
        eps[i].addr.family = MESHD_AF_INET;
        eps[i].addr.addr[0] = 10, eps[i].addr.addr[2] = (uint8_t)(i >> 8),
        eps[i].addr.addr[3] = (uint8_t)i;
        eps[i].active = (uint32_t)(i % 7);
    }
    struct lb_state st;
    lb_state_init(&st, 1);
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    uint32_t canary[2] = {99, 1};

    printf("| decision per connection | ns |\n|---|---|\n");
    TIME("baseline: empty loop", 10000000, sink = (int)i_);
    TIME("authz: no policies", 10000000, (authz_evaluate(NULL, 0, &req, &d), sink = d.allow));
    TIME("authz: typical set (1 DENY, 2 ALLOW)", 10000000,
         (authz_evaluate(typical, 3, &req, &d), sink = d.allow));
    TIME("authz: 5,000 ALLOW policies, match last", 2000,
         (authz_evaluate(many, N, &req, &d), sink = d.allow));
    TIME("route: canary 99/1 weighted choice", 10000000, sink = lb_weighted_pick(canary, 2, &st));
    TIME("lb: round robin, 10 endpoints", 10000000,
         sink = lb_pick(LB_ROUND_ROBIN, &st, eps, 10, &req.source, &oc, 0, -1));
    TIME("lb: least request, 10 endpoints", 10000000,
         sink = lb_pick(LB_LEAST_REQUEST, &st, eps, 10, &req.source, &oc, 0, -1));
    TIME("lb: consistent hash, 10 endpoints", 10000000,
         sink = lb_pick(LB_CONSISTENT_HASH_SOURCE_IP, &st, eps, 10, &req.source, &oc, 0, -1));
    TIME("lb: round robin, 1,000 endpoints", 100000,
         sink = lb_pick(LB_ROUND_ROBIN, &st, eps, 1000, &req.source, &oc, 0, -1));
    TIME("lb: least request, 1,000 endpoints", 100000,
         sink = lb_pick(LB_LEAST_REQUEST, &st, eps, 1000, &req.source, &oc, 0, -1));
    free(many), free(srcs), free(rules), free(names), free(pp), free(eps);
    return 0;
}
