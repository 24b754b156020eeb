/* Protocol sniffing on a real socket (agent/http/sniff.c): the client's
 * first bytes decide, peeked and never consumed, so the carrier chosen
 * after reads them whole (a sniffed HTTP/1 connection is then served by
 * a session to the scripted upstream); a token cut short waits for more;
 * a server-first protocol (silence) is OTHER at the deadline; a client
 * that leaves first is GONE with its record ended. The byte table itself
 * is in test_http_proxy.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "support/hp_fixture.h"

#define MS 1000000ull

struct seen {
    int calls;
    int what;
    struct conn *c;
    char peek[128];
    ssize_t peeked;
};

static void on_sniffed(void *ctx, struct conn *c, enum http_sniffed what)
{
    struct seen *s = ctx;
    s->calls++;
    s->what = (int)what;
    s->c = c;
    if (what != HTTP_SNIFF_GONE) /* still the table's: the bytes are all there */
        s->peeked = recv(conn_app_fd(c), s->peek, sizeof(s->peek) - 1, MSG_PEEK | MSG_DONTWAIT);
}

static void sniffed_as_the_first_bytes_say(void **state)
{
    (void)state;
    static const struct {
        const char *name, *first, *later; /* later: sent 80 ms after first */
        bool close;                       /* the client closes after its bytes */
        int want;
        uint64_t min_ms;
    } rows[] = {
        {"a request line: HTTP1 at once", "GET / HTTP/1.1\r\n", NULL, false, HTTP_SNIFF_HTTP1, 0},
        {"TLS: OTHER at once", "\x16\x03\x01\x02\x00\x01", NULL, false, HTTP_SNIFF_OTHER, 0},
        {"the HTTP/2 preface: HTTP2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NULL, false,
         HTTP_SNIFF_HTTP2, 0},
        {"a method cut short, then the rest: HTTP1 once it came", "GE", "T / HTTP/1.1\r\n", false,
         HTTP_SNIFF_HTTP1, 80},
        {"silence (a server-first protocol): OTHER at the deadline", NULL, NULL, false,
         HTTP_SNIFF_OTHER, 200},
        {"a cut token, then a close: OTHER", "GE", NULL, true, HTTP_SNIFF_OTHER, 0},
        {"a close before any byte: GONE", NULL, NULL, true, HTTP_SNIFF_GONE, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        struct conn *c = hpf_conn(f);
        struct seen s = {0};
        uint64_t t0 = loop_now_ns();
        assert_int_equal(http_sniff(f->hp, c, 200 * MS, on_sniffed, &s), 0);
        if (rows[i].first)
            hpf_send(f, rows[i].first);
        if (rows[i].close) {
            close(f->client);
            f->client = -1;
        }
        if (rows[i].later) {
            hpf_spin(f, 80);
            assert_int_equal(s.calls, 0); /* still waiting for the token's end */
            hpf_send(f, rows[i].later);
        }
        hpf_wait_count(f, &s.calls, 1);
        assert_int_equal(s.calls, 1);
        assert_int_equal(s.what, rows[i].want);
        assert_ptr_equal(s.c, c);
        uint64_t ms = hpf_ms_since(t0);
        assert_true(ms >= rows[i].min_ms && ms < rows[i].min_ms + 300);
        if (rows[i].want == HTTP_SNIFF_GONE) {
            assert_int_equal(f->nclosed, 1); /* the sniffer ended it */
            assert_string_equal(resp_flag_name(f->closed.response_flag), "DC");
        } else {
            size_t n = (rows[i].first ? strlen(rows[i].first) : 0) +
                       (rows[i].later ? strlen(rows[i].later) : 0);
            assert_int_equal(s.peeked, n ? (ssize_t)n : rows[i].close ? 0 : -1);
            if (n) {
                s.peek[n] = '\0';
                assert_memory_equal(s.peek, rows[i].first, strlen(rows[i].first));
            }
            conn_end(c, 0, 0, 0, RESP_FLAG_NONE);
        }
        hpf_spin(f, 5);
        assert_int_equal(s.calls, 1); /* told once */
        hpf_free(f);
    }
}

/* Sniffed, then carried: the session reads the very bytes the sniffer
 * peeked. */
static void sniffed_http_is_served_whole(void **state)
{
    (void)state;
    static const char req[] = "GET /s HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = resp}}, 1);
    struct conn *c = hpf_conn(f);
    struct seen s = {0};
    assert_int_equal(http_sniff(f->hp, c, 200 * MS, on_sniffed, &s), 0);
    hpf_send(f, req);
    hpf_wait_count(f, &s.calls, 1);
    assert_int_equal(s.what, HTTP_SNIFF_HTTP1);
    assert_int_equal(hpf_start(f, c), 0);
    hpf_expect(f, resp);
    assert_string_equal(hpf_up_rx(f, 0), req);
    hpf_free(f);
}

/* Freeing the proxy with a sniff pending tells it GONE. */
static void proxy_freed_while_sniffing(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    struct conn *c = hpf_conn(f);
    struct seen s = {0};
    assert_int_equal(http_sniff(f->hp, c, 200 * MS, on_sniffed, &s), 0);
    hpf_spin(f, 5);
    assert_int_equal(s.calls, 0);
    http_proxy_free(f->hp);
    f->hp = NULL;
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.what, HTTP_SNIFF_GONE);
    assert_int_equal(f->nclosed, 1);
    hpf_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sniffed_as_the_first_bytes_say),
        cmocka_unit_test(sniffed_http_is_served_whole),
        cmocka_unit_test(proxy_freed_while_sniffing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
