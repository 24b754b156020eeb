/* meshctl's side of the agent's control socket (see agent/admin/admin.h). */
#ifndef MESHCTL_AGENT_CLIENT_H
#define MESHCTL_AGENT_CLIENT_H

#include <jansson.h>

/* Sends `req` (the reference is stolen, as json_object_set_new does) and
 * returns the "result" of a successful response (a new
 * reference), or NULL after printing the agent's error or the transport
 * failure to stderr. */
json_t *agent_call(const char *socket_path, json_t *req);
/* The same, with the error in err[errlen] instead of on stderr. */
json_t *agent_call_err(const char *socket_path, json_t *req, char *err, size_t errlen);

#endif
