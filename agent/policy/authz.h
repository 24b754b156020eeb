/* AuthorizationPolicy evaluation with Istio's semantics, at the
 * destination, on the peer identity from mTLS and, for a request of an
 * HTTP connection, on the request itself.
 *
 * Input is the compiled form of the policies that apply to one workload
 * (root-namespace, namespace and selector-matched ones); compiling from the
 * Istio YAML model is the config module's job. Evaluation:
 *   1. any DENY policy with a matching rule denies;
 *   2. if any ALLOW policy applies, some ALLOW rule must match, else deny;
 *   3. otherwise allow.
 * AUDIT policies never change the decision; a match is reported.
 *
 * Matching follows Istio: values are exact, prefix ("x*"), suffix ("*x") or
 * presence ("*"); within a rule, `from`, `to` and `when` are ANDed, the
 * sources (or operations) of one clause are ORed, and inside a source the
 * fields are ANDed with their not-forms. An empty rule matches everything.
 *
 * L4 and L7. authz_request.http NULL is a connection (TCP, or a port not
 * served as HTTP): the HTTP-only fields (hosts, methods, paths, their
 * not-forms, requestPrincipals, `when` on request.headers) make an ALLOW
 * rule match nothing and are dropped from a DENY rule (it matches more
 * broadly), as Istio's ztunnel does. With `http` set the request is decided
 * with them, as Envoy's RBAC filter would (policy/authz_http.h): hosts
 * against the authority case-insensitively, methods and header values as
 * strings, paths against the normalized path (authz_path_normalize: the
 * caller normalizes http->path first) with Istio's {*} and {**}
 * templates. meshd validates no JWT (RequestAuthentication is not applied),
 * so a request has no request principal: `requestPrincipals` never matches
 * and `notRequestPrincipals` always does, as Envoy without a JWT filter.
 * What no request can decide here (remoteIpBlocks, request.auth.*
 * conditions, other keys) keeps the L4 treatment on HTTP too.
 *
 * A plaintext (PERMISSIVE) peer has no identity. As in ztunnel, where it is
 * the empty string, it matches no principal, namespace or service account
 * pattern, not even "*" (presence): positive fields (principals,
 * namespaces, serviceAccounts, `when` values on source.principal and
 * source.namespace) never match it, and their not-forms always do. So
 * `DENY from notNamespaces: [x]` denies plaintext, and `ALLOW from
 * principals: ["*"]` admits only authenticated peers. */
#ifndef MESHD_POLICY_AUTHZ_H
#define MESHD_POLICY_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cidr.h"
#include "http/message.h"
#include "meshd/capture.h"

enum authz_action { AUTHZ_ALLOW, AUTHZ_DENY, AUTHZ_AUDIT };

/* A list of Istio string patterns. */
struct authz_strings {
    const char *const *v;
    size_t n;
};

struct authz_cidrs {
    const struct cidr *v; /* ipBlocks entries: an address or CIDR */
    size_t n;
};

struct authz_ports {
    const uint16_t *v;
    size_t n;
};

/* A serviceAccounts entry: exact namespace and name (no wildcards). */
struct authz_service_account {
    const char *ns, *name;
};

struct authz_service_accounts {
    const struct authz_service_account *v;
    size_t n;
};

/* One entry of from[].source. Empty lists are "not set". */
struct authz_source {
    struct authz_strings principals, not_principals, namespaces, not_namespaces;
    struct authz_service_accounts service_accounts, not_service_accounts;
    struct authz_cidrs ip_blocks, not_ip_blocks;
    /* The principal's first segment, Istio's patterns (as its sidecars;
     * istiod sends ztunnel none). */
    struct authz_strings trust_domains, not_trust_domains;
    bool has_l7; /* remoteIpBlocks, notRemoteIpBlocks: decidable on no connection */
    /* requestPrincipals / notRequestPrincipals set: HTTP only (see above). */
    bool request_principals, not_request_principals;
};

/* One entry of to[].operation. hosts, methods and paths are HTTP only;
 * paths may be Istio templates ({*}, {**}; the decoder validated them). */
struct authz_operation {
    struct authz_ports ports, not_ports;
    struct authz_strings hosts, not_hosts, methods, not_methods, paths, not_paths;
};

enum authz_key {
    AUTHZ_KEY_SOURCE_IP,
    AUTHZ_KEY_SOURCE_NAMESPACE,
    AUTHZ_KEY_SOURCE_PRINCIPAL,
    AUTHZ_KEY_DESTINATION_IP,
    AUTHZ_KEY_DESTINATION_PORT,
    AUTHZ_KEY_REQUEST_HEADER, /* request.headers[NAME]: HTTP only */
    AUTHZ_KEY_L7,             /* any other key: decided on no connection */
};

struct authz_condition {
    enum authz_key key;
    const char *header; /* AUTHZ_KEY_REQUEST_HEADER: NAME (case-insensitive) */
    struct authz_strings values, not_values;
};

struct authz_rule {
    const struct authz_source *from;
    size_t nfrom;
    const struct authz_operation *to;
    size_t nto;
    const struct authz_condition *when;
    size_t nwhen;
};

struct authz_policy {
    const char *name; /* "namespace/name", for logs and records */
    enum authz_action action;
    const struct authz_rule *rules;
    size_t nrules; /* ALLOW with no rules matches nothing; DENY likewise */
};

/* The connection or request being decided. principal/namespace are NULL
 * for plaintext (PERMISSIVE) peers; the service account is read from the
 * principal. */
struct authz_request {
    const char *principal; /* "cluster.local/ns/x/sa/y" (Istio drops spiffe://) */
    const char *namespace_;
    struct meshd_addr source;      /* ip:port */
    struct meshd_addr destination; /* ip:port */
    /* A request of an HTTP connection (borrowed), its path normalized by
     * authz_path_normalize; NULL: an L4 connection. */
    const struct http_request_view *http;
    /* With http NULL: a connection whose requests are decided next, one
     * by one (authz_evaluate_connection sets it). */
    bool http_later;
};

struct authz_decision {
    bool allow;
    const struct authz_policy *by;    /* the deciding policy, NULL by default */
    const struct authz_policy *audit; /* an AUDIT policy that matched, if any */
};

void authz_evaluate(const struct authz_policy *policies, size_t n, const struct authz_request *req,
                    struct authz_decision *out);

/* The connection's part of the policies for a connection whose requests
 * authz_evaluate decides next (a port of unnamed protocol served per
 * request): what no request can change. A DENY rule denies only when it
 * matches whatever the requests are (a host, method, path or
 * request.headers field in an operation or condition of it leaves it to
 * the requests); ALLOW policies deny when no ALLOW rule could match any
 * request (those fields count as matching). requestPrincipals keep their
 * L4 treatment (no connection can decide them: an ALLOW never matches, a
 * DENY drops them), the stricter. So a denial here is one every request
 * would get, or that L4 gives; with no host, method, path or header field
 * in any policy it is exactly the L4 decision (authz_evaluate, http NULL). */
void authz_evaluate_connection(const struct authz_policy *policies, size_t n,
                               const struct authz_request *req, struct authz_decision *out);

#endif
