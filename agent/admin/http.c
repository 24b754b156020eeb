/* Minimal HTTP/1.1 server for meshd's endpoints (see http.h). */
#include "admin/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "admin/reqserver.h"
#include "core/log.h"

struct http_server {
    struct reqserver *server;
    const struct http_route *routes; /* borrowed */
    size_t nroutes;
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

/* A request head ends with an empty line; bodies are not accepted. */
static size_t http_complete(const char *buf, size_t len, bool eof)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        end = strstr(buf, "\n\n");
    return end ? len : 0;
}

static void http_serialize(int status, const struct http_response *resp, bool head_only, char **out,
                           size_t *outlen)
{
    char hdr[256];
    const char *ctype = resp && resp->content_type ? resp->content_type : "text/plain";
    size_t blen = resp && !resp->oom ? resp->len : 0;
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, blen);
    *out = malloc((size_t)n + blen);
    if (!*out)
        return;
    memcpy(*out, hdr, (size_t)n);
    if (!head_only && blen)
        memcpy(*out + n, resp->body, blen);
    *outlen = (size_t)n + (head_only ? 0 : blen);
}

static void http_respond(void *ctx, const char *req, size_t len, char **out, size_t *outlen)
{
    struct http_server *s = ctx;
    char method[8], path[512], query[512];
    int err = req ? http_parse_request(req, len, method, sizeof(method), path, sizeof(path), query,
                                       sizeof(query))
                  : 431;
    if (err) {
        http_serialize(err, NULL, false, out, outlen);
        return;
    }
    struct http_response resp = {.status = 200};
    const struct http_route *route = NULL;
    for (size_t i = 0; i < s->nroutes && !route; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            route = &s->routes[i];
    if (!route) {
        resp.status = 404;
        http_printf(&resp, "no such endpoint: %s\n", path);
    } else {
        route->fn(route->ctx, method, path, query, &resp);
    }
    http_serialize(resp.oom ? 503 : resp.status, &resp, strcmp(method, "HEAD") == 0, out, outlen);
    free(resp.body);
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
    s->routes = routes;
    s->nroutes = nroutes;
    int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto err_errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1)
        goto err_errno;
    struct reqserver_ops ops = {.name = "http",
                                .max_request = HTTP_MAX_HEAD,
                                .max_clients = HTTP_MAX_CLIENTS,
                                .complete = http_complete,
                                .respond = http_respond,
                                .ctx = s};
    if ((err = reqserver_new(loop, fd, &ops, &s->server)) != 0) {
        free(s);
        return err;
    }
    *out = s;
    return 0;
err_errno:
    err = -errno;
    if (fd != -1)
        close(fd);
    free(s);
    return err;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    reqserver_free(s->server);
    free(s);
}
