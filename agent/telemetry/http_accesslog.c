/* The access-log line of one request and the x-request-id meshd makes
 * (see http_metrics.h). Every value a peer sent is escaped and cut to a
 * budget, so a line is one line, and short enough (PIPE_BUF) to be
 * written whole or not at all. */
#include "telemetry/http_metrics.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Per value, in bytes of output (text) or of input (JSON). Their sum and
 * the fixed fields stay under HTTP_ACCESSLOG_LINE_MAX. */
enum {
    B_METHOD = 64,
    B_PATH = 1024,
    B_PROTOCOL = 32,
    B_XFF = 256,
    B_UA = 512,
    B_REQID = 128,
    B_AUTHORITY = 256,
    B_HOST = 64,
    B_CLUSTER = 256,
    B_FLAGS = 64,
};
_Static_assert(B_METHOD + B_PATH + B_PROTOCOL + B_XFF + B_UA + B_REQID + B_AUTHORITY + B_HOST +
                       B_CLUSTER + B_FLAGS + 512 <
                   HTTP_ACCESSLOG_LINE_MAX,
               "a text line fits PIPE_BUF");

/* Envoy's %START_TIME%: 2024-05-01T10:00:00.123Z */
static void start_time(uint64_t realtime_ns, char *buf, size_t len)
{
    time_t s = (time_t)(realtime_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(realtime_ns / 1000000u % 1000u));
}

struct line {
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    size_t n;
};

static void put(struct line *l, const char *v)
{
    size_t room = sizeof(l->buf) - 1 - l->n, n = strlen(v);
    n = n < room ? n : room;
    memcpy(l->buf + l->n, v, n);
    l->n += n;
    l->buf[l->n] = '\0';
}

static void put_u64(struct line *l, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    put(l, num);
}

/* A value from the wire, at most `budget` bytes out: \ and " backslashed,
 * control, DEL and non-ASCII bytes (and, unquoted, spaces) as \xHH; a
 * value cut short ends "...". NULL or "" is "-". */
static void put_value(struct line *l, const char *v, size_t budget, bool quoted)
{
    if (!v || !v[0]) {
        put(l, "-");
        return;
    }
    char out[B_PATH + 1];
    size_t n = 0, cap = budget < sizeof(out) ? budget : sizeof(out) - 1;
    const unsigned char *c = (const unsigned char *)v;
    for (; *c; c++) {
        char e[5];
        size_t k;
        if (*c == '\\' || *c == '"') {
            e[0] = '\\';
            e[1] = (char)*c;
            k = 2;
        } else if (*c < 0x20 || *c >= 0x7f || (!quoted && *c == ' ')) {
            snprintf(e, sizeof(e), "\\x%02x", *c);
            k = 4;
        } else {
            e[0] = (char)*c;
            k = 1;
        }
        if (n + k > cap - 3 && c[1]) /* keep room for "..." unless this is the end */
            break;
        if (n + k > cap)
            break;
        memcpy(out + n, e, k);
        n += k;
    }
    if (*c) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    put(l, out);
}

static void format_text(const struct http_request_record *r, struct line *l)
{
    char when[40];
    start_time(r->start_realtime_ns, when, sizeof(when));
    put(l, "[");
    put(l, when);
    put(l, "] \"");
    put_value(l, r->method, B_METHOD, true);
    put(l, " ");
    put_value(l, r->path, B_PATH, true);
    put(l, " ");
    put_value(l, r->protocol, B_PROTOCOL, true);
    put(l, "\" ");
    put_u64(l, r->response_code < 0 ? 0 : (uint64_t)r->response_code);
    put(l, " ");
    put_value(l, r->response_flags, B_FLAGS, false);
    /* %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
     * "%UPSTREAM_TRANSPORT_FAILURE_REASON%": not in the record. */
    put(l, " - - \"-\" ");
    put_u64(l, r->request_bytes);
    put(l, " ");
    put_u64(l, r->response_bytes);
    put(l, " ");
    put_u64(l, r->duration_ns / 1000000u);
    put(l, " ");
    if (r->upstream_service_time_ms)
        put_u64(l, r->upstream_service_time_ms);
    else
        put(l, "-");
    put(l, " \"");
    put_value(l, r->forwarded_for, B_XFF, true);
    put(l, "\" \"");
    put_value(l, r->user_agent, B_UA, true);
    put(l, "\" \"");
    put_value(l, r->request_id, B_REQID, true);
    put(l, "\" \"");
    put_value(l, r->authority, B_AUTHORITY, true);
    put(l, "\" \"");
    put_value(l, r->upstream_host, B_HOST, true);
    put(l, "\" ");
    put_value(l, r->upstream_cluster, B_CLUSTER, false);
    /* %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
     * %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME% */
    put(l, " - - - - -\n");
}

/* Length of the valid UTF-8 sequence at c (1..4), 0 if invalid. */
static size_t utf8_len(const unsigned char *c)
{
    if (*c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (*c >= 0xc2 && *c <= 0xdf)
        n = 2;
    else if (*c >= 0xe0 && *c <= 0xef) {
        n = 3;
        lo = *c == 0xe0 ? 0xa0 : 0x80;
        hi = *c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (*c >= 0xf0 && *c <= 0xf4) {
        n = 4;
        lo = *c == 0xf0 ? 0x90 : 0x80;
        hi = *c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (c[1] < lo || c[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (c[i] < 0x80 || c[i] > 0xbf)
            return 0;
    return n;
}

/* A JSON string of at most `cap` bytes of v, invalid UTF-8 and DEL as '?', never
 * cutting a character; null for NULL. */
static json_t *json_value(const char *v, size_t cap)
{
    if (!v)
        return json_null();
    char out[B_PATH + 1];
    size_t n = 0;
    if (cap > sizeof(out) - 1)
        cap = sizeof(out) - 1;
    for (const unsigned char *c = (const unsigned char *)v; *c;) {
        size_t k = utf8_len(c);
        if (n + (k ? k : 1) > cap)
            break;
        if (k && *c != 0x7f) {
            memcpy(out + n, c, k);
            c += k;
        } else { /* DEL too: no raw control byte on the line */
            out[n] = '?';
            c++;
            k = 1;
        }
        n += k;
    }
    return json_stringn(out, n);
}

static void set(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

/* Istio's default JSON encoding; `shift` divides every value's budget. */
static json_t *format_json(const struct http_request_record *r, unsigned shift)
{
    char when[40], ust[24];
    start_time(r->start_realtime_ns, when, sizeof(when));
    snprintf(ust, sizeof(ust), "%llu", (unsigned long long)r->upstream_service_time_ms);
    json_t *o = json_object();
    if (!o)
        return NULL;
    set(o, "start_time", json_string(when));
    set(o, "method", json_value(r->method, B_METHOD >> shift));
    set(o, "path", json_value(r->path, B_PATH >> shift));
    set(o, "protocol", json_value(r->protocol, B_PROTOCOL >> shift));
    set(o, "response_code", json_integer(r->response_code < 0 ? 0 : r->response_code));
    set(o, "response_flags",
        json_value(r->response_flags ? r->response_flags : "-", B_FLAGS >> shift));
    set(o, "response_code_details", json_null());
    set(o, "connection_termination_details", json_null());
    set(o, "upstream_transport_failure_reason", json_null());
    set(o, "bytes_received", json_integer((json_int_t)r->request_bytes));
    set(o, "bytes_sent", json_integer((json_int_t)r->response_bytes));
    set(o, "duration", json_integer((json_int_t)(r->duration_ns / 1000000u)));
    set(o, "upstream_service_time", r->upstream_service_time_ms ? json_string(ust) : json_null());
    set(o, "x_forwarded_for", json_value(r->forwarded_for, B_XFF >> shift));
    set(o, "user_agent", json_value(r->user_agent, B_UA >> shift));
    set(o, "request_id", json_value(r->request_id, B_REQID >> shift));
    set(o, "authority", json_value(r->authority, B_AUTHORITY >> shift));
    set(o, "upstream_host", json_value(r->upstream_host, B_HOST >> shift));
    set(o, "upstream_cluster", json_value(r->upstream_cluster, B_CLUSTER >> shift));
    set(o, "upstream_local_address", json_null());
    set(o, "downstream_local_address", json_null());
    set(o, "downstream_remote_address", json_null());
    set(o, "requested_server_name", json_null());
    set(o, "route_name", json_null());
    return o;
}

/* ASCII-only JSON escapes up to 6 bytes per input byte: smaller budgets
 * until the line fits (shift 4 always does). */
static void format_json_line(const struct http_request_record *r, struct line *l)
{
    for (unsigned shift = 0; shift <= 4; shift += 2) {
        json_t *o = format_json(r, shift);
        size_t n = o ? json_dumpb(o, l->buf, sizeof(l->buf) - 2,
                                  JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)
                     : 0;
        json_decref(o);
        if (n > 0 && n <= sizeof(l->buf) - 2) {
            l->buf[n++] = '\n';
            l->buf[n] = '\0';
            l->n = n;
            return;
        }
    }
    put(l, "{}\n"); /* out of memory */
}

size_t http_accesslog_format(const struct http_request_record *r, enum accesslog_format fmt,
                             char *buf, size_t len)
{
    struct line l = {.n = 0};
    if (!len)
        return 0;
    if (fmt == ACCESSLOG_JSON)
        format_json_line(r, &l);
    else
        format_text(r, &l);
    size_t n = l.n < len ? l.n : len - 1;
    memcpy(buf, l.buf, n);
    buf[n] = '\0';
    return n;
}

bool http_accesslog_write(int fd, const struct http_request_record *r, enum accesslog_format fmt)
{
    char line[HTTP_ACCESSLOG_LINE_MAX + 1];
    size_t n = http_accesslog_format(r, fmt, line, sizeof(line));
    return write(fd, line, n) == (ssize_t)n;
}

void http_request_id(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1 && getrandom(b, sizeof(b), GRND_NONBLOCK) != sizeof(b)) {
        /* No entropy at all: still a well-formed, per-call distinct id. */
        static uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, c = ++counter;
        memcpy(b, &a, 8);
        memcpy(b + 8, &c, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}
