/* HTTP/1.x message framing for the HTTP carrier, over llhttp (the parser
 * Node uses; Debian's node-llhttp ships its C sources): no hand-written
 * HTTP/1 parser on the data path.
 *
 * A parser reads one direction of one connection (requests from a client,
 * or responses from a server). It gathers each message head into its own
 * bounded buffer, so the head a callback sees is whole however the bytes
 * arrived, and reports the body as decoded bytes (chunk framing removed)
 * pointing into the caller's input. The framing it reports is the one a
 * proxy may trust: whatever could make two parsers disagree about where a
 * message ends is refused, not guessed (request smuggling: conflicting or
 * repeated Content-Length, Transfer-Encoding with Content-Length or not
 * ending in chunked, obs-fold, bare CR or LF, control bytes, oversize
 * heads, too many headers), with the status to answer (400, 431) and a
 * reason for the log.
 *
 * The writer side formats heads and chunk framing from a head the caller
 * built: hop-by-hop headers are never copied from the parsed message, the
 * framing headers are written from `body` alone, so what meshd sends is
 * unambiguous whatever it received. */
#ifndef MESHD_HTTP_H1_H
#define MESHD_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/message.h"

/* Envoy's defaults: max_request_headers_kb 60, max_headers_count 100. */
#define H1_MAX_HEAD_BYTES_DEFAULT (60u * 1024)
#define H1_MAX_HEADERS_DEFAULT    100u

struct h1_limits {
    uint32_t max_head_bytes; /* request or status line plus headers; 0: default */
    uint32_t max_headers;    /* 0: default */
};

/* Header fields (http/message.h) are NUL-terminated in the parser's head
 * buffer, valid until the next message's head begins (after on_complete
 * returns). Names keep the case they were sent in. */

enum h1_body {
    H1_BODY_NONE,    /* no body (or a response to HEAD, 1xx, 204, 304) */
    H1_BODY_LENGTH,  /* Content-Length: content_length bytes */
    H1_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    H1_BODY_CLOSE,   /* response only: until the server closes */
};

struct h1_head {
    bool request;
    const char *method; /* request: "GET" */
    const char *target; /* request: as sent ("/p?q", "*", "host:port" for CONNECT, or
                           absolute-form "http://h/p", which forward proxies send: then
                           the target's authority, not Host, names the origin
                           (RFC 9112 3.2.2), the caller routes or rewrites on it) */
    int status;         /* response */
    const char *reason; /* response; "" when none */
    uint8_t major, minor;
    const struct http_field *headers; /* in order, as sent, framing ones included */
    size_t nheaders;
    enum h1_body body;
    uint64_t content_length; /* H1_BODY_LENGTH */
    bool keep_alive;         /* the connection persists after this message */
    bool upgrade;            /* request: Upgrade with Connection: upgrade, or CONNECT;
                                response: 101, or a 2xx answering CONNECT (see h1_parse) */
    bool expect_continue;    /* request: Expect: 100-continue (HTTP/1.1 only) */
};

/* The first value of header `name` (case-insensitive), or NULL. */
const char *h1_head_get(const struct h1_head *h, const char *name);
/* Whether a Connection header of `h` lists the token `name` (case-
 * insensitive): such headers are hop-by-hop too (RFC 9110 7.6.1) and a
 * proxy drops them with the ones h1_header_is_hop names. */
bool h1_head_connection_lists(const struct h1_head *h, const char *name, size_t len);

/* Return values of callbacks and of h1_parse. */
#define H1_OK     0
#define H1_PAUSED 1 /* a callback returned H1_PAUSED: parsing stopped after it */

struct h1_callbacks {
    /* A whole head. H1_OK goes on, H1_PAUSED stops parsing right after
     * the head (h1_parse returns H1_PAUSED with *consumed at the head's
     * end), anything else is an error the caller reports itself. */
    int (*on_head)(void *ctx, const struct h1_head *head);
    /* Decoded body bytes (in the caller's input). Same returns. */
    int (*on_body)(void *ctx, const char *data, size_t len);
    /* The message ended (trailers are read and dropped). Same returns;
     * after it the parser waits for the next message. */
    int (*on_complete)(void *ctx);
};

struct h1_parser;

/* request: parse requests (else responses). `cb` is copied; `ctx` and the
 * limits are the caller's. -ENOMEM. */
int h1_parser_new(bool request, const struct h1_limits *lim, const struct h1_callbacks *cb,
                  void *ctx, struct h1_parser **out);
void h1_parser_free(struct h1_parser *p); /* accepts NULL */

/* Response parsers: the next response answers a HEAD request (no body
 * whatever its headers say). Call before its bytes are parsed. */
void h1_parser_next_is_head_response(struct h1_parser *p, bool head);
/* Response parsers: the next response answers a CONNECT request: a 2xx
 * has no body and is an upgrade (head->upgrade; the tunnel's bytes
 * follow, see h1_parse), other statuses are ordinary responses. 1xx
 * responses before the answer keep both marks; either may be set from
 * the previous response's on_complete. */
void h1_parser_next_is_connect_response(struct h1_parser *p, bool connect);

/* Feeds `len` bytes. Returns H1_OK (all consumed), H1_PAUSED (a callback
 * paused; *consumed bytes were used, resume with h1_parser_resume() and
 * feed the rest again), or -EBADMSG: the input is refused, see
 * h1_parser_error(); the parser is then dead and no callback runs again
 * (nothing of a refused message was delivered when it was refused in its
 * head; refused in its body, e.g. bad chunk framing, the body bytes before
 * were delivered: abort what was forwarded, never complete it). A
 * callback's other return values come back as -ECANCELED. Not to be
 * called from the parser's own callbacks.
 *
 * Upgrades: once a message with head->upgrade (CONNECT, an Upgrade
 * request, a 101 response) is complete (on_complete ran), h1_parse
 * returns H1_PAUSED with *consumed at the message's end, and keeps
 * returning H1_PAUSED, consuming nothing: the bytes after it are the
 * other protocol's, the caller takes them raw. If the peer refused the
 * upgrade (the answer to an Upgrade or CONNECT request was not 101/2xx),
 * h1_parser_resume() makes the parser go on with HTTP. After a message
 * with keep_alive false, llhttp ignores whatever follows (consumed).
 *
 * After h1_parser_resume(), call h1_parse with the rest even when it is
 * empty (len 0): what needs no more bytes (the end of a bodiless message
 * whose head paused) happens then. */
int h1_parse(struct h1_parser *p, const char *data, size_t len, size_t *consumed);
void h1_parser_resume(struct h1_parser *p);
/* The peer closed its side: completes an H1_BODY_CLOSE message (its
 * on_complete runs). -EBADMSG when a message was cut short, H1_OK
 * otherwise (also between messages). */
int h1_parse_eof(struct h1_parser *p);
/* Why the input was refused (NULL when it was not), and the status a
 * server answers (400, or 431 for a head past the limits; a proxy reading
 * responses answers its client 502 whatever this says). */
const char *h1_parser_error(const struct h1_parser *p, int *status);
/* Between messages (nothing of the next one read yet). */
bool h1_parser_idle(const struct h1_parser *p);
/* The parser is in a message's body (its head was delivered). */
bool h1_parser_in_body(const struct h1_parser *p);

/* --- writing ----------------------------------------------------------- */

/* A head to send. `headers` must not hold framing or hop-by-hop headers
 * (Content-Length, Transfer-Encoding, Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade): h1_format_head skips any it
 * finds and writes the framing from `body`/`content_length`, `Connection:
 * close` when !keep_alive, and `Connection: upgrade` + `Upgrade:
 * <upgrade_proto>` when upgrade_proto is set. */
struct h1_out_head {
    const char *method, *target; /* request; NULL for a response */
    int status;
    const char *reason; /* response; NULL: the standard phrase */
    const struct http_field *headers;
    size_t nheaders;
    enum h1_body body;
    uint64_t content_length;
    bool keep_alive;
    const char *upgrade_proto;
};

/* Formats `h` as HTTP/1.1 into buf. Returns the length the head needs
 * (excluding the NUL); it was written whole only when < cap. Returns 0
 * (nothing written) for a head that would inject a line: a method or
 * header name not a token, CR/LF/NUL/control bytes in a target, reason
 * or value, an empty target, a status outside 100..999, a request with
 * H1_BODY_CLOSE. */
size_t h1_format_head(const struct h1_out_head *h, char *buf, size_t cap);
/* Chunk framing: "<hex len>\r\n" before len bytes (len > 0), "\r\n"
 * after them; the last chunk "0\r\n\r\n". Return the length written
 * (buf holds at least H1_CHUNK_HEAD_MAX bytes). */
#define H1_CHUNK_HEAD_MAX 24
size_t h1_format_chunk_head(size_t len, char *buf);
extern const char h1_chunk_tail[]; /* "\r\n" */
extern const char h1_last_chunk[]; /* "0\r\n\r\n" */
/* The standard reason phrase of a status ("OK", "Not Found"), or "". */
const char *h1_reason(int status);
/* Whether a header is hop-by-hop or framing (never forwarded as is). */
bool h1_header_is_hop(const char *name, size_t len);

#endif
