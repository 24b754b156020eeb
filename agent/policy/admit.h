/* Admission: the one decision whether a connection may reach an enrolled
 * pod, for every entry point of the inbound side.
 *
 *   plaintext  a connection on 15006: PeerAuthentication (STRICT refuses
 *              plaintext), then AuthorizationPolicy without an identity;
 *   hbone      a CONNECT stream on 15008: AuthorizationPolicy with the
 *              peer's SPIFFE id (mTLS already verified it);
 *   revalidate an open plaintext connection after a reload: authorization
 *              only, as Istio re-evaluates policies, not the mTLS mode.
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
};

struct admit_request {
    enum admit_entry entry;
    const char *peer_id;   /* the client's SPIFFE id (hbone); NULL: plaintext */
    struct meshd_addr src; /* ip:port */
    struct meshd_addr dst; /* the pod's address and port */
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
/* conns_revalidate's keep: a relayed plaintext inbound connection still
 * allowed by the served configuration? */
bool admit_gate_keep_plaintext(void *gate, const struct conn_record *rec);

#endif
