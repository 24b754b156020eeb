/* libFuzzer driver: the HTTP side of AuthorizationPolicy (path
 * normalization, path templates, hosts, headers). Input: a path, '\n', a
 * pattern. Besides memory safety it checks what the guarantee rests on:
 * a normalized path is a fixed point (normalizing again changes nothing),
 * starts with '/' (or is "*") and holds no dot segment. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/pattern.h"
#include "policy/authz_http.h"

static int has_dot_segment(const char *p)
{
    for (const char *s = p; (s = strchr(s, '/')) != NULL; s++) {
        size_t n = strcspn(s + 1, "/");
        if ((n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[512], out[3 * sizeof(in) + 1], again[sizeof(out)];
    if (size >= sizeof(in))
        size = sizeof(in) - 1;
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = strchr(in, '\n');
    const char *pattern = "/";
    if (nl) {
        *nl = '\0';
        pattern = nl + 1;
    }
    int n = authz_path_normalize(in, out, sizeof(out));
    if (n >= 0) {
        if ((size_t)n != strlen(out) || (out[0] != '/' && strcmp(out, "*") != 0) ||
            has_dot_segment(out))
            abort();
        if (authz_path_normalize(out, again, sizeof(again)) != n || strcmp(out, again) != 0)
            abort(); /* not a fixed point: policies and the app could disagree */
        if (!pattern_path_check(pattern))
            authz_path_match(pattern, out);
    }
    authz_host_match(pattern, in);
    const struct http_field f[] = {{"x", in, 1, (uint32_t)strlen(in)},
                                   {"X", pattern, 1, (uint32_t)strlen(pattern)}};
    const struct http_request_view v = {.method = in,
                                        .path = in,
                                        .query = pattern,
                                        .authority = in,
                                        .scheme = "http",
                                        .headers = f,
                                        .nheaders = 2};
    authz_header_match(&v, "x", pattern);
    authz_header_match(&v, ":path", pattern);
    return 0;
}
