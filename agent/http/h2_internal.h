/* Private to the HTTP/2 codec (h2.c: the connection and what it
 * receives; h2_send.c: what it sends). */
#ifndef MESHD_HTTP_H2_INTERNAL_H
#define MESHD_HTTP_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "http/h2.h"

/* One received header block, kept whole: fields point into `buf`. */
struct h2_block {
    char *buf;
    size_t len, cap, bytes; /* bytes: the HPACK size (name + value + 32 each) */
    uint32_t off[H2_MAX_FIELDS][2];
    uint32_t pseudo[5]; /* method, path, authority, scheme, status: offset + 1, 0 none */
    struct http_field fields[H2_MAX_FIELDS];
    size_t nfields;
    bool refused; /* past a limit: the stream is reset */
};

struct h2_stream {
    struct h2_conn *c;
    struct h2_stream *prev, *next;
    int32_t id;
    void *user;
    struct h2_block *head, *trailer; /* head: kept until close */
    bool head_done;
    size_t unconsumed; /* received, not yet consumed by the caller */
    /* what we send */
    char *out;
    size_t olen, ooff;
    bool out_eof, has_provider;
    nghttp2_nv *tnv; /* trailers to send after the data, and their bytes */
    size_t ntnv;
    char *tbuf;
};

struct h2_conn {
    nghttp2_session *ng;
    enum h2_role role;
    struct h2_callbacks cb;
    void *ctx;
    struct h2_stream *streams;
    unsigned nstreams;
    bool goaway_seen, failed;
    uint64_t rst_window_start;
    unsigned rst_count;
    struct h2_stats stats;
};

struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id);
void h2_stream_free(struct h2_stream *st);

#endif
