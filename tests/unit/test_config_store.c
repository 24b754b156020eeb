/* Reloading the live configuration (config/store.c), one edit after
 * another on one store: a bad edit is rejected with its reason and the
 * last good snapshot keeps serving (the same object, no new generation, no
 * applied callback); a good edit swaps the snapshot and hands the old one
 * to the callback; a reload with the same content changes nothing; a
 * reference taken before a swap stays readable after it. Then the same
 * through the directory watcher, without an explicit reload. */
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
#include "config/store.h"
#include "core/loop.h"

static const char strict_pa[] = "apiVersion: security.istio.io/v1\n"
                                "kind: PeerAuthentication\n"
                                "metadata: {name: strict, namespace: default}\n"
                                "spec: {mtls: {mode: STRICT}}\n";
static const char deny_ap[] = "apiVersion: security.istio.io/v1\n"
                              "kind: AuthorizationPolicy\n"
                              "metadata: {name: deny-all, namespace: default}\n"
                              "spec: {action: DENY, rules: [{}]}\n";
static const char bad_mode[] = "apiVersion: security.istio.io/v1\n"
                               "kind: PeerAuthentication\n"
                               "metadata: {name: typo, namespace: default}\n"
                               "spec: {mtls: {mode: STRICTLY}}\n";
static const char yaml_syntax[] = "apiVersion: v1\nkind: [Service\n";

struct applied_log {
    unsigned calls;
    /* Of the last call, borrowed: compared as pointers only, `old` is
     * released after the call. */
    struct cfg_snapshot *now, *old;
    char old_version[17];
    long old_peerauth; /* -1: no old snapshot */
};

static void on_applied(void *ctx, struct cfg_snapshot *now, struct cfg_snapshot *old)
{
    struct applied_log *l = ctx;
    l->calls++;
    l->now = now;
    l->old = old;
    snprintf(l->old_version, sizeof(l->old_version), "%s", old ? cfg_snapshot_version(old) : "");
    l->old_peerauth = old ? (long)cfg_count(old, CFG_PEER_AUTHENTICATION) : -1;
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void drop(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static uint64_t loads(const struct cfg_store_status *s)
{
    return s->applied + s->rejected + s->unchanged;
}

/* Runs the loop until one more load finished (bounded: 5 s). */
static void wait_load(struct loop *loop, struct cfg_store *st, uint64_t before)
{
    struct cfg_store_status s;
    cfg_store_status(st, &s);
    for (int i = 0; i < 100 && loads(&s) == before; i++) {
        loop_run_once(loop, 50);
        cfg_store_status(st, &s);
    }
    assert_true(loads(&s) > before);
}

/* Runs the loop while the counter `watched` (a field of *s, refreshed
 * each turn) still equals `value` (bounded: 5 s). */
static void run_while_equal(struct loop *loop, struct cfg_store *st, struct cfg_store_status *s,
                            const uint64_t *watched, uint64_t value)
{
    for (int i = 0; i < 100 && *watched == value; i++) {
        loop_run_once(loop, 50);
        cfg_store_status(st, s);
    }
}

static void unlink_in(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static void rm_tree(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

enum edit { ADD, REMOVE, NONE };

static void bad_edits_keep_the_last_good_snapshot_good_ones_swap(void **state)
{
    char dir[64] = "/tmp/meshd-store.XXXXXX";
    assert_non_null(mkdtemp(dir));
    put(dir, "pa.yaml", strict_pa);
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct applied_log log = {0};
    /* A long debounce: only the explicit reloads below load. */
    struct cfg_store_opts o = {
        .dir = dir, .debounce_ms = 600000, .applied = on_applied, .ctx = &log};
    struct cfg_store *st;
    assert_int_equal(cfg_store_new(loop, &o, &st), 0);

    struct cfg_store_status s;
    cfg_store_status(st, &s);
    assert_true(s.loaded);
    assert_int_equal(s.serving, CFG_SERVING_LIVE);
    assert_int_equal(s.generation, 1);
    assert_int_equal(log.calls, 1);
    /* The first load replaces the empty snapshot the store starts with. */
    assert_non_null(log.old);
    assert_int_equal(log.old_peerauth, 0);
    /* Held across every reload below: must stay readable. */
    struct cfg_snapshot *first = cfg_snapshot_ref(cfg_store_current(st));
    char first_version[17];
    snprintf(first_version, sizeof(first_version), "%s", s.version);

    static const struct {
        const char *what;
        enum edit edit;
        const char *file, *text;
        bool swaps;          /* a new snapshot serves */
        uint64_t rejected;   /* rejected loads so far */
        uint64_t unchanged;  /* unchanged loads so far */
        const char *message; /* in the reported errors when rejected */
        size_t peerauth, authz;
    } steps[] = {
        {"a YAML syntax error is rejected", ADD, "broken.yaml", yaml_syntax, false, 1, 0,
         "broken.yaml", 1, 0},
        {"still rejected while it is there", NONE, NULL, NULL, false, 2, 0, "broken.yaml", 1, 0},
        {"the file removed: the same content as served, unchanged", REMOVE, "broken.yaml", NULL,
         false, 2, 1, NULL, 1, 0},
        {"a good edit swaps", ADD, "ap.yaml", deny_ap, true, 2, 1, NULL, 1, 1},
        {"an invalid field value is rejected", ADD, "typo.yaml", bad_mode, false, 3, 1, "STRICTLY",
         1, 1},
        {"another edit while the typo stays: still rejected", REMOVE, "pa.yaml", NULL, false, 4, 1,
         "STRICTLY", 1, 1},
        {"the typo removed too", REMOVE, "typo.yaml", NULL, true, 4, 1, NULL, 0, 1},
        {"no change: unchanged", NONE, NULL, NULL, false, 4, 2, NULL, 0, 1},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        fprintf(stderr, "step: %s\n", steps[i].what);
        struct cfg_store_status before;
        cfg_store_status(st, &before);
        char version_before[17];
        snprintf(version_before, sizeof(version_before), "%s", before.version);
        struct cfg_snapshot *serving = cfg_store_current(st);
        unsigned calls = log.calls;
        if (steps[i].edit == ADD)
            put(dir, steps[i].file, steps[i].text);
        else if (steps[i].edit == REMOVE)
            drop(dir, steps[i].file);
        cfg_store_reload(st);
        wait_load(loop, st, loads(&before));

        cfg_store_status(st, &s);
        assert_int_equal(s.rejected, steps[i].rejected);
        assert_int_equal(s.unchanged, steps[i].unchanged);
        if (steps[i].swaps) {
            assert_ptr_not_equal(cfg_store_current(st), serving);
            assert_string_not_equal(s.version, version_before);
            assert_int_equal(s.generation, before.generation + 1);
            assert_int_equal(log.calls, calls + 1);
            assert_ptr_equal(log.now, cfg_store_current(st));
            assert_ptr_equal(log.old, serving);
            assert_string_equal(log.old_version, version_before);
            assert_int_equal(s.nerrors, 0);
        } else {
            /* The last good snapshot: the same object, version, generation. */
            assert_ptr_equal(cfg_store_current(st), serving);
            assert_string_equal(s.version, version_before);
            assert_int_equal(s.generation, before.generation);
            assert_int_equal(log.calls, calls);
            assert_true(s.loaded);
            assert_int_equal(s.serving, CFG_SERVING_LIVE);
        }
        if (steps[i].message) {
            assert_true(s.nerrors > 0);
            bool named = false;
            for (size_t e = 0; e < s.nerrors; e++)
                named |= strstr(s.errors[e], steps[i].message) != NULL;
            assert_true(named);
        } else {
            assert_int_equal(s.nerrors, 0);
        }
        const struct cfg_snapshot *snap = cfg_store_current(st);
        assert_int_equal(cfg_count(snap, CFG_PEER_AUTHENTICATION), steps[i].peerauth);
        assert_int_equal(cfg_count(snap, CFG_AUTHORIZATION_POLICY), steps[i].authz);
    }
    /* The reference taken at the start: still the first configuration. */
    assert_string_equal(cfg_snapshot_version(first), first_version);
    assert_int_equal(cfg_count(first, CFG_PEER_AUTHENTICATION), 1);
    assert_non_null(cfg_find(first, CFG_PEER_AUTHENTICATION, "default", "strict"));
    cfg_snapshot_unref(first);
    cfg_store_free(st);
    loop_free(loop);
    rm_tree(dir);
}

/* The watcher: an edit in the directory reloads by itself. */
static void an_edit_in_the_directory_reloads_without_a_call(void **state)
{
    char dir[64] = "/tmp/meshd-store.XXXXXX";
    assert_non_null(mkdtemp(dir));
    put(dir, "pa.yaml", strict_pa);
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct cfg_store_opts o = {.dir = dir, .debounce_ms = 20};
    struct cfg_store *st;
    assert_int_equal(cfg_store_new(loop, &o, &st), 0);
    struct cfg_store_status s;
    cfg_store_status(st, &s);
    uint64_t generation = s.generation;

    put(dir, "ap.yaml", deny_ap);
    run_while_equal(loop, st, &s, &s.generation, generation);
    assert_int_equal(s.generation, generation + 1);
    assert_int_equal(cfg_count(cfg_store_current(st), CFG_AUTHORIZATION_POLICY), 1);

    /* A bad edit through the watcher: rejected, the good one serves. */
    uint64_t rejected = s.rejected;
    put(dir, "broken.yaml", yaml_syntax);
    run_while_equal(loop, st, &s, &s.rejected, rejected);
    assert_int_equal(s.rejected, rejected + 1);
    assert_int_equal(s.generation, generation + 1);
    assert_int_equal(cfg_count(cfg_store_current(st), CFG_AUTHORIZATION_POLICY), 1);
    cfg_store_free(st);
    loop_free(loop);
    rm_tree(dir);
}

/* The loop for ms milliseconds; the loads it ran (applied, rejected or
 * unchanged) since `before`. */
static uint64_t loads_during(struct loop *loop, struct cfg_store *st, unsigned ms, uint64_t before)
{
    uint64_t until = loop_now_ns() + (uint64_t)ms * 1000000ull;
    while (loop_now_ns() < until)
        loop_run_once(loop, 10);
    struct cfg_store_status s;
    cfg_store_status(st, &s);
    return s.applied + s.rejected + s.unchanged - before;
}

/* A writer holding the store (the Kubernetes mirror during a list) writes
 * files across many debounce windows: nothing loads meanwhile, nested
 * holds keep holding, and the last release loads once, with every file. */
static void a_held_store_reloads_once_when_released(void **state)
{
    (void)state;
    char dir[64] = "/tmp/meshd-store.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct cfg_store_opts o = {.dir = dir, .debounce_ms = 20};
    struct cfg_store *st;
    assert_int_equal(cfg_store_new(loop, &o, &st), 0);
    struct cfg_store_status s;
    cfg_store_status(st, &s);
    uint64_t loads = s.applied + s.rejected + s.unchanged, generation = s.generation;

    cfg_store_hold(st, true);
    cfg_store_hold(st, true); /* two lists under way */
    static const char *const names[] = {"pa.yaml", "ap.yaml"};
    static const char *const texts[] = {strict_pa, deny_ap};
    for (int i = 0; i < 2; i++) {
        put(dir, names[i], texts[i]);
        assert_int_equal(loads_during(loop, st, 60, loads), 0); /* 3 debounce windows */
    }
    cfg_store_hold(st, false);
    assert_int_equal(loads_during(loop, st, 60, loads), 0); /* one list still under way */
    cfg_store_hold(st, false);
    assert_int_equal(loads_during(loop, st, 300, loads), 1);
    cfg_store_status(st, &s);
    assert_int_equal(s.generation, generation + 1);
    assert_int_equal(cfg_count(cfg_store_current(st), CFG_PEER_AUTHENTICATION), 1);
    assert_int_equal(cfg_count(cfg_store_current(st), CFG_AUTHORIZATION_POLICY), 1);

    /* Released with nothing changed meanwhile: no load; a stray release
     * does not underflow into a hold. */
    cfg_store_hold(st, true);
    cfg_store_hold(st, false);
    cfg_store_hold(st, false);
    assert_int_equal(loads_during(loop, st, 60, loads), 1);
    unlink_in(dir, "ap.yaml");
    assert_int_equal(loads_during(loop, st, 300, loads), 2);
    cfg_store_free(st);
    loop_free(loop);
    rm_tree(dir);
}

/* A load whose cancel flag is set gives up before its next file (the
 * store's at free: SIGTERM does not wait for thousands of files). */
static void a_cancelled_load_gives_up(void **state)
{
    (void)state;
    char dir[64] = "/tmp/meshd-store.XXXXXX";
    assert_non_null(mkdtemp(dir));
    put(dir, "pa.yaml", strict_pa);
    const char *paths[] = {dir};
    static const struct {
        bool cancel;
        int rc;
        bool snap;
    } cases[] = {{false, 0, true}, {true, -ECANCELED, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        atomic_bool cancel;
        atomic_init(&cancel, cases[i].cancel);
        struct cfg_load_opts o;
        cfg_load_opts_default(&o);
        o.cancel = &cancel;
        struct cfg_diags d;
        cfg_diags_init(&d);
        struct cfg_snapshot *snap = NULL;
        assert_int_equal(cfg_load(paths, 1, &o, &d, &snap), cases[i].rc);
        assert_int_equal(snap != NULL, cases[i].snap);
        if (snap)
            assert_int_equal(cfg_count(snap, CFG_PEER_AUTHENTICATION), 1);
        cfg_snapshot_unref(snap);
        cfg_diags_fini(&d);
    }
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_edits_keep_the_last_good_snapshot_good_ones_swap),
        cmocka_unit_test(an_edit_in_the_directory_reloads_without_a_call),
        cmocka_unit_test(a_held_store_reloads_once_when_released),
        cmocka_unit_test(a_cancelled_load_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
