/* Where the API server is (agent/kube/target.c) and how its objects
 * become files (agent/kube/mirror.c): a kubeconfig's current context
 * picks the cluster and user, with the CA, client certificate and token
 * from data or from files relative to the kubeconfig, tokenFile kept for
 * re-reading; every broken or unsupported kubeconfig is refused with its
 * reason (exec plugins never run); server URLs parse or are refused; the
 * in-cluster service account needs its environment and files; an object's
 * file name comes only from valid Kubernetes names (no path escapes), and
 * a relist's sweep removes exactly the files not listed; `meshd
 * uninstall`'s removal of the mirror takes every file the mirror wrote and
 * leaves (and reports) anything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/mirror.h"
#include "kube/target.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_kube_target.XXXXXX");
    assert_non_null(mkdtemp(dir));
    put("ca.pem", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    put("token", "file-token\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

#define KC_HEAD                                                                                    \
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"                                           \
    "contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n"                           \
    "- name: c\n  context: {cluster: s, user: u}\n"

static void test_kubeconfig_fields_honoured(void **state)
{
    (void)state;
    /* "aGVsbG8=" is "hello". */
    put("kc", KC_HEAD "clusters:\n- name: s\n  cluster:\n    server: https://10.0.0.1:6443\n"
                      "    certificate-authority: ca.pem\n"
                      "users:\n- name: u\n  user:\n    token: abc\n    tokenFile: token\n"
                      "    client-certificate-data: aGVsbG8=\n    client-key-data: aGVsbG8=\n");
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/kc", dir);
    struct kube_target t;
    assert_int_equal(kube_target_kubeconfig(path, &t, err, sizeof(err)), 0);
    assert_true(t.tls);
    assert_string_equal(t.host, "10.0.0.1");
    assert_int_equal(t.port, 6443);
    assert_false(t.insecure);
    assert_non_null(strstr(t.ca_pem, "BEGIN CERTIFICATE"));
    assert_string_equal(t.cert_pem, "hello");
    assert_string_equal(t.key_pem, "hello");
    assert_string_equal(t.token, "abc");
    char want[128];
    snprintf(want, sizeof(want), "%s/token", dir);
    assert_string_equal(t.token_file, want);
    kube_target_free(&t);

    put("kc", KC_HEAD "clusters:\n- name: s\n  cluster:\n    server: http://[::1]:8001\n"
                      "    insecure-skip-tls-verify: true\n"
                      "users:\n- name: u\n  user: {}\n");
    assert_int_equal(kube_target_kubeconfig(path, &t, err, sizeof(err)), 0);
    assert_false(t.tls);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 8001);
    assert_true(t.insecure);
    assert_null(t.ca_pem);
    assert_null(t.token);
    assert_string_equal(t.token_file, "");
    kube_target_free(&t);
}

struct bad_kc {
    const char *text;
    int err;
    const char *msg;
};

static void test_kubeconfigs_refused(void **state)
{
    (void)state;
    static const struct bad_kc cases[] = {
        {"", -EINVAL, "empty"},
        {"[1, 2]\n", -EINVAL, "not a kubeconfig"},
        {"a: [\n", -EINVAL, "kc:"},
        {"current-context: missing\ncontexts: []\n", -ENOENT, "current-context \"missing\""},
        {KC_HEAD "clusters: []\n", -ENOENT, "cluster \"s\" not found"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: ftp://x}\n", -EINVAL, "is not http(s)"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x:0\"}\n", -EINVAL,
         "is not http(s)"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\", proxy-url: "
                 "\"http://p\"}\n",
         -ENOTSUP, "proxy-url"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\", "
                 "certificate-authority: absent.pem}\n",
         -EINVAL, "certificate-authority unreadable"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\", "
                 "certificate-authority-data: \"!!!\"}\n",
         -EINVAL, "certificate-authority unreadable"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\"}\nusers: []\n", -ENOENT,
         "user \"u\" not found"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\"}\n"
                 "users:\n- name: u\n  user: {exec: {command: /bin/sh}}\n",
         -ENOTSUP, "\"exec\" is not supported"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\"}\n"
                 "users:\n- name: u\n  user: {auth-provider: {name: gcp}}\n",
         -ENOTSUP, "\"auth-provider\""},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\"}\n"
                 "users:\n- name: u\n  user: {client-certificate-data: aGVsbG8=}\n",
         -EINVAL, "needs its key"},
        {KC_HEAD "clusters:\n- name: s\n  cluster: {server: \"https://x\"}\n"
                 "users:\n- name: u\n  user: {client-key: absent.key}\n",
         -EINVAL, "unreadable"},
    };
    char path[128];
    snprintf(path, sizeof(path), "%s/kc", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put("kc", cases[i].text);
        char err[256] = "";
        struct kube_target t;
        int rc = kube_target_kubeconfig(path, &t, err, sizeof(err));
        if (rc != cases[i].err || !strstr(err, cases[i].msg))
            fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, err, cases[i].err, cases[i].msg);
        assert_null(t.ca_pem); /* nothing left to free */
    }
    char err[256];
    struct kube_target t;
    assert_int_equal(kube_target_kubeconfig("/nonexistent/kc", &t, err, sizeof(err)), -ENOENT);
}

static void test_server_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int err;
        bool tls;
        const char *host;
        uint16_t port;
    } cases[] = {
        {"https://kubernetes.default.svc", 0, true, "kubernetes.default.svc", 443},
        {"http://127.0.0.1:8080/", 0, false, "127.0.0.1", 8080},
        {"https://[fd00::1]:6443", 0, true, "fd00::1", 6443},
        {"https://[fd00::1", -EINVAL, 0, "", 0},
        {"https://:6443", -EINVAL, 0, "", 0},
        {"https://host:99999", -EINVAL, 0, "", 0},
        {"https://host:x", -EINVAL, 0, "", 0},
        {"https://host/prefix", -EINVAL, 0, "", 0},
        {"https://ho st", -EINVAL, 0, "", 0},
        {"https://h\r\nInjected: 1", -EINVAL, 0, "", 0},
        {"unix:///var/run/k8s", -EINVAL, 0, "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_target t = {0};
        int rc = kube_parse_server(cases[i].url, &t);
        if (rc != cases[i].err)
            fail_msg("%s: %d, want %d", cases[i].url, rc, cases[i].err);
        if (rc)
            continue;
        assert_int_equal(t.tls, cases[i].tls);
        assert_string_equal(t.host, cases[i].host);
        assert_int_equal(t.port, cases[i].port);
    }
}

static void test_in_cluster(void **state)
{
    (void)state;
    char err[256];
    struct kube_target t;
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kube_target_in_cluster(dir, &t, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "not in a cluster"));
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube_target_in_cluster("/nonexistent", &t, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "ca.crt"));
    put("ca.crt", "pem");
    assert_int_equal(kube_target_in_cluster(dir, &t, err, sizeof(err)), 0);
    assert_true(t.tls);
    assert_string_equal(t.host, "10.96.0.1");
    assert_int_equal(t.port, 443);
    assert_string_equal(t.ca_pem, "pem");
    char want[128];
    snprintf(want, sizeof(want), "%s/token", dir);
    assert_string_equal(t.token_file, want);
    kube_target_free(&t);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(kube_target_in_cluster(dir, &t, err, sizeof(err)), 0);
    assert_string_equal(t.host, "fd00::1");
    kube_target_free(&t);
    setenv("KUBERNETES_SERVICE_PORT", "0", 1);
    assert_int_equal(kube_target_in_cluster(dir, &t, err, sizeof(err)), -EINVAL);
    unsetenv("KUBERNETES_SERVICE_HOST");
}

static void test_mirror_names_and_sweep(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *name; /* NULL: refused */
    } cases[] = {
        {"{\"metadata\":{\"name\":\"payments\",\"namespace\":\"default\"}}",
         "default_payments.json"},
        {"{\"metadata\":{\"name\":\"istio-system\"}}", "istio-system.json"},
        {"{\"metadata\":{\"name\":\"a.b-c\",\"namespace\":\"x\"}}", "x_a.b-c.json"},
        {"{\"metadata\":{\"name\":\"../../etc/passwd\",\"namespace\":\"x\"}}", NULL},
        {"{\"metadata\":{\"name\":\"ok\",\"namespace\":\"../x\"}}", NULL},
        {"{\"metadata\":{\"name\":\"ok\",\"namespace\":\"a.b\"}}", NULL},
        {"{\"metadata\":{\"name\":\".hidden\"}}", NULL},
        {"{\"metadata\":{\"name\":\"Upper\"}}", NULL},
        {"{\"metadata\":{\"name\":\"-dash\"}}", NULL},
        {"{\"metadata\":{\"name\":\"\"}}", NULL},
        {"{\"metadata\":{}}", NULL},
        {"{}", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = json_loads(cases[i].json, 0, NULL);
        char name[320];
        int rc = kube_mirror_name(o, name, sizeof(name));
        if (cases[i].name ? rc != 0 || strcmp(name, cases[i].name) != 0 : rc != -EINVAL)
            fail_msg("%s: %d %s", cases[i].json, rc, rc ? "" : name);
        if (!cases[i].name)
            assert_int_equal(kube_mirror_put(dir, "things", o, "v1", "Thing"), -EINVAL);
        json_decref(o);
    }
    char mdir[128];
    snprintf(mdir, sizeof(mdir), "%s/m", dir);
    assert_int_equal(kube_mirror_prepare(mdir, "pods"), 0);
    const char *const names[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_pack("{s:{s:s,s:s}}", "metadata", "name", names[i], "namespace", "ns");
        assert_int_equal(kube_mirror_put(mdir, "pods", o, "v1", "Pod"), 0);
        json_decref(o);
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/pods/ns_b.json", mdir);
    json_t *back = json_load_file(path, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(back, "kind")), "Pod");
    assert_string_equal(json_string_value(json_object_get(back, "apiVersion")), "v1");
    json_decref(back);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *keep[] = {"ns_a.json", "ns_c.json"};
    assert_int_equal(kube_mirror_sweep(mdir, "pods", keep, 2), 1);
    assert_int_equal(stat(path, &st), -1);
    json_t *c = json_pack("{s:{s:s,s:s}}", "metadata", "name", "c", "namespace", "ns");
    assert_int_equal(kube_mirror_delete(mdir, "pods", c), 0);
    assert_int_equal(kube_mirror_delete(mdir, "pods", c), 0); /* already gone: fine */
    json_decref(c);
    assert_int_equal(kube_mirror_sweep(mdir, "pods", NULL, 0), 1);
    assert_int_equal(kube_mirror_sweep(mdir, "absent", NULL, 0), -ENOENT);
}

/* A mirror with objects in two kinds and the syncing marker, then one
 * foreign thing at a time: removed whole, or the foreign thing left and
 * -ENOTEMPTY. */
static void test_mirror_remove(void **state)
{
    static const struct {
        const char *foreign; /* relative to the mirror; "" none, trailing / a directory */
        int rc;
    } cases[] = {
        {"", 0},
        {"notes.txt", -ENOTEMPTY},       /* a file beside the kinds */
        {"pods/README", -ENOTEMPTY},     /* a file in a kind that is not an object's */
        {"Upper_Case/", -ENOTEMPTY},     /* a directory that is no resource */
        {"link", -ENOTEMPTY},            /* a symbolic link, never followed */
        {"services/.ns_x.json.tmp", 0},  /* a temporary of the mirror's */
        {"pods/ns_q.json/", -ENOTEMPTY}, /* a directory named as an object */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char mdir[128], path[256];
        snprintf(mdir, sizeof(mdir), "%s/rm%zu", dir, i);
        assert_int_equal(kube_mirror_prepare(mdir, "pods"), 0);
        assert_int_equal(kube_mirror_prepare(mdir, "services"), 0);
        json_t *o = json_pack("{s:{s:s,s:s}}", "metadata", "name", "a", "namespace", "ns");
        assert_int_equal(kube_mirror_put(mdir, "pods", o, "v1", "Pod"), 0);
        assert_int_equal(kube_mirror_put(mdir, "services", o, "v1", "Service"), 0);
        json_decref(o);
        snprintf(path, sizeof(path), "%s/" KUBE_MIRROR_SYNCING, mdir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
        const char *fg = cases[i].foreign;
        size_t l = strlen(fg);
        snprintf(path, sizeof(path), "%s/%s", mdir, fg);
        if (l && strcmp(fg, "link") == 0)
            assert_int_equal(symlink("/etc", path), 0);
        else if (l && fg[l - 1] == '/')
            assert_int_equal(mkdir(path, 0700), 0);
        else if (l)
            assert_non_null((f = fopen(path, "w"))), fclose(f);
        int rc = kube_mirror_remove(mdir);
        struct stat st;
        if (rc != cases[i].rc)
            fail_msg("%s: %d, want %d", fg, rc, cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(lstat(mdir, &st), -1);
            continue;
        }
        assert_int_equal(lstat(path, &st), 0); /* the foreign thing stays */
        snprintf(path, sizeof(path), "%s/services/ns_a.json", mdir);
        assert_int_equal(lstat(path, &st), -1); /* the mirror's own went */
        snprintf(path, sizeof(path), "%s/" KUBE_MIRROR_SYNCING, mdir);
        assert_int_equal(lstat(path, &st), -1);
    }
    char absent[128];
    snprintf(absent, sizeof(absent), "%s/never-made", dir);
    assert_int_equal(kube_mirror_remove(absent), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_fields_honoured),
        cmocka_unit_test(test_kubeconfigs_refused),
        cmocka_unit_test(test_server_urls),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_mirror_names_and_sweep),
        cmocka_unit_test(test_mirror_remove),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
