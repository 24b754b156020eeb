/* The HTTP/2 codec (agent/http/h2.c over nghttp2): a client and a server
 * codec pumped into each other in memory. Requests and responses with
 * bodies and trailers arrive whole (pseudo-headers split out, fields in
 * order); each limit (head bytes, field count, concurrent streams, the
 * flow-control window the receiver has not consumed) holds; protocol
 * violations, a bad preface, a CONTINUATION flood and the rapid-reset
 * flood (CVE-2023-44487) end the connection with GOAWAY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* What one side's callbacks saw. */
struct side {
    struct h2_conn *c;
    int heads, trailers, ends, closes, refuse;
    uint32_t last_error;
    char method[16], path[64], authority[64], fields[512], trailer_fields[256];
    int status;
    size_t data;
    bool consume; /* consume what arrives at once */
    struct h2_stream *last;
};

static void fields_str(const struct h2_head *h, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->nfields && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s=%s", i ? " " : "", h->fields[i].name,
                              h->fields[i].value);
}

static int on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct side *s = ctx;
    s->last = st;
    if (h->trailers) {
        s->trailers++;
        fields_str(h, s->trailer_fields, sizeof(s->trailer_fields));
        return 0;
    }
    s->heads++;
    snprintf(s->method, sizeof(s->method), "%s", h->method ? h->method : "");
    snprintf(s->path, sizeof(s->path), "%s", h->path ? h->path : "");
    snprintf(s->authority, sizeof(s->authority), "%s", h->authority ? h->authority : "");
    s->status = h->status;
    fields_str(h, s->fields, sizeof(s->fields));
    return s->refuse;
}

static int on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct side *s = ctx;
    (void)p;
    s->data += n;
    if (s->consume)
        h2_consume(s->c, st, n);
    return 0;
}

static void on_end(void *ctx, struct h2_stream *st)
{
    struct side *s = ctx;
    (void)st;
    s->ends++;
}

static void on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct side *s = ctx;
    if (s->last == st)
        s->last = NULL;
    s->closes++;
    s->last_error = error;
}

static const struct h2_callbacks cbs = {
    .on_head = on_head, .on_data = on_data, .on_end = on_end, .on_close = on_close};

/* Moves bytes both ways until neither side has more (bounded). Returns
 * the server's h2_conn_recv result (0 or -errno). */
static int pump(struct side *cl, struct side *sv)
{
    int rc = 0;
    for (int round = 0; round < 200; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = h2_conn_pull(cl->c, &p)) > 0) {
            moved = true;
            if (rc == 0)
                rc = h2_conn_recv(sv->c, p, (size_t)n);
        }
        while ((n = h2_conn_pull(sv->c, &p)) > 0) {
            moved = true;
            h2_conn_recv(cl->c, p, (size_t)n);
        }
        if (!moved)
            break;
    }
    return rc;
}

static void pair(struct side *cl, struct side *sv)
{
    memset(cl, 0, sizeof(*cl));
    memset(sv, 0, sizeof(*sv));
    cl->consume = sv->consume = true;
    assert_int_equal(h2_conn_new(H2_CLIENT, &cbs, cl, &cl->c), 0);
    assert_int_equal(h2_conn_new(H2_SERVER, &cbs, sv, &sv->c), 0);
}

static void unpair(struct side *cl, struct side *sv)
{
    h2_conn_free(cl->c);
    h2_conn_free(sv->c);
}

static struct h2_stream *request(struct side *cl, const char *method, const char *path,
                                 const struct http_field *f, size_t n, bool end)
{
    struct h2_head h = {.method = method,
                        .path = path,
                        .authority = "svc",
                        .scheme = "http",
                        .fields = f,
                        .nfields = n,
                        .end_stream = end};
    struct h2_stream *st = NULL;
    assert_int_equal(h2_submit_request(cl->c, &h, NULL, &st), 0);
    return st;
}

/* --- good exchanges ------------------------------------------------------ */

static void requests_and_responses_arrive_whole(void **state)
{
    (void)state;
    static const struct {
        const char *name, *method, *path;
        size_t body;
        bool trailers;
        const char *want_fields;
    } rows[] = {
        {"a GET, no body", "GET", "/a?x=1", 0, false, "user-agent=t x-name=Value"},
        {"a POST with a body", "POST", "/p", 1000, false, "user-agent=t x-name=Value"},
        {"a body past one window, trailers after", "POST", "/big", 200000, true,
         "user-agent=t x-name=Value"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct side cl, sv;
        pair(&cl, &sv);
        /* Names go out lower case whatever the caller wrote. */
        struct http_field f[] = {http_field_of("User-Agent", "t"),
                                 http_field_of("x-name", "Value")};
        struct h2_stream *st = request(&cl, rows[i].method, rows[i].path, f, 2, rows[i].body == 0);
        static char body[200000];
        size_t sent = 0;
        assert_int_equal(pump(&cl, &sv), 0);
        while (sent < rows[i].body) { /* the queue is bounded: feed as it drains */
            size_t k = rows[i].body - sent > 50000 ? 50000 : rows[i].body - sent;
            if (h2_stream_queued(st) + k <= H2_MAX_FRAME_QUEUE) {
                assert_int_equal(h2_send_data(cl.c, st, body, k, sent + k == rows[i].body), 0);
                sent += k;
            }
            assert_int_equal(pump(&cl, &sv), 0);
        }
        assert_int_equal(sv.heads, 1);
        assert_string_equal(sv.method, rows[i].method);
        assert_string_equal(sv.path, rows[i].path);
        assert_string_equal(sv.authority, "svc");
        assert_string_equal(sv.fields, rows[i].want_fields);
        assert_int_equal(sv.data, rows[i].body);
        assert_int_equal(sv.ends, 1);
        /* The response: a head, a body, trailers (gRPC's status). */
        struct http_field rf[] = {http_field_of("content-type", "application/grpc")};
        struct h2_head rh = {.status = 200, .fields = rf, .nfields = 1};
        assert_int_equal(h2_submit_response(sv.c, sv.last, &rh), 0);
        assert_int_equal(h2_send_data(sv.c, sv.last, "hello", 5, !rows[i].trailers), 0);
        if (rows[i].trailers) {
            struct http_field tf[] = {http_field_of("grpc-status", "5"),
                                      http_field_of("grpc-message", "nope")};
            assert_int_equal(h2_send_trailers(sv.c, sv.last, tf, 2), 0);
        }
        assert_int_equal(pump(&cl, &sv), 0);
        assert_int_equal(cl.status, 200);
        assert_string_equal(cl.fields, "content-type=application/grpc");
        assert_int_equal(cl.data, 5);
        assert_int_equal(cl.ends, 1);
        assert_int_equal(cl.trailers, rows[i].trailers ? 1 : 0);
        if (rows[i].trailers)
            assert_string_equal(cl.trailer_fields, "grpc-status=5 grpc-message=nope");
        assert_int_equal(cl.closes, 1);
        assert_int_equal(cl.last_error, H2_NO_ERROR);
        assert_int_equal(sv.closes, 1);
        unpair(&cl, &sv);
    }
}

/* --- limits -------------------------------------------------------------- */

static void heads_past_the_limits_reset_the_stream(void **state)
{
    (void)state;
    static char big[H2_MAX_HEAD_BYTES];
    memset(big, 'a', sizeof(big) - 1);
    static const struct {
        const char *name;
        size_t nfields;
        bool big_value;
        bool refused;
    } rows[] = {
        {"100 fields: served", H2_MAX_FIELDS - 1, false, false},
        {"101 fields: reset", H2_MAX_FIELDS + 1, false, true},
        {"a head past 60 KiB: reset", 1, true, true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct side cl, sv;
        pair(&cl, &sv);
        static struct http_field f[H2_MAX_FIELDS + 1];
        static char names[H2_MAX_FIELDS + 1][16];
        for (size_t k = 0; k < rows[i].nfields; k++) {
            snprintf(names[k], sizeof(names[k]), "x-f%zu", k);
            f[k] = http_field_of(names[k], rows[i].big_value ? big : "v");
        }
        request(&cl, "GET", "/", f, rows[i].nfields, true);
        assert_int_equal(pump(&cl, &sv), 0);
        assert_int_equal(sv.heads, rows[i].refused ? 0 : 1);
        if (rows[i].refused) {
            assert_int_equal(cl.closes, 1); /* the client's stream was reset */
            assert_int_not_equal(cl.last_error, H2_NO_ERROR);
        }
        unpair(&cl, &sv);
    }
}

static void the_peers_stream_limit_holds(void **state)
{
    (void)state;
    struct side cl, sv;
    pair(&cl, &sv);
    assert_int_equal(pump(&cl, &sv), 0); /* SETTINGS exchanged */
    unsigned opened = 0;
    for (unsigned k = 0; k < H2_MAX_STREAMS + 10; k++) {
        struct h2_head h = {.method = "GET", .path = "/", .authority = "svc", .end_stream = true};
        struct h2_stream *st;
        if (h2_submit_request(cl.c, &h, NULL, &st) == 0)
            opened++;
    }
    assert_int_equal(opened, H2_MAX_STREAMS);
    assert_false(h2_conn_accepting(cl.c));
    assert_int_equal(pump(&cl, &sv), 0);
    assert_int_equal(sv.heads, H2_MAX_STREAMS);
    unpair(&cl, &sv);
}

static void unconsumed_data_stops_the_sender_at_the_window(void **state)
{
    (void)state;
    struct side cl, sv;
    pair(&cl, &sv);
    sv.consume = false; /* the server passes nothing on */
    struct h2_stream *st = request(&cl, "POST", "/", NULL, 0, false);
    static char body[200000];
    assert_int_equal(h2_send_data(cl.c, st, body, sizeof(body), true), 0);
    assert_int_equal(pump(&cl, &sv), 0);
    assert_int_equal(sv.data, H2_STREAM_WINDOW);
    assert_int_equal(h2_stream_queued(st), sizeof(body) - H2_STREAM_WINDOW);
    /* Consumed: the window reopens, as much more arrives. */
    h2_consume(sv.c, sv.last, H2_STREAM_WINDOW);
    assert_int_equal(pump(&cl, &sv), 0);
    assert_int_equal(sv.data, 2 * H2_STREAM_WINDOW);
    /* What one stream may queue is bounded too. */
    static char more[H2_MAX_FRAME_QUEUE + 1];
    struct h2_stream *st2 = request(&cl, "POST", "/2", NULL, 0, false);
    assert_int_equal(h2_send_data(cl.c, st2, more, sizeof(more), false), -ENOBUFS);
    unpair(&cl, &sv);
}

/* A reader that always leaves a remainder unread (a slow client behind a
 * long stream): what was framed does not count against the stream's
 * queue bound, so the stream carries far more than the bound in total. */
static void a_long_stream_to_a_slow_reader_stays_within_the_queue_bound(void **state)
{
    (void)state;
    struct side cl, sv;
    pair(&cl, &sv);
    sv.consume = false;
    struct h2_stream *st = request(&cl, "POST", "/", NULL, 0, false);
    static char body[100000], chunk[16384];
    assert_int_equal(h2_send_data(cl.c, st, body, sizeof(body), false), 0);
    assert_int_equal(pump(&cl, &sv), 0);
    h2_consume(sv.c, sv.last, 30000);
    assert_int_equal(pump(&cl, &sv), 0);
    size_t total = sizeof(body);
    for (int i = 0; i < 20; i++) { /* 427,680 bytes in all, past H2_MAX_FRAME_QUEUE */
        assert_int_equal(h2_send_data(cl.c, st, chunk, sizeof(chunk), false), 0);
        total += sizeof(chunk);
        assert_int_equal(pump(&cl, &sv), 0);
        h2_consume(sv.c, sv.last, sizeof(chunk));
        assert_int_equal(pump(&cl, &sv), 0);
        assert_true(h2_stream_queued(st) < H2_STREAM_WINDOW); /* a remainder waits */
    }
    assert_true(total > H2_MAX_FRAME_QUEUE);
    assert_int_equal(sv.data, total - h2_stream_queued(st));
    unpair(&cl, &sv);
}

/* --- violations and floods ---------------------------------------------- */

/* A frame header: length, type, flags, stream. */
static size_t frame(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(stream >> 24);
    p[6] = (uint8_t)(stream >> 16);
    p[7] = (uint8_t)(stream >> 8);
    p[8] = (uint8_t)stream;
    return 9;
}

/* Whether what the server would send holds a GOAWAY with `code`. */
static bool sends_goaway(struct h2_conn *c, uint32_t code)
{
    const uint8_t *p;
    ssize_t n;
    bool found = false;
    while ((n = h2_conn_pull(c, &p)) > 0) {
        for (ssize_t i = 0; i + 17 <= n; i++) {
            /* type GOAWAY on stream 0, 8 bytes or more (debug data may follow) */
            if (p[i + 3] == 0x7 && p[i] == 0 && p[i + 2] >= 8 && !p[i + 5] && !p[i + 6] &&
                !p[i + 7] && !p[i + 8] &&
                ((uint32_t)p[i + 13] << 24 | (uint32_t)p[i + 14] << 16 | (uint32_t)p[i + 15] << 8 |
                 p[i + 16]) == code)
                found = true;
        }
    }
    return found;
}

static void violations_end_the_connection_with_goaway(void **state)
{
    (void)state;
    static uint8_t buf[64 * 1024];
    static const struct {
        const char *name;
        int kind;
        uint32_t code;
    } rows[] = {
        {"not the preface", 0, H2_PROTOCOL_ERROR},
        {"DATA on stream 0", 1, H2_PROTOCOL_ERROR},
        {"a HEADERS block continued past the CONTINUATION bound", 2, H2_ENHANCE_CALM},
        {"a frame past the maximum size", 3, 0x6 /* FRAME_SIZE_ERROR */},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct side sv = {.consume = true};
        assert_int_equal(h2_conn_new(H2_SERVER, &cbs, &sv, &sv.c), 0);
        size_t n = 0;
        if (rows[i].kind == 0) {
            memcpy(buf, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
            n = 27;
        } else {
            memcpy(buf, PREFACE, 24);
            n = 24 + frame(buf + 24, 0, 0x4, 0, 0); /* SETTINGS, empty */
        }
        if (rows[i].kind == 1) {
            n += frame(buf + n, 4, 0x0, 0, 0);
            memset(buf + n, 0, 4);
            n += 4;
        } else if (rows[i].kind == 2) {
            /* HEADERS (":method: GET" indexed, no END_HEADERS), then
             * CONTINUATIONs with one more field each, never ending. */
            n += frame(buf + n, 1, 0x1, 0x1, 1);
            buf[n++] = 0x82;
            for (int k = 0; k < 40; k++) {
                n += frame(buf + n, 1, 0x9, 0, 1);
                buf[n++] = 0x84; /* :path: / */
            }
        } else if (rows[i].kind == 3) {
            n += frame(buf + n, 20000, 0x0, 0, 1); /* past the default 16384 */
            memset(buf + n, 0, 20000);
            n += 20000;
        }
        /* Refused at once, or (DATA on stream 0) once nghttp2's GOAWAY is
         * out: either way the connection is over, with GOAWAY. */
        int rc = h2_conn_recv(sv.c, buf, n);
        assert_true(rc == -EPROTO || rc == 0);
        assert_true(sends_goaway(sv.c, rows[i].code));
        assert_true(h2_conn_done(sv.c));
        assert_int_equal(h2_conn_recv(sv.c, buf, 1), -EPROTO);
        struct h2_stats st;
        h2_conn_get_stats(sv.c, &st);
        assert_true(st.violations >= 1);
        assert_int_equal(sv.heads, 0);
        h2_conn_free(sv.c);
    }
}

static void rapid_reset_is_bounded(void **state)
{
    (void)state;
    struct side cl, sv;
    pair(&cl, &sv);
    assert_int_equal(pump(&cl, &sv), 0);
    int rc = 0;
    unsigned k;
    /* Open a stream and cancel it at once, again and again. */
    for (k = 0; k < 4 * H2_RST_MAX && rc == 0; k++) {
        struct h2_stream *st = request(&cl, "GET", "/", NULL, 0, true);
        for (int half = 0; half < 2 && rc == 0; half++) {
            if (half) /* the request went out: now its reset */
                h2_reset(cl.c, st, H2_CANCEL);
            const uint8_t *p;
            ssize_t n;
            while ((n = h2_conn_pull(cl.c, &p)) > 0 && rc == 0)
                rc = h2_conn_recv(sv.c, p, (size_t)n);
        }
        const uint8_t *p;
        ssize_t n;
        while ((n = h2_conn_pull(sv.c, &p)) > 0)
            h2_conn_recv(cl.c, p, (size_t)n);
    }
    assert_int_equal(rc, -EPROTO);
    assert_true(k <= H2_RST_MAX + 2); /* cut just past the budget */
    struct h2_stats st;
    h2_conn_get_stats(sv.c, &st);
    assert_int_equal(st.resets_received, H2_RST_MAX + 1);
    unpair(&cl, &sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_and_responses_arrive_whole),
        cmocka_unit_test(heads_past_the_limits_reset_the_stream),
        cmocka_unit_test(the_peers_stream_limit_holds),
        cmocka_unit_test(unconsumed_data_stops_the_sender_at_the_window),
        cmocka_unit_test(a_long_stream_to_a_slow_reader_stays_within_the_queue_bound),
        cmocka_unit_test(violations_end_the_connection_with_goaway),
        cmocka_unit_test(rapid_reset_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
