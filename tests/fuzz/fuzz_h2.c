/* libFuzzer driver: the HTTP/2 codec (agent/http/h2.c), the request path
 * the HTTP/2 sessions read. The input's first byte chooses the role and
 * where the rest is cut: as a server, the client preface is prepended and
 * the rest is a client's frames (each request head is answered with a
 * head, a body and trailers, as the sessions do); as a client, a request
 * is submitted first and the rest is a server's frames. It checks the
 * codec's promises: a request head has its method and path, fields are
 * NUL-terminated at their lengths and never more than H2_MAX_FIELDS, a
 * head's bytes within H2_MAX_HEAD_BYTES, no callback for a stream after
 * its close, and nothing after a refusal but GOAWAY. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2.h"

struct fz {
    struct h2_conn *c;
    bool server;
    unsigned open;
};

static void must(bool ok)
{
    if (!ok)
        abort();
}

static int on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct fz *f = ctx;
    must(h->nfields <= H2_MAX_FIELDS);
    size_t bytes = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        const struct http_field *x = &h->fields[i];
        must(strlen(x->name) == x->name_len && strlen(x->value) == x->value_len);
        bytes += x->name_len + x->value_len + 32;
    }
    must(bytes <= H2_MAX_HEAD_BYTES);
    if (!f->server || h->trailers)
        return 0;
    must(h->method && h->path); /* nghttp2 refuses a request without them */
    if (!h2_stream_user(st)) {
        h2_stream_set_user(st, f);
        f->open++;
    }
    struct http_field rf[] = {http_field_of("content-type", "application/grpc")};
    struct h2_head rh = {.status = 200, .fields = rf, .nfields = 1};
    if (h2_submit_response(f->c, st, &rh) == 0 && h2_send_data(f->c, st, "ok", 2, false) == 0) {
        struct http_field tf[] = {http_field_of("grpc-status", "0")};
        h2_send_trailers(f->c, st, tf, 1);
    }
    return 0;
}

static int on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct fz *f = ctx;
    (void)p;
    h2_consume(f->c, st, n);
    return 0;
}

static void on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct fz *f = ctx;
    (void)error;
    if (h2_stream_user(st)) {
        must(f->open > 0);
        f->open--;
        h2_stream_set_user(st, NULL);
    }
}

static const struct h2_callbacks cbs = {
    .on_head = on_head, .on_data = on_data, .on_close = on_close};

static void drain(struct fz *f)
{
    const uint8_t *p;
    for (int i = 0; i < 64 && h2_conn_pull(f->c, &p) > 0; i++)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fz f = {.server = !(data[0] & 1)};
    if (h2_conn_new(f.server ? H2_SERVER : H2_CLIENT, &cbs, &f, &f.c) != 0)
        return 0;
    if (f.server) {
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        h2_conn_recv(f.c, (const uint8_t *)preface, sizeof(preface) - 1);
    } else {
        struct h2_head h = {.method = "POST", .path = "/x", .authority = "svc", .scheme = "http"};
        struct h2_stream *st;
        if (h2_submit_request(f.c, &h, NULL, &st) == 0)
            h2_send_data(f.c, st, "body", 4, true);
    }
    drain(&f);
    size_t rest = size - 1, cut = rest ? (size_t)(data[0] >> 1) % (rest + 1) : 0;
    int rc = h2_conn_recv(f.c, data + 1, cut);
    drain(&f);
    if (rc == 0)
        rc = h2_conn_recv(f.c, data + 1 + cut, rest - cut);
    drain(&f);
    if (rc != 0) /* refused: it stays refused */
        must(h2_conn_recv(f.c, data, 1) != 0);
    h2_conn_free(f.c);
    return 0;
}
