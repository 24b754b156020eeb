/* The agent's control socket: a unix stream socket (mode 0600) speaking one
 * JSON request and one JSON response per connection. meshctl is its client.
 *
 *   request:  {"cmd": "enroll", "pod": "ns/name", "netns": "/run/netns/x"}
 *   response: {"ok": true, "result": ...} | {"ok": false, "error": "..."}
 *
 * Commands are registered by the modules that implement them; this module
 * only frames, bounds and dispatches. */
#ifndef MESHD_ADMIN_ADMIN_H
#define MESHD_ADMIN_ADMIN_H

#include <stddef.h>

#include <jansson.h>

#define ADMIN_MAX_REQUEST (64 * 1024)
#define ADMIN_MAX_CLIENTS 32

struct loop;
struct admin;

/* Returns a new reference to the result, or NULL with a message in err. */
typedef json_t *(*admin_handler)(void *ctx, const json_t *req, char *err, size_t errlen);

struct admin_command {
    const char *name;
    admin_handler fn;
    void *ctx;
};

/* `cmds` must outlive the admin. Replaces a stale socket file at `path`. */
int admin_new(struct loop *loop, const char *path, const struct admin_command *cmds, size_t ncmds,
              struct admin **out);
void admin_free(struct admin *a);

/* Runs one request through the dispatcher (also used by unit tests).
 * Returns the response document as a new reference. */
json_t *admin_dispatch(const struct admin_command *cmds, size_t ncmds, const char *request,
                       size_t len);

#endif
