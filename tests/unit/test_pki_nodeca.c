/* Node CAs (agent/pki/): their profile and layout, strict node ids, chains
 * through them with pathlen:0, and the node authorizer (a node's leaf only
 * for identities of Pods on that node, over a real configuration snapshot)
 * on both ends of real TLS 1.3 handshakes; what a compromised node's key
 * cannot do beyond its own CA. */
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
#include "support/config_fixture.h"
#include "support/pki_fixture.h"
#include "support/tls_fixture.h"

static char err[256];

static EVP_PKEY *read_key(const char *dir)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/ca-key.pem", dir);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static X509 *read_pem_cert(const char *dir, const char *name)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(c);
    return c;
}

static void node_ca_profile_and_layout(void **state)
{
    assert_null(pki_ca_node(pkif.ca_a, NULL));
    const char *td;
    assert_string_equal(pki_ca_node(pkif.node_a, &td), "node-a");
    assert_string_equal(td, "cluster.local");
    /* The root is the mesh root, not the node CA: peers trust only it. */
    assert_int_equal(X509_cmp(pki_ca_root(pkif.node_a), pki_ca_root(pkif.ca_a)), 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local", pkif.dir_a);
    X509 *c = read_pem_cert(path, "ca-cert.pem");
    assert_int_equal(X509_check_ca(c), 1);
    assert_int_equal(X509_get_pathlen(c), 0);
    assert_true(X509_get_key_usage(c) & KU_KEY_CERT_SIGN);
    char id[PKI_ID_MAX];
    assert_int_equal(pki_cert_spiffe_id(c, id, sizeof(id)), 0);
    assert_string_equal(id, "spiffe://cluster.local/meshd/node/node-a");
    /* Short-lived next to the root: an hour here, as asked. */
    int days, secs;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)),
                     1);
    assert_in_range(days * 86400 + secs, 3600, 3600 + 600);
    /* A leaf asked for longer than the node CA lives ends with it. */
    struct pki_cert *lc;
    assert_int_equal(pki_issue(pkif.node_a, "cluster.local", "default", "web", 0, 7200, &lc), 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(lc->leaf), NULL) > 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(lc->leaf), X509_get0_notAfter(c)), 0);
    assert_in_range(lc->not_after - time(NULL), 3500, 3600);
    pki_cert_unref(lc);
    /* Sent after each leaf: exactly the node CA (the root stays home). */
    assert_int_equal(sk_X509_num(pki_ca_path(pkif.node_a)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(pki_ca_path(pkif.node_a), 0), c), 0);
    X509_free(c);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local/cert-chain.pem", pkif.dir_a);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local/ca-key.pem", pkif.dir_a);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Refused: a node CA under a node CA, a bad node name, replacing one. */
    char out[160];
    snprintf(out, sizeof(out), "%s/node-x", pkif.dir_a);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local", pkif.dir_a);
    assert_int_equal(pki_ca_init_node(path, "x", "cluster.local", 60, out, false, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "is a node CA"));
    assert_int_equal(
        pki_ca_init_node(pkif.dir_a, "Node_A", "cluster.local", 60, out, false, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        pki_ca_init_node(pkif.dir_a, "node-a", "cluster.local", 60, path, false, err, sizeof(err)),
        -EEXIST);
    /* A node CA dir whose chain is not the root's fails to load. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp -r %s %s && cp %s/root-cert.pem %s/root-cert.pem", path, out,
             pkif.dir_b, out);
    assert_int_equal(system(cmd), 0);
    struct pki_ca *bad = NULL;
    assert_int_equal(pki_ca_load(out, &bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not chain to root-cert.pem"));
    assert_null(bad);
}

static void node_id_parse_table(void **state)
{
    static const struct {
        const char *id, *td, *node;
    } rows[] = {
        {"spiffe://cluster.local/meshd/node/node-a", "cluster.local", "node-a"},
        {"spiffe://td.example/meshd/node/ip-10-0-0-1.ec2.internal", "td.example",
         "ip-10-0-0-1.ec2.internal"},
        {"spiffe://cluster.local/meshd/node/", NULL, NULL},
        {"spiffe://cluster.local/meshd/node/node-a/", NULL, NULL},
        {"spiffe://cluster.local/meshd/node/Node-A", NULL, NULL},
        {"spiffe://cluster.local/x/meshd/node/node-a", NULL, NULL},
        {"spiffe:///meshd/node/node-a", NULL, NULL},
        {"spiffe://cluster.local/ns/default/sa/node-a", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char td[256], node[PKI_NODE_MAX + 1];
        int rc = pki_node_id_parse(rows[i].id, td, sizeof(td), node, sizeof(node));
        if ((rc == 0) != (rows[i].node != NULL))
            fail_msg("%s: expected %s", rows[i].id, rows[i].node ? "valid" : "refused");
        if (rows[i].node) {
            assert_string_equal(td, rows[i].td);
            assert_string_equal(node, rows[i].node);
        }
    }
}

/* The configuration the node authorizer reads: web runs on node-a, db on
 * node-b, and a Pod of node-a in another namespace runs as db too. */
static const char pods_yaml[] =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: default}\n"
    "spec: {nodeName: node-a, serviceAccountName: web}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: db-1, namespace: default}\n"
    "spec: {nodeName: node-b, serviceAccountName: db}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: db-2, namespace: other}\n"
    "spec: {nodeName: node-a, serviceAccountName: db}\n";

static bool snapshot_runs(void *ctx, const char *node, const char *ns, const char *sa)
{
    return cfg_pod_identity_on_node(ctx, node, ns, sa) != NULL;
}

static void node_authorizer_index(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, pods_yaml);
    const struct cfg_workload *w = cfg_pod_identity_on_node(f.snap, "node-a", "default", "web");
    assert_non_null(w);
    assert_string_equal(w->name, "web-1");
    assert_null(cfg_pod_identity_on_node(f.snap, "node-b", "default", "web"));
    assert_null(cfg_pod_identity_on_node(f.snap, "node-a", "default", "db"));
    assert_non_null(cfg_pod_identity_on_node(f.snap, "node-a", "other", "db"));
    /* The key's parts cannot run into each other. */
    assert_null(cfg_pod_identity_on_node(f.snap, "node-a", "defaultweb", ""));
    cfg_fixture_free(&f);
}

/* Mutual handshakes where the client's leaf comes from `issuer`: the
 * server side verifies it and asks the node authorizer. */
static void node_authorizer_on_the_server(void **state)
{
    static const struct {
        const char *name;
        int issuer; /* 0: the mesh root (legacy), 1: node-a, 2: node-b */
        const char *ns, *sa;
        bool ok;
        const char *node; /* what the authorizer reports */
    } rows[] = {
        {"node-a's leaf for a pod on node-a", 1, "default", "web", true, "node-a"},
        {"node-a's leaf for a pod only on node-b", 1, "default", "db", false, "node-a"},
        {"node-b's leaf for its own pod", 2, "default", "db", true, "node-b"},
        {"node-b's leaf for node-a's pod", 2, "default", "web", false, "node-b"},
        {"same service account, other namespace", 1, "other", "db", true, "node-a"},
        {"a service account no pod runs as", 1, "default", "admin", false, "node-a"},
        {"legacy: the mesh root signed it", 0, "default", "db", true, ""},
    };
    struct pki_ca *const issuers[] = {pkif.ca_a, pkif.node_a, pkif.node_b};
    struct cfg_fixture f;
    cfg_fixture_load(&f, pods_yaml);
    struct pki_cert *sc;
    assert_int_equal(pki_issue(pkif.node_a, "cluster.local", "default", "web", 0, 3600, &sc), 0);
    SSL_CTX *sctx = pki_tls_ctx(pkif.node_a, sc, true);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct pki_cert *cc;
        assert_int_equal(pki_issue(issuers[rows[i].issuer], "cluster.local", rows[i].ns, rows[i].sa,
                                   0, 3600, &cc),
                         0);
        /* Any side's context trusts the same root: use the mesh CA's. */
        SSL_CTX *cctx = pki_tls_ctx(issuers[rows[i].issuer], cc, false);
        SSL *cs, *ss;
        if (pkif_handshake(cctx, sctx, &cs, &ss) != 0)
            fail_msg("%s: the chain did not verify", rows[i].name);
        char id[PKI_ID_MAX], why[256] = "", node[PKI_NODE_MAX + 1];
        assert_int_equal(
            pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)), 0);
        int rc = pki_authorize_node(ss, "cluster.local", id, snapshot_runs, f.snap, node,
                                    sizeof(node), why, sizeof(why));
        if ((rc == 0) != rows[i].ok)
            fail_msg("%s: expected %s (%s)", rows[i].name, rows[i].ok ? "accepted" : "refused",
                     why);
        assert_string_equal(node, rows[i].node);
        if (!rows[i].ok)
            assert_non_null(strstr(why, "no pod on node"));
        pkif_close_pair(cs, ss);
        SSL_CTX_free(cctx);
        pki_cert_unref(cc);
    }
    SSL_CTX_free(sctx);
    pki_cert_unref(sc);
    cfg_fixture_free(&f);
}

/* The client verifying the server: node-a cannot serve as node-b's db. */
static void node_authorizer_on_the_client(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, pods_yaml);
    struct pki_cert *forged, *real, *cc;
    assert_int_equal(pki_issue(pkif.node_a, "cluster.local", "default", "db", 0, 3600, &forged), 0);
    assert_int_equal(pki_issue(pkif.node_b, "cluster.local", "default", "db", 0, 3600, &real), 0);
    assert_int_equal(pki_issue(pkif.node_a, "cluster.local", "default", "web", 0, 3600, &cc), 0);
    SSL_CTX *cctx = pki_tls_ctx(pkif.node_a, cc, false);
    SSL_CTX *fctx = pki_tls_ctx(pkif.node_a, forged, true),
            *rctx = pki_tls_ctx(pkif.node_b, real, true);
    const char *want = "spiffe://cluster.local/ns/default/sa/db";
    char id[PKI_ID_MAX], why[256], node[PKI_NODE_MAX + 1];
    SSL *cs, *ss;

    assert_int_equal(pkif_handshake(cctx, rctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", want, id, sizeof(id), why, sizeof(why)),
                     0);
    assert_int_equal(pki_authorize_node(cs, "cluster.local", id, snapshot_runs, f.snap, node,
                                        sizeof(node), why, sizeof(why)),
                     0);
    assert_string_equal(node, "node-b");
    pkif_close_pair(cs, ss);

    assert_int_equal(pkif_handshake(cctx, fctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", want, id, sizeof(id), why, sizeof(why)),
                     0); /* the chain and the SAN alone would pass */
    assert_int_equal(pki_authorize_node(cs, "cluster.local", id, snapshot_runs, f.snap, node,
                                        sizeof(node), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "no pod on node node-a runs as default/db, yet that node's CA"));
    pkif_close_pair(cs, ss);

    SSL_CTX_free(cctx);
    SSL_CTX_free(fctx);
    SSL_CTX_free(rctx);
    pki_cert_unref(forged);
    pki_cert_unref(real);
    pki_cert_unref(cc);
    cfg_fixture_free(&f);
}

/* A certificate for `key` signed by issuer/ikey with extensions `ext`
 * (NULL-terminated nid, value pairs). */
static X509 *sign_cert(X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, const char *cn, const int *nids,
                       const char *const *values)
{
    X509 *c = X509_new();
    assert_non_null(c);
    ASN1_INTEGER_set(X509_get_serialNumber(c), rand());
    X509_set_version(c, 2);
    X509_gmtime_adj(X509_getm_notBefore(c), -300);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600);
    X509_set_pubkey(c, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(issuer));
    for (size_t i = 0; nids[i]; i++) {
        X509V3_CTX v;
        X509V3_set_ctx(&v, issuer, c, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nids[i], values[i]);
        assert_non_null(e);
        X509_add_ext(c, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(c, ikey, EVP_sha256()) > 0);
    return c;
}

static SSL_CTX *client_ctx(X509 *leaf, EVP_PKEY *key, X509 *const *chain, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_use_certificate(ctx, leaf), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(SSL_CTX_add1_chain_cert(ctx, chain[i]), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3);
    return ctx;
}

/* What a compromised node could try with its key beyond signing leaves:
 * make a CA under its own (pathlen:0 forbids it), present its node CA as
 * a workload certificate, or sign for another trust domain. */
static void compromised_node_cannot_escape_its_ca(void **state)
{
    char ndir[160];
    snprintf(ndir, sizeof(ndir), "%s/node-node-a-cluster.local", pkif.dir_a);
    EVP_PKEY *nkey = read_key(ndir);
    X509 *ncert = read_pem_cert(ndir, "ca-cert.pem");
    struct pki_cert *sc;
    assert_int_equal(pki_issue(pkif.node_b, "cluster.local", "default", "db", 0, 3600, &sc), 0);
    SSL_CTX *sctx = pki_tls_ctx(pkif.node_b, sc, true);
    SSL *cs, *ss;
    char id[PKI_ID_MAX], why[256];

    /* A CA under node-a's (for a fresh, "unconstrained" node): pathlen. */
    EVP_PKEY *subkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *leafkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_alt_name, 0};
    static const char *const ca_vals[] = {"critical,CA:TRUE", "critical,keyCertSign",
                                          "URI:spiffe://cluster.local/meshd/node/node-b"};
    X509 *sub = sign_cert(ncert, nkey, subkey, "sub CA", ca_nids, ca_vals);
    static const int leaf_nids[] = {NID_basic_constraints, NID_subject_alt_name, 0};
    static const char *const leaf_vals[] = {"critical,CA:FALSE",
                                            "URI:spiffe://cluster.local/ns/default/sa/db"};
    X509 *leaf = sign_cert(sub, subkey, leafkey, "db", leaf_nids, leaf_vals);
    X509 *chain[] = {sub, ncert};
    SSL_CTX *cctx = client_ctx(leaf, leafkey, chain, 2);
    assert_int_not_equal(pkif_handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(SSL_get_verify_result(ss), X509_V_ERR_PATH_LENGTH_EXCEEDED);
    pkif_close_pair(cs, ss);
    SSL_CTX_free(cctx);

    /* The node CA itself as a client certificate: refused by the chain
     * check (no digitalSignature for TLS client use). */
    cctx = client_ctx(ncert, nkey, NULL, 0);
    assert_int_not_equal(pkif_handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_not_equal(SSL_get_verify_result(ss), X509_V_OK);
    pkif_close_pair(cs, ss);
    SSL_CTX_free(cctx);

    /* A CA certificate with a workload id as the end entity (chains, as
     * pathlen counts only the CAs in between): a CA is no workload. */
    static const int caleaf_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_alt_name,
                                      0};
    static const char *const caleaf_vals[] = {"critical,CA:TRUE",
                                              "critical,digitalSignature,keyCertSign",
                                              "URI:spiffe://cluster.local/ns/default/sa/web"};
    X509 *caleaf = sign_cert(ncert, nkey, leafkey, "web", caleaf_nids, caleaf_vals);
    cctx = client_ctx(caleaf, leafkey, &ncert, 1);
    assert_int_equal(pkif_handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "is a CA"));
    pkif_close_pair(cs, ss);
    SSL_CTX_free(cctx);
    X509_free(caleaf);

    /* A node CA of another trust domain signing this one's identities. */
    struct pki_ca *evil = pkif_node_ca("node-a", "evil.local");
    struct pki_cert *ec;
    assert_int_equal(pki_issue(evil, "cluster.local", "default", "web", 0, 3600, &ec), 0);
    cctx = pki_tls_ctx(evil, ec, false);
    assert_int_equal(pkif_handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     0);
    char node[PKI_NODE_MAX + 1];
    assert_int_equal(pki_authorize_node(ss, "cluster.local", id, NULL, NULL, node, sizeof(node),
                                        why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "evil.local"));
    pkif_close_pair(cs, ss);
    SSL_CTX_free(cctx);
    pki_cert_unref(ec);
    pki_ca_free(evil);

    X509_free(leaf);
    X509_free(sub);
    EVP_PKEY_free(leafkey);
    EVP_PKEY_free(subkey);
    X509_free(ncert);
    EVP_PKEY_free(nkey);
    SSL_CTX_free(sctx);
    pki_cert_unref(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_ca_profile_and_layout),
        cmocka_unit_test(node_id_parse_table),
        cmocka_unit_test(node_authorizer_index),
        cmocka_unit_test(node_authorizer_on_the_server),
        cmocka_unit_test(node_authorizer_on_the_client),
        cmocka_unit_test(compromised_node_cannot_escape_its_ca),
    };
    return cmocka_run_group_tests(tests, pkif_setup, pkif_teardown);
}
