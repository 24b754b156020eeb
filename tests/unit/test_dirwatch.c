/* The config directory watcher (agent/core/dirwatch.c) on a real inotify:
 * a burst of writes gives one callback after the debounce, files in new
 * subdirectories are seen, and a missing root is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirwatch.h"
#include "core/loop.h"

static int calls;
static void on_change(void *ctx)
{
    calls++;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs the loop for about `ms` milliseconds. */
static void run_for(struct loop *loop, int ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)ms * 1000000u;
    while (loop_now_ns() < end)
        loop_run_once(loop, 5);
}

static void a_burst_of_writes_is_one_reload(void **state)
{
    char dir[] = "/tmp/meshd-dirwatch-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct loop *loop;
    struct dirwatch *w;
    assert_int_equal(loop_new(&loop), 0);
    assert_int_equal(dirwatch_new(loop, dir, 50, on_change, NULL, &w), 0);
    calls = 0;
    for (int i = 0; i < 20; i++)
        write_file(dir, "a.yaml", "kind: Namespace\n");
    run_for(loop, 200);
    assert_int_equal(calls, 1);

    /* A file in a subdirectory created after the watch started. */
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/istio", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    run_for(loop, 200);
    calls = 0;
    write_file(sub, "pa.yaml", "kind: PeerAuthentication\n");
    run_for(loop, 200);
    assert_int_equal(calls, 1);

    dirwatch_free(w);
    loop_free(loop);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A poke is a change: one callback a debounce later, merged with the
 * changes that follow it (cfg_store_hold's release). */
static void a_poke_is_one_change_with_those_after_it(void **state)
{
    char dir[] = "/tmp/meshd-dirwatch-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct loop *loop;
    struct dirwatch *w;
    assert_int_equal(loop_new(&loop), 0);
    assert_int_equal(dirwatch_new(loop, dir, 50, on_change, NULL, &w), 0);
    calls = 0;
    dirwatch_poke(w);
    run_for(loop, 20);
    assert_int_equal(calls, 0); /* not before the debounce */
    write_file(dir, "a.yaml", "kind: Namespace\n");
    run_for(loop, 200);
    assert_int_equal(calls, 1);
    dirwatch_poke(NULL); /* no watcher: nothing */
    run_for(loop, 100);
    assert_int_equal(calls, 1);
    dirwatch_free(w);
    loop_free(loop);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void a_missing_root_is_an_error(void **state)
{
    struct loop *loop;
    struct dirwatch *w = NULL;
    assert_int_equal(loop_new(&loop), 0);
    assert_int_equal(dirwatch_new(loop, "/nonexistent/meshd", 50, on_change, NULL, &w), -ENOENT);
    assert_null(w);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_burst_of_writes_is_one_reload),
        cmocka_unit_test(a_poke_is_one_change_with_those_after_it),
        cmocka_unit_test(a_missing_root_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
