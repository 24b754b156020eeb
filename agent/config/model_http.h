/* The HTTP parts of VirtualService http[] routes (networking.istio.io),
 * decoded into the snapshot arena like the rest of config/model.h, which
 * includes this. What the HTTP carrier applies per request: matches on the
 * request, rewrites, header edits, redirects, direct responses, faults,
 * mirrors, retries and CORS. A route decoded from tcp[] has none. */
#ifndef MESHD_CONFIG_MODEL_HTTP_H
#define MESHD_CONFIG_MODEL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Included by model.h after the types used here (cfg_kv, cfg_strs,
 * cfg_destination); including it first includes model.h. */
#include "config/model.h"

/* StringMatch: exact, prefix or regex (RE2 syntax, compiled with PCRE2 at
 * load; a pattern PCRE2 refuses, or one using what RE2 lacks, is a load
 * error). `set` false: the match was not given. */
enum cfg_str_match_kind { CFG_STR_EXACT, CFG_STR_PREFIX, CFG_STR_REGEX };

struct cfg_str_match {
    bool set;
    enum cfg_str_match_kind kind;
    const char *value; /* exact / prefix text, or the regex source */
    void *regex;       /* REGEX: compiled pcre2_code, owned by the snapshot */
};

struct cfg_header_match {
    const char *name;       /* lower case */
    struct cfg_str_match m; /* m.set false: presence only ({}) */
};

struct cfg_header_matches {
    const struct cfg_header_match *v;
    size_t n;
};

/* The L7 half of one HTTPMatchRequest (its L4 half is struct cfg_match). */
struct cfg_http_match {
    const char *name;
    struct cfg_str_match uri, scheme, method, authority;
    struct cfg_header_matches headers, without_headers, query_params;
    bool ignore_uri_case;
};

/* HeaderOperations. */
struct cfg_header_ops {
    const struct cfg_kv *set, *add;
    size_t nset, nadd;
    struct cfg_strs remove;
};

struct cfg_headers {
    struct cfg_header_ops request, response;
};

enum cfg_retry_on {
    CFG_RETRY_5XX = 1u << 0,
    CFG_RETRY_GATEWAY_ERROR = 1u << 1, /* 502, 503, 504 */
    CFG_RETRY_RESET = 1u << 2,
    CFG_RETRY_CONNECT_FAILURE = 1u << 3,
    CFG_RETRY_REFUSED_STREAM = 1u << 4,
    CFG_RETRY_RETRIABLE_4XX = 1u << 5,    /* 409 */
    CFG_RETRY_RETRIABLE_STATUS = 1u << 6, /* the codes in retriable_codes */
    CFG_RETRY_UNAVAILABLE = 1u << 7,      /* gRPC status 14 */
    CFG_RETRY_CANCELLED = 1u << 8,
    CFG_RETRY_DEADLINE_EXCEEDED = 1u << 9,
    CFG_RETRY_RESOURCE_EXHAUSTED = 1u << 10,
};

struct cfg_http_retry {
    bool set;
    uint32_t attempts; /* retries after the first try */
    uint64_t per_try_timeout_ns;
    uint32_t retry_on;               /* enum cfg_retry_on; unset: Istio's default
                                        "connect-failure,refused-stream,unavailable,cancelled,503" */
    const uint16_t *retriable_codes; /* retriable-status-codes and bare numbers */
    size_t ncodes;
};

struct cfg_http_redirect {
    bool set;
    const char *uri, *authority, *scheme; /* NULL: keep the request's */
    uint32_t port;                        /* 0: keep */
    uint32_t code;                        /* redirectCode; 0: 301 */
};

struct cfg_http_rewrite {
    bool set;
    const char *uri; /* replaces the matched prefix (or the whole path for exact/regex) */
    const char *authority;
    const char *regex_match, *regex_rewrite; /* uriRegexRewrite */
    void *regex;                             /* compiled regex_match */
};

struct cfg_http_direct {
    bool set;
    uint32_t status;
    const char *body; /* body.string or decoded body.bytes; NULL: none */
    size_t body_len;
};

/* Percentages are per million (Istio's percentage.value is a double). */
struct cfg_http_fault {
    bool delay_set;
    uint64_t delay_ns;
    uint32_t delay_ppm; /* unset percentage: 100% */
    bool abort_set;
    uint32_t abort_status;     /* httpStatus */
    int32_t abort_grpc_status; /* grpcStatus as a code; -1: none */
    uint32_t abort_ppm;
};

struct cfg_http_mirror {
    struct cfg_destination dest;
    uint32_t ppm; /* mirrorPercentage; unset: 100% */
};

struct cfg_cors {
    bool set;
    const struct cfg_str_match *allow_origins;
    size_t norigins;
    struct cfg_strs allow_methods, allow_headers, expose_headers;
    uint64_t max_age_s;
    bool allow_credentials, has_allow_credentials;
};

/* Everything of one http[] route beyond its destinations. Destination
 * headers live beside each destination in `dest_headers` (index as the
 * route's dest[]). */
struct cfg_http_route {
    const struct cfg_http_match *match; /* parallel to the route's match[] */
    struct cfg_http_retry retries;
    uint64_t timeout_ns; /* 0: none (Istio: disabled) */
    struct cfg_http_rewrite rewrite;
    struct cfg_http_redirect redirect;
    struct cfg_http_direct direct;
    struct cfg_http_fault fault;
    const struct cfg_http_mirror *mirrors; /* mirror (+ mirrorPercentage) and mirrors[] */
    size_t nmirrors;
    struct cfg_headers headers;
    const struct cfg_headers *dest_headers; /* NULL or one per destination */
    struct cfg_cors cors;
};

#endif
