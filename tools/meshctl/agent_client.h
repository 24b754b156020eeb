/* meshctl's side of the agent's control socket (see agent/admin/admin.h). */
#ifndef MESHCTL_AGENT_CLIENT_H
#define MESHCTL_AGENT_CLIENT_H

#include <jansson.h>

/* Sends `req` (the reference is stolen, as json_object_set_new does) and
 * returns the "result" of a successful response (a new
 * reference), or NULL after printing the agent's error or the transport
 * failure to stderr. */
json_t *agent_call(const char *socket_path, json_t *req);

#endif
