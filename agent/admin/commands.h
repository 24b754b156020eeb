/* The control socket's commands (meshctl enroll, unenroll, pods,
 * connections, status, proxy-config config / routes, authn tls-check) and
 * the JSON they answer, read from the running modules.
 *
 * struct admin_view is what the admin side sees of the agent: the modules
 * it asks, borrowed (a NULL module is not running: no mesh without
 * --ca-dir). The agent owns it and fills it as start-up creates the
 * modules; the HTTP endpoints (admin/endpoints.c) read the same view. */
#ifndef MESHD_ADMIN_COMMANDS_H
#define MESHD_ADMIN_COMMANDS_H

#include <stdbool.h>

#include <jansson.h>

#include "admin/admin.h"

struct capture;
struct cfg_store;
struct conns;
struct conn_telemetry;
struct http_server;
struct kevents;
struct mesh;
struct outbound;
struct pods;
struct autoenroll;

struct admin_view {
    const char *version, *node, *config_dir, *trust_domain; /* borrowed: the options */
    const char *cgroup_path, *pin_dir;
    struct cfg_store *config;
    struct capture *capture;
    struct conns *conns;
    struct outbound *outbound;
    struct mesh *mesh; /* NULL without --ca-dir */
    struct pods *pods;
    struct kevents *kevents;
    struct conn_telemetry *telemetry;
    struct admin *admin;         /* the control socket itself (its client stats) */
    struct http_server *http[3]; /* admin 15000, metrics 15020, health 15021 */
    bool draining;               /* SIGTERM: enrollment refused, not ready */
    struct tracer *tracer;       /* NULL without --trace-collector */
    /* Enrollment by label and by meshd-cni; NULL: off. */
    struct autoenroll *autoenroll;
};

#define ADMIN_NCOMMANDS 10

/* Fills the command table for admin_new; `v` outlives the admin. */
void admin_commands(struct admin_view *v, struct admin_command out[ADMIN_NCOMMANDS]);

/* `meshctl pods` and `meshctl status` as documents (new references), for
 * /config_dump too. */
json_t *admin_pods_json(const struct admin_view *v);
json_t *admin_status_json(const struct admin_view *v);

#endif
