/* A harness for the HTTP carrier's unit tests (agent/http/proxy.c and its
 * parts) on a real event loop with real sockets: the proxy itself
 * (owner UPSTREAM_NO_CAPTURE), a connection from the real table
 * (proxy/conns.c) over a socket pair whose other end is the test's
 * client, a fake router that records every call (route, free, report,
 * release) and answers from a per-test plan, and a scripted HTTP/1.1
 * upstream listening on 127.0.0.1 in the same loop: it frames what it
 * receives (Content-Length, chunked) and answers each complete request
 * with the next step of its script. Every wait is bounded in time. */
#ifndef MESHD_TEST_HP_FIXTURE_H
#define MESHD_TEST_HP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model.h"
#include "core/loop.h"
#include "enroll/pods.h"
#include "http/proxy.h"
#include "proxy/conns.h"
#include "telemetry/http_metrics.h"

#define HPF_MAX     16           /* steps, attempts, upstream connections, reports */
#define HPF_BUF     (128 * 1024) /* bytes kept per direction */
#define HPF_WAIT_MS 3000         /* the bound on any wait */

/* One step of the upstream's script, taken when a request is complete
 * (or, with `on_head`, once its head is). Past the script: no answer. */
struct hpf_step {
    const char *send; /* NULL: answer nothing (a server that hangs) */
    bool on_head;     /* answer the head, before the body (100 Continue) */
    bool close;       /* then close (FIN) */
    bool reset;       /* then close with a reset */
};

/* What the router answers on its n-th route call (the last one repeats). */
enum hpf_kind { HPF_FORWARD, HPF_RESPOND, HPF_REFUSE };
struct hpf_plan {
    enum hpf_kind kind;
    uint16_t port;        /* FORWARD: 0 = the scripted upstream, else this loopback port;
                             the endpoint is 100 + the call's index */
    int status;           /* RESPOND */
    const char *location; /* RESPOND */
    const char *body;     /* RESPOND */
    enum resp_flag flag;  /* RESPOND, REFUSE */
    const struct cfg_http_route *actions;
    const struct cfg_route *vs_route;
    uint32_t max_per_conn; /* FORWARD: the route's maxRequestsPerConnection */
    bool http1;            /* FORWARD: the decision's upstream_http1 */
};

struct hpf_report {
    int status;
    char flags[16], method[16], path[128], request_id[48], upstream_host[64];
    uint64_t req_bytes, resp_bytes;
    bool decided;
    char protocol[16];
    bool grpc;
    int grpc_status;
};

struct hpf_upconn {
    struct loop_io io;
    struct hpf *f;
    char rx[HPF_BUF];
    size_t len, done; /* received; framed into requests up to `done` */
    bool head_answered, eof;
    int requests;
};

struct hpf {
    struct loop *loop;
    struct conns *conns;
    struct http_proxy *hp;
    struct pod pod, pod2; /* the source pod, and another (use_pod2) */
    bool pod_gone, use_pod2;
    struct meshd_addr orig_dst;
    uint16_t port, closed_port; /* the upstream's, one nobody listens on */
    /* the client */
    int client;
    char cli[HPF_BUF];
    size_t cli_len;
    bool cli_eof;
    /* the upstream */
    struct loop_io lio;
    struct hpf_upconn up[HPF_MAX];
    int accepts;
    struct hpf_step script[HPF_MAX];
    int nsteps, step;
    /* the router: every call counted, the first HPF_MAX recorded */
    struct hpf_plan plan[HPF_MAX];
    int nplan;
    int routes, frees, frees_failed, releases;
    int32_t avoided[HPF_MAX], freed_endpoint[HPF_MAX];
    void *avoided_cluster[HPF_MAX];
    bool freed_failed[HPF_MAX];
    char seen_path[HPF_MAX][128], seen_authority[HPF_MAX][128];
    struct hpf_report reports[HPF_MAX];
    int nreports;
    /* the connection's record at its end */
    struct conn_record closed;
    int nclosed;
};

/* A fresh fixture (max_idle: the proxy's max_idle_upstreams, 0 default).
 * The session is started by hpf_session. */
struct hpf *hpf_new(unsigned max_idle);
/* The same with the proxy's options (their owner is replaced). */
struct hpf *hpf_new_opts(const struct http_proxy_opts *opts);
void hpf_free(struct hpf *f);
/* A downstream connection served by a new session: its client end
 * replaces f->client (the previous one is kept open by the caller). */
int hpf_session(struct hpf *f);
/* The two halves of it: a captured connection from the table (its client
 * end in f->client), and the session on it. */
struct conn *hpf_conn(struct hpf *f);
int hpf_start(struct hpf *f, struct conn *c);
/* A destination session (http_session_start_inbound): the client's
 * connection served to one app connection, to `port` on loopback (0: the
 * scripted upstream). */
int hpf_session_inbound(struct hpf *f, uint16_t port);
void hpf_script(struct hpf *f, const struct hpf_step *steps, int n);
void hpf_plan(struct hpf *f, const struct hpf_plan *plan, int n);

/* The client writes `s` (all of it). */
void hpf_send(struct hpf *f, const char *s);
/* Runs the loop until the client has `n` bytes, EOF, or the bound. */
void hpf_wait_client(struct hpf *f, size_t n);
/* Runs the loop until the client's bytes are `want` (exactly; extra
 * bytes fail) and consumes them. */
void hpf_expect(struct hpf *f, const char *want);
/* Runs the loop until the client sees EOF (or the bound); true if it did. */
bool hpf_wait_eof(struct hpf *f);
/* Runs the loop for `ms` milliseconds. */
void hpf_spin(struct hpf *f, int ms);
/* Runs until `*flag` >= want, or the bound. */
void hpf_wait_count(struct hpf *f, const int *counter, int want);
/* All bytes upstream connection `i` received, NUL-terminated. */
const char *hpf_up_rx(struct hpf *f, int i);
/* Drops "x-request-id: <v>\r\n" lines from `in` into out; returns how
 * many and the first value in `id` (may be NULL). */
int hpf_strip_request_id(const char *in, char *out, size_t len, char *id, size_t idlen);
uint64_t hpf_ms_since(uint64_t start_ns);

#endif
