/* Bounded series table keyed by Istio labels (see series.h). */
#include "telemetry/series.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"

/* The names of tcp_metrics.h's labels: here, where label sets are
 * rendered, so that tcp_metrics calls the table and never the reverse. */
static const char *const label_names[TL__COUNT] = {
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
};

const char *tcp_label_name(enum tcp_label l)
{
    return (unsigned)l < TL__COUNT ? label_names[l] : "?";
}

#define BUCKETS 4096

struct series {
    struct tcp_labels labels;
    char extra[SERIES_EXTRA_MAX][SERIES_EXTRA_LEN];
    uint64_t updated_ns;
    struct series *next;
    alignas(max_align_t) unsigned char payload[];
};

struct series_table {
    const struct series_schema *schema; /* borrowed: a static */
    struct series *bucket[BUCKETS];
    struct series *last; /* the last one asked for: a keep-alive pool asks for it again */
    size_t count, max;
    uint64_t dropped, expiry_ns;
};

int series_table_new(const struct series_schema *schema, size_t max, uint64_t expiry_ns,
                     struct series_table **out)
{
    if (schema->nextra > SERIES_EXTRA_MAX)
        return -EINVAL;
    struct series_table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->schema = schema;
    t->max = max;
    t->expiry_ns = expiry_ns;
    *out = t;
    return 0;
}

void series_table_free(struct series_table *t)
{
    if (!t)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct series *s = t->bucket[b], *n; s; s = n) {
            n = s->next;
            free(s);
        }
    free(t);
}

/* One label into the hash, eight bytes a step (a byte-wise FNV over the
 * ~25 labels of every request was a visible share of the HTTP carrier's
 * profile); the length goes in too, so ("ab","c") != ("a","bc"). */
static uint64_t mix(uint64_t h, const char *c)
{
    size_t n = strlen(c), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, c + i, n - i); /* the tail, n - i < 8 bytes: the top byte is the length's */
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* The key as stored: extra values truncated to their slot. */
static void extra_key(const struct series_table *t, const char *const *extra,
                      char out[SERIES_EXTRA_MAX][SERIES_EXTRA_LEN])
{
    memset(out, 0, SERIES_EXTRA_MAX * SERIES_EXTRA_LEN);
    for (size_t i = 0; i < t->schema->nextra; i++)
        str_copy(out[i], SERIES_EXTRA_LEN, extra && extra[i] ? extra[i] : "");
}

/* A label set with one value read from elsewhere (`over`, index `at`; -1:
 * none): a request's own response_flags label a series without a copy of
 * its ~3 KiB label set. */
struct key_view {
    const struct tcp_labels *l;
    int at;
    const char *over;
};

static const char *kv_get(const struct key_view *k, int i)
{
    return i == k->at ? k->over : k->l->v[i];
}

static uint32_t key_hash(const struct key_view *k, char extra[][SERIES_EXTRA_LEN], size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < TL__COUNT; i++)
        h = mix(h, kv_get(k, i));
    for (size_t i = 0; i < n; i++)
        h = mix(h, extra[i]);
    return (uint32_t)(h ^ (h >> 32));
}

static bool key_equal(const struct series *s, const struct key_view *k,
                      char extra[][SERIES_EXTRA_LEN], size_t n)
{
    for (int i = 0; i < TL__COUNT; i++)
        if (strcmp(s->labels.v[i], kv_get(k, i)) != 0)
            return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->extra[i], extra[i]) != 0)
            return false;
    return true;
}

void *series_table_get(struct series_table *t, const struct tcp_labels *l, const char *const *extra,
                       uint64_t now_ns)
{
    return series_table_get_with(t, l, -1, NULL, extra, now_ns);
}

void *series_table_get_with(struct series_table *t, const struct tcp_labels *l, int label,
                            const char *value, const char *const *extra, uint64_t now_ns)
{
    char key[SERIES_EXTRA_MAX][SERIES_EXTRA_LEN];
    size_t n = t->schema->nextra;
    /* The value as a stored label would hold it: truncated to its slot. */
    char over[TCP_LABEL_MAX];
    bool replace = label >= 0 && label < TL__COUNT && value;
    if (replace)
        str_copy(over, sizeof(over), value);
    const struct key_view k = {l, replace ? label : -1, over};
    extra_key(t, extra, key);
    if (t->last && key_equal(t->last, &k, key, n)) { /* no hash: compared only */
        t->last->updated_ns = now_ns;
        return t->last->payload;
    }
    uint32_t b = key_hash(&k, key, n) % BUCKETS;
    for (struct series *s = t->bucket[b]; s; s = s->next)
        if (key_equal(s, &k, key, n)) {
            s->updated_ns = now_ns;
            t->last = s;
            return s->payload;
        }
    if (t->count >= t->max) {
        t->dropped++;
        return NULL;
    }
    struct series *s = calloc(1, sizeof(*s) + t->schema->payload);
    if (!s) {
        t->dropped++;
        return NULL;
    }
    s->labels = *l;
    if (replace)
        memcpy(s->labels.v[label], over, sizeof(over));
    memcpy(s->extra, key, sizeof(key));
    s->updated_ns = now_ns;
    if (t->schema->init)
        t->schema->init(s->payload);
    s->next = t->bucket[b];
    t->bucket[b] = s;
    t->count++;
    t->last = s;
    return s->payload;
}

void series_table_touch(void *payload, uint64_t now_ns)
{
    struct series *s =
        (struct series *)(void *)((unsigned char *)payload - offsetof(struct series, payload));
    s->updated_ns = now_ns;
}

void series_table_expire(struct series_table *t, uint64_t now_ns)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct series **pp = &t->bucket[b]; *pp;) {
            struct series *s = *pp;
            bool busy = t->schema->busy && t->schema->busy(s->payload);
            if (!busy && now_ns - s->updated_ns > t->expiry_ns) {
                *pp = s->next;
                if (s == t->last)
                    t->last = NULL;
                free(s);
                t->count--;
            } else {
                pp = &s->next;
            }
        }
    }
}

size_t series_table_count(const struct series_table *t)
{
    return t->count;
}

uint64_t series_table_dropped(const struct series_table *t)
{
    return t->dropped;
}

/* One label, escaped per the exposition format; `room` bounds it. */
static size_t put_label(char *out, size_t room, bool first, const char *name, const char *v)
{
    size_t n = 0;
    int w = snprintf(out, room, "%s%s=\"", first ? "" : ",", name);
    if (w < 0 || (size_t)w + 2 >= room) {
        out[0] = '\0'; /* no room: the label is left out whole */
        return 0;
    }
    n = (size_t)w;
    for (const unsigned char *c = (const unsigned char *)v; *c && n + 3 < room; c++) {
        if (*c == '\\' || *c == '"') {
            out[n++] = '\\';
            out[n++] = (char)*c;
        } else if (*c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *c < 0x20 || *c >= 0x7f ? '?' : (char)*c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return n;
}

static void render_labels(const struct series_table *t, const struct series *s, char *out,
                          size_t room)
{
    const struct series_schema *sc = t->schema;
    size_t total = sc->order ? sc->norder : TL__COUNT + sc->nextra, n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < total; i++) {
        int k = sc->order ? sc->order[i] : (int)i;
        const char *name, *v;
        if (k < TL__COUNT) {
            name = tcp_label_name((enum tcp_label)k);
            v = s->labels.v[k][0] ? s->labels.v[k] : "unknown";
        } else if ((size_t)(k - TL__COUNT) < sc->nextra) {
            name = sc->extra_names[k - TL__COUNT];
            v = s->extra[k - TL__COUNT];
        } else {
            continue;
        }
        n += put_label(out + n, room - n, n == 0, name, v);
    }
}

void series_table_each(const struct series_table *t, series_fn fn, void *ctx)
{
    char labels[SERIES_LABELS_MAX];
    for (size_t b = 0; b < BUCKETS; b++)
        for (const struct series *s = t->bucket[b]; s; s = s->next) {
            render_labels(t, s, labels, sizeof(labels));
            fn(ctx, labels, s->payload);
        }
}
