/* Inbound plaintext proxy: 15006 listeners + per-pod sk_lookup (inbound.h). */
#include "proxy/inbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture/inbound_lookup.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/podroute.h"
#include "enroll/pods.h"
#include "proxy/conns.h"
#include "proxy/listener.h"

struct inbound {
    struct loop *loop;   /* borrowed */
    struct conns *conns; /* borrowed */
    struct inbound_opts opts;
    char pin_dir[256];
};

struct inbound_pod {
    struct listener l[2];
    struct inbound_lookup *lookup;
    struct inbound *ib;
    struct pod *pod; /* borrowed */
};

const char *mtls_mode_name(enum mtls_mode m)
{
    switch (m) {
    case MTLS_STRICT:
        return "STRICT";
    case MTLS_DISABLE:
        return "DISABLE";
    case MTLS_PERMISSIVE:
        break;
    }
    return "PERMISSIVE";
}

int inbound_new(struct loop *loop, struct conns *conns, const struct inbound_opts *opts,
                struct inbound **out)
{
    struct inbound *ib = calloc(1, sizeof(*ib));
    if (!ib)
        return -ENOMEM;
    ib->loop = loop;
    ib->conns = conns;
    ib->opts = *opts;
    snprintf(ib->pin_dir, sizeof(ib->pin_dir), "%s", opts->pin_dir);
    ib->opts.pin_dir = ib->pin_dir;
    *out = ib;
    return 0;
}

void inbound_free(struct inbound *ib)
{
    free(ib);
}

/* The app accepted a connection served per request: the HTTP carrier
 * takes both sockets and the record. */
static void on_app_connected(void *ctx, struct conn *c, int fd_or_err)
{
    struct inbound *ib = ctx;
    if (fd_or_err < 0) {
        conn_end(c, fd_or_err, 0, 0, RESP_FLAG_UF);
        return;
    }
    ib->opts.serve_http(ib->opts.http_ctx, NULL, c, conn_record(c), -1, fd_or_err);
}

/* A connection to one of a gateway pod's gateway ports is the gateway's
 * (the same self-call guards first: meshd never serves itself). */
static bool gateway_takes(struct inbound *ib, struct pod *pod, int fd, const struct meshd_addr *src)
{
    struct sockaddr_storage ls;
    socklen_t len = sizeof(ls);
    struct meshd_addr local;
    if (!ib->opts.gateway_accept || getsockname(fd, (struct sockaddr *)&ls, &len) == -1 ||
        addr_from_sockaddr((struct sockaddr *)&ls, len, &local) != 0)
        return false;
    if (!listener_is_pod_addr(pod, &local) || listener_peer_may_be_meshd(src, &local) ||
        meshd_port_in_pod(ntohs(local.port)))
        return false;
    return ib->opts.gateway_accept(ib->opts.gateway_ctx, pod, fd, src, &local);
}

static void inbound_on_accept(struct listener *l, int fd, const struct sockaddr *peer,
                              socklen_t peerlen)
{
    struct inbound_pod *ip = l->ctx;
    struct inbound *ib = ip->ib;
    struct pod *pod = ip->pod;
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
    struct meshd_addr src, dst;
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    addr_from_sockaddr(peer, peerlen, &src);
    if (gateway_takes(ib, pod, fd, &src))
        return;
    struct conn *c = conn_begin(ib->conns, fd, "inbound", ref, &src);
    if (!c)
        return;
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) == -1 ||
        addr_from_sockaddr((struct sockaddr *)&local, locallen, &dst) != 0) {
        conn_refuse(c, -errno, RESP_FLAG_NR);
        return;
    }
    conn_record(c)->orig_dst = dst;
    /* Only what sk_lookup steered here is served: a connection to a pod
     * address, not from meshd's own app-facing source, not to one of
     * meshd's ports. Anything else (the pod's loopback reaching the
     * listener's bound address, a connection meshd opened, podIP:15006
     * itself) would have meshd connect to itself, again and again. */
    if (!listener_is_pod_addr(pod, &dst) || listener_peer_may_be_meshd(&src, &dst) ||
        meshd_port_in_pod(ntohs(dst.port))) {
        char s[ADDR_STRLEN], d[ADDR_STRLEN];
        log_ratelimited(LOG_WARN, "inbound: %s: %s -> %s refused: a self-call", ref,
                        addr_format(&src, s, sizeof(s)), addr_format(&dst, d, sizeof(d)));
        conn_refuse_self_call(c);
        return;
    }
    enum mtls_mode mode = ib->opts.mtls_mode
                              ? ib->opts.mtls_mode(ib->opts.mtls_ctx, pod, ntohs(dst.port))
                              : MTLS_PERMISSIVE;
    if (mode == MTLS_STRICT) {
        char s[ADDR_STRLEN];
        log_ratelimited(LOG_INFO, "inbound: %s: plaintext from %s refused (mTLS STRICT)", ref,
                        addr_format(&src, s, sizeof(s)));
        conn_refuse(c, -EACCES, RESP_FLAG_DENY);
        return;
    }
    bool http = ib->opts.wants_http && ib->opts.serve_http && ib->opts.authorize_http &&
                ib->opts.wants_http(ib->opts.http_ctx, pod, &dst, false);
    inbound_authorize_fn authorize = http ? ib->opts.authorize_http : ib->opts.authorize;
    if (authorize && authorize(ib->opts.mtls_ctx, pod, NULL, &src, &dst) != 0) {
        conn_refuse(c, -EACCES, RESP_FLAG_DENY); /* a reset, as ztunnel answers */
        return;
    }
    struct upstream_source from = listener_app_source(pod, &src, &dst);
    if (!http) {
        conn_forward(c, pod->netns_fd, NULL, &from, NULL);
        return;
    }
    conn_record(c)->per_request = true; /* before it opens: its requests are counted */
    int rc = conn_connect(c, pod->netns_fd, &dst, &from, NULL, on_app_connected, ib);
    if (rc)
        conn_refuse(c, rc, RESP_FLAG_UF);
}

int inbound_attach_pod(void *ctx, struct pod *pod)
{
    struct inbound *ib = ctx;
    struct inbound_pod *ip = calloc(1, sizeof(*ip));
    if (!ip)
        return -ENOMEM;
    ip->ib = ib;
    ip->pod = pod;
    /* Bound to loopback, not the wildcard: sk_lookup assigns a listener
     * whatever its bound address, so steered connections still arrive,
     * while a connection to podIP:15006 that sk_lookup leaves alone (from
     * 127.0.0.6, i.e. meshd itself) finds no listener and is reset. */
    int err =
        listener_open_pod(ip->l, ib->loop, pod, ib->opts.port, 1, inbound_on_accept, ip, "inbound");
    if (err)
        goto err_free;
    err = inbound_lookup_attach(ib->pin_dir, pod->netns_cookie, pod->netns_fd, ip->l[0].io.fd,
                                ip->l[1].io.fd, &ip->lookup);
    if (err)
        goto err_close;
    /* The app sees its real clients when the pod can route replies back
     * to meshd; without that route it sees 127.0.0.6, never a failure. */
    char why[192];
    err = podroute_install(pod->netns_fd, why, sizeof(why));
    pod->app_source_transparent = err == 0;
    pod->app_source_self_map = inbound_lookup_self_map(ip->lookup);
    if (err)
        log_warn("inbound: %s/%s: %s; the app will see meshd's address, not its clients'", pod->ns,
                 pod->name, why);
    pod->inbound = ip;
    return 0;
err_close:
    listener_close_pod(ip->l);
err_free:
    free(ip);
    return err;
}

void inbound_detach_pod(void *ctx, struct pod *pod)
{
    struct inbound_pod *ip = pod->inbound;
    if (!ip)
        return;
    /* Program first: once it is gone, inbound goes to the app directly
     * rather than to a listener that is closing. On a handover it stays:
     * the sockmap empties with our listeners and the pod drops plaintext
     * until the next agent takes the pin over. */
    if (pod->handover) {
        inbound_lookup_close(ip->lookup);
    } else {
        inbound_lookup_detach(ip->lookup);
        if (pod->app_source_transparent)
            podroute_remove(pod->netns_fd);
        pod->app_source_transparent = false;
    }
    listener_close_pod(ip->l);
    free(ip);
    pod->inbound = NULL;
}

void inbound_quiesce_pod(void *ctx, struct pod *pod)
{
    struct inbound_pod *ip = pod->inbound;
    if (ip) /* the sockmap loses the listeners: new connections are dropped */
        listener_close_pod(ip->l);
}
