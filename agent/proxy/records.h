/* Connection records: what meshd did with each captured connection, kept in
 * a bounded ring for `meshctl connections` (and, later, access logs). */
#ifndef MESHD_PROXY_RECORDS_H
#define MESHD_PROXY_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/capture.h"
#include "proxy/resp_flag.h"
#include "route/outlier.h"

#define RECORD_POD_LEN 320

enum conn_state {
    CONN_CONNECTING, /* upstream connect in progress */
    CONN_OPEN,       /* bytes flowing */
    CONN_CLOSED,     /* both sides finished cleanly */
    CONN_FAILED,     /* refused, reset, or no original destination */
};

struct conn_record {
    uint64_t id;
    char direction[10];         /* "outbound" */
    char pod[RECORD_POD_LEN];   /* namespace/name */
    struct meshd_addr src;      /* the app's address as the agent saw it */
    struct meshd_addr orig_dst; /* where the app connected to */
    uint64_t start_unix_ms;
    uint64_t duration_ms;
    uint64_t bytes_sent;     /* app -> upstream */
    uint64_t bytes_received; /* upstream -> app */
    enum conn_state state;
    int error;                    /* errno of the failure, 0 otherwise */
    enum resp_flag response_flag; /* named by resp_flag_name() where it is shown */
    bool per_request;             /* carried by the HTTP carrier: its requests are logged */
    char peer_identity[256];      /* SPIFFE id of the mTLS peer, "" for plaintext */
    struct meshd_addr hbone;      /* the HBONE address used, family 0 if none */
    /* Outbound routing: the endpoint chosen and where its bookkeeping
     * lives (a route/clusters entry: stable for the agent's life). */
    struct meshd_addr upstream;
    char dst_service[256]; /* the Service FQDN the app addressed, "" if none */
    void *cluster;         /* NULL: not routed to a service */
    int32_t endpoint;
    struct outlier_config outlier; /* the cluster's, when it was routed */
    /* From the kernel (sockops) once the network-facing socket closed. */
    uint64_t sock_cookie[2]; /* the app-side and upstream sockets */
    uint32_t rtt_us, retrans;
    uint8_t kernel_seen;
    /* Carried on the same-node fast path (proxy/local_path.h): no TLS, both
     * ends decided by this agent; the peer identity is the enrolled one. */
    bool local;
};

const char *conn_state_name(enum conn_state s);

struct records;

int records_new(size_t capacity, struct records **out);
void records_free(struct records *r);
/* Copies `rec` into the ring, evicting the oldest when full; returns the
 * copy (valid until it is evicted). */
struct conn_record *records_push(struct records *r, const struct conn_record *rec);
size_t records_count(const struct records *r);
/* i = 0 is the oldest record kept. */
const struct conn_record *records_get(const struct records *r, size_t i);

#endif
