/* Kubernetes API responses and watch events (see stream.h). */
#include "kube/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kube_resp *resp_of(llhttp_t *p)
{
    return (struct kube_resp *)((char *)p - offsetof(struct kube_resp, parser));
}

static int grow(struct kube_resp *r, size_t need, size_t bound)
{
    if (need > bound) {
        r->err = -EMSGSIZE;
        return -1;
    }
    if (need + 1 <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < need + 1)
        cap *= 2;
    char *b = realloc(r->buf, cap);
    if (!b) {
        r->err = -ENOMEM;
        return -1;
    }
    r->buf = b;
    r->cap = cap;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct kube_resp *r = resp_of(p);
    r->status = p->status_code;
    r->lines = r->streaming && r->status == 200;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct kube_resp *r = resp_of(p);
    if (!r->lines) {
        size_t bound = r->status == 200 ? r->max : KUBE_RESP_ERROR_BODY;
        if (grow(r, r->len + len, bound) != 0)
            return HPE_USER;
        memcpy(r->buf + r->len, at, len);
        r->len += len;
        r->buf[r->len] = '\0';
        return 0;
    }
    while (len) {
        const char *nl = memchr(at, '\n', len);
        size_t n = nl ? (size_t)(nl - at) : len;
        if (grow(r, r->len + n, r->max) != 0)
            return HPE_USER;
        memcpy(r->buf + r->len, at, n);
        r->len += n;
        if (!nl)
            break;
        r->buf[r->len] = '\0';
        if (r->len && r->on_line)
            r->on_line(r->ctx, r->buf, r->len);
        r->len = 0;
        at += n + 1;
        len -= n + 1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct kube_resp *r = resp_of(p);
    r->complete = true;
    return HPE_PAUSED; /* one response a connection: stop here */
}

void kube_resp_init(struct kube_resp *r, bool streaming, size_t max, kube_line_cb on_line,
                    void *ctx)
{
    memset(r, 0, sizeof(*r));
    llhttp_settings_init(&r->settings);
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
    r->streaming = streaming;
    r->max = max;
    r->on_line = on_line;
    r->ctx = ctx;
}

void kube_resp_fini(struct kube_resp *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

int kube_resp_feed(struct kube_resp *r, const char *data, size_t len)
{
    if (r->err)
        return r->err;
    if (r->complete)
        return 0; /* bytes past the response: ignored, the connection closes */
    enum llhttp_errno e = llhttp_execute(&r->parser, data, len);
    if (e == HPE_OK || e == HPE_PAUSED)
        return 0;
    if (!r->err)
        r->err = -EBADMSG;
    return r->err;
}

int kube_resp_eof(struct kube_resp *r)
{
    if (r->err)
        return r->err;
    if (r->complete)
        return 0;
    if (llhttp_finish(&r->parser) == HPE_OK && r->complete)
        return 0;
    return -EPIPE;
}

const char *kube_resp_body(const struct kube_resp *r, size_t *len)
{
    *len = r->lines ? 0 : r->len;
    return r->buf && !r->lines ? r->buf : "";
}

bool kube_rv_valid(const char *rv)
{
    size_t n = strlen(rv);
    if (n == 0 || n >= KUBE_RV_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = rv[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static const char *const type_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

const char *kube_event_type_name(enum kube_event_type t)
{
    return (unsigned)t < 5 ? type_names[t] : "?";
}

int kube_event_parse(const char *line, size_t len, struct kube_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *type = json_object_get(root, "type");
    json_t *obj = json_object_get(root, "object");
    int err = -EBADMSG;
    if (!json_is_string(type) || !json_is_object(obj))
        goto out;
    size_t t;
    for (t = 0; t < 5 && strcmp(type_names[t], json_string_value(type)) != 0; t++)
        ;
    if (t == 5)
        goto out;
    ev->type = (enum kube_event_type)t;
    if (ev->type == KUBE_ERROR) {
        json_t *code = json_object_get(obj, "code");
        ev->code = json_is_integer(code) ? (int)json_integer_value(code) : 500;
    } else {
        const char *rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        if (!rv || !kube_rv_valid(rv))
            goto out;
        snprintf(ev->rv, sizeof(ev->rv), "%s", rv);
    }
    ev->object = json_incref(obj);
    err = 0;
out:
    json_decref(root);
    return err;
}

void kube_event_clear(struct kube_event *ev)
{
    json_decref(ev->object);
    ev->object = NULL;
}
