/* A minimal HTTP/1.1 server on the event loop for meshd's own endpoints:
 * 15000 admin (/config_dump, /logging), 15020 metrics (/metrics,
 * /stats/prometheus), 15021 readiness (/healthz/ready).
 *
 * GET, HEAD and POST without a body only, one request per connection
 * (Connection: close), request head bounded to HTTP_MAX_HEAD bytes;
 * anything else is answered 400/405/413/414/431 and closed. Handlers build
 * the whole response in memory. Clients are bounded in number, per source
 * and in time by admin/reqserver (the defaults below).
 *
 * 15020 and 15021 listen on every address of the node, so every pod can
 * reach them. Whatever changes state (a route with HTTP_ROUTE_POST) may only
 * be served by a local-only server: bound to a loopback address and to the
 * `lo` device, refusing peers that are not loopback. http_server_new
 * refuses any other combination, so a state-changing route cannot be put
 * on a pod-reachable port by mistake. */
#ifndef MESHD_ADMIN_HTTP_H
#define MESHD_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/textbuf.h"
#include "meshd/capture.h"

#define HTTP_MAX_HEAD       8192
#define HTTP_MAX_CLIENTS    64
#define HTTP_MAX_PER_SOURCE 8
/* Headers within 5 s of the connect (kubelet probes time out at 1 s,
 * Prometheus scrapes at 10 s: both send at once); the response taken
 * within 10 s. */
#define HTTP_READ_MS  5000
#define HTTP_WRITE_MS 10000

/* A response being built: status, content type and a growable body (a
 * body that ran out of memory is answered 503). */
struct http_response {
    int status;
    const char *content_type;
    struct textbuf body;
};

/* Appends printf-style text to the body (textbuf_printf). */
void http_printf(struct http_response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* path is the request path without the query; query may be "". */
typedef void (*http_handler)(void *ctx, const char *method, const char *path, const char *query,
                             struct http_response *resp);

/* The route accepts POST, which changes state: local-only servers only. */
#define HTTP_ROUTE_POST 0x1u

struct http_route {
    const char *path;
    http_handler fn;
    void *ctx;
    unsigned flags; /* HTTP_ROUTE_* */
};

struct http_server_opts {
    const char *name;              /* the endpoint label in metrics, logs */
    const struct meshd_addr *addr; /* in the agent's own netns */
    bool local_only;               /* loopback address, `lo` device, loopback peers */
    /* 0: the HTTP_* defaults above. */
    size_t max_clients, max_per_source;
    unsigned read_ms, write_ms;
};

struct http_server;
struct reqserver_stats;

/* Listens as `opts` says; `routes` must outlive the server. -EINVAL for a
 * POST route on a server that is not local-only, or a local-only server on
 * an address that is not loopback. */
int http_server_new(struct loop *loop, const struct http_server_opts *opts,
                    const struct http_route *routes, size_t nroutes, struct http_server **out);
void http_server_free(struct http_server *s);
/* The port it listens on (useful when opts->addr had port 0). */
uint16_t http_server_port(const struct http_server *s);
void http_server_get_stats(const struct http_server *s, struct reqserver_stats *out);

/* Appends `<prefix>_rejected_total{endpoint,reason}` and
 * `<prefix>_clients{endpoint}` for n endpoints (names[i], stats[i]). */
void http_render_client_stats(struct http_response *r, const char *prefix, const char *const *names,
                              const struct reqserver_stats *stats, size_t n);

/* Parses a request head; 0 and method/path/query filled, or an HTTP error
 * status (400, 405, 413 for a body, 414, 431). Exposed for the unit tests
 * and fuzzing. */
int http_parse_request(const char *head, size_t len, char *method, size_t mlen, char *path,
                       size_t plen, char *query, size_t qlen);

#endif
