/* Inbound proxy: the pod's 15006 listeners that the per-pod sk_lookup
 * program steers plaintext TCP to. The accepted socket's local address is
 * the original destination. PeerAuthentication decides: STRICT refuses
 * plaintext, PERMISSIVE/DISABLE forward it to the app from 127.0.0.6 (for
 * IPv6 the pod's own address), sources the sk_lookup program lets through. */
#ifndef MESHD_PROXY_INBOUND_H
#define MESHD_PROXY_INBOUND_H

#include <stdbool.h>
#include <stdint.h>

struct conns;
struct loop;
struct pod;
struct inbound;

enum mtls_mode { MTLS_PERMISSIVE, MTLS_STRICT, MTLS_DISABLE };

/* The PeerAuthentication mode for a pod's port (config decides). */
typedef enum mtls_mode (*inbound_mtls_fn)(void *ctx, const struct pod *pod, uint16_t port);
struct meshd_addr;
struct conn;
struct conn_record;
/* Destination policy for a connection: 0 allows, -EACCES denies. peer_id
 * is the client's SPIFFE id, NULL for plaintext. */
typedef int (*inbound_authorize_fn)(void *ctx, const struct pod *pod, const char *peer_id,
                                    const struct meshd_addr *src, const struct meshd_addr *dst);

struct inbound_opts {
    uint16_t port;       /* 15006 */
    const char *pin_dir; /* where the per-pod sk_lookup links are pinned */
    inbound_mtls_fn mtls_mode;
    inbound_authorize_fn authorize; /* NULL: everything allowed */
    void *mtls_ctx;                 /* for both, and authorize_http */
    /* HTTP at the destination (http/inbound.h; NULL: bytes): a
     * connection `wants_http` says is served per request is admitted by
     * `authorize_http` (the connection's part of the policy), and its app
     * connection and record handed to `serve_http`. */
    bool (*wants_http)(void *http_ctx, const struct pod *pod, const struct meshd_addr *dst,
                       bool said_http);
    inbound_authorize_fn authorize_http;
    int (*serve_http)(void *http_ctx, const struct pod *pod, struct conn *c,
                      const struct conn_record *rec, int down_fd, int app_fd);
    void *http_ctx;
    /* The ingress gateway (gateway/gateway.h; NULL: none): offered each
     * connection to a pod address, before any mesh policy; true when it
     * took the socket. */
    bool (*gateway_accept)(void *gateway_ctx, struct pod *pod, int fd,
                           const struct meshd_addr *client, const struct meshd_addr *local);
    void *gateway_ctx;
};

/* `loop` and `conns` are borrowed; opts->pin_dir is copied. */
int inbound_new(struct loop *loop, struct conns *conns, const struct inbound_opts *opts,
                struct inbound **out);
void inbound_free(struct inbound *ib);

int inbound_attach_pod(void *ib, struct pod *pod);
void inbound_detach_pod(void *ib, struct pod *pod);
/* Closes the pod's 15006 listeners (drain): sk_lookup then drops new
 * connections; open ones go on. */
void inbound_quiesce_pod(void *ib, struct pod *pod);

const char *mtls_mode_name(enum mtls_mode m);

#endif
