/* The loader's bounds (agent/config/): what keeps hostile input harmless,
 * alias bombs, nesting, document, file and total sizes, file counts, and
 * missing paths, each reported and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "support/config_fixture.h"

/* An alias bomb: each level doubles; the budget stops the walk. */
static void test_alias_bomb_is_bounded(void **state)
{
    char yaml[8192];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml),
                                  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                  "metadata: {name: bomb}\nspec:\n  hosts: &h0 [a, a, a, a]\n");
    for (int i = 1; i < 30; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off,
                                "  x%d: &h%d [*h%d, *h%d, *h%d, *h%d]\n", i, i, i - 1, i - 1, i - 1,
                                i - 1);
    snprintf(yaml + off, sizeof(yaml) - off,
             "  http:\n  - route: [{destination: {host: a}}]\n    match: *h29\n");
    struct cfg_fixture f;
    cfg_fixture_load(&f, yaml);
    /* Decoding 4^30 matches would never end; the test finishing is the point. */
    assert_non_null(cfg_fixture_diag(&f, "IST0106"));
    assert_int_equal(cfg_count(f.snap, CFG_VIRTUAL_SERVICE), 0);
    cfg_fixture_free(&f);
}

static void test_nesting_and_size_limits(void **state)
{
    /* 100 levels of nesting: over the limit of 64. */
    char deep[1024];
    size_t off =
        (size_t)snprintf(deep, sizeof(deep), "apiVersion: v1\nkind: Namespace\nmetadata: ");
    for (int i = 0; i < 100; i++)
        deep[off++] = '[';
    deep[off] = '\0';
    struct cfg_fixture f;
    cfg_fixture_load(&f, deep);
    const struct cfg_diag *g = cfg_fixture_diag(&f, "MSH0100");
    assert_non_null(g);
    assert_non_null(strstr(g->message, "nesting deeper"));
    cfg_fixture_free(&f);

    /* A 3 MiB document: over the 2 MiB per-document limit. */
    size_t big = 3u << 20;
    char *huge = malloc(big + 200);
    assert_non_null(huge);
    off = (size_t)snprintf(huge, 200,
                           "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
                           "data: \"");
    memset(huge + off, 'a', big);
    strcpy(huge + off + big, "\"\n");
    cfg_fixture_load(&f, huge);
    g = cfg_fixture_diag(&f, "MSH0100");
    assert_non_null(g);
    assert_non_null(strstr(g->message, "document larger"));
    free(huge);
    cfg_fixture_free(&f);
}

static void test_file_limits_and_missing(void **state)
{
    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s = NULL;
    struct cfg_load_opts o;
    cfg_load_opts_default(&o);
    o.max_file_bytes = 64;
    const char *paths[] = {"/nonexistent/meshd-config", "deploy/examples/payments-canary.yaml"};
    assert_int_equal(cfg_load(paths, 2, &o, &d, &s), 0);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.v[0].code, "MSH0104");
    assert_non_null(strstr(d.v[0].message, "No such file"));
    assert_non_null(strstr(d.v[1].message, "file larger than 64 bytes"));
    assert_int_equal(cfg_count(s, CFG_SERVICE), 0);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alias_bomb_is_bounded),
        cmocka_unit_test(test_nesting_and_size_limits),
        cmocka_unit_test(test_file_limits_and_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
