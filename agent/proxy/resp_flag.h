/* Why a connection ended the way it did, as data: Envoy's response flags
 * (UF, UT, UC, DC, UO, UH, NR; per request FI, DI, URX, DPE) plus Istio's DENY and ztunnel's
 * self-call. The data path sets and tests the enum; letters appear only where a person or
 * Prometheus reads them (records over the control socket, access logs, istio_tcp_* labels), through
 * the one name table in resp_flag.c, as HAProxy's SF_ERR_* become letters only at log time. A leaf:
 * it includes nothing of meshd. */
#ifndef MESHD_PROXY_RESP_FLAG_H
#define MESHD_PROXY_RESP_FLAG_H

#include <stdbool.h>

enum resp_flag {
    RESP_FLAG_NONE = 0,  /* "-": nothing went wrong */
    RESP_FLAG_UF,        /* upstream connect failed (its own timeout included) */
    RESP_FLAG_UT,        /* cut at the route's perTryTimeout or timeout */
    RESP_FLAG_UC,        /* the upstream ended an established connection abnormally */
    RESP_FLAG_DC,        /* the downstream (the app's side) did */
    RESP_FLAG_UO,        /* connectionPool.tcp.maxConnections overflow */
    RESP_FLAG_UH,        /* no ready endpoint */
    RESP_FLAG_NR,        /* no route (or no original destination) */
    RESP_FLAG_DENY,      /* refused by policy */
    RESP_FLAG_SELF_CALL, /* "SELF": aimed at meshd itself */
    RESP_FLAG_FI,        /* a request aborted by fault injection */
    RESP_FLAG_DI,        /* a request delayed by fault injection */
    RESP_FLAG_URX,       /* retries exhausted (the last attempt's answer returned) */
    RESP_FLAG_DPE,       /* the downstream sent a malformed request (400) */
    RESP_FLAG_SI,        /* a request in flight moved no byte for the stream idle timeout */
    RESP_FLAG_COUNT,
};

/* The letters for `f` ("-" for none; "?" for a value out of range). */
const char *resp_flag_name(enum resp_flag f);
/* The gateway error outlier detection counts at L4: a connect that failed
 * or was cut at its deadline. */
bool resp_flag_is_connect_failure(enum resp_flag f);

#endif
