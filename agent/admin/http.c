/* Minimal HTTP/1.1 server for meshd's endpoints (see http.h): request
 * parsing, routing and the local-only rule here; connection bounds in
 * admin/reqserver. */
#include "admin/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "admin/reqserver.h"
#include "core/log.h"

struct http_server {
    struct reqserver *server;
    const struct http_route *routes; /* borrowed */
    size_t nroutes;
    bool local_only;
};

void http_printf(struct http_response *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    textbuf_vprintf(&r->body, fmt, ap);
    va_end(ap);
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
    case 403:
        return "Forbidden";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
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

/* Does a header announce a body (Transfer-Encoding, or a Content-Length
 * other than 0)? No endpoint takes one; it is refused rather than left
 * unread. */
static bool http_head_has_body(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);
        if (n >= 18 && strncasecmp(p, "transfer-encoding:", 18) == 0)
            return true;
        if (n >= 15 && strncasecmp(p, "content-length:", 15) == 0) {
            for (size_t i = 15; i < n; i++)
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '0')
                    return true;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return false;
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
    return http_head_has_body(eol + 1, (size_t)(head + len - eol - 1)) ? 413 : 0;
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
    size_t blen = resp && !resp->body.oom ? resp->body.len : 0;
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, blen);
    *out = malloc((size_t)n + blen);
    if (!*out)
        return;
    memcpy(*out, hdr, (size_t)n);
    if (!head_only && blen)
        memcpy(*out + n, resp->body.data, blen);
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
    } else if (strcmp(method, "POST") == 0 && !(route->flags & HTTP_ROUTE_POST)) {
        resp.status = 405;
        http_printf(&resp, "%s does not take POST\n", path);
    } else if (strcmp(method, "POST") == 0 && !s->local_only) {
        /* Unreachable by construction (http_server_new); kept so that a
         * state change can never be served to a pod. */
        resp.status = 403;
        http_printf(&resp, "state changes only on the loopback admin port\n");
    } else {
        route->fn(route->ctx, method, path, query, &resp);
    }
    http_serialize(resp.body.oom ? 503 : resp.status, &resp, strcmp(method, "HEAD") == 0, out,
                   outlen);
    textbuf_free(&resp.body);
}

static bool addr_is_loopback(const struct meshd_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (a->family == MESHD_AF_INET)
        return a->addr[0] == 127;
    return memcmp(a->addr, v6_loopback, 16) == 0;
}

int http_server_new(struct loop *loop, const struct http_server_opts *opts,
                    const struct http_route *routes, size_t nroutes, struct http_server **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (opts->local_only && !addr_is_loopback(opts->addr))
        return -EINVAL;
    for (size_t i = 0; i < nroutes; i++)
        if ((routes[i].flags & HTTP_ROUTE_POST) && !opts->local_only)
            return -EINVAL;
    int err = addr_to_sockaddr(opts->addr, &ss, &len);
    if (err)
        return err;
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->routes = routes;
    s->nroutes = nroutes;
    s->local_only = opts->local_only;
    int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto err_errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Bound to `lo` as well as to 127.0.0.1: where route_localnet=1 (as
     * kube-proxy sets it), a pod can route a SYN for 127.0.0.1 to the node
     * over its veth; a socket bound to `lo` never sees it. */
    if (opts->local_only && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) == -1)
        goto err_errno;
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1)
        goto err_errno;
    struct reqserver_ops ops = {
        .name = opts->name ? opts->name : "http",
        .max_request = HTTP_MAX_HEAD,
        .max_clients = opts->max_clients ? opts->max_clients : HTTP_MAX_CLIENTS,
        .max_per_source = opts->max_per_source ? opts->max_per_source : HTTP_MAX_PER_SOURCE,
        .read_ms = opts->read_ms ? opts->read_ms : HTTP_READ_MS,
        .write_ms = opts->write_ms ? opts->write_ms : HTTP_WRITE_MS,
        .loopback_only = opts->local_only,
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

uint16_t http_server_port(const struct http_server *s)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len = sizeof(u);
    memset(&u, 0, sizeof(u));
    if (getsockname(reqserver_listen_fd(s->server), &u.sa, &len) == -1)
        return 0;
    return ntohs(u.sa.sa_family == AF_INET ? u.in.sin_port : u.in6.sin6_port);
}

void http_server_get_stats(const struct http_server *s, struct reqserver_stats *out)
{
    reqserver_get_stats(s->server, out);
}

void http_render_client_stats(struct http_response *r, const char *prefix, const char *const *names,
                              const struct reqserver_stats *stats, size_t n)
{
    http_printf(r,
                "# HELP %s_rejected_total Clients refused or dropped before their response, "
                "by endpoint and reason.\n# TYPE %s_rejected_total counter\n",
                prefix, prefix);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < REQSERVER_REJECT__MAX; k++)
            http_printf(r, "%s_rejected_total{endpoint=\"%s\",reason=\"%s\"} %llu\n", prefix,
                        names[i], reqserver_reject_name((enum reqserver_reject)k),
                        (unsigned long long)stats[i].rejected[k]);
    http_printf(r, "# HELP %s_clients Clients connected now.\n# TYPE %s_clients gauge\n", prefix,
                prefix);
    for (size_t i = 0; i < n; i++)
        http_printf(r, "%s_clients{endpoint=\"%s\"} %zu\n", prefix, names[i], stats[i].clients);
}
