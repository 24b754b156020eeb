/* Access-log lines (see accesslog.h). */
#include "telemetry/accesslog.h"

#include <jansson.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/addr.h"
#include "proxy/records.h"

static void iso_time(uint64_t unix_ms, char *buf, size_t len)
{
    time_t s = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(unix_ms % 1000));
}

size_t accesslog_format(const struct conn_record *r, enum accesslog_format fmt, char *buf,
                        size_t len)
{
    char when[40], src[ADDR_STRLEN], dst[ADDR_STRLEN], hbone[ADDR_STRLEN] = "";
    iso_time(r->start_unix_ms + r->duration_ms, when, sizeof(when));
    addr_format(&r->src, src, sizeof(src));
    addr_format(&r->orig_dst, dst, sizeof(dst));
    if (r->hbone.family)
        addr_format(&r->hbone, hbone, sizeof(hbone));
    const char *err = r->error ? strerror(r->error) : NULL;
    if (fmt == ACCESSLOG_JSON) {
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s?}", "timestamp", when, "message",
            "connection complete", "direction", r->direction, "pod", r->pod, "src.addr", src,
            "dst.addr", dst, "dst.hbone_addr", hbone, "bytes_sent", (json_int_t)r->bytes_sent,
            "bytes_recv", (json_int_t)r->bytes_received, "duration_ms", (json_int_t)r->duration_ms,
            "response_flags", resp_flag_name(r->response_flag), "peer.identity", r->peer_identity,
            "error", err);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        int n = snprintf(buf, len, "%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
        return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
    }
    int n = snprintf(buf, len,
                     "%s info access connection complete direction=%s pod=%s src.addr=%s "
                     "dst.addr=%s dst.hbone_addr=%s peer.identity=%s bytes_sent=%llu "
                     "bytes_recv=%llu duration=%llums response_flags=%s%s%s%s\n",
                     when, r->direction, r->pod, src, dst, hbone[0] ? hbone : "-",
                     r->peer_identity[0] ? r->peer_identity : "-",
                     (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_received,
                     (unsigned long long)r->duration_ms, resp_flag_name(r->response_flag),
                     err ? " error=\"" : "", err ? err : "", err ? "\"" : "");
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

bool accesslog_write(int fd, const struct conn_record *rec, enum accesslog_format fmt)
{
    char line[2048];
    size_t n = accesslog_format(rec, fmt, line, sizeof(line));
    return write(fd, line, n) == (ssize_t)n;
}
