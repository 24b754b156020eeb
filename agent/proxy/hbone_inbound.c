/* HBONE server on each pod's 15008 (see hbone_inbound.h). */
#include "proxy/hbone_inbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "hbone/session.h"
#include "proxy/conns.h"
#include "proxy/listener.h"

struct hbone_inbound {
    struct loop *loop;   /* borrowed */
    struct conns *conns; /* borrowed */
    struct hbone_inbound_opts opts;
    struct hbone_inbound_stats stats;
    struct hi_pod *pods; /* every attached pod, for expiry */
    size_t max_pending, max_pending_source;
    struct hi_session *pending; /* sessions not yet authenticated */
};

/* One enrolled pod's listeners and the sessions they accepted. */
struct hi_pod {
    struct listener l[2];
    struct hbone_inbound *hi;
    struct pod *pod; /* borrowed */
    struct hi_session *sessions;
    struct hi_pod *next;
};

struct hi_session {
    struct hbone_session *s;
    struct hi_pod *hp;       /* borrowed: detaching the pod closes us first */
    struct meshd_addr local; /* the pod address the client reached */
    struct meshd_addr peer;  /* the client's address */
    char peer_id[256];
    bool pending; /* linked in hi->pending, counted in stats.pending */
    struct hi_session *pending_prev, *pending_next;
    struct hi_stream *streams; /* served now, for re-authorization */
    struct hi_session *prev, *next;
};

/* One CONNECT being served: the app connection and its record. */
struct hi_stream {
    struct hbone_stream *st;
    struct conn *c;
    struct hbone_inbound *hi;
    struct hi_session *hs;
    struct hi_stream *prev, *next;
    bool revoked; /* closed because policy no longer allows it */
    bool http;    /* served per request: the connection is admitted, requests decided */
};

static void unlink_stream(struct hi_stream *is)
{
    if (is->prev)
        is->prev->next = is->next;
    else
        is->hs->streams = is->next;
    if (is->next)
        is->next->prev = is->prev;
}

static void pod_ref(const struct pod *pod, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", pod->ns, pod->name);
}

/* Unlinks a session from the pending (unauthenticated) ones, if it is. */
static void hi_pending_del(struct hi_session *hs)
{
    struct hbone_inbound *hi = hs->hp->hi;
    if (!hs->pending)
        return;
    hs->pending = false;
    if (hs->pending_prev)
        hs->pending_prev->pending_next = hs->pending_next;
    else
        hi->pending = hs->pending_next;
    if (hs->pending_next)
        hs->pending_next->pending_prev = hs->pending_prev;
    hi->stats.pending--;
}

/* Handshakes pending from this client address (port ignored). At most
 * max_pending entries to walk, and only on accept. */
static size_t pending_from(const struct hbone_inbound *hi, const struct meshd_addr *peer)
{
    struct meshd_addr a = *peer, b;
    a.port = 0;
    size_t n = 0;
    for (const struct hi_session *hs = hi->pending; hs; hs = hs->pending_next) {
        b = hs->peer;
        b.port = 0;
        n += addr_equal(&a, &b);
    }
    return n;
}

static int hi_on_established(void *ctx, struct hbone_session *s)
{
    struct hi_session *hs = ctx;
    struct hbone_inbound *hi = hs->hp->hi;
    char why[160] = "no verifier";
    int rc = hi->opts.verify_client
                 ? hi->opts.verify_client(hi->opts.ctx, hbone_session_ssl(s), hs->peer_id,
                                          sizeof(hs->peer_id), why, sizeof(why))
                 : -EPERM;
    if (rc == 0) {
        hi_pending_del(hs); /* authenticated: no longer counts against the caps */
    } else {
        char peer[ADDR_STRLEN];
        hi->stats.handshake_failures++;
        log_ratelimited(LOG_WARN, "hbone: client %s refused: %s",
                        addr_format(&hs->peer, peer, sizeof(peer)), why);
    }
    return rc;
}

/* The connect to the app (conns'): 200 and the tunnel, or 503. */
static void hi_stream_connected(void *ctx, struct conn *c, int fd_or_err)
{
    struct hi_stream *is = ctx;
    if (fd_or_err < 0) {
        is->hi->stats.upstream_failures++;
        conn_record(c)->response_flag = RESP_FLAG_UF;
        conn_record(c)->error = -fd_or_err;
        hbone_stream_reject(is->st, 503);
        return;
    }
    if (!is->http) {
        hbone_stream_accept(is->st, fd_or_err);
        return;
    }
    /* Requests, one by one, between the tunnel and the app: the HTTP
     * carrier is the stream's end and answers it. */
    struct hbone_inbound *hi = is->hi;
    if (hi->opts.serve_http(hi->opts.http_ctx, is->hs->hp->pod, conn_record(c), is->st,
                            fd_or_err) != 0)
        hbone_stream_reject(is->st, 503);
}

/* The connection's admission: per request on an HTTP port, else whole. */
static int hi_authorize(struct hbone_inbound *hi, const struct pod *pod, bool http,
                        const char *peer_id, const struct meshd_addr *src,
                        const struct meshd_addr *dst)
{
    if (http && hi->opts.authorize_http)
        return hi->opts.authorize_http(hi->opts.ctx, pod, peer_id, src, dst);
    return hi->opts.authorize ? hi->opts.authorize(hi->opts.ctx, pod, peer_id, src, dst) : 0;
}

/* Is `target` the pod address this session came in on (any port)? */
static bool authority_is_local(const struct meshd_addr *target, const struct meshd_addr *local)
{
    struct meshd_addr a = *target, b = *local;
    a.port = b.port = 0;
    if (addr_equal(&a, &b))
        return true;
    /* An IPv4 authority reached over an IPv4-mapped IPv6 socket. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return a.family == MESHD_AF_INET && b.family == MESHD_AF_INET6 &&
           memcmp(b.addr, mapped, 12) == 0 && memcmp(b.addr + 12, a.addr, 4) == 0;
}

static void hi_on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    struct hi_session *hs = ctx;
    struct hbone_inbound *hi = hs->hp->hi;
    struct pod *pod = hs->hp->pod;
    struct meshd_addr dst;
    if (addr_parse(req->authority, &dst) != 0 || !authority_is_local(&dst, &hs->local)) {
        hi->stats.bad_requests++;
        log_ratelimited(LOG_INFO, "hbone: %s/%s: CONNECT to \"%s\" is not this pod", pod->ns,
                        pod->name, req->authority);
        hbone_stream_reject(st, 400);
        return;
    }
    char ref[RECORD_POD_LEN];
    pod_ref(pod, ref, sizeof(ref));
    struct conn *c = conn_begin(hi->conns, -1, "inbound", ref, &hs->peer);
    if (!c) {
        hbone_stream_reject(st, 503);
        return;
    }
    struct conn_record *rec = conn_record(c);
    rec->orig_dst = dst;
    rec->hbone = hs->local;
    rec->hbone.port = htons(hi->opts.port);
    snprintf(rec->peer_identity, sizeof(rec->peer_identity), "%s", hs->peer_id);
    /* ztunnel's self-call: a tunnel to one of meshd's own ports would nest
     * meshd inside itself, the inner connection coming from 127.0.0.6. */
    if (meshd_port_in_pod(ntohs(dst.port))) {
        hi->stats.self_calls++;
        log_ratelimited(LOG_WARN, "hbone: %s: CONNECT to %s from %s refused: a self-call", ref,
                        req->authority, hs->peer_id);
        hbone_stream_reject(st, 400);
        conn_refuse_self_call(c);
        return;
    }
    bool http = hi->opts.wants_http && hi->opts.serve_http &&
                hi->opts.wants_http(hi->opts.http_ctx, pod, &dst,
                                    strcmp(req->protocol, HBONE_PROTOCOL_HTTP) == 0);
    if (hi_authorize(hi, pod, http, hs->peer_id, &hs->peer, &dst) != 0) {
        hi->stats.denied++;
        hbone_stream_reject(st, 401);
        conn_refuse(c, -EACCES, RESP_FLAG_DENY);
        return;
    }
    struct hi_stream *is = calloc(1, sizeof(*is));
    if (!is) {
        hbone_stream_reject(st, 503);
        conn_refuse(c, -ENOMEM, RESP_FLAG_UF);
        return;
    }
    is->st = st;
    is->c = c;
    is->hi = hi;
    is->http = http;
    rec->per_request = http; /* before it opens: its requests are what is counted */
    is->hs = hs;
    is->next = hs->streams;
    if (hs->streams)
        hs->streams->prev = is;
    hs->streams = is;
    /* The tunnel's peer is the client pod's own address (its agent
     * connects from inside that pod's netns). */
    struct upstream_source from = listener_app_source(pod, &hs->peer, &dst);
    int rc = conn_connect(c, pod->netns_fd, &dst, &from, NULL, hi_stream_connected, is);
    if (rc) {
        hi->stats.upstream_failures++;
        hbone_stream_reject(st, 503);
        conn_refuse(c, rc, RESP_FLAG_UF);
        unlink_stream(is);
        free(is);
        return;
    }
    hbone_stream_set_ctx(st, is);
}

static void hi_on_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                              const struct hbone_stream_stats *stats)
{
    struct hi_stream *is = stream_ctx;
    if (!is)
        return;                 /* rejected before it had a record */
    conn_cancel_connect(is->c); /* the client went away while we connected */
    struct conn_record *rec = conn_record(is->c);
    if (stats->status != 200 && !err)
        err = -ECONNREFUSED;
    /* From the source's view: sent = client -> app, received = app -> client. */
    conn_end(is->c, err ? (rec->error ? -rec->error : err) : 0, stats->bytes_received,
             stats->bytes_sent, is->revoked ? RESP_FLAG_DENY : RESP_FLAG_NONE);
    unlink_stream(is);
    free(is);
}

static void hi_on_session_done(void *ctx, struct hbone_session *s)
{
    struct hi_session *hs = ctx;
    struct hi_pod *hp = hs->hp;
    if (!hbone_session_established(s))
        hp->hi->stats.handshake_failures++;
    hi_pending_del(hs);
    if (hs->prev)
        hs->prev->next = hs->next;
    else
        hp->sessions = hs->next;
    if (hs->next)
        hs->next->prev = hs->prev;
    hp->hi->stats.sessions--;
    free(hs);
}

static void hi_on_accept(struct listener *l, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
    struct hi_pod *hp = l->ctx;
    struct hbone_inbound *hi = hp->hi;
    struct meshd_addr from;
    addr_from_sockaddr(peer, peerlen, &from);
    /* No HBONE client is on the pod's loopback: a loopback peer is meshd's
     * own app-facing side (or the pod reaching around the mesh). */
    if (!hi->opts.loopback_clients && listener_addr_is_loopback(&from)) {
        hi->stats.self_calls++;
        close_with_reset(fd);
        return;
    }
    /* Unauthenticated connections are bounded per client pod (address)
     * and in all: past either cap a new one is reset before any TLS state
     * exists, so one pod's flood of idle handshakes costs a socket each
     * until the deadline (handshake_timeout_ns) and leaves room for
     * everyone else's. */
    size_t mine = pending_from(hi, &from);
    if (mine >= hi->max_pending_source || hi->stats.pending >= hi->max_pending) {
        char who[ADDR_STRLEN];
        hi->stats.handshakes_refused++;
        log_ratelimited(LOG_WARN,
                        "hbone: %s/%s: %zu handshakes pending from %s, %llu in all; refused",
                        hp->pod->ns, hp->pod->name, mine, addr_format(&from, who, sizeof(who)),
                        (unsigned long long)hi->stats.pending);
        close_with_reset(fd);
        return;
    }
    SSL_CTX *ctx = hi->opts.server_ctx ? hi->opts.server_ctx(hi->opts.ctx, hp->pod) : NULL;
    struct hi_session *hs = ctx ? calloc(1, sizeof(*hs)) : NULL;
    if (!hs) {
        log_ratelimited(LOG_WARN, "hbone: %s/%s has no workload certificate; refusing", hp->pod->ns,
                        hp->pod->name);
        close(fd);
        return;
    }
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    hs->hp = hp;
    addr_from_sockaddr(peer, peerlen, &hs->peer);
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0)
        addr_from_sockaddr((struct sockaddr *)&local, locallen, &hs->local);
    struct hbone_handler h = {.on_established = hi_on_established,
                              .on_request = hi_on_request,
                              .on_stream_done = hi_on_stream_done,
                              .on_session_done = hi_on_session_done,
                              .ctx = hs};
    if (hbone_session_new(hi->loop, ctx, fd, true, &h, &hs->s) != 0) {
        free(hs);
        return;
    }
    hs->next = hp->sessions;
    if (hp->sessions)
        hp->sessions->prev = hs;
    hp->sessions = hs;
    hs->pending = true;
    hs->pending_next = hi->pending;
    if (hi->pending)
        hi->pending->pending_prev = hs;
    hi->pending = hs;
    hi->stats.pending++;
    hi->stats.sessions++;
    hi->stats.sessions_total++;
}

int hbone_inbound_new(struct loop *loop, struct conns *conns, const struct hbone_inbound_opts *opts,
                      struct hbone_inbound **out)
{
    struct hbone_inbound *hi = calloc(1, sizeof(*hi));
    if (!hi)
        return -ENOMEM;
    hi->loop = loop;
    hi->conns = conns;
    hi->opts = *opts;
    hi->max_pending = opts->max_pending ? opts->max_pending : HBONE_INBOUND_MAX_PENDING;
    hi->max_pending_source =
        opts->max_pending_source ? opts->max_pending_source : HBONE_INBOUND_MAX_PENDING_SOURCE;
    *out = hi;
    return 0;
}

int hbone_inbound_attach_pod(void *ctx, struct pod *pod)
{
    struct hbone_inbound *hi = ctx;
    struct hi_pod *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return -ENOMEM;
    hp->hi = hi;
    hp->pod = pod;
    int err = listener_open_pod(hp->l, hi->loop, pod, hi->opts.port, 0, hi_on_accept, hp, "hbone");
    if (err) {
        free(hp);
        return err;
    }
    hp->next = hi->pods;
    hi->pods = hp;
    pod->hbone = hp;
    return 0;
}

void hbone_inbound_detach_pod(void *ctx, struct pod *pod)
{
    struct hbone_inbound *hi = ctx;
    struct hi_pod *hp = pod->hbone;
    if (!hp)
        return;
    listener_close_pod(hp->l);
    while (hp->sessions)
        hbone_session_close(hp->sessions->s, "pod unenrolled");
    for (struct hi_pod **pp = &hi->pods; *pp; pp = &(*pp)->next) {
        if (*pp == hp) {
            *pp = hp->next;
            break;
        }
    }
    free(hp);
    pod->hbone = NULL;
}

void hbone_inbound_quiesce_pod(void *ctx, struct pod *pod)
{
    struct hi_pod *hp = pod->hbone;
    if (!hp)
        return;
    listener_close_pod(hp->l);
    for (struct hi_session *hs = hp->sessions, *next; hs; hs = next) {
        next = hs->next;            /* a session without streams may end right away */
        hbone_session_drain(hs->s); /* GOAWAY: open streams finish */
    }
}

void hbone_inbound_expire(struct hbone_inbound *hi, uint64_t now_ns)
{
    for (struct hi_pod *hp = hi->pods; hp; hp = hp->next) {
        for (struct hi_session *hs = hp->sessions, *next; hs; hs = next) {
            next = hs->next;
            struct hbone_session *s = hs->s;
            uint64_t idle = hbone_session_idle_since_ns(s);
            if (hs->pending && now_ns - hbone_session_started_ns(s) > hi->opts.handshake_timeout_ns)
                hbone_session_close(s, "handshake timed out");
            else if (idle && now_ns - idle > hi->opts.idle_timeout_ns)
                hbone_session_close(s, "idle");
        }
    }
}

void hbone_inbound_free(struct hbone_inbound *hi)
{
    free(hi);
}

void hbone_inbound_get_stats(const struct hbone_inbound *hi, struct hbone_inbound_stats *st)
{
    *st = hi->stats;
}

size_t hbone_inbound_revalidate(struct hbone_inbound *hi)
{
    size_t closed = 0;
    for (struct hi_pod *hp = hi->pods; hp; hp = hp->next) {
        struct hi_session *next;
        for (struct hi_session *hs = hp->sessions; hs; hs = next) {
            next = hs->next; /* a reset may end this session */
            /* Decide first, then reset: a reset may end (and unlink) the
             * stream at once. A session carries at most HBONE_MAX_STREAMS. */
            struct hi_stream *deny[HBONE_MAX_STREAMS];
            size_t n = 0;
            for (struct hi_stream *is = hs->streams; is && n < HBONE_MAX_STREAMS; is = is->next) {
                const struct conn_record *rec = conn_record(is->c);
                if (!is->revoked && hi_authorize(hi, hp->pod, is->http, hs->peer_id, &hs->peer,
                                                 &rec->orig_dst) != 0)
                    deny[n++] = is;
            }
            for (size_t i = 0; i < n; i++) {
                deny[i]->revoked = true;
                hi->stats.denied++;
                hbone_stream_revoke(deny[i]->st, -EACCES);
            }
            closed += n;
        }
    }
    return closed;
}
