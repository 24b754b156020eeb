/* Test support for the pki tests (test_pki*.c): two mesh CAs in temporary
 * directories with two node CAs under the first, TLS pairs over loopback
 * TCP driven to the end of their handshakes, and issued peers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "support/pki_fixture.h"
#include "support/tls_fixture.h"

struct pki_fixture pkif;
static char err[256];

struct pki_ca *pkif_node_ca(const char *node, const char *td)
{
    char out[128];
    struct pki_ca *ca;
    snprintf(out, sizeof(out), "%s/node-%s-%s", pkif.dir_a, node, td);
    assert_int_equal(pki_ca_init_node(pkif.dir_a, node, td, 3600, out, false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(out, &ca, err, sizeof(err)), 0);
    return ca;
}

int pkif_setup(void **state)
{
    snprintf(pkif.dir_a, sizeof(pkif.dir_a), "/tmp/meshd-pki-XXXXXX");
    snprintf(pkif.dir_b, sizeof(pkif.dir_b), "/tmp/meshd-pki-XXXXXX");
    assert_non_null(mkdtemp(pkif.dir_a));
    assert_non_null(mkdtemp(pkif.dir_b));
    assert_int_equal(pki_ca_init_dir(pkif.dir_a, "cluster.local", false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_init_dir(pkif.dir_b, "cluster.local", false, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(pkif.dir_a, &pkif.ca_a, err, sizeof(err)), 0);
    assert_int_equal(pki_ca_load(pkif.dir_b, &pkif.ca_b, err, sizeof(err)), 0);
    pkif.node_a = pkif_node_ca("node-a", "cluster.local");
    pkif.node_b = pkif_node_ca("node-b", "cluster.local");
    return 0;
}

int pkif_teardown(void **state)
{
    pki_ca_free(pkif.ca_a);
    pki_ca_free(pkif.ca_b);
    pki_ca_free(pkif.node_a);
    pki_ca_free(pkif.node_b);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", pkif.dir_a, pkif.dir_b);
    return system(cmd) == 0 ? 0 : -1;
}

/* A client and a server SSL on the two ends of a TCP pair, not started. */
void pkif_tls_pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss)
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
int pkif_drive_handshake(SSL **cs, SSL **ss)
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

int pkif_handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss)
{
    pkif_tls_pair(cctx, sctx, cs, ss);
    return pkif_drive_handshake(cs, ss);
}

void pkif_close_pair(SSL *a, SSL *b)
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

struct pkif_peer pkif_peer(struct pki_ca *issuer, struct pki_ca *trust, const char *td,
                           const char *sa, long nb, long ttl, bool server)
{
    struct pkif_peer p;
    assert_int_equal(pki_issue(issuer, td, "default", sa, nb, ttl, &p.cert), 0);
    p.ctx = pki_tls_ctx(trust, p.cert, server);
    assert_non_null(p.ctx);
    return p;
}

void pkif_peer_free(struct pkif_peer *p)
{
    SSL_CTX_free(p->ctx);
    pki_cert_unref(p->cert);
}
