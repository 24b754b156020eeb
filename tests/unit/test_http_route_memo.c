/* The HTTP carrier's route memo (agent/mesh/http_route_memo.c): a cluster
 * kept for a client pod, an address and a snapshot is given back whole
 * (service, port, policy, every endpoint and target port, the Envoy name)
 * for exactly that key, never for another pod, namespace, address, port
 * or snapshot; a new snapshot empties it and lets the old one go (run
 * under the sanitizers, a freed snapshot kept would show); what does not
 * fit is not kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/addr.h"
#include "enroll/pods.h"
#include "mesh/internal.h"
#include "route/http_route.h"

#define WORKLOAD(n, ip)                                                                            \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " n ", namespace: shop, labels: {app: "      \
    "pay}}\nspec: {containers: [{name: a}]}\nstatus: {podIP: " ip "}\n"

static const char *yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: "
                          "{istio.io/dataplane-mode: ambient}}\n"
                          "---\napiVersion: v1\nkind: Service\nmetadata: {name: pay, namespace: "
                          "shop}\nspec: {clusterIP: 10.96.0.10, selector: {app: pay}, ports: "
                          "[{name: http, port: 80, targetPort: 8080}, {name: http-b, port: 81, "
                          "targetPort: 8081}]}\n" WORKLOAD("p1", "10.1.0.1")
                              WORKLOAD("p2", "10.1.0.2") WORKLOAD("p3", "10.1.0.3");

static struct cfg_snapshot *load(void)
{
    struct cfg_diags diags = {0};
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load_buffer("memo.yaml", yaml, strlen(yaml), NULL, &diags, &s), 0);
    return s;
}

static struct meshd_addr addr(const char *s)
{
    struct meshd_addr a;
    assert_int_equal(addr_parse(s, &a), 0);
    return a;
}

/* The cluster http_route_resolve fills for a request to `dst`. */
static void resolve(const struct cfg_snapshot *s, const char *dst, struct route_cluster *c)
{
    struct route_source rs = {.ns = "shop"};
    struct meshd_addr d = addr(dst);
    struct http_request_view v = {.method = "GET", .path = "/", .query = "", .authority = "pay"};
    struct lb_state rng;
    lb_state_init(&rng, 1);
    struct http_route_result r;
    http_route_resolve(s, &rs, &d, &v, &rng, c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_FORWARD);
    assert_null(r.route);
}

static void same_cluster(const struct route_cluster *a, const struct route_cluster *b)
{
    assert_ptr_equal(a->svc, b->svc);
    assert_int_equal(a->port, b->port);
    assert_ptr_equal(a->subset, b->subset);
    assert_ptr_equal(a->vs, b->vs);
    assert_ptr_equal(a->dr, b->dr);
    assert_memory_equal(&a->policy, &b->policy, sizeof(a->policy));
    assert_int_equal(a->nendpoints, b->nendpoints);
    for (size_t i = 0; i < a->nendpoints; i++) {
        assert_ptr_equal(a->endpoints[i], b->endpoints[i]);
        assert_int_equal(a->target_ports[i], b->target_ports[i]);
    }
}

static void kept_for_exactly_its_pod_address_and_snapshot(void **state)
{
    (void)state;
    struct mesh *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    struct cfg_snapshot *a = load(), *b = load();
    struct route_cluster *c = malloc(sizeof(*c)), *c81 = malloc(sizeof(*c81));
    assert_true(c && c81);
    resolve(a, "10.96.0.10:80", c);
    resolve(a, "10.96.0.10:81", c81);
    assert_int_equal(c->nendpoints, 3);
    struct pod p = {.ns = "shop", .name = "client-1"};
    struct meshd_addr d80 = addr("10.96.0.10:80"), d81 = addr("10.96.0.10:81");
    const char *name = NULL;
    assert_null(http_route_memo_get(m, a, &p, &d80, &name)); /* nothing yet */
    http_route_memo_put(m, a, &p, &d80, c, "outbound|80||pay.shop.svc.cluster.local");
    struct route_cluster *got = http_route_memo_get(m, a, &p, &d80, &name);
    assert_non_null(got);
    same_cluster(got, c);
    assert_string_equal(name, "outbound|80||pay.shop.svc.cluster.local");
    /* (Direct-mapped: port 81 may take port 80's slot, never its cluster.) */
    http_route_memo_put(m, a, &p, &d81, c81, "outbound|81||pay.shop.svc.cluster.local");
    got = http_route_memo_get(m, a, &p, &d81, &name);
    assert_non_null(got);
    same_cluster(got, c81);
    assert_string_equal(name, "outbound|81||pay.shop.svc.cluster.local");

    static const struct {
        const char *behaviour, *ns, *name, *dst;
    } misses[] = {
        {"another pod", "shop", "client-2", "10.96.0.10:80"},
        {"the same name in another namespace", "front", "client-1", "10.96.0.10:80"},
        {"another port", "shop", "client-1", "10.96.0.10:82"},
        {"another address", "shop", "client-1", "10.96.0.11:80"},
        {"a name with the kept one as its prefix", "shop", "client-10", "10.96.0.10:80"},
    };
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++) {
        struct pod q = {0};
        strcpy(q.ns, misses[i].ns);
        strcpy(q.name, misses[i].name);
        struct meshd_addr d = addr(misses[i].dst);
        if (http_route_memo_get(m, a, &q, &d, &name))
            fail_msg("%s: kept cluster given", misses[i].behaviour);
    }
    /* Another snapshot: nothing of a's is given; a put under b empties
     * the memo of a's and lets a go (freed here while b is kept). */
    assert_null(http_route_memo_get(m, b, &p, &d80, &name));
    struct route_cluster *cb = malloc(sizeof(*cb));
    assert_non_null(cb);
    resolve(b, "10.96.0.10:80", cb);
    http_route_memo_put(m, b, &p, &d80, cb, "outbound|80||pay.shop.svc.cluster.local");
    assert_null(http_route_memo_get(m, a, &p, &d80, &name));
    assert_null(http_route_memo_get(m, b, &p, &d81, &name)); /* a's port 81 went too */
    cfg_snapshot_unref(a);
    got = http_route_memo_get(m, b, &p, &d80, &name);
    assert_non_null(got);
    same_cluster(got, cb);
    assert_int_equal(got->endpoints[0]->ips.n, 1); /* b's workloads, alive */

    /* What does not fit its slot is not kept. */
    char longname[400];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct pod r = {.ns = "shop", .name = "client-3"};
    http_route_memo_put(m, b, &r, &d80, cb, longname);
    assert_null(http_route_memo_get(m, b, &r, &d80, &name));

    uint64_t hits, misses_n;
    http_route_memo_counts(m, &hits, &misses_n);
    assert_int_equal(hits, 3);
    assert_true(misses_n >= 1);

    http_route_memo_free(m->route_memo);
    cfg_snapshot_unref(b);
    free(c);
    free(c81);
    free(cb);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kept_for_exactly_its_pod_address_and_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
