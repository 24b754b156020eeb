/* HBONE interop with an independent HTTP/2 implementation (Node's http2
 * module, tests/unit/data/hbone_peer.js), over real TLS on loopback:
 *   - meshd's HBONE client tunnels through a Node CONNECT server that
 *     requires and verifies a client certificate;
 *   - a Node HTTP/2 client does CONNECT against meshd's HBONE server.
 * Bytes go through to a real echo server and back, both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "support/tls_fixture.h"

#define PEER "tests/unit/data/hbone_peer.js"

static char tmpdir[64];

/* An echo server in a child process: echoes every connection until EOF. */
static pid_t echo_start(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 8), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        for (int n = 0; n < 8; n++) {
            int c = accept(l, NULL, NULL);
            if (c < 0)
                _exit(1);
            char buf[4096];
            ssize_t r;
            while ((r = read(c, buf, sizeof(buf))) > 0)
                if (write(c, buf, (size_t)r) != r)
                    break;
            close(c);
        }
        _exit(0);
    }
    close(l);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/meshd-interop-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void pem_dir(SSL_CTX *ctx, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(out, 0700), 0);
    assert_int_equal(tls_fixture_write_pem(ctx, out), 0);
}

static int done_err = 1, done_status;
static void on_done(void *ctx, struct hbone_stream *st, void *sctx, int err,
                    const struct hbone_stream_stats *stats)
{
    done_err = err;
    done_status = stats->status;
}

static void meshd_client_through_node_server(void **state)
{
    int echo_port;
    pid_t echo = echo_start(&echo_port);
    SSL_CTX *mine = tls_fixture_ctx(false), *theirs = tls_fixture_ctx(true);
    char my_pem[128], their_pem[128], k[160], c[160], ca[160], portfile[160];
    pem_dir(mine, "client", my_pem, sizeof(my_pem));
    pem_dir(theirs, "node-server", their_pem, sizeof(their_pem));
    snprintf(k, sizeof(k), "%s/key.pem", their_pem);
    snprintf(c, sizeof(c), "%s/cert.pem", their_pem);
    snprintf(ca, sizeof(ca), "%s/cert.pem", my_pem); /* Node trusts our client cert */
    snprintf(portfile, sizeof(portfile), "%s/port", tmpdir);
    pid_t node = fork();
    if (node == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("node", "node", PEER, "server", portfile, k, c, ca, (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 200 && port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(50000);
    }
    assert_true(port > 0);

    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
    struct hbone_handler h = {.on_stream_done = on_done};
    struct hbone_session *s;
    assert_int_equal(hbone_session_new(loop, mine, fd, false, &h, &s), 0);
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    char authority[32];
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", echo_port);
    struct hbone_stream *st;
    struct hbone_connect_headers hdrs = {.forwarded = "for=\"10.244.1.11:40000\""};
    assert_int_equal(hbone_stream_open(s, authority, &hdrs, near, NULL, &st), 0);
    static const char msg[] = "hbone interop: meshd client -> node server";
    assert_int_equal(write(far, msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
    char buf[128];
    size_t got = 0;
    for (int i = 0; i < 5000 && got < sizeof(msg) - 1; i++) {
        loop_run_once(loop, 1);
        ssize_t n = read(far, buf + got, sizeof(buf) - got);
        if (n > 0)
            got += (size_t)n;
    }
    assert_int_equal(got, sizeof(msg) - 1);
    assert_memory_equal(buf, msg, got);
    shutdown(far, SHUT_WR);
    for (int i = 0; i < 5000 && done_err == 1; i++)
        loop_run_once(loop, 1);
    assert_int_equal(done_status, 200);
    hbone_session_close(s, "test over");
    loop_run_once(loop, 0);
    close(far);
    loop_free(loop);
    stop(node);
    stop(echo);
    SSL_CTX_free(mine);
    SSL_CTX_free(theirs);
}

/* ---- a Node client against meshd's server ---- */

static int echo_port_for_server;
static bool server_session_done;
static void srv_on_session_done(void *ctx, struct hbone_session *s)
{
    server_session_done = true; /* freed after this: do not touch it again */
}

static void srv_on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    char expect[32];
    snprintf(expect, sizeof(expect), "127.0.0.1:%d", echo_port_for_server);
    if (strcmp(req->authority, expect) != 0) {
        hbone_stream_reject(st, 400);
        return;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)echo_port_for_server),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        hbone_stream_reject(st, 503);
        return;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    hbone_stream_accept(st, fd);
}

static void node_client_through_meshd_server(void **state)
{
    pid_t echo = echo_start(&echo_port_for_server);
    SSL_CTX *mine = tls_fixture_ctx(true), *theirs = tls_fixture_ctx(false);
    char my_pem[128], their_pem[128], k[160], c[160], ca[160], port[16], authority[32];
    pem_dir(mine, "server", my_pem, sizeof(my_pem));
    pem_dir(theirs, "node-client", their_pem, sizeof(their_pem));
    snprintf(k, sizeof(k), "%s/key.pem", their_pem);
    snprintf(c, sizeof(c), "%s/cert.pem", their_pem);
    snprintf(ca, sizeof(ca), "%s/cert.pem", my_pem); /* Node verifies our server cert */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", echo_port_for_server);

    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t node = fork();
    if (node == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        execlp("node", "node", PEER, "client", port, k, c, ca, authority, "ping from node",
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    int fd = accept(l, NULL, NULL);
    assert_true(fd >= 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct hbone_handler h = {.on_request = srv_on_request, .on_session_done = srv_on_session_done};
    server_session_done = false;
    struct hbone_session *s;
    assert_int_equal(hbone_session_new(loop, mine, fd, true, &h, &s), 0);
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 10000 && w == 0; i++) {
        loop_run_once(loop, 1);
        w = waitpid(node, &st, WNOHANG);
    }
    assert_int_equal(w, node);
    char result[256] = "";
    ssize_t n = read(out[0], result, sizeof(result) - 1);
    assert_true(n > 0);
    result[n] = '\0';
    assert_non_null(strstr(result, "\"status\":200"));
    assert_non_null(strstr(result, "\"echo\":\"ping from node\""));
    assert_int_equal(WEXITSTATUS(st), 0);
    if (!server_session_done) /* Node may have closed it already */
        hbone_session_close(s, "test over");
    loop_run_once(loop, 0);
    loop_free(loop);
    close(out[0]);
    close(l);
    stop(echo);
    SSL_CTX_free(mine);
    SSL_CTX_free(theirs);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(meshd_client_through_node_server, setup, teardown),
        cmocka_unit_test_setup_teardown(node_client_through_meshd_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
