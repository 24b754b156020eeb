/* Node names and instance names (see node_name.h). */
#include "core/node_name.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX   63
#define PREFIX_KEEP (NODE_INSTANCE_MAX - 1 - 16)

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* bpffs refuses a '.' in any name */
static void undot(char *s)
{
    for (; *s; s++)
        if (*s == '.')
            *s = '_';
}

bool node_name_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, NODE_NAME_MAX + 1), label = 0;
    if (n == 0 || n > NODE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            /* a label ends: not empty, not ending in '-' */
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!alnum(c) && c != '-')
            return false;
        if (c == '-' && label == 0) /* a label starts alphanumeric */
            return false;
        if (++label > LABEL_MAX)
            return false;
    }
    return label > 0 && s[n - 1] != '-';
}

int node_instance_name(const char *node, char *out, size_t n)
{
    if (!node_name_valid(node) || n < NODE_INSTANCE_MAX + 1)
        return -EINVAL;
    size_t len = strlen(node);
    if (len <= NODE_INSTANCE_MAX) {
        memcpy(out, node, len + 1);
        undot(out);
        return 0;
    }
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)node[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, n, "%.*s-%016" PRIx64, PREFIX_KEEP, node, h);
    undot(out);
    return 0;
}
