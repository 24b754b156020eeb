/* The HBONE server against a flood of idle, unauthenticated connections
 * (issue 13, item 7c), on real sockets and real TLS: past the per-client
 * and the total caps on pending handshakes new connections are reset at
 * accept and counted; a pending connection costs no tunnel buffers (the
 * 128 KiB write buffer and read-ahead come only after authentication); a
 * legitimate client from another address completes its handshake and a
 * CONNECT meanwhile; idle handshakes are closed at the deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "enroll/pods.h"
#include "hbone/session.h"
#include "proxy/conns.h"
#include "proxy/hbone_inbound.h"
#include "support/tls_fixture.h"

#define PORT       15997
#define PER_SOURCE 8
#define TOTAL      16
/* Long enough that nothing expires by itself however slow the machine
 * (qemu TCG): the test moves time on by calling expire() with a later now. */
#define DEADLINE_NS (60ull * 1000000000ull)

static SSL_CTX *sctx;
static SSL_CTX *server_ctx(void *ctx, const struct pod *pod)
{
    return sctx;
}

static int verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen)
{
    snprintf(id, idlen, "spiffe://cluster.local/ns/a/sa/legit");
    return 0;
}

static int stream_status;
static void on_done(void *ctx, struct hbone_stream *st, void *sctx_, int err,
                    const struct hbone_stream_stats *stats)
{
    stream_status = stats->status ? stats->status : -1;
}

static void spin(struct loop *loop, int ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)ms * 1000000u;
    while (loop_now_ns() < end)
        loop_run_once(loop, 2);
}

/* A TCP connection to the server from 127.0.0.x, never speaking. */
static int idle_client(int x)
{
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000000u | x)};
    struct sockaddr_in dst = {
        .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    assert_true(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0 || errno == EINPROGRESS);
    return fd;
}

/* How many of fds the server has reset or closed. */
static int ended(const int *fds, int n)
{
    int e = 0;
    char b;
    for (int i = 0; i < n; i++) {
        ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT);
        e += r == 0 || (r == -1 && errno == ECONNRESET);
    }
    return e;
}

static void pending_handshakes_are_capped_and_expire(void **state)
{
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct conns *conns;
    struct conns_opts co = {
        .max_conns = 100, .records = 16, .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE}};
    assert_int_equal(conns_new(loop, &co, &conns), 0);
    sctx = tls_fixture_ctx(true);
    SSL_CTX *cctx = tls_fixture_ctx(false);
    struct hbone_inbound_opts o = {.port = PORT,
                                   .handshake_timeout_ns = DEADLINE_NS,
                                   .idle_timeout_ns = 60000000000ull,
                                   .max_pending_source = PER_SOURCE,
                                   .max_pending = TOTAL,
                                   .server_ctx = server_ctx,
                                   .verify_client = verify_client,
                                   .loopback_clients = true};
    struct hbone_inbound *hi;
    assert_int_equal(hbone_inbound_new(loop, conns, &o, &hi), 0);
    struct pod pod = {.ns = "a", .name = "server"};
    pod.netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_int_equal(hbone_inbound_attach_pod(hi, &pod), 0);
    /* The app the legitimate CONNECT reaches. */
    struct sockaddr_in app = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(app);
    int app_l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(app_l, (struct sockaddr *)&app, sizeof(app)), 0);
    assert_int_equal(listen(app_l, 4), 0);
    assert_int_equal(getsockname(app_l, (struct sockaddr *)&app, &alen), 0);
    spin(loop, 10);

    /* One pod (127.0.0.1) opens 20 idle connections: 8 are kept pending,
     * 12 are reset at once. */
    struct hbone_inbound_stats st;
    size_t heap0 = mallinfo2().uordblks;
    int flood[20];
    for (int i = 0; i < 20; i++)
        flood[i] = idle_client(1);
    spin(loop, 100);
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.pending, PER_SOURCE);
    assert_int_equal(st.handshakes_refused, 20 - PER_SOURCE);
    assert_int_equal(ended(flood, 20), 20 - PER_SOURCE);
    /* A silent pending connection costs its SSL object: no tunnel buffers
     * (those were 2 x 128 KiB), no HTTP/2 session, no handshake buffers. */
    size_t per_conn = (mallinfo2().uordblks - heap0) / PER_SOURCE;
    print_message("heap per silent pending handshake: %zu bytes\n", per_conn);
    assert_true(per_conn < 16 * 1024);

    /* Meanwhile a client from another address completes its handshake
     * and a CONNECT, and no longer counts as pending. */
    int fd = idle_client(2);
    struct hbone_handler h = {.on_stream_done = on_done};
    struct hbone_session *cs;
    assert_int_equal(hbone_session_new(loop, cctx, fd, false, &h, &cs), 0);
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    char authority[32];
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", ntohs(app.sin_port));
    struct hbone_stream *cst;
    assert_int_equal(hbone_stream_open(cs, authority, NULL, near, NULL, &cst), 0);
    int served = -1;
    for (int i = 0; i < 2000 && served < 0; i++) {
        loop_run_once(loop, 1);
        served = accept4(app_l, NULL, NULL, SOCK_NONBLOCK);
    }
    assert_true(served >= 0);
    assert_int_equal(write(served, "ok", 2), 2);
    char buf[2] = {0};
    for (int i = 0; i < 2000 && recv(far, buf, 2, MSG_DONTWAIT) != 2; i++)
        loop_run_once(loop, 1);
    assert_memory_equal(buf, "ok", 2);
    /* Authenticated, the tunnel reads ahead and keeps its buffers: the
     * release mode of the handshake is over once it waited with nothing
     * buffered. */
    SSL *cssl = hbone_session_ssl(cs);
    assert_int_equal(SSL_get_read_ahead(cssl), 1);
    assert_int_equal(SSL_get_mode(cssl) & SSL_MODE_RELEASE_BUFFERS, 0);
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.pending, PER_SOURCE);

    /* The total cap: a second pod fills it, each connection sending the
     * start of a ClientHello record and stopping there; a third pod is
     * refused. Started handshakes hold OpenSSL's handshake buffers, and
     * still no tunnel buffers. */
    int more[PER_SOURCE + 1];
    heap0 = mallinfo2().uordblks;
    for (int i = 0; i < PER_SOURCE; i++)
        more[i] = idle_client(3);
    spin(loop, 20);
    for (int i = 0; i < PER_SOURCE; i++)
        assert_int_equal(send(more[i], "\x16\x03\x01\x02\x00", 5, 0), 5);
    spin(loop, 50);
    per_conn = (mallinfo2().uordblks - heap0) / PER_SOURCE;
    print_message("heap per started pending handshake: %zu bytes\n", per_conn);
    assert_true(per_conn < 96 * 1024);
    more[PER_SOURCE] = idle_client(4);
    spin(loop, 100);
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.pending, TOTAL);
    assert_int_equal(st.handshakes_refused, 20 - PER_SOURCE + 1);
    assert_int_equal(ended(more, PER_SOURCE + 1), 1);

    /* Before the deadline they stay; past it every idle handshake is
     * closed, and the legitimate session is not. */
    hbone_inbound_expire(hi, loop_now_ns());
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.pending, TOTAL);
    hbone_inbound_expire(hi, loop_now_ns() + 2 * DEADLINE_NS);
    spin(loop, 50);
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.sessions, 1);
    assert_int_equal(ended(flood, 20), 20);
    assert_int_equal(ended(more, PER_SOURCE + 1), PER_SOURCE + 1);
    assert_true(hbone_session_usable(cs));

    for (int i = 0; i < 20; i++)
        close(flood[i]);
    for (int i = 0; i <= PER_SOURCE; i++)
        close(more[i]);
    close(far), close(served);
    hbone_session_close(cs, "done");
    hbone_inbound_detach_pod(hi, &pod);
    spin(loop, 10);
    hbone_inbound_free(hi);
    conns_free(conns);
    loop_free(loop);
    close(pod.netns_fd), close(app_l);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pending_handshakes_are_capped_and_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
