/* AUTO_PASSTHROUGH's SNI names (route/auto_sni.c): Istio's cluster names
 * parsed into port, subset and host, and hostile or malformed names
 * refused, one row per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "route/auto_sni.h"

static const struct ok_case {
    const char *what, *sni;
    unsigned port;
    const char *subset, *host;
} accepted[] = {
    {"the whole service (empty subset)", "outbound_.80_._.echo.default.svc.cluster.local", 80, "",
     "echo.default.svc.cluster.local"},
    {"a subset", "outbound_.9080_.v2_.reviews.bookinfo.svc.cluster.local", 9080, "v2",
     "reviews.bookinfo.svc.cluster.local"},
    {"the largest port", "outbound_.65535_._.a.b", 65535, "", "a.b"},
    {"port 1, a one-label host", "outbound_.1_.x-1_.a", 1, "x-1", "a"},
    {"a 63-byte subset",
     "outbound_.80_.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_.h.local", 80,
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "h.local"},
};

static void test_istio_cluster_names_parse_into_port_subset_host(void **state)
{
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        struct gw_auto_sni a;
        int rc = gw_auto_sni_parse(accepted[i].sni, &a);
        if (rc != 0)
            fail_msg("%s: %s refused", accepted[i].what, accepted[i].sni);
        assert_int_equal(a.port, accepted[i].port);
        assert_string_equal(a.subset, accepted[i].subset);
        assert_string_equal(a.host, accepted[i].host);
    }
}

static const struct bad_case {
    const char *what, *sni;
} refused[] = {
    {"empty", ""},
    {"a plain host name", "echo.default.svc.cluster.local"},
    {"inbound, not outbound", "inbound_.80_._.echo.default.svc.cluster.local"},
    {"Envoy's '|' form, not the SNI form", "outbound|80||echo.default.svc.cluster.local"},
    {"the prefix only", "outbound_."},
    {"no port", "outbound_._._.echo.local"},
    {"port 0", "outbound_.0_._.echo.local"},
    {"a leading zero", "outbound_.080_._.echo.local"},
    {"port past 65535", "outbound_.65536_._.echo.local"},
    {"a six-digit port", "outbound_.100000_._.echo.local"},
    {"a port with a sign", "outbound_.+80_._.echo.local"},
    {"a port with letters", "outbound_.8a0_._.echo.local"},
    {"no separator after the port", "outbound_.80._.echo.local"},
    {"no subset separator", "outbound_.80_.echo.local"},
    {"no host", "outbound_.80_._."},
    {"a subset with a dot", "outbound_.80_.v.1_.echo.local"},
    {"a subset in upper case", "outbound_.80_.V1_.echo.local"},
    {"a subset starting with '-'", "outbound_.80_.-v1_.echo.local"},
    {"a 64-byte subset",
     "outbound_.80_.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_.h.local"},
    {"a second subset separator", "outbound_.80_.v1_.v2_.echo.local"},
    {"an underscore in the host", "outbound_.80_._.echo_.local"},
    {"a wildcard host", "outbound_.80_._.*.local"},
    {"an empty label", "outbound_.80_._.echo..local"},
    {"a trailing dot", "outbound_.80_._.echo.local."},
    {"a leading dot", "outbound_.80_._..echo.local"},
    {"an upper-case host", "outbound_.80_._.Echo.local"},
    {"a host label past 63",
     "outbound_.80_._.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.local"},
    {"a slash (path-like)", "outbound_.80_._.echo.local/x"},
    {"a port suffix", "outbound_.80_._.echo.local:80"},
    {"a NUL-free control byte", "outbound_.80_._.echo\x01.local"},
    {"high bytes", "outbound_.80_._.\xc3\xa9.local"},
};

static void test_malformed_and_hostile_names_are_refused(void **state)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct gw_auto_sni a;
        memset(&a, 'x', sizeof(a));
        if (gw_auto_sni_parse(refused[i].sni, &a) != -EINVAL)
            fail_msg("%s: %s accepted", refused[i].what, refused[i].sni);
        /* nothing half-parsed is left for a caller to use */
        assert_int_equal(a.port, 0);
        assert_string_equal(a.host, "");
    }
}

static void test_names_past_the_sni_bound_are_refused(void **state)
{
    /* 253 bytes is the SNI the peek admits; one more is refused. */
    char sni[300] = "outbound_.80_._.";
    size_t n = strlen(sni);
    while (n < 253) { /* labels of 9 + '.' */
        size_t k = 253 - n < 10 ? 253 - n : 10;
        memset(sni + n, 'a', k);
        if (k == 10)
            sni[n + 9] = '.';
        n += k;
    }
    sni[n] = '\0';
    if (sni[n - 1] == '.')
        sni[n - 1] = 'a';
    struct gw_auto_sni a;
    assert_int_equal(gw_auto_sni_parse(sni, &a), 0);
    assert_int_equal(strlen(a.host), 253 - strlen("outbound_.80_._."));
    sni[n] = 'a';
    sni[n + 1] = '\0';
    assert_int_equal(gw_auto_sni_parse(sni, &a), -EINVAL);
    assert_int_equal(gw_auto_sni_parse(NULL, &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_istio_cluster_names_parse_into_port_subset_host),
        cmocka_unit_test(test_malformed_and_hostile_names_are_refused),
        cmocka_unit_test(test_names_past_the_sni_bound_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
