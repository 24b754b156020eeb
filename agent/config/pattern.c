/* Istio's string patterns and path templates (see pattern.h). */
#include "config/pattern.h"

#include <string.h>

bool pattern_match(const char *pattern, const char *value)
{
    if (!pattern || !value)
        return false;
    size_t pl = strlen(pattern), vl = strlen(value);
    if (pl == 1 && pattern[0] == '*')
        return vl > 0;                    /* presence: Istio's "any value" */
    if (pl > 0 && pattern[pl - 1] == '*') /* prefix */
        return vl >= pl - 1 && strncmp(pattern, value, pl - 1) == 0;
    if (pl > 0 && pattern[0] == '*') /* suffix */
        return vl >= pl - 1 && strcmp(value + vl - (pl - 1), pattern + 1) == 0;
    return strcmp(pattern, value) == 0;
}

bool pattern_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Envoy's uri_template literal characters: RFC 3986 pchar without '*' and
 * '='; what {*} and {**} match. */
bool pattern_pchar(unsigned char c)
{
    return pattern_unreserved(c) || c == '%' || strchr("!$&'()+,;:@", c) != NULL;
}

/* Istio's validLiteral: pchar, '=' included. */
static bool literal_char(unsigned char c)
{
    return pattern_pchar(c) || c == '=';
}

bool pattern_path_is_template(const char *pattern)
{
    return strstr(pattern, "{*}") || strstr(pattern, "{**}");
}

const char *pattern_path_check(const char *pattern)
{
    bool tmpl = pattern_path_is_template(pattern), any = false;
    if (tmpl && pattern[0] != '/')
        return "a path template must start with '/'";
    /* Segments between slashes, leading and trailing ones trimmed. */
    const char *p = pattern;
    while (*p == '/')
        p++;
    size_t end = strlen(p);
    while (end > 0 && p[end - 1] == '/')
        end--;
    for (size_t i = 0; i <= end;) {
        size_t len = strcspn(p + i, "/");
        if (i + len > end)
            len = end - i;
        const char *seg = p + i;
        bool one = len == 3 && strncmp(seg, "{*}", 3) == 0;
        bool many = len == 4 && strncmp(seg, "{**}", 4) == 0;
        if ((one || many) && any)
            return "{**} must be the last operator of a path template";
        any |= many;
        if (!one && !many) {
            if (memchr(seg, '{', len) || memchr(seg, '}', len))
                return "'{' and '}' are allowed only as a whole {*} or {**} segment";
            if (tmpl && len == 0)
                return "a path template may not have an empty segment";
            for (size_t k = 0; tmpl && k < len; k++)
                if (!literal_char((unsigned char)seg[k]))
                    return "a path template's other segments must be RFC 3986 pchar literals "
                           "(no '*')";
        }
        i += len + 1;
    }
    return NULL;
}
