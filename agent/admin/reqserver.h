/* One request, one response, close: the connection handling shared by the
 * control socket (JSON lines over unix) and the HTTP endpoints. Accepts on
 * a listening socket, reads a request up to `max_request` bytes until the
 * protocol says it is complete, asks for the whole response, writes it
 * without blocking the loop, drains what the client still sends for a
 * moment (so an error response is not lost to a reset), closes.
 *
 * Every client is bounded in space and time, because the HTTP endpoints
 * are reachable from every pod: the request must arrive within `read_ms` of
 * the accept (slow headers are dropped), the response must be taken within
 * `write_ms` (a client that never reads does not pin its response), at most
 * `max_clients` at once and `max_per_source` from one peer address. When
 * the table is full a newcomer evicts the oldest client of the source that
 * holds the most, if that source holds more than the newcomer's; otherwise
 * the newcomer is refused. So one source (or a few) holding idle sockets
 * loses its own oldest sockets, and a probe or a scrape from any other
 * source is always admitted. Every refusal is counted by reason. */
#ifndef MESHD_ADMIN_REQSERVER_H
#define MESHD_ADMIN_REQSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct reqserver;

struct reqserver_ops {
    const char *name; /* for logs */
    size_t max_request;
    size_t max_clients;
    /* 0: peers have no address to tell them apart (unix sockets); when
     * full, the oldest client is evicted. */
    size_t max_per_source;
    unsigned read_ms;  /* accept -> complete request */
    unsigned write_ms; /* response ready -> fully sent */
    /* Refuse peers whose address is not loopback (127/8, ::1). */
    bool loopback_only;
    /* Is buf[0..len) a complete request? `eof` when the client stopped
     * sending. Returns the request length to use, or 0 for "need more". */
    size_t (*complete)(const char *buf, size_t len, bool eof);
    /* The response for a complete request, or for an oversized one
     * (req NULL). *out is malloc'd; NULL closes without a response. */
    void (*respond)(void *ctx, const char *req, size_t len, char **out, size_t *outlen);
    void *ctx;
};

/* Why a client was refused or dropped before its response was sent. */
enum reqserver_reject {
    REQSERVER_FULL,          /* table full, nobody to evict: newcomer refused */
    REQSERVER_SOURCE_CAP,    /* newcomer's source already holds max_per_source */
    REQSERVER_EVICTED,       /* dropped to make room for another source */
    REQSERVER_READ_TIMEOUT,  /* request not complete within read_ms */
    REQSERVER_WRITE_TIMEOUT, /* response not taken within write_ms */
    REQSERVER_TOO_LARGE,     /* request over max_request (answered, closed) */
    REQSERVER_NOT_LOOPBACK,  /* loopback_only and a non-loopback peer */
    REQSERVER_REJECT__MAX
};

struct reqserver_stats {
    uint64_t rejected[REQSERVER_REJECT__MAX];
    uint64_t served; /* responses fully written */
    size_t clients;  /* connected now */
};

/* The metric label of a reason: "full", "source_cap", ... */
const char *reqserver_reject_name(enum reqserver_reject r);

/* Takes ownership of listen_fd (non-blocking, listening). `ops` is copied. */
int reqserver_new(struct loop *loop, int listen_fd, const struct reqserver_ops *ops,
                  struct reqserver **out);
/* Closes every client and the listener. Accepts NULL. */
void reqserver_free(struct reqserver *s);

void reqserver_get_stats(const struct reqserver *s, struct reqserver_stats *out);
/* The listening socket (borrowed), e.g. to learn a kernel-chosen port. */
int reqserver_listen_fd(const struct reqserver *s);

#endif
