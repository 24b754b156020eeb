/* Workload identity (agent/pki/): the CA in Istio's layout, the leaf
 * profile, strict SPIFFE ids, and real TLS 1.3 mutual handshakes that
 * refuse impersonation: another root, another trust domain, an expired or
 * not-yet-valid certificate, a server with the wrong service account. */
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

#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "support/tls_fixture.h"

static char dir_a[64], dir_b[64];
static struct pki_ca *ca_a, *ca_b;
static char err[256];

static int setup(void **state)
{
    snprintf(dir_a, sizeof(dir_a), "/tmp/meshd-pki-XXXXXX");
    snprintf(dir_b, sizeof(dir_b), "/tmp/meshd-pki-XXXXXX");
    assert_non_null(mkdtemp(dir_a));
    assert_non_null(mkdtemp(dir_b));
    assert_int_equal(pki_ca_init_dir(dir_a, "cluster.local", false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_init_dir(dir_b, "cluster.local", false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(dir_a, &ca_a, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(dir_b, &ca_b, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    pki_ca_free(ca_a);
    pki_ca_free(ca_b);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir_a, dir_b);
    return system(cmd) == 0 ? 0 : -1;
}

static void ca_layout_and_load_errors(void **state)
{
    static const char *const files[] = {"ca-cert.pem", "ca-key.pem", "root-cert.pem",
                                        "cert-chain.pem"};
    char path[128];
    struct stat st;
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir_a, files[i]);
        assert_int_equal(stat(path, &st), 0);
    }
    snprintf(path, sizeof(path), "%s/ca-key.pem", dir_a);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No silent replacement of a mesh CA. */
    assert_int_equal(pki_ca_init_dir(dir_a, "cluster.local", false, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "refusing"));
    struct pki_ca *ca = NULL;
    assert_int_equal(pki_ca_load("/nonexistent/meshd-ca", &ca, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "ca-key.pem"));
    /* A key that does not match the certificate. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp %s/ca-key.pem %s/ca-key.pem.a && cp %s/ca-key.pem %s/ca-key.pem",
             dir_a, dir_a, dir_b, dir_a);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pki_ca_load(dir_a, &ca, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    snprintf(cmd, sizeof(cmd), "mv %s/ca-key.pem.a %s/ca-key.pem", dir_a, dir_a);
    assert_int_equal(system(cmd), 0);
    assert_null(ca);
}

static void leaf_profile(void **state)
{
    struct pki_cert *c;
    assert_int_equal(pki_issue(ca_a, "cluster.local", "default", "sa-1", 0, PKI_DEFAULT_TTL, &c),
                     0);
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
    assert_int_equal(pki_issue(ca_a, "cluster.local", "Default", "sa", 0, 60, &c), -EINVAL);
    assert_int_equal(pki_issue(ca_a, "cluster.local", "ns", "sa/../x", 0, 60, &c), -EINVAL);
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

/* Drives a client and a server SSL over a TCP pair until both finish or
 * one fails. Returns 0 when both handshakes completed. */
static int handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss)
{
    int c, s;
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    *cs = SSL_new(cctx);
    *ss = SSL_new(sctx);
    SSL_set_fd(*cs, c);
    SSL_set_fd(*ss, s);
    SSL_set_connect_state(*cs);
    SSL_set_accept_state(*ss);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 2000 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(*cs);
            int e = SSL_get_error(*cs, r);
            if (r == 1)
                cdone = 1;
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return -1;
        }
        if (!sdone) {
            int r = SSL_do_handshake(*ss);
            int e = SSL_get_error(*ss, r);
            if (r == 1)
                sdone = 1;
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return -1;
        }
        usleep(100);
    }
    /* TLS 1.3: the server learns of a bad client cert after the client
     * finished; read once so the alert is processed. */
    char b;
    SSL_read(*ss, &b, 1);
    return cdone && sdone && SSL_get_verify_result(*ss) == X509_V_OK ? 0 : -1;
}

static void close_pair(SSL *a, SSL *b)
{
    if (a) {
        close(SSL_get_fd(a));
        SSL_free(a);
    }
    if (b) {
        close(SSL_get_fd(b));
        SSL_free(b);
    }
}

struct peer {
    struct pki_cert *cert;
    SSL_CTX *ctx;
};

static struct peer peer(struct pki_ca *issuer, struct pki_ca *trust, const char *td, const char *sa,
                        long nb, long ttl, bool server)
{
    struct peer p;
    assert_int_equal(pki_issue(issuer, td, "default", sa, nb, ttl, &p.cert), 0);
    p.ctx = pki_tls_ctx(trust, p.cert, server);
    assert_non_null(p.ctx);
    return p;
}

static void peer_free(struct peer *p)
{
    SSL_CTX_free(p->ctx);
    pki_cert_unref(p->cert);
}

static void mutual_tls_accepts_the_right_peer(void **state)
{
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 3600, false);
    SSL *cs, *ss;
    assert_int_equal(handshake(cli.ctx, srv.ctx, &cs, &ss), 0);
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
    close_pair(cs, ss);
    peer_free(&srv);
    peer_free(&cli);
}

static void impersonation_is_refused(void **state)
{
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    char id[PKI_ID_MAX], why[160];
    SSL *cs, *ss;

    /* A client certificate from another root: the server refuses it. */
    struct peer other_root = peer(ca_b, ca_a, "cluster.local", "client", 0, 3600, false);
    assert_int_not_equal(handshake(other_root.ctx, srv.ctx, &cs, &ss), 0);
    close_pair(cs, ss);
    peer_free(&other_root);

    /* An expired client certificate. */
    struct peer expired = peer(ca_a, ca_a, "cluster.local", "client", -7200, 3600, false);
    assert_int_not_equal(handshake(expired.ctx, srv.ctx, &cs, &ss), 0);
    close_pair(cs, ss);
    peer_free(&expired);

    /* Not yet valid. */
    struct peer future = peer(ca_a, ca_a, "cluster.local", "client", 7200, 3600, false);
    assert_int_not_equal(handshake(future.ctx, srv.ctx, &cs, &ss), 0);
    close_pair(cs, ss);
    peer_free(&future);

    /* Same root, another trust domain: TLS succeeds, identity does not. */
    struct peer evil = peer(ca_a, ca_a, "evil.local", "client", 0, 3600, false);
    assert_int_equal(handshake(evil.ctx, srv.ctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "trust domain"));
    close_pair(cs, ss);
    peer_free(&evil);

    /* A server presenting the wrong service account. */
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 3600, false);
    assert_int_equal(handshake(cli.ctx, srv.ctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", "spiffe://cluster.local/ns/default/sa/db",
                                     id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "expected spiffe://cluster.local/ns/default/sa/db"));
    close_pair(cs, ss);
    peer_free(&cli);

    /* A client without any certificate. */
    SSL_CTX *anon = tls_fixture_ctx(false);
    SSL_CTX_set_verify(anon, SSL_VERIFY_NONE, NULL);
    assert_int_not_equal(handshake(anon, srv.ctx, &cs, &ss), 0);
    close_pair(cs, ss);
    SSL_CTX_free(anon);
    peer_free(&srv);
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
    return cmocka_run_group_tests(tests, setup, teardown);
}
