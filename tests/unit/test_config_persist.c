/* The persisted last good configuration (config/persist.c) and how the
 * store starts on it (config/store.c): a copy of what was applied that
 * loads as the same version, replaced whole, bounded, never written
 * outside the state directory; at start on broken files the store serves
 * it, and with none (or a tampered one) it reports fail closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/persist.h"
#include "config/store.h"
#include "core/loop.h"

static const char *const strict_pa = "apiVersion: security.istio.io/v1\n"
                                     "kind: PeerAuthentication\n"
                                     "metadata: {name: strict, namespace: default}\n"
                                     "spec: {mtls: {mode: STRICT}}\n";
static const char *const deny_ap = "apiVersion: security.istio.io/v1\n"
                                   "kind: AuthorizationPolicy\n"
                                   "metadata: {name: deny-all, namespace: default}\n"
                                   "spec: {action: DENY, rules: [{}]}\n";
static const char *const broken = "apiVersion: v1\nkind: [Service\n";

struct dirs {
    char root[64], config[96], state[96];
};

static void put(const char *dir, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700); /* one level of subdirectory is enough here */
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void dirs_make(struct dirs *d)
{
    snprintf(d->root, sizeof(d->root), "/tmp/meshd-persist.XXXXXX");
    assert_non_null(mkdtemp(d->root));
    snprintf(d->config, sizeof(d->config), "%s/config", d->root);
    snprintf(d->state, sizeof(d->state), "%s/state", d->root);
    assert_int_equal(mkdir(d->config, 0700), 0);
    assert_int_equal(mkdir(d->state, 0700), 0);
}

static void dirs_remove(struct dirs *d)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->root);
    assert_int_equal(system(cmd), 0);
}

/* Loads dir, staging its files when `stage` is set. */
static struct cfg_snapshot *load_dir(const char *dir, struct cfg_stage *stage, size_t *errors)
{
    struct cfg_load_opts o;
    cfg_load_opts_default(&o);
    if (stage) {
        o.file_read = cfg_stage_file;
        o.file_read_ctx = stage;
    }
    struct cfg_diags d;
    struct cfg_snapshot *s = NULL;
    cfg_diags_init(&d);
    const char *paths[] = {dir};
    assert_int_equal(cfg_load(paths, 1, &o, &d, &s), 0);
    if (errors)
        *errors = d.counts[CFG_ERROR];
    cfg_diags_fini(&d);
    return s;
}

/* Loads the config dir, persisting it: the snapshot applied. */
static struct cfg_snapshot *persist_config(const struct dirs *d)
{
    struct cfg_stage st;
    assert_int_equal(cfg_stage_begin(&st, d->state), 0);
    struct cfg_snapshot *s = load_dir(d->config, &st, NULL);
    assert_int_equal(cfg_stage_commit(&st, cfg_snapshot_version(s)), 0);
    return s;
}

static bool exists(const char *dir, const char *rel)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

static void test_committed_copy_loads_as_the_same_version(void **state)
{
    struct dirs d = {0};
    dirs_make(&d);
    put(d.config, "a-peerauth.yaml", strict_pa);
    put(d.config, "policies/deny.yaml", deny_ap);
    struct cfg_snapshot *live = persist_config(&d);

    char version[32], path[256];
    assert_int_equal(cfg_persist_version(d.state, version, sizeof(version)), 0);
    assert_string_equal(version, cfg_snapshot_version(live));
    assert_non_null(cfg_persist_path(d.state, path, sizeof(path)));
    struct cfg_snapshot *kept = load_dir(path, NULL, NULL);
    assert_string_equal(cfg_snapshot_version(kept), cfg_snapshot_version(live));
    assert_int_equal(cfg_count(kept, CFG_PEER_AUTHENTICATION), 1);
    assert_int_equal(cfg_count(kept, CFG_AUTHORIZATION_POLICY), 1);
    assert_false(exists(d.state, CFG_PERSIST_DIR ".new"));
    cfg_snapshot_unref(kept);
    cfg_snapshot_unref(live);
    dirs_remove(&d);
}

static void test_commit_replaces_the_previous_copy_whole(void **state)
{
    struct dirs d = {0};
    dirs_make(&d);
    put(d.config, "old.yaml", strict_pa);
    struct cfg_snapshot *v1 = persist_config(&d);
    char old[160];
    snprintf(old, sizeof(old), "%s/old.yaml", d.config);
    assert_int_equal(unlink(old), 0);
    put(d.config, "new.yaml", deny_ap);
    struct cfg_snapshot *v2 = persist_config(&d);

    char version[32];
    assert_int_equal(cfg_persist_version(d.state, version, sizeof(version)), 0);
    assert_string_equal(version, cfg_snapshot_version(v2));
    assert_true(exists(d.state, CFG_PERSIST_DIR "/new.yaml"));
    assert_false(exists(d.state, CFG_PERSIST_DIR "/old.yaml"));
    assert_false(exists(d.state, CFG_PERSIST_DIR ".new"));
    cfg_snapshot_unref(v1);
    cfg_snapshot_unref(v2);
    dirs_remove(&d);
}

/* A staging that fails must not leave an older copy to be served. */
static void test_failed_staging_removes_the_stale_copy(void **state)
{
    static const struct {
        const char *name;
        const char *file;
        size_t len; /* 0: strlen */
        int err;
    } rows[] = {
        {"over the size bound", "big.yaml", CFG_PERSIST_MAX_BYTES + 1, -EFBIG},
        {"a parent component", "../escape.yaml", 0, -EINVAL},
        {"an absolute name", "/tmp/escape.yaml", 0, -EINVAL},
        {"a dot component inside", "a/../../escape.yaml", 0, -EINVAL},
        {"a hidden name", ".meshd-version", 0, -EINVAL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dirs d = {0};
        dirs_make(&d);
        put(d.config, "pa.yaml", strict_pa);
        struct cfg_stage st;
        struct cfg_snapshot *v1 = persist_config(&d);

        assert_int_equal(cfg_stage_begin(&st, d.state), 0);
        /* The size check comes first: the buffer is never read past 1 byte. */
        cfg_stage_file(&st, rows[i].file, "x", rows[i].len ? rows[i].len : 1);
        fprintf(stderr, "row %s\n", rows[i].name);
        assert_int_equal(st.err, rows[i].err);
        assert_int_equal(cfg_stage_commit(&st, "0123456789abcdef"), rows[i].err);
        char version[32];
        assert_int_equal(cfg_persist_version(d.state, version, sizeof(version)), -ENOENT);
        assert_false(exists(d.state, CFG_PERSIST_DIR));
        assert_false(exists(d.root, "escape.yaml"));
        assert_false(exists("/tmp", "escape.yaml"));
        cfg_snapshot_unref(v1);
        dirs_remove(&d);
    }
}

static void test_leftover_staging_is_cleared(void **state)
{
    struct dirs d = {0};
    dirs_make(&d);
    char stale[160];
    snprintf(stale, sizeof(stale), "%s/" CFG_PERSIST_DIR ".new", d.state);
    assert_int_equal(mkdir(stale, 0700), 0);
    put(stale, "half-written.yaml", "apiVersion: v1\nkind: Na");
    put(d.config, "pa.yaml", strict_pa);
    struct cfg_snapshot *v = persist_config(&d);
    assert_false(exists(d.state, CFG_PERSIST_DIR "/half-written.yaml"));
    assert_int_equal(cfg_persist_remove(d.state), 0);
    assert_false(exists(d.state, CFG_PERSIST_DIR));
    cfg_snapshot_unref(v);
    dirs_remove(&d);
}

static struct cfg_store *store_start(struct loop *loop, const struct dirs *d)
{
    struct cfg_store_opts o = {.dir = d->config, .state_dir = d->state, .debounce_ms = 10};
    struct cfg_store *st = NULL;
    assert_int_equal(cfg_store_new(loop, &o, &st), 0);
    return st;
}

/* The store at start: what it serves after a previous run applied
 * (or did not apply) a configuration and the files broke meanwhile. */
static void test_store_start_on_broken_files(void **state)
{
    enum prior { NOTHING, APPLIED, TAMPERED };
    static const struct {
        const char *name;
        enum prior prior;
        enum cfg_serving serving;
        size_t peerauth, authz;
    } rows[] = {
        {"a previous run applied: its configuration serves", APPLIED, CFG_SERVING_PERSISTED, 1, 1},
        {"never a good load: fail closed", NOTHING, CFG_SERVING_NONE, 0, 0},
        {"a tampered copy is not served: fail closed", TAMPERED, CFG_SERVING_NONE, 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fprintf(stderr, "row %s\n", rows[i].name);
        struct dirs d = {0};
        dirs_make(&d);
        struct loop *loop;
        assert_int_equal(loop_new(&loop), 0);
        put(d.config, "pa.yaml", strict_pa);
        put(d.config, "ap.yaml", deny_ap);
        char applied[17] = "";
        if (rows[i].prior != NOTHING) {
            struct cfg_store *first = store_start(loop, &d);
            struct cfg_store_status cs;
            cfg_store_status(first, &cs);
            assert_int_equal(cs.serving, CFG_SERVING_LIVE);
            assert_string_equal(cs.persisted_version, cs.version);
            snprintf(applied, sizeof(applied), "%s", cs.version);
            cfg_store_free(first);
        }
        if (rows[i].prior == TAMPERED)
            put(d.state, CFG_PERSIST_DIR "/ap.yaml", "# emptied by someone\n");
        put(d.config, "broken.yaml", broken);

        struct cfg_store *st = store_start(loop, &d);
        struct cfg_store_status cs;
        cfg_store_status(st, &cs);
        assert_false(cs.loaded); /* not ready: not the operator's files */
        assert_int_equal(cs.serving, rows[i].serving);
        assert_int_equal(cfg_store_fail_closed(st), rows[i].serving == CFG_SERVING_NONE);
        assert_true(cs.nerrors > 0); /* and the reason is reported */
        if (rows[i].serving == CFG_SERVING_PERSISTED)
            assert_string_equal(cs.version, applied);
        const struct cfg_snapshot *snap = cfg_store_current(st);
        assert_int_equal(cfg_count(snap, CFG_PEER_AUTHENTICATION), rows[i].peerauth);
        assert_int_equal(cfg_count(snap, CFG_AUTHORIZATION_POLICY), rows[i].authz);

        /* Fixing the files applies them: live, ready. */
        char path[160];
        snprintf(path, sizeof(path), "%s/broken.yaml", d.config);
        assert_int_equal(unlink(path), 0);
        cfg_store_reload(st);
        for (int t = 0; t < 100 && !cs.loaded; t++) {
            loop_run_once(loop, 50);
            cfg_store_status(st, &cs);
        }
        assert_true(cs.loaded);
        assert_int_equal(cs.serving, CFG_SERVING_LIVE);
        assert_false(cfg_store_fail_closed(st));
        assert_string_equal(cs.persisted_version, cs.version);
        snprintf(applied, sizeof(applied), "%s", cs.version);
        cfg_store_free(st);

        /* Whatever came before, that good load is what the next start on
         * broken files serves. */
        put(d.config, "broken.yaml", broken);
        st = store_start(loop, &d);
        cfg_store_status(st, &cs);
        assert_int_equal(cs.serving, CFG_SERVING_PERSISTED);
        assert_string_equal(cs.version, applied);
        assert_int_equal(cfg_count(cfg_store_current(st), CFG_AUTHORIZATION_POLICY), 1);
        cfg_store_free(st);
        loop_free(loop);
        dirs_remove(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_copy_loads_as_the_same_version),
        cmocka_unit_test(test_commit_replaces_the_previous_copy_whole),
        cmocka_unit_test(test_failed_staging_removes_the_stale_copy),
        cmocka_unit_test(test_leftover_staging_is_cleared),
        cmocka_unit_test(test_store_start_on_broken_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
