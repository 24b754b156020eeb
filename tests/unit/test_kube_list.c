/* Paged lists (agent/kube/list.c): the query of each page (limit, then
 * the continue token percent-encoded, bounded), the pages' bookkeeping
 * (the first page's resourceVersion, a page at another one refused, a
 * token past its bound refused, the last page ends the list), and the
 * sweep after the last page removing exactly what no page named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/list.h"
#include "kube/mirror.h"

static void test_list_query(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *cont, *want;
    } cases[] = {
        {"", "", "limit=500"},
        {"fieldSelector=spec.nodeName%3Dn1&", "", "fieldSelector=spec.nodeName%3Dn1&limit=500"},
        {"", "eyJydiI6IDF9", "limit=500&continue=eyJydiI6IDF9"},
        /* base64's + / = and anything else are percent-encoded */
        {"", "a+b/c=", "limit=500&continue=a%2Bb%2Fc%3D"},
        {"", "x&watch=1", "limit=500&continue=x%26watch%3D1"},
        {"", "\xc3\xa9 ", "limit=500&continue=%C3%A9%20"},
        {"", "-._~", "limit=500&continue=-._~"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_list l = {0};
        snprintf(l.cont, sizeof(l.cont), "%s", cases[i].cont);
        char out[256];
        assert_int_equal(kube_list_query(&l, cases[i].prefix, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].want);
    }
    /* Bounded: a token that does not fit once encoded. */
    struct kube_list l = {0};
    memset(l.cont, '/', 100);
    char small[64];
    assert_int_equal(kube_list_query(&l, "", small, sizeof(small)), -E2BIG);
    assert_int_equal(kube_list_query(&(struct kube_list){0}, "", small, 5), -E2BIG);
}

static void test_list_pages(void **state)
{
    (void)state;
    struct kube_list l = {0};
    assert_int_equal(kube_list_add(&l, "ns_a.json"), 0);
    assert_int_equal(kube_list_page(&l, "100", "tok1"), 1);
    assert_string_equal(l.cont, "tok1");
    assert_string_equal(l.rv, "100");
    /* Every page of one list is at the first page's resourceVersion. */
    assert_int_equal(kube_list_page(&l, "101", "tok2"), -EINVAL);
    assert_int_equal(kube_list_page(&l, "100", "tok2"), 1);
    assert_string_equal(l.cont, "tok2");
    /* A token past its bound. */
    char *huge = malloc(KUBE_CONT_MAX + 1);
    memset(huge, 'x', KUBE_CONT_MAX);
    huge[KUBE_CONT_MAX] = '\0';
    assert_int_equal(kube_list_page(&l, "100", huge), -EINVAL);
    free(huge);
    /* The last page: no token (absent or empty). */
    assert_int_equal(kube_list_page(&l, "100", NULL), 0);
    assert_string_equal(l.cont, "");
    assert_int_equal(l.pages, 4);
    kube_list_reset(&l);
    assert_int_equal(l.pages, 0);
    assert_int_equal(l.n, 0);
    assert_string_equal(l.rv, "");
    assert_int_equal(kube_list_page(&l, "7", ""), 0); /* one page, "" as the last */
    assert_string_equal(l.rv, "7");
    kube_list_reset(&l);
}

static void test_list_sweep(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/test_kube_list.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(kube_mirror_prepare(dir, "secrets"), 0);
    /* Six objects mirrored; two pages name four of them, out of order. */
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof(name), "s%d", i);
        json_t *o = json_pack("{s:{s:s,s:s}}", "metadata", "name", name, "namespace", "ns");
        assert_int_equal(kube_mirror_put(dir, "secrets", o, "v1", "Secret"), 0);
        json_decref(o);
    }
    struct kube_list l = {0};
    const char *page1[] = {"ns_s5.json", "ns_s0.json"}, *page2[] = {"ns_s3.json", "ns_s1.json"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(kube_list_add(&l, page1[i]), 0);
    assert_int_equal(kube_list_page(&l, "9", "more"), 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(kube_list_add(&l, page2[i]), 0);
    assert_int_equal(kube_list_page(&l, "9", NULL), 0);
    assert_int_equal(kube_list_sweep(&l, dir, "secrets"), 2);
    static const struct {
        const char *file;
        int present;
    } want[] = {{"ns_s0.json", 1}, {"ns_s1.json", 1}, {"ns_s2.json", 0},
                {"ns_s3.json", 1}, {"ns_s4.json", 0}, {"ns_s5.json", 1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[160];
        struct stat st;
        snprintf(path, sizeof(path), "%s/secrets/%s", dir, want[i].file);
        if ((stat(path, &st) == 0) != want[i].present)
            fail_msg("%s: present %d, want %d", want[i].file, !want[i].present, want[i].present);
    }
    kube_list_reset(&l);
    assert_int_equal(kube_mirror_remove(dir), 0);
}

/* An object mirrored again unchanged (a relist, a MODIFIED that changed
 * nothing kept) is not rewritten: no new inode, no inotify event, no
 * configuration reload; a changed one is, whole. */
static void test_put_writes_only_changes(void **state)
{
    (void)state;
    char dir[64], path[160];
    snprintf(dir, sizeof(dir), "/tmp/test_kube_list.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(kube_mirror_prepare(dir, "secrets"), 0);
    snprintf(path, sizeof(path), "%s/secrets/ns_s.json", dir);
    static const struct {
        const char *value;
        bool rewritten;
    } steps[] = {{"a", true}, {"a", false}, {"b", true}, {"bb", true}, {"bb", false}, {"b", true}};
    ino_t ino = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        json_t *o = json_pack("{s:{s:s,s:s},s:{s:s}}", "metadata", "name", "s", "namespace", "ns",
                              "data", "k", steps[i].value);
        assert_int_equal(kube_mirror_put(dir, "secrets", o, "v1", "Secret"), 0);
        json_decref(o);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_ino != ino) != steps[i].rewritten)
            fail_msg("step %zu (%s): rewritten %d, want %d", i, steps[i].value, st.st_ino != ino,
                     steps[i].rewritten);
        ino = st.st_ino;
        FILE *f = fopen(path, "r");
        char text[512] = "";
        assert_non_null(f);
        text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
        fclose(f);
        char want[32];
        snprintf(want, sizeof(want), "\"k\": \"%s\"", steps[i].value);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, "\"kind\": \"Secret\""));
    }
    assert_int_equal(kube_mirror_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_query),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_list_sweep),
        cmocka_unit_test(test_put_writes_only_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
