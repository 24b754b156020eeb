/* The connection table's upstream attempts (agent/proxy/conns.c) on
 * loopback, in the test's own network namespace: a watcher told of a
 * refused connect retries elsewhere and the relay then carries bytes; a
 * watcher that declines lets the failure stand (reset, UF); a connect cut
 * at a deadline fails with UT; the record names the endpoint used; freeing
 * the table tells a watcher its connect is cancelled. A twin (the
 * destination's record of a same-node connection) opens and ends with its
 * connection, with its bytes; revalidation by the twins' records closes
 * exactly the ones rejected, both records flagged DENY. Kernel events join
 * their records by socket cookie: the app's socket and the upstream's, of
 * a relayed connection and of one whose carrier took the upstream socket
 * (conn_connect: the HBONE server's socket toward the app), active and
 * finished, until the ring of records evicts them. */
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/loop.h"
#include "meshd/telemetry.h"
#include "proxy/conns.h"

struct fx {
    struct loop *loop;
    struct conns *conns;
    int netns_fd;
    int listener;                /* the endpoint that answers */
    struct meshd_addr good, bad; /* its address, and a port nobody listens on */
    int app;                     /* the app's end of the accepted connection */
    struct conn_record closed;   /* the last record the observer saw end */
    int nclosed, nopened;
    struct conn_record ended[4]; /* the first records that ended, in order */
    /* what the watcher was told, and what it does next */
    int attempts, last_err;
    bool retry_to_good;
};

static void on_closed(void *ctx, const struct conn_record *rec)
{
    struct fx *f = ctx;
    f->closed = *rec;
    if (f->nclosed < 4)
        f->ended[f->nclosed] = *rec;
    f->nclosed++;
}

static void on_opened(void *ctx, const struct conn_record *rec)
{
    (void)rec;
    ((struct fx *)ctx)->nopened++;
}

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

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(loop_new(&f->loop), 0);
    struct conns_opts co = {.max_conns = 8,
                            .records = 8,
                            .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                            .observer = {.opened = on_opened, .closed = on_closed, .ctx = f}};
    assert_int_equal(conns_new(f->loop, &co, &f->conns), 0);
    f->netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(f->netns_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->listener, 8), 0);
    f->good = loopback(bound_port(f->listener));
    /* A port bound but never listened on: connects to it are refused. */
    int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(closed, (struct sockaddr *)&a, sizeof(a)), 0);
    f->bad = loopback(bound_port(closed));
    close(closed);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    conns_free(f->conns);
    loop_run_once(f->loop, 0);
    loop_free(f->loop);
    close(f->netns_fd);
    close(f->listener);
    free(f);
    return 0;
}

/* The app's connection: `down` is what conns takes, the other end is the
 * app's, returned. */
static struct conn *begin(struct fx *f, int *app_end)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct meshd_addr src = loopback(40000);
    struct conn *c = conn_begin(f->conns, sv[0], "outbound", "default/client", &src);
    assert_non_null(c);
    conn_record(c)->orig_dst = f->bad;
    *app_end = sv[1];
    return c;
}

static bool watcher(void *ctx, struct conn *c, int err)
{
    struct fx *f = ctx;
    f->attempts++;
    f->last_err = err;
    if (err && err != -ECANCELED && f->retry_to_good) {
        f->retry_to_good = false;
        conn_forward_attempt(c, f->netns_fd, &f->good, NULL, NULL, watcher, f);
        return true;
    }
    return false;
}

static void run_until(struct fx *f, const int *flag, int want)
{
    for (int i = 0; i < 200 && *flag < want; i++)
        loop_run_once(f->loop, 10);
    assert_int_equal(*flag, want);
}

static void refused_connect_retried_elsewhere(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    f->retry_to_good = true;
    conn_forward_attempt(c, f->netns_fd, &f->bad, NULL, NULL, watcher, f);
    run_until(f, &f->attempts, 2);
    assert_int_equal(f->last_err, 0); /* the second attempt connected */
    char used[ADDR_STRLEN], good[ADDR_STRLEN];
    assert_string_equal(addr_format(&conn_record(c)->upstream, used, sizeof(used)),
                        addr_format(&f->good, good, sizeof(good)));
    int server = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
    assert_true(server >= 0);
    assert_int_equal(write(app, "ping", 4), 4);
    char buf[8] = {0};
    for (int i = 0; i < 100; i++) {
        loop_run_once(f->loop, 10);
        struct pollfd p = {.fd = server, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            break;
    }
    assert_int_equal(read(server, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "ping");
    close(server);
    close(app);
    run_until(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "-");
}

static void declined_failure_resets_with_uf(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    conn_forward_attempt(c, f->netns_fd, &f->bad, NULL, NULL, watcher, f);
    run_until(f, &f->nclosed, 1);
    assert_int_equal(f->attempts, 1);
    assert_int_equal(f->last_err, -ECONNREFUSED);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "UF");
    assert_int_equal(f->closed.error, ECONNREFUSED);
    char b;
    assert_true(read(app, &b, 1) <= 0); /* the app's connection is gone */
    close(app);
}

static void deadline_abort_fails_with_ut(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    assert_int_equal(conn_abort_connect(c, -ETIMEDOUT), -EALREADY); /* nothing under way */
    conn_forward_attempt(c, f->netns_fd, &f->good, NULL, NULL, watcher, f);
    /* Before the loop has seen the connect complete, the deadline passes. */
    assert_int_equal(conn_abort_connect(c, -ETIMEDOUT), 0);
    assert_int_equal(f->attempts, 1);
    assert_int_equal(f->last_err, -ETIMEDOUT);
    assert_int_equal(f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "UT");
    close(app);
    int server = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (server >= 0)
        close(server);
}

static void plain_forward_without_watcher(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    conn_forward(c, f->netns_fd, NULL, NULL, NULL); /* to orig_dst: nobody there */
    run_until(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "UF");
    assert_int_equal(f->attempts, 0);
    close(app);
}

static void freeing_the_table_cancels_a_watched_connect(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    f->retry_to_good = true; /* must not be tried: the table is going */
    conn_forward_attempt(c, f->netns_fd, &f->good, NULL, NULL, watcher, f);
    conns_free(f->conns);
    f->conns = NULL;
    assert_int_equal(f->attempts, 1);
    assert_int_equal(f->last_err, -ECANCELED);
    close(app);
    int server = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (server >= 0)
        close(server);
}

/* A connection relayed to the endpoint, with a twin: the endpoint's end
 * of it returned in *server. */
static struct conn *begin_twinned(struct fx *f, const char *twin_pod, int *app, int *server)
{
    struct conn *c = begin(f, app);
    struct meshd_addr src = loopback(40001);
    struct conn *tw = conn_begin(f->conns, -1, "inbound", twin_pod, &src);
    assert_non_null(tw);
    conn_record(tw)->orig_dst = f->good;
    conn_twin(c, tw);
    int before = f->attempts;
    conn_forward_attempt(c, f->netns_fd, &f->good, NULL, NULL, watcher, f);
    run_until(f, &f->attempts, before + 1);
    assert_int_equal(f->last_err, 0);
    *server = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
    assert_true(*server >= 0);
    return c;
}

/* Reads exactly n bytes from fd, running the loop meanwhile. */
static void read_through(struct fx *f, int fd, char *buf, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < 200 && got < n; i++) {
        loop_run_once(f->loop, 10);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            ssize_t r = read(fd, buf + got, n - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
    }
    assert_int_equal(got, n);
}

static void live_bytes(const struct conn_record *rec, void *arg)
{
    uint64_t *sent = arg;
    if (rec->state == CONN_OPEN)
        sent[strcmp(rec->direction, "inbound") == 0] = rec->bytes_sent;
}

static void twin_opens_and_ends_with_its_connection(void **state)
{
    struct fx *f = *state;
    int app, server;
    begin_twinned(f, "default/server", &app, &server);
    assert_int_equal(f->nopened, 2); /* the connection and its twin */
    char buf[8] = {0};
    assert_int_equal(write(app, "ping", 4), 4);
    read_through(f, server, buf, 4);
    assert_string_equal(buf, "ping");
    uint64_t sent[2] = {0, 0}; /* while open, both show the relay's bytes */
    conns_foreach(f->conns, live_bytes, sent);
    assert_int_equal(sent[0], 4);
    assert_int_equal(sent[1], 4);
    assert_int_equal(write(server, "pong!", 5), 5);
    read_through(f, app, buf, 5);
    assert_memory_equal(buf, "pong!", 5);
    close(server);
    close(app);
    run_until(f, &f->nclosed, 2);
    /* The source's record first, then the destination's, with its bytes. */
    assert_string_equal(f->ended[0].direction, "outbound");
    assert_string_equal(f->ended[1].direction, "inbound");
    assert_string_equal(f->ended[1].pod, "default/server");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->ended[i].state, CONN_CLOSED);
        assert_int_equal(f->ended[i].bytes_sent, 4);
        assert_int_equal(f->ended[i].bytes_received, 5);
        assert_string_equal(resp_flag_name(f->ended[i].response_flag), "-");
    }
}

static void untwinned_connection_ends_alone(void **state)
{
    struct fx *f = *state;
    int app;
    struct conn *c = begin(f, &app);
    struct meshd_addr src = loopback(40001);
    struct conn *tw = conn_begin(f->conns, -1, "inbound", "default/server", &src);
    conn_twin(c, tw);
    assert_ptr_equal(conn_untwin(c), tw);
    assert_null(conn_untwin(c)); /* once */
    conn_refuse(c, -ECONNREFUSED, RESP_FLAG_NR);
    assert_int_equal(f->nclosed, 1);
    assert_string_equal(f->ended[0].direction, "outbound");
    conn_end(tw, -ECONNREFUSED, 0, 0, RESP_FLAG_UF); /* its owner ends it */
    assert_int_equal(f->nclosed, 2);
    assert_string_equal(resp_flag_name(f->ended[1].response_flag), "UF");
    close(app);
}

static bool keep_unless_denied_pod(void *ctx, const struct conn_record *rec)
{
    (void)ctx;
    return strcmp(rec->pod, "default/denied") != 0;
}

static void revalidation_closes_the_twins_rejected(void **state)
{
    struct fx *f = *state;
    int app[2], server[2];
    begin_twinned(f, "default/allowed", &app[0], &server[0]);
    begin_twinned(f, "default/denied", &app[1], &server[1]);
    char buf[4];
    assert_int_equal(write(app[1], "abc", 3), 3);
    read_through(f, server[1], buf, 3);
    assert_int_equal(conns_revalidate_twins(f->conns, keep_unless_denied_pod, NULL), 1);
    assert_int_equal(f->nclosed, 2);
    assert_string_equal(f->ended[0].direction, "outbound");
    assert_string_equal(f->ended[1].pod, "default/denied");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->ended[i].state, CONN_FAILED);
        assert_string_equal(resp_flag_name(f->ended[i].response_flag), "DENY");
        assert_int_equal(f->ended[i].error, EACCES);
        assert_int_equal(f->ended[i].bytes_sent, 3);
    }
    char b;
    assert_true(read(app[1], &b, 1) <= 0); /* reset */
    assert_int_equal(conns_revalidate_twins(f->conns, keep_unless_denied_pod, NULL), 0);
    struct conns_stats st;
    conns_get_stats(f->conns, &st);
    assert_int_equal(st.active, 2); /* the allowed pair stays */
    for (int i = 0; i < 2; i++) {
        close(app[i]);
        close(server[i]);
    }
}

static uint64_t cookie_of(int fd)
{
    uint64_t c = 0;
    socklen_t len = sizeof(c);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len), 0);
    return c;
}

static const struct conn_record *event_for(struct fx *f, uint64_t cookie, uint32_t rtt)
{
    struct meshd_conn_event ev = {.sock_cookie = cookie, .srtt_us = rtt, .total_retrans = 2};
    return conns_kernel_event(f->conns, &ev);
}

static void on_app_connected(void *ctx, struct conn *c, int fd_or_err)
{
    int *fd = ctx;
    *fd = fd_or_err;
}

static void kernel_events_join_by_cookie(void **state)
{
    struct fx *f = *state;
    int app, server;
    struct conn *c = begin_twinned(f, "default/server", &app, &server);
    const struct conn_record *rec = conn_record(c);
    uint64_t app_cookie = rec->sock_cookie[0], up_cookie = rec->sock_cookie[1];
    assert_true(app_cookie && up_cookie && app_cookie != up_cookie);
    /* Active: either socket's event lands on the record. */
    assert_ptr_equal(event_for(f, app_cookie, 11), rec);
    assert_ptr_equal(event_for(f, up_cookie, 12), rec);
    assert_int_equal(rec->rtt_us, 12);
    assert_int_equal(rec->retrans, 2);
    assert_true(rec->kernel_seen);
    assert_null(event_for(f, 0xdead0000beefull, 1)); /* a socket meshd never proxied */
    /* A carrier's own upstream socket (conn_connect) is indexed too. */
    int app2;
    struct conn *h = begin(f, &app2);
    int up = -1;
    assert_int_equal(conn_connect(h, f->netns_fd, &f->good, NULL, NULL, on_app_connected, &up), 0);
    for (int i = 0; i < 200 && up < 0; i++)
        loop_run_once(f->loop, 10);
    assert_true(up >= 0);
    assert_int_equal(conn_record(h)->sock_cookie[1], cookie_of(up));
    assert_ptr_equal(event_for(f, cookie_of(up), 13), conn_record(h));
    /* Finished: the event finds the kept copy, with the final bytes. */
    close(server);
    close(app);
    run_until(f, &f->nclosed, 2);
    const struct conn_record *kept = event_for(f, up_cookie, 14);
    assert_non_null(kept);
    assert_ptr_not_equal(kept, rec);
    assert_int_equal(kept->id, f->ended[0].id);
    assert_int_equal(kept->rtt_us, 14);
    /* Evicted: more finished records than the ring keeps (8). */
    for (int i = 0; i < 8; i++) {
        int a;
        struct conn *x = begin(f, &a);
        conn_refuse(x, -ECONNREFUSED, RESP_FLAG_NR);
        close(a);
    }
    assert_null(event_for(f, up_cookie, 15));
    assert_null(event_for(f, app_cookie, 15));
    int server2 = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
    close(server2);
    close(up);
    conn_end(h, 0, 0, 0, RESP_FLAG_NONE);
    close(app2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refused_connect_retried_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(declined_failure_resets_with_uf, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_abort_fails_with_ut, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_forward_without_watcher, setup, teardown),
        cmocka_unit_test_setup_teardown(freeing_the_table_cancels_a_watched_connect, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(twin_opens_and_ends_with_its_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(untwinned_connection_ends_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(revalidation_closes_the_twins_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(kernel_events_join_by_cookie, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
