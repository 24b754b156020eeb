/* ALPN at the edge (gateway/edge_tls.c edge_tls_alpn_select): the
 * gateway offers h2 then http/1.1 in its own order of preference, as
 * Envoy's gateway listener does, whatever order the client lists them
 * in; a client offering neither gets no ALPN; a list whose lengths lie
 * is never read past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gateway/edge_tls.h"

static const struct alpn_case {
    const char *what;
    const unsigned char *wire; /* the ClientHello's protocol list, wire format */
    unsigned len;
    const char *want; /* NULL: -ENOENT */
} cases[] = {
    {"h2 and http/1.1 (curl's order): h2", (const unsigned char *)"\x02h2\x08http/1.1", 12, "h2"},
    {"http/1.1 first: still h2, the server's preference",
     (const unsigned char *)"\x08http/1.1\x02h2", 12, "h2"},
    {"http/1.1 only", (const unsigned char *)"\x08http/1.1", 9, "http/1.1"},
    {"h2 only", (const unsigned char *)"\x02h2", 3, "h2"},
    {"h3 and spdy: none", (const unsigned char *)"\x02h3\x06spdy/3", 10, NULL},
    {"h2c is not h2", (const unsigned char *)"\x03h2c", 4, NULL},
    {"a prefix of http/1.1 is not it", (const unsigned char *)"\x07http/1.", 8, NULL},
    {"empty list", (const unsigned char *)"", 0, NULL},
    {"a length past the end: not read", (const unsigned char *)"\x09http/1.1", 9, NULL},
    {"a zero length stops the walk", (const unsigned char *)"\x00\x02h2", 4, NULL},
    {"h2 after an unknown protocol", (const unsigned char *)"\x05spdy1\x02h2", 9, "h2"},
};

static void test_alpn_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct alpn_case *c = &cases[i];
        const unsigned char *out = NULL;
        unsigned char outlen = 0;
        int rc = edge_tls_alpn_select(c->wire, c->len, &out, &outlen);
        if (!c->want) {
            assert_int_equal(rc, -ENOENT);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(outlen, strlen(c->want));
        assert_memory_equal(out, c->want, outlen);
        /* The answer points into the client's list, as OpenSSL requires. */
        assert_true(out > c->wire && out + outlen <= c->wire + c->len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpn_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
