/* Connection records into Istio metrics, access-log lines and kernel
 * measurements (see conn_telemetry.h). */
#include "telemetry/conn_telemetry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/store.h"
#include "core/loop.h"
#include "core/str.h"
#include "enroll/pods.h"
#include "policy/telemetry.h"
#include "proxy/conns.h"
#include "telemetry/accesslog.h"
#include "telemetry/http_metrics.h"
#include "telemetry/kernel_metrics.h"
#include "telemetry/labels_memo.h"
#include "telemetry/tcp_metrics.h"
#include "telemetry/workload_labels.h"

/* Series of workloads gone for 10 minutes are dropped (Istio's metric
 * expiry is comparable). */
#define SERIES_EXPIRY_NS (600ull * 1000000000ull)

struct conn_telemetry {
    struct conn_telemetry_opts opts;
    struct tcp_metrics *tcp;
    struct http_metrics *http;
    struct kernel_metrics *kernel;
    struct labels_memo *memo; /* request labels by connection and destination */
    int stdout_flags;         /* before we made stdout non-blocking; -1: untouched */
    struct conn_telemetry_stats stats;
};

int conn_telemetry_new(const struct conn_telemetry_opts *opts, struct conn_telemetry **out)
{
    struct conn_telemetry *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->opts = *opts;
    t->stdout_flags = -1;
    int err = tcp_metrics_new(SERIES_EXPIRY_NS, &t->tcp);
    if (!err)
        err = http_metrics_new(SERIES_EXPIRY_NS, &t->http);
    if (!err)
        err = labels_memo_new(&t->memo);
    if (!err)
        err = kernel_metrics_new(&t->kernel);
    if (err) {
        conn_telemetry_free(t);
        return err;
    }
    *out = t;
    return 0;
}

void conn_telemetry_free(struct conn_telemetry *t)
{
    if (!t)
        return;
    if (t->stdout_flags >= 0)
        fcntl(STDOUT_FILENO, F_SETFL, t->stdout_flags);
    tcp_metrics_free(t->tcp);
    http_metrics_free(t->http);
    kernel_metrics_free(t->kernel);
    labels_memo_free(t->memo);
    free(t);
}

/* Istio's labels: what the record knows, then what the configuration says
 * about both workloads. */
static void labels_of(const struct conn_telemetry *t, const struct conn_record *rec,
                      struct tcp_labels *l)
{
    tcp_labels_from_record(rec, l);
    if (t->opts.config) /* none in unit tests of the record's own labels */
        tcp_labels_from_config(cfg_store_current(t->opts.config), t->opts.trust_domain, rec, l);
}

void conn_telemetry_opened(struct conn_telemetry *t, const struct conn_record *rec)
{
    if (rec->per_request)
        return; /* its requests are counted (istio_requests_*), as Envoy's HTTP filters do */
    struct tcp_labels l;
    labels_of(t, rec, &l);
    tcp_metrics_opened(t->tcp, &l, loop_now_ns());
}

/* Access logs must never block the loop (see telemetry/accesslog.h):
 * stdout turns non-blocking when the first line is due. */
static void stdout_nonblocking(struct conn_telemetry *t)
{
    if (t->stdout_flags >= 0 || (t->stdout_flags = fcntl(STDOUT_FILENO, F_GETFL)) < 0)
        return;
    fcntl(STDOUT_FILENO, F_SETFL, t->stdout_flags | O_NONBLOCK);
}

/* --access-log logs every connection; otherwise the Telemetry resources
 * decide for the record's pod (the source's for outbound, the
 * destination's for inbound). */
static bool access_log_wanted(const struct conn_telemetry *t, const struct conn_record *rec)
{
    if (t->opts.access_log_all)
        return true;
    if (!rec || !t->opts.config)
        return false;
    const struct cfg_snapshot *snap = cfg_store_current(t->opts.config);
    if (!cfg_count(snap, CFG_TELEMETRY))
        return false;
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (pods_parse_ref(rec->pod, ns, name) != 0)
        return false;
    const struct cfg_pod *p = cfg_find(snap, CFG_POD, ns, name);
    struct access_log_decision d;
    telemetry_access_log(snap, ns, p ? &p->meta.labels : NULL,
                         strcmp(rec->direction, "inbound") == 0, &d);
    return d.enabled;
}

/* One line on stdout, counted (see telemetry/accesslog.h). */
static void access_log_line(struct conn_telemetry *t, const struct conn_record *rec,
                            const struct http_request_record *req)
{
    stdout_nonblocking(t);
    enum accesslog_format fmt = t->opts.log_json ? ACCESSLOG_JSON : ACCESSLOG_TEXT;
    if (req ? http_accesslog_write(STDOUT_FILENO, req, fmt)
            : accesslog_write(STDOUT_FILENO, rec, fmt))
        t->stats.access_log_written++;
    else
        t->stats.access_log_dropped++;
}

void conn_telemetry_closed(struct conn_telemetry *t, const struct conn_record *rec)
{
    if (rec->per_request) {
        /* A connection carried request by request: its requests were
         * counted and logged (istio_requests_*), not the connection. */
        return;
    }
    struct tcp_labels l;
    labels_of(t, rec, &l);
    /* Istio counts from the destination's view whatever the reporter:
     * sent = response bytes, received = request bytes. A record's
     * bytes_sent is the request direction for both of our directions. */
    tcp_metrics_closed(t->tcp, &l, rec->bytes_received, rec->bytes_sent, rec->state == CONN_FAILED,
                       loop_now_ns());
    if (access_log_wanted(t, rec))
        access_log_line(t, rec, NULL);
}

void conn_telemetry_request_labels(struct conn_telemetry *t, const struct conn_record *conn,
                                   const struct http_request_dest *dst, bool grpc,
                                   struct tcp_labels *out)
{
    uint64_t id;
    conn_telemetry_request_labels_id(t, conn, dst, grpc, out, &id);
}

void conn_telemetry_request_labels_id(struct conn_telemetry *t, const struct conn_record *conn,
                                      const struct http_request_dest *dst, bool grpc,
                                      struct tcp_labels *out, uint64_t *id)
{
    *id = 0;
    /* The connection as if it had gone where this request went. */
    struct conn_record c = *conn;
    if (dst && dst->service)
        str_copy(c.dst_service, sizeof(c.dst_service), dst->service);
    if (dst && dst->endpoint)
        c.upstream = *dst->endpoint;
    if (dst && dst->peer_identity) {
        str_copy(c.peer_identity, sizeof(c.peer_identity), dst->peer_identity);
        /* tcp_labels_from_record reads mTLS from the HBONE address. */
        memset(&c.hbone, 0, sizeof(c.hbone));
        if (dst->peer_identity[0])
            c.hbone.family = dst->endpoint ? dst->endpoint->family : MESHD_AF_INET;
    }
    const char *version =
        t->opts.config ? cfg_snapshot_version(cfg_store_current(t->opts.config)) : "";
    uint64_t kept;
    if (labels_memo_get_id(t->memo, version, &c, out, &kept)) {
        *id = kept << 1 | grpc; /* the set, and the request_protocol written over it */
    } else {
        labels_of(t, &c, out);
        labels_memo_put(t->memo, version, &c, out);
    }
    str_copy(out->v[TL_REQUEST_PROTOCOL], sizeof(out->v[TL_REQUEST_PROTOCOL]),
             grpc ? "grpc" : "http");
}

void conn_telemetry_request(struct conn_telemetry *t, const struct conn_record *conn,
                            const struct http_request_record *r)
{
    http_metrics_observe(t->http, r, loop_now_ns());
    if (access_log_wanted(t, conn))
        access_log_line(t, conn, r);
}

void conn_telemetry_kernel_event(struct conn_telemetry *t, const struct conn_record *rec,
                                 const struct meshd_conn_event *ev)
{
    if (rec) {
        t->stats.kevents_joined++;
        kernel_metrics_observe(t->kernel, rec, ev);
    } else
        t->stats.kevents_unjoined++; /* the app's own connections, not proxied */
}

void conn_telemetry_tick(struct conn_telemetry *t, uint64_t now_ns)
{
    tcp_metrics_expire(t->tcp, now_ns);
    http_metrics_expire(t->http, now_ns);
}

void conn_telemetry_get_stats(const struct conn_telemetry *t, struct conn_telemetry_stats *out)
{
    *out = t->stats;
}

const struct tcp_metrics *conn_telemetry_tcp(const struct conn_telemetry *t)
{
    return t->tcp;
}

const struct http_metrics *conn_telemetry_http(const struct conn_telemetry *t)
{
    return t->http;
}

const struct kernel_metrics *conn_telemetry_kernel(const struct conn_telemetry *t)
{
    return t->kernel;
}
