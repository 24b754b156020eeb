/* The HTTP carrier against upstreams that misbehave, and the edges of a
 * connection's life (agent/http/proxy.c, upstream.c), on a real loop with
 * a scripted loopback upstream (tests/unit/support/hp_fixture.h): an
 * upstream that resets or closes before answering (503 UC, not retried
 * under Istio's default policy: the request may have been served), or
 * in the middle of a body (the client is cut); bytes after a response
 * nobody asked for never answer the next request; a malformed response;
 * a body too big to replay is not retried; a client that half-closes
 * still gets its answer; an upgrade becomes raw bytes both ways; a client
 * that does not read stops the proxy reading its upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/model_http.h"
#include "core/loop.h"
#include "support/hp_fixture.h"

#define REQ(path)  "GET " path " HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n"
#define R200(body) "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" body
#define R503       "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
#define UC_BODY                                                                                    \
    "upstream connect error or disconnect/reset before headers. reset reason: connection "         \
    "termination"

static struct http_proxy_stats stats(struct hpf *f)
{
    struct http_proxy_stats st;
    http_proxy_get_stats(f->hp, &st);
    return st;
}

static const char *local(const char *status, const char *body)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "HTTP/1.1 %s\r\ncontent-type: text/plain\r\nserver: meshd\r\nContent-Length: "
             "%zu\r\n\r\n%s",
             status, strlen(body), body);
    return buf;
}

static void upstream_fails_before_answering(void **state)
{
    (void)state;
    static const struct cfg_http_route on_reset = {
        .retries = {.set = true, .attempts = 1, .retry_on = CFG_RETRY_RESET}};
    static const struct {
        const char *name;
        const struct cfg_http_route *actions;
        struct hpf_step steps[2];
        const char *want;
        int routes, failed, status;
        const char *flags;
    } rows[] = {
        {"reset after reading the request: 503 UC, not retried",
         NULL,
         {{.reset = true}},
         NULL,
         1,
         1,
         503,
         "UC"},
        {"closed after reading the request: 503 UC, not retried",
         NULL,
         {{.close = true}},
         NULL,
         1,
         1,
         503,
         "UC"},
        {"a malformed response: not passed on",
         NULL,
         {{.send = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"}},
         NULL,
         1,
         1,
         503,
         "UC"},
        {"reset with retryOn reset: retried on another endpoint",
         &on_reset,
         {{.reset = true}, {.send = R200("ok")}},
         R200("ok"),
         2,
         1,
         200,
         "-"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = rows[i].actions}}, 1);
        hpf_script(f, rows[i].steps, 2);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, REQ("/a"));
        hpf_expect(f, rows[i].want ? rows[i].want : local("503 Service Unavailable", UC_BODY));
        assert_int_equal(f->routes, rows[i].routes);
        assert_int_equal(f->frees, rows[i].routes);
        assert_int_equal(f->frees_failed, rows[i].failed);
        assert_true(f->freed_failed[0]);
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].status, rows[i].status);
        assert_string_equal(f->reports[0].flags, rows[i].flags);
        assert_string_equal(hpf_up_rx(f, 0), REQ("/a"));
        hpf_free(f);
    }
}

/* Cut in the middle of the body: too late for a reply, the client's
 * connection is cut after what arrived. */
static void upstream_reset_mid_body_cuts_the_client(void **state)
{
    (void)state;
    static const char part[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = part, .reset = true}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    assert_true(hpf_wait_eof(f));
    /* Never a whole response: at most what arrived, then the end. */
    assert_true(f->cli_len <= strlen(part));
    assert_memory_equal(f->cli, part, f->cli_len);
    hpf_wait_count(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "UC");
    assert_int_equal(f->frees, 1);
    assert_true(f->freed_failed[0]);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 200);
    assert_int_equal(f->reports[0].resp_bytes, 3);
    hpf_free(f);
}

/* A second response in the same write as the first answers nothing: the
 * connection is dropped, and a pipelined request waiting for an upstream
 * gets its own answer, not that one. */
static void unsolicited_response_never_answers_the_next_request(void **state)
{
    (void)state;
    print_message("  pipelined\n");
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R200("x1") R200("ev")}, {.send = R200("x2")}}, 2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/1") REQ("/2"));
    hpf_expect(f, R200("x1") R200("x2"));
    assert_int_equal(f->accepts, 2);
    assert_string_equal(hpf_up_rx(f, 0), REQ("/1"));
    assert_string_equal(hpf_up_rx(f, 1), REQ("/2"));
    assert_int_equal(f->frees_failed, 0);
    hpf_free(f);

    print_message("  one after the other\n");
    f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R200("x1") R200("ev")}, {.send = R200("x2")}}, 2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/1"));
    hpf_expect(f, R200("x1"));
    assert_int_equal(stats(f).upstreams_idle, 0);
    hpf_send(f, REQ("/2"));
    hpf_expect(f, R200("x2"));
    assert_int_equal(f->accepts, 2);
    hpf_free(f);
}

/* Past HTTP_RETRY_BODY_MAX the body is streamed, not kept: a 503 is then
 * final. */
static void body_too_big_to_replay_not_retried(void **state)
{
    (void)state;
    enum { BODY = 70000 };
    static char req[BODY + 256];
    int h = snprintf(req, sizeof(req),
                     "POST /big HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: "
                     "%d\r\n\r\n",
                     BODY);
    memset(req + h, 'b', BODY);
    req[h + BODY] = '\0';
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R503}, {.send = R200("ok")}}, 2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, req);
    hpf_expect(f, R503);
    assert_int_equal(f->routes, 1);
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->up[0].len, strlen(req)); /* all of it, once */
    assert_int_equal(f->reports[0].req_bytes, BODY);
    assert_int_equal(f->reports[0].status, 503);
    hpf_free(f);
}

static void half_closed_client_still_answered(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    shutdown(f->client, SHUT_WR);
    assert_true(hpf_wait_eof(f));
    assert_string_equal(f->cli, R200("ok"));
    hpf_wait_count(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "-");
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 200);
    assert_int_equal(f->frees_failed, 0);
    hpf_free(f);
}

/* 101: the connection leaves HTTP and carries raw bytes both ways. */
static void upgrade_becomes_raw_bytes(void **state)
{
    (void)state;
    static const char up[] =
        "GET /ws HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nConnection: upgrade\r\nUpgrade: "
        "websocket\r\n\r\n";
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: "
                             "websocket\r\n\r\n";
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = sw}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, up);
    hpf_expect(f, sw);
    assert_string_equal(hpf_up_rx(f, 0), up);
    hpf_send(f, "ping\r\n\r\nGET / HTTP/1.1\r\n\r\n"); /* not HTTP any more */
    uint64_t t0 = loop_now_ns();
    while (f->up[0].len < strlen(up) + 30 && hpf_ms_since(t0) < HPF_WAIT_MS)
        hpf_spin(f, 2);
    assert_string_equal(hpf_up_rx(f, 0) + strlen(up), "ping\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_int_equal(f->routes, 1);
    assert_int_equal(send(f->up[0].io.fd, "pong", 4, 0), 4);
    hpf_expect(f, "pong");
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 101);
    close(f->client);
    f->client = -1;
    hpf_wait_count(f, &f->nclosed, 1);
    assert_int_equal(f->nclosed, 1);
    hpf_free(f);
}

/* An idle upstream was opened from one pod's netns with its address:
 * another pod's request to the same endpoint never rides on it. */
static void idle_upstream_reused_by_its_own_pod_only(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(
        f, (struct hpf_step[]){{.send = R200("a1")}, {.send = R200("b1")}, {.send = R200("a2")}},
        3);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        f->use_pod2 = i == 1;
        assert_int_equal(hpf_session(f), 0);
        clients[i] = f->client;
        hpf_send(f, REQ("/x"));
        hpf_expect(f, i == 0 ? R200("a1") : i == 1 ? R200("b1") : R200("a2"));
    }
    assert_int_equal(f->accepts, 2); /* pod 1's, then pod 2's */
    assert_int_equal(f->up[0].requests, 2);
    assert_int_equal(f->up[1].requests, 1);
    struct http_proxy_stats st = stats(f);
    assert_int_equal(st.upstreams_opened, 2);
    assert_int_equal(st.upstreams_reused, 1);
    for (int i = 0; i < 2; i++)
        close(clients[i]);
    hpf_free(f);
}

/* A body that arrives in pieces reaches the client piece by piece, not
 * once the response is complete. */
static void body_streamed_as_it_arrives(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"}},
               1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_expect(f, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
    assert_int_equal(send(f->up[0].io.fd, "def", 3, 0), 3);
    hpf_expect(f, "def");
    assert_int_equal(f->nreports, 0); /* still in flight */
    assert_int_equal(send(f->up[0].io.fd, "ghi", 3, 0), 3);
    hpf_expect(f, "ghi");
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].resp_bytes, 9);
    hpf_free(f);
}

/* A client that does not read: the proxy stops reading the upstream
 * instead of buffering its body; once the client reads, every byte
 * arrives in order. */
static void slow_client_stops_reading_the_upstream(void **state)
{
    (void)state;
    enum { BODY = 32 << 20, CHUNK = 65536 };
    struct hpf *f = hpf_new(0);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/big"));
    hpf_wait_count(f, &f->up[0].requests, 1);
    assert_int_equal(f->up[0].requests, 1);
    int fd = f->up[0].io.fd;
    char head[128];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BODY);
    assert_int_equal(send(fd, head, (size_t)hl, 0), hl);
    static char chunk[CHUNK];
    size_t sent = 0;
    /* The client reads nothing for 300 ms while the server pushes (the
     * loop is run directly: the fixture's drain would read). */
    int client = f->client;
    uint64_t t0 = loop_now_ns();
    while (hpf_ms_since(t0) < 300) {
        for (int k = 0; k < 8 && sent < BODY; k++) {
            for (size_t j = 0; j < CHUNK; j++)
                chunk[j] = (char)((sent + j) * 7 >> 3);
            ssize_t n = send(fd, chunk, CHUNK < BODY - sent ? CHUNK : BODY - sent, MSG_DONTWAIT);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        loop_run_once(f->loop, 1);
    }
    assert_true(sent < BODY); /* the server is blocked: nobody reads it */
    size_t stalled = sent;
    /* Now the client reads everything, checking each byte. */
    char buf[CHUNK];
    size_t got = 0, want = (size_t)hl + BODY;
    bool intact = true;
    t0 = loop_now_ns();
    while (got < want && hpf_ms_since(t0) < 10000) {
        while (sent < BODY) {
            size_t len = CHUNK < BODY - sent ? CHUNK : BODY - sent;
            for (size_t j = 0; j < len; j++)
                chunk[j] = (char)((sent + j) * 7 >> 3);
            ssize_t n = send(fd, chunk, len, MSG_DONTWAIT);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        loop_run_once(f->loop, 1);
        ssize_t n;
        while ((n = recv(client, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            for (ssize_t j = 0; j < n; j++) {
                size_t pos = got + (size_t)j;
                if (pos >= (size_t)hl && buf[j] != (char)((pos - (size_t)hl) * 7 >> 3))
                    intact = false;
            }
            got += (size_t)n;
        }
    }
    print_message("  stalled after %zu of %d bytes\n", stalled, BODY);
    assert_int_equal(got, want);
    assert_true(intact);
    assert_int_equal(f->reports[0].resp_bytes, BODY);
    hpf_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upstream_fails_before_answering),
        cmocka_unit_test(upstream_reset_mid_body_cuts_the_client),
        cmocka_unit_test(unsolicited_response_never_answers_the_next_request),
        cmocka_unit_test(body_too_big_to_replay_not_retried),
        cmocka_unit_test(half_closed_client_still_answered),
        cmocka_unit_test(upgrade_becomes_raw_bytes),
        cmocka_unit_test(idle_upstream_reused_by_its_own_pod_only),
        cmocka_unit_test(body_streamed_as_it_arrives),
        cmocka_unit_test(slow_client_stops_reading_the_upstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
