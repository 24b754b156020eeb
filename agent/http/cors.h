/* CORS: a VirtualService's corsPolicy, as Envoy's CORS filter applies it.
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) from
 * an allowed origin is answered by meshd itself; any other request from an
 * allowed origin gets the Access-Control-Allow-* headers on its response.
 * A request from an origin the policy does not allow goes on untouched
 * (the browser enforces CORS, not the proxy). */
#ifndef MESHD_HTTP_CORS_H
#define MESHD_HTTP_CORS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/model.h"
#include "http/message.h"

/* The request's Origin when `c` allows it, else NULL. */
const char *http_cors_origin(const struct cfg_cors *c, const struct http_request_view *req);
/* Whether `req` is a CORS preflight. */
bool http_cors_is_preflight(const struct http_request_view *req);
/* The response fields for an allowed `origin` (preflight: methods,
 * headers, max-age too), written into out (at most 6) with their values in
 * `buf`. Returns how many. */
size_t http_cors_fields(const struct cfg_cors *c, const char *origin, bool preflight,
                        struct http_field *out, char *buf, size_t len);

#endif
