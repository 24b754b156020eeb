/* Schema-driven decoding of YAML nodes into the typed model (internal to
 * the config module).
 *
 * Every helper takes the field's name, so a failure reads
 *   "spec.http[0].route[1].weight: expected an integer, got a mapping"
 * at the node's file:line:col. A failure marks the resource rejected and
 * decoding goes on, so one pass reports every problem. Unknown fields are
 * warnings. Every node visited costs one unit of a budget, which bounds
 * the work an alias-heavy document can cause. */
#ifndef MESHD_CONFIG_DECODE_H
#define MESHD_CONFIG_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/diag.h"
#include "config/model.h"
#include "config/yaml.h"
#include "core/arena.h"

struct cfg_dec {
    struct arena *arena; /* where decoded values live (the snapshot's) */
    struct cfg_diags *diags;
    const char *file;
    struct cfg_meta *meta; /* the resource being decoded */
    char path[256];
    size_t pathlen;
    size_t budget; /* nodes this document may still visit */
    bool failed;   /* the resource has an error: it is not applied */
};

/* A map key is `name`; where a node is, for a model position. */
static inline bool dec_is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}
static inline struct cfg_pos dec_here(const struct cfg_dec *d, const struct ynode *n)
{
    return (struct cfg_pos){d->file, n->line, n->col};
}

void dec_error(struct cfg_dec *d, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dec_warn(struct cfg_dec *d, const struct ynode *at, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Path bookkeeping: push returns a mark for pop. */
size_t dec_push(struct cfg_dec *d, const char *field);
size_t dec_push_index(struct cfg_dec *d, size_t i);
void dec_pop(struct cfg_dec *d, size_t mark);

/* Iterates a mapping's pairs: for (size_t i = 0; dec_each(d, n, &i, &k, &v);).
 * A null node iterates nothing; anything but a mapping is an error. */
bool dec_each(struct cfg_dec *d, const struct ynode *map, size_t *i, const char **key,
              const struct ynode **value);
void dec_unknown(struct cfg_dec *d, const char *key, const struct ynode *value);

/* Sequences: the arena array for n elements (NULL with *n 0 for null). */
void *dec_seq(struct cfg_dec *d, const struct ynode *v, const char *field, size_t elem, size_t *n);

/* Decodes each element of a list with `fn`, path "field[i]". */
#define DECODE_LIST(d, v, field, type, fn, out, nout)                                              \
    do {                                                                                           \
        size_t n_;                                                                                 \
        type *arr_ = dec_seq((d), (v), (field), sizeof(type), &n_);                                \
        size_t m_ = dec_push((d), (field));                                                        \
        for (size_t j_ = 0; arr_ && j_ < n_; j_++) {                                               \
            size_t mi_ = dec_push_index((d), j_);                                                  \
            fn((d), (v)->seq.v[j_], &arr_[j_]);                                                    \
            dec_pop((d), mi_);                                                                     \
        }                                                                                          \
        dec_pop((d), m_);                                                                          \
        (out) = arr_;                                                                              \
        (nout) = n_;                                                                               \
    } while (0)

/* Scalars. A null node leaves *out untouched and succeeds. */
bool dec_str(struct cfg_dec *d, const struct ynode *v, const char *field, const char **out);
bool dec_uint(struct cfg_dec *d, const struct ynode *v, const char *field, uint64_t max,
              uint32_t *out);
bool dec_port(struct cfg_dec *d, const struct ynode *v, const char *field, uint16_t *out);
bool dec_bool(struct cfg_dec *d, const struct ynode *v, const char *field, bool *out);
/* Protobuf/Go durations: "1.5s", "100ms", "1h30m"; > 0 and < 10 years. */
bool dec_duration(struct cfg_dec *d, const struct ynode *v, const char *field, uint64_t *ns);
bool dec_ip(struct cfg_dec *d, const struct ynode *v, const char *field, struct meshd_addr *out);
bool dec_ips(struct cfg_dec *d, const struct ynode *v, const char *field, struct cfg_ips *out);
/* One of `names` (NULL-terminated): *out is its index. */
bool dec_enum(struct cfg_dec *d, const struct ynode *v, const char *field, const char *const *names,
              int *out);

/* Collections of scalars. */
bool dec_strs(struct cfg_dec *d, const struct ynode *v, const char *field, struct cfg_strs *out);
bool dec_labels(struct cfg_dec *d, const struct ynode *v, const char *field,
                struct cfg_labels *out);
/* {matchLabels: {...}}, Istio's WorkloadSelector and Kubernetes' LabelSelector. */
bool dec_match_labels(struct cfg_dec *d, const struct ynode *v, const char *field,
                      struct cfg_selector *out);

/* Parsing helpers shared with the analyzers and tests. */
int cfg_parse_duration(const char *s, uint64_t *ns);
bool cfg_valid_dns_label(const char *s);     /* RFC 1123 label, <= 63 */
bool cfg_valid_dns_subdomain(const char *s); /* RFC 1123 subdomain, <= 253 */

/* Shared by the VirtualService decoders (decode_istio.c, decode_http*.c). */
void dec_destination(struct cfg_dec *d, const struct ynode *n, struct cfg_destination *dst);
/* `headers` NULL: a tcp[] destination, which has none. */
void dec_route_destination(struct cfg_dec *d, const struct ynode *n,
                           struct cfg_route_destination *rd, struct cfg_headers *headers);
/* An L4 field of a match (port, sourceLabels, ...): false if k is not one. */
bool dec_l4_match_field(struct cfg_dec *d, const char *k, const struct ynode *v,
                        struct cfg_match *mt);
/* One http[] entry, everything in config/model_http.h (decode_http.c). */
void decode_http_route(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r);
/* HeaderOperations {request, response} (decode_http.c). */
void dec_http_headers(struct cfg_dec *d, const struct ynode *n, struct cfg_headers *out);
/* An RFC 7230 token (a header name); a lower-case copy in the snapshot
 * arena (decode_http.c). */
bool dec_valid_header_name(const char *s);
char *dec_lower_dup(struct cfg_dec *d, const char *s);
/* A StringMatch; regexes compiled into the snapshot (decode_http.c). */
void dec_str_match(struct cfg_dec *d, const struct ynode *v, const char *field,
                   struct cfg_str_match *out);
/* A regex (RE2 syntax) compiled with PCRE2, freed with the arena; NULL
 * after an error at `at` (decode_http.c). */
void *dec_regex(struct cfg_dec *d, const struct ynode *at, const char *pattern);
/* The actions of an http[] entry (decode_http_actions.c): false if k is
 * not one of them. */
bool dec_http_action(struct cfg_dec *d, const char *k, const struct ynode *v, struct cfg_route *r,
                     struct cfg_http_route *h);
/* fault; mirror, mirrorPercentage (and legacy percents), mirrors[]
 * (decode_http_fault.c). */
void dec_http_fault(struct cfg_dec *d, const struct ynode *n, struct cfg_http_fault *f);
void dec_http_mirrors(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r,
                      struct cfg_http_route *h);
/* Istio's checks across an http[] entry's fields, after decoding. */
void dec_http_check(struct cfg_dec *d, const struct ynode *n, const struct cfg_route *r,
                    const struct cfg_http_route *h);

/* A VirtualService's tls[] routes; a Secret's PEM entry (data or
 * stringData) (decode_gateway.c). */
void dec_tls_routes(struct cfg_dec *d, const struct ynode *v, struct cfg_virtual_service *vs);
void dec_secret_entry(struct cfg_dec *d, const char *section, const char *k, const struct ynode *v,
                      struct cfg_secret *s);

/* DestinationRule connectionPool.http (decode_pool.c). */
void dec_http_pool(struct cfg_dec *d, const struct ynode *n, struct cfg_http_pool *p);

/* Telemetry providers: [{name}] (each name non-empty), into out; and one
 * tracing[] entry (decode_tracing.c). */
void dec_provider_names(struct cfg_dec *d, const struct ynode *v, const char *k,
                        struct cfg_strs *out);
void dec_tracing(struct cfg_dec *d, const struct ynode *n, struct cfg_tracing *t);

/* Per-kind decoders (decode_k8s.c, decode_istio.c, decode_security.c):
 * `spec` is the document's spec (or the whole document for kinds without
 * one); they fill the kind's struct, whose meta is already set. */
typedef void (*cfg_decode_fn)(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_namespace(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_service(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_pod(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_deployment(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_secret(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_gateway(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_virtual_service(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_destination_rule(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_service_entry(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_workload_entry(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_peer_authentication(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_authorization_policy(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_telemetry(struct cfg_dec *d, const struct ynode *doc, void *out);
/* gateway.networking.k8s.io (decode_gateway_api.c, decode_httproute.c). */
void decode_k8s_gateway(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_reference_grant(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_http_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_tls_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out);
void decode_tcp_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out);
/* An HTTPRoute rule's filters, as decoded (decode_httproute_filters.c);
 * dec_gwapi_filter adds one filters[] entry. */
struct dec_gwapi_filters {
    struct cfg_headers headers;
    struct cfg_http_redirect redirect;
    struct cfg_http_rewrite rewrite;
    const char *rewrite_prefix; /* URLRewrite ReplacePrefixMatch */
    const char *rewrite_full;   /* URLRewrite ReplaceFullPath */
    struct cfg_gwapi_ref *mirrors;
    size_t nmirrors;
    unsigned seen; /* bit per filter type: each at most once */
};
void dec_gwapi_filter(struct cfg_dec *d, const struct ynode *n, struct dec_gwapi_filters *f);
/* HTTPHeaderName: an RFC 7230 token of at most 256 characters. */
bool dec_gwapi_header_name(const char *s);
/* A Gateway API object reference (parentRefs, backendRefs, certificateRefs). */
void dec_gwapi_ref(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_ref *r);
/* The Gateway API's Hostname: lower case, an optional "*." first, no IP. */
bool cfg_gwapi_valid_hostname(const char *h);

#endif
