/* Private to the HTTP carrier: one session's state, shared by its
 * downstream side and lifetime (proxy.c) and its exchanges (exchange.c:
 * attempts, retries, local replies, mirrors, the response). */
#ifndef MESHD_HTTP_SESSION_H
#define MESHD_HTTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "http/internal.h"
#include "http/request.h"
#include "proxy/records.h"

#define HS_MAX_REQUESTS_PER_CONN 100000
/* nginx's lingering close: a connection closed with unread input is reset
 * (TCP sends RST, a unix socket passes ECONNRESET on), which can destroy
 * the response in flight; so after the last response our side is shut and
 * the client's remaining bytes are read and dropped, for a bounded time. */
#define HS_LINGER_NS    (2ull * 1000000000)
#define HS_LINGER_BYTES (1u << 20)

enum hs_state {
    HS_READ_HEAD, /* between requests, or reading one's head */
    HS_DELAY,     /* a fault delay before the request is routed */
    HS_FORWARD,   /* the request is with an upstream */
    HS_LOCAL,     /* a local reply is being written */
    HS_CLOSING,   /* flushing what is left, then close */
    HS_LINGER,    /* sent all, our side shut: what the client still sends is dropped */
};

struct hs {
    struct http_proxy *hp;
    struct hs *prev, *next;
    struct conn *c;
    struct loop_io io;
    struct meshd_addr orig_dst;
    struct http_router router;
    void *user;
    struct h1_parser *parser;
    char in[HTTP_IN_BUF];
    size_t in_off, in_len; /* unparsed downstream bytes */
    struct hbuf out;       /* to the downstream */
    enum hs_state state;
    bool down_eof, keep_alive, read_paused, ended;
    uint64_t last_activity_ns, head_started_ns, served, linger_until_ns, lingered;
    uint64_t progress_ns;       /* a byte last moved, for the stream idle timeout */
    uint64_t down_in, down_out; /* the connection's bytes, for its record */
    /* recorded by parser callbacks, acted on by the drivers */
    bool ev_req_head, ev_req_complete, ev_resp_head, ev_resp_complete;
    struct http_request req; /* the request in flight (http/request.h) */
    struct hup *up;
    /* The destination side: the one upstream, the app, connected before
     * the session began and kept between requests; no record of ours. */
    bool inbound;
    struct hup *parked;
    /* Over HBONE: the stream whose end this session is (downstream.c),
     * io.fd -1; `down_kept`: bytes it holds for us until resumed. */
    struct hbone_stream *down_st;
    bool down_kept;
    char who[RECORD_POD_LEN]; /* for logs: the pod served */
    const struct h1_head *resp_head;
    struct loop_task update; /* hs_update_events(): settled at the batch's end */
    struct loop_deferred release;
};

/* proxy.c */
/* The downstream's output and interest, settled once at the end of the
 * loop batch: what several events produced (a response's head, then its
 * body) leaves in one write, as h2o flushes its output. */
void hs_update_events(struct hs *s);
int hs_write(struct hs *s, const void *p, size_t n);
void hs_end(struct hs *s, int err, enum resp_flag flag);
/* Parses what the downstream sent, as far as the state allows. */
void hs_drive_down(struct hs *s);
/* Whether the session takes downstream bytes now. */
bool hs_wants_read(const struct hs *s);
/* The downstream ended its side. */
void hs_down_eof(struct hs *s);
/* First bytes that are the HTTP/2 preface: the connection is handed to
 * an HTTP/2 session (true; this one is over). */
bool hs_take_h2(struct hs *s);

/* downstream.c: the downstream as a socket or an HBONE stream's pipe */
/* Sends what is queued for the downstream (a byte that left is progress
 * for the stream idle timeout): 0, or -errno (a socket's). */
int hs_down_flush(struct hs *s);
/* Makes `st` (a server stream) this session's downstream: 200, then its
 * bytes through the session. 0 or -errno. */
int hs_down_accept(struct hs *s, struct hbone_stream *st);
/* After a flush: a finished CLOSING ends, held bytes are resumed. */
void hs_down_settle(struct hs *s);
/* The stream's end: in order (err 0) or reset. */
void hs_down_close(struct hs *s, int err);

/* exchange.c */
void hs_report(struct hs *s);
/* Lets the attempt's endpoint go: its load released, its outcome told. */
void hs_free_attempt(struct hs *s, bool failed);
void hs_drop_upstream(struct hs *s, bool reusable);
/* Everything is sent: shut our side, drop what the client still sends. */
void hs_linger(struct hs *s);
void hs_linger_read(struct hs *s);
/* The response is complete (or a local reply was written). */
void hs_exchange_done(struct hs *s);
void hs_local_reply(struct hs *s, int status, const char *body, size_t body_len,
                    const char *location, enum resp_flag flag);
/* An attempt failed before its response went downstream. */
void hs_attempt_failed(struct hs *s, enum http_failure why, int status);
/* One attempt: route, then send to an upstream of that endpoint. */
void hs_try(struct hs *s);
/* The decided attempt goes to its upstream (after a fault delay). */
void hs_forward(struct hs *s, const struct pod *pod);
/* The route's mirrors get a copy once the request is whole. */
void hs_mirror(struct hs *s);

#endif
