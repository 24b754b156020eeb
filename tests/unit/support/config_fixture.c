/* See config_fixture.h. */
#include "config_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/analyze.h"

void cfg_fixture_load(struct cfg_fixture *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/meshd-cfg-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/input.yaml", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    cfg_diags_init(&f->diags);
    const char *paths[] = {f->dir};
    assert_int_equal(cfg_load(paths, 1, NULL, &f->diags, &f->snap), 0);
}

void cfg_fixture_analyze(struct cfg_fixture *f, const char *yaml)
{
    cfg_fixture_load(f, yaml);
    cfg_analyze(f->snap, &f->diags);
}

const struct cfg_diag *cfg_fixture_diag(const struct cfg_fixture *f, const char *code)
{
    for (size_t i = 0; i < f->diags.n; i++)
        if (strcmp(f->diags.v[i].code, code) == 0)
            return &f->diags.v[i];
    return NULL;
}

void cfg_fixture_dump(const struct cfg_fixture *f)
{
    for (size_t i = 0; i < f->diags.n; i++) {
        char line[1200];
        cfg_diag_format(&f->diags.v[i], line, sizeof(line));
        fprintf(stderr, "  %s\n", line);
    }
}

void cfg_fixture_free(struct cfg_fixture *f)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/input.yaml", f->dir);
    unlink(path);
    rmdir(f->dir);
    cfg_snapshot_unref(f->snap);
    cfg_diags_fini(&f->diags);
}
