/* Enrolled pods: the agent's registry of the network namespaces it captures.
 *
 * Enrolling a pod opens its netns, records the netns cookie in the BPF
 * enrollment map and lets the proxies open their in-pod listeners (through
 * hooks, so this module knows nothing of them). The registry is persisted in
 * the state directory so an agent that died can take its pods back. */
#ifndef MESHD_ENROLL_PODS_H
#define MESHD_ENROLL_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/capture.h"

struct capture;

#define POD_NS_MAX   63  /* DNS-1123 label */
#define POD_NAME_MAX 253 /* DNS-1123 subdomain */

#define POD_MAX_IPS 4

/* What enrollment is told about a pod (by meshctl, or a CNI plugin: the
 * runtime knows the namespace, the name and the netns). The service account
 * and IPs are claims, checked against the Pod object (enroll/pod_source). */
struct pod_spec {
    const char *ref; /* namespace/name */
    const char *netns_path;
    const char *sa; /* claimed service account, or NULL */
    struct meshd_addr ips[POD_MAX_IPS];
    size_t nips;
};

/* Whose word the pod's identity rests on (enroll/pod_source.h). */
enum pod_binding {
    POD_PENDING,    /* no Pod object, no service account given: fail closed */
    POD_BY_CALLER,  /* no Pod object: the service account as enrolled */
    POD_BY_CLUSTER, /* the Pod object: service account, IPs, labels */
    POD_CONFLICT,   /* the Pod object contradicts the claims: fail closed */
};

const char *pod_binding_name(enum pod_binding b);

struct outbound_pod;
struct inbound_pod;
struct hi_pod;
struct pod_identity;

struct pod {
    uint32_t id;
    char ns[POD_NS_MAX + 1];
    char name[POD_NAME_MAX + 1];
    /* Effective identity and addresses, set by the binder (sa empty while
     * pending); the claims are what the enrolling caller said. */
    char sa[POD_NAME_MAX + 1];
    struct meshd_addr ips[POD_MAX_IPS]; /* ports 0 */
    size_t nips;
    enum pod_binding binding;
    char binding_why[192];
    char claimed_sa[POD_NAME_MAX + 1]; /* empty: not claimed */
    struct meshd_addr claimed_ips[POD_MAX_IPS];
    size_t nclaimed_ips;
    char netns_path[256];
    int netns_fd;
    uint64_t netns_cookie;
    /* Per-pod module state, one typed slot per module that attaches to
     * pods (as nginx's per-module contexts): each type is opaque here,
     * defined and owned by its module's hooks, set at attach, NULL after
     * detach. No module reads another's slot. */
    struct outbound_pod *outbound; /* proxy/outbound.c */
    struct inbound_pod *inbound;   /* proxy/inbound.c */
    struct hi_pod *hbone;          /* proxy/hbone_inbound.c: the pod's 15008 server */
    struct pod_identity *identity; /* mesh/identity.c: certificate, TLS contexts */
    /* Set before the hooks detach when the agent stops rather than the pod
     * leaving: they release the agent's side but keep what the kernel
     * enforces (pinned sk_lookup links) for the next agent. */
    bool handover;
    /* The pod's routing returns the app's replies to meshd's transparent
     * sockets (core/podroute): the app sees its real clients. */
    bool app_source_transparent;
    int app_source_self_map; /* borrowed: the pod's meshd_in_self (inbound hooks) */
    struct pod *next;
};

#define PODS_MAX_HOOKS 5

/* Attached in order at enrollment, detached in reverse. */
struct pod_hooks {
    /* Opens the pod's listeners; returns 0 or -errno. */
    int (*attach)(void *ctx, struct pod *pod);
    void (*detach)(void *ctx, struct pod *pod);
    /* Optional: stop accepting new connections into the pod's listeners;
     * open ones go on (the drain before a stop). Detach still follows. */
    void (*quiesce)(void *ctx, struct pod *pod);
    void *ctx;
};

struct pods;

/* Sets a pod's binding and effective identity from its claims (the agent
 * binds against the live configuration: enroll/pod_source). */
typedef enum pod_binding (*pod_bind_fn)(void *ctx, struct pod *pod);
/* Told when a rebind changed a pod's binding or service account. */
typedef void (*pod_rebound_fn)(void *ctx, struct pod *pod);

/* `capture` is borrowed. `state_file` may be NULL (no persistence). */
int pods_new(struct capture *capture, const char *state_file, const struct pod_hooks *hooks,
             size_t nhooks, struct pods **out);
/* Frees the registry. Accepts NULL. With `handover` (the agent stops:
 * SIGTERM, a failed start) the pods stay enrolled in the kernel: BPF map
 * entries, pinned links and the state file are kept, so they fail closed
 * until the next agent restores them. Without it every pod is unenrolled
 * (map entry, listeners, pins) and the state file is removed. */
void pods_free(struct pods *p, bool handover);
/* Every pod's listeners stop accepting (quiesce hooks); open connections
 * and enrollment stay. The drain before pods_free(p, true). */
void pods_quiesce(struct pods *p);

/* Sets the pod's effective service account and IPs to what it claimed. */
void pod_take_claims(struct pod *pod);
/* Without a binder a pod is bound by its claims alone (unit tests). */
void pods_set_binder(struct pods *p, pod_bind_fn bind, void *ctx);
/* Binds every pod again (a new configuration); `rebound` hears of those
 * whose binding or service account changed. */
void pods_rebind(struct pods *p, pod_rebound_fn rebound, void *ctx);

/* Splits "namespace/name" and validates both as Kubernetes names. */
int pods_parse_ref(const char *ref, char *ns, char *name);

/* Errors are -errno with a human message in err[errlen]. */
int pods_enroll(struct pods *p, const struct pod_spec *spec, char *err, size_t errlen);
int pods_unenroll(struct pods *p, const char *ref, char *err, size_t errlen);
/* Re-enrolls the pods of the state file; those whose netns is gone are
 * dropped with a warning. Prunes BPF enrollments not restored. */
int pods_restore(struct pods *p);

const struct pod *pods_first(const struct pods *p);
/* The enrolled pod with this address (port ignored), or NULL. */
const struct pod *pods_find_ip(const struct pods *p, const struct meshd_addr *ip);
size_t pods_count(const struct pods *p);

#endif
