/* Shared by the HTTP carrier's files (proxy.c: sessions, upstream.c:
 * upstream connections and their keep-alive pool, local.c: local
 * replies). Not for other modules. */
#ifndef MESHD_HTTP_INTERNAL_H
#define MESHD_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/ticker.h"
#include "http/h1.h"
#include "http/proxy.h"

#define HTTP_IN_BUF   (16u * 1024) /* one read */
#define HTTP_OUT_HIGH (64u * 1024) /* stop producing into a buffer past this */

/* A byte queue: appended at the tail, consumed from `off`. Bounded by its
 * users (they stop reading while it is past HTTP_OUT_HIGH). */
struct hbuf {
    char *data;
    size_t len, off, cap;
};

int hbuf_append(struct hbuf *b, const void *p, size_t n);
size_t hbuf_pending(const struct hbuf *b);
void hbuf_consume(struct hbuf *b, size_t n);
void hbuf_free(struct hbuf *b);
/* Writes what it can to fd: 0 (all or EAGAIN), -errno. */
int hbuf_flush(struct hbuf *b, int fd);
/* Queues what it can into an HBONE stream's pipe end (hbone/session.h):
 * the rest waits for its on_writable; a stream that is over takes
 * nothing and tells its owner through on_end. */
void hbuf_send_stream(struct hbuf *b, struct hbone_stream *st);

struct hs;
struct h2s;
struct h2up;

/* One upstream HTTP/1.1 connection: a plain TCP socket from the pod's
 * netns, or the in-process end of an HBONE stream (`st`; a socket pair
 * with the stream at its other end for an Upgrade, whose bytes are
 * relayed raw after a 101). Owned by the session using it, or idle in the
 * proxy's pool. */
struct hup {
    struct http_proxy *hp;
    struct loop_io io;       /* fd -1 over a stream's pipe */
    struct hbone_stream *st; /* HBONE without a socket: until the stream ends */
    struct hbuf out;
    struct h1_parser *resp;
    struct hs *owner;          /* NULL while idle */
    struct outbound_route key; /* action, target, pool key: what it reaches */
    uint32_t pod_id;           /* from whose netns: reused for that pod only */
    bool connected, hbone, broken, eof;
    bool in_idle;     /* on the proxy's idle list */
    bool got_bytes;   /* some response byte arrived on this attempt */
    bool leftover;    /* bytes past the point parsed: not reusable if the response ends */
    bool read_paused; /* the owner's downstream is full: responses wait */
    bool denied;      /* its HBONE tunnel was refused by the peer's policy (401) */
    /* Carrying a mirrored request (fire and forget): owned by no session,
     * its response read and dropped, then it goes idle like any other. */
    bool mirror, mirror_done;
    uint64_t started_ns;
    struct hup *all_next, *all_prev; /* every live upstream: stream ends find theirs */
    uint64_t requests;               /* served on this connection */
    uint64_t idle_since_ns;
    struct hup *idle_next, *idle_prev;
    struct loop_deferred release;
};

struct http_proxy {
    struct loop *loop; /* borrowed */
    struct http_proxy_opts opts;
    struct ticker ticker;
    struct hs *sessions;           /* every live session, for deadlines */
    struct http_sniffer *sniffers; /* connections waiting for their first bytes */
    struct hup *idle;              /* idle upstreams, most recent first */
    struct hup *all;               /* every upstream not yet closed */
    size_t nidle;
    struct http_proxy_stats stats;
    struct h2s *h2sessions; /* HTTP/2 downstream connections (h2_session.h) */
    struct h2up *h2ups;     /* shared HTTP/2 upstream connections */
    struct h2h1 *h2h1s;     /* HTTP/1.1 attempts of HTTP/2 streams (h2_h1up.c) */
};

/* sniff.c */
struct http_sniffer;
void sniffers_tick(struct http_proxy *hp, uint64_t now_ns);
void sniffers_free(struct http_proxy *hp);

/* upstream.c */
/* An upstream for route `r` from `pod`'s netns: an idle one reaching the
 * same endpoint the same way, or a new connection. 0 or -errno. */
struct pod;
int hup_acquire(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                struct hs *owner, struct hup **out);
/* The same, as a socket whatever the carrier (its fd can be relayed raw
 * after an Upgrade). */
int hup_acquire_fd(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                   struct hs *owner, struct hup **out);
/* An upstream already connected (the app, on the destination side):
 * taken over, owned by no one until a session uses it. */
int hup_adopt(struct http_proxy *hp, int fd, struct hup **out);
/* An upstream for a mirrored copy of a request: no session owns it; the
 * response is read and dropped (bounded in time), then it is released. */
int hup_mirror(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
               struct hup **out);
/* Whether two routes reach the same endpoint the same way (action,
 * target, and over HBONE the tunnel's identities and address). */
bool hup_same_target(const struct outbound_route *a, const struct outbound_route *b);
/* A socket towards route `r` from `pod`'s netns: a plain TCP connect in
 * progress, or (*hbone) our end of a socket pair whose other end an HBONE
 * stream of the pool carries (`stream_ctx`: told to the stream's end). */
int hup_open(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
             void *stream_ctx, int *fd, bool *hbone);
/* A connect in progress finished (EPOLLOUT): 0 and *connected, or -errno. */
int hup_connect_done(int fd, bool hbone, bool *connected);
/* Queues bytes for the upstream (sent once connected). */
int hup_send(struct hup *u, const void *p, size_t n);
/* Done with it: kept for the next request when `reusable`, else closed. */
void hup_release(struct hup *u, bool reusable);
/* Stops reading responses while the downstream cannot take more. */
void hup_pause_read(struct hup *u, bool paused);
void hups_expire(struct http_proxy *hp, uint64_t now_ns);
void hups_free(struct http_proxy *hp);

/* proxy.c: the downstream socket is closed (reset when `err`) and `c`'s
 * record, if any, ended with the connection's bytes. */
void http_close_downstream(int fd, struct conn *c, int err, uint64_t in, uint64_t out,
                           enum resp_flag flag);
/* exchange.c: the connection's record notes the request's upstream. */
struct conn;
void http_note_upstream(struct conn *c, const struct meshd_addr *orig_dst,
                        const struct outbound_route *r);

/* proxy.c, called by upstream.c for the owner of `u` */
/* The upstream failed (connect, reset, EOF before a whole response). */
void hs_upstream_failed(struct hs *s, struct hup *u, int err);
/* The response parser's callbacks (ctx: the session). */
extern const struct h1_callbacks hs_response_callbacks;
/* Bytes were parsed; whatever the callbacks recorded is acted on. */
void hs_upstream_progress(struct hs *s, struct hup *u);

#endif
