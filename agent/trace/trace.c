/* Trace context parsing and propagation (see trace.h). Every value is
 * hostile: lengths are checked before a byte is read, hex is lower-case
 * only (W3C: "HEXDIGLC"; B3: "lower-hex"), all-zero ids are invalid. */
#include "trace/trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

const char *trace_field_get(const struct http_field *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(f[i].name, name) == 0)
            return f[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 2 * len lower-case hex characters at s into out; false if not. */
static bool unhex(const char *s, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (id[i])
            return false;
    return true;
}

void trace_hex(const uint8_t *id, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * len] = '\0';
}

int trace_parse_traceparent(const char *v, struct trace_incoming *out)
{
    struct trace_incoming in = {.format = TRACE_W3C, .has_span = true};
    uint8_t version, flags;
    /* 00-{32}-{16}-{2}: 55 characters exactly for version 00. */
    if (!v || strlen(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -EINVAL;
    if (!unhex(v, 1, &version) || version != 0)
        return -EINVAL;
    if (!unhex(v + 3, 16, in.trace_id) || !unhex(v + 36, 8, in.span_id) ||
        !unhex(v + 53, 1, &flags))
        return -EINVAL;
    if (all_zero(in.trace_id, 16) || all_zero(in.span_id, 8))
        return -EINVAL;
    in.sampled = flags & 1;
    *out = in;
    return 0;
}

/* A B3 trace id: 16 or 32 hex; a 64-bit one is the low half of ours. */
static bool b3_trace_id(const char *s, size_t len, struct trace_incoming *in)
{
    memset(in->trace_id, 0, sizeof(in->trace_id));
    in->trace_id_64 = len == 16;
    if (len == 32)
        return unhex(s, 16, in->trace_id) && !all_zero(in->trace_id, 16);
    return len == 16 && unhex(s, 8, in->trace_id + 8) && !all_zero(in->trace_id, 16);
}

static bool b3_span_id(const char *s, size_t len, uint8_t out[8])
{
    return len == 16 && unhex(s, 8, out) && !all_zero(out, 8);
}

/* B3's sampling state: 1/0/d (and true/false in x-b3-sampled). */
static bool b3_sampling(const char *s, size_t len, bool words, struct trace_incoming *in)
{
    if (len == 1 && (s[0] == '0' || s[0] == '1')) {
        in->sampled = s[0] - '0';
        return true;
    }
    if (len == 1 && s[0] == 'd') {
        in->sampled = 1;
        in->debug = true;
        return !words; /* "d" is the single header's only */
    }
    if (words && len == 4 && strncmp(s, "true", 4) == 0) {
        in->sampled = 1;
        return true;
    }
    if (words && len == 5 && strncmp(s, "false", 5) == 0) {
        in->sampled = 0;
        return true;
    }
    return false;
}

int trace_parse_b3_single(const char *v, struct trace_incoming *out)
{
    struct trace_incoming in = {.format = TRACE_B3_SINGLE, .sampled = -1};
    if (!v)
        return -EINVAL;
    size_t len = strlen(v);
    if (len == 1) { /* a decision alone */
        if (!b3_sampling(v, 1, false, &in))
            return -EINVAL;
        *out = in;
        return 0;
    }
    /* trace-span[-sampled[-parent]] */
    const char *parts[4];
    size_t lens[4], np = 0;
    for (const char *p = v; np < 4;) {
        const char *dash = strchr(p, '-');
        parts[np] = p;
        lens[np++] = dash ? (size_t)(dash - p) : strlen(p);
        if (!dash)
            break;
        p = dash + 1;
        if (np == 4)
            return -EINVAL; /* a fifth part */
    }
    if (np < 2 || !b3_trace_id(parts[0], lens[0], &in) ||
        !b3_span_id(parts[1], lens[1], in.span_id))
        return -EINVAL;
    if (np >= 3 && !b3_sampling(parts[2], lens[2], false, &in))
        return -EINVAL;
    uint8_t parent[8];
    if (np == 4 && !b3_span_id(parts[3], lens[3], parent))
        return -EINVAL;
    in.has_span = true;
    *out = in;
    return 0;
}

int trace_parse_b3_multi(const struct http_field *f, size_t n, struct trace_incoming *out)
{
    struct trace_incoming in = {.format = TRACE_B3_MULTI, .sampled = -1, .has_span = true};
    const char *tid = trace_field_get(f, n, "x-b3-traceid");
    const char *sid = trace_field_get(f, n, "x-b3-spanid");
    const char *pid = trace_field_get(f, n, "x-b3-parentspanid");
    const char *smp = trace_field_get(f, n, "x-b3-sampled");
    const char *flg = trace_field_get(f, n, "x-b3-flags");
    if (!tid)
        return -ENOENT;
    if (!b3_trace_id(tid, strlen(tid), &in) || !sid || !b3_span_id(sid, strlen(sid), in.span_id))
        return -EINVAL;
    uint8_t parent[8];
    if (pid && !b3_span_id(pid, strlen(pid), parent))
        return -EINVAL;
    if (smp && !b3_sampling(smp, strlen(smp), true, &in))
        return -EINVAL;
    if (flg && strcmp(flg, "1") == 0) {
        in.debug = true;
        in.sampled = 1; /* debug implies an accept */
    }
    *out = in;
    return 0;
}

/* A 64-bit B3 trace id that is the chosen 128-bit one: sent on as 16 hex. */
static bool same_64(const struct trace_incoming *b3, const struct trace_incoming *chosen)
{
    return b3->has_span && b3->trace_id_64 && memcmp(b3->trace_id, chosen->trace_id, 16) == 0;
}

void trace_extract(const struct http_field *f, size_t n, struct trace_incoming *out)
{
    static const struct trace_incoming none = {.format = TRACE_NONE, .sampled = -1};
    struct trace_incoming w3c, single, multi;
    const char *tp = trace_field_get(f, n, "traceparent");
    const char *b3 = trace_field_get(f, n, "b3");
    bool has_w3c = tp && trace_parse_traceparent(tp, &w3c) == 0;
    bool has_single = b3 && trace_parse_b3_single(b3, &single) == 0;
    bool has_multi = trace_parse_b3_multi(f, n, &multi) == 0;
    *out = has_w3c ? w3c : has_single ? single : has_multi ? multi : none;
    out->b3_single = has_single;
    out->b3_multi = has_multi;
    if ((has_single && same_64(&single, out)) || (has_multi && same_64(&multi, out)))
        out->trace_id_64 = true;
}

uint64_t trace_random(void)
{
    static uint64_t state; /* the loop thread's: see trace.h */
    if (!state && RAND_bytes((unsigned char *)&state, sizeof(state)) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ull); /* SplitMix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bool trace_decide(const struct trace_incoming *in, uint32_t ppm)
{
    if (in && in->sampled >= 0)
        return in->sampled == 1;
    if (ppm >= 1000000)
        return true;
    return ppm && trace_random() % 1000000 < ppm;
}

static void random_id(uint8_t *id, size_t len)
{
    do {
        for (size_t i = 0; i < len; i += 8) {
            uint64_t r = trace_random();
            memcpy(id + i, &r, len - i < 8 ? len - i : 8);
        }
    } while (all_zero(id, len));
}

void trace_span_begin(struct trace_span *s, const struct trace_incoming *in, bool sampled,
                      bool server, uint64_t start_real_ns)
{
    *s = (struct trace_span){.active = true,
                             .sampled = sampled,
                             .report = sampled,
                             .server = server,
                             .start_real_ns = start_real_ns};
    bool child = in && in->format != TRACE_NONE && in->has_span;
    if (child) {
        memcpy(s->trace_id, in->trace_id, 16);
        memcpy(s->parent_id, in->span_id, 8);
        s->has_parent = true;
        s->trace_id_64 = in->trace_id_64;
    } else {
        random_id(s->trace_id, 16);
    }
    s->in_format = in ? in->format : TRACE_NONE;
    s->b3_single = in && (in->b3_single || in->format == TRACE_B3_SINGLE);
    s->b3_multi = in && (in->b3_multi || in->format == TRACE_B3_MULTI);
    random_id(s->span_id, 8);
}

bool trace_span_tag(struct trace_span *s, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value);
    if (s->ntags == UINT8_MAX || s->tags_len + kl + vl + 2 > sizeof(s->tags))
        return false;
    memcpy(s->tags + s->tags_len, key, kl + 1);
    memcpy(s->tags + s->tags_len + kl + 1, value, vl + 1);
    s->tags_len = (uint16_t)(s->tags_len + kl + vl + 2);
    s->ntags++;
    return true;
}

/* The incoming fields this hop replaces. */
static bool replaced(const struct trace_span *s, const struct http_field *f)
{
    static const char *const names[] = {"traceparent", "b3",           "x-b3-traceid",
                                        "x-b3-spanid", "x-b3-sampled", "x-b3-parentspanid",
                                        NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(f->name, names[i]) == 0)
            return true;
    return s->in_format != TRACE_W3C && strcasecmp(f->name, "tracestate") == 0;
}

static void push(struct http_field *f, size_t *n, size_t cap, const char *name, const char *value)
{
    if (*n < cap)
        f[(*n)++] = http_field_of(name, value);
}

size_t trace_fields(const struct trace_span *s, struct http_field *f, size_t n, size_t cap,
                    struct trace_out *buf)
{
    if (!s->active)
        return n;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!replaced(s, &f[i]))
            f[kept++] = f[i];
    char tid[33], sid[17];
    trace_hex(s->trace_id, 16, tid);
    trace_hex(s->span_id, 8, sid);
    snprintf(buf->traceparent, sizeof(buf->traceparent), "00-%s-%s-%s", tid, sid,
             s->sampled ? "01" : "00");
    push(f, &kept, cap, "traceparent", buf->traceparent);
    const char *b3tid = s->trace_id_64 ? tid + 16 : tid;
    snprintf(buf->b3_trace, sizeof(buf->b3_trace), "%s", b3tid);
    snprintf(buf->b3_span, sizeof(buf->b3_span), "%s", sid);
    trace_hex(s->parent_id, 8, buf->b3_parent);
    if (s->b3_single) {
        snprintf(buf->b3, sizeof(buf->b3), "%s-%s-%c%s%s", b3tid, sid, s->sampled ? '1' : '0',
                 s->has_parent ? "-" : "", s->has_parent ? buf->b3_parent : "");
        push(f, &kept, cap, "b3", buf->b3);
    }
    if (s->b3_multi) {
        push(f, &kept, cap, "x-b3-traceid", buf->b3_trace);
        push(f, &kept, cap, "x-b3-spanid", buf->b3_span);
        if (s->has_parent)
            push(f, &kept, cap, "x-b3-parentspanid", buf->b3_parent);
        push(f, &kept, cap, "x-b3-sampled", s->sampled ? "1" : "0");
    }
    return kept;
}
