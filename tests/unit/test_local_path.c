/* The same-node fast path carrier (agent/proxy/local_path.c) on loopback,
 * through a real flow (proxy/flow.c) and connection table (proxy/conns.c),
 * one row per outcome: allowed (both records open and end together, the
 * destination's names the client's identity and carries the bytes), denied
 * by the destination's policy (DENY on both, the app socket reset, nothing
 * connected), a self-call to one of meshd's ports (SELF at the
 * destination), no destination pod, a full table (no destination record
 * possible) and a refused connect (UF on both). The authorize callback is
 * a fake that records what it was asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/loop.h"
#include "enroll/pods.h"
#include "proxy/conns.h"
#include "proxy/flow.h"
#include "proxy/local_path.h"

#define SRC_ID "spiffe://cluster.local/ns/default/sa/client"
#define DST_ID "spiffe://cluster.local/ns/shop/sa/server"

enum target { TO_APP, TO_MESHD_PORT, TO_NOBODY };

struct row {
    const char *name;
    enum target target;
    bool deny, no_pod;
    size_t max_conns; /* 0: 8 */
    /* expected: the source's record, the destination's (NULL: none) */
    enum conn_state src_state;
    const char *src_flag;
    int src_error;
    const char *dst_flag;
    enum conn_state dst_state;
    bool asked;     /* the destination's policy was asked */
    uint64_t bytes; /* carried each way, when allowed */
    uint64_t allowed, denied, self_calls;
};

static const struct row rows[] = {
    {.name = "allowed: relayed, both records end together with the bytes",
     .src_state = CONN_CLOSED,
     .src_flag = "-",
     .dst_flag = "-",
     .dst_state = CONN_CLOSED,
     .asked = true,
     .bytes = 4,
     .allowed = 1},
    {.name = "denied by the destination's policy: DENY on both, app socket reset",
     .deny = true,
     .src_state = CONN_FAILED,
     .src_flag = "DENY",
     .src_error = EACCES,
     .dst_flag = "DENY",
     .dst_state = CONN_FAILED,
     .asked = true,
     .denied = 1},
    {.name = "a self-call to meshd's 15006: SELF at the destination, DENY at the source",
     .target = TO_MESHD_PORT,
     .src_state = CONN_FAILED,
     .src_flag = "DENY",
     .src_error = ECONNREFUSED,
     .dst_flag = "SELF",
     .dst_state = CONN_FAILED,
     .self_calls = 1},
    {.name = "no destination pod: UF, no destination record",
     .no_pod = true,
     .src_state = CONN_FAILED,
     .src_flag = "UF",
     .src_error = ENOENT},
    {.name = "table full: no destination record can begin, UF",
     .max_conns = 1,
     .src_state = CONN_FAILED,
     .src_flag = "UF",
     .src_error = ENOBUFS},
    {.name = "the app refuses the connect: UF on both",
     .target = TO_NOBODY,
     .src_state = CONN_FAILED,
     .src_flag = "UF",
     .src_error = ECONNREFUSED,
     .dst_flag = "UF",
     .dst_state = CONN_FAILED,
     .asked = true,
     .allowed = 1},
};

static struct {
    struct conn_record ended[4];
    int nended;
    int asked;
    char asked_peer[256];
    const struct pod *asked_pod;
    bool deny;
} fx;

static void on_closed(void *ctx, const struct conn_record *rec)
{
    (void)ctx;
    if (fx.nended < 4)
        fx.ended[fx.nended] = *rec;
    fx.nended++;
}

static int fake_authorize(void *ctx, const struct pod *dst, const char *peer_id,
                          const struct meshd_addr *src, const struct meshd_addr *dst_addr)
{
    (void)ctx, (void)src, (void)dst_addr;
    fx.asked++;
    fx.asked_pod = dst;
    snprintf(fx.asked_peer, sizeof(fx.asked_peer), "%s", peer_id);
    return fx.deny ? -EACCES : 0;
}

static struct pod src_pod, dst_pod;
static struct carrier local;

static const struct pod *r_pod(void *user)
{
    (void)user;
    return &src_pod;
}
static void r_get(void *user, const struct pod *pod, const struct meshd_addr *orig,
                  struct outbound_route *next)
{
    (void)user, (void)pod, (void)orig, (void)next;
}
static void r_free(void *user, const struct outbound_route *r, bool failed)
{
    (void)user, (void)r, (void)failed;
}
static struct carrier *r_carrier(void *user, const struct outbound_route *r)
{
    (void)user, (void)r;
    return &local;
}
static void r_release(void *user)
{
    (void)user;
}
static const struct flow_router router = {
    .pod = r_pod, .get = r_get, .free = r_free, .carrier = r_carrier, .release = r_release};

static struct meshd_addr loopback(uint16_t port)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct meshd_addr a;
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin), &a), 0);
    return a;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static void pump(struct loop *loop, int fd, char *buf, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < 200 && got < n; i++) {
        loop_run_once(loop, 10);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            ssize_t r = read(fd, buf + got, n - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
    }
    assert_int_equal(got, n);
}

static void run_row(const struct row *row)
{
    print_message("  %s\n", row->name);
    memset(&fx, 0, sizeof(fx));
    fx.deny = row->deny;
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct conns *conns;
    struct conns_opts co = {.max_conns = row->max_conns ? row->max_conns : 8,
                            .records = 8,
                            .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                            .observer = {.closed = on_closed}};
    assert_int_equal(conns_new(loop, &co, &conns), 0);
    struct flows *flows;
    assert_int_equal(flows_new(loop, 0, &flows), 0);
    struct local_path lp;
    local_path_init(&lp, conns, fake_authorize, NULL);
    carrier_local_init(&local, &lp);
    dst_pod = (struct pod){.ns = "shop", .name = "server"};
    dst_pod.netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(dst_pod.netns_fd >= 0);

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(listener, (struct sockaddr *)&a, sizeof(a)), 0);
    if (row->target != TO_NOBODY)
        assert_int_equal(listen(listener, 8), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct meshd_addr app = loopback(40000);
    struct conn *c = conn_begin(conns, sv[0], "outbound", "default/client", &app);
    assert_non_null(c);
    struct outbound_route route = {
        .action = OUTBOUND_LOCAL,
        .target = loopback(row->target == TO_MESHD_PORT ? 15006 : bound_port(listener)),
        .source = loopback(0),
        .local_pod = row->no_pod ? NULL : &dst_pod};
    snprintf(route.key.src_id, sizeof(route.key.src_id), SRC_ID);
    snprintf(route.key.dst_id, sizeof(route.key.dst_id), DST_ID);
    conn_record(c)->orig_dst = route.target;
    assert_int_equal(flow_start(flows, c, &app, -1, &route, &router, NULL), 0);

    if (row->bytes) {
        int server = -1;
        for (int i = 0; i < 200 && server < 0; i++) {
            loop_run_once(loop, 10);
            server = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        }
        assert_true(server >= 0);
        char buf[8] = {0};
        assert_int_equal(write(sv[1], "ping", 4), 4);
        pump(loop, server, buf, 4);
        assert_string_equal(buf, "ping");
        assert_int_equal(write(server, "pong", 4), 4);
        pump(loop, sv[1], buf, 4);
        close(server);
        shutdown(sv[1], SHUT_WR);
    }
    int want = row->dst_flag ? 2 : 1;
    for (int i = 0; i < 200 && fx.nended < want; i++)
        loop_run_once(loop, 10);
    assert_int_equal(fx.nended, want);
    /* The source's record (the flow's), and the destination's twin. */
    const struct conn_record *src = NULL, *dst = NULL;
    for (int i = 0; i < fx.nended; i++) {
        if (strcmp(fx.ended[i].direction, "outbound") == 0)
            src = &fx.ended[i];
        else
            dst = &fx.ended[i];
    }
    assert_non_null(src);
    assert_true(src->local);
    assert_int_equal(src->state, row->src_state);
    assert_string_equal(resp_flag_name(src->response_flag), row->src_flag);
    assert_int_equal(src->error, row->src_error);
    if (row->dst_flag) {
        assert_non_null(dst);
        assert_true(dst->local);
        assert_string_equal(dst->pod, "shop/server");
        assert_string_equal(dst->peer_identity, SRC_ID);
        assert_int_equal(dst->state, row->dst_state);
        assert_string_equal(resp_flag_name(dst->response_flag), row->dst_flag);
        assert_int_equal(dst->bytes_sent, row->bytes);
        assert_int_equal(dst->bytes_received, row->bytes);
        assert_int_equal(src->bytes_sent, row->bytes);
    }
    assert_int_equal(fx.asked, row->asked ? 1 : 0);
    if (row->asked) {
        assert_ptr_equal(fx.asked_pod, &dst_pod);
        assert_string_equal(fx.asked_peer, SRC_ID); /* the source's enrolled identity */
    }
    if (!row->bytes) { /* the app's socket was reset: nothing more */
        char b;
        assert_true(read(sv[1], &b, 1) <= 0);
    }
    assert_int_equal(lp.stats.connections, row->allowed);
    assert_int_equal(lp.stats.denied, row->denied);
    assert_int_equal(lp.stats.self_calls, row->self_calls);
    close(sv[1]);
    close(listener);
    close(dst_pod.netns_fd);
    flows_free(flows);
    conns_free(conns);
    loop_run_once(loop, 0);
    loop_free(loop);
}

static void each_outcome(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(each_outcome)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
