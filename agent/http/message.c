/* The request view's one helper (see message.h). */
#include "http/message.h"

#include <strings.h>

const char *http_field_get(const struct http_field *f, size_t n, const char *name)
{
    /* The first byte, case folded (or not a letter: strcasecmp decides),
     * before the call: most names differ in it. */
    unsigned char c0 = (unsigned char)name[0] | 0x20;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)f[i].name[0] | 0x20) == c0 && strcasecmp(f[i].name, name) == 0)
            return f[i].value;
    return NULL;
}
