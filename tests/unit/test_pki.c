/* Workload identity (agent/pki/): the CA in Istio's layout, the leaf
 * profile, strict SPIFFE ids, and real TLS 1.3 mutual handshakes that
 * refuse impersonation: another root, another trust domain, an expired or
 * not-yet-valid certificate, a server with the wrong service account; and
 * no session resumption, so a later connection cannot ride on an earlier
 * verification (each check has a control with OpenSSL's defaults). */
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
        cmocka_unit_test(server_issues_no_session_ticket),
        cmocka_unit_test(client_stores_no_session),
        cmocka_unit_test(resumption_attempt_gets_a_full_handshake_and_verification),
        cmocka_unit_test(expired_certificate_is_refused_after_a_valid_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
