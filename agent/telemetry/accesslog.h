/* Access logs: one line per connection when it closes (or fails), on
 * stdout, apart from meshd's own log on stderr. Text in ztunnel's
 * key=value style by default, one JSON object per line with
 * --log-format json. Which pods log is decided by the Telemetry resources
 * (accessLogging, Istio's precedence) through the caller. */
#ifndef MESHD_TELEMETRY_ACCESSLOG_H
#define MESHD_TELEMETRY_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>

struct conn_record;

enum accesslog_format { ACCESSLOG_TEXT, ACCESSLOG_JSON };

/* Formats one record into buf (always NUL-terminated, newline-ended when
 * it fits). Returns the length written. */
size_t accesslog_format(const struct conn_record *rec, enum accesslog_format fmt, char *buf,
                        size_t len);
/* Formats and writes one line to fd with a single write(2). The caller
 * makes fd non-blocking: a reader that stalls loses lines (false is
 * returned, to be counted), it never stalls the data path. */
bool accesslog_write(int fd, const struct conn_record *rec, enum accesslog_format fmt);

#endif
