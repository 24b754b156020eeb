/* The HTTP carrier's test harness (see hp_fixture.h). */
#include "hp_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/container.h"
#include "core/loop.h"
#include "core/upstream.h"

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

uint64_t hpf_ms_since(uint64_t start_ns)
{
    return (loop_now_ns() - start_ns) / 1000000;
}

/* --- the scripted upstream ---------------------------------------------- */

/* The value of header `name` (with its colon) in head [p, p+n), or NULL. */
static const char *find_header(const char *p, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 2 + nl <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && strncasecmp(p + i + 2, name, nl) == 0)
            return p + i + 2 + nl;
    return NULL;
}

/* The length of the whole request at p, 0 while incomplete; *head_len
 * the head's (0 while incomplete). The proxy frames what it sends, so
 * plain Content-Length and chunks without trailers are all it writes. */
static size_t request_len(const char *p, size_t n, size_t *head_len)
{
    *head_len = 0;
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e)
        return 0;
    size_t h = (size_t)(e - p) + 4;
    *head_len = h;
    const char *cl = find_header(p, h, "content-length:");
    if (cl) {
        size_t len = strtoul(cl, NULL, 10);
        return n >= h + len ? h + len : 0;
    }
    if (!find_header(p, h, "transfer-encoding:"))
        return h;
    size_t pos = h;
    for (int chunks = 0; chunks < 1000; chunks++) {
        const char *le = memmem(p + pos, n - pos, "\r\n", 2);
        if (!le)
            return 0;
        size_t size = strtoul(p + pos, NULL, 16);
        if (size == 0) {
            const char *end = memmem(le, n - (size_t)(le - p), "\r\n\r\n", 4);
            return end ? (size_t)(end - p) + 4 : 0;
        }
        pos = (size_t)(le - p) + 2 + size + 2;
        if (pos > n)
            return 0;
    }
    return 0;
}

static void upconn_close(struct hpf_upconn *u, bool reset)
{
    if (u->eof)
        return;
    loop_del(u->f->loop, &u->io);
    if (reset)
        close_with_reset(u->io.fd);
    else
        close(u->io.fd);
    u->io.fd = -1;
    u->eof = true;
}

static void answer(struct hpf_upconn *u)
{
    struct hpf *f = u->f;
    if (f->step >= f->nsteps)
        return; /* past the script: hang */
    const struct hpf_step *s = &f->script[f->step++];
    if (s->send) {
        size_t n = strlen(s->send);
        assert_int_equal(send(u->io.fd, s->send, n, MSG_NOSIGNAL), (ssize_t)n);
    }
    if (s->close || s->reset)
        upconn_close(u, s->reset);
}

static void upconn_event(struct loop_io *io, uint32_t events)
{
    struct hpf_upconn *u = container_of(io, struct hpf_upconn, io);
    (void)events;
    ssize_t n = recv(io->fd, u->rx + u->len, sizeof(u->rx) - 1 - u->len, 0);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        upconn_close(u, false);
        return;
    }
    u->len += (size_t)n;
    u->rx[u->len] = '\0';
    while (!u->eof && u->done < u->len) {
        size_t hl, rl = request_len(u->rx + u->done, u->len - u->done, &hl);
        struct hpf *f = u->f;
        if (hl && !u->head_answered && f->step < f->nsteps && f->script[f->step].on_head) {
            u->head_answered = true;
            answer(u);
            continue;
        }
        if (!rl)
            break;
        u->done += rl;
        u->requests++;
        u->head_answered = false;
        answer(u);
    }
}

static void listener_event(struct loop_io *io, uint32_t events)
{
    struct hpf *f = container_of(io, struct hpf, lio);
    (void)events;
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    assert_true(f->accepts < HPF_MAX);
    struct hpf_upconn *u = &f->up[f->accepts++];
    u->f = f;
    u->io = (struct loop_io){.fd = fd, .cb = upconn_event};
    assert_int_equal(loop_add(f->loop, &u->io, EPOLLIN | EPOLLRDHUP), 0);
}

const char *hpf_up_rx(struct hpf *f, int i)
{
    return f->up[i].rx;
}

/* --- the router --------------------------------------------------------- */

static const struct pod *r_pod(void *user)
{
    struct hpf *f = user;
    return f->pod_gone ? NULL : f->use_pod2 ? &f->pod2 : &f->pod;
}

static void r_route(void *user, const struct pod *pod, const struct meshd_addr *orig_dst,
                    const struct http_request_view *req, struct http_decision *d)
{
    struct hpf *f = user;
    assert_ptr_equal(pod, f->use_pod2 ? &f->pod2 : &f->pod);
    assert_true(addr_equal(orig_dst, &f->orig_dst));
    int i = f->routes++;
    if (i < HPF_MAX) { /* the first calls are recorded, every one counted */
        f->avoided[i] = d->route.avoid_endpoint;
        f->avoided_cluster[i] = d->route.avoid_cluster;
        snprintf(f->seen_path[i], sizeof(f->seen_path[i]), "%s", req->path);
        snprintf(f->seen_authority[i], sizeof(f->seen_authority[i]), "%s", req->authority);
    }
    static const struct hpf_plan forward = {.kind = HPF_FORWARD};
    const struct hpf_plan *p = f->nplan ? &f->plan[i < f->nplan ? i : f->nplan - 1] : &forward;
    snprintf(d->cluster, sizeof(d->cluster), "outbound|80||svc.default.svc.cluster.local");
    d->actions = p->actions;
    d->vs_route = p->vs_route;
    switch (p->kind) {
    case HPF_RESPOND:
        d->verdict = HTTP_RESPOND;
        d->status = p->status;
        d->body = p->body;
        d->body_len = p->body ? strlen(p->body) : 0;
        snprintf(d->location, sizeof(d->location), "%s", p->location ? p->location : "");
        d->flag = p->flag;
        return;
    case HPF_REFUSE:
        d->verdict = HTTP_FORWARD;
        d->route.action = OUTBOUND_REFUSE;
        d->route.response_flag = p->flag;
        return;
    case HPF_FORWARD:
        break;
    }
    d->verdict = HTTP_FORWARD;
    d->route.action = OUTBOUND_PASSTHROUGH;
    d->route.target = loopback(p->port ? p->port : f->port);
    d->route.cluster = f;
    d->route.endpoint = 100 + i;
    d->route.max_requests_per_conn = p->max_per_conn;
    d->upstream_http1 = p->http1;
}

static void r_free(void *user, const struct outbound_route *r, bool failed)
{
    struct hpf *f = user;
    if (f->frees < HPF_MAX) {
        f->freed_endpoint[f->frees] = r->endpoint;
        f->freed_failed[f->frees] = failed;
    }
    f->frees++;
    f->frees_failed += failed;
}

static void r_report(void *user, struct http_request_record *r, const struct conn_record *conn,
                     const struct http_decision *d)
{
    struct hpf *f = user;
    assert_non_null(conn);
    if (f->nreports >= HPF_MAX) {
        f->nreports++;
        return;
    }
    struct hpf_report *o = &f->reports[f->nreports++];
    o->status = r->response_code;
    o->req_bytes = r->request_bytes;
    o->resp_bytes = r->response_bytes;
    o->decided = d != NULL;
    snprintf(o->flags, sizeof(o->flags), "%s", r->response_flags ? r->response_flags : "-");
    snprintf(o->method, sizeof(o->method), "%s", r->method ? r->method : "");
    snprintf(o->path, sizeof(o->path), "%s", r->path ? r->path : "");
    snprintf(o->request_id, sizeof(o->request_id), "%s", r->request_id ? r->request_id : "");
    snprintf(o->upstream_host, sizeof(o->upstream_host), "%s",
             r->upstream_host ? r->upstream_host : "");
    snprintf(o->protocol, sizeof(o->protocol), "%s", r->protocol ? r->protocol : "");
    o->grpc = r->grpc;
    o->grpc_status = r->grpc_status;
}

static void r_release(void *user)
{
    struct hpf *f = user;
    f->releases++;
}

static const struct http_router router = {
    .pod = r_pod, .route = r_route, .free = r_free, .report = r_report, .release = r_release};

static void on_closed(void *ctx, const struct conn_record *rec)
{
    struct hpf *f = ctx;
    f->closed = *rec;
    f->nclosed++;
}

/* --- the fixture -------------------------------------------------------- */

struct hpf *hpf_new(unsigned max_idle)
{
    struct http_proxy_opts po = {.max_idle_upstreams = max_idle};
    return hpf_new_opts(&po);
}

struct hpf *hpf_new_opts(const struct http_proxy_opts *opts)
{
    struct hpf *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->client = -1;
    assert_int_equal(loop_new(&f->loop), 0);
    struct conns_opts co = {.max_conns = 16,
                            .records = 16,
                            .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                            .observer = {.closed = on_closed, .ctx = f}};
    assert_int_equal(conns_new(f->loop, &co, &f->conns), 0);
    struct http_proxy_opts po = *opts;
    po.owner = (struct upstream_owner){.own_map_fd = UPSTREAM_NO_CAPTURE};
    assert_int_equal(http_proxy_new(f->loop, &po, &f->hp), 0);
    f->pod.netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(f->pod.netns_fd >= 0);
    snprintf(f->pod.ns, sizeof(f->pod.ns), "default");
    snprintf(f->pod.name, sizeof(f->pod.name), "client");
    f->pod.id = 1;
    f->pod2 = f->pod;
    f->pod2.id = 2;
    snprintf(f->pod2.name, sizeof(f->pod2.name), "other");

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 16), 0);
    f->port = bound_port(l);
    f->lio = (struct loop_io){.fd = l, .cb = listener_event};
    assert_int_equal(loop_add(f->loop, &f->lio, EPOLLIN), 0);
    /* Bound, never listened on: connects to it are refused. */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(c, (struct sockaddr *)&a, sizeof(a)), 0);
    f->closed_port = bound_port(c);
    close(c);
    /* The service's address the app dialled: never connected to, the
     * router's target is. */
    struct sockaddr_in vip = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, "10.96.0.10", &vip.sin_addr);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&vip, sizeof(vip), &f->orig_dst), 0);
    return f;
}

void hpf_free(struct hpf *f)
{
    http_proxy_free(f->hp);
    loop_del(f->loop, &f->lio);
    close(f->lio.fd);
    for (int i = 0; i < f->accepts; i++)
        upconn_close(&f->up[i], false);
    conns_free(f->conns);
    loop_run_once(f->loop, 0);
    loop_free(f->loop);
    if (f->client >= 0)
        close(f->client);
    close(f->pod.netns_fd);
    free(f);
}

struct conn *hpf_conn(struct hpf *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct meshd_addr src = loopback(40000);
    struct conn *c = conn_begin(f->conns, sv[0], "outbound", "default/client", &src);
    assert_non_null(c);
    conn_record(c)->orig_dst = f->orig_dst;
    f->client = sv[1];
    f->cli_len = 0;
    f->cli_eof = false;
    return c;
}

int hpf_start(struct hpf *f, struct conn *c)
{
    return http_session_start(f->hp, c, &f->orig_dst, &router, f);
}

int hpf_session(struct hpf *f)
{
    return hpf_start(f, hpf_conn(f));
}

int hpf_session_inbound(struct hpf *f, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port ? port : f->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(app >= 0);
    assert_int_equal(connect(app, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(fcntl(app, F_SETFL, O_NONBLOCK), 0); /* as conns' connect leaves it */
    return http_session_start_inbound(f->hp, hpf_conn(f), -1, app, "default/server", &f->orig_dst,
                                      &router, f);
}

void hpf_script(struct hpf *f, const struct hpf_step *steps, int n)
{
    assert_true(n <= HPF_MAX);
    memcpy(f->script, steps, sizeof(*steps) * (size_t)n);
    f->nsteps = n;
    f->step = 0;
}

void hpf_plan(struct hpf *f, const struct hpf_plan *plan, int n)
{
    assert_true(n <= HPF_MAX);
    memcpy(f->plan, plan, sizeof(*plan) * (size_t)n);
    f->nplan = n;
}

/* --- driving ------------------------------------------------------------ */

static void drain_client(struct hpf *f)
{
    while (!f->cli_eof && f->cli_len < sizeof(f->cli) - 1) {
        ssize_t n = recv(f->client, f->cli + f->cli_len, sizeof(f->cli) - 1 - f->cli_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            f->cli_eof = true;
            break;
        }
        f->cli_len += (size_t)n;
    }
    f->cli[f->cli_len] = '\0';
}

static void turn(struct hpf *f)
{
    loop_run_once(f->loop, 2);
    drain_client(f);
}

void hpf_send(struct hpf *f, const char *s)
{
    size_t n = strlen(s), off = 0;
    uint64_t t0 = loop_now_ns();
    while (off < n && hpf_ms_since(t0) < HPF_WAIT_MS) {
        ssize_t w = send(f->client, s + off, n - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else
            turn(f);
    }
    assert_int_equal(off, n);
}

void hpf_wait_client(struct hpf *f, size_t n)
{
    uint64_t t0 = loop_now_ns();
    while (f->cli_len < n && !f->cli_eof && hpf_ms_since(t0) < HPF_WAIT_MS)
        turn(f);
}

void hpf_expect(struct hpf *f, const char *want)
{
    size_t n = strlen(want);
    hpf_wait_client(f, n);
    hpf_spin(f, 5); /* nothing more may follow */
    if (f->cli_len != n || memcmp(f->cli, want, n) != 0) {
        for (int i = 0; i < f->accepts; i++)
            print_error("upstream %d (eof %d) got:\n%s\n", i, f->up[i].eof, f->up[i].rx);
        fail_msg("client got %zu bytes:\n%s\nwanted %zu bytes:\n%s", f->cli_len, f->cli, n, want);
    }
    f->cli_len = 0;
    f->cli[0] = '\0';
}

bool hpf_wait_eof(struct hpf *f)
{
    uint64_t t0 = loop_now_ns();
    while (!f->cli_eof && hpf_ms_since(t0) < HPF_WAIT_MS)
        turn(f);
    if (!f->cli_eof)
        return false;
    /* As a client does on EOF: close its side, which ends the proxy's
     * lingering close (it waits for this, dropping what the client sends). */
    int closed = f->nclosed;
    shutdown(f->client, SHUT_WR);
    while (f->nclosed == closed && hpf_ms_since(t0) < HPF_WAIT_MS)
        turn(f);
    return true;
}

void hpf_spin(struct hpf *f, int ms)
{
    uint64_t t0 = loop_now_ns();
    while (hpf_ms_since(t0) < (uint64_t)ms)
        turn(f);
}

void hpf_wait_count(struct hpf *f, const int *counter, int want)
{
    uint64_t t0 = loop_now_ns();
    while (*counter < want && hpf_ms_since(t0) < HPF_WAIT_MS)
        turn(f);
}

int hpf_strip_request_id(const char *in, char *out, size_t len, char *id, size_t idlen)
{
    static const char name[] = "x-request-id: ";
    int found = 0;
    size_t o = 0;
    for (const char *p = in; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t l = eol ? (size_t)(eol - p) + 2 : strlen(p);
        if (strncasecmp(p, name, sizeof(name) - 1) == 0) {
            if (!found && id)
                snprintf(id, idlen, "%.*s", (int)(l - 2 - (sizeof(name) - 1)),
                         p + sizeof(name) - 1);
            found++;
        } else if (o + l < len) {
            memcpy(out + o, p, l);
            o += l;
        }
        p += l;
    }
    out[o] = '\0';
    return found;
}
