/* Admission: the one decision whether a connection may reach an enrolled
 * pod, for every entry point of the inbound side.
 *
 *   plaintext  a connection on 15006: PeerAuthentication (STRICT refuses
 *              plaintext), then AuthorizationPolicy without an identity;
 *   hbone      a CONNECT stream on 15008: AuthorizationPolicy with the
 *              peer's SPIFFE id (mTLS already verified it);
 *   revalidate an open plaintext connection after a reload: authorization
 *              only, as Istio re-evaluates policies, not the mTLS mode;
 *   request    one HTTP request of an admitted connection on a port served
 *              as HTTP (policy_admit_request): authorization with the
 *              request's L7 fields, its path normalized as Istio's default
 *              (policy/authz_http.h); the normalized path is the one to
 *              forward, as Istio forwards it. A connection whose requests
 *              are decided so is admitted with `per_request` set:
 *              PeerAuthentication still applies to it, AuthorizationPolicy
 *              waits for its requests (as Envoy's HTTP RBAC filter, not
 *              its network one, guards an HTTP port). On a port of
 *              unnamed protocol (`l4_first`) the connection first gets
 *              the part of the policies no request can change, refused
 *              as on L4; only the rest waits for the requests.
 *
 * Common to all three, in order: no configuration served yet denies (fail
 * closed: never less policy than the last good one); a pod whose identity
 * is unknown (pending, conflict) denies; the AuthorizationPolicies that
 * select the pod by its enrolled namespace and its Pod object's labels
 * (enroll/pod_source) are evaluated by policy/authz.
 *
 * policy_admit is pure (a snapshot in, a decision out) and so unit-tested
 * from one table; struct admit_gate is the agent's glue: the live snapshot
 * of a config store, the proxies' callback signatures, the denied counter
 * and the log lines. */
#ifndef MESHD_POLICY_ADMIT_H
#define MESHD_POLICY_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "enroll/pods.h"
#include "http/message.h"
#include "meshd/capture.h"
#include "proxy/inbound.h"

enum admit_entry { ADMIT_PLAINTEXT, ADMIT_HBONE, ADMIT_REVALIDATE };

enum admit_reason {
    ADMIT_NO_POLICY,      /* allowed: no AuthorizationPolicy selects the pod */
    ADMIT_POLICY_ALLOWED, /* allowed by the policies that select it */
    ADMIT_NO_CONFIG,      /* denied: no configuration served (fail closed) */
    ADMIT_POD_UNBOUND,    /* denied: the pod is pending or in conflict */
    ADMIT_MTLS_STRICT,    /* denied: plaintext to a STRICT port */
    ADMIT_POLICY_DENIED,  /* denied by a DENY policy, or no ALLOW matched */
    ADMIT_NO_MEMORY,      /* denied: the policies could not be gathered */
    ADMIT_PER_REQUEST,    /* allowed: authorization is decided per HTTP request */
    ADMIT_BAD_PATH,       /* denied: the request path is refused (answer 400) */
};

struct admit_request {
    enum admit_entry entry;
    const char *peer_id;   /* the client's SPIFFE id (hbone); NULL: plaintext */
    struct meshd_addr src; /* ip:port */
    struct meshd_addr dst; /* the pod's address and port */
    /* A connection whose requests policy_admit_request decides: no
     * AuthorizationPolicy at connection time. */
    bool per_request;
    /* With per_request: a port of unnamed protocol (served per request on
     * the source agent's word, or for an HTTP policy). The connection
     * first gets the policies' connection part (authz_evaluate_connection:
     * what no request can change, the L4 decision when no policy has an
     * HTTP field), as ztunnel would refuse it; its requests then the rest. */
    bool l4_first;
};

struct admit_decision {
    bool allow;
    enum admit_reason reason;
    enum cfg_mtls mtls; /* plaintext: the port's mode; else CFG_MTLS_UNSET */
    /* Istio's principal: the SPIFFE id without "spiffe://" (borrowed:
     * req->peer_id), NULL for plaintext; the namespace of a workload id
     * (pki_spiffe_parse), else "". */
    const char *principal;
    char ns[64];
    const char *by;    /* the deciding policy's "ns/name" (borrowed: snapshot), or NULL */
    const char *audit; /* an AUDIT policy that matched (borrowed), or NULL */
};

/* The PeerAuthentication mode for plaintext to `pod`'s `port`; STRICT when
 * `snap` is NULL (no configuration served) or the pod is unbound. */
enum cfg_mtls policy_mtls_mode(const struct cfg_snapshot *snap, const struct pod *pod,
                               uint16_t port);

/* Decides `req` for `pod` on `snap` (NULL: no configuration served). */
void policy_admit(const struct cfg_snapshot *snap, const struct pod *pod,
                  const struct admit_request *req, struct admit_decision *out);

/* Decides one HTTP request of a connection `req` describes (entry and
 * per_request are not read) on `snap`: configuration, binding, then the
 * AuthorizationPolicies on the request. The request's path is normalized
 * into `path` (`cap` bytes; 3 * strlen(http->path) + strlen(http->query)
 * + 2 always suffices):
 * when allowed it is the path to send the app (with "?" and the query, if
 * any). A path authz_path_normalize refuses, or one past `cap`, denies
 * with ADMIT_BAD_PATH. */
void policy_admit_request(const struct cfg_snapshot *snap, const struct pod *pod,
                          const struct admit_request *req, const struct http_request_view *http,
                          char *path, size_t cap, struct admit_decision *out);

/* Whether an AuthorizationPolicy selecting `pod` has a field only an HTTP
 * request has (hosts, methods, paths, request.headers): then its ports
 * are served per request at the destination, even unnamed ones. */
bool policy_needs_http(const struct cfg_snapshot *snap, const struct pod *pod);

const char *admit_reason_name(enum admit_reason r);

/* ---- the agent's gate ----------------------------------------------- */

struct cfg_store;
struct conn_record;

struct admit_gate {
    const struct cfg_store *config; /* borrowed */
    struct pods *pods;              /* borrowed; NULL until the registry exists */
    uint64_t denied;
};

/* inbound_opts.mtls_mode: policy_mtls_mode on the served snapshot. */
enum mtls_mode admit_gate_mtls(void *gate, const struct pod *pod, uint16_t port);
/* inbound_opts.authorize and mesh_opts.authorize: 0 or -EACCES; peer_id
 * NULL is plaintext. Logs (rate-limited) and counts denials. */
int admit_gate_authorize(void *gate, const struct pod *pod, const char *peer_id,
                         const struct meshd_addr *src, const struct meshd_addr *dst);
/* The admission of a connection to a port served as HTTP, whose requests
 * then go through admit_gate_authorize_request: admit_gate_authorize with
 * per_request set (PeerAuthentication, configuration and binding only).
 * 0 or -EACCES. */
int admit_gate_authorize_http_connection(void *gate, const struct pod *pod, const char *peer_id,
                                         const struct meshd_addr *src,
                                         const struct meshd_addr *dst);
/* The admission of a connection to a port of unnamed protocol served per
 * request: admit_gate_authorize_http_connection, then the policies'
 * connection part (admit_request.l4_first): refused (-EACCES, reset or
 * 401) as on L4 when a DENY matches whatever the requests are or no ALLOW
 * could match. 0 or -EACCES. */
int admit_gate_authorize_sniffed_connection(void *gate, const struct pod *pod, const char *peer_id,
                                            const struct meshd_addr *src,
                                            const struct meshd_addr *dst);
/* The HTTP carrier, per request at the destination: 0 (forward it with
 * `path`, see policy_admit_request), -EACCES (answer 403 "RBAC: access
 * denied"), -EINVAL (answer 400: the path is refused). Logs (rate-limited)
 * and counts denials. */
int admit_gate_authorize_request(void *gate, const struct pod *pod, const char *peer_id,
                                 const struct meshd_addr *src, const struct meshd_addr *dst,
                                 const struct http_request_view *http, char *path, size_t cap);
/* conns_revalidate's keep: a relayed plaintext inbound connection still
 * allowed by the served configuration? */
bool admit_gate_keep_plaintext(void *gate, const struct conn_record *rec);

#endif
