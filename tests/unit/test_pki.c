/* Workload identity (agent/pki/): the CA in Istio's layout, the leaf
 * profile, strict SPIFFE ids, and real TLS 1.3 mutual handshakes that
 * refuse impersonation: another root, another trust domain, an expired or
 * not-yet-valid certificate, a server with the wrong service account; no
 * session resumption, so a later connection cannot ride on an earlier
 * verification (each check has a control with OpenSSL's defaults).
 * Node CAs: their profile, chains through them, pathlen:0, and the node
 * authorizer (a node's leaf only for identities of Pods on that node, over
 * a real configuration snapshot) on both ends of the handshake. */
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
#include "support/tls_fixture.h"

static char dir_a[64], dir_b[64];
static struct pki_ca *ca_a, *ca_b;
static struct pki_ca *node_a, *node_b; /* node CAs under ca_a */
static char err[256];

static struct pki_ca *make_node_ca(const char *node, const char *td)
{
    char out[128];
    struct pki_ca *ca;
    snprintf(out, sizeof(out), "%s/node-%s-%s", dir_a, node, td);
    assert_int_equal(pki_ca_init_node(dir_a, node, td, 3600, out, false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(out, &ca, err, sizeof(err)), 0);
    return ca;
}

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
    node_a = make_node_ca("node-a", "cluster.local");
    node_b = make_node_ca("node-b", "cluster.local");
    return 0;
}

static int teardown(void **state)
{
    pki_ca_free(ca_a);
    pki_ca_free(ca_b);
    pki_ca_free(node_a);
    pki_ca_free(node_b);
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

/* A client and a server SSL on the two ends of a TCP pair, not started. */
static void tls_pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss)
{
    int c, s;
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    *cs = SSL_new(cctx);
    *ss = SSL_new(sctx);
    assert_non_null(*cs);
    assert_non_null(*ss);
    SSL_set_fd(*cs, c);
    SSL_set_fd(*ss, s);
    SSL_set_connect_state(*cs);
    SSL_set_accept_state(*ss);
}

/* Drives both ends until both handshakes finish or one fails. Returns 0
 * when both completed and the server accepted the client's chain. */
static int drive_handshake(SSL **cs, SSL **ss)
{
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

static int handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss)
{
    tls_pair(cctx, sctx, cs, ss);
    return drive_handshake(cs, ss);
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

/* ---- node CAs ---- */

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
    assert_null(pki_ca_node(ca_a, NULL));
    const char *td;
    assert_string_equal(pki_ca_node(node_a, &td), "node-a");
    assert_string_equal(td, "cluster.local");
    /* The root is the mesh root, not the node CA: peers trust only it. */
    assert_int_equal(X509_cmp(pki_ca_root(node_a), pki_ca_root(ca_a)), 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local", dir_a);
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
    assert_int_equal(pki_issue(node_a, "cluster.local", "default", "web", 0, 7200, &lc), 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(lc->leaf), NULL) > 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(lc->leaf), X509_get0_notAfter(c)), 0);
    assert_in_range(lc->not_after - time(NULL), 3500, 3600);
    pki_cert_unref(lc);
    /* Sent after each leaf: exactly the node CA (the root stays home). */
    assert_int_equal(sk_X509_num(pki_ca_path(node_a)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(pki_ca_path(node_a), 0), c), 0);
    X509_free(c);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local/cert-chain.pem", dir_a);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local/ca-key.pem", dir_a);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Refused: a node CA under a node CA, a bad node name, replacing one. */
    char out[160];
    snprintf(out, sizeof(out), "%s/node-x", dir_a);
    snprintf(path, sizeof(path), "%s/node-node-a-cluster.local", dir_a);
    assert_int_equal(pki_ca_init_node(path, "x", "cluster.local", 60, out, false, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "is a node CA"));
    assert_int_equal(
        pki_ca_init_node(dir_a, "Node_A", "cluster.local", 60, out, false, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        pki_ca_init_node(dir_a, "node-a", "cluster.local", 60, path, false, err, sizeof(err)),
        -EEXIST);
    /* A node CA dir whose chain is not the root's fails to load. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp -r %s %s && cp %s/root-cert.pem %s/root-cert.pem", path, out,
             dir_b, out);
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
    struct pki_ca *const issuers[] = {ca_a, node_a, node_b};
    struct cfg_fixture f;
    cfg_fixture_load(&f, pods_yaml);
    struct pki_cert *sc;
    assert_int_equal(pki_issue(node_a, "cluster.local", "default", "web", 0, 3600, &sc), 0);
    SSL_CTX *sctx = pki_tls_ctx(node_a, sc, true);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct pki_cert *cc;
        assert_int_equal(pki_issue(issuers[rows[i].issuer], "cluster.local", rows[i].ns, rows[i].sa,
                                   0, 3600, &cc),
                         0);
        /* Any side's context trusts the same root: use the mesh CA's. */
        SSL_CTX *cctx = pki_tls_ctx(issuers[rows[i].issuer], cc, false);
        SSL *cs, *ss;
        if (handshake(cctx, sctx, &cs, &ss) != 0)
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
        close_pair(cs, ss);
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
    assert_int_equal(pki_issue(node_a, "cluster.local", "default", "db", 0, 3600, &forged), 0);
    assert_int_equal(pki_issue(node_b, "cluster.local", "default", "db", 0, 3600, &real), 0);
    assert_int_equal(pki_issue(node_a, "cluster.local", "default", "web", 0, 3600, &cc), 0);
    SSL_CTX *cctx = pki_tls_ctx(node_a, cc, false);
    SSL_CTX *fctx = pki_tls_ctx(node_a, forged, true), *rctx = pki_tls_ctx(node_b, real, true);
    const char *want = "spiffe://cluster.local/ns/default/sa/db";
    char id[PKI_ID_MAX], why[256], node[PKI_NODE_MAX + 1];
    SSL *cs, *ss;

    assert_int_equal(handshake(cctx, rctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", want, id, sizeof(id), why, sizeof(why)),
                     0);
    assert_int_equal(pki_authorize_node(cs, "cluster.local", id, snapshot_runs, f.snap, node,
                                        sizeof(node), why, sizeof(why)),
                     0);
    assert_string_equal(node, "node-b");
    close_pair(cs, ss);

    assert_int_equal(handshake(cctx, fctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(cs, "cluster.local", want, id, sizeof(id), why, sizeof(why)),
                     0); /* the chain and the SAN alone would pass */
    assert_int_equal(pki_authorize_node(cs, "cluster.local", id, snapshot_runs, f.snap, node,
                                        sizeof(node), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "no pod on node node-a runs as default/db, yet that node's CA"));
    close_pair(cs, ss);

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
    snprintf(ndir, sizeof(ndir), "%s/node-node-a-cluster.local", dir_a);
    EVP_PKEY *nkey = read_key(ndir);
    X509 *ncert = read_pem_cert(ndir, "ca-cert.pem");
    struct pki_cert *sc;
    assert_int_equal(pki_issue(node_b, "cluster.local", "default", "db", 0, 3600, &sc), 0);
    SSL_CTX *sctx = pki_tls_ctx(node_b, sc, true);
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
    assert_int_not_equal(handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(SSL_get_verify_result(ss), X509_V_ERR_PATH_LENGTH_EXCEEDED);
    close_pair(cs, ss);
    SSL_CTX_free(cctx);

    /* The node CA itself as a client certificate: refused by the chain
     * check (no digitalSignature for TLS client use). */
    cctx = client_ctx(ncert, nkey, NULL, 0);
    assert_int_not_equal(handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_not_equal(SSL_get_verify_result(ss), X509_V_OK);
    close_pair(cs, ss);
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
    assert_int_equal(handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "is a CA"));
    close_pair(cs, ss);
    SSL_CTX_free(cctx);
    X509_free(caleaf);

    /* A node CA of another trust domain signing this one's identities. */
    struct pki_ca *evil = make_node_ca("node-a", "evil.local");
    struct pki_cert *ec;
    assert_int_equal(pki_issue(evil, "cluster.local", "default", "web", 0, 3600, &ec), 0);
    cctx = pki_tls_ctx(evil, ec, false);
    assert_int_equal(handshake(cctx, sctx, &cs, &ss), 0);
    assert_int_equal(pki_verify_peer(ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     0);
    char node[PKI_NODE_MAX + 1];
    assert_int_equal(pki_authorize_node(ss, "cluster.local", id, NULL, NULL, node, sizeof(node),
                                        why, sizeof(why)),
                     -EPERM);
    assert_non_null(strstr(why, "evil.local"));
    close_pair(cs, ss);
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

/* ---- Session resumption: off, so every connection verifies its peer ---- */

static int server_verifies, client_verifies;

static int count_server_verify(int ok, X509_STORE_CTX *x)
{
    (void)x;
    server_verifies++;
    return ok;
}

static int count_client_verify(int ok, X509_STORE_CTX *x)
{
    (void)x;
    client_verifies++;
    return ok;
}

/* Counts the NewSessionTicket messages a client receives. */
static void count_tickets(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
                          void *arg)
{
    (void)version;
    (void)ssl;
    if (!write_p && type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const unsigned char *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
        (*(int *)arg)++;
}

/* OpenSSL's defaults (and meshd's before): tickets issued, sessions cached.
 * Used for the attacker's client, and for control servers that show each
 * check below can fail. A server that resumes sessions of verified clients
 * must name a session id context; without one OpenSSL aborts the handshake
 * of any client offering a ticket ("session id context uninitialized"),
 * which is what meshd's old server did: fail-closed by accident, one
 * set_session_id_context away from the bypass. */
static void allow_resumption(SSL_CTX *ctx, bool server)
{
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    assert_int_equal(SSL_CTX_set_num_tickets(ctx, 2), 1);
    SSL_CTX_set_session_cache_mode(ctx, server ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_CLIENT);
    if (server)
        assert_int_equal(SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hbone", 5), 1);
}

struct conn {
    SSL *cs, *ss;
    bool ok;
    int tickets;                          /* NewSessionTickets the client got */
    int server_verifies, client_verifies; /* verify callback calls */
};

/* One connection over loopback TCP, offering `resume` when not NULL. The
 * server then sends a byte, so the client reads the tickets (TLS 1.3
 * sends them after the handshake). */
static struct conn connect_once(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *resume)
{
    struct conn c = {0};
    tls_pair(cctx, sctx, &c.cs, &c.ss);
    SSL_set_msg_callback(c.cs, count_tickets);
    SSL_set_msg_callback_arg(c.cs, &c.tickets);
    SSL_set_verify(c.ss, SSL_get_verify_mode(c.ss), count_server_verify);
    SSL_set_verify(c.cs, SSL_get_verify_mode(c.cs), count_client_verify);
    if (resume)
        assert_int_equal(SSL_set_session(c.cs, resume), 1);
    server_verifies = client_verifies = 0;
    c.ok = drive_handshake(&c.cs, &c.ss) == 0;
    c.server_verifies = server_verifies;
    c.client_verifies = client_verifies;
    if (c.ok) {
        char b = 0;
        assert_int_equal(SSL_write(c.ss, "x", 1), 1);
        for (int i = 0; i < 2000 && SSL_read(c.cs, &b, 1) != 1; i++)
            usleep(100);
        assert_int_equal(b, 'x');
    }
    return c;
}

/* A clean close: OpenSSL marks the session of an SSL freed without
 * close_notify not resumable, which would make the controls vacuous. */
static void conn_close(struct conn *c)
{
    if (c->ok) {
        SSL_shutdown(c->cs);
        SSL_shutdown(c->ss);
    }
    close_pair(c->cs, c->ss);
}

static void server_issues_no_session_ticket(void **state)
{
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 3600, false);
    allow_resumption(cli.ctx, false); /* a client that would keep one */

    struct conn c = connect_once(cli.ctx, srv.ctx, NULL);
    assert_true(c.ok);
    assert_int_equal(c.tickets, 0);
    SSL_SESSION *sess = SSL_get1_session(c.cs);
    assert_false(SSL_SESSION_is_resumable(sess));
    SSL_SESSION_free(sess);
    conn_close(&c);
    assert_true(SSL_CTX_get_options(srv.ctx) & SSL_OP_NO_TICKET);
    assert_int_equal(SSL_CTX_get_num_tickets(srv.ctx), 0);
    assert_int_equal(SSL_CTX_get_session_cache_mode(srv.ctx), SSL_SESS_CACHE_OFF);

    /* Control: the same server with OpenSSL's defaults hands one out. */
    allow_resumption(srv.ctx, true);
    c = connect_once(cli.ctx, srv.ctx, NULL);
    assert_true(c.ok);
    assert_true(c.tickets >= 1);
    sess = SSL_get1_session(c.cs);
    assert_true(SSL_SESSION_is_resumable(sess));
    SSL_SESSION_free(sess);
    conn_close(&c);
    peer_free(&srv);
    peer_free(&cli);
}

static void client_stores_no_session(void **state)
{
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 3600, false);
    allow_resumption(srv.ctx, true); /* a server that sends tickets anyway */

    struct conn c = connect_once(cli.ctx, srv.ctx, NULL);
    assert_true(c.ok);
    assert_true(c.tickets >= 1);
    assert_int_equal(SSL_CTX_sess_number(cli.ctx), 0); /* nothing kept to offer later */
    conn_close(&c);
    assert_true(SSL_CTX_get_options(cli.ctx) & SSL_OP_NO_TICKET);
    assert_int_equal(SSL_CTX_get_session_cache_mode(cli.ctx), SSL_SESS_CACHE_OFF);

    /* Control: a caching client context keeps the ticket's session. */
    allow_resumption(cli.ctx, false);
    c = connect_once(cli.ctx, srv.ctx, NULL);
    assert_true(c.ok);
    assert_true(SSL_CTX_sess_number(cli.ctx) >= 1);
    conn_close(&c);
    peer_free(&srv);
    peer_free(&cli);
}

static void resumption_attempt_gets_a_full_handshake_and_verification(void **state)
{
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 3600, false);
    allow_resumption(cli.ctx, false);

    struct conn first = connect_once(cli.ctx, srv.ctx, NULL);
    assert_true(first.ok);
    assert_true(first.server_verifies > 0 && first.client_verifies > 0);
    SSL_SESSION *saved = SSL_get1_session(first.cs);
    struct conn again = connect_once(cli.ctx, srv.ctx, saved);
    assert_true(again.ok);
    assert_int_equal(SSL_session_reused(again.cs), 0);
    assert_int_equal(SSL_session_reused(again.ss), 0);
    assert_true(again.server_verifies > 0); /* the client's chain, checked anew */
    assert_true(again.client_verifies > 0); /* and the server's */
    SSL_SESSION_free(saved);
    conn_close(&first);
    conn_close(&again);

    /* Control: with resumption on, the second handshake checks nothing. */
    struct peer old = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    allow_resumption(old.ctx, true);
    first = connect_once(cli.ctx, old.ctx, NULL);
    saved = SSL_get1_session(first.cs);
    again = connect_once(cli.ctx, old.ctx, saved);
    assert_true(again.ok);
    assert_int_equal(SSL_session_reused(again.cs), 1);
    assert_int_equal(again.server_verifies, 0);
    SSL_SESSION_free(saved);
    conn_close(&first);
    conn_close(&again);
    peer_free(&old);
    peer_free(&srv);
    peer_free(&cli);
}

static void expired_certificate_is_refused_after_a_valid_connection(void **state)
{
    char id[PKI_ID_MAX], why[160];
    struct peer srv = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    struct peer old = peer(ca_a, ca_a, "cluster.local", "server", 0, 3600, true);
    allow_resumption(old.ctx, true); /* the control: resumption on */
    /* A client certificate valid for two more seconds. */
    struct peer cli = peer(ca_a, ca_a, "cluster.local", "client", 0, 2, false);
    allow_resumption(cli.ctx, false);

    struct conn a = connect_once(cli.ctx, srv.ctx, NULL), b = connect_once(cli.ctx, old.ctx, NULL);
    assert_true(a.ok && b.ok);
    assert_int_equal(pki_verify_peer(a.ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     0);
    SSL_SESSION *sa = SSL_get1_session(a.cs), *sb = SSL_get1_session(b.cs);
    conn_close(&a);
    conn_close(&b);
    for (int i = 0; i < 6 && time(NULL) <= cli.cert->not_after; i++)
        sleep(1);
    assert_true(time(NULL) > cli.cert->not_after);

    /* meshd's server: a full handshake, and the expired chain is refused. */
    a = connect_once(cli.ctx, srv.ctx, sa);
    assert_false(a.ok);
    assert_int_equal(SSL_get_verify_result(a.ss), X509_V_ERR_CERT_HAS_EXPIRED);
    conn_close(&a);

    /* Control: a resuming server lets the expired certificate through and
     * the identity check passes on the stale verdict. */
    b = connect_once(cli.ctx, old.ctx, sb);
    assert_true(b.ok);
    assert_int_equal(SSL_session_reused(b.ss), 1);
    assert_int_equal(pki_verify_peer(b.ss, "cluster.local", NULL, id, sizeof(id), why, sizeof(why)),
                     0);
    conn_close(&b);
    SSL_SESSION_free(sa);
    SSL_SESSION_free(sb);
    peer_free(&old);
    peer_free(&srv);
    peer_free(&cli);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ca_layout_and_load_errors),
        cmocka_unit_test(leaf_profile),
        cmocka_unit_test(spiffe_parse_table),
        cmocka_unit_test(mutual_tls_accepts_the_right_peer),
        cmocka_unit_test(impersonation_is_refused),
        cmocka_unit_test(node_ca_profile_and_layout),
        cmocka_unit_test(node_id_parse_table),
        cmocka_unit_test(node_authorizer_index),
        cmocka_unit_test(node_authorizer_on_the_server),
        cmocka_unit_test(node_authorizer_on_the_client),
        cmocka_unit_test(compromised_node_cannot_escape_its_ca),
        cmocka_unit_test(server_issues_no_session_ticket),
        cmocka_unit_test(client_stores_no_session),
        cmocka_unit_test(resumption_attempt_gets_a_full_handshake_and_verification),
        cmocka_unit_test(expired_certificate_is_refused_after_a_valid_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
