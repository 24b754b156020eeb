/* Address conversion, parsing and formatting (agent/core/addr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/addr.h"

static void parse_and_format_round_trip(void **state)
{
    static const char *const cases[] = {"10.244.1.11:80", "0.0.0.0:0", "[fd00:10:244:1::b]:8080",
                                        "[::1]:15001", "255.255.255.255:65535"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct meshd_addr a;
        char buf[ADDR_STRLEN];
        assert_int_equal(addr_parse(cases[i], &a), 0);
        assert_string_equal(addr_format(&a, buf, sizeof(buf)), cases[i]);
    }
}

static void parse_rejects_malformed(void **state)
{
    static const char *const bad[] = {"",
                                      "10.0.0.1",
                                      "10.0.0.1:",
                                      "10.0.0.1:65536",
                                      "10.0.0.1:-1",
                                      "10.0.0.256:80",
                                      "[fd00::1]80",
                                      "fd00::1:80",
                                      "[::1:80",
                                      "10.0.0.1:8x",
                                      "[zz::1]:80",
                                      ":80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct meshd_addr a;
        assert_int_not_equal(addr_parse(bad[i], &a), 0);
    }
}

static void v4_mapped_becomes_plain_ipv4(void **state)
{
    struct meshd_addr a = {.family = MESHD_AF_INET6, .port = htons(80)};
    a.addr[10] = a.addr[11] = 0xff;
    a.addr[12] = 10, a.addr[13] = 244, a.addr[14] = 2, a.addr[15] = 11;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(addr_to_sockaddr(&a, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    char buf[ADDR_STRLEN];
    assert_string_equal(addr_format(&a, buf, sizeof(buf)), "10.244.2.11:80");
}

static void sockaddr_round_trip(void **state)
{
    struct meshd_addr a, b;
    assert_int_equal(addr_parse("[fd00::2]:443", &a), 0);
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(addr_to_sockaddr(&a, &ss, &len), 0);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
    assert_true(addr_equal(&a, &b));
    /* A truncated sockaddr is refused, not read past its end. */
    assert_int_not_equal(addr_from_sockaddr((struct sockaddr *)&ss, 8, &b), 0);
}

/* IPv4 is formatted by hand (the data path's per-request cost): every
 * digit count of an octet and a port, without the port, and cut short as
 * snprintf would cut it. */
static void ipv4_formats_as_inet_ntop_would(void **state)
{
    static const struct {
        uint8_t ip[4];
        uint16_t port;
        const char *with_port, *ip_only;
    } cases[] = {
        {{1, 22, 100, 9}, 7, "1.22.100.9:7", "1.22.100.9"},
        {{10, 99, 199, 250}, 15008, "10.99.199.250:15008", "10.99.199.250"},
        {{0, 0, 0, 0}, 0, "0.0.0.0:0", "0.0.0.0"},
        {{255, 255, 255, 255}, 65535, "255.255.255.255:65535", "255.255.255.255"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct meshd_addr a = {.family = MESHD_AF_INET, .port = htons(cases[i].port)};
        memcpy(a.addr, cases[i].ip, 4);
        char buf[ADDR_STRLEN];
        assert_string_equal(addr_format(&a, buf, sizeof(buf)), cases[i].with_port);
        assert_string_equal(addr_format_ip(&a, buf, sizeof(buf)), cases[i].ip_only);
        char small[6], cut[6];
        snprintf(cut, sizeof(cut), "%s", cases[i].with_port);
        assert_string_equal(addr_format(&a, small, sizeof(small)), cut);
    }
}

static void unknown_family_is_refused(void **state)
{
    struct meshd_addr a = {.family = 99};
    struct sockaddr_storage ss;
    socklen_t len;
    char buf[ADDR_STRLEN];
    assert_int_not_equal(addr_to_sockaddr(&a, &ss, &len), 0);
    assert_string_equal(addr_format(&a, buf, sizeof(buf)), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_format_round_trip),
        cmocka_unit_test(parse_rejects_malformed),
        cmocka_unit_test(v4_mapped_becomes_plain_ipv4),
        cmocka_unit_test(sockaddr_round_trip),
        cmocka_unit_test(ipv4_formats_as_inet_ntop_would),
        cmocka_unit_test(unknown_family_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
