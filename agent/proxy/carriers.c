/* Plain-TCP and HBONE-client carriers of outbound flows (see carriers.h). */
#include "proxy/carriers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/addr.h"
#include "enroll/pods.h"
#include "hbone/pool.h"
#include "proxy/conns.h"

/* --- plain TCP --------------------------------------------------------- */

/* conns' conn_attempt_fn: the connect's end, told to the flow. The app
 * socket stays with the table until the relay takes it, so a failure hands
 * nothing back; the flow ends the record, so the table never fails it. */
static bool tcp_attempt_done(void *ctx, struct conn *c, int err)
{
    (void)c;
    struct flow_outcome o = {.err = err,
                             .established = err == 0,
                             .carried = err == 0,
                             .cancelled = err == -ECANCELED,
                             .app_fd = -1};
    flow_carrier_done(ctx, &o);
    return true;
}

static void tcp_start(struct carrier *cr, struct flow *f, const struct pod *pod)
{
    const struct outbound_route *route = flow_route(f);
    conn_forward_attempt(flow_conn(f), pod->netns_fd, route->target.family ? &route->target : NULL,
                         NULL, &route->tuning, tcp_attempt_done, f);
}

static int tcp_abort(struct carrier *cr, struct flow *f, int err)
{
    return conn_abort_connect(flow_conn(f), err);
}

void carrier_tcp_init(struct carrier *cr)
{
    *cr = (struct carrier){.name = "tcp", .start = tcp_start, .abort = tcp_abort};
}

/* --- HBONE client ------------------------------------------------------ */

/* ztunnel's CONNECT headers: who is really connecting, and trace context. */
static void connect_headers(const struct pod *pod, const struct meshd_addr *src, char *forwarded,
                            size_t flen, char *baggage, size_t blen, char *traceparent, size_t tlen)
{
    char s[ADDR_STRLEN];
    if (src->family)
        snprintf(forwarded, flen, "for=\"%s\"", addr_format(src, s, sizeof(s)));
    else
        forwarded[0] = '\0';
    snprintf(baggage, blen, "k8s.namespace.name=%s,k8s.pod.name=%s", pod->ns, pod->name);
    unsigned char id[24];
    if (RAND_bytes(id, sizeof(id)) != 1)
        memset(id, 0x5a, sizeof(id));
    int n = snprintf(traceparent, tlen, "00-");
    for (int i = 0; i < 24 && n + 3 < (int)tlen; i++)
        n += snprintf(traceparent + n, tlen - (size_t)n, "%02x%s", id[i], i == 15 ? "-" : "");
    snprintf(traceparent + n, tlen - (size_t)n, "-01");
}

/* A failure before the peer answered 200 with the app socket given back,
 * a policy denial (401), or the stream's end once established. */
void carrier_hbone_stream_done(void *stream_ctx, int err, const struct hbone_stream_stats *stats)
{
    struct flow_outcome o = {.err = err,
                             .established = stats->status == 200,
                             .denied = stats->status == 401,
                             .timed_out = err == -ETIMEDOUT,
                             .app_lost = stats->app_fd < 0,
                             .app_fd = stats->app_fd,
                             .bytes_sent = stats->bytes_sent,
                             .bytes_received = stats->bytes_received};
    if (stats->app_fd >= 0) /* given back: whatever the status, nothing moved */
        o.established = false;
    flow_carrier_done(stream_ctx, &o);
}

static void hbone_start(struct carrier *cr, struct flow *f, const struct pod *pod)
{
    const struct outbound_route *route = flow_route(f);
    /* The app socket: the table's on the first attempt (taking it reports
     * the connection open), given back by the stream that failed after. */
    int fd = flow_take_app_fd(f);
    if (fd < 0)
        fd = conn_take_fd(flow_conn(f));
    char authority[ADDR_STRLEN], forwarded[80], baggage[400], traceparent[64];
    addr_format(&route->target, authority, sizeof(authority));
    /* The app's real source: its pod address with the port it used. */
    struct meshd_addr from = route->source;
    from.port = flow_app_addr(f)->port;
    connect_headers(pod, &from, forwarded, sizeof(forwarded), baggage, sizeof(baggage), traceparent,
                    sizeof(traceparent));
    struct hbone_connect_headers hdrs = {.forwarded = forwarded[0] ? forwarded : NULL,
                                         .baggage = baggage,
                                         .traceparent = traceparent};
    int rc = hbone_pool_connect(cr->ctx, &route->key, pod->netns_fd, route->client_ctx, authority,
                                &hdrs, fd, f);
    if (rc) { /* the pool gave fd back (give_back) */
        struct flow_outcome o = {.err = rc, .timed_out = rc == -ETIMEDOUT, .app_fd = fd};
        flow_carrier_done(f, &o);
    }
}

static int hbone_abort(struct carrier *cr, struct flow *f, int err)
{
    return hbone_pool_abort_pending(cr->ctx, &flow_route(f)->key, f, err);
}

void carrier_hbone_init(struct carrier *cr, struct hbone_pool *pool)
{
    *cr = (struct carrier){
        .name = "hbone", .start = hbone_start, .abort = hbone_abort, .ctx = pool, .mesh = true};
}
