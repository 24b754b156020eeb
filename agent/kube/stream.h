/* The Kubernetes API's responses, parsed: an HTTP/1.1 response (llhttp,
 * chunked or sized) whose body is either kept whole (a list, an error
 * Status) or, for a watch, cut into lines of one JSON event each; and the
 * events themselves (jansson).
 *
 * Everything is bounded: a watch line at `max` bytes, a whole body at
 * `max` (a list) or KUBE_RESP_ERROR_BODY (any other status); past a bound
 * the feed fails with -EMSGSIZE and the caller drops the connection.
 * Pure: no I/O, unit-tested from byte strings. */
#ifndef MESHD_KUBE_STREAM_H
#define MESHD_KUBE_STREAM_H

#include <jansson.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

#define KUBE_RESP_ERROR_BODY (64u << 10)
#define KUBE_RV_MAX          64 /* resourceVersion, with its NUL */

typedef void (*kube_line_cb)(void *ctx, const char *line, size_t len);

struct kube_resp {
    llhttp_t parser;
    llhttp_settings_t settings;
    int status;
    bool streaming; /* asked for: lines of a 200 response */
    bool lines;     /* this response is delivered as lines */
    bool complete;  /* the whole message was read */
    size_t max;
    char *buf; /* heap: the current line, or the body */
    size_t len, cap;
    int err;
    kube_line_cb on_line;
    void *ctx;
};

/* `streaming`: a 200 body goes to on_line line by line (NUL-terminated,
 * without the newline; empty lines skipped), each at most `max` bytes;
 * else the body is kept whole, at most `max`. */
void kube_resp_init(struct kube_resp *r, bool streaming, size_t max, kube_line_cb on_line,
                    void *ctx);
void kube_resp_fini(struct kube_resp *r);
/* 0, or -EBADMSG (not HTTP), -EMSGSIZE (past a bound), or the first
 * error again. */
int kube_resp_feed(struct kube_resp *r, const char *data, size_t len);
/* The connection ended: 0 when the message was complete (or ends at
 * EOF), -EPIPE when it was cut short (a watch cut mid-stream). */
int kube_resp_eof(struct kube_resp *r);
/* The kept body (NUL-terminated) once complete; "" if none. */
const char *kube_resp_body(const struct kube_resp *r, size_t *len);

enum kube_event_type { KUBE_ADDED, KUBE_MODIFIED, KUBE_DELETED, KUBE_BOOKMARK, KUBE_ERROR };

struct kube_event {
    enum kube_event_type type;
    json_t *object;       /* owned; an object */
    char rv[KUBE_RV_MAX]; /* the object's metadata.resourceVersion ("" for ERROR) */
    int code;             /* ERROR: the Status code (410: Gone) */
};

/* One watch line. 0, or -EBADMSG (not JSON, an unknown type, no object,
 * a missing or unsafe resourceVersion) with nothing to clear. */
int kube_event_parse(const char *line, size_t len, struct kube_event *ev);
void kube_event_clear(struct kube_event *ev);
const char *kube_event_type_name(enum kube_event_type t);

/* A resourceVersion safe to put in a URL: 1..63 of [A-Za-z0-9._-]. */
bool kube_rv_valid(const char *rv);

#endif
