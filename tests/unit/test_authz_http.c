/* The HTTP matchers of AuthorizationPolicy (agent/policy/authz_http.c),
 * each as a table of values: Istio's default path normalization and the
 * attacks it exists for, path templates (Istio's validation, Envoy's
 * matching), hosts, and Envoy's header matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/pattern.h"
#include "policy/authz_http.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct http_field hf(const char *name, const char *value)
{
    return (struct http_field){name, value, (uint32_t)strlen(name), (uint32_t)strlen(value)};
}

/* Istio's normalization page, row by row, and the attacks it exists for. */
static void paths_are_normalized_as_istio_base(void **state)
{
    static const struct {
        const char *in, *out; /* out NULL: refused (-EINVAL) */
    } rows[] = {
        {"/a/b", "/a/b"},
        {"/admin/../public", "/public"},
        {"/public/../admin", "/admin"},
        {"/public/./data/abc/../xyz", "/public/data/xyz"},
        {"/%61dmin", "/admin"},
        {"/%2e%2e/admin", "/admin"},
        {"/public/.%2E/admin", "/admin"},
        {"/public/%2e%2e/admin", "/admin"},
        {"/some%2fdata/%61%62%63", "/some%2Fdata/abc"}, /* %2F stays (BASE) */
        {"/a%5cb", "/a%5Cb"},
        {"/some\\data", "/some/data"},
        {"/public\\..\\admin", "/admin"},
        {"/a//b", "/a//b"}, /* not merged (MERGE_SLASHES) */
        {"/a//../b", "/a/b"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/..", "/"},
        {"/../../etc/passwd", "/etc/passwd"},
        {"/%252e%252e/admin", "/%252e%252e/admin"}, /* decoded once, never twice */
        {"/%7Euser/%2D%5F", "/~user/-_"},
        {"/caf\xc3\xa9", "/caf%C3%A9"},
        {"/caf%c3%a9", "/caf%C3%A9"},
        {"/a%20b", "/a%20b"},
        {"/", "/"},
        {"*", "*"},
        {"/a%00b", NULL},
        {"/a%zz", NULL},
        {"/a%2", NULL},
        {"/a%", NULL},
        {"/a b", NULL},
        {"/a\tb", NULL},
        {"/a\x7f", NULL},
        {"/a#frag", NULL},
        {"/a?q=1", NULL},
        {"admin", NULL},
        {"", NULL},
        {"http://x/a", NULL},
    };
    char out[128];
    for (size_t i = 0; i < LEN(rows); i++) {
        int n = authz_path_normalize(rows[i].in, out, sizeof(out));
        if (!rows[i].out) {
            if (n != -EINVAL)
                fail_msg("%s: expected refusal, got %d (%s)", rows[i].in, n, n >= 0 ? out : "");
            continue;
        }
        if (n < 0 || strcmp(out, rows[i].out) != 0 || (size_t)n != strlen(rows[i].out))
            fail_msg("%s: expected %s, got %d %s", rows[i].in, rows[i].out, n, n >= 0 ? out : "");
    }
    /* The output is bounded by the caller's buffer, NUL included. */
    assert_int_equal(authz_path_normalize("/abcd", out, 5), -ENOSPC);
    assert_int_equal(authz_path_normalize("/abc", out, 5), 4);
    assert_int_equal(authz_path_normalize("/\xff", out, 4), -ENOSPC);
    assert_int_equal(authz_path_normalize("/\xff", out, 5), 4);
    assert_string_equal(out, "/%FF");
}

static void path_templates_validate_as_istio(void **state)
{
    static const struct {
        const char *path;
        bool valid;
    } rows[] = {
        {"/{*}/foo", true},
        {"/{*}/foo/", true},
        {"/foo/{**}/bar", true},
        {"/foo/bar/{**}", true},
        {"/foo/{*}/bar/{**}", true},
        {"/{**}", true},
        {"/a=b/{*}", true},
        {"/admin", true},
        {"/admin*", true},
        {"*/info", true},
        {"*", true},
        {"/foo/{**}buzz/bar", false},
        {"/{*}/foo/{}/bar", false},
        {"/foo/{*}/bar/*", false},
        {"/{**}/foo/{*}", false},
        {"/{**}/{**}", false},
        {"/foo/{*}.txt", false},
        {"/a/{id}/b", false},
        {"/a/{name=*}", false},
        {"/a/{", false},
        {"foo/{*}", false},
        {"/a//{*}", false},
        {"/a b/{*}", false},
    };
    for (size_t i = 0; i < LEN(rows); i++) {
        const char *why = pattern_path_check(rows[i].path);
        if ((why == NULL) != rows[i].valid)
            fail_msg("%s: expected %s (%s)", rows[i].path, rows[i].valid ? "valid" : "invalid",
                     why ? why : "accepted");
    }
}

static void paths_match_exact_prefix_suffix_and_templates(void **state)
{
    static const struct {
        const char *pattern, *path;
        bool match;
    } rows[] = {
        {"/admin", "/admin", true},
        {"/admin", "/admin/", false},
        {"/admin", "/Admin", false},
        {"/admin*", "/admin/x", true},
        {"/admin*", "/adminx", true},
        {"*.js", "/a/b.js", true},
        {"*", "/", true},
        {"/foo/{*}", "/foo/bar", true},
        {"/foo/{*}", "/foo/bar/baz", false},
        {"/foo/{*}", "/foo/", false},
        {"/foo/{*}", "/foo", false},
        {"/foo/{**}/", "/foo/bar/", true},
        {"/foo/{**}/", "/foo//", true},
        {"/foo/{**}/", "/foo/bar/baz/", true},
        {"/foo/{**}/", "/foo/bar", false},
        {"/foo/{*}/bar/{**}", "/foo/buzz/bar/", true},
        {"/foo/{*}/bar/{**}", "/foo/buzz/bar/baz", true},
        {"/foo/{*}/bar/{**}", "/foo/buzz/bar", false},
        {"/foo/{*}/bar/{**}", "/foo/a/b/bar/", false},
        {"/foo/{**}/bar", "/foo/x/y/bar", true},
        {"/foo/{**}/bar", "/foo/bar", false},
        {"/{**}", "/", true},
        {"/{**}", "/a/b/c", true},
        {"/api/{*}/admin", "/api/42/admin", true},
        {"/api/{*}/admin", "/api/a%2Fb/admin", true}, /* an encoded '/' is one segment */
        {"/api/{*}/admin", "/api/x=y/admin", false},  /* Envoy's pchar for {*} has no '=' */
        {"/api/{*}/admin", "/api/x/y/admin", false},
        {"/{*}", "/x", true},
    };
    for (size_t i = 0; i < LEN(rows); i++)
        if (authz_path_match(rows[i].pattern, rows[i].path) != rows[i].match)
            fail_msg("%s against %s: expected %s", rows[i].pattern, rows[i].path,
                     rows[i].match ? "match" : "no match");
}

static void hosts_match_case_insensitively_with_or_without_port(void **state)
{
    static const struct {
        const char *pattern, *authority;
        bool match;
    } rows[] = {
        {"example.com", "example.com", true},
        {"example.com", "EXAMPLE.com", true},
        {"example.com", "example.com:8080", true},
        {"example.com:8080", "example.com:8080", true},
        {"example.com:8080", "example.com", false},
        {"example.com:*", "example.com:80", true},
        {"example.com", "example.com.evil.io", false},
        {"example.com", "example.com:", false},
        {"*.example.com", "api.example.com:80", true},
        {"*.example.com", "example.com", false},
        {"api.*", "API.example.com", true},
        {"*", "x", true},
        {"*", "", false},
        {"[::1]", "[::1]:80", true},
        {"::1", "::1", true},
        {"::", "::1", false},
        {"10.0.0.1", "10.0.0.1:80", true},
    };
    for (size_t i = 0; i < LEN(rows); i++)
        if (authz_host_match(rows[i].pattern, rows[i].authority) != rows[i].match)
            fail_msg("%s against %s: expected %s", rows[i].pattern, rows[i].authority,
                     rows[i].match ? "match" : "no match");
}

/* Envoy matches a repeated header on its values joined with ',', so a
 * value hidden in a second field cannot dodge an exact DENY and ALLOW. */
static void headers_match_joined_values_and_pseudo_headers(void **state)
{
    const struct http_field f[] = {hf("X-A", "one"), hf("host", "h.example"), hf("x-a", "two"),
                                   hf("X-Empty", "")};
    const struct http_request_view v = {.method = "GET",
                                        .path = "/p",
                                        .query = "q=1",
                                        .authority = "h.example:80",
                                        .scheme = "http",
                                        .headers = f,
                                        .nheaders = LEN(f)};
    static const struct {
        const char *name, *pattern;
        bool match;
    } rows[] = {
        {"x-a", "one,two", true},
        {"x-a", "one", false},
        {"x-a", "two", false},
        {"X-A", "one*", true},
        {"x-a", "*two", true},
        {"x-a", "*,t*", false}, /* one wildcard form per value, as Istio */
        {"x-a", "one,two,", false},
        {"x-a", "*", true},
        {"x-empty", "*", true}, /* present, even empty */
        {"x-empty", "", true},
        {"x-missing", "*", false},
        {"x-missing", "", false},
        {":method", "GET", true},
        {":method", "POST", false},
        {":authority", "h.example:80", true},
        {"host", "h.example:80", true}, /* Envoy's Host is :authority */
        {":scheme", "http", true},
        {":path", "/p?q=1", true},
        {":path", "/p", false},
        {":path", "/p?*", true},
    };
    for (size_t i = 0; i < LEN(rows); i++)
        if (authz_header_match(&v, rows[i].name, rows[i].pattern) != rows[i].match)
            fail_msg("%s against %s: expected %s", rows[i].name, rows[i].pattern,
                     rows[i].match ? "match" : "no match");
    const struct http_request_view bare = {
        .method = "GET", .path = "/", .query = "", .authority = "", .scheme = "http"};
    assert_false(authz_header_match(&bare, ":authority", "*"));
    assert_true(authz_header_match(&bare, ":path", "/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths_are_normalized_as_istio_base),
        cmocka_unit_test(path_templates_validate_as_istio),
        cmocka_unit_test(paths_match_exact_prefix_suffix_and_templates),
        cmocka_unit_test(hosts_match_case_insensitively_with_or_without_port),
        cmocka_unit_test(headers_match_joined_values_and_pseudo_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
