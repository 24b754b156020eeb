/* pods.json (agent/enroll/pods_state.c): what the registry saves reads back
 * as the same claims (not the effective values the binder set), with the
 * service account omitted when none was claimed and IPv4 and IPv6 kept;
 * the write is atomic and leaves nothing behind when it fails; and a
 * corrupt or hostile file restores nothing it should not: a file that is
 * not a list restores nothing, an incomplete entry is skipped alone, bad
 * IPs are dropped, never more than POD_MAX_IPS. Before the split this file
 * was only reachable through a registry with BPF maps and real netns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "enroll/pods_state.h"

#define MAX_SEEN 8

struct seen {
    size_t n;
    struct {
        size_t index;
        char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1], netns[256], sa[POD_NAME_MAX + 1];
        bool has_sa;
        char ips[POD_MAX_IPS][ADDR_STRLEN];
        size_t nips;
    } v[MAX_SEEN];
};

static void collect(void *ctx, size_t index, const char *ns, const char *name,
                    const struct pod_spec *spec)
{
    struct seen *s = ctx;
    assert_true(s->n < MAX_SEEN);
    assert_null(spec->ref);
    typeof(&s->v[0]) e = &s->v[s->n++];
    e->index = index;
    snprintf(e->ns, sizeof(e->ns), "%s", ns);
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->netns, sizeof(e->netns), "%s", spec->netns_path);
    e->has_sa = spec->sa != NULL;
    snprintf(e->sa, sizeof(e->sa), "%s", spec->sa ? spec->sa : "");
    assert_true(spec->nips <= POD_MAX_IPS);
    e->nips = spec->nips;
    for (size_t i = 0; i < spec->nips; i++)
        addr_format(&spec->ips[i], e->ips[i], sizeof(e->ips[i]));
}

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-pods.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static struct pod make_pod(const char *ns, const char *name, const char *netns,
                           const char *claimed_sa, const char *const *ips, size_t nips)
{
    struct pod p = {0};
    snprintf(p.ns, sizeof(p.ns), "%s", ns);
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.netns_path, sizeof(p.netns_path), "%s", netns);
    snprintf(p.claimed_sa, sizeof(p.claimed_sa), "%s", claimed_sa);
    for (size_t i = 0; i < nips; i++)
        assert_int_equal(addr_parse(ips[i], &p.claimed_ips[i]), 0);
    p.nclaimed_ips = nips;
    return p;
}

static void saved_claims_read_back_as_written(void **state)
{
    /* As pods.c writes them: addresses with port 0. */
    static const char *const web_ips[] = {"10.244.1.5:0", "[fd00:10:244:1::5]:0"};
    struct pod web = make_pod("shop", "web-7d9", "/var/run/netns/web", "web", web_ips, 2);
    struct pod db = make_pod("shop", "db-0", "/proc/123/ns/net", "", NULL, 0);
    /* What the binder made of the claims is not what is saved. */
    snprintf(web.sa, sizeof(web.sa), "from-the-pod-object");
    assert_int_equal(addr_parse("10.244.9.9:0", &web.ips[0]), 0);
    web.nips = 1;
    web.next = &db;

    char path[128];
    path_of(path, sizeof(path), "pods.json");
    assert_int_equal(pods_state_save(path, &web), 0);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed into place */

    struct seen s = {0};
    assert_int_equal(pods_state_load(path, collect, &s), 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[0].ns, "shop");
    assert_string_equal(s.v[0].name, "web-7d9");
    assert_string_equal(s.v[0].netns, "/var/run/netns/web");
    assert_true(s.v[0].has_sa);
    assert_string_equal(s.v[0].sa, "web");
    assert_int_equal(s.v[0].nips, 2);
    assert_string_equal(s.v[0].ips[0], "10.244.1.5:0");
    assert_string_equal(s.v[0].ips[1], "[fd00:10:244:1::5]:0");
    assert_string_equal(s.v[1].name, "db-0");
    assert_string_equal(s.v[1].netns, "/proc/123/ns/net");
    assert_false(s.v[1].has_sa); /* not claimed: not written as "" */
    assert_int_equal(s.v[1].nips, 0);

    /* Saving again replaces the file whole: one pod left. */
    web.next = NULL;
    assert_int_equal(pods_state_save(path, &web), 0);
    s = (struct seen){0};
    assert_int_equal(pods_state_load(path, collect, &s), 1);
    assert_string_equal(s.v[0].name, "web-7d9");
    /* And no pods: an empty list, not a missing file. */
    assert_int_equal(pods_state_save(path, NULL), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(pods_state_load(path, collect, &s), 0);
}

static void a_failed_save_leaves_nothing_behind(void **state)
{
    struct pod web = make_pod("shop", "web", "/var/run/netns/web", "web", NULL, 0);
    char path[128];
    path_of(path, sizeof(path), "missing-dir/pods.json");
    assert_int_equal(pods_state_save(path, &web), -ENOENT);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* A path whose temporary name does not fit: refused, not truncated. */
    char longpath[600];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(pods_state_save(longpath, &web), -ENAMETOOLONG);
}

/* A file of another shape, truncated, or written by hand. */
static void corrupt_files_restore_nothing_they_should_not(void **state)
{
    static const struct {
        const char *what, *text;
        int rc;
        size_t n;            /* entries passed on */
        const char *name[2]; /* their names, in order */
        size_t nips[2];
    } rows[] = {
        {"truncated JSON", "[{\"namespace\": \"shop\", \"name\": \"w", -EINVAL, 0, {0}, {0}},
        {"not JSON at all",
         "\x7f"
         "ELF",
         -EINVAL,
         0,
         {0},
         {0}},
        {"an object, not a list",
         "{\"namespace\": \"shop\", \"name\": \"web\", \"netns\": \"/x\"}",
         -EINVAL,
         0,
         {0},
         {0}},
        {"an empty file", "", -EINVAL, 0, {0}, {0}},
        {"an empty list", "[]", 0, 0, {0}, {0}},
        {"an incomplete entry is skipped alone",
         "[{\"namespace\": \"shop\", \"name\": \"nonetns\"},"
         " {\"namespace\": \"shop\", \"name\": \"ok\", \"netns\": \"/x\"}]",
         1,
         1,
         {"ok"},
         {0}},
        {"entries that are not objects are skipped",
         "[42, \"pod\", null, {\"namespace\": \"shop\", \"name\": \"ok\", \"netns\": \"/x\"}]",
         1,
         1,
         {"ok"},
         {0}},
        {"a name of the wrong type is incomplete",
         "[{\"namespace\": \"shop\", \"name\": 7, \"netns\": \"/x\"}]",
         0,
         0,
         {0},
         {0}},
        {"bad IPs dropped, good ones kept",
         "[{\"namespace\": \"shop\", \"name\": \"web\", \"netns\": \"/x\","
         " \"ips\": [\"10.0.0.1:0\", \"999.1.1.1:0\", 5, \"[fd00::1]:0\", \"10.0.0.1/24:0\"]}]",
         1,
         1,
         {"web"},
         {2}},
        {"never more than POD_MAX_IPS",
         "[{\"namespace\": \"shop\", \"name\": \"web\", \"netns\": \"/x\","
         " \"ips\": [\"10.0.0.1:0\", \"10.0.0.2:0\", \"10.0.0.3:0\", \"10.0.0.4:0\", "
         "\"10.0.0.5:0\","
         " \"10.0.0.6:0\"]}]",
         1,
         1,
         {"web"},
         {POD_MAX_IPS}},
        {"ips not a list: none",
         "[{\"namespace\": \"a\", \"name\": \"b\", \"netns\": \"/x\","
         " \"ips\": \"10.0.0.1:0\"}]",
         1,
         1,
         {"b"},
         {0}},
        {"sa of the wrong type: not claimed",
         "[{\"namespace\": \"a\", \"name\": \"b\", \"netns\": \"/x\", \"sa\": [\"root\"]}]",
         1,
         1,
         {"b"},
         {0}},
    };
    char path[128];
    path_of(path, sizeof(path), "corrupt.json");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        write_text(path, rows[i].text);
        struct seen s = {0};
        int rc = pods_state_load(path, collect, &s);
        if (rc != rows[i].rc || s.n != rows[i].n)
            fail_msg("%s: rc %d, %zu entries", rows[i].what, rc, s.n);
        for (size_t k = 0; k < s.n; k++) {
            assert_string_equal(s.v[k].name, rows[i].name[k]);
            assert_int_equal(s.v[k].nips, rows[i].nips[k]);
            assert_false(s.v[k].has_sa);
        }
    }
    /* No file at all: nothing to restore, not an error. */
    path_of(path, sizeof(path), "never-written.json");
    struct seen s = {0};
    assert_int_equal(pods_state_load(path, collect, &s), 0);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(saved_claims_read_back_as_written),
        cmocka_unit_test(a_failed_save_leaves_nothing_behind),
        cmocka_unit_test(corrupt_files_restore_nothing_they_should_not),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
