/* libFuzzer driver: the gateway's SNI readers on hostile bytes: the
 * ClientHello parser (gateway/sni.c, PASSTHROUGH and AUTO_PASSTHROUGH)
 * and AUTO_PASSTHROUGH's cluster-name parser (route/auto_sni.c), whose
 * accepted names must format back to exactly the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/sni.h"
#include "route/auto_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sni[256];
    if (sni_parse(data, size, sni, sizeof(sni)) == 0 && strlen(sni) >= sizeof(sni))
        abort();
    char s[300];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    struct gw_auto_sni a;
    if (gw_auto_sni_parse(s, &a) == 0) {
        char back[300];
        snprintf(back, sizeof(back), "outbound_.%u_.%s_.%s", a.port, a.subset, a.host);
        if (strcmp(back, s) != 0 || a.port == 0)
            abort();
    }
    return 0;
}
