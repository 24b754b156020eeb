/* bench/hbone_tunnel: one HBONE tunnel (TLS 1.3 + HTTP/2 CONNECT, meshd's
 * own client and server sessions) against a direct TCP connection, on
 * loopback, in one run. Prints a markdown table.
 *
 *   throughput: the app side writes BYTES as fast as it can, the far side
 *               reads it all (single stream)
 *   latency:    64-byte request/response ping-pong, p50/p99 over N rounds
 *
 * The two meshd ends run in this process on two event loops in two
 * threads, as two agents would; the app ends are two more threads, so on a
 * 2-core machine everything competes for the same cores as in the netns
 * bench. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "support/tls_fixture.h"

#define BYTES  (1024ull << 20)
#define ROUNDS 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_blocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

struct pair {
    int a, b; /* the two app ends: a writes/asks, b reads/answers */
};

static void *reader(void *arg)
{
    int fd = *(int *)arg;
    static char buf[1 << 16];
    unsigned long long got = 0;
    while (got < BYTES) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        got += (unsigned long long)n;
    }
    return (void *)(uintptr_t)(got == BYTES);
}

static void *echoer(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];
    for (int i = 0; i < ROUNDS; i++) {
        size_t got = 0;
        while (got < sizeof(buf)) {
            ssize_t n = read(fd, buf + got, sizeof(buf) - got);
            if (n <= 0)
                return NULL;
            got += (size_t)n;
        }
        if (write(fd, buf, sizeof(buf)) != sizeof(buf))
            return NULL;
    }
    return NULL;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

struct result {
    double gbit, p50_us, p99_us;
};

static struct result measure(struct pair p)
{
    struct result r = {0};
    set_blocking(p.a);
    set_blocking(p.b);
    pthread_t t;
    static char chunk[1 << 16];
    pthread_create(&t, NULL, reader, &p.b);
    double t0 = now_s();
    for (unsigned long long sent = 0; sent < BYTES;) {
        ssize_t n = write(p.a, chunk, sizeof(chunk));
        if (n <= 0)
            break;
        sent += (unsigned long long)n;
    }
    void *ok;
    pthread_join(t, &ok);
    r.gbit = ok ? (double)BYTES * 8 / (now_s() - t0) / 1e9 : 0;

    static double lat[ROUNDS];
    pthread_create(&t, NULL, echoer, &p.b);
    char buf[64] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        double s = now_s();
        if (write(p.a, buf, sizeof(buf)) != sizeof(buf))
            break;
        size_t got = 0;
        while (got < sizeof(buf)) {
            ssize_t n = read(p.a, buf + got, sizeof(buf) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        lat[i] = (now_s() - s) * 1e6;
    }
    pthread_join(t, NULL);
    qsort(lat, ROUNDS, sizeof(double), cmp_double);
    r.p50_us = lat[ROUNDS / 2];
    r.p99_us = lat[ROUNDS * 99 / 100];
    return r;
}

/* ---- the tunnel, driven by a loop thread ---- */

static int server_app_end = -1;

static void on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    int near, far;
    if (tcp_fixture_pair(&near, &far) != 0)
        exit(1);
    server_app_end = far;
    hbone_stream_accept(st, near);
}

static volatile int stop_loop;
static void *loop_thread(void *arg)
{
    while (!stop_loop)
        loop_run_once(arg, 10);
    return NULL;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct pair direct;
    if (tcp_fixture_pair(&direct.a, &direct.b) != 0)
        return 1;
    struct result d = measure(direct);

    struct loop *client_loop, *server_loop;
    SSL_CTX *cctx = tls_fixture_ctx(false), *sctx = tls_fixture_ctx(true);
    int c, s, app_near, app_far;
    if (loop_new(&client_loop) || loop_new(&server_loop) || !cctx || !sctx ||
        tcp_fixture_pair(&c, &s) || tcp_fixture_pair(&app_near, &app_far))
        return 1;
    struct hbone_handler ch = {0}, sh = {.on_request = on_request};
    struct hbone_session *cs, *ss;
    struct hbone_stream *st;
    if (hbone_session_new(client_loop, cctx, c, false, &ch, &cs) ||
        hbone_session_new(server_loop, sctx, s, true, &sh, &ss) ||
        hbone_stream_open(cs, "127.0.0.1:1", NULL, app_near, NULL, &st))
        return 1;
    for (int i = 0; i < 1000 && server_app_end < 0; i++) {
        loop_run_once(client_loop, 1);
        loop_run_once(server_loop, 1);
    }
    if (server_app_end < 0)
        return 1;
    pthread_t lt[2];
    pthread_create(&lt[0], NULL, loop_thread, client_loop);
    pthread_create(&lt[1], NULL, loop_thread, server_loop);
    struct result h = measure((struct pair){app_far, server_app_end});
    stop_loop = 1;
    pthread_join(lt[0], NULL);
    pthread_join(lt[1], NULL);

    printf("| metric | direct TCP | HBONE tunnel | ratio |\n|---|---|---|---|\n");
    printf("| throughput, 1 stream (Gb/s) | %.2f | %.2f | %.2fx |\n", d.gbit, h.gbit,
           h.gbit / d.gbit);
    printf("| latency p50, 64 B ping-pong (us) | %.1f | %.1f | %.2fx |\n", d.p50_us, h.p50_us,
           h.p50_us / d.p50_us);
    printf("| latency p99 (us) | %.1f | %.1f | %.2fx |\n", d.p99_us, h.p99_us, h.p99_us / d.p99_us);
    return 0;
}
