/* What an HTTP request is to everything past the codecs: routing
 * (route/http_route), L7 authorization (policy/authz) and request
 * telemetry see the same borrowed view whichever codec (HTTP/1.1 with
 * llhttp, HTTP/2 with nghttp2) parsed it. Leaf header: types only. */
#ifndef MESHD_HTTP_MESSAGE_H
#define MESHD_HTTP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One header field; NUL-terminated name and value, names as sent (HTTP/2:
 * lower case). */
struct http_field {
    const char *name, *value;
    uint32_t name_len, value_len;
};

/* One request, borrowed from its codec for the duration of a call. */
struct http_request_view {
    const char *method;    /* "GET" */
    const char *path;      /* the path as sent, without the query ("/a/b") */
    const char *query;     /* after '?', without it; "" when none */
    const char *authority; /* Host or :authority as sent (port included if sent); "" if none */
    const char *scheme;    /* "http" or "https" */
    const struct http_field *headers; /* every field as received (Host included) */
    size_t nheaders;
};

/* A field of a NUL-terminated name and value (borrowed). */
static inline struct http_field http_field_of(const char *name, const char *value)
{
    return (struct http_field){.name = name,
                               .value = value,
                               .name_len = (uint32_t)strlen(name),
                               .value_len = (uint32_t)strlen(value)};
}

/* The first value of `name` (case-insensitive), or NULL. */
const char *http_field_get(const struct http_field *f, size_t n, const char *name);

#endif
