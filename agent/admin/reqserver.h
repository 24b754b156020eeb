/* One request, one response, close: the connection handling shared by the
 * control socket (JSON lines over unix) and the HTTP endpoints. Accepts on
 * a listening socket, reads a request up to `max_request` bytes until the
 * protocol says it is complete, asks for the whole response, writes it
 * without blocking the loop, closes. At most `max_clients` at once. */
#ifndef MESHD_ADMIN_REQSERVER_H
#define MESHD_ADMIN_REQSERVER_H

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct reqserver;

struct reqserver_ops {
    const char *name; /* for logs */
    size_t max_request;
    size_t max_clients;
    /* Is buf[0..len) a complete request? `eof` when the client stopped
     * sending. Returns the request length to use, or 0 for "need more". */
    size_t (*complete)(const char *buf, size_t len, bool eof);
    /* The response for a complete request, or for an oversized one
     * (req NULL). *out is malloc'd; NULL closes without a response. */
    void (*respond)(void *ctx, const char *req, size_t len, char **out, size_t *outlen);
    void *ctx;
};

/* Takes ownership of listen_fd (non-blocking, listening). `ops` is copied. */
int reqserver_new(struct loop *loop, int listen_fd, const struct reqserver_ops *ops,
                  struct reqserver **out);
/* Closes every client and the listener. Accepts NULL. */
void reqserver_free(struct reqserver *s);

#endif
