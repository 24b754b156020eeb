/* meshctl dashboard's HTTP server (see dash_http.h). */
#include "dash_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct client {
    int fd;
    char *buf;
    size_t len, cap;
    uint64_t deadline_ms, accepted_ms;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int dash_http_listen(const char *address, int *port, int *fd, char *err, size_t errlen)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET, in4->sin_port = htons((uint16_t)*port), sl = sizeof(*in4);
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6, in6->sin6_port = htons((uint16_t)*port), sl = sizeof(*in6);
    } else {
        snprintf(err, errlen, "--address %s is not an IP address", address);
        return -EINVAL;
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (s == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&ss, sl) == -1 || listen(s, 64) == -1) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s port %d: %s", address, *port, strerror(e));
        close(s);
        return -e;
    }
    getsockname(s, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    *fd = s;
    return 0;
}

void dash_resp_json(struct dash_resp *r, json_t *doc)
{
    r->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    r->content_type = "application/json";
    if (r->body) {
        r->len = strlen(r->body);
    } else {
        r->status = 500;
        r->body_static = "{\"error\":\"out of memory\"}";
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool dash_query(const char *query, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, kl) != 0 || p[kl] != '=')
            continue;
        size_t n = 0;
        for (const char *c = p + kl + 1; *c && *c != '&'; c++) {
            char ch = *c == '+' ? ' ' : *c;
            if (*c == '%' && hexval(c[1]) >= 0 && hexval(c[2]) >= 0) {
                ch = (char)(hexval(c[1]) * 16 + hexval(c[2]));
                c += 2;
            }
            if (n + 1 >= outlen || ch == '\0')
                return false;
            out[n++] = ch;
        }
        out[n] = '\0';
        return true;
    }
    return false;
}

/* A header's value (trimmed) into out, or "" when absent; the count of
 * its occurrences is returned (two Content-Lengths are refused). */
static int header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    int found = 0;
    out[0] = '\0';
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) != 0 || h[nl] != ':')
            continue;
        const char *v = h + nl + 1, *e = strstr(v, "\r\n");
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = (size_t)(e - v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n >= outlen)
            n = outlen - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        found++;
    }
    return found;
}

/* Is `host` (a Host header) the listening address or loopback? */
static bool host_allowed(const char *host, const char *address)
{
    if (strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0)
        return true;
    char h[256];
    snprintf(h, sizeof(h), "%s", host);
    char *colon = h[0] == '[' ? strstr(h, "]:") : strrchr(h, ':');
    if (colon && h[0] == '[')
        colon[1] = '\0';
    else if (colon)
        *colon = '\0';
    if (h[0] == '[') { /* [v6] */
        memmove(h, h + 1, strlen(h));
        if (*h)
            h[strlen(h) - 1] = '\0';
    }
    return strcmp(h, "127.0.0.1") == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
           strcmp(h, address) == 0;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the send timeout, or the client went away */
        p += w, n -= (size_t)w;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

static void respond(int fd, struct dash_resp *r)
{
    const char *body = r->body ? r->body : r->body_static ? r->body_static : "";
    /* A static body is a C string unless its length is given (assets). */
    size_t len = r->body || r->len ? r->len : strlen(body);
    /* The answer is written blocking, bounded by SO_SNDTIMEO. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     r->status, reason(r->status),
                     r->content_type ? r->content_type : "text/plain; charset=utf-8", len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
    free(r->body);
}

static void error_reply(int fd, int status, const char *text)
{
    struct dash_resp r = {.status = status, .body_static = text};
    respond(fd, &r);
}

/* 1: the request is answered (close it), 0: more bytes are needed. */
static int try_handle(struct client *c, const char *address, dash_handler h, void *ctx)
{
    char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    if (!end) {
        if (c->len >= DASH_HTTP_MAX_HEAD)
            return error_reply(c->fd, 431, "request head too large\n"), 1;
        return 0;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char saved = c->buf[head_len - 2];
    c->buf[head_len - 2] = '\0'; /* the head as a string, its last CRLF kept */
    char method[8], target[2048], ctype[128], clen[32], te[32], host[256];
    int nf = sscanf(c->buf, "%7s %2047s HTTP/1.%*1[01]", method, target);
    if (nf != 2 || target[0] != '/' || !strstr(c->buf, " HTTP/1."))
        return error_reply(c->fd, 400, "bad request line\n"), 1;
    header(c->buf, "Content-Type", ctype, sizeof(ctype));
    header(c->buf, "Host", host, sizeof(host));
    int ncl = header(c->buf, "Content-Length", clen, sizeof(clen));
    int nte = header(c->buf, "Transfer-Encoding", te, sizeof(te));
    c->buf[head_len - 2] = saved;
    if (!host_allowed(host, address))
        return error_reply(c->fd, 403, "Host is not this dashboard's address\n"), 1;
    bool post = strcmp(method, "POST") == 0;
    if (!post && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return error_reply(c->fd, 405, "GET or POST\n"), 1;
    size_t body_len = 0;
    if (nte)
        return error_reply(c->fd, 411, "send a Content-Length, not chunks\n"), 1;
    if (ncl > 1 || (ncl && strspn(clen, "0123456789") != strlen(clen)) || strlen(clen) > 9)
        return error_reply(c->fd, 400, "bad Content-Length\n"), 1;
    body_len = ncl ? strtoul(clen, NULL, 10) : 0;
    if (body_len && !post)
        return error_reply(c->fd, 400, "a body on a GET\n"), 1;
    if (body_len > DASH_HTTP_MAX_BODY)
        return error_reply(c->fd, 413, "body too large\n"), 1;
    if (c->len < head_len + body_len) { /* the buffer grows to hold the body */
        if (c->cap < head_len + body_len + 1) {
            char *nb = realloc(c->buf, head_len + body_len + 1);
            if (!nb)
                return error_reply(c->fd, 503, "out of memory\n"), 1;
            c->buf = nb, c->cap = head_len + body_len + 1;
        }
        return 0;
    }
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    struct dash_req req = {.method = method,
                           .path = target,
                           .query = q ? q : "",
                           .content_type = ctype,
                           .body = post ? c->buf + head_len : NULL,
                           .body_len = body_len};
    struct dash_resp resp = {.status = 200};
    h(ctx, &req, &resp);
    if (strcmp(method, "HEAD") == 0) {
        free(resp.body);
        resp.body = NULL, resp.body_static = "";
    }
    respond(c->fd, &resp);
    return 1;
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void accept_one(int lfd, struct client *cl)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd == -1)
        return;
    struct client *slot = NULL, *oldest = NULL;
    for (int i = 0; i < DASH_HTTP_MAX_CLIENTS && !slot; i++) {
        if (cl[i].fd == -1)
            slot = &cl[i];
        else if (!oldest || cl[i].accepted_ms < oldest->accepted_ms)
            oldest = &cl[i];
    }
    if (!slot) { /* full: the oldest makes room */
        client_close(oldest);
        slot = oldest;
    }
    struct timeval tv = {.tv_sec = DASH_HTTP_WRITE_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    slot->fd = fd;
    slot->accepted_ms = now_ms();
    slot->deadline_ms = slot->accepted_ms + DASH_HTTP_READ_MS;
}

static void client_read(struct client *c, const char *address, dash_handler h, void *ctx)
{
    if (c->cap - c->len < 4096 && c->cap < DASH_HTTP_MAX_HEAD + 1) {
        char *nb = realloc(c->buf, DASH_HTTP_MAX_HEAD + 1);
        if (!nb)
            return client_close(c);
        c->buf = nb, c->cap = DASH_HTTP_MAX_HEAD + 1;
    }
    size_t room = c->cap - c->len - 1;
    ssize_t n = room ? recv(c->fd, c->buf + c->len, room, 0) : 0;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 && room)
        return client_close(c);
    c->len += (size_t)(n > 0 ? n : 0);
    if (try_handle(c, address, h, ctx))
        client_close(c);
}

int dash_http_serve(int fd, const char *address, dash_handler h, void (*tick)(void *ctx),
                    int tick_ms, void *ctx, volatile sig_atomic_t *stop)
{
    struct client cl[DASH_HTTP_MAX_CLIENTS];
    for (int i = 0; i < DASH_HTTP_MAX_CLIENTS; i++)
        cl[i] = (struct client){.fd = -1};
    uint64_t next_tick = 0;
    int rc = 0;
    while (!*stop) {
        uint64_t now = now_ms();
        if (tick && now >= next_tick) {
            tick(ctx);
            next_tick = now_ms() + (uint64_t)tick_ms;
        }
        struct pollfd p[DASH_HTTP_MAX_CLIENTS + 1] = {{.fd = fd, .events = POLLIN}};
        for (int i = 0; i < DASH_HTTP_MAX_CLIENTS; i++) {
            p[i + 1] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN};
            if (cl[i].fd != -1 && now >= cl[i].deadline_ms) {
                error_reply(cl[i].fd, 408, "too slow\n");
                client_close(&cl[i]);
                p[i + 1].fd = -1;
            }
        }
        int wait = tick ? (int)(next_tick > now ? next_tick - now : 0) : 1000;
        int n = poll(p, DASH_HTTP_MAX_CLIENTS + 1, wait > 1000 ? 1000 : wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        for (int i = 0; i < DASH_HTTP_MAX_CLIENTS; i++)
            if (cl[i].fd != -1 && p[i + 1].revents)
                client_read(&cl[i], address, h, ctx);
        if (p[0].revents & POLLIN)
            accept_one(fd, cl);
    }
    for (int i = 0; i < DASH_HTTP_MAX_CLIENTS; i++)
        if (cl[i].fd != -1)
            client_close(&cl[i]);
    return rc;
}
