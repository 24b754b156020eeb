/* Minimal HTTP/1.1 server for meshd's endpoints (see http.h). */
#include "admin/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/log.h"

struct http_client {
    struct loop_io io;
    struct http_server *srv;
    char head[HTTP_MAX_HEAD];
    size_t head_len;
    char *out;
    size_t out_len, out_off;
    struct http_client *next;
    struct loop_deferred release;
};

struct http_server {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    const struct http_route *routes;
    size_t nroutes, nclients;
    struct http_client *clients;
};

void http_printf(struct http_response *r, const char *fmt, ...)
{
    if (r->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        char *dst = r->body ? r->body + r->len : NULL;
        size_t room = r->body ? r->cap - r->len : 0;
        /* clang 14's analyzer misreads va_start here (as in core/log.c). */
        int n = vsnprintf(dst, room, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
        va_end(ap);
        if (n < 0) {
            r->oom = 1;
            return;
        }
        if (r->body && r->len + (size_t)n < r->cap) {
            r->len += (size_t)n;
            return;
        }
        size_t cap = r->cap ? r->cap : 4096;
        while (cap <= r->len + (size_t)n)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            r->oom = 1;
            return;
        }
        r->body = nb;
        r->cap = cap;
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

int http_parse_request(const char *head, size_t len, char *method, size_t mlen, char *path,
                       size_t plen, char *query, size_t qlen)
{
    const char *eol = memchr(head, '\n', len);
    if (!eol)
        return len >= HTTP_MAX_HEAD ? 431 : 400;
    const char *sp1 = memchr(head, ' ', (size_t)(eol - head));
    if (!sp1)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || (size_t)(eol - sp2) < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return 400;
    size_t ml = (size_t)(sp1 - head);
    if (ml == 0 || ml >= mlen)
        return 405;
    memcpy(method, head, ml);
    method[ml] = '\0';
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "HEAD") != 0)
        return 405;
    if (*target != '/')
        return 400;
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    const char *pend = q ? q : sp2;
    if ((size_t)(pend - target) >= plen || (q && (size_t)(sp2 - q - 1) >= qlen))
        return 414;
    memcpy(path, target, (size_t)(pend - target));
    path[pend - target] = '\0';
    size_t ql = q ? (size_t)(sp2 - q - 1) : 0;
    if (ql)
        memcpy(query, q + 1, ql);
    query[ql] = '\0';
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            return 400;
    return 0;
}

static void client_release(struct loop_deferred *d)
{
    struct http_client *c =
        (struct http_client *)((char *)d - offsetof(struct http_client, release));
    free(c->out);
    free(c);
}

static void client_close(struct http_client *c)
{
    struct http_server *s = c->srv;
    loop_del(s->loop, &c->io);
    close(c->io.fd);
    for (struct http_client **pp = &s->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->nclients--;
    c->release.fn = client_release;
    loop_defer(s->loop, &c->release);
}

static void client_respond(struct http_client *c, int status, struct http_response *resp,
                           int head_only)
{
    char hdr[256];
    const char *ctype = resp && resp->content_type ? resp->content_type : "text/plain";
    size_t blen = resp && !resp->oom ? resp->len : 0;
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, blen);
    c->out = malloc((size_t)n + blen);
    if (!c->out) {
        client_close(c);
        return;
    }
    memcpy(c->out, hdr, (size_t)n);
    if (!head_only && blen)
        memcpy(c->out + n, resp->body, blen);
    c->out_len = (size_t)n + (head_only ? 0 : blen);
    loop_set(c->srv->loop, &c->io, EPOLLOUT);
}

static void client_dispatch(struct http_client *c)
{
    char method[8], path[512], query[512];
    int err = http_parse_request(c->head, c->head_len, method, sizeof(method), path, sizeof(path),
                                 query, sizeof(query));
    if (err) {
        client_respond(c, err, NULL, 0);
        return;
    }
    struct http_response resp = {.status = 200};
    const struct http_route *route = NULL;
    for (size_t i = 0; i < c->srv->nroutes && !route; i++)
        if (strcmp(c->srv->routes[i].path, path) == 0)
            route = &c->srv->routes[i];
    if (!route) {
        resp.status = 404;
        http_printf(&resp, "no such endpoint: %s\n", path);
    } else {
        route->fn(route->ctx, method, path, query, &resp);
    }
    client_respond(c, resp.oom ? 503 : resp.status, &resp, strcmp(method, "HEAD") == 0);
    free(resp.body);
}

static void client_on_io(struct loop_io *io, uint32_t events)
{
    struct http_client *c = (struct http_client *)io;
    if (c->out) {
        while (c->out_off < c->out_len) {
            ssize_t n = send(io->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (n > 0)
                c->out_off += (size_t)n;
            else if (n == -1 && errno == EAGAIN)
                return;
            else
                break;
        }
        client_close(c);
        return;
    }
    while (c->head_len < sizeof(c->head) - 1) {
        ssize_t n = read(io->fd, c->head + c->head_len, sizeof(c->head) - 1 - c->head_len);
        if (n > 0) {
            c->head_len += (size_t)n;
            c->head[c->head_len] = '\0';
            if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
                client_dispatch(c);
                return;
            }
        } else if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            return;
        } else {
            client_close(c); /* EOF before a complete head, or an error */
            return;
        }
    }
    client_respond(c, 431, NULL, 0);
}

static void server_on_accept(struct loop_io *io, uint32_t events)
{
    struct http_server *s = (struct http_server *)io;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1)
            return;
        struct http_client *c = s->nclients < HTTP_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
            log_ratelimited(LOG_WARN, "http: too many clients; connection dropped");
            close(fd);
            continue;
        }
        c->io.fd = fd;
        c->io.cb = client_on_io;
        c->srv = s;
        if (loop_add(s->loop, &c->io, EPOLLIN) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = s->clients;
        s->clients = c;
        s->nclients++;
    }
}

int http_server_new(struct loop *loop, const struct meshd_addr *addr,
                    const struct http_route *routes, size_t nroutes, struct http_server **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int err = addr_to_sockaddr(addr, &ss, &len);
    if (err)
        return err;
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->routes = routes;
    s->nroutes = nroutes;
    int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto err_errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1)
        goto err_errno;
    s->io.fd = fd;
    s->io.cb = server_on_accept;
    if ((err = loop_add(loop, &s->io, EPOLLIN)) != 0)
        goto err_close;
    *out = s;
    return 0;
err_errno:
    err = -errno;
err_close:
    if (fd != -1)
        close(fd);
    free(s);
    return err;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    while (s->clients)
        client_close(s->clients);
    loop_del(s->loop, &s->io);
    close(s->io.fd);
    free(s);
}
