/* A recorder for the HTTP/1 codec tests: an h1_parser whose callbacks
 * write one trace string ("<head>" body bytes "$" per message), so a
 * message fed whole, byte by byte or cut anywhere must give one trace;
 * and pauses or failures on chosen calls. */
#ifndef MESHD_TEST_H1_REC_H
#define MESHD_TEST_H1_REC_H

#include <stdbool.h>
#include <stddef.h>

#include "http/h1.h"

struct h1_rec {
    char trace[16384];
    size_t len;
    int heads, bodies, completes;
    int pause_head, pause_body, pause_complete; /* pause on the n-th call (1-based); 0 never */
    bool fail_head;                             /* on_head returns -1 */
    bool dead;                                  /* h1_parse failed */
    bool after_error;                           /* a callback ran after that */
    int head_after; /* the n-th on_complete marks the next response as one to HEAD */
    unsigned long long body_total, declared; /* body bytes of the message; its length */
    bool over_declared;                      /* more body bytes than Content-Length said */
    char hdrs[4096];                         /* the last head's fields "name=value|..." */
    struct h1_parser *p;
};

/* A recorder around a new parser (lim may be NULL); asserts on failure. */
struct h1_rec *h1_rec_new(bool request, const struct h1_limits *lim);
void h1_rec_free(struct h1_rec *r);
/* Feeds n bytes in pieces of `step` (0: whole), resuming after each
 * recorded pause and feeding the unconsumed rest again; stops at an
 * upgrade or error. Returns the last h1_parse result; *used (may be NULL):
 * bytes consumed in all. */
int h1_rec_feed(struct h1_rec *r, const char *in, size_t n, size_t step, size_t *used);
/* Fails the test unless every way of cutting `in` (whole, byte by byte,
 * two pieces at each position) gives `want` and returns want_rc, with no
 * callback after an error; on -EBADMSG also the status. */
void h1_rec_expect_all_splits(bool request, const char *in, const char *want, int want_rc,
                              int want_status);
/* The same for n bytes (they may hold NULs). */
void h1_rec_expect_all_splits_n(bool request, const char *in, size_t n, const char *want,
                                int want_rc, int want_status);

#endif
