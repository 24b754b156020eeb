/* Which connections the destination serves per request, and how they are
 * admitted (agent/http/inbound.c over a real config store and admit gate):
 * one pod behind three Service ports, 8080 named http, 8081 unnamed (the
 * seed's way), 8082 named tcp, and 9000 in no Service (unnamed too). The
 * source agent's x-meshd-protocol hint (said_http) serves only unnamed
 * ports per request, never a tcp one; an HTTP policy serves them all so.
 * Admission: a port declared HTTP leaves the policy to the requests; any
 * other is refused first as on L4 (an L4 DENY), hint or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "config/store.h"
#include "core/addr.h"
#include "core/loop.h"
#include "enroll/pod_source.h"
#include "http/inbound.h"
#include "policy/admit.h"
#include "support/config_fixture.h"

#define POD                                                                                        \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-1, namespace: shop, labels: {app: pay}}\n"    \
    "spec: {nodeName: n1, serviceAccountName: pay}\nstatus: {podIPs: [{ip: 10.244.1.11}]}\n---\n"
#define SERVICES                                                                                   \
    "apiVersion: v1\nkind: Service\nmetadata: {name: pay, namespace: shop}\n"                      \
    "spec: {selector: {app: pay}, ports: [{name: http, port: 80, targetPort: 8080}, "              \
    "{port: 81, targetPort: 8081}, {name: tcp-db, port: 82, targetPort: 8082}]}\n---\n"
#define DENY_EVIL                                                                                  \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"                                \
    "metadata: {name: deny-evil, namespace: shop}\n"                                               \
    "spec: {action: DENY, rules: [{from: [{source: {principals: [cluster.local/ns/evil/*]}}]}]}\n" \
    "---\n"
#define DENY_ADMIN                                                                                 \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"                                \
    "metadata: {name: deny-admin, namespace: shop}\n"                                              \
    "spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin*]}}]}]}\n---\n"

#define FRONT "spiffe://cluster.local/ns/front/sa/web"
#define EVIL  "spiffe://cluster.local/ns/evil/sa/x"

struct fx {
    struct cfg_fixture files;
    struct loop *loop;
    struct cfg_store *store;
    struct admit_gate gate;
    struct http_inbound *hin;
    struct pod pod;
};

static void fx_up(struct fx *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    cfg_fixture_load(&f->files, yaml);
    assert_int_equal(f->files.diags.n, 0);
    assert_int_equal(loop_new(&f->loop), 0);
    struct cfg_store_opts so = {.dir = f->files.dir};
    assert_int_equal(cfg_store_new(f->loop, &so, &f->store), 0);
    f->gate.config = f->store;
    struct http_inbound_opts o = {.gate = &f->gate};
    assert_int_equal(http_inbound_new(&o, &f->hin), 0);
    /* Only whether a carrier exists is read here. */
    http_inbound_set_proxy(f->hin, (struct http_proxy *)&f->gate);
    strcpy(f->pod.ns, "shop");
    strcpy(f->pod.name, "pay-1");
    assert_int_equal(pod_source_bind(cfg_store_current(f->store), "n1", &f->pod), POD_BY_CLUSTER);
}

static void fx_down(struct fx *f)
{
    http_inbound_free(f->hin);
    cfg_store_free(f->store);
    loop_free(f->loop);
    cfg_fixture_free(&f->files);
}

static struct meshd_addr at(uint16_t port)
{
    struct meshd_addr a;
    assert_int_equal(addr_parse("10.244.1.11:80", &a), 0);
    a.port = htons(port);
    return a;
}

static void the_hint_serves_only_an_unnamed_port_per_request(void **state)
{
    (void)state;
    const struct {
        const char *behaviour;
        const char *yaml;
        uint16_t port;
        bool said_http, wants;
    } rows[] = {
        {"a port named http: per request", POD SERVICES DENY_EVIL, 8080, false, true},
        {"an unnamed port, no hint: bytes", POD SERVICES DENY_EVIL, 8081, false, false},
        {"an unnamed port the source says is HTTP: per request", POD SERVICES DENY_EVIL, 8081, true,
         true},
        {"a port named tcp stays bytes whatever the source says", POD SERVICES DENY_EVIL, 8082,
         true, false},
        {"a port no Service names is unnamed too: per request on the hint", POD SERVICES DENY_EVIL,
         9000, true, true},
        {"and bytes without it", POD SERVICES DENY_EVIL, 9000, false, false},
        {"an HTTP policy: the unnamed port per request, hint or not", POD SERVICES DENY_ADMIN, 8081,
         false, true},
        {"an HTTP policy leaves a port named tcp bytes (L4 judges its HTTP-only rules)",
         POD SERVICES DENY_ADMIN, 8082, true, false},
        {"an HTTP policy: a port named http per request", POD SERVICES DENY_ADMIN, 8080, false,
         true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct fx f;
        fx_up(&f, rows[i].yaml);
        struct meshd_addr dst = at(rows[i].port);
        bool got = http_inbound_wants(f.hin, &f.pod, &dst, rows[i].said_http);
        if (got != rows[i].wants)
            fail_msg("%s: wants %d", rows[i].behaviour, got);
        fx_down(&f);
    }
}

static void ports_not_declared_http_are_refused_first_as_on_l4(void **state)
{
    (void)state;
    const struct {
        const char *behaviour;
        const char *yaml;
        uint16_t port;
        const char *peer;
        int rc;
    } rows[] = {
        {"named http: the requests decide, the connection is admitted", POD SERVICES DENY_EVIL,
         8080, EVIL, 0},
        {"unnamed: an L4 DENY refuses the connection", POD SERVICES DENY_EVIL, 8081, EVIL, -EACCES},
        {"unnamed: another peer is admitted", POD SERVICES DENY_EVIL, 8081, FRONT, 0},
        {"named tcp under an HTTP policy: an L4 DENY refuses", POD SERVICES DENY_EVIL DENY_ADMIN,
         8082, EVIL, -EACCES},
        {"unnamed: the L7 DENY waits for the requests", POD SERVICES DENY_ADMIN, 8081, EVIL, 0},
        {"a port no Service names: refused as on L4", POD SERVICES DENY_EVIL, 9000, EVIL, -EACCES},
        {"plaintext to an unnamed port: the L4 part applies (no principal, DENY not matched)",
         POD SERVICES DENY_EVIL, 8081, NULL, 0},
    };
    struct meshd_addr src;
    assert_int_equal(addr_parse("10.244.2.7:40000", &src), 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct fx f;
        fx_up(&f, rows[i].yaml);
        struct meshd_addr dst = at(rows[i].port);
        uint64_t denied = f.gate.denied;
        int rc = http_inbound_authorize_connection(&f.gate, &f.pod, rows[i].peer, &src, &dst);
        if (rc != rows[i].rc || f.gate.denied != denied + (rc != 0))
            fail_msg("%s: rc %d, denied %llu", rows[i].behaviour, rc,
                     (unsigned long long)(f.gate.denied - denied));
        fx_down(&f);
    }
}

/* No configuration served (the only files broken, nothing persisted):
 * refused, whichever port, and nothing is served per request. */
static void no_configuration_refuses(void **state)
{
    (void)state;
    struct fx f;
    memset(&f, 0, sizeof(f));
    cfg_fixture_load(&f.files, "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n");
    assert_int_equal(loop_new(&f.loop), 0);
    struct cfg_store_opts so = {.dir = f.files.dir};
    assert_int_equal(cfg_store_new(f.loop, &so, &f.store), 0);
    assert_true(cfg_store_fail_closed(f.store));
    f.gate.config = f.store;
    struct http_inbound_opts o = {.gate = &f.gate};
    assert_int_equal(http_inbound_new(&o, &f.hin), 0);
    http_inbound_set_proxy(f.hin, (struct http_proxy *)&f.gate);
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    struct meshd_addr src = at(40000);
    for (uint16_t port = 8080; port <= 8082; port++) {
        struct meshd_addr dst = at(port);
        assert_int_equal(http_inbound_authorize_connection(&f.gate, &pod, FRONT, &src, &dst),
                         -EACCES);
        assert_false(http_inbound_wants(f.hin, &pod, &dst, true));
    }
    fx_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_hint_serves_only_an_unnamed_port_per_request),
        cmocka_unit_test(ports_not_declared_http_are_refused_first_as_on_l4),
        cmocka_unit_test(no_configuration_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
