/* cgroup2/bpffs discovery from a mounts table (agent/capture/mounts.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/mounts.h"

static char path[64];

static void write_table(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/meshd-mounts-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void finds_cgroup2_in_hybrid_layout(void **state)
{
    write_table("tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
                "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
                "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n");
    char out[256];
    assert_int_equal(mounts_find(path, "cgroup2", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup/unified");
}

static void finds_cgroup2_in_unified_layout(void **state)
{
    write_table("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n");
    char out[256];
    assert_int_equal(mounts_find(path, "cgroup2", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup");
}

static void prefers_the_preferred_mount(void **state)
{
    write_table("bpf /run/other bpf rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n");
    char out[256];
    assert_int_equal(mounts_find(path, "bpf", "/sys/fs/bpf", out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/bpf");
    assert_int_equal(mounts_find(path, "bpf", "/nowhere", out, sizeof(out)), 0);
    assert_string_equal(out, "/run/other");
}

static void decodes_octal_escapes(void **state)
{
    write_table("cgroup2 /mnt/with\\040space cgroup2 rw 0 0\n");
    char out[256];
    assert_int_equal(mounts_find(path, "cgroup2", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/mnt/with space");
}

static void missing_type_is_enoent(void **state)
{
    write_table("proc /proc proc rw 0 0\ngarbage\n\n");
    char out[256];
    assert_int_equal(mounts_find(path, "cgroup2", NULL, out, sizeof(out)), -ENOENT);
}

static void too_long_mount_point_is_skipped(void **state)
{
    write_table("cgroup2 /a/very/long/mount/point cgroup2 rw 0 0\n");
    char out[8];
    assert_int_equal(mounts_find(path, "cgroup2", NULL, out, sizeof(out)), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(finds_cgroup2_in_hybrid_layout, teardown),
        cmocka_unit_test_teardown(finds_cgroup2_in_unified_layout, teardown),
        cmocka_unit_test_teardown(prefers_the_preferred_mount, teardown),
        cmocka_unit_test_teardown(decodes_octal_escapes, teardown),
        cmocka_unit_test_teardown(missing_type_is_enoent, teardown),
        cmocka_unit_test_teardown(too_long_mount_point_is_skipped, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
