/* Private to the HTTP carrier: HTTP/2 sessions (h2_session.c: one
 * downstream h2c connection; h2_exchange.c: one stream's exchange) and
 * upstream HTTP/2 connections (h2_upstream.c: multiplexed, shared per
 * endpoint).
 *
 * A downstream connection carries up to H2_MAX_STREAMS streams; each is
 * one exchange with the same router and the same request policy as an
 * HTTP/1 request (http/request.h: the view, the decision, retries,
 * timeouts, faults, header edits, local replies, the record), its attempt
 * a stream of an upstream HTTP/2 connection (Envoy's useClientProtocol:
 * an h2 client is answered over h2 upstream). Upstream connections are
 * shared by every session of the proxy that reaches the same endpoint the
 * same way from the same pod; a connection that got GOAWAY takes no new
 * stream (a new connection does). Flow control is end to end: what one
 * side received is consumed (its window reopened) only once the other
 * side framed it, so a slow reader holds at most a window per stream. */
#ifndef MESHD_HTTP_H2_SESSION_H
#define MESHD_HTTP_H2_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "http/h2.h"
#include "http/internal.h"
#include "http/request.h"
#include "proxy/records.h"

struct h2s;

/* One upstream HTTP/2 connection (plain TCP from the pod's netns, or our
 * end of a socket pair an HBONE stream carries), or at the destination the
 * app's connection, owned by its one session. */
struct h2up {
    struct http_proxy *hp;
    struct h2up *prev, *next; /* hp->h2ups: shared ones */
    struct loop_io io;
    struct loop_task flush;
    struct h2_conn *h2;
    struct hbuf out;
    struct outbound_route key;
    uint32_t pod_id;
    bool connected, hbone, broken, got_bytes, owned, closed;
    bool denied;  /* its HBONE tunnel was refused by the peer's policy (401) */
    bool retired; /* maxRequestsPerConnection reached: no new stream */
    uint64_t requests, idle_since_ns;
    struct loop_deferred release;
};

enum h2x_state { H2X_ROUTE, H2X_DELAY, H2X_FORWARD, H2X_DONE };

/* One stream of a downstream connection: one exchange. */
struct h2x {
    struct h2s *s;
    struct h2x *prev, *next;
    struct h2_stream *down; /* NULL once it closed */
    struct h1_head head;    /* the request, shaped as http_request_* read it (major 2) */
    struct http_field *fields;
    struct http_request req;
    enum h2x_state state;
    struct h2up *up;
    struct h2_stream *ups; /* the attempt's stream */
    bool down_ended, trailers_sent;
    struct h2h1 *h1; /* the attempt over HTTP/1.1 instead (h2_h1up.c), or NULL */
};

struct h2s {
    struct http_proxy *hp;
    struct h2s *prev, *next; /* hp->h2sessions */
    struct conn *c;          /* NULL at the destination over HBONE */
    struct loop_io io;
    struct loop_task flush;
    struct meshd_addr orig_dst;
    struct http_router router;
    void *user;
    struct h2_conn *h2;
    struct hbuf out;
    struct h2x *xs;
    bool inbound, ended, goaway;
    struct h2up *app; /* inbound: the app's connection */
    char who[RECORD_POD_LEN];
    uint64_t last_activity_ns, down_in, down_out;
    struct loop_deferred release;
};

/* h2_session.c */
/* Takes over a downstream connection whose client spoke the HTTP/2
 * preface: `fd` (`c`'s socket when `c`), the bytes already read, the
 * router (released by the session from now on), at the destination the
 * app's socket. On failure everything is closed and released. */
int h2s_start(struct http_proxy *hp, struct conn *c, int fd, const struct meshd_addr *orig_dst,
              const struct http_router *router, void *user, int app_fd, const char *who,
              const char *pre, size_t npre);
void h2s_kick(struct h2s *s);
void h2s_end(struct h2s *s, int err, enum resp_flag flag);
void h2s_tick_all(struct http_proxy *hp, uint64_t now_ns);
void h2s_free_all(struct http_proxy *hp);
void h2s_drain_all(struct http_proxy *hp);

/* h2_exchange.c */
extern const struct h2_callbacks h2s_callbacks; /* the downstream codec's */
void h2x_free(struct h2x *x, int err);
void h2x_tick(struct h2x *x, uint64_t now_ns);
/* What an upstream stream reports (x: the stream's user). */
void h2x_up_head(struct h2x *x, const struct h2_head *h);
void h2x_up_data(struct h2x *x, const uint8_t *p, size_t n);
void h2x_up_end(struct h2x *x);
void h2x_up_closed(struct h2x *x, uint32_t error, bool connect_failed);
/* The same, `denied`: its HBONE tunnel was refused by the peer's policy. */
void h2x_up_closed_by(struct h2x *x, uint32_t error, bool connect_failed, bool denied);
void h2x_up_sent(struct h2x *x, size_t n);

/* h2_upstream.c */
/* A shared connection for route `r` from `pod` with room for a stream, or
 * a new one. 0 or -errno. */
int h2up_acquire(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                 struct h2up **out);
/* The app's connection at the destination (taken over). */
int h2up_adopt(struct http_proxy *hp, int fd, struct h2up **out);
int h2up_request(struct h2up *u, const struct h2_head *h, struct h2x *x, struct h2_stream **out);
void h2up_kick(struct h2up *u);
/* An owned connection's session is over. */
void h2up_close(struct h2up *u);
void h2ups_expire(struct http_proxy *hp, uint64_t now_ns);
void h2ups_free(struct http_proxy *hp);
/* The HBONE pool says the tunnel of `stream_ctx` (compared, never
 * followed) was refused by the peer's policy. */
void h2ups_note_denied(struct http_proxy *hp, const void *stream_ctx);

/* h2_h1up.c: an attempt over HTTP/1.1 (the decision's upstream_http1),
 * one connection per attempt at a time (kept alive for the next),
 * reporting through h2x_up_* as a stream of
 * an upstream HTTP/2 connection does; it clears x->h1 before telling the
 * exchange its end. */
struct h2h1;
/* Opens a connection along `r` from `pod` with the attempt's head and the
 * body kept so far. 0 or -errno (nothing opened). */
int h2h1_open(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
              struct h2x *x, struct h2h1 **out);
/* The client's DATA (`eof`: its end). -EPIPE when the attempt is over. */
int h2h1_send(struct h2h1 *a, const void *p, size_t n, bool eof);
/* The client took some of the response: more may be read. */
void h2h1_resume(struct h2h1 *a);
/* The exchange lets go: closed (reset unless the response was whole). */
void h2h1_abandon(struct h2h1 *a);
/* The HBONE pool says the tunnel of `stream_ctx` (compared, never
 * followed) was refused by the peer's policy (401): answered 403. */
void h2h1_note_denied(struct http_proxy *hp, const void *stream_ctx);
/* Idle connections past their time close (UINT64_MAX: all of them). */
void h2h1s_expire(struct http_proxy *hp, uint64_t now_ns);
/* Every connection closes (the proxy is freed). */
void h2h1s_free(struct http_proxy *hp);

#endif
