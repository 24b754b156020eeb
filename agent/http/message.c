/* The request view's one helper (see message.h). */
#include "http/message.h"

#include <strings.h>

const char *http_field_get(const struct http_field *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(f[i].name, name) == 0)
            return f[i].value;
    return NULL;
}
