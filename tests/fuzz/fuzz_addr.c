/* libFuzzer driver: address and CIDR parsing (meshctl, policies). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/addr.h"
#include "core/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[128];
    if (size >= sizeof(s))
        size = sizeof(s) - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    struct meshd_addr a;
    struct cidr c;
    char out[ADDR_STRLEN];
    if (addr_parse(s, &a) == 0)
        addr_format(&a, out, sizeof(out));
    if (cidr_parse(s, &c) == 0)
        cidr_contains(&c, &c.addr);
    return 0;
}
