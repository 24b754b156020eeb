/* OTLP/HTTP JSON encoding (see otlp.h): each Span object is built with
 * jansson; the request around a batch joins those texts, each already
 * valid JSON, inside jansson-built resource objects. Strings from the
 * wire may be anything: each is cut at OTLP_VALUE_MAX bytes and, when it
 * is not valid UTF-8 (or was cut inside a character), its non-ASCII bytes
 * become '?', so a span always encodes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/textbuf.h"
#include "telemetry/otlp.h"
#include "trace/trace.h"

#define OTLP_VALUE_MAX 1024

static json_t *safe_string(const char *s)
{
    size_t len = strnlen(s, OTLP_VALUE_MAX);
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char buf[OTLP_VALUE_MAX];
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    return json_stringn(buf, len);
}

static json_t *u64_string(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return json_string(buf);
}

static json_t *hex_id(const uint8_t *id, size_t len)
{
    char buf[33];
    trace_hex(id, len, buf);
    return json_string(buf);
}

static json_t *attr(const struct otlp_attr *a)
{
    json_t *value;
    if (a->str) {
        value = json_pack("{so}", "stringValue", safe_string(a->str));
    } else {
        char buf[24];
        snprintf(buf, sizeof(buf), "%lld", (long long)a->i);
        value = json_pack("{ss}", "intValue", buf); /* int64: a string in JSON */
    }
    return value ? json_pack("{so,so}", "key", safe_string(a->key), "value", value) : NULL;
}

char *otlp_span_encode(const struct otlp_span *s)
{
    json_t *attrs = json_array();
    for (size_t i = 0; attrs && i < s->nattrs; i++)
        if (json_array_append_new(attrs, attr(&s->attrs[i])) != 0)
            break;
    json_t *span = json_pack("{so,so,so,si,so,so,so,s{si}}", "traceId", hex_id(s->trace_id, 16),
                             "spanId", hex_id(s->span_id, 8), "name", safe_string(s->name), "kind",
                             (int)s->kind, "startTimeUnixNano", u64_string(s->start_unix_ns),
                             "endTimeUnixNano", u64_string(s->end_unix_ns), "attributes",
                             attrs ? attrs : json_array(), "status", "code", s->error ? 2 : 0);
    if (span && s->parent_id)
        json_object_set_new(span, "parentSpanId", hex_id(s->parent_id, 8));
    char *out = span ? json_dumps(span, JSON_COMPACT) : NULL;
    json_decref(span);
    return out;
}

/* {"resource":{...},"scopeSpans":[{"scope":{...},"spans":[ */
static void open_resource(struct textbuf *b, const char *service)
{
    json_t *res = json_pack("{s[{s:s,s:{so}}]}", "attributes", "key", "service.name", "value",
                            "stringValue", safe_string(service));
    char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
    json_decref(res);
    if (!text) {
        b->oom = true;
        return;
    }
    textbuf_printf(
        b, "{\"resource\":%s,\"scopeSpans\":[{\"scope\":{\"name\":\"meshd\"},\"spans\":[", text);
    free(text);
}

char *otlp_request_encode(const char *const *services, const char *const *spans, size_t n,
                          size_t *len)
{
    struct textbuf b = {0};
    bool *done = calloc(n ? n : 1, sizeof(*done));
    if (!done)
        return NULL;
    textbuf_printf(&b, "{\"resourceSpans\":[");
    bool first_res = true;
    for (size_t i = 0; i < n; i++) { /* one resource per service, in order of appearance */
        if (done[i])
            continue;
        textbuf_printf(&b, "%s", first_res ? "" : ",");
        first_res = false;
        open_resource(&b, services[i]);
        bool first = true;
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp(services[j], services[i]) != 0)
                continue;
            done[j] = true;
            textbuf_printf(&b, "%s%s", first ? "" : ",", spans[j]);
            first = false;
        }
        textbuf_printf(&b, "]}]}");
    }
    textbuf_printf(&b, "]}");
    free(done);
    if (b.oom) {
        textbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
