/* The HTTP carrier's HTTP/2 sessions (agent/http/h2_session.c,
 * h2_exchange.c, h2_upstream.c) on a real loop (tests/unit/support/
 * hp_fixture.h): an h2c client (the codec, client role) on the
 * session's socket pair, an h2c upstream (the codec, server role) on
 * loopback. The HTTP/1 session hands a connection that starts with the
 * preface over; each stream is routed on its own and its attempts share
 * one multiplexed upstream connection; header edits reach the upstream;
 * bodies and trailers (gRPC's status) pass both ways and reach the
 * record; local replies (no route, no healthy upstream, a direct
 * response, a redirect) are HTTP/2 responses, with grpc-status for gRPC;
 * a connect failure is retried on another endpoint; an upstream
 * connection that sent GOAWAY or served maxRequestsPerConnection takes no
 * new stream; a client's reset frees the attempt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "http/h2.h"
#include "support/hp_fixture.h"

#define NSTREAMS 8

/* --- the h2c upstream ---------------------------------------------------- */

struct up_stream {
    char path[64];
    size_t body;
};

struct upconn {
    struct loop_io io;
    struct h2_conn *c;
    struct up2 *u;
};

struct up2 {
    struct loop_io lio;
    uint16_t port;
    struct upconn conns[4];
    int nconns, requests;
    char fields[NSTREAMS][512]; /* what each request carried, "name=value ..." */
};

static struct loop *g_loop; /* the fixture's, for the upstream's callbacks */

static void up_flush(struct upconn *k)
{
    const uint8_t *p;
    ssize_t n;
    while ((n = h2_conn_pull(k->c, &p)) > 0)
        assert_int_equal(send(k->io.fd, p, (size_t)n, MSG_NOSIGNAL), n);
}

static int up_on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct upconn *k = ctx;
    if (h->trailers)
        return 0;
    struct up_stream *s = calloc(1, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", h->path);
    h2_stream_set_user(st, s);
    int i = k->u->requests++;
    if (i < NSTREAMS) {
        size_t o = (size_t)snprintf(k->u->fields[i], sizeof(k->u->fields[i]), ":authority=%s",
                                    h->authority);
        for (size_t j = 0; j < h->nfields && o < sizeof(k->u->fields[i]); j++)
            o += (size_t)snprintf(k->u->fields[i] + o, sizeof(k->u->fields[i]) - o, " %s=%s",
                                  h->fields[j].name, h->fields[j].value);
    }
    return 0;
}

static int up_on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct upconn *k = ctx;
    (void)p;
    struct up_stream *s = h2_stream_user(st);
    s->body += n;
    h2_consume(k->c, st, n);
    return 0;
}

/* The request is whole: answered by its path. */
static void up_on_end(void *ctx, struct h2_stream *st)
{
    struct upconn *k = ctx;
    struct up_stream *s = h2_stream_user(st);
    if (strcmp(s->path, "/reset") == 0) {
        h2_reset(k->c, st, H2_INTERNAL_ERROR);
        return;
    }
    if (strcmp(s->path, "/goaway") == 0)
        h2_conn_goaway(k->c, H2_NO_ERROR); /* this stream finishes, no new one */
    int status = strncmp(s->path, "/status/", 8) == 0 ? atoi(s->path + 8) : 200;
    bool grpc = strncmp(s->path, "/grpc/", 6) == 0;
    struct http_field f[] = {
        http_field_of("content-type", grpc ? "application/grpc" : "text/plain"),
        http_field_of("x-up", "1")};
    struct h2_head h = {.status = status, .fields = f, .nfields = 2};
    assert_int_equal(h2_submit_response(k->c, st, &h), 0);
    char body[64];
    int n = snprintf(body, sizeof(body), "len=%zu", s->body);
    assert_int_equal(h2_send_data(k->c, st, body, (size_t)n, !grpc), 0);
    if (grpc) {
        struct http_field t[] = {http_field_of("grpc-status", s->path + 6),
                                 http_field_of("grpc-message", "as asked")};
        assert_int_equal(h2_send_trailers(k->c, st, t, 2), 0);
    }
}

static void up_on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    (void)ctx;
    (void)error;
    free(h2_stream_user(st));
    h2_stream_set_user(st, NULL);
}

static const struct h2_callbacks up_cbs = {
    .on_head = up_on_head, .on_data = up_on_data, .on_end = up_on_end, .on_close = up_on_close};

static void upconn_event(struct loop_io *io, uint32_t events)
{
    struct upconn *k = container_of(io, struct upconn, io);
    (void)events;
    uint8_t buf[16384];
    ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0)
        h2_conn_recv(k->c, buf, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        loop_del(g_loop, io);
    up_flush(k);
}

static void up_accept(struct loop_io *io, uint32_t events);

static struct up2 *up_new(struct hpf *f)
{
    struct up2 *u = calloc(1, sizeof(*u));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    u->port = ntohs(a.sin_port);
    u->lio = (struct loop_io){.fd = fd, .cb = up_accept};
    assert_int_equal(loop_add(f->loop, &u->lio, EPOLLIN), 0);
    return u;
}

static void up_accept(struct loop_io *io, uint32_t events)
{
    struct up2 *u = container_of(io, struct up2, lio);
    (void)events;
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0 || u->nconns >= 4) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct upconn *k = &u->conns[u->nconns++];
    k->u = u;
    k->io = (struct loop_io){.fd = fd, .cb = upconn_event};
    assert_int_equal(h2_conn_new(H2_SERVER, &up_cbs, k, &k->c), 0);
    assert_int_equal(loop_add(g_loop, &k->io, EPOLLIN), 0);
    up_flush(k);
}

static void up_free(struct hpf *f, struct up2 *u)
{
    for (int i = 0; i < u->nconns; i++) {
        if (u->conns[i].io.registered)
            loop_del(f->loop, &u->conns[i].io);
        close(u->conns[i].io.fd);
        h2_conn_free(u->conns[i].c);
    }
    loop_del(f->loop, &u->lio);
    close(u->lio.fd);
    free(u);
}

/* --- the h2c client ------------------------------------------------------ */

struct cstream {
    int status, closes;
    uint32_t error;
    char body[128], fields[256], trailers[128];
};

struct client {
    struct h2_conn *c;
    struct cstream s[NSTREAMS];
    int closed;
};

static void join_fields(const struct h2_head *h, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->nfields && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s=%s", i ? " " : "", h->fields[i].name,
                              h->fields[i].value);
}

static int cl_on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    (void)ctx;
    struct cstream *s = h2_stream_user(st);
    if (h->trailers)
        join_fields(h, s->trailers, sizeof(s->trailers));
    else {
        s->status = h->status;
        join_fields(h, s->fields, sizeof(s->fields));
    }
    return 0;
}

static int cl_on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct client *k = ctx;
    struct cstream *s = h2_stream_user(st);
    size_t have = strlen(s->body);
    snprintf(s->body + have, sizeof(s->body) - have, "%.*s", (int)n, (const char *)p);
    h2_consume(k->c, st, n);
    return 0;
}

static void cl_on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct client *k = ctx;
    struct cstream *s = h2_stream_user(st);
    s->closes++;
    s->error = error;
    k->closed++;
}

static const struct h2_callbacks cl_cbs = {
    .on_head = cl_on_head, .on_data = cl_on_data, .on_close = cl_on_close};

/* Moves the client's bytes both ways and turns the loop until `n`
 * streams closed (or the bound). */
static void cl_run(struct hpf *f, struct client *k, int n)
{
    uint64_t t0 = loop_now_ns();
    while (k->closed < n && hpf_ms_since(t0) < HPF_WAIT_MS) {
        const uint8_t *p;
        ssize_t w;
        while ((w = h2_conn_pull(k->c, &p)) > 0)
            assert_int_equal(send(f->client, p, (size_t)w, MSG_NOSIGNAL), w);
        hpf_spin(f, 2);
        if (f->cli_len) { /* what the fixture drained from the client's socket */
            h2_conn_recv(k->c, (const uint8_t *)f->cli, f->cli_len);
            f->cli_len = 0;
        }
    }
}

static void cl_request(struct client *k, int i, const char *method, const char *path,
                       const char *ctype, const char *body)
{
    struct http_field fl[] = {http_field_of("content-type", ctype ? ctype : "text/plain"),
                              http_field_of("x-request-id", "r1"), http_field_of("te", "trailers")};
    struct h2_head h = {.method = method,
                        .path = path,
                        .authority = "svc",
                        .scheme = "http",
                        .fields = fl,
                        .nfields = 3,
                        .end_stream = body == NULL};
    struct h2_stream *st;
    assert_int_equal(h2_submit_request(k->c, &h, &k->s[i], &st), 0);
    if (body)
        assert_int_equal(h2_send_data(k->c, st, body, strlen(body), true), 0);
}

struct rig {
    struct hpf *f;
    struct up2 *u;
    struct client k;
};

static void rig_start(struct rig *r, const struct hpf_plan *plan, int nplan, bool inbound)
{
    memset(r, 0, sizeof(*r));
    r->f = hpf_new(0);
    g_loop = r->f->loop;
    r->u = up_new(r->f);
    struct hpf_plan p[HPF_MAX];
    for (int i = 0; i < nplan; i++) {
        p[i] = plan[i];
        if (p[i].kind == HPF_FORWARD && p[i].port == 0 && !p[i].http1)
            p[i].port = r->u->port; /* the h2 upstream, not the fixture's HTTP/1 one */
    }
    hpf_plan(r->f, p, nplan);
    assert_int_equal(inbound ? hpf_session_inbound(r->f, r->u->port) : hpf_session(r->f), 0);
    assert_int_equal(h2_conn_new(H2_CLIENT, &cl_cbs, &r->k, &r->k.c), 0);
}

static void rig_new(struct rig *r, const struct hpf_plan *plan, int nplan)
{
    rig_start(r, plan, nplan, false);
}

static void rig_free(struct rig *r)
{
    h2_conn_free(r->k.c);
    close(r->f->client);
    r->f->client = -1;
    hpf_wait_count(r->f, &r->f->releases, 1);
    assert_int_equal(r->f->releases, 1); /* the router let go once */
    up_free(r->f, r->u);
    hpf_free(r->f);
}

/* --- tests --------------------------------------------------------------- */

static void streams_routed_each_over_one_upstream_connection(void **state)
{
    (void)state;
    struct rig r;
    rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD}}, 1);
    cl_request(&r.k, 0, "GET", "/a?x=1", NULL, NULL);
    cl_request(&r.k, 1, "POST", "/b", NULL, "hello");
    cl_request(&r.k, 2, "GET", "/c", NULL, NULL);
    cl_run(r.f, &r.k, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.k.s[i].status, 200);
        assert_int_equal(r.k.s[i].closes, 1);
        assert_int_equal(r.k.s[i].error, H2_NO_ERROR);
    }
    assert_string_equal(r.k.s[1].body, "len=5"); /* the body went upstream */
    assert_string_equal(r.k.s[0].fields, "content-type=text/plain x-up=1");
    assert_int_equal(r.f->routes, 3); /* each stream routed on its own */
    assert_int_equal(r.u->nconns, 1); /* one multiplexed upstream connection */
    assert_int_equal(r.u->requests, 3);
    /* What the upstream received: :authority, the client's fields (te
     * kept as "trailers", the request id as sent), nothing hop-by-hop. */
    hpf_wait_count(r.f, &r.f->nreports, 3);
    assert_int_equal(r.f->nreports, 3);
    int seen_a = 0;
    for (int i = 0; i < 3; i++) {
        const struct hpf_report *rep = &r.f->reports[i];
        assert_int_equal(rep->status, 200);
        assert_string_equal(rep->protocol, "HTTP/2");
        assert_string_equal(rep->request_id, "r1");
        assert_false(rep->grpc);
        seen_a += strcmp(rep->path, "/a?x=1") == 0;
    }
    assert_int_equal(seen_a, 1);
    assert_string_equal(r.f->seen_authority[0], "svc");
    assert_non_null(strstr(r.u->fields[0], ":authority=svc content-type=text/plain "
                                           "x-request-id=r1 te=trailers"));
    assert_int_equal(r.f->frees, 3);
    assert_int_equal(r.f->frees_failed, 0);
    rig_free(&r);
}

static void local_replies_are_http2_responses(void **state)
{
    (void)state;
    static const struct {
        const char *name, *ctype;
        struct hpf_plan plan;
        int status;
        const char *body, *fields;
    } rows[] = {
        {"no route: 404 NR",
         NULL,
         {.kind = HPF_REFUSE, .flag = RESP_FLAG_NR},
         404,
         "",
         "server=meshd"},
        {"no healthy upstream: 503 UH",
         NULL,
         {.kind = HPF_REFUSE, .flag = RESP_FLAG_UH},
         503,
         "no healthy upstream",
         "content-type=text/plain server=meshd"},
        {"a direct response",
         NULL,
         {.kind = HPF_RESPOND, .status = 202, .body = "made here"},
         202,
         "made here",
         "content-type=text/plain server=meshd"},
        {"a redirect",
         NULL,
         {.kind = HPF_RESPOND, .status = 301, .location = "http://x/y"},
         301,
         "",
         "location=http://x/y server=meshd"},
        {"gRPC: 503 UH with grpc-status 14",
         "application/grpc",
         {.kind = HPF_REFUSE, .flag = RESP_FLAG_UH},
         503,
         "no healthy upstream",
         "grpc-status=14 grpc-message=no healthy upstream content-type=text/plain server=meshd"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct rig r;
        rig_new(&r, &rows[i].plan, 1);
        cl_request(&r.k, 0, "GET", "/x", rows[i].ctype, NULL);
        cl_run(r.f, &r.k, 1);
        assert_int_equal(r.k.s[0].status, rows[i].status);
        assert_string_equal(r.k.s[0].body, rows[i].body);
        assert_string_equal(r.k.s[0].fields, rows[i].fields);
        assert_int_equal(r.u->requests, 0); /* nothing went upstream */
        hpf_wait_count(r.f, &r.f->nreports, 1);
        assert_int_equal(r.f->reports[0].status, rows[i].status);
        assert_int_equal(r.f->reports[0].grpc, rows[i].ctype != NULL);
        rig_free(&r);
    }
}

static void grpc_trailers_pass_through_to_the_record(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int grpc_status;
    } rows[] = {{"/grpc/0", 0}, {"/grpc/7", 7}, {"/grpc/14", 14}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].path);
        struct rig r;
        rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD}}, 1);
        cl_request(&r.k, 0, "POST", rows[i].path, "application/grpc+proto", "\0\0\0\0\0");
        cl_run(r.f, &r.k, 1);
        assert_int_equal(r.k.s[0].status, 200);
        char want[64];
        snprintf(want, sizeof(want), "grpc-status=%d grpc-message=as asked", rows[i].grpc_status);
        assert_string_equal(r.k.s[0].trailers, want);
        hpf_wait_count(r.f, &r.f->nreports, 1);
        assert_true(r.f->reports[0].grpc);
        assert_int_equal(r.f->reports[0].grpc_status, rows[i].grpc_status);
        rig_free(&r);
    }
}

static void failures_are_retried_on_another_endpoint(void **state)
{
    (void)state;
    static const struct {
        const char *name, *path;
        struct hpf_plan first;
        int status, routes;
        const char *flags;
    } rows[] = {
        {"a connect failure, then the upstream",
         "/ok",
         {.kind = HPF_FORWARD, .port = 1},
         200,
         2,
         "-"},
        {"a reset stream is not replayed (Istio's default)",
         "/reset",
         {.kind = HPF_FORWARD},
         503,
         1,
         "UC"},
        {"503 answers: retried, then told as is",
         "/status/503",
         {.kind = HPF_FORWARD},
         503,
         3,
         "URX"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct rig r;
        struct hpf_plan plan[2] = {rows[i].first, {.kind = HPF_FORWARD}};
        rig_new(&r, plan, 2);
        if (rows[i].first.port == 1)
            r.f->plan[0].port = r.f->closed_port; /* nobody listens there */
        cl_request(&r.k, 0, "GET", rows[i].path, NULL, NULL);
        cl_run(r.f, &r.k, 1);
        assert_int_equal(r.k.s[0].status, rows[i].status);
        assert_int_equal(r.f->routes, rows[i].routes);
        if (rows[i].routes > 1)
            assert_int_equal(r.f->avoided[1], 100); /* not the endpoint that failed */
        hpf_wait_count(r.f, &r.f->nreports, 1);
        assert_int_equal(r.f->nreports, 1);
        assert_string_equal(r.f->reports[0].flags, rows[i].flags);
        rig_free(&r);
    }
}

/* At the destination the source's retry policy is not applied again: the
 * app's own 503 reaches the client as is, on the one app connection, and
 * the next stream is served on it. */
static void destination_passes_the_apps_503_on(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD}}, 1, true);
    cl_request(&r.k, 0, "GET", "/status/503", NULL, NULL);
    cl_run(r.f, &r.k, 1);
    cl_request(&r.k, 1, "GET", "/ok", NULL, NULL);
    cl_run(r.f, &r.k, 2);
    assert_int_equal(r.k.s[0].status, 503);
    assert_int_equal(r.k.s[1].status, 200);
    assert_int_equal(r.u->nconns, 1);
    assert_int_equal(r.u->requests, 2); /* each asked once */
    assert_int_equal(r.f->routes, 2);
    hpf_wait_count(r.f, &r.f->nreports, 2);
    assert_int_equal(r.f->nreports, 2);
    assert_int_equal(r.f->reports[0].status, 503);
    assert_string_equal(r.f->reports[0].flags, "-");
    assert_string_equal(r.f->reports[1].flags, "-");
    rig_free(&r);
}

static void upstream_connections_are_replaced_when_they_take_no_more(void **state)
{
    (void)state;
    static const struct {
        const char *name, *first;
        uint32_t max_per_conn;
        int conns;
    } rows[] = {
        {"kept: one connection for both", "/a", 0, 1},
        {"GOAWAY after the first: the second opens a new one", "/goaway", 0, 2},
        {"maxRequestsPerConnection 1: a connection each", "/a", 1, 2},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct rig r;
        rig_new(&r,
                (struct hpf_plan[]){{.kind = HPF_FORWARD, .max_per_conn = rows[i].max_per_conn}},
                1);
        cl_request(&r.k, 0, "GET", rows[i].first, NULL, NULL);
        cl_run(r.f, &r.k, 1);
        hpf_spin(r.f, 20); /* the GOAWAY arrives */
        cl_request(&r.k, 1, "GET", "/b", NULL, NULL);
        cl_run(r.f, &r.k, 2);
        assert_int_equal(r.k.s[0].status, 200);
        assert_int_equal(r.k.s[1].status, 200);
        assert_int_equal(r.u->nconns, rows[i].conns);
        assert_int_equal(r.u->requests, 2);
        rig_free(&r);
    }
}

static void a_client_reset_frees_the_attempt(void **state)
{
    (void)state;
    struct rig r;
    rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD}}, 1);
    /* A request whose body never ends: the upstream never answers. */
    struct http_field fl[] = {http_field_of("x", "y")};
    struct h2_head h = {
        .method = "POST", .path = "/slow", .authority = "svc", .fields = fl, .nfields = 1};
    struct h2_stream *st;
    assert_int_equal(h2_submit_request(r.k.c, &h, &r.k.s[0], &st), 0);
    assert_int_equal(h2_send_data(r.k.c, st, "part", 4, false), 0);
    cl_run(r.f, &r.k, 1); /* runs to the bound: nothing closes */
    assert_int_equal(r.u->requests, 1);
    h2_reset(r.k.c, st, H2_CANCEL);
    cl_run(r.f, &r.k, 1);
    hpf_wait_count(r.f, &r.f->nreports, 1);
    assert_int_equal(r.f->nreports, 1);
    assert_int_equal(r.f->reports[0].status, 0);
    assert_string_equal(r.f->reports[0].flags, "DC");
    assert_int_equal(r.f->frees, 1);
    rig_free(&r);
}

/* upstream_http1 (a backend that speaks HTTP/1.1 only, at the edge): each
 * stream is an HTTP/1.1 request on a connection of its own (Host from
 * :authority, kept alive, a body of unknown length chunked), its
 * response the stream's (hop-by-hop and framing fields dropped, a chunked
 * body unframed); a response cut short resets the stream. */
static void http1_backends_get_http1(void **state)
{
    (void)state;
    static const struct {
        const char *name, *method, *body, *resp;
        bool close;
        int status;
        uint32_t error;
        const char *got, *fields, *sent, *flags;
    } rows[] = {
        {"a bodiless GET", "GET", NULL,
         "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Up: 1\r\n"
         "Content-Length: 2\r\n\r\nok",
         false, 200, H2_NO_ERROR, "ok", "x-up=1",
         "GET /a HTTP/1.1\r\nHost: svc\r\ncontent-type: text/plain\r\n", "-"},
        {"a body of unknown length, chunked both ways", "POST", "hello",
         "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false,
         201, H2_NO_ERROR, "abc", "", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         "-"},
        {"a response cut short: the stream reset", "GET", NULL,
         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, 200, H2_INTERNAL_ERROR, "abc",
         "", "GET /a HTTP/1.1\r\n", "UC"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct rig r;
        rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD, .http1 = true}}, 1);
        hpf_script(r.f, (struct hpf_step[]){{.send = rows[i].resp, .close = rows[i].close}}, 1);
        cl_request(&r.k, 0, rows[i].method, "/a", NULL, rows[i].body);
        cl_run(r.f, &r.k, 1);
        assert_int_equal(r.k.s[0].error, rows[i].error);
        assert_int_equal(r.k.s[0].closes, 1);
        if (rows[i].error == H2_NO_ERROR) { /* a reset may overtake what was framed */
            assert_int_equal(r.k.s[0].status, rows[i].status);
            assert_string_equal(r.k.s[0].body, rows[i].got);
            char fields[256];
            snprintf(fields, sizeof(fields), "%s", r.k.s[0].fields);
            assert_non_null(strstr(fields, rows[i].fields));
            assert_null(strstr(fields, "keep-alive"));
            assert_null(strstr(fields, "transfer-encoding"));
        }
        assert_int_equal(r.u->requests, 0); /* nothing reached the h2 upstream */
        assert_int_equal(r.f->accepts, 1);
        const char *rx = hpf_up_rx(r.f, 0);
        assert_non_null(strstr(rx, rows[i].sent));
        assert_null(strstr(rx, "Connection:")); /* kept alive */
        assert_null(strstr(rx, "te: "));
        hpf_wait_count(r.f, &r.f->nreports, 1);
        assert_int_equal(r.f->reports[0].status, rows[i].status);
        assert_string_equal(r.f->reports[0].flags, rows[i].flags);
        assert_string_equal(r.f->reports[0].protocol, "HTTP/2");
        assert_int_equal(r.f->frees, 1);
        rig_free(&r);
    }
}

/* Keep-alive: a stream after another reuses the idle connection (one
 * accept, both requests on it); a response with Connection: close is not
 * reused, the next stream opens a new one. */
static void http1_connections_are_kept_alive(void **state)
{
    (void)state;
    struct rig r;
    rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD, .http1 = true}}, 1);
    hpf_script(r.f,
               (struct hpf_step[]){{.send = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
                                   {.send = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                            "Connection: close\r\n\r\nk2",
                                    .close = true},
                                   {.send = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nk3"}},
               3);
    const char *want[] = {"ok", "k2", "k3"};
    for (int i = 0; i < 3; i++) {
        cl_request(&r.k, i, "GET", "/k", NULL, NULL);
        cl_run(r.f, &r.k, i + 1);
        assert_int_equal(r.k.s[i].status, 200);
        assert_string_equal(r.k.s[i].body, want[i]);
    }
    assert_int_equal(r.f->accepts, 2); /* the second reused the first's, the third a new one */
    assert_int_equal(r.f->up[0].requests, 2);
    struct http_proxy_stats st;
    http_proxy_get_stats(r.f->hp, &st);
    assert_int_equal(st.upstreams_reused, 1);
    hpf_wait_count(r.f, &r.f->nreports, 3);
    assert_int_equal(r.f->frees_failed, 0);
    rig_free(&r);
}

/* A backend over HTTP/1.1 that closes without a byte: a connect failure,
 * retried on another endpoint as for an HTTP/2 upstream. */
static void http1_backend_silent_close_is_retried(void **state)
{
    (void)state;
    struct rig r;
    rig_new(&r, (struct hpf_plan[]){{.kind = HPF_FORWARD, .http1 = true}}, 1);
    hpf_script(r.f,
               (struct hpf_step[]){{.send = "", .close = true},
                                   {.send = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}},
               2);
    cl_request(&r.k, 0, "GET", "/a", NULL, NULL);
    cl_run(r.f, &r.k, 1);
    assert_int_equal(r.k.s[0].status, 200);
    assert_string_equal(r.k.s[0].body, "ok");
    assert_int_equal(r.f->routes, 2);
    assert_int_equal(r.f->avoided[1], 100); /* the retry avoided the endpoint that failed */
    assert_int_equal(r.f->accepts, 2);
    hpf_wait_count(r.f, &r.f->nreports, 1);
    assert_int_equal(r.f->reports[0].status, 200);
    assert_int_equal(r.f->frees_failed, 1);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streams_routed_each_over_one_upstream_connection),
        cmocka_unit_test(local_replies_are_http2_responses),
        cmocka_unit_test(grpc_trailers_pass_through_to_the_record),
        cmocka_unit_test(failures_are_retried_on_another_endpoint),
        cmocka_unit_test(destination_passes_the_apps_503_on),
        cmocka_unit_test(upstream_connections_are_replaced_when_they_take_no_more),
        cmocka_unit_test(a_client_reset_frees_the_attempt),
        cmocka_unit_test(http1_backends_get_http1),
        cmocka_unit_test(http1_backend_silent_close_is_retried),
        cmocka_unit_test(http1_connections_are_kept_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
