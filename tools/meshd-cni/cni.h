/* meshd-cni: a chained CNI plugin (spec 1.0 and 1.1) that tells meshd of
 * each pod sandbox the runtime creates or tears down, so the pod is
 * captured before its containers start.
 *
 * The pure parts live here (unit-tested): the runtime's environment and
 * CNI_ARGS, the network configuration on stdin, the versions, the
 * conflist edit of `meshd-cni install`. main.c does the I/O. */
#ifndef MESHD_CNI_H
#define MESHD_CNI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The spec's error codes (SPEC.md "Error"). */
enum cni_code {
    CNI_ERR_VERSION = 1,   /* incompatible CNI version */
    CNI_ERR_FIELD = 2,     /* unsupported field in the network configuration */
    CNI_ERR_CONTAINER = 3, /* unknown container */
    CNI_ERR_ENV = 4,       /* invalid necessary environment variables */
    CNI_ERR_IO = 5,        /* I/O failure */
    CNI_ERR_DECODE = 6,    /* failed to decode content */
    CNI_ERR_CONFIG = 7,    /* invalid network config */
    CNI_ERR_TRY_LATER = 11,
    CNI_ERR_UNAVAILABLE = 50, /* STATUS: the plugin is not available */
};

enum cni_cmd { CNI_ADD, CNI_DEL, CNI_CHECK, CNI_VERSION, CNI_STATUS, CNI_GC };

#define CNI_SOCKET_DEFAULT "/run/meshd/meshd.sock"

struct cni_req {
    enum cni_cmd cmd;
    const char *container_id, *netns, *ifname; /* borrowed from the environment */
    /* From CNI_ARGS; empty when the runtime is not Kubernetes' (not a pod). */
    char pod_ns[64], pod_name[254], pod_uid[64];
    json_t *conf;            /* stdin, owned (NULL for VERSION) */
    const char *cni_version; /* conf's, borrowed */
    const char *socket;      /* conf "socket", else CNI_SOCKET_DEFAULT */
    const json_t *prev;      /* conf "prevResult", borrowed, or NULL */
};

/* `getenv`-like lookup, so tests can give an environment. */
typedef const char *(*cni_env_fn)(const char *name);

/* Parses the command, the environment and (but for VERSION) the config.
 * 0, or a CNI error code with msg set; req->conf is freed on error. */
int cni_parse(cni_env_fn env, const char *stdin_text, size_t len, struct cni_req *req, char *msg,
              size_t msglen);
void cni_req_free(struct cni_req *req);

/* "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;...": the three pod keys into req,
 * validated (Kubernetes names, a UID of [0-9a-f-]). 0 or CNI_ERR_ENV. */
int cni_parse_args(const char *args, struct cni_req *req, char *msg, size_t msglen);

/* Whether this plugin supports a config's cniVersion. */
bool cni_version_supported(const char *v);
/* The VERSION answer (new reference). */
json_t *cni_version_result(void);
/* The error document (new reference). */
json_t *cni_error(const char *version, int code, const char *msg, const char *details);

/* ADD's result: the previous plugin's result, as the chain passes it on,
 * with the config's cniVersion (new reference), or NULL when there is no
 * prevResult (the plugin must be chained after an interface plugin). */
json_t *cni_add_result(const struct cni_req *req);

/* `install`: `list` (a conflist, or a single .conf turned into one) with
 * this plugin's entry last in "plugins" (replacing an older entry of
 * ours: idempotent). New reference, or NULL if `list` is neither. */
json_t *cni_conflist_insert(const json_t *list, const char *socket);
/* `uninstall`: our entry removed (new reference). */
json_t *cni_conflist_remove(const json_t *list);

#endif
