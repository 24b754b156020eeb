/* meshctl analyze [-o json] [--root-namespace NS] [--domain D] PATH... */
#include "analyze.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config/analyze.h"
#include "config/config.h"

#define EXIT_ANALYZER_ERRORS 79 /* istioctl's "analyzers found issues" */

static void print_json(const struct cfg_diags *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n; i++) {
        const struct cfg_diag *g = &d->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "code", json_string(g->code));
        json_object_set_new(o, "level", json_string(cfg_level_name(g->level)));
        char origin[400] = "";
        if (g->kind && g->name)
            snprintf(origin, sizeof(origin), "%s %s%s%s", g->kind, g->ns ? g->ns : "",
                     g->ns ? "/" : "", g->name);
        json_object_set_new(o, "origin", json_string(origin));
        if (g->pos.file) {
            char ref[300];
            snprintf(ref, sizeof(ref), "%s:%u:%u", g->pos.file, g->pos.line, g->pos.col);
            json_object_set_new(o, "reference", json_string(ref));
        }
        json_object_set_new(o, "message", json_string(g->message));
        if (strncmp(g->code, "IST", 3) == 0) {
            /* istioctl's form: .../config/analysis/ist0101/ */
            char code[16], url[120];
            size_t c = 0;
            for (; c < sizeof(code) - 1 && g->code[c]; c++)
                code[c] = (char)(g->code[c] >= 'A' && g->code[c] <= 'Z' ? g->code[c] - 'A' + 'a'
                                                                        : g->code[c]);
            code[c] = '\0';
            snprintf(url, sizeof(url), "https://istio.io/latest/docs/reference/config/analysis/%s/",
                     code);
            json_object_set_new(o, "documentationUrl", json_string(url));
        }
        json_array_append_new(arr, o);
    }
    json_dumpf(arr, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(arr);
}

int ctl_analyze(int argc, char **argv, int json)
{
    struct cfg_load_opts opts;
    cfg_load_opts_default(&opts);
    const char *paths[256];
    size_t npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0) {
            json = 1;
            i++;
        } else if (strcmp(argv[i], "--root-namespace") == 0 && i + 1 < argc) {
            opts.root_namespace = argv[++i];
        } else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
            opts.domain = argv[++i];
        } else if (argv[i][0] == '-' || npaths == sizeof(paths) / sizeof(paths[0])) {
            fprintf(stderr, "usage: meshctl analyze [-o json] [--root-namespace NS] "
                            "[--domain DOMAIN] DIR|FILE...\n");
            return 2;
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (!npaths) {
        fprintf(stderr, "usage: meshctl analyze [-o json] DIR|FILE...\n");
        return 2;
    }
    struct cfg_diags diags;
    cfg_diags_init(&diags);
    struct cfg_snapshot *snap = NULL;
    if (cfg_load(paths, npaths, &opts, &diags, &snap)) {
        fprintf(stderr, "meshctl analyze: out of memory\n");
        cfg_diags_fini(&diags);
        return 1;
    }
    cfg_analyze(snap, &diags);
    cfg_diags_sort(&diags);
    if (json) {
        print_json(&diags);
    } else if (diags.n == 0) {
        printf("\u2714 No validation issues found when analyzing %s%s.\n", paths[0],
               npaths > 1 ? " and others" : "");
    } else {
        for (size_t i = 0; i < diags.n; i++) {
            char line[1200];
            cfg_diag_format(&diags.v[i], line, sizeof(line));
            puts(line);
        }
        if (diags.dropped)
            printf("(%zu more messages not shown)\n", diags.dropped);
    }
    int rc = diags.counts[CFG_ERROR] ? EXIT_ANALYZER_ERRORS : 0;
    if (rc && !json)
        fprintf(stderr, "Error: Analyzers found issues when analyzing %s.\n", paths[0]);
    cfg_snapshot_unref(snap);
    cfg_diags_fini(&diags);
    return rc;
}
