/* The agent's control socket: a unix stream socket (mode 0600) speaking one
 * JSON request and one JSON response per connection. meshctl is its client.
 *
 *   request:  {"cmd": "enroll", "pod": "ns/name", "netns": "/run/netns/x"}
 *   response: {"ok": true, "result": ...} | {"ok": false, "error": "..."}
 *
 * Commands are registered by the modules that implement them; this module
 * only frames, bounds and dispatches. Only root reaches the socket (mode
 * 0600), yet a stuck or buggy client must not lock meshctl out: a request
 * must arrive within ADMIN_READ_MS, the response be read within
 * ADMIN_WRITE_MS (meshctl waits 10 s), and when all ADMIN_MAX_CLIENTS are
 * taken the oldest client makes room for the newcomer. */
#ifndef MESHD_ADMIN_ADMIN_H
#define MESHD_ADMIN_ADMIN_H

#include <stddef.h>

#include <jansson.h>

#define ADMIN_MAX_REQUEST (64 * 1024)
#define ADMIN_MAX_CLIENTS 32
#define ADMIN_READ_MS     5000
#define ADMIN_WRITE_MS    10000

struct loop;
struct admin;
struct reqserver_stats;

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
void admin_get_stats(const struct admin *a, struct reqserver_stats *out);

/* Runs one request through the dispatcher (also used by unit tests).
 * Returns the response document as a new reference. */
json_t *admin_dispatch(const struct admin_command *cmds, size_t ncmds, const char *request,
                       size_t len);

#endif
