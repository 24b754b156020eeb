/* libFuzzer driver: the configuration loader and analyzers on arbitrary
 * bytes (YAML syntax, aliases, every kind's decoder, the indexes), then
 * what the data path and meshctl derive from the snapshot: each Pod's
 * routes to every service (host matching, wildcards, exportTo, subsets,
 * policy merging) and its mTLS modes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin/explain.h"
#include "config/analyze.h"
#include "config/config.h"

static void explain_pods(const struct cfg_snapshot *s)
{
    size_t n = cfg_count(s, CFG_POD);
    for (size_t i = 0; i < n && i < 8; i++) {
        const struct cfg_pod *p = cfg_at(s, CFG_POD, i);
        char ref[400], err[300];
        snprintf(ref, sizeof(ref), "%s/%s", p->meta.ns, p->meta.name);
        json_decref(explain_routes(s, ref, NULL, err, sizeof(err)));
        json_decref(explain_tls(s, "cluster.local", ref, err, sizeof(err)));
    }
}

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
        explain_pods(s);
        cfg_snapshot_unref(s);
    }
    cfg_diags_fini(&diags);
    return 0;
}
