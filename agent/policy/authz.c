/* AuthorizationPolicy evaluation, L4 and per HTTP request (see authz.h;
 * the HTTP matchers are policy/authz_http). */
#include "policy/authz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/pattern.h"
#include "policy/authz_http.h"

/* The peer's identity against one pattern. A plaintext peer has none: it
 * matches no pattern, so a list never matches it and its not-form always
 * does (ztunnel: the empty identity, which no valid pattern matches). */
static bool principal_is(const char *pattern, const struct authz_request *r)
{
    return r->principal && pattern_match(pattern, r->principal);
}

static bool namespace_is(const char *pattern, const struct authz_request *r)
{
    return r->namespace_ && pattern_match(pattern, r->namespace_);
}

static bool any_principal(const struct authz_strings *l, const struct authz_request *r)
{
    for (size_t i = 0; i < l->n; i++)
        if (principal_is(l->v[i], r))
            return true;
    return false;
}

static bool any_namespace(const struct authz_strings *l, const struct authz_request *r)
{
    for (size_t i = 0; i < l->n; i++)
        if (namespace_is(l->v[i], r))
            return true;
    return false;
}

/* "<trust domain>/ns/<ns>/sa/<name>" names exactly this account; the trust
 * domain is not compared (ztunnel's ServiceAccountMatch). pki_verify_peer
 * admitted only Kubernetes names, which contain no '/'. */
static bool service_account_is(const struct authz_service_account *sa,
                               const struct authz_request *r)
{
    if (!r->principal)
        return false;
    const char *ns = strchr(r->principal, '/');
    size_t nl = strlen(sa->ns);
    if (!ns || strncmp(ns, "/ns/", 4) != 0)
        return false;
    ns += 4;
    return strncmp(ns, sa->ns, nl) == 0 && strncmp(ns + nl, "/sa/", 4) == 0 &&
           strcmp(ns + nl + 4, sa->name) == 0;
}

static bool any_service_account(const struct authz_service_accounts *l,
                                const struct authz_request *r)
{
    for (size_t i = 0; i < l->n; i++)
        if (service_account_is(&l->v[i], r))
            return true;
    return false;
}

static bool any_cidr(const struct authz_cidrs *l, const struct meshd_addr *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (cidr_contains(&l->v[i], a))
            return true;
    return false;
}

static bool any_port(const struct authz_ports *l, uint16_t port)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == port)
            return true;
    return false;
}

/* The peer's trust domain (the principal up to its first '/') against one
 * pattern; a plaintext peer has none and matches no pattern, as above. */
static bool trust_domain_is(const char *pattern, const struct authz_request *r)
{
    if (!r->principal)
        return false;
    char td[256];
    size_t n = strcspn(r->principal, "/");
    if (n >= sizeof(td))
        return false;
    memcpy(td, r->principal, n);
    td[n] = '\0';
    return pattern_match(pattern, td);
}

static bool any_trust_domain(const struct authz_strings *l, const struct authz_request *r)
{
    for (size_t i = 0; i < l->n; i++)
        if (trust_domain_is(l->v[i], r))
            return true;
    return false;
}

static bool source_matches(const struct authz_source *s, const struct authz_request *r,
                           enum authz_action action)
{
    bool undecidable =
        s->has_l7 || (!r->http && (s->request_principals || s->not_request_principals));
    if (undecidable && action == AUTHZ_ALLOW)
        return false; /* cannot be proven here: an ALLOW must not widen */
    if (r->http && s->request_principals)
        return false; /* no JWT is validated: a request has no request principal */
    if (s->principals.n && !any_principal(&s->principals, r))
        return false;
    if (s->not_principals.n && any_principal(&s->not_principals, r))
        return false;
    if (s->namespaces.n && !any_namespace(&s->namespaces, r))
        return false;
    if (s->not_namespaces.n && any_namespace(&s->not_namespaces, r))
        return false;
    if (s->service_accounts.n && !any_service_account(&s->service_accounts, r))
        return false;
    if (s->not_service_accounts.n && any_service_account(&s->not_service_accounts, r))
        return false;
    if (s->ip_blocks.n && !any_cidr(&s->ip_blocks, &r->source))
        return false;
    if (s->trust_domains.n && !any_trust_domain(&s->trust_domains, r))
        return false;
    if (s->not_trust_domains.n && any_trust_domain(&s->not_trust_domains, r))
        return false;
    if (s->not_ip_blocks.n && any_cidr(&s->not_ip_blocks, &r->source))
        return false;
    return true;
}

/* An HTTP-only list against the request: "not set" matches, an L4
 * connection never gets here (operation_matches). */
typedef bool (*l7_match_fn)(const char *pattern, const char *value);

static bool any_l7(const struct authz_strings *l, l7_match_fn match, const char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (match(l->v[i], value))
            return true;
    return false;
}

static bool l7_field(const struct authz_strings *yes, const struct authz_strings *no,
                     l7_match_fn match, const char *value)
{
    if (yes->n && !any_l7(yes, match, value))
        return false;
    return !(no->n && any_l7(no, match, value));
}

static bool operation_has_l7(const struct authz_operation *o)
{
    return o->hosts.n || o->not_hosts.n || o->methods.n || o->not_methods.n || o->paths.n ||
           o->not_paths.n;
}

static bool operation_matches(const struct authz_operation *o, const struct authz_request *r,
                              enum authz_action action)
{
    /* HTTP-only fields on a connection: decided now, an ALLOW never and a
     * DENY always (dropped below); left to the requests (http_later), an
     * ALLOW may match and a DENY does not yet. */
    if (!r->http && operation_has_l7(o) && (action == AUTHZ_ALLOW) != r->http_later)
        return false;
    uint16_t port = ntohs(r->destination.port);
    if (o->ports.n && !any_port(&o->ports, port))
        return false;
    if (o->not_ports.n && any_port(&o->not_ports, port))
        return false;
    if (!r->http)
        return true;
    const struct http_request_view *h = r->http;
    return l7_field(&o->hosts, &o->not_hosts, authz_host_match, h->authority) &&
           l7_field(&o->methods, &o->not_methods, pattern_match, h->method) &&
           l7_field(&o->paths, &o->not_paths, authz_path_match, h->path);
}

/* A `when` value against an address: an IP or CIDR pattern. */
static bool value_matches_addr(const char *v, const struct meshd_addr *a)
{
    struct cidr c;
    return cidr_parse(v, &c) == 0 && cidr_contains(&c, a);
}

static bool value_matches(const struct authz_condition *c, const char *v,
                          const struct authz_request *r)
{
    char port[8];
    switch (c->key) {
    case AUTHZ_KEY_SOURCE_IP:
        return value_matches_addr(v, &r->source);
    case AUTHZ_KEY_DESTINATION_IP:
        return value_matches_addr(v, &r->destination);
    case AUTHZ_KEY_SOURCE_NAMESPACE:
        return namespace_is(v, r);
    case AUTHZ_KEY_SOURCE_PRINCIPAL:
        return principal_is(v, r);
    case AUTHZ_KEY_DESTINATION_PORT:
        snprintf(port, sizeof(port), "%u", ntohs(r->destination.port));
        return pattern_match(v, port);
    case AUTHZ_KEY_REQUEST_HEADER:
        return r->http && c->header && authz_header_match(r->http, c->header, v);
    case AUTHZ_KEY_L7:
        break;
    }
    return false;
}

static bool condition_matches(const struct authz_condition *c, const struct authz_request *r,
                              enum authz_action action)
{
    if (c->key == AUTHZ_KEY_REQUEST_HEADER && !r->http && r->http_later)
        return action == AUTHZ_ALLOW; /* the requests decide: an ALLOW may match */
    if (c->key == AUTHZ_KEY_L7 || (c->key == AUTHZ_KEY_REQUEST_HEADER && !r->http))
        return action != AUTHZ_ALLOW; /* dropped from DENY, never true in ALLOW */
    bool any = false;
    for (size_t i = 0; i < c->values.n && !any; i++)
        any = value_matches(c, c->values.v[i], r);
    if (c->values.n && !any)
        return false;
    for (size_t i = 0; i < c->not_values.n; i++)
        if (value_matches(c, c->not_values.v[i], r))
            return false;
    return true;
}

static bool rule_matches(const struct authz_rule *rule, const struct authz_request *r,
                         enum authz_action action)
{
    if (rule->nfrom) {
        bool any = false;
        for (size_t i = 0; i < rule->nfrom && !any; i++)
            any = source_matches(&rule->from[i], r, action);
        if (!any)
            return false;
    }
    if (rule->nto) {
        bool any = false;
        for (size_t i = 0; i < rule->nto && !any; i++)
            any = operation_matches(&rule->to[i], r, action);
        if (!any)
            return false;
    }
    for (size_t i = 0; i < rule->nwhen; i++)
        if (!condition_matches(&rule->when[i], r, action))
            return false;
    return true;
}

static bool policy_matches(const struct authz_policy *p, const struct authz_request *r)
{
    /* AUDIT rules are matched like ALLOW ones: they only report. */
    enum authz_action as = p->action == AUTHZ_DENY ? AUTHZ_DENY : AUTHZ_ALLOW;
    for (size_t i = 0; i < p->nrules; i++)
        if (rule_matches(&p->rules[i], r, as))
            return true;
    return false;
}

void authz_evaluate(const struct authz_policy *policies, size_t n, const struct authz_request *req,
                    struct authz_decision *out)
{
    *out = (struct authz_decision){.allow = true};
    for (size_t i = 0; i < n; i++)
        if (policies[i].action == AUTHZ_AUDIT && !out->audit && policy_matches(&policies[i], req))
            out->audit = &policies[i];
    for (size_t i = 0; i < n; i++) {
        if (policies[i].action == AUTHZ_DENY && policy_matches(&policies[i], req)) {
            out->allow = false;
            out->by = &policies[i];
            return;
        }
    }
    bool any_allow = false;
    for (size_t i = 0; i < n; i++) {
        if (policies[i].action != AUTHZ_ALLOW)
            continue;
        any_allow = true;
        if (policy_matches(&policies[i], req)) {
            out->by = &policies[i];
            return;
        }
    }
    if (any_allow)
        out->allow = false; /* ALLOW policies apply and none matched */
}

void authz_evaluate_connection(const struct authz_policy *policies, size_t n,
                               const struct authz_request *req, struct authz_decision *out)
{
    struct authz_request later = *req;
    later.http = NULL;
    later.http_later = true;
    authz_evaluate(policies, n, &later, out);
}
