/* The OTLP/HTTP exporter (see otlp.h): a ring of encoded spans, and one
 * HTTP/1.1 client connection driven by the loop: IDLE -> CONNECTING ->
 * SENDING -> READING -> IDLE (the connection kept when the collector
 * keeps it and said how long its body is). A batch leaves the ring when
 * it is sent: its spans are the request's, exported or dropped with it.
 * A kept connection the collector closed meanwhile fails before any byte
 * of an answer: the batch is sent once more on a new one. */
#include "telemetry/otlp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/ticker.h"

#define OTLP_TICK_MS   100
#define OTLP_RESP_HEAD 8192

enum otlp_state { X_IDLE, X_CONNECTING, X_SENDING, X_READING };

struct otlp_item {
    char *service, *span;
    size_t bytes;
};

struct otlp {
    struct loop *loop; /* borrowed */
    struct otlp_opts o;
    struct ticker ticker;
    struct loop_task flush;
    struct otlp_item *q; /* ring of o.queue_max */
    size_t head, count, bytes;
    enum otlp_state state;
    struct loop_io io; /* fd -1: no connection */
    bool reused;       /* the batch went on a kept connection */
    char *req;         /* the request in flight */
    size_t req_len, req_off, inflight;
    uint64_t deadline_ns, last_flush_ns;
    char resp[OTLP_RESP_HEAD];
    size_t resp_len;
    bool head_done, keep, body_by_length;
    uint64_t body_left;
    struct otlp_stats st;
};

int otlp_collector_parse(const char *spec, struct otlp_collector *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "otel");
    const char *eq = strchr(spec, '=');
    if (eq) {
        size_t n = (size_t)(eq - spec);
        if (!n || n >= sizeof(out->name))
            return -EINVAL;
        memcpy(out->name, spec, n);
        out->name[n] = '\0';
        spec = eq + 1;
    }
    const char *slash = strchr(spec, '/');
    char hostport[80];
    size_t hl = slash ? (size_t)(slash - spec) : strlen(spec);
    if (!hl || hl >= sizeof(hostport))
        return -EINVAL;
    memcpy(hostport, spec, hl);
    hostport[hl] = '\0';
    if (addr_parse(hostport, &out->addr) != 0 || !out->addr.port)
        return -EINVAL;
    const char *path = slash ? slash : "/v1/traces";
    if (strlen(path) >= sizeof(out->path) || strpbrk(path, " \r\n\t"))
        return -EINVAL;
    snprintf(out->path, sizeof(out->path), "%s", path);
    return 0;
}

int otlp_collector_resolve(const char *name, const char *host, uint16_t port, const char *path,
                           struct otlp_collector *out)
{
    memset(out, 0, sizeof(*out));
    if (!port || strlen(name) >= sizeof(out->name) || strlen(path) >= sizeof(out->path) ||
        path[0] != '/' || strpbrk(path, " \r\n\t"))
        return -EINVAL;
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->path, sizeof(out->path), "%s", path);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -EHOSTUNREACH;
    int rc = addr_from_sockaddr(res->ai_addr, res->ai_addrlen, &out->addr);
    freeaddrinfo(res);
    out->addr.port = htons(port);
    return rc ? -EINVAL : 0;
}

static void item_free(struct otlp_item *it)
{
    free(it->service);
    free(it->span);
    *it = (struct otlp_item){0};
}

bool otlp_enqueue(struct otlp *x, const char *service, const char *span_json)
{
    if (!span_json) { /* it could not be encoded */
        x->st.dropped++;
        return false;
    }
    size_t bytes = strlen(span_json) + strlen(service);
    if (x->count == x->o.queue_max || bytes > OTLP_SPAN_MAX ||
        x->bytes + bytes > OTLP_QUEUE_BYTES) {
        x->st.dropped++;
        return false;
    }
    struct otlp_item *it = &x->q[(x->head + x->count) % x->o.queue_max];
    it->service = strdup(service);
    it->span = strdup(span_json);
    if (!it->service || !it->span) {
        item_free(it);
        x->st.dropped++;
        return false;
    }
    it->bytes = bytes;
    x->count++;
    x->bytes += bytes;
    if (x->count >= x->o.batch_max && x->state == X_IDLE)
        loop_task_queue(x->loop, &x->flush);
    return true;
}

static void conn_close(struct otlp *x)
{
    if (x->io.fd >= 0) {
        loop_del(x->loop, &x->io);
        close(x->io.fd);
    }
    x->io.fd = -1;
}

static void batch_over(struct otlp *x, bool ok)
{
    if (ok) {
        x->st.exported += x->inflight;
        x->st.batches++;
    } else {
        x->st.dropped += x->inflight;
        x->st.export_errors++;
        log_ratelimited(LOG_WARN, "otlp: export of %zu spans failed", x->inflight);
    }
    free(x->req);
    x->req = NULL;
    x->inflight = 0;
    x->state = X_IDLE;
    if (!ok || !x->keep)
        conn_close(x);
    else
        loop_set(x->loop, &x->io, EPOLLIN | EPOLLRDHUP); /* to see the collector close it */
    if (x->count >= x->o.batch_max)
        loop_task_queue(x->loop, &x->flush);
}

static int conn_open(struct otlp *x)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_to_sockaddr(&x->o.collector.addr, &ss, &sl) != 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) == -1 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    x->io.fd = fd;
    if (loop_add(x->loop, &x->io, EPOLLOUT) != 0) {
        close(fd);
        x->io.fd = -1;
        return -ENOMEM;
    }
    return 0;
}

/* (Re)sends the request in flight: on the kept connection or a new one. */
static void send_request(struct otlp *x)
{
    x->req_off = x->resp_len = 0;
    x->head_done = x->keep = false;
    x->deadline_ns = loop_now_ns() + (uint64_t)x->o.timeout_ms * 1000000u;
    x->reused = x->io.fd >= 0;
    if (x->reused) {
        x->state = X_SENDING;
        loop_set(x->loop, &x->io, EPOLLOUT);
        return;
    }
    x->state = X_CONNECTING;
    if (conn_open(x) != 0)
        batch_over(x, false);
}

static void start_batch(struct otlp *x)
{
    size_t n = x->count < x->o.batch_max ? x->count : x->o.batch_max;
    const char **services = calloc(n, sizeof(*services)), **spans = calloc(n, sizeof(*spans));
    size_t len = 0;
    char *body = NULL;
    if (services && spans) {
        for (size_t i = 0; i < n; i++) {
            struct otlp_item *it = &x->q[(x->head + i) % x->o.queue_max];
            services[i] = it->service;
            spans[i] = it->span;
        }
        body = otlp_request_encode(services, spans, n, &len);
    }
    free(services);
    free(spans);
    for (size_t i = 0; i < n; i++) { /* the batch's now, whatever happens */
        struct otlp_item *it = &x->q[(x->head + i) % x->o.queue_max];
        x->bytes -= it->bytes;
        item_free(it);
    }
    x->head = (x->head + n) % x->o.queue_max;
    x->count -= n;
    x->inflight = n;
    x->last_flush_ns = loop_now_ns();
    char addr[ADDR_STRLEN];
    addr_format(&x->o.collector.addr, addr, sizeof(addr));
    char head[512];
    int hl = body ? snprintf(head, sizeof(head),
                             "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: meshd\r\n"
                             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                             x->o.collector.path, addr, len)
                  : -1;
    x->req = hl > 0 && (size_t)hl < sizeof(head) ? malloc((size_t)hl + len) : NULL;
    if (!x->req) {
        free(body);
        batch_over(x, false);
        return;
    }
    memcpy(x->req, head, (size_t)hl);
    memcpy(x->req + hl, body, len);
    free(body);
    x->req_len = (size_t)hl + len;
    send_request(x);
}

static void maybe_flush(struct otlp *x, uint64_t now)
{
    if (x->state != X_IDLE || !x->count)
        return;
    if (x->count >= x->o.batch_max || now - x->last_flush_ns >= (uint64_t)x->o.flush_ms * 1000000u)
        start_batch(x);
}

static void on_flush(struct loop_task *t)
{
    struct otlp *x = container_of(t, struct otlp, flush);
    maybe_flush(x, loop_now_ns());
}

/* A failure before any byte of the answer on a kept connection: the
 * collector had closed it; once more on a new one. */
static void failed(struct otlp *x)
{
    if (x->reused && x->resp_len == 0 && !x->head_done) {
        conn_close(x);
        send_request(x);
        return;
    }
    batch_over(x, false);
}

/* Status line and the fields that say how the answer ends. */
static int parse_head(struct otlp *x, size_t head_len)
{
    x->resp[head_len - 1] = '\0';
    int status = 0;
    if (sscanf(x->resp, "HTTP/1.%*d %d", &status) != 1)
        return -EBADMSG;
    x->keep = strncmp(x->resp, "HTTP/1.1", 8) == 0;
    x->body_by_length = false;
    for (char *line = strstr(x->resp, "\r\n"); line && line[2];) {
        line += 2;
        char *end = strstr(line, "\r\n");
        if (end)
            *end = '\0';
        if (strncasecmp(line, "content-length:", 15) == 0) {
            x->body_by_length = true;
            x->body_left = strtoull(line + 15, NULL, 10);
        } else if (strncasecmp(line, "connection:", 11) == 0 && strcasestr(line + 11, "close")) {
            x->keep = false;
        }
        if (!end)
            break;
        *end = '\r';
        line = end;
    }
    if (!x->body_by_length)
        x->keep = false; /* chunked or until close: the status is all we need */
    return status >= 200 && status < 300 ? 0 : -EPROTO;
}

static void on_readable(struct otlp *x)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        char tmp[4096];
        char *dst = x->head_done ? tmp : x->resp + x->resp_len;
        size_t cap = x->head_done ? sizeof(tmp) : sizeof(x->resp) - x->resp_len;
        ssize_t n = recv(x->io.fd, dst, cap, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            failed(x);
            return;
        }
        if (x->head_done) {
            x->body_left -= (uint64_t)n < x->body_left ? (uint64_t)n : x->body_left;
        } else {
            x->resp_len += (size_t)n;
            char *end = memmem(x->resp, x->resp_len, "\r\n\r\n", 4);
            if (!end) {
                if (x->resp_len == sizeof(x->resp))
                    batch_over(x, false); /* a head past our bound */
                return;
            }
            size_t head_len = (size_t)(end - x->resp) + 4, extra = x->resp_len - head_len;
            x->head_done = true;
            if (parse_head(x, head_len) != 0) {
                batch_over(x, false);
                return;
            }
            x->body_left -= extra < x->body_left ? extra : x->body_left;
        }
        if (!x->body_by_length || x->body_left == 0) {
            batch_over(x, true);
            return;
        }
    }
}

static void on_io(struct loop_io *io, uint32_t events)
{
    struct otlp *x = container_of(io, struct otlp, io);
    if (x->state == X_IDLE) { /* the kept connection: closed, or stray bytes */
        conn_close(x);
        return;
    }
    if (x->state == X_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if ((events & (EPOLLERR | EPOLLHUP)) ||
            getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 || err) {
            batch_over(x, false);
            return;
        }
        x->state = X_SENDING;
    }
    if (x->state == X_SENDING) {
        ssize_t n = send(io->fd, x->req + x->req_off, x->req_len - x->req_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            failed(x);
            return;
        }
        x->req_off += (size_t)n;
        if (x->req_off < x->req_len)
            return;
        x->state = X_READING;
        loop_set(x->loop, io, EPOLLIN | EPOLLRDHUP);
        return;
    }
    on_readable(x);
}

static void on_tick(struct ticker *t, uint64_t now)
{
    struct otlp *x = t->ctx;
    if (x->state != X_IDLE && now >= x->deadline_ns) {
        x->reused = false; /* a timeout is not a stale connection */
        batch_over(x, false);
    }
    maybe_flush(x, now);
}

int otlp_new(struct loop *loop, const struct otlp_opts *opts, struct otlp **out)
{
    struct otlp *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->loop = loop;
    x->o = *opts;
    if (!x->o.queue_max)
        x->o.queue_max = OTLP_QUEUE_MAX;
    if (!x->o.batch_max || x->o.batch_max > x->o.queue_max)
        x->o.batch_max = x->o.batch_max ? x->o.queue_max : OTLP_BATCH_MAX;
    if (!x->o.flush_ms)
        x->o.flush_ms = OTLP_FLUSH_MS;
    if (!x->o.timeout_ms)
        x->o.timeout_ms = OTLP_TIMEOUT_MS;
    x->io = (struct loop_io){.fd = -1, .cb = on_io};
    x->flush.fn = on_flush;
    x->last_flush_ns = loop_now_ns();
    x->q = calloc(x->o.queue_max, sizeof(*x->q));
    int err = x->q ? ticker_start(&x->ticker, loop, OTLP_TICK_MS, on_tick, x) : -ENOMEM;
    if (err) {
        free(x->q);
        free(x);
        return err;
    }
    *out = x;
    return 0;
}

void otlp_free(struct otlp *x)
{
    if (!x)
        return;
    ticker_stop(&x->ticker);
    conn_close(x);
    for (size_t i = 0; i < x->count; i++)
        item_free(&x->q[(x->head + i) % x->o.queue_max]);
    free(x->q);
    free(x->req);
    free(x);
}

void otlp_get_stats(const struct otlp *x, struct otlp_stats *out)
{
    *out = x->st;
    out->queued = x->count;
}
