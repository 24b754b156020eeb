/* The ClientHello SNI parser (gateway/sni.c) on real hellos OpenSSL
 * writes (TLS 1.2 and 1.3 clients, with and without a name), every
 * truncation of them (more bytes needed, never a wrong answer), and
 * hostile input: another record type, a lying length, a hello longer than
 * its record, a name with bytes no host name has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#include "gateway/sni.h"

/* The first flight of a client: its ClientHello record(s). */
static size_t client_hello(const char *sni, int max_version, uint8_t *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL *c = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(c, rb, wb);
    if (sni)
        SSL_set_tlsext_host_name(c, sni);
    SSL_connect(c); /* wants to read: the hello is in wb */
    int n = BIO_read(wb, out, (int)cap);
    SSL_free(c);
    SSL_CTX_free(ctx);
    return n > 0 ? (size_t)n : 0;
}

static const struct hello_case {
    const char *what, *sni;
    int version;
} hellos[] = {
    {"TLS 1.3 with a name", "app.example.com", TLS1_3_VERSION},
    {"TLS 1.2 with a name", "b.pt.example.com", TLS1_2_VERSION},
    {"no server_name extension", NULL, TLS1_3_VERSION},
};

static void test_real_hellos(void **state)
{
    for (size_t i = 0; i < sizeof(hellos) / sizeof(hellos[0]); i++) {
        uint8_t buf[SNI_PEEK_MAX];
        size_t n = client_hello(hellos[i].sni, hellos[i].version, buf, sizeof(buf));
        assert_true(n > 40);
        char sni[256];
        assert_int_equal(sni_parse(buf, n, sni, sizeof(sni)), 0);
        assert_string_equal(sni, hellos[i].sni ? hellos[i].sni : "");
        /* Every prefix asks for more, never answers wrong. */
        for (size_t k = 0; k < n; k++)
            if (sni_parse(buf, k, sni, sizeof(sni)) != -EAGAIN) {
                fprintf(stderr, "%s: prefix %zu of %zu: not -EAGAIN\n", hellos[i].what, k, n);
                fail();
            }
    }
}

static void test_hostile_input(void **state)
{
    uint8_t buf[SNI_PEEK_MAX];
    char sni[256];
    size_t n = client_hello("app.example.com", TLS1_3_VERSION, buf, sizeof(buf));
    static const uint8_t http[] = "GET / HTTP/1.1\r\n";
    assert_int_equal(sni_parse(http, sizeof(http) - 1, sni, sizeof(sni)), -EINVAL);
    uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    assert_int_equal(sni_parse(alert, sizeof(alert), sni, sizeof(sni)), -EINVAL);
    /* Records too short to hold a handshake header (found by fuzz_sni:
     * the body's length was rec - 4, unsigned). */
    static const uint8_t shorts[][8] = {
        {22, 3, 1, 0, 0}, {22, 3, 1, 0, 1, 1}, {22, 3, 1, 0, 3, 1, 0, 0}};
    static const size_t short_len[] = {5, 6, 8};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sni_parse(shorts[i], short_len[i], sni, sizeof(sni)), -EINVAL);
    /* A hello shorter than its record: only its own bytes are read. */
    uint8_t tiny[] = {22, 3, 1, 0, 8, 1, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(sni_parse(tiny, sizeof(tiny), sni, sizeof(sni)), -EINVAL);
    /* A record longer than TLS allows. */
    uint8_t big[] = {22, 3, 1, 0x40, 0x01, 1};
    assert_int_equal(sni_parse(big, sizeof(big), sni, sizeof(sni)), -EINVAL);
    /* A hello claiming more than its record holds: split, refused. */
    uint8_t split[16];
    memcpy(split, buf, sizeof(split));
    split[6] = 0x01; /* handshake length 65536+ */
    assert_int_equal(sni_parse(split, sizeof(split), sni, sizeof(sni)), -E2BIG);
    /* The name with a byte no host name has. */
    uint8_t *at = memmem(buf, n, "app.example.com", 15);
    assert_non_null(at);
    at[3] = '/';
    assert_int_equal(sni_parse(buf, n, sni, sizeof(sni)), -EINVAL);
    at[3] = '.';
    /* An extension length running past the hello. */
    uint8_t *ext = at - 9; /* server_name: type(2) len(2) list len(2) type(1) len(2) */
    assert_int_equal(ext[0] | ext[1], 0);
    ext[2] = 0xff;
    assert_int_equal(sni_parse(buf, n, sni, sizeof(sni)), -EINVAL);
    /* A name too long for the caller's buffer. */
    ext[2] = 0;
    n = client_hello("app.example.com", TLS1_3_VERSION, buf, sizeof(buf));
    assert_int_equal(sni_parse(buf, n, sni, 8), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_hellos),
        cmocka_unit_test(test_hostile_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
