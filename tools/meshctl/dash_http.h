/* The small HTTP/1.1 server under meshctl dashboard: one thread, poll(2),
 * one request per connection (Connection: close), a periodic tick for the
 * scrapes. Hostile clients are bounded: DASH_HTTP_MAX_CLIENTS at once
 * (the oldest closed for a newcomer), the head DASH_HTTP_MAX_HEAD bytes,
 * a body (POST only) DASH_HTTP_MAX_BODY with a Content-Length (chunked
 * refused: 411), DASH_HTTP_READ_MS to send it all, DASH_HTTP_WRITE_MS to
 * read the answer. The Host header must name the listening address or
 * loopback, so a page from elsewhere cannot reach it through DNS
 * rebinding (any Host when listening on a wildcard address). */
#ifndef MESHCTL_DASH_HTTP_H
#define MESHCTL_DASH_HTTP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define DASH_HTTP_MAX_CLIENTS 32
#define DASH_HTTP_MAX_HEAD    (16 * 1024)
#define DASH_HTTP_MAX_BODY    (4 * 1024 * 1024)
#define DASH_HTTP_READ_MS     5000
#define DASH_HTTP_WRITE_MS    5000

struct dash_req {
    const char *method, *path, *query; /* query "" when none */
    const char *content_type;          /* "" when none */
    const char *body;                  /* NULL unless POST */
    size_t body_len;
};

struct dash_resp {
    int status;               /* 200 unless set */
    const char *content_type; /* static */
    char *body;               /* owned (freed after sending) unless body_static */
    const char *body_static;  /* a C string, or len bytes when len is set */
    size_t len;
};

typedef void (*dash_handler)(void *ctx, const struct dash_req *req, struct dash_resp *resp);

/* A listening socket on address:port (port 0: any; the chosen one in
 * *port). 0 or -errno with the reason in err. */
int dash_http_listen(const char *address, int *port, int *fd, char *err, size_t errlen);

/* Serves until *stop is set (a signal handler sets it), calling tick(ctx)
 * every tick_ms. `address` is what dash_http_listen got (Host checks).
 * Returns 0, or -errno when poll fails otherwise than by a signal. */
int dash_http_serve(int fd, const char *address, dash_handler h, void (*tick)(void *ctx),
                    int tick_ms, void *ctx, volatile sig_atomic_t *stop);

/* Sets a JSON body (takes the reference) or a 500. */
void dash_resp_json(struct dash_resp *r, json_t *doc);

/* The value of `key` in a query string, URL-decoded into out; false when
 * absent or too long. */
bool dash_query(const char *query, const char *key, char *out, size_t outlen);

#endif
