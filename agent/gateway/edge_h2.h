/* HTTP/2 at the edge: a client that agreed on h2 by ALPN is served by an
 * HTTP/2 codec (http/h2.h) here, each of its streams carried as one
 * HTTP/1.1 request into the gateway's HTTP/1 carrier session (through a
 * socketpair per stream, `Connection: close`), whose response comes back
 * as the stream's. Why not the carrier's own HTTP/2 session: it answers an
 * h2 client over h2 upstream (Envoy's useClientProtocol), while Istio's
 * gateway speaks HTTP/1.1 to a backend whose port does not declare http2
 * or grpc (docs: "Protocol Selection", gateways) — the seed's my-service,
 * and most apps, speak HTTP/1.1 only. So the router, the edge headers,
 * the telemetry and the access log are the HTTP/1 carrier's, unchanged.
 *
 * Bounds: the codec's (100 concurrent streams, 60 KiB heads, windows,
 * the rapid-reset guard); a stream's request bytes wait in a buffer no
 * larger than its window (the client's DATA is consumed only once written
 * to the carrier), its response is read only while less than 64 KiB of it
 * waits to be framed; the connection's output stops being produced past
 * 256 KiB. A connection without streams is closed (GOAWAY) after an hour.
 * Not carried: CONNECT, request trailers (dropped), gRPC (which needs an
 * HTTP/2 upstream). */
#ifndef MESHD_GATEWAY_EDGE_H2_H
#define MESHD_GATEWAY_EDGE_H2_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct edge_h2;

/* A stream's HTTP/1.1 connection: serve `fd` (taken over) as the client
 * connection `user`'s. 0 or -errno (fd closed). */
typedef int (*edge_h2_open_fn)(void *ctx, void *user, int fd);

struct edge_h2_stats {
    uint64_t connections, active, streams, stream_errors;
};

struct edge_h2s {
    struct loop *loop; /* borrowed */
    edge_h2_open_fn open;
    void (*user_free)(void *user);
    void *ctx;
    /* private */
    struct edge_h2 *head;
    struct edge_h2_stats stats;
};

/* Serves `fd` (plaintext HTTP/2 from its preface: the TLS pump's carrier
 * end; taken over) for `user` (released when the connection ends). 0 or
 * -errno (fd closed, `user` released). */
int edge_h2_start(struct edge_h2s *set, int fd, void *user);
/* Stream-less connections idle for an hour get GOAWAY. */
void edge_h2s_tick(struct edge_h2s *set, uint64_t now_ns);
/* Resets every connection. */
void edge_h2s_close_all(struct edge_h2s *set);

#endif
