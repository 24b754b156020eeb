/* Workload identity (agent/pki/): the CA in Istio's layout, the leaf
 * profile, strict SPIFFE ids, and real TLS 1.3 mutual handshakes that
 * refuse impersonation: another root, another trust domain, an expired or
 * not-yet-valid certificate, a server with the wrong service account.
 * Node CAs and the node authorizer are in test_pki_nodeca.c, session
 * resumption in test_pki_resumption.c. */
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
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "support/pki_fixture.h"
#include "support/tls_fixture.h"

static char err[256];

static void ca_layout_and_load_errors(void **state)
{
    static const char *const files[] = {"ca-cert.pem", "ca-key.pem", "root-cert.pem",
                                        "cert-chain.pem"};
    char path[128];
    struct stat st;
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", pkif.dir_a, files[i]);
        assert_int_equal(stat(path, &st), 0);
    }
    snprintf(path, sizeof(path), "%s/ca-key.pem", pkif.dir_a);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No silent replacement of a mesh CA. */
    assert_int_equal(pki_ca_init_dir(pkif.dir_a, "cluster.local", false, err, sizeof(err)),
                     -EEXIST);
    assert_non_null(strstr(err, "refusing"));
    struct pki_ca *ca = NULL;
    assert_int_equal(pki_ca_load("/nonexistent/meshd-ca", &ca, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "ca-key.pem"));
    /* A key that does not match the certificate. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp %s/ca-key.pem %s/ca-key.pem.a && cp %s/ca-key.pem %s/ca-key.pem",
             pkif.dir_a, pkif.dir_a, pkif.dir_b, pkif.dir_a);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pki_ca_load(pkif.dir_a, &ca, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    snprintf(cmd, sizeof(cmd), "mv %s/ca-key.pem.a %s/ca-key.pem", pkif.dir_a, pkif.dir_a);
    assert_int_equal(system(cmd), 0);
    assert_null(ca);
}

static void leaf_profile(void **state)
{
    struct pki_cert *c;
    assert_int_equal(
        pki_issue(pkif.ca_a, "cluster.local", "default", "sa-1", 0, PKI_DEFAULT_TTL, &c), 0);
    char id[PKI_ID_MAX];
    assert_int_equal(pki_cert_spiffe_id(c->leaf, id, sizeof(id)), 0);
    assert_string_equal(id, "spiffe://cluster.local/ns/default/sa/sa-1");
    assert_string_equal(c->spiffe_id, id);
    assert_int_equal(EVP_PKEY_get_bits(c->key), 256);
    assert_true(X509_get_extended_key_usage(c->leaf) & XKU_SSL_SERVER);
    assert_true(X509_get_extended_key_usage(c->leaf) & XKU_SSL_CLIENT);
    assert_true(X509_get_key_usage(c->leaf) & KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_ca(c->leaf), 0);
    long life = (long)(c->not_after - c->not_before);
    assert_in_range(life, PKI_DEFAULT_TTL, PKI_DEFAULT_TTL + 600);
    assert_false(pki_cert_needs_renewal(c, time(NULL)));
    assert_true(pki_cert_needs_renewal(c, time(NULL) + PKI_DEFAULT_TTL / 2 + 1));
    /* Refcounted: a second holder keeps it alive. */
    struct pki_cert *held = pki_cert_ref(c);
    pki_cert_unref(c);
    assert_int_equal(held->refs, 1);
    pki_cert_unref(held);
    /* Names that are not Kubernetes names are refused. */
    assert_int_equal(pki_issue(pkif.ca_a, "cluster.local", "Default", "sa", 0, 60, &c), -EINVAL);
    assert_int_equal(pki_issue(pkif.ca_a, "cluster.local", "ns", "sa/../x", 0, 60, &c), -EINVAL);
}

static void spiffe_parse_table(void **state)
{
    static const struct {
        const char *id;
        bool ok;
    } rows[] = {
        {"spiffe://cluster.local/ns/default/sa/sleep", true},
        {"spiffe://td.example/ns/a-b/sa/x.y-z", true},
        {"spiffe://cluster.local/ns/default/sa/sleep/", false},
        {"spiffe://cluster.local/ns/default/sa/", false},
        {"spiffe://cluster.local/ns//sa/sleep", false},
        {"spiffe://cluster.local/ns/Default/sa/sleep", false},
        {"spiffe://cluster.local/ns/default/sa/sl%65ep", false},
        {"spiffe://cluster.local/ns/default/sa/sleep?x", false},
        {"spiffe://cluster.local/ns/default/sa/sleep#x", false},
        {"spiffe://cluster.local:443/ns/default/sa/sleep", false},
        {"spiffe://user@cluster.local/ns/default/sa/sleep", false},
        {"spiffe:///ns/default/sa/sleep", false},
        {"SPIFFE://cluster.local/ns/default/sa/sleep", false},
        {"https://cluster.local/ns/default/sa/sleep", false},
        {"spiffe://cluster.local/sa/sleep/ns/default", false},
        {"spiffe://cluster.local/ns/default/sa/sleep/ns/x/sa/y", false},
        {"", false},
    };
    char td[256], ns[64], sa[254];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if ((pki_spiffe_parse(rows[i].id, td, sizeof(td), ns, sizeof(ns), sa, sizeof(sa)) == 0) !=
            rows[i].ok)
            fail_msg("%s: expected %s", rows[i].id, rows[i].ok ? "valid" : "refused");
}

static void mutual_tls_accepts_the_right_peer(void **state)
{
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    struct pkif_peer cli =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
    SSL *cs, *ss;
    assert_int_equal(pkif_handshake(cli.ctx, srv.ctx, &cs, &ss), 0);
    char id[PKI_ID_MAX], why[160];
    assert_int_equal(pki_verify_peer(cs, "cluster.local",
                                     "spiffe://cluster.local/ns/default/sa/server", id, sizeof(id),
                                     why, sizeof(why)),
                     0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     0);
    assert_string_equal(id, "spiffe://cluster.local/ns/default/sa/client");
    const unsigned char *alpn;
    unsigned int alen;
    SSL_get0_alpn_selected(cs, &alpn, &alen);
    assert_int_equal(alen, 2);
    assert_memory_equal(alpn, "h2", 2);
    assert_int_equal(SSL_version(cs), TLS1_3_VERSION);
    pkif_close_pair(cs, ss);
    pkif_peer_free(&srv);
    pkif_peer_free(&cli);
}

static void impersonation_is_refused(void **state)
{
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    char id[PKI_ID_MAX], why[160];
    SSL *cs, *ss;

    /* A client certificate from another root: the server refuses it. */
    struct pkif_peer other_root =
        pkif_peer(pkif.ca_b, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
    assert_int_not_equal(pkif_handshake(other_root.ctx, srv.ctx, &cs, &ss), 0);
    pkif_close_pair(cs, ss);
    pkif_peer_free(&other_root);

    /* An expired client certificate. */
    struct pkif_peer expired =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", -7200, 3600, false);
    assert_int_not_equal(pkif_handshake(expired.ctx, srv.ctx, &cs, &ss), 0);
    pkif_close_pair(cs, ss);
    pkif_peer_free(&expired);

    /* Not yet valid. */
    struct pkif_peer future =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 7200, 3600, false);
    assert_int_not_equal(pkif_handshake(future.ctx, srv.ctx, &cs, &ss), 0);
    pkif_close_pair(cs, ss);
    pkif_peer_free(&future);

    /* Same root, another trust domain: TLS succeeds, identity does not. */
    struct pkif_peer evil = pkif_peer(pkif.ca_a, pkif.ca_a, "evil.local", "client", 0, 3600, false);
    assert_int_equal(pkif_handshake(evil.ctx, srv.ctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "trust domain"));
    pkif_close_pair(cs, ss);
    pkif_peer_free(&evil);

    /* A server presenting the wrong service account. */
    struct pkif_peer cli =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
    assert_int_equal(pkif_handshake(cli.ctx, srv.ctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", "spiffe://cluster.local/ns/default/sa/db",
                                     id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "expected spiffe://cluster.local/ns/default/sa/db"));
    pkif_close_pair(cs, ss);
    pkif_peer_free(&cli);

    /* A client without any certificate. */
    SSL_CTX *anon = tls_fixture_ctx(false);
    SSL_CTX_set_verify(anon, SSL_VERIFY_NONE, NULL);
    assert_int_not_equal(pkif_handshake(anon, srv.ctx, &cs, &ss), 0);
    pkif_close_pair(cs, ss);
    SSL_CTX_free(anon);
    pkif_peer_free(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ca_layout_and_load_errors),
        cmocka_unit_test(leaf_profile),
        cmocka_unit_test(spiffe_parse_table),
        cmocka_unit_test(mutual_tls_accepts_the_right_peer),
        cmocka_unit_test(impersonation_is_refused),
    };
    return cmocka_run_group_tests(tests, pkif_setup, pkif_teardown);
}
