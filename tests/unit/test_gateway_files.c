/* Gateway servers' file certificates (config/gateway_files.c): read only
 * below the directory the operator gave, as a Secret in each namespace of
 * the pods the Gateway selects, which the server then names; every other
 * path (none given, relative, outside, escaping by a symbolic link, not a
 * regular file, too large, holding a NUL, missing) is a warning naming
 * the reason, and the server keeps no certificate (it fails closed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

static char root[64], outside[64];

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    snprintf(root, sizeof(root), "/tmp/gwfiles.XXXXXX");
    snprintf(outside, sizeof(outside), "/tmp/gwfiles-out.XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(outside));
    write_file(root, "tls.crt", "CERT\n", 5);
    write_file(root, "tls.key", "KEY\n", 4);
    write_file(root, "ca.crt", "CA\n", 3);
    write_file(root, "nul.crt", "A\0B", 3);
    write_file(outside, "secret.key", "HOST SECRET\n", 12);
    char *big = calloc(1, (1u << 20) + 2);
    assert_non_null(big);
    memset(big, 'a', (1u << 20) + 1);
    write_file(root, "big.crt", big, (1u << 20) + 1);
    free(big);
    char link[200], dir[200];
    snprintf(link, sizeof(link), "%s/escape.key", root);
    snprintf(dir, sizeof(dir), "%s/adir", root);
    assert_int_equal(symlink("../../etc/passwd", link), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", root, outside);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* A Gateway with one SIMPLE (or MUTUAL) server on these files, and its pod
 * in namespace edge. */
static struct cfg_snapshot *load(const char *crt, const char *key, const char *ca, const char *dir,
                                 struct cfg_diags *d)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Pod\nmetadata: {name: gw, namespace: edge, labels: {istio: "
             "ingressgateway}}\nspec: {nodeName: n1}\n---\n"
             "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: "
             "istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"
             "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n"
             "    tls: {mode: %s, serverCertificate: '%s', privateKey: '%s'%s%s%s}\n",
             ca ? "MUTUAL" : "SIMPLE", crt, key, ca ? ", caCertificates: '" : "", ca ? ca : "",
             ca ? "'" : "");
    struct cfg_load_opts o;
    cfg_load_opts_default(&o);
    o.gateway_cert_dir = dir;
    cfg_diags_init(d);
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load_buffer("g.yaml", yaml, strlen(yaml), &o, d, &s), 0);
    assert_int_equal(d->counts[CFG_ERROR], 0);
    return s;
}

static void test_files_below_the_directory_are_served(void **state)
{
    char crt[128], key[128], ca[128];
    snprintf(crt, sizeof(crt), "%s/tls.crt", root);
    snprintf(key, sizeof(key), "%s/./tls.key", root);
    snprintf(ca, sizeof(ca), "%s/ca.crt", root);
    struct cfg_diags d;
    struct cfg_snapshot *s = load(crt, key, ca, root, &d);
    assert_int_equal(d.counts[CFG_WARNING], 0);
    const struct cfg_gateway *g = cfg_find(s, CFG_GATEWAY, "istio-system", "g");
    assert_string_equal(g->servers[0].credential_name, "~file~g~0");
    /* In the pod's namespace, where the edge looks. */
    const struct cfg_secret *sec = cfg_find(s, CFG_SECRET, "edge", "~file~g~0");
    assert_non_null(sec);
    assert_string_equal(sec->tls_crt, "CERT\n");
    assert_string_equal(sec->tls_key, "KEY\n");
    assert_string_equal(sec->ca_crt, "CA\n");
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

static const struct refused_case {
    const char *what, *crt, *key; /* "%s": the root; "%o": outside */
    bool no_dir;
    const char *says;
} refused[] = {
    {"no --gateway-cert-dir", "%s/tls.crt", "%s/tls.key", true,
     "--gateway-cert-dir, which is not set"},
    {"a relative path", "tls.crt", "%s/tls.key", false, "not absolute"},
    {"a file outside the directory", "%s/tls.crt", "%o/secret.key", false,
     "not below --gateway-cert-dir"},
    {"dot-dot out of the directory", "%s/../", "%s/tls.key", false, "not below --gateway-cert-dir"},
    {"a symbolic link out of it", "%s/tls.crt", "%s/escape.key", false,
     "not below --gateway-cert-dir"},
    {"a directory", "%s/adir", "%s/tls.key", false, "not a regular file"},
    {"over 1 MiB", "%s/big.crt", "%s/tls.key", false, "at most 1 MiB"},
    {"a NUL inside", "%s/nul.crt", "%s/tls.key", false, "holds a NUL"},
    {"a missing file", "%s/none.crt", "%s/tls.key", false, "No such file"},
};

static void expand(const char *pat, char *out, size_t len)
{
    const char *at = strchr(pat, '%');
    if (!at) {
        snprintf(out, len, "%s", pat);
        return;
    }
    snprintf(out, len, "%.*s%s%s", (int)(at - pat), pat, at[1] == 's' ? root : outside, at + 2);
}

static void test_other_paths_are_refused_and_fail_closed(void **state)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const struct refused_case *c = &refused[i];
        char crt[200], key[200];
        expand(c->crt, crt, sizeof(crt));
        expand(c->key, key, sizeof(key));
        struct cfg_diags d;
        struct cfg_snapshot *s = load(crt, key, NULL, c->no_dir ? NULL : root, &d);
        const struct cfg_gateway *g = cfg_find(s, CFG_GATEWAY, "istio-system", "g");
        const char *said = NULL;
        for (size_t j = 0; j < d.n; j++)
            if (d.v[j].level == CFG_WARNING && strstr(d.v[j].message, c->says))
                said = d.v[j].message;
        if (!g || g->servers[0].credential_name || !said || strstr(said, "HOST SECRET") ||
            cfg_count(s, CFG_SECRET) != 0) {
            fprintf(stderr, "%s: want a warning \"%s\" and no certificate\n", c->what, c->says);
            for (size_t j = 0; j < d.n; j++)
                fprintf(stderr, "  %s\n", d.v[j].message);
            fail();
        }
        assert_non_null(strstr(said, "the server refuses connections"));
        cfg_snapshot_unref(s);
        cfg_diags_fini(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_below_the_directory_are_served),
        cmocka_unit_test(test_other_paths_are_refused_and_fail_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
