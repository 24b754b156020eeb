/* Non-blocking TLS over a socket: the transport under every HBONE session.
 *
 * The caller owns the event-loop registration and asks tls_conn_wants() which
 * events to wait for; every call returns at once. OpenSSL reads from a
 * socket BIO and, once the peer is authenticated (tls_conn_upgrade),
 * writes through a buffer BIO, so several records leave in one write(2): tls_conn_write() may leave
 * bytes queued, and the caller calls tls_conn_flush() once it has nothing more to write for now.
 * Partial writes and a moving write buffer are allowed, so a caller can
 * retry a write with a buffer that grew in between.
 *
 * OpenSSL writes to the socket with write(2), not send(MSG_NOSIGNAL): the
 * process must ignore SIGPIPE (meshd does at start-up), or a peer that
 * closed first kills it. */
#ifndef MESHD_TLS_CONN_H
#define MESHD_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct tls_conn {
    SSL *ssl;
    BIO *wbio; /* the write buffer, owned by ssl; NULL until upgraded */
    int fd;
    bool handshake_done;
    bool want_write; /* the last call stopped on WANT_WRITE */
    bool eof;        /* close_notify or TCP EOF seen */
    bool releasing;  /* upgraded; OpenSSL still frees idle record buffers */
    char error[160]; /* the first fatal error, for logs and records */
};

/* Takes ownership of fd (closed by tls_conn_deinit). Returns 0 or -errno. */
int tls_conn_init(struct tls_conn *t, SSL_CTX *ctx, int fd, bool server);
void tls_conn_deinit(struct tls_conn *t);

/* Once the peer is authenticated: the write buffer and read-ahead. Until
 * then the connection holds no buffer of ours, and OpenSSL frees its
 * record buffers whenever it waits, so an unauthenticated connection
 * costs only the SSL object. 0 or -ENOMEM. */
int tls_conn_upgrade(struct tls_conn *t);

/* 0 when done, -EAGAIN to be called again on readiness, -EPROTO etc. */
int tls_conn_handshake(struct tls_conn *t);
/* >0 bytes, 0 at EOF, -EAGAIN, or a negative error. */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len);
/* >0 bytes taken (maybe fewer than len; maybe still queued), -EAGAIN, or a
 * negative error. */
ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len);
/* Sends what tls_conn_write() queued: 0 when all is on the socket, -EAGAIN
 * to be called again on writability (tls_conn_wants() asks for it), or a
 * negative error. */
int tls_conn_flush(struct tls_conn *t);
/* True while written bytes wait in the buffer for a flush. */
bool tls_conn_queued(const struct tls_conn *t);
/* Sends close_notify, best effort. */
void tls_conn_shutdown(struct tls_conn *t);

/* EPOLLIN, plus EPOLLOUT while a write, a flush or the handshake waits on
 * the socket. */
uint32_t tls_conn_wants(const struct tls_conn *t);
/* True when OpenSSL holds decrypted bytes not yet read (no epoll event
 * will come for them). */
bool tls_conn_pending(const struct tls_conn *t);

#endif
