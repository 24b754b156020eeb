/* HTTP/2 at the edge (agent/gateway/edge_h2.c) on a real loop: an h2
 * client (the codec, client role) on one end of a socket pair, edge_h2 on
 * the other, and a fake carrier behind it that reads each stream's
 * HTTP/1.1 request from the socket edge_h2 hands it and writes the
 * response. A stream's request arrives as HTTP/1.1 (Host from :authority,
 * Connection: close; a body of unknown length chunked), the response comes
 * back as the stream's (hop-by-hop fields dropped, Content-Length a
 * field); a response cut short resets the stream; CONNECT and a carrier
 * that cannot be opened refuse the stream while the connection lives on;
 * the client's close releases the connection once. */
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

#include "core/loop.h"
#include "gateway/edge_h2.h"
#include "http/h2.h"

struct resp {
    int status;
    char fields[512]; /* "name=value " ... */
    char body[256];
    size_t body_len;
    bool closed;
    uint32_t error;
};

struct fx {
    struct loop *loop;
    struct edge_h2s set;
    int client_fd;
    struct h2_conn *client;
    int carrier[4]; /* the streams' carrier ends, in order */
    int ncarrier;
    int open_rc; /* what open returns (0: takes the fd) */
    int released;
};

static int fx_open(void *ctx, void *user, int fd)
{
    struct fx *f = ctx;
    assert_ptr_equal(user, f); /* the connection's user, for each stream */
    if (f->open_rc) {
        close(fd);
        return f->open_rc;
    }
    assert_true(f->ncarrier < 4);
    f->carrier[f->ncarrier++] = fd;
    return 0;
}

static void fx_release(void *user)
{
    ((struct fx *)user)->released++;
}

static int c_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct resp *r = h2_stream_user(st);
    r->status = h->status;
    size_t o = 0;
    for (size_t i = 0; i < h->nfields; i++)
        o += (size_t)snprintf(r->fields + o, sizeof(r->fields) - o, "%s=%s ", h->fields[i].name,
                              h->fields[i].value);
    return 0;
}

static int c_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct resp *r = h2_stream_user(st);
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    h2_consume(((struct fx *)ctx)->client, st, n);
    return 0;
}

static void c_end(void *ctx, struct h2_stream *st) {}

static void c_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct resp *r = h2_stream_user(st);
    r->closed = true;
    r->error = error;
}

static void c_sent(void *ctx, struct h2_stream *st, size_t n) {}

static const struct h2_callbacks client_cb = {
    .on_head = c_head, .on_data = c_data, .on_end = c_end, .on_close = c_close, .on_sent = c_sent};

/* Moves bytes both ways a few rounds: client -> edge_h2, the loop, edge_h2 -> client. */
static void pump(struct fx *f)
{
    for (int round = 0; round < 20; round++) {
        const uint8_t *p;
        ssize_t n;
        while ((n = h2_conn_pull(f->client, &p)) > 0)
            assert_int_equal(send(f->client_fd, p, (size_t)n, MSG_NOSIGNAL), n);
        loop_run_once(f->loop, 5);
        uint8_t buf[65536];
        while ((n = recv(f->client_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
            assert_int_equal(h2_conn_recv(f->client, buf, (size_t)n), 0);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(loop_new(&f->loop), 0);
    f->set = (struct edge_h2s){.loop = f->loop, .open = fx_open, .user_free = fx_release, .ctx = f};
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    f->client_fd = sp[1];
    assert_int_equal(h2_conn_new(H2_CLIENT, &client_cb, f, &f->client), 0);
    assert_int_equal(edge_h2_start(&f->set, sp[0], f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    edge_h2s_close_all(&f->set);
    loop_run_once(f->loop, 0);
    assert_int_equal(f->released, 1); /* once, whatever ended it */
    for (int i = 0; i < f->ncarrier; i++)
        close(f->carrier[i]);
    h2_conn_free(f->client);
    close(f->client_fd);
    loop_free(f->loop);
    free(f);
    return 0;
}

static struct h2_stream *request(struct fx *f, const char *method, const char *path, bool end,
                                 struct resp *r)
{
    struct http_field fields[] = {http_field_of("user-agent", "t"),
                                  http_field_of("te", "trailers")};
    struct h2_head h = {.method = method,
                        .path = path,
                        .authority = "app.example.com",
                        .scheme = "https",
                        .fields = fields,
                        .nfields = 2,
                        .end_stream = end};
    struct h2_stream *st = NULL;
    assert_int_equal(h2_submit_request(f->client, &h, r, &st), 0);
    return st;
}

/* What the carrier got on stream `i` so far. */
static size_t carrier_read(struct fx *f, int i, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = recv(f->carrier[i], buf + n, cap - 1 - n, MSG_DONTWAIT)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    return n;
}

static void carrier_write(struct fx *f, int i, const char *s)
{
    assert_int_equal(send(f->carrier[i], s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void test_get_becomes_http1_and_back(void **state)
{
    struct fx *f = *state;
    struct resp r = {0};
    request(f, "GET", "/a?b=1", true, &r);
    pump(f);
    assert_int_equal(f->ncarrier, 1);
    char req[2048];
    carrier_read(f, 0, req, sizeof(req));
    assert_non_null(strstr(req, "GET /a?b=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "host: app.example.com\r\n"));
    assert_non_null(strstr(req, "user-agent: t\r\n"));
    assert_non_null(strstr(req, "Connection: close\r\n"));
    assert_null(strstr(req, "te: trailers"));      /* hop-by-hop: not for HTTP/1.1 */
    assert_null(strstr(req, "Transfer-Encoding")); /* no body */
    carrier_write(f, 0,
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                  "Keep-Alive: timeout=5\r\nX-A: b\r\n\r\nok");
    close(f->carrier[0]);
    f->carrier[0] = -1;
    pump(f);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.fields, "x-a=b content-length=2 ");
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "ok", 2);
    assert_true(r.closed);
    assert_int_equal(r.error, H2_NO_ERROR);
    f->ncarrier = 0;
}

static void test_body_of_unknown_length_is_chunked(void **state)
{
    struct fx *f = *state;
    struct resp r = {0};
    struct h2_stream *st = request(f, "POST", "/up", false, &r);
    assert_int_equal(h2_send_data(f->client, st, "hello", 5, false), 0);
    pump(f);
    assert_int_equal(h2_send_data(f->client, st, "world!", 6, true), 0);
    pump(f);
    char req[2048];
    carrier_read(f, 0, req, sizeof(req));
    const char *body = strstr(req, "\r\n\r\n");
    assert_non_null(strstr(req, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(body);
    assert_string_equal(body + 4, "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
    /* A chunked response: its framing goes, its bytes stay. */
    carrier_write(
        f, 0, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    pump(f);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.fields, "");
    assert_int_equal(r.body_len, 3);
    assert_true(r.closed);
    assert_int_equal(r.error, H2_NO_ERROR);
}

static void test_response_cut_short_resets_the_stream(void **state)
{
    struct fx *f = *state;
    struct resp r = {0}, r2 = {0};
    request(f, "GET", "/cut", true, &r);
    pump(f);
    carrier_write(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    close(f->carrier[0]);
    f->carrier[0] = -1;
    pump(f);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3);
    assert_true(r.closed);
    assert_int_equal(r.error, H2_INTERNAL_ERROR);
    /* The connection lives on. */
    request(f, "GET", "/next", true, &r2);
    pump(f);
    assert_int_equal(f->ncarrier, 2);
    carrier_write(f, 1, "HTTP/1.1 204 No Content\r\n\r\n");
    pump(f);
    assert_int_equal(r2.status, 204);
    assert_true(r2.closed);
    assert_int_equal(r2.error, H2_NO_ERROR);
}

static void test_refused_streams(void **state)
{
    struct fx *f = *state;
    struct resp r1 = {0}, r2 = {0}, r3 = {0};
    /* CONNECT (here as the client codec frames it, with a :path): a
     * tunnel, never opened at the edge. */
    request(f, "CONNECT", "/", true, &r1);
    pump(f);
    assert_true(r1.closed);
    assert_int_not_equal(r1.error, H2_NO_ERROR);
    assert_int_equal(f->ncarrier, 0);
    /* The carrier cannot take the stream. */
    f->open_rc = -ENOMEM;
    request(f, "GET", "/nomem", true, &r2);
    pump(f);
    assert_true(r2.closed);
    assert_int_not_equal(r2.error, H2_NO_ERROR);
    f->open_rc = 0;
    request(f, "GET", "/ok", true, &r3);
    pump(f);
    assert_int_equal(f->ncarrier, 1);
    carrier_write(f, 0, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    pump(f);
    assert_int_equal(r3.status, 200);
    assert_true(r3.closed);
    assert_int_equal(r3.error, H2_NO_ERROR);
}

static void test_client_close_ends_streams(void **state)
{
    struct fx *f = *state;
    struct resp r = {0};
    request(f, "GET", "/slow", true, &r);
    pump(f);
    assert_int_equal(f->ncarrier, 1);
    shutdown(f->client_fd, SHUT_RDWR);
    pump(f);
    assert_int_equal(f->released, 1);
    char buf[16];
    /* The carrier's socket was closed (reset: the stream was cut). */
    ssize_t n = recv(f->carrier[0], buf, sizeof(buf), MSG_DONTWAIT);
    while (n > 0)
        n = recv(f->carrier[0], buf, sizeof(buf), MSG_DONTWAIT);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_becomes_http1_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_of_unknown_length_is_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_cut_short_resets_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_ends_streams, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
