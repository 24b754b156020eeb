/* The OTLP/HTTP JSON collector's store (see traces.h): validation of one
 * export into spans, a ring of them, and the queries of the trace page. */
#include "traces.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct span {
    char trace_id[33], span_id[17], parent_id[17]; /* lowercase hex, parent "" at a root */
    char *name, *service;                          /* owned */
    int kind;
    bool error; /* status.code 2 (ERROR) */
    uint64_t start_ns, end_ns;
    json_t *attributes; /* owned: {key: value} */
};

struct trace_store {
    struct span *ring; /* cap slots; the oldest at head once full */
    size_t cap, n, head;
    struct trace_stats stats;
};

int trace_store_new(size_t capacity, struct trace_store **out)
{
    if (capacity == 0 || capacity > 1000000)
        return -EINVAL;
    struct trace_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->ring = calloc(capacity, sizeof(*s->ring)))) {
        free(s);
        return -ENOMEM;
    }
    s->cap = capacity;
    *out = s;
    return 0;
}

static void span_clear(struct span *sp)
{
    free(sp->name);
    free(sp->service);
    json_decref(sp->attributes);
    memset(sp, 0, sizeof(*sp));
}

void trace_store_free(struct trace_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        span_clear(&s->ring[i]);
    free(s->ring);
    free(s);
}

/* ---- validation ---------------------------------------------------------- */

/* A hex id of exactly `len` digits, not all zero (W3C: invalid), into out
 * lowercased. An absent or empty one is allowed only when `optional`. */
static bool hex_id(const json_t *v, size_t len, bool optional, char *out)
{
    const char *h = json_string_value(v);
    out[0] = '\0';
    if (!h || !*h)
        return optional && (!v || json_is_string(v));
    if (strlen(h) != len)
        return false;
    bool nonzero = false;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        nonzero |= c != '0';
        out[i] = c;
    }
    out[len] = '\0';
    return nonzero;
}

/* OTLP JSON's uint64: a decimal string (the spec) or a number. */
static bool unix_nano(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 20)
        return false;
    uint64_t x = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*c - '0');
    }
    *out = x;
    return true;
}

static json_t *cut_string(const char *s)
{
    size_t n = strnlen(s, TRACE_MAX_STR);
    /* Back off to a UTF-8 boundary so jansson accepts the cut. */
    while (n > 0 && n == TRACE_MAX_STR && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return json_stringn(s, n);
}

/* An AnyValue as a plain JSON value: string, int (a string in OTLP JSON),
 * bool or double; NULL for the kinds the page does not show. */
static json_t *any_value(const json_t *v)
{
    const json_t *x;
    if ((x = json_object_get(v, "stringValue")) && json_is_string(x))
        return cut_string(json_string_value(x));
    if ((x = json_object_get(v, "intValue"))) {
        if (json_is_integer(x))
            return json_integer(json_integer_value(x));
        const char *s = json_string_value(x);
        char *end;
        long long n = s ? strtoll(s, &end, 10) : 0;
        return s && *s && !*end ? json_integer(n) : NULL;
    }
    if ((x = json_object_get(v, "boolValue")) && json_is_boolean(x))
        return json_boolean(json_is_true(x));
    if ((x = json_object_get(v, "doubleValue")) && json_is_number(x))
        return json_real(json_number_value(x));
    return NULL;
}

static json_t *attributes(const json_t *arr)
{
    json_t *out = json_object();
    size_t i;
    const json_t *a;
    json_array_foreach(arr, i, a)
    {
        const char *key = json_string_value(json_object_get(a, "key"));
        if (!out || json_object_size(out) >= TRACE_MAX_ATTRS)
            break;
        json_t *val = key && strlen(key) < 128 ? any_value(json_object_get(a, "value")) : NULL;
        if (val)
            json_object_set_new(out, key, val);
    }
    return out;
}

static bool span_parse(const json_t *j, const char *service, struct span *sp)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!json_is_object(j) || !name || !*name ||
        !hex_id(json_object_get(j, "traceId"), 32, false, sp->trace_id) ||
        !hex_id(json_object_get(j, "spanId"), 16, false, sp->span_id) ||
        !hex_id(json_object_get(j, "parentSpanId"), 16, true, sp->parent_id) ||
        !unix_nano(json_object_get(j, "startTimeUnixNano"), &sp->start_ns) ||
        !unix_nano(json_object_get(j, "endTimeUnixNano"), &sp->end_ns) || sp->end_ns < sp->start_ns)
        return false;
    json_t *name_j = cut_string(name);
    sp->name = name_j ? strdup(json_string_value(name_j)) : NULL;
    json_decref(name_j);
    sp->service = strndup(service, TRACE_MAX_STR);
    sp->kind = (int)json_integer_value(json_object_get(j, "kind"));
    sp->error = json_integer_value(json_object_get(json_object_get(j, "status"), "code")) == 2;
    sp->attributes = attributes(json_object_get(j, "attributes"));
    return sp->name && sp->service && sp->attributes;
}

static void store_put(struct trace_store *s, struct span *sp)
{
    size_t slot;
    if (s->n < s->cap) {
        slot = (s->head + s->n++) % s->cap;
    } else { /* full: the oldest goes */
        slot = s->head;
        s->head = (s->head + 1) % s->cap;
        span_clear(&s->ring[slot]);
        s->stats.evicted++;
    }
    s->ring[slot] = *sp;
    s->stats.stored++;
}

static const char *resource_service(const json_t *rs)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(json_object_get(rs, "resource"), "attributes"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")) ?: "", "service.name") != 0)
            continue;
        const char *v =
            json_string_value(json_object_get(json_object_get(a, "value"), "stringValue"));
        if (v && *v)
            return v;
    }
    return "unknown_service";
}

int trace_store_ingest(struct trace_store *s, const char *body, size_t len, size_t *rejected,
                       char *err, size_t errlen)
{
    json_error_t jerr;
    *rejected = 0;
    /* Duplicate keys are how a parser differential hides a field. */
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *rss = json_object_get(doc, "resourceSpans");
    if (!doc || !json_is_array(rss)) {
        snprintf(err, errlen, "%s",
                 doc ? "want an object with a \"resourceSpans\" array" : jerr.text);
        json_decref(doc);
        return -EINVAL;
    }
    /* Counted first, so a too large export is refused whole. */
    size_t total = 0, i, j, k;
    const json_t *rs, *ss, *sj;
    json_array_foreach(rss, i, rs) json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        total += json_array_size(json_object_get(ss, "spans"));
    if (total > TRACE_MAX_SPANS_EXPORT) {
        snprintf(err, errlen, "%zu spans in one export, at most %d", total, TRACE_MAX_SPANS_EXPORT);
        json_decref(doc);
        return -E2BIG;
    }
    int accepted = 0;
    json_array_foreach(rss, i, rs)
    {
        const char *service = resource_service(rs);
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
            json_array_foreach(json_object_get(ss, "spans"), k, sj)
        {
            struct span sp = {0};
            s->stats.received++;
            if (!span_parse(sj, service, &sp)) {
                span_clear(&sp);
                s->stats.rejected++;
                (*rejected)++;
                continue;
            }
            store_put(s, &sp);
            accepted++;
        }
    }
    json_decref(doc);
    return accepted;
}

/* ---- queries ------------------------------------------------------------- */

static const struct span *at(const struct trace_store *s, size_t i)
{
    return &s->ring[(s->head + i) % s->cap];
}

static int by_trace_then_start(const void *a, const void *b)
{
    const struct span *x = *(const struct span *const *)a, *y = *(const struct span *const *)b;
    int c = strcmp(x->trace_id, y->trace_id);
    if (c)
        return c;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    /* Same start: a root (or the earlier-ended, wider span) first. */
    if (!x->parent_id[0] != !y->parent_id[0])
        return x->parent_id[0] ? 1 : -1;
    return x->end_ns > y->end_ns ? -1 : x->end_ns < y->end_ns;
}

static const struct span **sorted(const struct trace_store *s)
{
    const struct span **v = calloc(s->n ? s->n : 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        v[i] = at(s, i);
    qsort(v, s->n, sizeof(*v), by_trace_then_start);
    return v;
}

static char *nano_str(uint64_t ns, char buf[24])
{
    snprintf(buf, 24, "%llu", (unsigned long long)ns);
    return buf;
}

/* The summary of spans v[0..n) of one trace. */
static json_t *summary(const struct span *const *v, size_t n)
{
    uint64_t start = v[0]->start_ns, end = v[0]->end_ns;
    const struct span *root = v[0];
    json_t *services = json_array();
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        start = v[i]->start_ns < start ? v[i]->start_ns : start;
        end = v[i]->end_ns > end ? v[i]->end_ns : end;
        if (!v[i]->parent_id[0] && root->parent_id[0])
            root = v[i];
        errors += v[i]->error;
        bool seen = false;
        for (size_t k = 0; k < json_array_size(services); k++)
            seen |= strcmp(json_string_value(json_array_get(services, k)), v[i]->service) == 0;
        if (!seen)
            json_array_append_new(services, json_string(v[i]->service));
    }
    char b[24];
    return json_pack("{s:s,s:s,s:s,s:s,s:f,s:i,s:o,s:i}", "traceId", root->trace_id, "name",
                     root->name, "service", root->service, "startUnixNano", nano_str(start, b),
                     "durationUs", (double)(end - start) / 1000.0, "spans", (int)n, "services",
                     services, "errors", errors);
}

static int by_start_desc(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "startUnixNano"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "startUnixNano"));
    size_t lx = strlen(x), ly = strlen(y); /* decimal strings: longer is later */
    return lx != ly ? (lx < ly ? 1 : -1) : -strcmp(x, y);
}

json_t *trace_store_search(const struct trace_store *s, const char *service,
                           uint64_t min_duration_us, size_t limit)
{
    const struct span **v = sorted(s);
    json_t **found = calloc(s->n ? s->n : 1, sizeof(*found));
    json_t *out = NULL;
    size_t nfound = 0;
    if (!v || !found)
        goto done;
    for (size_t i = 0; i < s->n;) {
        size_t j = i + 1;
        bool match = !service || !*service;
        while (j < s->n && strcmp(v[j]->trace_id, v[i]->trace_id) == 0)
            j++;
        for (size_t k = i; k < j && !match; k++)
            match = strcmp(v[k]->service, service) == 0;
        json_t *sum = match ? summary(v + i, j - i) : NULL;
        if (sum && json_real_value(json_object_get(sum, "durationUs")) >= (double)min_duration_us)
            found[nfound++] = sum;
        else
            json_decref(sum);
        i = j;
    }
    qsort(found, nfound, sizeof(*found), by_start_desc);
    out = json_array();
    limit = limit > TRACE_MAX_RESULTS ? TRACE_MAX_RESULTS : limit;
    for (size_t i = 0; i < nfound; i++) {
        if (out && i < limit)
            json_array_append(out, found[i]);
        json_decref(found[i]);
    }
done:
    free(found);
    free(v);
    return out;
}

json_t *trace_store_get(const struct trace_store *s, const char *trace_id)
{
    const struct span **v = sorted(s);
    json_t *spans = v ? json_array() : NULL;
    char b[24];
    for (size_t i = 0; spans && i < s->n; i++) {
        if (strcmp(v[i]->trace_id, trace_id) != 0)
            continue;
        json_array_append_new(spans,
                              json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:f,s:b,s:O}", "spanId",
                                        v[i]->span_id, "parentSpanId", v[i]->parent_id, "name",
                                        v[i]->name, "service", v[i]->service, "kind", v[i]->kind,
                                        "startUnixNano", nano_str(v[i]->start_ns, b), "durationUs",
                                        (double)(v[i]->end_ns - v[i]->start_ns) / 1000.0, "error",
                                        v[i]->error, "attributes", v[i]->attributes));
    }
    free(v);
    if (!spans || json_array_size(spans) == 0) {
        json_decref(spans);
        return NULL;
    }
    return json_pack("{s:s,s:o}", "traceId", trace_id, "spans", spans);
}

json_t *trace_store_services(const struct trace_store *s)
{
    json_t *set = json_object(), *out = json_array();
    for (size_t i = 0; set && i < s->n; i++)
        json_object_set_new(set, at(s, i)->service, json_true());
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(out, json_string(k));
    json_decref(set);
    return out;
}

void trace_store_stats(const struct trace_store *s, struct trace_stats *out)
{
    *out = s->stats;
}
