/* meshd's own HTTP endpoints over admin/http: 15000 admin (/config_dump,
 * /logging; loopback only, the only one with a POST route), 15020
 * /metrics and /stats/prometheus, 15021 /healthz/ready (503 until the
 * operator's configuration loaded, and while draining). */
#ifndef MESHD_ADMIN_ENDPOINTS_H
#define MESHD_ADMIN_ENDPOINTS_H

#include "admin/commands.h"
#include "core/loop.h"

/* Opens the three servers into v->http[] (the caller frees them with
 * http_server_free); `v` outlives them. 0 or -errno, logged. */
int admin_endpoints_start(struct loop *loop, struct admin_view *v);

/* The control socket's "metrics" command (meshctl dashboard scrapes the
 * agent through it, from any network namespace): the 15020 page as
 * {"content_type", "text"}. A handler for admin_new's table. */
json_t *admin_metrics_command(void *ctx, const json_t *req, char *err, size_t errlen);

#endif
