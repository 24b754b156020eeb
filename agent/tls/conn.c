/* Non-blocking TLS transport (see conn.h). */
#include "tls/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

/* Bytes OpenSSL may read ahead per syscall (a few full records), once the
 * peer is authenticated. */
#define TLS_READ_BUFFER (64u * 1024)
/* Records queued before one write(2), once the peer is authenticated
 * (tls_conn_upgrade): OpenSSL writes each 16 KiB record
 * with its own syscall unless a buffer sits under it, and syscalls, not
 * AES-GCM, are what a tunnel spends its time on. */
#define TLS_WRITE_BUFFER (128u * 1024)

int tls_conn_init(struct tls_conn *t, SSL_CTX *ctx, int fd, bool server)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    t->ssl = SSL_new(ctx);
    /* Until the peer is authenticated, the socket BIO reads and writes
     * directly: no write buffer, no read-ahead (tls_conn_upgrade). */
    BIO *sock = t->ssl ? BIO_new_socket(fd, BIO_NOCLOSE) : NULL;
    if (!sock) {
        SSL_free(t->ssl);
        t->ssl = NULL;
        close(fd);
        t->fd = -1;
        return -ENOMEM;
    }
    SSL_set_bio(t->ssl, sock, sock); /* one reference for both */
    /* While the handshake waits on the peer, OpenSSL frees its record
     * buffers: an idle, unauthenticated connection holds none. */
    SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    /* A client speaks first: wait for writability (the TCP connect may
     * still be in progress) before the first handshake step. */
    t->want_write = !server;
    return 0;
}

/* Writes go through a buffer BIO that tls_conn_flush() drains. */
int tls_conn_upgrade(struct tls_conn *t)
{
    if (t->wbio)
        return 0;
    BIO *sock = SSL_get_rbio(t->ssl);
    BIO *wbuf = BIO_new(BIO_f_buffer());
    if (!sock || !wbuf || BIO_set_write_buffer_size(wbuf, TLS_WRITE_BUFFER) != 1 ||
        BIO_up_ref(sock) != 1) {
        BIO_free(wbuf);
        return -ENOMEM;
    }
    /* The wbuf chain takes the reference just added; SSL_set0_wbio drops
     * the one the bare socket held as the wbio; the rbio keeps its own. */
    BIO_push(wbuf, sock);
    SSL_set0_wbio(t->ssl, wbuf);
    t->wbio = wbuf;
    /* Read several records per read(2) instead of a header and a body
     * each: the largest single win on the tunnel's receive side. The
     * larger buffer is allocated when OpenSSL next sets one up, so keep
     * releasing until the handshake's buffer is gone (tls_conn_read). */
    SSL_set_read_ahead(t->ssl, 1);
    SSL_set_default_read_buffer_len(t->ssl, TLS_READ_BUFFER);
    t->releasing = true;
    return 0;
}

void tls_conn_deinit(struct tls_conn *t)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
    t->wbio = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* Maps an OpenSSL result to -EAGAIN / 0 / a negative error, recording the
 * reason of fatal errors once. */
static int tls_result(struct tls_conn *t, int rc, const char *what)
{
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        t->want_write = false;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        t->eof = true;
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == EPIPE) {
            /* TCP EOF without close_notify: a truncation, reported as EOF
             * to the byte stream but remembered. */
            t->eof = true;
            if (!t->error[0])
                snprintf(t->error, sizeof(t->error), "%s: peer closed without close_notify", what);
            ERR_clear_error();
            return 0;
        }
        if (!t->error[0])
            snprintf(t->error, sizeof(t->error), "%s: %s", what, strerror(errno));
        ERR_clear_error();
        return -errno;
    default: {
        unsigned long err = ERR_get_error();
        if (!t->error[0]) {
            char buf[120];
            ERR_error_string_n(err, buf, sizeof(buf));
            long vr = SSL_get_verify_result(t->ssl);
            if (vr != X509_V_OK)
                snprintf(t->error, sizeof(t->error), "%s: certificate: %s", what,
                         X509_verify_cert_error_string(vr));
            else
                snprintf(t->error, sizeof(t->error), "%s: %s", what, buf);
        }
        ERR_clear_error();
        return -EPROTO;
    }
    }
}

int tls_conn_handshake(struct tls_conn *t)
{
    if (t->handshake_done)
        return 0;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshake_done = true;
        t->want_write = false;
        return 0;
    }
    rc = tls_result(t, rc, "handshake");
    return rc == 0 ? -ECONNRESET : rc;
}

/* SSL_get_error reads the thread's error queue, so it must be empty before
 * an I/O call. Peeking is a pointer compare; clearing walks every slot
 * and showed in the per-request profile, and the queue is nearly always
 * empty already: cleared only when it is not. */
static void errors_cleared(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len)
{
    size_t n = 0;
    errors_cleared();
    int rc = SSL_read_ex(t->ssl, buf, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    ssize_t r = tls_result(t, 0, "read");
    /* Waiting with nothing buffered: OpenSSL has just freed the read
     * buffer (SSL_MODE_RELEASE_BUFFERS); the next one is read-ahead sized
     * and kept from now on. */
    if (r == -EAGAIN && t->releasing && !SSL_has_pending(t->ssl)) {
        SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
        t->releasing = false;
    }
    return r;
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len)
{
    size_t n = 0;
    errors_cleared();
    int rc = SSL_write_ex(t->ssl, buf, len, &n);
    if (rc == 1) {
        t->want_write = false;
        return (ssize_t)n;
    }
    rc = tls_result(t, 0, "write");
    return rc == 0 ? -EPIPE : rc;
}

int tls_conn_flush(struct tls_conn *t)
{
    if (!t->wbio || BIO_wpending(t->wbio) == 0)
        return 0;
    /* The outcome is the return, the retry flags and errno: the error
     * queue is not read, so it is not cleared first. */
    errno = 0;
    if (BIO_flush(t->wbio) == 1)
        return 0;
    if (BIO_should_retry(t->wbio))
        return -EAGAIN;
    int err = errno ? errno : EPIPE;
    if (!t->error[0])
        snprintf(t->error, sizeof(t->error), "write: %s", strerror(err));
    ERR_clear_error();
    return -err;
}

bool tls_conn_queued(const struct tls_conn *t)
{
    return t->wbio && BIO_wpending(t->wbio) > 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->ssl && t->handshake_done && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
        tls_conn_flush(t);
    }
}

uint32_t tls_conn_wants(const struct tls_conn *t)
{
    bool out = t->want_write || tls_conn_queued(t);
    return EPOLLIN | (out ? EPOLLOUT : 0);
}

bool tls_conn_pending(const struct tls_conn *t)
{
    return SSL_pending(t->ssl) > 0;
}
