/* Where an enrolled pod's identity comes from (agent/enroll/pod_source.c):
 * the Pod object decides, claims must agree, and a pod nobody vouches for
 * is pending, never "default". Each row names the behaviour it checks. The
 * agent runs on node "n1"; the pod is shop/pay-1 unless a row says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/model.h"
#include "core/addr.h"
#include "enroll/pod_source.h"
#include "support/config_fixture.h"

#define POD(name, node, sa, ips)                                                                   \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: shop, labels: {app: pay}}\n" \
    "spec: {nodeName: " node ", serviceAccountName: " sa ", containers: [{name: a, image: i}]}\n"  \
    "status: {podIPs: " ips "}\n---\n"

#define WE_EVIL                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: evil, namespace: "  \
    "evil}\nspec: {address: 10.244.1.11, labels: {app: evil}, serviceAccount: evil}\n---\n"

static const struct bind_case {
    const char *behaviour;
    const char *yaml;
    const char *claimed_sa;  /* NULL: none */
    const char *claimed_ips; /* space-separated, NULL: none */
    enum pod_binding want;
    const char *want_sa;
    const char *want_ips; /* effective, space-separated */
    const char *why_has;  /* substring of binding_why */
} cases[] = {
    {"namespace/name/netns only: the Pod object gives service account and IPs",
     POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}, {ip: 'fd00::11'}]"), NULL, NULL,
     POD_BY_CLUSTER, "payments", "10.244.1.11 fd00::11", "Pod object"},
    {"claims that agree with the Pod object are accepted",
     POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}]"), "payments", "10.244.1.11",
     POD_BY_CLUSTER, "payments", "10.244.1.11", "Pod object"},
    {"a service account that contradicts the Pod object is a conflict",
     POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}]"), "admin", NULL, POD_CONFLICT, "admin",
     "", "\"admin\" was given, the Pod object says \"payments\""},
    {"an address the Pod object does not have is a conflict",
     POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}]"), NULL, "10.244.1.99", POD_CONFLICT, "",
     "10.244.1.99", "10.244.1.99 was given"},
    {"a Pod scheduled on another node is a conflict (this node signs only its own pods)",
     POD("pay-1", "n2", "payments", "[{ip: 10.244.1.11}]"), NULL, NULL, POD_CONFLICT, "", "",
     "scheduled on node n2"},
    {"no Pod object and no service account: pending, never \"default\"", "", NULL, "10.244.1.11",
     POD_PENDING, "", "10.244.1.11", "no Pod object"},
    {"no Pod object: an explicit service account stands, as enrolled", "", "payments",
     "10.244.1.11", POD_BY_CALLER, "payments", "10.244.1.11", "as enrolled"},
    {"another pod's object does not vouch for this one",
     POD("pay-2", "n1", "payments", "[{ip: 10.244.1.11}]"), NULL, NULL, POD_PENDING, "", "",
     "no Pod object"},
    {"a WorkloadEntry elsewhere naming the pod's IP changes nothing",
     WE_EVIL POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}]"), NULL, NULL, POD_BY_CLUSTER,
     "payments", "10.244.1.11", "Pod object"},
    {"a Pod object without addresses keeps the claimed ones",
     "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-1, namespace: shop}\nspec: {nodeName: n1, "
     "serviceAccountName: payments, containers: [{name: a, image: i}]}\n",
     NULL, "10.244.1.11", POD_BY_CLUSTER, "payments", "10.244.1.11", "Pod object"},
    {"a Pod object without serviceAccountName is the namespace's default account",
     "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-1, namespace: shop}\nspec: {nodeName: n1, "
     "containers: [{name: a, image: i}]}\n",
     NULL, NULL, POD_BY_CLUSTER, "default", "", "Pod object"},
};

static void parse_ips(const char *list, struct meshd_addr *out, size_t *n)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    *n = 0;
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char a[96];
        snprintf(a, sizeof(a), strchr(t, ':') ? "[%s]:0" : "%s:0", t);
        assert_int_equal(addr_parse(a, &out[(*n)++]), 0);
    }
}

static void format_ips(const struct pod *pod, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < pod->nips; i++) {
        char a[ADDR_STRLEN];
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? " " : "",
                 addr_format_ip(&pod->ips[i], a, sizeof(a)));
    }
}

static void binds_as_the_cluster_says(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bind_case *c = &cases[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        if (f.diags.n)
            cfg_fixture_dump(&f);
        assert_int_equal(f.diags.n, 0);
        struct pod pod = {.ns = "shop", .name = "pay-1"};
        snprintf(pod.claimed_sa, sizeof(pod.claimed_sa), "%s", c->claimed_sa ? c->claimed_sa : "");
        parse_ips(c->claimed_ips, pod.claimed_ips, &pod.nclaimed_ips);
        enum pod_binding got = pod_source_bind(f.snap, "n1", &pod);
        char ips[256];
        format_ips(&pod, ips, sizeof(ips));
        if (got != c->want || strcmp(pod.sa, c->want_sa) != 0 || strcmp(ips, c->want_ips) != 0 ||
            !strstr(pod.binding_why, c->why_has))
            fail_msg("%s: got %s sa \"%s\" ips \"%s\" (%s)", c->behaviour, pod_binding_name(got),
                     pod.sa, ips, pod.binding_why);
        assert_int_equal(pod.binding, got);
        assert_int_equal(pod_source_bound(&pod), got == POD_BY_CLUSTER || got == POD_BY_CALLER);
        cfg_fixture_free(&f);
    }
}

static void no_configuration_yet_is_pending(void **state)
{
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    assert_int_equal(pod_source_bind(NULL, "n1", &pod), POD_PENDING);
    assert_false(pod_source_bound(&pod));
    assert_string_equal(pod.sa, "");
}

static void labels_come_from_the_pod_object_not_the_ip(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, WE_EVIL POD("pay-1", "n1", "payments", "[{ip: 10.244.1.11}]"));
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    const struct cfg_labels *l = pod_source_labels(f.snap, &pod);
    assert_non_null(l);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->v[0].key, "app");
    assert_string_equal(l->v[0].value, "pay");
    struct pod other = {.ns = "shop", .name = "unknown"};
    assert_null(pod_source_labels(f.snap, &other));
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binds_as_the_cluster_says),
        cmocka_unit_test(no_configuration_yet_is_pending),
        cmocka_unit_test(labels_come_from_the_pod_object_not_the_ip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
