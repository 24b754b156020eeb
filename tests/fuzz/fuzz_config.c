/* libFuzzer driver: the configuration loader and analyzers on arbitrary
 * bytes (YAML syntax, aliases, every kind's decoder, the indexes). */
#include <stddef.h>
#include <stdint.h>

#include "config/analyze.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_diags diags;
    struct cfg_snapshot *s = NULL;
    cfg_diags_init(&diags);
    if (cfg_load_buffer("fuzz.yaml", (const char *)data, size, NULL, &diags, &s) == 0) {
        cfg_analyze(s, &diags);
        for (size_t i = 0; i < diags.n; i++) {
            char line[1200];
            cfg_diag_format(&diags.v[i], line, sizeof(line));
        }
        cfg_snapshot_unref(s);
    }
    cfg_diags_fini(&diags);
    return 0;
}
