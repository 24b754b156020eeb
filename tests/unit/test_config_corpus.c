/* Real-world manifests (tests/config/corpus/: Istio's samples, istioctl's
 * analyzer inputs, Istio's CRD validation cases; see its NOTICE) through
 * the real loader and analyzers, one file at a time as a user would run
 * `meshctl analyze FILE`:
 *   - nothing crashes (the analyzers run on every snapshot too);
 *   - no valid file is refused: a file with a loader error must be listed
 *     in expected-rejects.txt with the reason it is genuinely invalid, and
 *     a listed file that loads is a stale entry, also a failure;
 *   - Istio's CRD validation cases (pkg/config/validation/testdata/crds,
 *     one resource per document, each applied alone): every "-valid"
 *     document loads; every "-invalid" one is refused, or listed in
 *     expected-rejects.txt as a rule meshd does not check (with the rule).
 * Counts are printed for the closing note. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/analyze.h"
#include "config/config.h"

#define CORPUS   "tests/config/corpus"
#define EXPECTED "tests/config/corpus/expected-rejects.txt"
#define CRD_DIR  "istio/pkg/config/validation/testdata/crds/"

struct expected {
    char *key; /* "path" or "path#N" (N: 1-based document) */
    bool seen;
};

static struct expected *expect;
static size_t nexpect;

static void read_expected(void)
{
    FILE *f = fopen(EXPECTED, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        size_t n = strcspn(line, " \t\n");
        assert_true(line[n] == ' ' || line[n] == '\t'); /* every entry has a reason */
        struct expected *grown = realloc(expect, (nexpect + 1) * sizeof(*expect));
        assert_non_null(grown);
        expect = grown;
        expect[nexpect++] = (struct expected){strndup(line, n), false};
    }
    fclose(f);
}

static bool is_expected(const char *key)
{
    for (size_t i = 0; i < nexpect; i++) {
        if (strcmp(expect[i].key, key) == 0) {
            expect[i].seen = true;
            return true;
        }
    }
    return false;
}

struct tally {
    size_t files, rejected, unexpected;
    size_t crd_valid, crd_valid_refused, crd_invalid, crd_invalid_refused, crd_invalid_unchecked;
};

static void dump_errors(const char *what, const struct cfg_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].level != CFG_ERROR)
            continue;
        char line[1200];
        cfg_diag_format(&d->v[i], line, sizeof(line));
        fprintf(stderr, "  %s: %s\n", what, line);
    }
}

/* Loads one buffer; returns the number of loader errors (analyzers run too). */
static size_t load_one(const char *name, const char *buf, size_t len, bool show, const char *what)
{
    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load_buffer(name, buf, len, NULL, &d, &s), 0);
    size_t errors = d.counts[CFG_ERROR];
    if (errors && show)
        dump_errors(what, &d);
    cfg_analyze(s, &d);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
    return errors;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* One CRD case file: documents split at "---" lines, each loaded alone. */
static void crd_file(const char *rel, const char *buf, size_t len, struct tally *t)
{
    bool valid = strstr(rel, "-valid.yaml") != NULL;
    size_t doc = 0;
    for (const char *p = buf; p < buf + len;) {
        const char *end = p;
        while (end < buf + len) {
            const char *nl = memchr(end, '\n', (size_t)(buf + len - end));
            const char *next = nl ? nl + 1 : buf + len;
            if (strncmp(next, "---", 3) == 0 &&
                (next[3] == '\n' || next[3] == ' ' || next[3] == '\0')) {
                end = next;
                break;
            }
            end = next;
        }
        doc++;
        char key[1100], what[1100];
        snprintf(key, sizeof(key), "%s#%zu", rel, doc);
        snprintf(what, sizeof(what), "%s (document %zu)", rel, doc);
        size_t errors = load_one(rel, p, (size_t)(end - p), false, what);
        bool listed = is_expected(key);
        if (valid) {
            t->crd_valid++;
            t->crd_valid_refused += errors != 0;
            if (errors) {
                load_one(rel, p, (size_t)(end - p), true, what);
                t->unexpected++;
            }
        } else {
            t->crd_invalid++;
            t->crd_invalid_refused += errors != 0;
            t->crd_invalid_unchecked += errors == 0;
            if (!errors && !listed) {
                fprintf(stderr, "  %s: Istio refuses it, meshd loads it (list the rule)\n", what);
                t->unexpected++;
            } else if (errors && listed) {
                fprintf(stderr, "  %s: listed as unchecked, but now refused\n", what);
                t->unexpected++;
            }
        }
        /* Skip the "---" line. */
        p = end;
        if (strncmp(p, "---", 3) == 0) {
            const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
            p = nl ? nl + 1 : buf + len;
        }
    }
}

static void walk(const char *dir, const char *rel, struct tally *t)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char path[1024], relpath[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        snprintf(relpath, sizeof(relpath), "%s%s%s", rel, *rel ? "/" : "", name);
        struct stat st;
        size_t l = strlen(name);
        if (name[0] == '.' || stat(path, &st) != 0) {
            free(ents[i]);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            walk(path, relpath, t);
        } else if ((l > 5 && strcmp(name + l - 5, ".yaml") == 0) ||
                   (l > 4 && strcmp(name + l - 4, ".yml") == 0)) {
            size_t len;
            char *buf = slurp(path, &len);
            t->files++;
            if (strncmp(relpath, CRD_DIR, strlen(CRD_DIR)) == 0) {
                crd_file(relpath, buf, len, t);
            } else {
                size_t errors = load_one(relpath, buf, len, false, relpath);
                bool listed = is_expected(relpath);
                t->rejected += errors != 0;
                if (errors && !listed) {
                    load_one(relpath, buf, len, true, relpath);
                    fprintf(stderr, "  %s: refused, and not in %s\n", relpath, EXPECTED);
                    t->unexpected++;
                } else if (!errors && listed) {
                    fprintf(stderr, "  %s: listed in %s but loads: remove it\n", relpath, EXPECTED);
                    t->unexpected++;
                }
            }
            free(buf);
        }
        free(ents[i]);
    }
    free(ents);
}

static void test_corpus_loads_as_istio_reads_it(void **state)
{
    read_expected();
    struct tally t = {0};
    walk(CORPUS, "", &t);
    for (size_t i = 0; i < nexpect; i++) {
        if (!expect[i].seen) {
            fprintf(stderr, "  %s: listed in %s, no such file\n", expect[i].key, EXPECTED);
            t.unexpected++;
        }
        free(expect[i].key);
    }
    free(expect);
    printf("corpus: %zu files; %zu refused, all listed as invalid; CRD cases: %zu valid "
           "(%zu refused), %zu invalid (%zu refused, %zu not checked by meshd); %zu "
           "unexpected\n",
           t.files, t.rejected, t.crd_valid, t.crd_valid_refused, t.crd_invalid,
           t.crd_invalid_refused, t.crd_invalid_unchecked, t.unexpected);
    assert_true(t.files >= 300);
    assert_int_equal(t.unexpected, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_loads_as_istio_reads_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
