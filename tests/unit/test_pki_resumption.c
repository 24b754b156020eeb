/* No TLS session resumption (agent/pki/): meshd's contexts issue no
 * tickets and keep no sessions, so a later connection cannot ride on an
 * earlier verification (an expired certificate is refused after a valid
 * connection); each check has a control with OpenSSL's defaults showing it
 * can fail. */
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
    pkif_tls_pair(cctx, sctx, &c.cs, &c.ss);
    SSL_set_msg_callback(c.cs, count_tickets);
    SSL_set_msg_callback_arg(c.cs, &c.tickets);
    SSL_set_verify(c.ss, SSL_get_verify_mode(c.ss), count_server_verify);
    SSL_set_verify(c.cs, SSL_get_verify_mode(c.cs), count_client_verify);
    if (resume)
        assert_int_equal(SSL_set_session(c.cs, resume), 1);
    server_verifies = client_verifies = 0;
    c.ok = pkif_drive_handshake(&c.cs, &c.ss) == 0;
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
    pkif_close_pair(c->cs, c->ss);
}

static void server_issues_no_session_ticket(void **state)
{
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    struct pkif_peer cli =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
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
    pkif_peer_free(&srv);
    pkif_peer_free(&cli);
}

static void client_stores_no_session(void **state)
{
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    struct pkif_peer cli =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
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
    pkif_peer_free(&srv);
    pkif_peer_free(&cli);
}

static void resumption_attempt_gets_a_full_handshake_and_verification(void **state)
{
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    struct pkif_peer cli =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 3600, false);
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
    struct pkif_peer old =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
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
    pkif_peer_free(&old);
    pkif_peer_free(&srv);
    pkif_peer_free(&cli);
}

static void expired_certificate_is_refused_after_a_valid_connection(void **state)
{
    char id[PKI_ID_MAX], why[160];
    struct pkif_peer srv =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    struct pkif_peer old =
        pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "server", 0, 3600, true);
    allow_resumption(old.ctx, true); /* the control: resumption on */
    /* A client certificate valid for two more seconds. */
    struct pkif_peer cli = pkif_peer(pkif.ca_a, pkif.ca_a, "cluster.local", "client", 0, 2, false);
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
    pkif_peer_free(&old);
    pkif_peer_free(&srv);
    pkif_peer_free(&cli);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_issues_no_session_ticket),
        cmocka_unit_test(client_stores_no_session),
        cmocka_unit_test(resumption_attempt_gets_a_full_handshake_and_verification),
        cmocka_unit_test(expired_certificate_is_refused_after_a_valid_connection),
    };
    return cmocka_run_group_tests(tests, pkif_setup, pkif_teardown);
}
