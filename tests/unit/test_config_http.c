/* Decoding VirtualService http[] into config/model_http.h
 * (agent/config/decode_http*.c): every field's value, Istio's defaults,
 * and each of Istio's validation rules as a load error at file:line:col;
 * RE2-only regexes compiled at load and freed with the snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define VS_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"                                   \
    "metadata: {name: r, namespace: shop}\nspec:\n  hosts: [payments]\n"

struct loaded {
    struct cfg_diags diags;
    struct cfg_snapshot *snap;
    const struct cfg_virtual_service *vs;
};

static void load(struct loaded *l, const char *yaml)
{
    memset(l, 0, sizeof(*l));
    cfg_diags_init(&l->diags);
    assert_int_equal(cfg_load_buffer("input.yaml", yaml, strlen(yaml), NULL, &l->diags, &l->snap),
                     0);
    l->vs = cfg_find(l->snap, CFG_VIRTUAL_SERVICE, "shop", "r");
}

static void unload(struct loaded *l)
{
    cfg_snapshot_unref(l->snap);
    cfg_diags_fini(&l->diags);
}

static void dump(const struct loaded *l)
{
    for (size_t i = 0; i < l->diags.n; i++) {
        char line[1200];
        cfg_diag_format(&l->diags.v[i], line, sizeof(line));
        fprintf(stderr, "  %s\n", line);
    }
}

static const char *full_yaml = VS_HEAD
    "  http:\n"
    "  - name: full\n"
    "    match:\n"
    "    - name: m0\n"
    "      uri: {prefix: /api}\n"
    "      ignoreUriCase: true\n"
    "      method: {exact: GET}\n"
    "      scheme: {exact: http}\n"
    "      authority: {regex: 'pay.*'}\n"
    "      headers: {X-User: {exact: alice}, x-present: {}}\n"
    "      withoutHeaders: {x-debug: {prefix: '1'}}\n"
    "      queryParams: {v: {regex: '[0-9]+'}}\n"
    "      port: 80\n"
    "      sourceLabels: {app: web}\n"
    "      sourceNamespace: front\n"
    "    route:\n"
    "    - destination: {host: payments, subset: v1}\n"
    "      weight: 90\n"
    "      headers: {request: {set: {X-A: '1'}}, response: {remove: [X-B]}}\n"
    "    - destination: {host: payments, subset: v2}\n"
    "      weight: 10\n"
    "    timeout: 3s\n"
    "    retries:\n"
    "      attempts: 3\n"
    "      perTryTimeout: 500ms\n"
    "      retryOn: 5xx,gateway-error,reset,connect-failure,refused-stream,retriable-4xx,409,"
    "retriable-status-codes,unavailable,cancelled,deadline-exceeded,resource-exhausted,504\n"
    "    rewrite: {uri: /v2, authority: new.example}\n"
    "    fault:\n"
    "      delay: {fixedDelay: 2s, percentage: {value: 12.5}}\n"
    "      abort: {httpStatus: 503, percentage: {value: 0.5}}\n"
    "    mirror: {host: shadow}\n"
    "    mirrorPercentage: {value: 25}\n"
    "    headers:\n"
    "      request: {set: {X-Set: a}, add: {X-Add: b}, remove: [X-Rm]}\n"
    "      response: {set: {X-Resp: c}}\n"
    "    corsPolicy:\n"
    "      allowOrigins: [{exact: 'https://a.example'}, {regex: 'https://.*[.]b[.]example'}]\n"
    "      allowMethods: [GET, POST]\n"
    "      allowHeaders: [x-h]\n"
    "      exposeHeaders: [x-e]\n"
    "      maxAge: 24h\n"
    "      allowCredentials: true\n"
    "  - redirect: {uri: /new, authority: b.example, scheme: https, port: 8443, redirectCode: "
    "308}\n"
    "  - directResponse: {status: 418, body: {string: teapot}}\n"
    "  - directResponse: {status: 200, body: {bytes: aGVsbG8=}}\n"
    "  - route: [{destination: {host: payments}}]\n"
    "    mirrors:\n"
    "    - {destination: {host: m1}, percentage: {value: 5}}\n"
    "    - {destination: {host: m2}}\n"
    "    rewrite: {uriRegexRewrite: {match: '^/a/(.*)$', rewrite: '/b/\\1'}}\n"
    "    fault:\n"
    "      delay: {fixedDelay: 1s, percent: 30}\n"
    "      abort: {grpcStatus: UNAVAILABLE}\n"
    "  - route: [{destination: {host: payments}}]\n"
    "    mirror: {host: shadow}\n"
    "    mirror_percent: 40\n"
    "    retries: {attempts: 2}\n"
    "    corsPolicy: {allowOrigin: ['*']}\n"
    "  - redirect: {derivePort: FROM_REQUEST_PORT}\n"
    "  tcp:\n"
    "  - route: [{destination: {host: payments}}]\n";

static void test_every_http_field_decodes_to_its_value(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, full_yaml);
    if (l.diags.counts[CFG_ERROR])
        dump(&l);
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_non_null(l.vs);
    assert_int_equal(l.vs->nroutes, 8);

    const struct cfg_route *r = &l.vs->routes[0];
    const struct cfg_http_route *h = r->http_ext;
    assert_non_null(h);
    assert_true(r->http);
    assert_string_equal(r->name, "full");
    /* The match: both halves. */
    assert_int_equal(r->nmatch, 1);
    assert_int_equal(r->match[0].port, 80);
    assert_string_equal(r->match[0].source_namespace, "front");
    assert_string_equal(cfg_label(&r->match[0].source_labels, "app"), "web");
    assert_non_null(r->match[0].l7); /* never matches at L4 */
    const struct cfg_http_match *m = &h->match[0];
    assert_string_equal(m->name, "m0");
    assert_true(m->ignore_uri_case);
    assert_true(m->uri.set);
    assert_int_equal(m->uri.kind, CFG_STR_PREFIX);
    assert_string_equal(m->uri.value, "/api");
    assert_int_equal(m->method.kind, CFG_STR_EXACT);
    assert_string_equal(m->method.value, "GET");
    assert_string_equal(m->scheme.value, "http");
    assert_int_equal(m->authority.kind, CFG_STR_REGEX);
    assert_non_null(m->authority.regex);
    assert_int_equal(m->headers.n, 2);
    assert_string_equal(m->headers.v[0].name, "x-user"); /* lower-cased */
    assert_string_equal(m->headers.v[0].m.value, "alice");
    assert_string_equal(m->headers.v[1].name, "x-present");
    assert_false(m->headers.v[1].m.set); /* presence */
    assert_int_equal(m->without_headers.n, 1);
    assert_int_equal(m->without_headers.v[0].m.kind, CFG_STR_PREFIX);
    assert_int_equal(m->query_params.n, 1);
    assert_string_equal(m->query_params.v[0].name, "v");
    assert_non_null(m->query_params.v[0].m.regex);
    /* Destinations and their header edits. */
    assert_int_equal(r->ndest, 2);
    assert_int_equal(r->dest[0].weight, 90);
    assert_non_null(h->dest_headers);
    assert_int_equal(h->dest_headers[0].request.nset, 1);
    assert_string_equal(h->dest_headers[0].request.set[0].key, "x-a");
    assert_string_equal(h->dest_headers[0].request.set[0].value, "1");
    assert_string_equal(h->dest_headers[0].response.remove.v[0], "x-b");
    assert_int_equal(h->dest_headers[1].request.nset, 0);
    /* Timeout and retries. */
    assert_int_equal(h->timeout_ns, 3000000000ull);
    assert_true(h->retries.set);
    assert_int_equal(h->retries.attempts, 3);
    assert_int_equal(h->retries.per_try_timeout_ns, 500000000ull);
    uint32_t all = CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR | CFG_RETRY_RESET |
                   CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_REFUSED_STREAM | CFG_RETRY_RETRIABLE_4XX |
                   CFG_RETRY_RETRIABLE_STATUS | CFG_RETRY_UNAVAILABLE | CFG_RETRY_CANCELLED |
                   CFG_RETRY_DEADLINE_EXCEEDED | CFG_RETRY_RESOURCE_EXHAUSTED;
    assert_int_equal(h->retries.retry_on, all);
    assert_int_equal(h->retries.ncodes, 2);
    assert_int_equal(h->retries.retriable_codes[0], 409);
    assert_int_equal(h->retries.retriable_codes[1], 504);
    assert_int_equal(r->retries, 3); /* the L4 view too */
    /* Rewrite, fault, mirror, headers, CORS. */
    assert_true(h->rewrite.set);
    assert_string_equal(h->rewrite.uri, "/v2");
    assert_string_equal(h->rewrite.authority, "new.example");
    assert_true(h->fault.delay_set);
    assert_int_equal(h->fault.delay_ns, 2000000000ull);
    assert_int_equal(h->fault.delay_ppm, 125000);
    assert_true(h->fault.abort_set);
    assert_int_equal(h->fault.abort_status, 503);
    assert_int_equal(h->fault.abort_ppm, 5000);
    assert_int_equal(h->fault.abort_grpc_status, -1);
    assert_int_equal(h->nmirrors, 1);
    assert_string_equal(h->mirrors[0].dest.host, "shadow");
    assert_int_equal(h->mirrors[0].ppm, 250000);
    assert_int_equal(r->nmirrors, 1);
    assert_int_equal(h->headers.request.nset, 1);
    assert_string_equal(h->headers.request.set[0].key, "x-set");
    assert_string_equal(h->headers.request.add[0].key, "x-add");
    assert_string_equal(h->headers.request.remove.v[0], "x-rm");
    assert_string_equal(h->headers.response.set[0].value, "c");
    assert_true(h->cors.set);
    assert_int_equal(h->cors.norigins, 2);
    assert_int_equal(h->cors.allow_origins[0].kind, CFG_STR_EXACT);
    assert_non_null(h->cors.allow_origins[1].regex);
    assert_int_equal(h->cors.allow_methods.n, 2);
    assert_string_equal(h->cors.allow_headers.v[0], "x-h");
    assert_string_equal(h->cors.expose_headers.v[0], "x-e");
    assert_int_equal(h->cors.max_age_s, 86400);
    assert_true(h->cors.has_allow_credentials && h->cors.allow_credentials);

    /* Redirect. */
    h = l.vs->routes[1].http_ext;
    assert_true(h->redirect.set);
    assert_string_equal(h->redirect.uri, "/new");
    assert_string_equal(h->redirect.authority, "b.example");
    assert_string_equal(h->redirect.scheme, "https");
    assert_int_equal(h->redirect.port, 8443);
    assert_int_equal(h->redirect.code, 308);
    assert_int_equal(l.vs->routes[1].ndest, 0);
    /* Direct responses: a string, and base64 bytes decoded. */
    h = l.vs->routes[2].http_ext;
    assert_true(h->direct.set);
    assert_int_equal(h->direct.status, 418);
    assert_int_equal(h->direct.body_len, 6);
    assert_memory_equal(h->direct.body, "teapot", 6);
    h = l.vs->routes[3].http_ext;
    assert_int_equal(h->direct.body_len, 5);
    assert_memory_equal(h->direct.body, "hello", 5);
    /* mirrors[], uriRegexRewrite, legacy delay percent, grpcStatus, and
     * Istio's default retries when none are given. */
    h = l.vs->routes[4].http_ext;
    assert_int_equal(h->nmirrors, 2);
    assert_string_equal(h->mirrors[0].dest.host, "m1");
    assert_int_equal(h->mirrors[0].ppm, 50000);
    assert_int_equal(h->mirrors[1].ppm, 1000000);
    assert_string_equal(h->rewrite.regex_match, "^/a/(.*)$");
    assert_string_equal(h->rewrite.regex_rewrite, "/b/\\1");
    assert_non_null(h->rewrite.regex);
    assert_int_equal(h->fault.delay_ppm, 300000);
    assert_int_equal(h->fault.abort_grpc_status, 14);
    assert_int_equal(h->fault.abort_ppm, 1000000); /* unset: 100% */
    assert_false(h->retries.set);
    assert_int_equal(h->retries.attempts, 2);
    assert_int_equal(h->retries.retry_on, CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_REFUSED_STREAM |
                                              CFG_RETRY_UNAVAILABLE | CFG_RETRY_CANCELLED |
                                              CFG_RETRY_RETRIABLE_STATUS);
    assert_int_equal(h->retries.ncodes, 1);
    assert_int_equal(h->retries.retriable_codes[0], 503);
    assert_null(h->dest_headers);
    /* Legacy mirror_percent; attempts without retryOn keep the default
     * policy; legacy allowOrigin becomes exact matches. */
    h = l.vs->routes[5].http_ext;
    assert_int_equal(h->mirrors[0].ppm, 400000);
    assert_true(h->retries.set);
    assert_int_equal(h->retries.attempts, 2);
    assert_true(h->retries.retry_on & CFG_RETRY_CONNECT_FAILURE);
    assert_int_equal(h->cors.norigins, 1);
    assert_int_equal(h->cors.allow_origins[0].kind, CFG_STR_EXACT);
    assert_string_equal(h->cors.allow_origins[0].value, "*");
    /* derivePort: accepted, not applied (a warning), the port kept. */
    h = l.vs->routes[6].http_ext;
    assert_true(h->redirect.set);
    assert_int_equal(h->redirect.port, 0);
    bool warned = false;
    for (size_t i = 0; i < l.diags.n; i++)
        warned |= l.diags.v[i].level == CFG_WARNING && strstr(l.diags.v[i].message, "derivePort");
    assert_true(warned);
    /* tcp[] routes have no HTTP part. */
    assert_false(l.vs->routes[7].http);
    assert_null(l.vs->routes[7].http_ext);
    unload(&l);
}

struct rule {
    const char *name;
    const char *route; /* one http[] entry, indented for "  http:\n" */
    const char *says;
};

#define RT     "  - route: [{destination: {host: payments}}]\n"
#define AND_RT "    route: [{destination: {host: payments}}]\n"
#define RX(re)                                                                                     \
    "  - match: [{uri: {regex: '" re "'}}]\n    route: [{destination: {host: payments}}]\n"

static const struct rule rules[] = {
    {"redirect with route", RT "    redirect: {uri: /x}\n", "both route and redirect"},
    {"redirect with fault", "  - redirect: {uri: /x}\n    fault: {abort: {httpStatus: 500}}\n",
     "both fault and redirect"},
    {"redirect with rewrite", "  - redirect: {uri: /x}\n    rewrite: {uri: /y}\n",
     "both rewrite and redirect"},
    {"redirect with directResponse", "  - redirect: {uri: /x}\n    directResponse: {status: 200}\n",
     "both direct_response and redirect"},
    {"directResponse with route", RT "    directResponse: {status: 200}\n",
     "both route and direct_response"},
    {"directResponse with fault",
     "  - directResponse: {status: 200}\n    fault: {abort: {httpStatus: 500}}\n",
     "both fault and direct_response"},
    {"directResponse with rewrite", "  - directResponse: {status: 200}\n    rewrite: {uri: /y}\n",
     "both rewrite and direct_response"},
    {"no route, redirect or directResponse", "  - fault: {abort: {httpStatus: 500}}\n",
     "HTTP route, redirect or direct_response is required"},
    {"delegate with route", RT "    delegate: {name: d}\n",
     "root HTTP route must not specify route"},
    {"mirror and mirrors", RT "    mirror: {host: a}\n    mirrors: [{destination: {host: b}}]\n",
     "both mirror and mirrors"},
    {"redirect without a target", "  - redirect: {redirectCode: 301}\n",
     "redirect must specify URI, authority, scheme, or port"},
    {"redirect code not 3xx", "  - redirect: {uri: /x, redirectCode: 200}\n",
     "not a valid redirect code"},
    {"redirect scheme", "  - redirect: {scheme: ftp}\n", "invalid redirect scheme"},
    {"redirect port 0", "  - redirect: {port: 0}\n", "port number 0"},
    {"direct status too high", "  - directResponse: {status: 700}\n", "not in range 200-599"},
    {"direct status too low", "  - directResponse: {status: 100}\n", "not in range 200-599"},
    {"direct body not base64", "  - directResponse: {status: 200, body: {bytes: 'a*=='}}\n",
     "expected base64"},
    {"direct body string and bytes",
     "  - directResponse: {status: 200, body: {string: a, bytes: YQ==}}\n",
     "only one of string or bytes"},
    {"fault without abort or delay", RT "    fault: {}\n", "must have an abort and/or a delay"},
    {"fault percentage above 100",
     RT "    fault: {delay: {fixedDelay: 1s, percentage: {value: 150}}}\n",
     "percentage 150 is neither"},
    {"fault percentage negative",
     RT "    fault: {abort: {httpStatus: 500, percentage: {value: -1}}}\n",
     "percentage -1 is neither"},
    {"fault percentage below 0.0001",
     RT "    fault: {abort: {httpStatus: 500, percentage: {value: 0.00001}}}\n", "is neither"},
    {"fault legacy percent above 100", RT "    fault: {delay: {fixedDelay: 1s, percent: 101}}\n",
     "from 0 to 100"},
    {"abort status out of range", RT "    fault: {abort: {httpStatus: 99}}\n",
     "HTTP status is not in range"},
    {"abort grpc status unknown", RT "    fault: {abort: {grpcStatus: BOGUS}}\n",
     "not a supported gRPC status"},
    {"abort http2Error", RT "    fault: {abort: {http2Error: x}}\n", "not supported yet"},
    {"delay exponentialDelay", RT "    fault: {delay: {exponentialDelay: 1s}}\n",
     "exponentialDelay not supported yet"},
    {"mirrorPercentage above 100", RT "    mirror: {host: a}\n    mirrorPercentage: {value: 101}\n",
     "percentage 101 is neither"},
    {"mirror_percent above 100", RT "    mirror: {host: a}\n    mirror_percent: 101\n",
     "from 0 to 100"},
    {"mirrors entry without destination", RT "    mirrors: [{percentage: {value: 5}}]\n",
     "destination is required for mirrors"},
    {"mirrors percentage above 100",
     RT "    mirrors: [{destination: {host: a}, percentage: {value: 200}}]\n", "is neither"},
    {"retry policy with zero attempts", RT "    retries: {attempts: 0, retryOn: 5xx}\n",
     "attempts are set to 0"},
    {"retryOn unknown", RT "    retries: {attempts: 1, retryOn: '5xx,bogus'}\n",
     "\"bogus\" is not a valid retryOn policy"},
    {"rewrite empty", RT "    rewrite: {}\n", "rewrite must specify at least one"},
    {"rewrite uri and uriRegexRewrite",
     RT "    rewrite: {uri: /a, uriRegexRewrite: {match: a, rewrite: b}}\n",
     "only contain one of URI or UriRegexRewrite"},
    {"uriRegexRewrite without rewrite", RT "    rewrite: {uriRegexRewrite: {match: a}}\n",
     "requires both Rewrite and Match"},
    {"uriRegexRewrite bad regex", RT "    rewrite: {uriRegexRewrite: {match: '(a', rewrite: b}}\n",
     "invalid regex"},
    {"regex invalid", RX("(a"), "invalid regex at offset"},
    {"regex backreference", RX("(a)\\1"), "a backreference is not RE2 syntax"},
    {"regex named backreference", RX("(?P<n>a)(?P=n)"), "not RE2 syntax"},
    {"regex lookahead", RX("a(?=b)"), "a lookaround is not RE2 syntax"},
    {"regex negative lookahead", RX("a(?!b)"), "a lookaround"},
    {"regex lookbehind", RX("(?<=a)b"), "a lookaround"},
    {"regex negative lookbehind", RX("(?<!a)b"), "a lookaround"},
    {"regex atomic group", RX("(?>a+)b"), "an atomic group"},
    {"regex possessive quantifier", RX("a++b"), "a possessive quantifier"},
    {"regex recursion", RX("a(?R)?b"), "a recursion"},
    {"regex conditional", RX("(a)?(?(1)b|c)"), "not RE2 syntax"},
    {"regex backtracking verb", RX("a(*SKIP)b"), "a backtracking verb"},
    {"regex empty", "  - match: [{uri: {regex: ''}}]\n    route: [{destination: {host: p}}]\n",
     "regex string match should not be empty"},
    {"regex in a header match", "  - match: [{headers: {x: {regex: 'a(?=b)'}}}]\n" AND_RT,
     "a lookaround"},
    {"regex in withoutHeaders", "  - match: [{withoutHeaders: {x: {regex: '('}}}]\n" AND_RT,
     "invalid regex"},
    {"regex in queryParams", "  - match: [{queryParams: {q: {regex: '(a)\\1'}}}]\n" AND_RT,
     "backreference"},
    {"string match with two kinds", "  - match: [{uri: {exact: /a, prefix: /b}}]\n" AND_RT,
     "only one of exact, prefix or regex"},
    {"header match name invalid", "  - match: [{headers: {'x y': {exact: a}}}]\n" AND_RT,
     "not a valid header name"},
    {"header prefix empty", "  - match: [{headers: {x: {prefix: ''}}}]\n" AND_RT,
     "headers.x: prefix string match should not be empty"},
    {"method prefix empty", "  - match: [{method: {prefix: ''}}]\n" AND_RT,
     "prefix string match should not be empty"},
    {"query param prefix empty", "  - match: [{queryParams: {q: {prefix: ''}}}]\n" AND_RT,
     "prefix string match should not be empty"},
    {"header match null", "  - match: [{headers: {x: null}}]\n" AND_RT, "cannot be null"},
    {"response header op on a pseudo-header", RT "    headers: {response: {set: {':path': x}}}\n",
     "pseudo-header or host"},
    {"request header remove of host", RT "    headers: {request: {remove: [host]}}\n",
     "pseudo-header or host"},
    {"header op name invalid", RT "    headers: {request: {add: {'a b': x}}}\n",
     "not a valid header name"},
    {"destination header op on a pseudo-header",
     "  - route: [{destination: {host: p}, headers: {response: {add: {':status': x}}}}]\n",
     "pseudo-header or host"},
    {"authority set twice",
     RT "    rewrite: {authority: a}\n    headers: {request: {set: {host: b}}}\n",
     "authority header cannot be set multiple times"},
    {"cors method unknown", RT "    corsPolicy: {allowMethods: [FETCH]}\n",
     "not a supported HTTP method"},
    {"cors origin empty", RT "    corsPolicy: {allowOrigins: [{exact: ''}]}\n",
     "not a valid match type for CORS allow origins"},
    {"cors origin bad regex", RT "    corsPolicy: {allowOrigins: [{regex: '(?<=a)'}]}\n",
     "a lookaround"},
    {"cors maxAge below a second", RT "    corsPolicy: {maxAge: 1500ms}\n", "seconds precision"},
    {"cors header name invalid", RT "    corsPolicy: {allowHeaders: ['a b']}\n",
     "not a valid header name"},
    {"sourceNamespace invalid", "  - match: [{sourceNamespace: Bad_NS}]\n" AND_RT,
     "sourceNamespace match Bad_NS is invalid"},
};

static void test_istio_http_validation_rules_refuse_the_resource(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        char yaml[4096];
        snprintf(yaml, sizeof(yaml), "%s  http:\n%s", VS_HEAD, rules[i].route);
        struct loaded l;
        load(&l, yaml);
        bool found = false;
        for (size_t d = 0; d < l.diags.n; d++)
            found |= l.diags.v[d].level == CFG_ERROR &&
                     strstr(l.diags.v[d].message, rules[i].says) && l.diags.v[d].pos.line > 5 &&
                     l.diags.v[d].pos.col > 0 && strcmp(l.diags.v[d].pos.file, "input.yaml") == 0;
        /* The rule's error alone: nothing else in the entry is wrong. */
        if (!found || l.vs || l.diags.counts[CFG_ERROR] != 1) {
            fprintf(stderr, "rule \"%s\": expected a load error saying \"%s\"%s; got:\n",
                    rules[i].name, rules[i].says, l.vs ? " and the resource refused" : "");
            dump(&l);
            failures++;
        }
        unload(&l);
    }
    assert_int_equal(failures, 0);
}

static void test_regex_too_long_is_refused(void **state)
{
    (void)state;
    char re[1100], yaml[2048];
    memset(re, 'a', 1025);
    re[1025] = '\0';
    snprintf(yaml, sizeof(yaml), "%s  http:\n" RX("%s"), VS_HEAD, re);
    struct loaded l;
    load(&l, yaml);
    assert_int_equal(l.diags.counts[CFG_ERROR], 1);
    assert_non_null(strstr(l.diags.v[0].message, "regex is too large"));
    assert_null(l.vs);
    unload(&l);
    /* 1024 is Istio's limit, and allowed. */
    re[1024] = '\0';
    snprintf(yaml, sizeof(yaml), "%s  http:\n" RX("%s"), VS_HEAD, re);
    load(&l, yaml);
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_non_null(l.vs);
    unload(&l);
}

/* What RE2 has loads: classes, lazy quantifiers, named groups, flags,
 * repetition counts, escapes; a ']' first in a class is a literal. */
static void test_re2_syntax_loads(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "/api/v[0-9]+/.*", "(?i)/Users/[^/]+", "a*?b+?c??", "(?P<id>[a-z]{2,4})", "[]a]+",
        "[^]a]+",          "\\d+\\.\\w*",      "x{3}",      "(?:a|b)*",           "[a\\]]+",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s  http:\n" RX("%s"), VS_HEAD, ok[i]);
        struct loaded l;
        load(&l, yaml);
        if (l.diags.counts[CFG_ERROR]) {
            fprintf(stderr, "regex %s:\n", ok[i]);
            dump(&l);
        }
        assert_int_equal(l.diags.counts[CFG_ERROR], 0);
        assert_non_null(l.vs->routes[0].http_ext->match[0].uri.regex);
        unload(&l);
    }
}

static bool has_diag(const struct loaded *l, enum cfg_level level, const char *says)
{
    for (size_t i = 0; i < l->diags.n; i++)
        if (l->diags.v[i].level == level && strstr(l->diags.v[i].message, says))
            return true;
    return false;
}

/* directResponse bodies: an error past 1 MB, a warning past 100 KB. */
static void test_direct_response_body_size(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        enum cfg_level level;
        const char *says;
    } sizes[] = {
        {1024 * 1024 + 1, CFG_ERROR, "must be less than 1MB"},
        {100 * 1024 + 1, CFG_WARNING, "large direct_responses may impact"},
    };
    for (size_t i = 0; i < 2; i++) {
        size_t cap = sizes[i].len + 512;
        char *yaml = malloc(cap);
        assert_non_null(yaml);
        int n = snprintf(yaml, cap,
                         "%s  http:\n  - directResponse: {status: 200, body: {string: ", VS_HEAD);
        memset(yaml + n, 'x', sizes[i].len);
        snprintf(yaml + n + sizes[i].len, cap - (size_t)n - sizes[i].len, "}}\n");
        struct loaded l;
        load(&l, yaml);
        assert_true(has_diag(&l, sizes[i].level, sizes[i].says));
        if (sizes[i].level == CFG_WARNING)
            assert_int_equal(l.vs->routes[0].http_ext->direct.body_len, sizes[i].len);
        else
            assert_null(l.vs);
        unload(&l);
        free(yaml);
    }
}

/* A percentage that is not a number is an error; an abort without an error
 * type is a warning (Istio's AppendWarningf) and injects nothing; a delay
 * without fixedDelay delays nothing. */
static void test_fault_without_effect(void **state)
{
    (void)state;
    struct loaded l;
    load(&l,
         VS_HEAD "  http:\n" RT "    fault: {delay: {fixedDelay: 1s, percentage: {value: x}}}\n");
    assert_true(has_diag(&l, CFG_ERROR, "percentage.value: expected a number"));
    assert_null(l.vs);
    unload(&l);
    load(&l,
         VS_HEAD "  http:\n" RT
                 "    fault: {abort: {percentage: {value: 5}}, delay: {percentage: {value: 5}}}\n");
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_true(has_diag(&l, CFG_WARNING, "abort configured, but error type not set"));
    assert_false(l.vs->routes[0].http_ext->fault.abort_set);
    assert_false(l.vs->routes[0].http_ext->fault.delay_set);
    unload(&l);
}

/* Retry policies Envoy knows and meshd does not apply load, with a warning. */
static void test_retry_on_unapplied_policy_warns(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, VS_HEAD "  http:\n" RT "    retries: {attempts: 1, retryOn: reset-before-request}\n");
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_int_equal(l.vs->routes[0].http_ext->retries.retry_on, 0);
    assert_true(l.diags.counts[CFG_WARNING] >= 1);
    unload(&l);
    /* An empty retryOn is unset: the default policy. */
    load(&l, VS_HEAD "  http:\n" RT "    retries: {attempts: 1, retryOn: ''}\n");
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_true(l.vs->routes[0].http_ext->retries.retry_on & CFG_RETRY_CONNECT_FAILURE);
    assert_int_equal(l.vs->routes[0].http_ext->retries.retriable_codes[0], 503);
    unload(&l);
}

/* An empty uri prefix is Envoy's catch-all; withoutHeaders' regex "*" is
 * presence, not a regex. */
static void test_empty_uri_prefix_and_without_star(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, VS_HEAD
         "  http:\n  - match: [{uri: {prefix: ''}, withoutHeaders: {x: {regex: '*'}}}]\n" AND_RT);
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    const struct cfg_http_match *m = &l.vs->routes[0].http_ext->match[0];
    assert_true(m->uri.set);
    assert_string_equal(m->uri.value, "");
    assert_int_equal(m->without_headers.n, 1);
    assert_false(m->without_headers.v[0].m.set);
    unload(&l);
}

/* JWT-claim header matches (Istio gateways) load. */
static void test_jwt_claim_header_match_loads(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, VS_HEAD
         "  http:\n  - match: [{headers: {'@request.auth.claims.foo': {exact: a}}}]\n" AND_RT);
    assert_int_equal(l.diags.counts[CFG_ERROR], 0);
    assert_int_equal(l.vs->routes[0].http_ext->match[0].headers.n, 1);
    unload(&l);
}

/* Compiled regexes live outside the arena: many loads and frees of a
 * snapshot full of them leave nothing behind (valgrind --leak-check, or
 * LeakSanitizer with SANITIZE=1, fails the run otherwise). */
static void test_regexes_freed_with_the_snapshot(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        struct loaded l;
        load(&l, full_yaml);
        assert_int_equal(l.diags.counts[CFG_ERROR], 0);
        unload(&l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_http_field_decodes_to_its_value),
        cmocka_unit_test(test_istio_http_validation_rules_refuse_the_resource),
        cmocka_unit_test(test_regex_too_long_is_refused),
        cmocka_unit_test(test_re2_syntax_loads),
        cmocka_unit_test(test_direct_response_body_size),
        cmocka_unit_test(test_fault_without_effect),
        cmocka_unit_test(test_retry_on_unapplied_policy_warns),
        cmocka_unit_test(test_empty_uri_prefix_and_without_star),
        cmocka_unit_test(test_jwt_claim_header_match_loads),
        cmocka_unit_test(test_regexes_freed_with_the_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
