/* The flow's own logic (agent/proxy/flow.c) against a fake carrier and a
 * fake router, one table: which attempts are made and to whom (a retry
 * avoids the endpoint that failed and keeps the carrier), what the load
 * balancer is told (every failed attempt freed as failed, an unused retry
 * route freed as not), the deadlines (an attempt past perTryTimeout is
 * aborted and retried, the whole timeout stops retries), and the response
 * flag the record ends with (UF, UT, UC, DENY, none). The connection record
 * is a real one from proxy/conns.c, over a socket pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "proxy/conns.h"
#include "proxy/flow.h"

/* What the carrier reports for one step of a row. */
enum step {
    END,          /* no more steps */
    FAIL,         /* refused before establishment, app socket with the table */
    FAIL_GIVE_FD, /* refused, the app socket given back (HBONE's give_back) */
    DENY,         /* the peer's policy refused (HBONE 401), socket given back */
    LOST,         /* failed and the app socket went with it */
    CARRIED,      /* connected; the carrier ends the record (TCP relay) */
    CLOSED_OK,    /* established, then closed cleanly (an HBONE stream) */
    CLOSED_ERR,   /* established, then reset by the upstream */
    TICK,         /* a tick far past every deadline */
    CANCEL,       /* the carrier's owner is being freed */
};

struct row {
    const char *name;
    uint32_t retries;
    uint64_t per_try_ns, timeout_ns;
    bool retry_other_carrier; /* the router's retry route needs another carrier */
    bool pod_gone;            /* the pod is unenrolled after the first attempt */
    bool mesh;                /* both carriers are mesh carriers (HBONE, fast path) */
    enum step steps[6];
    /* expected */
    int attempts;
    bool ended; /* the flow ended the record */
    enum resp_flag flag;
    enum conn_state state;
    int error;
    int frees_failed, frees_unused;
    uint64_t retries_made, timeouts;
};

static const struct row rows[] = {
    {.name = "connects at once: the carrier takes the connection on",
     .steps = {CARRIED},
     .attempts = 1},
    {.name = "refused, retried on another endpoint, connects",
     .retries = 2,
     .steps = {FAIL, CARRIED},
     .attempts = 2,
     .frees_failed = 1,
     .retries_made = 1},
    {.name = "every attempt refused: UF once the budget is spent",
     .retries = 2,
     .steps = {FAIL, FAIL_GIVE_FD, FAIL},
     .attempts = 3,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNREFUSED,
     .frees_failed = 3,
     .retries_made = 2},
    {.name = "without retries the first failure is final",
     .steps = {FAIL},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNREFUSED,
     .frees_failed = 1},
    {.name = "a policy denial is final: DENY, no retry",
     .retries = 2,
     .steps = {DENY},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_DENY,
     .state = CONN_FAILED,
     .error = EACCES,
     .frees_failed = 1},
    {.name = "past perTryTimeout: aborted, retried, then UT",
     .retries = 1,
     .per_try_ns = 1,
     .steps = {TICK, TICK},
     .attempts = 2,
     .ended = true,
     .flag = RESP_FLAG_UT,
     .state = CONN_FAILED,
     .error = ETIMEDOUT,
     .frees_failed = 2,
     .retries_made = 1,
     .timeouts = 2},
    {.name = "past the route's timeout: no retry left in time, UF",
     .retries = 2,
     .timeout_ns = 1,
     .steps = {FAIL},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNREFUSED,
     .frees_failed = 1},
    {.name = "a retry never changes carrier: the unused route freed as not failed",
     .retries = 2,
     .retry_other_carrier = true,
     .steps = {FAIL},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNREFUSED,
     .frees_failed = 1,
     .frees_unused = 1},
    {.name = "between two mesh carriers a retry may move: fast path, then HBONE",
     .retries = 2,
     .retry_other_carrier = true,
     .mesh = true,
     .steps = {FAIL, CARRIED},
     .attempts = 2,
     .frees_failed = 1,
     .retries_made = 1},
    {.name = "the pod unenrolled between attempts: no retry",
     .retries = 2,
     .pod_gone = true,
     .steps = {FAIL},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNREFUSED,
     .frees_failed = 1},
    {.name = "established, then reset by the upstream: UC",
     .steps = {CLOSED_ERR},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UC,
     .state = CONN_FAILED,
     .error = ECONNRESET},
    {.name = "established, then closed cleanly: no flag",
     .steps = {CLOSED_OK},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_NONE,
     .state = CONN_CLOSED},
    {.name = "failed with the app socket lost: UF, the record's close frees the route",
     .retries = 2,
     .steps = {LOST},
     .attempts = 1,
     .ended = true,
     .flag = RESP_FLAG_UF,
     .state = CONN_FAILED,
     .error = ECONNRESET},
    {.name = "the carrier's owner goes away: the flow frees only itself",
     .retries = 2,
     .steps = {CANCEL},
     .attempts = 1},
};

struct fx {
    struct loop *loop;
    struct conns *conns;
    struct flows *flows;
    const struct row *row;
    struct carrier fake, other;
    struct flow *current;
    int attempts;
    int32_t endpoints[8];       /* the endpoint of each attempt */
    const char *carriers[8];    /* and its carrier */
    int32_t avoided[8];         /* what each retry route was asked to avoid */
    int given_fd, taken_fds[8]; /* app sockets given back, and taken by attempts */
    int frees_failed, frees_unused, releases;
    struct conn_record closed;
    int nclosed;
    char pod; /* its address is the source pod */
    bool pod_gone;
};

static struct fx fx;

static void on_closed(void *ctx, const struct conn_record *rec)
{
    fx.closed = *rec;
    fx.nclosed++;
}

static void fake_start(struct carrier *cr, struct flow *f, const struct pod *pod)
{
    assert_ptr_equal(pod, (const struct pod *)&fx.pod);
    assert_true(fx.attempts < 8);
    fx.endpoints[fx.attempts] = flow_route(f)->endpoint;
    fx.carriers[fx.attempts] = cr->name;
    fx.taken_fds[fx.attempts] = flow_take_app_fd(f);
    fx.attempts++;
    fx.current = f;
    if (fx.row->pod_gone)
        fx.pod_gone = true;
}

/* As the TCP carrier's: the abort reports at once, as a plain failure;
 * that it timed out the flow knows because it asked. */
static int fake_abort(struct carrier *cr, struct flow *f, int err)
{
    struct flow_outcome o = {.err = err, .app_fd = -1};
    flow_carrier_done(f, &o);
    return 0;
}

static const struct pod *router_pod(void *user)
{
    return fx.pod_gone ? NULL : (const struct pod *)&fx.pod;
}

/* Endpoints 0, 1, 2... of one cluster, the next one at each retry. */
static void router_get(void *user, const struct pod *pod, const struct meshd_addr *orig,
                       struct outbound_route *next)
{
    fx.avoided[fx.attempts] = next->avoid_endpoint;
    next->action = fx.row->retry_other_carrier ? OUTBOUND_HBONE : OUTBOUND_PASSTHROUGH;
    next->cluster = &fx; /* any stable pointer */
    next->endpoint = fx.attempts;
    next->retries = 99; /* a retry route's own budget is not the flow's */
    next->per_try_timeout_ns = fx.row->per_try_ns; /* the same route's */
}

static void router_free(void *user, const struct outbound_route *r, bool failed)
{
    if (failed)
        fx.frees_failed++;
    else
        fx.frees_unused++;
}

static struct carrier *router_carrier(void *user, const struct outbound_route *r)
{
    return r->action == OUTBOUND_PASSTHROUGH ? &fx.fake : &fx.other;
}

static void router_release(void *user)
{
    fx.releases++;
}

static const struct flow_router router = {.pod = router_pod,
                                          .get = router_get,
                                          .free = router_free,
                                          .carrier = router_carrier,
                                          .release = router_release};

static int app_socket(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]);
    return sv[0];
}

static void report(enum step s)
{
    struct flow_outcome o = {.app_fd = -1};
    switch (s) {
    case FAIL:
        o.err = -ECONNREFUSED;
        break;
    case FAIL_GIVE_FD:
        o.err = -ECONNREFUSED;
        o.app_fd = fx.given_fd = app_socket();
        break;
    case DENY:
        o.err = -EACCES;
        o.denied = true;
        o.app_fd = fx.given_fd = app_socket();
        break;
    case LOST:
        o.err = -ECONNRESET;
        o.app_lost = true;
        break;
    case CARRIED:
        o.established = o.carried = true;
        break;
    case CLOSED_OK:
    case CLOSED_ERR:
        o.established = true;
        o.err = s == CLOSED_ERR ? -ECONNRESET : 0;
        o.bytes_sent = 5;
        o.bytes_received = 7;
        break;
    case CANCEL:
        o.cancelled = true;
        break;
    case TICK:
        flows_tick(fx.flows, loop_now_ns() + 3600ull * 1000000000ull);
        return;
    case END:
        return;
    }
    flow_carrier_done(fx.current, &o);
}

/* A fresh loop, connection table and flow table for row `r`, and one
 * captured connection over a socket pair. */
static struct conn *fx_open(const struct row *r, struct meshd_addr *app)
{
    memset(&fx, 0, sizeof(fx));
    fx.row = r;
    fx.given_fd = -1;
    fx.fake = (struct carrier){.name = "fake", .start = fake_start, .abort = fake_abort};
    fx.other = fx.fake;
    fx.other.name = "other";
    fx.fake.mesh = fx.other.mesh = r->mesh;
    assert_int_equal(loop_new(&fx.loop), 0);
    struct conns_opts co = {.max_conns = 4,
                            .records = 4,
                            .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                            .observer = {.closed = on_closed}};
    assert_int_equal(conns_new(fx.loop, &co, &fx.conns), 0);
    assert_int_equal(flows_new(fx.loop, 0, &fx.flows), 0);
    *app = (struct meshd_addr){.family = MESHD_AF_INET, .port = 40000};
    struct conn *c = conn_begin(fx.conns, app_socket(), "outbound", "default/client", app);
    assert_non_null(c);
    return c;
}

static void fx_close(void)
{
    conns_free(fx.conns); /* resets what the flows left to the table */
    flows_free(fx.flows);
    loop_run_once(fx.loop, 0);
    loop_free(fx.loop);
}

static void flow_follows_its_attempts(void **state)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct meshd_addr app;
        struct conn *c = fx_open(r, &app);
        struct outbound_route route = {.action = OUTBOUND_PASSTHROUGH,
                                       .cluster = &fx,
                                       .endpoint = 7,
                                       .retries = r->retries,
                                       .per_try_timeout_ns = r->per_try_ns,
                                       .timeout_ns = r->timeout_ns};
        assert_int_equal(flow_start(fx.flows, c, &app, -1, &route, &router, NULL), 0);
        for (size_t s = 0; s < 6 && r->steps[s] != END; s++)
            report(r->steps[s]);

        print_message("  %s\n", r->name);
        assert_int_equal(fx.attempts, r->attempts);
        assert_int_equal(fx.nclosed, r->ended);
        if (r->ended) {
            assert_string_equal(resp_flag_name(fx.closed.response_flag), resp_flag_name(r->flag));
            assert_int_equal(fx.closed.state, r->state);
            assert_int_equal(fx.closed.error, r->error);
            /* A route released attempt by attempt is not the record's. */
            assert_true(fx.closed.cluster == NULL || r->frees_failed == 0);
        }
        if (r->steps[0] == CLOSED_OK || r->steps[0] == CLOSED_ERR) {
            assert_int_equal(fx.closed.bytes_sent, 5);
            assert_int_equal(fx.closed.bytes_received, 7);
        }
        assert_int_equal(fx.frees_failed, r->frees_failed);
        assert_int_equal(fx.frees_unused, r->frees_unused);
        /* Every retry avoids the endpoint the failed attempt used. */
        assert_int_equal(fx.endpoints[0], 7);
        for (int a = 1; a < fx.attempts; a++) {
            assert_int_equal(fx.avoided[a], fx.endpoints[a - 1]);
            assert_int_equal(fx.endpoints[a], a);
        }
        /* Each retry's carrier is its route's. */
        for (int a = 1; a < fx.attempts; a++)
            assert_string_equal(fx.carriers[a], r->retry_other_carrier ? "other" : "fake");
        /* A socket given back reaches the next attempt, or is reset. */
        for (int a = 0; a < fx.attempts; a++)
            if (fx.taken_fds[a] >= 0)
                close(fx.taken_fds[a]);
        struct flows_stats st;
        flows_get_stats(fx.flows, &st);
        assert_int_equal(st.retries, r->retries_made);
        assert_int_equal(st.timeouts, r->timeouts);
        /* The flow ended (or is carried on) and let its router go. */
        if (r->steps[0] != END)
            assert_int_equal(fx.releases, 1);
        fx_close();
    }
}

/* HBONE's give_back: the app socket a failed attempt returned is what the
 * next attempt carries. */
static void given_back_socket_goes_to_the_retry(void **state)
{
    static const struct row r = {.retries = 1};
    struct meshd_addr app;
    struct conn *c = fx_open(&r, &app);
    int first = app_socket();
    struct outbound_route route = {.action = OUTBOUND_PASSTHROUGH, .cluster = &fx, .retries = 1};
    assert_int_equal(flow_start(fx.flows, c, &app, first, &route, &router, NULL), 0);
    assert_int_equal(fx.taken_fds[0], first);
    report(FAIL_GIVE_FD);
    assert_int_equal(fx.attempts, 2);
    assert_int_equal(fx.taken_fds[1], fx.given_fd);
    report(CLOSED_OK);
    assert_int_equal(fx.nclosed, 1);
    close(first);
    close(fx.given_fd);
    fx_close();
}

static void response_flag_names(void **state)
{
    static const struct {
        enum resp_flag f;
        const char *name;
    } names[] = {
        {RESP_FLAG_NONE, "-"},         {RESP_FLAG_UF, "UF"},   {RESP_FLAG_UT, "UT"},
        {RESP_FLAG_UC, "UC"},          {RESP_FLAG_DC, "DC"},   {RESP_FLAG_UO, "UO"},
        {RESP_FLAG_UH, "UH"},          {RESP_FLAG_NR, "NR"},   {RESP_FLAG_DENY, "DENY"},
        {RESP_FLAG_SELF_CALL, "SELF"}, {RESP_FLAG_FI, "FI"},   {RESP_FLAG_DI, "DI"},
        {RESP_FLAG_URX, "URX"},        {RESP_FLAG_DPE, "DPE"}, {RESP_FLAG_SI, "SI"},
    };
    assert_int_equal(sizeof(names) / sizeof(names[0]), RESP_FLAG_COUNT);
    for (size_t i = 0; i < RESP_FLAG_COUNT; i++) {
        assert_string_equal(resp_flag_name(names[i].f), names[i].name);
        assert_int_equal(resp_flag_is_connect_failure(names[i].f),
                         names[i].f == RESP_FLAG_UF || names[i].f == RESP_FLAG_UT);
    }
    assert_string_equal(resp_flag_name(RESP_FLAG_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flow_follows_its_attempts),
        cmocka_unit_test(given_back_socket_goes_to_the_retry),
        cmocka_unit_test(response_flag_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
