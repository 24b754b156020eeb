/* The admin/metrics HTTP server (agent/admin/http.c over admin/reqserver.c):
 * the request parser's table, then the server over real loopback sockets
 * under the attacks a pod can make on 15020/15021: idle sockets held from
 * one or many sources, headers sent slowly, a response never read, an
 * oversized request. A fresh client stays served throughout. Distinct
 * sources are distinct loopback addresses (127.0.0.0/8 is all on lo). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/http.h"
#include "admin/reqserver.h"
#include "core/log.h"
#include "core/loop.h"

static void request_parser_table(void **state)
{
    static const struct {
        const char *head;
        int status;
        const char *path, *query;
    } rows[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, "/metrics", ""},
        {"GET /stats/prometheus HTTP/1.0\r\n\r\n", 0, "/stats/prometheus", ""},
        {"POST /logging?level=debug HTTP/1.1\r\n\r\n", 0, "/logging", "level=debug"},
        {"POST /logging?level=debug HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, "/logging",
         "level=debug"},
        {"HEAD /healthz/ready HTTP/1.1\r\n\r\n", 0, "/healthz/ready", ""},
        {"DELETE /config_dump HTTP/1.1\r\n\r\n", 405, NULL, NULL},
        {"BREW /pot HTTP/1.1\r\n\r\n", 405, NULL, NULL},
        {"GET metrics HTTP/1.1\r\n\r\n", 400, NULL, NULL},
        {"GET /metrics\r\n\r\n", 400, NULL, NULL},
        {"GET /metrics SPDY/3\r\n\r\n", 400, NULL, NULL},
        {"GET /a\x01b HTTP/1.1\r\n\r\n", 400, NULL, NULL},
        {"\r\n\r\n", 400, NULL, NULL},
        /* no endpoint takes a body: refused, not left unread */
        {"POST /logging HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413, NULL, NULL},
        {"POST /logging HTTP/1.1\r\ncontent-length:10\r\n\r\n", 413, NULL, NULL},
        {"POST /logging HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char m[8], p[64], q[64];
        int st = http_parse_request(rows[i].head, strlen(rows[i].head), m, sizeof(m), p, sizeof(p),
                                    q, sizeof(q));
        assert_int_equal(st, rows[i].status);
        if (st == 0) {
            assert_string_equal(p, rows[i].path);
            assert_string_equal(q, rows[i].query);
        }
    }
}

static void overlong_targets_and_heads_are_refused(void **state)
{
    char head[HTTP_MAX_HEAD + 64], m[8], p[64], q[64];
    snprintf(head, sizeof(head), "GET /%0100d HTTP/1.1\r\n\r\n", 0);
    assert_int_equal(
        http_parse_request(head, strlen(head), m, sizeof(m), p, sizeof(p), q, sizeof(q)), 414);
    memset(head, 'A', HTTP_MAX_HEAD);
    assert_int_equal(
        http_parse_request(head, HTTP_MAX_HEAD, m, sizeof(m), p, sizeof(p), q, sizeof(q)), 431);
}

/* ---- a server on its own loop thread ------------------------------------ */

#define BIG_BODY (16u << 20)

static void ok_handler(void *ctx, const char *method, const char *path, const char *query,
                       struct http_response *r)
{
    http_printf(r, "ok %s\n", path);
}

/* 16 MiB: more than any socket buffers hold, so a non-reader stalls it. */
static void big_handler(void *ctx, const char *method, const char *path, const char *query,
                        struct http_response *r)
{
    r->body.data = malloc(BIG_BODY);
    if (!r->body.data) {
        r->body.oom = true;
        return;
    }
    memset(r->body.data, 'x', BIG_BODY);
    r->body.len = r->body.cap = BIG_BODY;
}

/* A body that outgrows its bound: the client gets 503, not half a page. */
static void overflow_handler(void *ctx, const char *method, const char *path, const char *query,
                             struct http_response *r)
{
    r->body.limit = 16;
    http_printf(r, "%s", "0123456789");
    http_printf(r, "%s", "0123456789");
}

static const struct http_route routes[] = {
    {"/healthz/ready", ok_handler, NULL, 0},
    {"/metrics", ok_handler, NULL, 0},
    {"/big", big_handler, NULL, 0},
    {"/overflow", overflow_handler, NULL, 0},
};

struct srv {
    struct loop *loop;
    struct http_server *http;
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    struct reqserver_stats stats; /* after srv_stop */
};

static void *srv_run(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop))
        loop_run_once(s->loop, 20);
    return NULL;
}

static void srv_start(struct srv *s, struct http_server_opts *o)
{
    struct meshd_addr a = {.family = MESHD_AF_INET, .addr = {127, 0, 0, 1}};
    struct http_server_opts so = *o; /* only read while constructing */
    memset(s, 0, sizeof(*s));
    so.addr = &a;
    so.name = "test";
    assert_int_equal(loop_new(&s->loop), 0);
    assert_int_equal(
        http_server_new(s->loop, &so, routes, sizeof(routes) / sizeof(routes[0]), &s->http), 0);
    s->port = http_server_port(s->http);
    assert_true(s->port != 0);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_run, s), 0);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    http_server_get_stats(s->http, &s->stats);
    http_server_free(s->http);
    loop_run_once(s->loop, 0); /* deferred releases */
    loop_free(s->loop);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A blocking TCP connection from `src` (a 127/8 address) to the server. */
static int connect_from(const char *src, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET},
                       da = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, src, &sa.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&da, sizeof(da)), 0);
    return fd;
}

static void set_rcvtimeo(int fd, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Reads until the server ends the connection: bytes read, or -1 when the
 * read timed out first (the server held the connection). *status is the
 * response's status (0: none). */
static long read_all(int fd, unsigned timeout_ms, int *status)
{
    char buf[65536], first[16] = "";
    long total = 0;
    set_rcvtimeo(fd, timeout_ms);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            if (total == 0)
                memcpy(first, buf, n < 15 ? (size_t)n : 15);
            total += n;
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -1;
        break; /* EOF or reset */
    }
    if (status)
        *status = strncmp(first, "HTTP/1.1 ", 9) == 0 ? atoi(first + 9) : 0;
    return total;
}

/* One GET from `src`: the status, or 0 when nothing came within 2 s. */
static int get_from(const char *src, uint16_t port, const char *path)
{
    int fd = connect_from(src, port), status = 0;
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: meshd\r\n\r\n", path);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    read_all(fd, 2000, &status);
    close(fd);
    return status;
}

static void open_idle(int *fds, size_t n, const char *src, uint16_t port)
{
    for (size_t i = 0; i < n; i++)
        fds[i] = connect_from(src, port);
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

static void a_body_past_its_bound_is_answered_503(void **state)
{
    struct srv s;
    struct http_server_opts o = {0};
    srv_start(&s, &o);
    assert_int_equal(get_from("127.0.0.9", s.port, "/overflow"), 503);
    assert_int_equal(get_from("127.0.0.9", s.port, "/metrics"), 200); /* still serving */
    srv_stop(&s);
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void client_stats_render_every_reason_and_the_clients(void **state)
{
    static const char *const names[2] = {"metrics", "health"};
    struct reqserver_stats st[2] = {{.clients = 3}, {.clients = 0}};
    st[0].rejected[REQSERVER_SOURCE_CAP] = 7;
    st[1].rejected[REQSERVER_FULL] = 2;
    struct http_response r = {.status = 200};
    http_render_client_stats(&r, "meshd_x", names, st, 2);
    assert_false(r.body.oom);
    const char *text = textbuf_str(&r.body);
    static const char *const want[] = {
        "# TYPE meshd_x_rejected_total counter",
        "meshd_x_rejected_total{endpoint=\"metrics\",reason=\"source_cap\"} 7",
        "meshd_x_rejected_total{endpoint=\"metrics\",reason=\"full\"} 0",
        "meshd_x_rejected_total{endpoint=\"health\",reason=\"full\"} 2",
        "# TYPE meshd_x_clients gauge",
        "meshd_x_clients{endpoint=\"metrics\"} 3",
        "meshd_x_clients{endpoint=\"health\"} 0",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!has_line(text, want[i]))
            fail_msg("missing: %s\n%s", want[i], text);
    /* Every reason, for each endpoint. */
    size_t lines = 0;
    for (const char *p = strstr(text, "meshd_x_rejected_total{"); p;
         p = strstr(p + 1, "meshd_x_rejected_total{"))
        lines++;
    assert_int_equal(lines, 2 * REQSERVER_REJECT__MAX);
    textbuf_free(&r.body);
}

static void idle_sockets_from_one_source_do_not_starve_probes(void **state)
{
    struct srv s;
    struct http_server_opts o = {0}; /* the production bounds: 64, 8 a source */
    srv_start(&s, &o);
    int idle[80];
    open_idle(idle, 80, "127.0.0.2", s.port);
    usleep(100 * 1000);
    uint64_t t0 = now_ms();
    assert_int_equal(get_from("127.0.0.3", s.port, "/healthz/ready"), 200);
    assert_int_equal(get_from("127.0.0.3", s.port, "/metrics"), 200);
    assert_true(now_ms() - t0 < 1000);
    srv_stop(&s);
    close_all(idle, 80);
    /* The source kept its 8; the other 72 were refused at accept. */
    assert_int_equal(s.stats.rejected[REQSERVER_SOURCE_CAP], 80 - HTTP_MAX_PER_SOURCE);
    assert_int_equal(s.stats.rejected[REQSERVER_FULL], 0);
    assert_int_equal(s.stats.served, 2);
}

static void idle_sockets_from_many_sources_make_room_by_eviction(void **state)
{
    struct srv s;
    struct http_server_opts o = {0};
    srv_start(&s, &o);
    /* 10 sources x 8: more than the 64 places. */
    int idle[80];
    for (int i = 0; i < 10; i++) {
        char src[16];
        snprintf(src, sizeof(src), "127.0.0.%d", 10 + i);
        open_idle(idle + 8 * i, 8, src, s.port);
    }
    usleep(100 * 1000);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(get_from("127.0.0.3", s.port, "/healthz/ready"), 200);
        assert_int_equal(get_from("127.0.0.4", s.port, "/metrics"), 200);
    }
    assert_true(now_ms() - t0 < 2000);
    srv_stop(&s);
    close_all(idle, 80);
    /* 80 idle for 64 places: each of the 16 extra evicted the oldest of
     * a source holding more, or was refused when its own source held as
     * many as any; the first fresh client evicted too (later ones may
     * have found a place free). */
    assert_true(s.stats.rejected[REQSERVER_EVICTED] + s.stats.rejected[REQSERVER_FULL] >= 16 + 1);
    assert_true(s.stats.rejected[REQSERVER_FULL] <= 16); /* never a fresh client */
    assert_int_equal(s.stats.served, 10);
}

static void a_full_table_refuses_a_source_that_already_holds_the_most(void **state)
{
    struct srv s;
    struct http_server_opts o = {.max_clients = 4, .max_per_source = 3};
    srv_start(&s, &o);
    int idle[4];
    open_idle(idle, 2, "127.0.0.10", s.port);
    open_idle(idle + 2, 2, "127.0.0.11", s.port);
    usleep(100 * 1000);
    /* Full; 127.0.0.10 holds as many as anyone: its newcomer is refused
     * (evicting would only trade its sockets for the other source's). */
    assert_int_equal(get_from("127.0.0.10", s.port, "/healthz/ready"), 0);
    /* A source holding none evicts the oldest of a source holding two. */
    assert_int_equal(get_from("127.0.0.12", s.port, "/healthz/ready"), 200);
    srv_stop(&s);
    close_all(idle, 4);
    assert_int_equal(s.stats.rejected[REQSERVER_FULL], 1);
    assert_int_equal(s.stats.rejected[REQSERVER_EVICTED], 1);
    assert_int_equal(s.stats.served, 1);
}

static void slow_headers_are_dropped_at_the_deadline(void **state)
{
    struct srv s;
    struct http_server_opts o = {.read_ms = 300};
    srv_start(&s, &o);
    int fd = connect_from("127.0.0.2", s.port);
    uint64_t t0 = now_ms();
    static const char head[] = "GET /metrics HTTP/1.1\r\nX-Slow: ";
    assert_int_equal(send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(head) - 1);
    /* A byte every 50 ms, never the end of the head. */
    long got = -1;
    while (now_ms() - t0 < 2000) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            got = read_all(fd, 100, NULL);
            break;
        }
    }
    uint64_t held = now_ms() - t0;
    close(fd);
    srv_stop(&s);
    assert_int_equal(got, 0); /* closed, no response */
    assert_true(held >= 250 && held < 1000);
    assert_int_equal(s.stats.rejected[REQSERVER_READ_TIMEOUT], 1);
}

static void a_client_that_never_reads_is_dropped(void **state)
{
    struct srv s;
    struct http_server_opts o = {.write_ms = 300};
    srv_start(&s, &o);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons(s.port)};
    inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&da, sizeof(da)), 0);
    static const char req[] = "GET /big HTTP/1.1\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    usleep(800 * 1000); /* not reading */
    /* Meanwhile the server was not stuck on it. */
    assert_int_equal(get_from("127.0.0.3", s.port, "/healthz/ready"), 200);
    long got = read_all(fd, 2000, NULL);
    close(fd);
    srv_stop(&s);
    assert_true(got >= 0);             /* the server ended it ... */
    assert_true(got < (long)BIG_BODY); /* ... before the response was taken */
    assert_int_equal(s.stats.rejected[REQSERVER_WRITE_TIMEOUT], 1);
}

/* Sends `req` (len bytes) from a fresh client: the response's status,
 * and whether the server then closed (rather than held) the connection. */
static int send_request(uint16_t port, const char *req, size_t len, bool *closed)
{
    int fd = connect_from("127.0.0.2", port), status = 0;
    assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    *closed = read_all(fd, 2000, &status) >= 0;
    close(fd);
    return status;
}

static void oversize_requests_are_answered_and_closed(void **state)
{
    struct srv s;
    struct http_server_opts o = {0};
    srv_start(&s, &o);
    size_t cap = HTTP_MAX_HEAD * 2;
    char *req = malloc(cap);
    assert_non_null(req);
    bool closed;
    /* A head over 8 KiB that never ends: 431. */
    int n = snprintf(req, cap, "GET /metrics HTTP/1.1\r\nX-Filler: ");
    memset(req + n, 'a', cap - (size_t)n);
    assert_int_equal(send_request(s.port, req, cap, &closed), 431);
    assert_true(closed);
    /* A body: 413. */
    n = snprintf(req, cap, "POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
    assert_int_equal(send_request(s.port, req, (size_t)n, &closed), 413);
    assert_true(closed);
    /* A path over 512 bytes: 414. */
    n = snprintf(req, cap, "GET /%0600d HTTP/1.1\r\n\r\n", 0);
    assert_int_equal(send_request(s.port, req, (size_t)n, &closed), 414);
    assert_true(closed);
    free(req);
    srv_stop(&s);
    assert_int_equal(s.stats.rejected[REQSERVER_TOO_LARGE], 1);
}

static void state_changing_routes_need_a_local_only_server(void **state)
{
    static const struct http_route post_route[] = {{"/logging", ok_handler, NULL, HTTP_ROUTE_POST}};
    struct loop *loop;
    struct http_server *h = NULL;
    struct meshd_addr any = {.family = MESHD_AF_INET},
                      lo = {.family = MESHD_AF_INET, .addr = {127, 0, 0, 1}};
    assert_int_equal(loop_new(&loop), 0);
    /* A POST route on a pod-reachable address is refused at construction. */
    struct http_server_opts o = {.addr = &any};
    assert_int_equal(http_server_new(loop, &o, post_route, 1, &h), -EINVAL);
    /* Local-only means a loopback address. */
    o.local_only = true;
    assert_int_equal(http_server_new(loop, &o, post_route, 1, &h), -EINVAL);
    o.addr = &lo;
    assert_int_equal(http_server_new(loop, &o, post_route, 1, &h), 0);
    http_server_free(h);
    loop_run_once(loop, 0);
    loop_free(loop);
}

static void post_to_a_read_only_route_is_refused(void **state)
{
    struct srv s;
    struct http_server_opts o = {0};
    srv_start(&s, &o);
    int fd = connect_from("127.0.0.2", s.port), status = 0;
    static const char req[] = "POST /metrics HTTP/1.1\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    read_all(fd, 2000, &status);
    close(fd);
    srv_stop(&s);
    assert_int_equal(status, 405);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the attacks log a warning each */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_parser_table),
        cmocka_unit_test(overlong_targets_and_heads_are_refused),
        cmocka_unit_test(idle_sockets_from_one_source_do_not_starve_probes),
        cmocka_unit_test(idle_sockets_from_many_sources_make_room_by_eviction),
        cmocka_unit_test(a_full_table_refuses_a_source_that_already_holds_the_most),
        cmocka_unit_test(slow_headers_are_dropped_at_the_deadline),
        cmocka_unit_test(a_client_that_never_reads_is_dropped),
        cmocka_unit_test(oversize_requests_are_answered_and_closed),
        cmocka_unit_test(state_changing_routes_need_a_local_only_server),
        cmocka_unit_test(post_to_a_read_only_route_is_refused),
        cmocka_unit_test(a_body_past_its_bound_is_answered_503),
        cmocka_unit_test(client_stats_render_every_reason_and_the_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
