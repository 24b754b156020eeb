/* HTTP at the destination: which connections to an enrolled pod are
 * served request by request, and the router that serves them.
 *
 * A port is served per request when the configuration names it HTTP (a
 * Service port `http`, `http-*`, appProtocol http selecting the pod at that
 * targetPort), or when an AuthorizationPolicy selecting the pod has a field
 * only a request has (methods, paths, hosts, request.headers): then even an
 * unnamed port is, so such a policy is never decided at L4 (where Istio's
 * rule would let a DENY on paths refuse the whole connection, or an ALLOW
 * on methods admit nothing). Each request is authorized on its normalized
 * path (policy/admit: policy_admit_request); a denied one is answered 403
 * "RBAC: access denied" and never reaches the app; the app receives the
 * normalized path, as Istio forwards it. Each request is reported with
 * reporter=destination. The connection itself is admitted by
 * PeerAuthentication (and the pod's binding) only. */
#ifndef MESHD_HTTP_INBOUND_H
#define MESHD_HTTP_INBOUND_H

#include <stdbool.h>

#include "meshd/capture.h"

struct admit_gate;
struct cfg_store;
struct conn;
struct conn_record;
struct http_decision;
struct http_proxy;
struct http_request_record;
struct pod;

struct http_inbound_opts {
    struct http_proxy *http; /* borrowed */
    struct admit_gate *gate; /* borrowed: the served configuration and the pods */
    void (*report)(void *ctx, struct http_request_record *r, const struct conn_record *conn,
                   const struct http_decision *d);
    void *report_ctx;
};

struct http_inbound;

int http_inbound_new(const struct http_inbound_opts *opts, struct http_inbound **out);
void http_inbound_free(struct http_inbound *hin); /* accepts NULL */
/* The HTTP carrier, once it exists (NULL: it is gone; nothing is served
 * per request). The destination side is created before the mesh, whose
 * HBONE server calls it, and the carrier after, on the mesh's pool. */
void http_inbound_set_proxy(struct http_inbound *hin, struct http_proxy *hp);

/* Whether connections to `pod` at `dst` are served per request: an HTTP
 * policy, a port named for HTTP, or one of unnamed protocol the source
 * agent `said_http` it carries HTTP on (x-meshd-protocol). */
bool http_inbound_wants(void *hin, const struct pod *pod, const struct meshd_addr *dst,
                        bool said_http);
/* The admission of a connection http_inbound_wants serves per request
 * (inbound_opts.authorize_http, hbone_inbound_opts' via the mesh; `gate`
 * is the struct admit_gate): on a port declared HTTP (named or
 * appProtocol http, http2, grpc) admit_gate_authorize_http_connection,
 * the requests decide the policy; on any other (unnamed, or served per
 * request for an HTTP policy) admit_gate_authorize_sniffed_connection:
 * the connection is refused as on L4 when its L4 part of the policy
 * denies it, whatever the source agent said. 0 or -EACCES. */
int http_inbound_authorize_connection(void *gate, const struct pod *pod, const char *peer_id,
                                      const struct meshd_addr *src, const struct meshd_addr *dst);
/* Serves requests from `down_fd` to the app's connection `app_fd` (both
 * taken over) for the connection whose record is `rec` (copied: requests
 * are labelled by it). With `c`, the session ends that record (plaintext:
 * down_fd is then the connection's own socket, taken from it); without,
 * the caller's carrier (an HBONE stream) does. 0 or -errno (fds closed). */
int http_inbound_serve(void *hin, const struct pod *pod, struct conn *c,
                       const struct conn_record *rec, int down_fd, int app_fd);

/* The same for an HBONE stream (hbone_inbound's serve_http): the
 * session is the stream's end and answers it (200). The stream's carrier
 * keeps the record. 0 or -errno (app_fd closed, the stream unanswered). */
struct hbone_stream;
int http_inbound_serve_stream(void *hin, const struct pod *pod, const struct conn_record *rec,
                              struct hbone_stream *st, int app_fd);

#endif
