/* libFuzzer driver: the admin/metrics HTTP request-head parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "admin/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[HTTP_MAX_HEAD + 1], m[8], p[512], q[512];
    if (size > HTTP_MAX_HEAD)
        size = HTTP_MAX_HEAD;
    memcpy(head, data, size);
    head[size] = '\0';
    http_parse_request(head, size, m, sizeof(m), p, sizeof(p), q, sizeof(q));
    return 0;
}
