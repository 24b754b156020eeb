/* Enrollment by label (agent/enroll/autoenroll.c) without a kernel: which
 * pods the labels want (ambient, istio-injection=enabled, an explicit mode
 * winning over the sidecar label, the pod's opt-out), and every way the
 * CNI plugin's ADD is refused before anything is enrolled: a bad pod
 * name, a relative or overlong netns, an overlong UID, a namespace not
 * known yet (try again: never a pod started uncaptured), a netns that
 * cannot be opened; a namespace outside the mesh answers "not enrolled";
 * DEL always succeeds. And the netns scan's error paths
 * (agent/enroll/netns_scan.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "enroll/autoenroll.h"
#include "enroll/netns_scan.h"
#include "support/config_fixture.h"

static const char cluster[] =
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: amb\n"
    "  labels: {istio.io/dataplane-mode: ambient}\n"
    "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: inj\n"
    "  labels: {istio-injection: enabled}\n"
    "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: both\n"
    "  labels: {istio-injection: enabled, istio.io/dataplane-mode: none}\n"
    "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: off\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: out\n"
    "  namespace: amb\n  labels: {istio.io/dataplane-mode: none}\n"
    "spec: {nodeName: n1}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: in\n"
    "  namespace: amb\nspec: {nodeName: n1}\n";

static void test_which_pods_the_labels_want(void **state)
{
    (void)state;
    struct cfg_fixture f;
    cfg_fixture_load(&f, cluster);
    static const struct {
        const char *ns;
        const char *pod_mode; /* NULL: no label */
        bool want;
    } cases[] = {
        {"amb", NULL, true},      {"inj", NULL, true},     {"both", NULL, false},
        {"off", NULL, false},     {"absent", NULL, false}, {"amb", "none", false},
        {"amb", "ambient", true}, {"inj", "none", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_kv kv = {"istio.io/dataplane-mode", cases[i].pod_mode};
        struct cfg_labels l = {cases[i].pod_mode ? &kv : NULL, cases[i].pod_mode ? 1 : 0};
        if (autoenroll_wanted(f.snap, cases[i].ns, &l) != cases[i].want)
            fail_msg("%s/%s: want %d", cases[i].ns, cases[i].pod_mode ? cases[i].pod_mode : "-",
                     cases[i].want);
    }
    cfg_fixture_free(&f);
}

static void test_cni_add_refusals(void **state)
{
    (void)state;
    struct cfg_fixture f;
    cfg_fixture_load(&f, cluster);
    struct pods *pods;
    assert_int_equal(pods_new(NULL, NULL, NULL, 0, &pods), 0);
    struct autoenroll *a;
    struct autoenroll_opts o = {.node = "n1", .netns_dir = "/nonexistent"};
    assert_int_equal(autoenroll_new(pods, &o, &a), 0);
    char uid[80];
    memset(uid, 'a', sizeof(uid) - 1);
    uid[sizeof(uid) - 1] = '\0';
    char long_ns[300] = "/run/netns/";
    memset(long_ns + 11, 'x', sizeof(long_ns) - 12);
    long_ns[sizeof(long_ns) - 1] = '\0';
    const struct {
        struct autoenroll_cni c;
        int rc;
        const char *msg;
    } cases[] = {
        {{"amb", "Bad_Name", "u", "/run/netns/x"}, -EINVAL, "invalid pod"},
        {{NULL, "p", "u", "/run/netns/x"}, -EINVAL, "invalid pod"},
        {{"amb", "p", "u", "run/netns/x"}, -EINVAL, "absolute"},
        {{"amb", "p", "u", NULL}, -EINVAL, "absolute"},
        {{"amb", "p", "u", long_ns}, -EINVAL, "absolute"},
        {{"amb", "p", uid, "/run/netns/x"}, -EINVAL, "UID"},
        {{"unknown", "p", "u", "/run/netns/x"}, -EAGAIN, "not known yet"},
        {{"off", "p", "u", "/run/netns/x"}, 0, ""},
        {{"amb", "out", "u", "/run/netns/x"}, 0, ""}, /* opted out */
        {{"amb", "in", "u", "/nonexistent/netns"}, -ENOENT, "not a network namespace"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        int rc = autoenroll_cni_add(a, f.snap, &cases[i].c, err, sizeof(err));
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, err, cases[i].rc, cases[i].msg);
    }
    assert_int_equal(pods_count(pods), 0);
    assert_int_equal(autoenroll_cni_del(a, "amb", "in"), 0); /* not enrolled: fine */
    assert_int_equal(autoenroll_cni_del(a, NULL, NULL), 0);
    struct autoenroll_stats st;
    autoenroll_stats(a, &st);
    assert_int_equal(st.cni_dels, 2);
    assert_int_equal(st.failed, 1);
    /* A reconcile with no namespace to scan enrolls nothing, and fails
     * nothing. */
    autoenroll_reconcile(a, f.snap);
    assert_int_equal(pods_count(pods), 0);
    autoenroll_free(a);
    pods_free(pods, false);
    cfg_fixture_free(&f);
}

static void test_netns_scan_errors(void **state)
{
    (void)state;
    struct meshd_addr ips[4];
    assert_int_equal(netns_addresses("/nonexistent", ips, 4), -ENOENT);
    assert_true(netns_addresses("/etc/hostname", ips, 4) < 0); /* not a netns */
    int n = netns_addresses("/proc/self/ns/net", ips, 4);
    assert_true(n >= 0 && n <= 4); /* loopback never counts */
    struct netns_found found[4];
    const char *dirs[] = {"/nonexistent", "/etc", NULL};
    assert_int_equal(netns_scan(dirs, 0, found, 4), 0); /* nothing there is a netns */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_pods_the_labels_want),
        cmocka_unit_test(test_cni_add_refusals),
        cmocka_unit_test(test_netns_scan_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
