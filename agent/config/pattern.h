/* Istio's string patterns, as AuthorizationPolicy and the analyzers use
 * them: exact, "prefix*", "*suffix" and "*" (presence), and the `paths`
 * templates ("{*}", "{**}"). Config validates patterns with these, policy
 * matches requests with them: a leaf below both, so that policy depends
 * on config and never the reverse. Leaf module: no state. */
#ifndef MESHD_CONFIG_PATTERN_H
#define MESHD_CONFIG_PATTERN_H

#include <stdbool.h>

/* exact, "prefix*", "*suffix", "*" (presence: a non-empty value); false
 * if either is NULL. */
bool pattern_match(const char *pattern, const char *value);

/* RFC 3986 unreserved: ALPHA DIGIT - . _ ~ */
bool pattern_unreserved(unsigned char c);
/* Envoy's uri_template literal characters: pchar without '*' and '='. */
bool pattern_pchar(unsigned char c);

/* A `paths` value holding "{*}" or "{**}" is an Istio path template. */
bool pattern_path_is_template(const char *pattern);
/* Istio's validation of a `paths` value (CheckValidPathTemplate): '{' and
 * '}' only as a whole "{*}" or "{**}" segment; in a template, "{**}" is
 * the last operator, the value starts with '/', and every other segment
 * is a non-empty RFC 3986 pchar literal (no '*'). NULL if valid, else why. */
const char *pattern_path_check(const char *pattern);

#endif
