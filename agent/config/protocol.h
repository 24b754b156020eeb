/* Istio's protocol selection for a port, from the configuration alone: a
 * Service port by appProtocol or its name's prefix, a ServiceEntry port
 * by its protocol field, and the server-first ports that are never
 * sniffed. route/http_route decides per destination with it; the
 * analyzers (config/analyze_http) group ports with it. A leaf of config,
 * so that config never calls route. No state. */
#ifndef MESHD_CONFIG_PROTOCOL_H
#define MESHD_CONFIG_PROTOCOL_H

#include "config/model.h"

enum http_proto {
    PROTO_TCP,   /* tcp, tls, mongo, mysql, redis, ...: L4 */
    PROTO_HTTP,  /* http, http-*, appProtocol http */
    PROTO_HTTP2, /* http2, h2c */
    PROTO_GRPC,  /* grpc, grpc-web */
    PROTO_AUTO,  /* unnamed or unknown name: sniff the client's first bytes */
};

/* A Service port's protocol: appProtocol first, then the name's prefix
 * before '-' ("http-web", "grpc"), then the protocol field (UDP, SCTP:
 * TCP here, never sniffed); unnamed: PROTO_AUTO. */
enum http_proto http_port_protocol(const struct cfg_service_port *p);
/* A ServiceEntry port: its protocol field (HTTP, HTTP2, GRPC, TCP, ...);
 * none or unknown: PROTO_AUTO, or PROTO_TCP on a server-first port. */
enum http_proto http_entry_port_protocol(const struct cfg_named_port *p);

#endif
