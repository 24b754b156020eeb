/* A minimal HTTP/1.1 server on the event loop for meshd's own endpoints:
 * 15000 admin (/config_dump, /logging), 15020 metrics (/metrics,
 * /stats/prometheus), 15021 readiness (/healthz/ready).
 *
 * GET and POST without a body only, one request per connection (Connection:
 * close), request head bounded to HTTP_MAX_HEAD bytes, at most
 * HTTP_MAX_CLIENTS at once; anything else is answered 400/405/414/431 and
 * closed. Handlers build the whole response in memory. */
#ifndef MESHD_ADMIN_HTTP_H
#define MESHD_ADMIN_HTTP_H

#include <stddef.h>

#include "core/loop.h"
#include "meshd/capture.h"

#define HTTP_MAX_HEAD    8192
#define HTTP_MAX_CLIENTS 64

/* A response being built: status, content type and a growable body. */
struct http_response {
    int status;
    const char *content_type;
    char *body;
    size_t len, cap;
    int oom;
};

/* Appends printf-style text to the body (sets oom on failure). */
void http_printf(struct http_response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* path is the request path without the query; query may be "". */
typedef void (*http_handler)(void *ctx, const char *method, const char *path, const char *query,
                             struct http_response *resp);

struct http_route {
    const char *path;
    http_handler fn;
    void *ctx;
};

struct http_server;

/* Listens on `addr` in the agent's own netns; `routes` must outlive it. */
int http_server_new(struct loop *loop, const struct meshd_addr *addr,
                    const struct http_route *routes, size_t nroutes, struct http_server **out);
void http_server_free(struct http_server *s);

/* Parses a request head; 0 and method/path/query filled, or an HTTP error
 * status (400, 405, 414, 431). Exposed for the unit tests and fuzzing. */
int http_parse_request(const char *head, size_t len, char *method, size_t mlen, char *path,
                       size_t plen, char *query, size_t qlen);

#endif
