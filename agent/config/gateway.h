/* Helpers over the ingress gateway's part of the model (Gateway servers,
 * tls[] routes, Secrets: config/model.h), shared by the decoder and the
 * gateway (agent/gateway). Pure functions. */
#ifndef MESHD_CONFIG_GATEWAY_H
#define MESHD_CONFIG_GATEWAY_H

#include <stdbool.h>

/* Istio's protocol classes for a server's port.protocol. */
bool cfg_gateway_protocol_is_tls(const char *protocol);  /* HTTPS, TLS */
bool cfg_gateway_protocol_is_http(const char *protocol); /* HTTP, HTTP2, GRPC, GRPC-WEB */
/* Istio's ValidateWildcardDomain: "*" or "*x" only as the first label. */
bool cfg_valid_wildcard_host(const char *host);

#endif
