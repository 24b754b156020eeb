/* The self-connection guards (proxy/listener.c, core/upstream.c), one row
 * per case: which ports are meshd's, which local addresses are a pod's,
 * which peers may be meshd itself, and the last-line refusal of an
 * app-facing connect to one of meshd's ports. The proxies' use of them is
 * exercised end to end by tests/e2e/test_sec_selfcall.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "proxy/listener.h"

static struct meshd_addr A(const char *s) {
    struct meshd_addr a;
    assert_int_equal(addr_parse(s, &a), 0);
    return a;
}

static void
meshd_ports_are_the_in_pod_listeners(void **state)
{
    static const struct {
        uint16_t port;
        bool meshd;
    } rows[] = {{15001, true},  {15006, true},  {15008, true}, {15000, false},
                {15020, false}, {15021, false}, {8080, false}, {0, false}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(meshd_port_in_pod(rows[i].port), rows[i].meshd);
}

static void local_address_must_be_the_pods(void **state)
{
    struct pod pod = {.nips = 2};
    pod.ips[0] = A("10.244.2.11:0");
    pod.ips[1] = A("[fd00:10:244:2::11]:0");
    struct pod unknown = {.nips = 0};
    static const struct {
        const char *local;
        bool pods, unknown_pods;
    } rows[] = {
        {"10.244.2.11:8080", true, true},          /* steered by sk_lookup */
        {"[fd00:10:244:2::11]:8080", true, true},  /* and over IPv6 */
        {"10.244.2.12:8080", false, true},         /* another pod's address */
        {"127.0.0.1:15006", false, false},         /* the bound loopback itself */
        {"[::1]:15006", false, false},             /* likewise IPv6 */
        {"127.0.0.6:8080", false, false},          /* anything on 127/8 */
        {"[fd00:10:244:2::12]:8080", false, true}, /* not this pod's IPv6 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct meshd_addr a = A(rows[i].local);
        assert_int_equal(listener_is_pod_addr(&pod, &a), rows[i].pods);
        assert_int_equal(listener_is_pod_addr(&unknown, &a), rows[i].unknown_pods);
    }
}

static void peers_that_may_be_meshd(void **state)
{
    static const struct {
        const char *peer, *local;
        bool meshd;
    } rows[] = {
        {"127.0.0.6:40000", "10.244.2.11:15006", true}, /* listener_app_source, IPv4 */
        {"127.0.0.1:40000", "10.244.2.11:8080", true},  /* the pod's loopback */
        {"[::1]:40000", "[fd00:10:244:2::11]:8080", true},
        /* the IPv6 app source is the pod's own address */
        {"[fd00:10:244:2::11]:40000", "[fd00:10:244:2::11]:15006", true},
        {"10.244.1.11:40000", "10.244.2.11:8080", false}, /* another pod */
        {"[fd00:10:244:1::11]:40000", "[fd00:10:244:2::11]:8080", false},
        /* IPv4 hairpin: meshd's outbound from the pod to itself, a real
         * mesh connection that policy applies to */
        {"10.244.2.11:40000", "10.244.2.11:8080", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct meshd_addr p = A(rows[i].peer), l = A(rows[i].local);
        assert_int_equal(listener_peer_may_be_meshd(&p, &l), rows[i].meshd);
    }
}

static void app_facing_connect_to_meshd_port_is_refused(void **state)
{
    int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(netns >= 0);
    struct upstream_source from = {.addr = A("127.0.0.6:0")};
    const struct upstream_owner owner = {.own_map_fd = UPSTREAM_NO_CAPTURE};
    static const char *refused[] = {"127.0.0.1:15001", "127.0.0.1:15006", "127.0.0.1:15008"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct meshd_addr dst = A(refused[i]);
        assert_int_equal(upstream_connect(netns, &dst, &from, &owner, NULL), -ELOOP);
    }
    /* The same port without a bound source (meshd as a client, e.g. the
     * HBONE pool to a peer's 15008) is a connect like any other. */
    struct meshd_addr peer = A("127.0.0.1:15008");
    int fd = upstream_connect(netns, &peer, NULL, &owner, NULL);
    assert_int_not_equal(fd, -ELOOP); /* connecting, or refused by the kernel */
    if (fd >= 0)
        close(fd);
    close(netns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(meshd_ports_are_the_in_pod_listeners),
        cmocka_unit_test(local_address_must_be_the_pods),
        cmocka_unit_test(peers_that_may_be_meshd),
        cmocka_unit_test(app_facing_connect_to_meshd_port_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
