/* The HTTP side of AuthorizationPolicy (policy/authz): the request path
 * as Istio normalizes it before authorization and forwarding, and the
 * matchers for the L7 fields, with Envoy's RBAC semantics.
 *
 * Path normalization is Istio's default (meshConfig pathNormalization
 * BASE, Envoy's normalize_path): percent-decode the unreserved characters
 * (ALPHA DIGIT - . _ ~) once, never twice; turn '\' into '/'; remove dot
 * segments (RFC 3986 5.2.4). `%2F` and `%5C` stay encoded (Istio decodes
 * them only with DECODE_AND_MERGE_SLASHES), and `//` is not merged
 * (MERGE_SLASHES). Other escapes keep their value with upper-case hex
 * (RFC 3986 6.2.2.1); bytes >= 0x80 are percent-encoded, as Envoy's
 * canonicalizer does. Refused (the carrier answers 400, nothing reaches
 * the app): `%00`, a '%' not followed by two hex digits, control bytes and
 * space, '#' and '?' (the view's path has no query), and a path that is
 * neither "/..." nor "*". Istio forwards the normalized path, so the app
 * sees exactly what policies judged. Leaf module: no state. */
#ifndef MESHD_POLICY_AUTHZ_HTTP_H
#define MESHD_POLICY_AUTHZ_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "http/message.h"

/* Writes the normalized form of `path` (NUL-terminated) into `out`.
 * Returns its length, -EINVAL if the path is refused, -ENOSPC if `cap`
 * is too small (3 * strlen(path) + 1 always suffices). */
int authz_path_normalize(const char *path, char *out, size_t cap);

/* Validating `paths` values and templates: config/pattern.h. */
/* A `paths` value against a normalized path: exact, prefix, suffix,
 * presence, or a template (Envoy's uri_template: {*} one segment of
 * pchars, {**} any number of them, '/' included). */
bool authz_path_match(const char *pattern, const char *path);

/* A `hosts` value against the request's authority, case-insensitively;
 * a value also matches an authority with a port ("Host: a:8080") through
 * the authority without it. "" (no authority) matches nothing. */
bool authz_host_match(const char *pattern, const char *authority);

/* Envoy's header matching for `when: request.headers[name]`: the values
 * of every field `name` (case-insensitive) joined with ',' against
 * exact, prefix, suffix, or "*" (present, even empty). `:method`,
 * `:authority` (and `host`), `:scheme` and `:path` (path?query) are the
 * view's. An absent header matches no pattern. */
bool authz_header_match(const struct http_request_view *v, const char *name, const char *pattern);

#endif
