/* What the HTTP/1 codec refuses beyond llhttp (internal to agent/http):
 * the byte filter run over everything of a connection that is not body
 * data, and the checks of a gathered head. Pure functions over their
 * arguments, so h1.c stays llhttp glue and each rule is tested alone. */
#ifndef MESHD_HTTP_H1_RULES_H
#define MESHD_HTTP_H1_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1.h"

enum h1_scan_state {
    H1_SCAN_LINE_START,
    H1_SCAN_IN_LINE,
    H1_SCAN_SP, /* in a line, after a SP */
    H1_SCAN_CR,
    H1_SCAN_DATA_END, /* after a chunk's data: its CRLF comes next */
};

struct h1_scan {
    enum h1_scan_state st;
    bool request;
    bool start_line;    /* in the start line (or the empty lines before it) */
    bool line_had_text; /* the line the pending CR ends is not empty */
    uint32_t col;       /* bytes of the current line before this one */
    uint64_t run;       /* bytes scanned since the message or the last data began */
};

/* RFC 9110 5.6.2: a tchar; a token (1*tchar). */
bool h1_is_tchar(unsigned char c);
bool h1_is_token(const char *s, size_t n);

/* A message starts (request: its request line is checked too). */
void h1_scan_start(struct h1_scan *s, bool request);
/* Body bytes were skipped: chunk data (its CRLF must follow) or a whole
 * body (the next message follows). */
void h1_scan_after_data(struct h1_scan *s, bool chunk);
/* Scans [s, e): CR and LF only as CRLF, no control byte but HT, no SP or
 * HT opening a line (obs-fold), one SP between request-line parts, a
 * status line as "HTTP/x.y SP 3DIGIT" then SP or its end, CRLF after
 * chunk data. Returns why the bytes are refused, or NULL. */
const char *h1_scan_bytes(struct h1_scan *scan, const char *s, const char *e);

/* How llhttp framed the message, to compare with the headers. */
struct h1_framing {
    bool chunked, length, connect;
    uint64_t content_length;
};

/* The head's framing rules (see h1.c's top); NULL when it passes. */
const char *h1_check_head(const struct h1_head *h, const struct h1_framing *llhttp);

#endif
