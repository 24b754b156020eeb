/* The event loop's end-of-batch tasks (agent/core/loop.c): a task queued
 * by several events of one batch runs once, after every event and before
 * the batch's deferred releases; a task may queue another for the same
 * pass; one queued outside a batch runs before the next wait. The batch's
 * wake-up time is when its wait returned, the same for all its events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"

static struct loop *loop;
static char trace[64];

static void note(char c)
{
    size_t n = strlen(trace);
    if (n + 1 < sizeof(trace))
        trace[n] = c;
}

static struct loop_task task, second;
static struct loop_deferred release;

static void on_release(struct loop_deferred *d)
{
    note('R');
}

static void on_second(struct loop_task *t)
{
    note('S');
}

static void on_task(struct loop_task *t)
{
    note('T');
    loop_defer(loop, &release); /* e.g. the flush failed: tear down */
    loop_task_queue(loop, &second);
}

static void on_io(struct loop_io *io, uint32_t events)
{
    char b[8];
    while (read(io->fd, b, sizeof(b)) > 0)
        ;
    note('E');
    loop_task_queue(loop, &task);
    loop_task_queue(loop, &task); /* again: still once */
}

static void batch_end_tasks(void **state)
{
    assert_int_equal(loop_new(&loop), 0);
    task.fn = on_task;
    second.fn = on_second;
    release.fn = on_release;
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    struct loop_io ia = {.fd = a[0], .cb = on_io}, ib = {.fd = b[0], .cb = on_io};
    assert_int_equal(loop_add(loop, &ia, EPOLLIN), 0);
    assert_int_equal(loop_add(loop, &ib, EPOLLIN), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    assert_int_equal(loop_run_once(loop, 1000), 2);
    /* Both events, then the task once, the task it queued, the release. */
    assert_string_equal(trace, "EETSR");

    /* Outside a batch: runs before the wait (which would block 1 s). */
    memset(trace, 0, sizeof(trace));
    loop_task_queue(loop, &second);
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_string_equal(trace, "S");

    loop_del(loop, &ia);
    loop_del(loop, &ib);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    loop_free(loop);
}

static uint64_t seen[2];
static int nseen;

static void on_io_time(struct loop_io *io, uint32_t events)
{
    char b[8];
    while (read(io->fd, b, sizeof(b)) > 0)
        ;
    usleep(2000); /* a slow event: the next one's stamp is still the wake-up */
    if (nseen < 2)
        seen[nseen++] = loop_woke_ns(loop);
}

static void wake_time_is_the_batchs(void **state)
{
    assert_int_equal(loop_new(&loop), 0);
    uint64_t t0 = loop_now_ns();
    uint64_t before = loop_woke_ns(loop); /* no wait yet: the clock */
    assert_true(before >= t0 && before <= loop_now_ns());
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    struct loop_io ia = {.fd = a[0], .cb = on_io_time}, ib = {.fd = b[0], .cb = on_io_time};
    assert_int_equal(loop_add(loop, &ia, EPOLLIN), 0);
    assert_int_equal(loop_add(loop, &ib, EPOLLIN), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    uint64_t t1 = loop_now_ns();
    assert_int_equal(loop_run_once(loop, 1000), 2);
    uint64_t t2 = loop_now_ns();
    assert_int_equal(nseen, 2);
    assert_true(seen[0] == seen[1]); /* one batch, one stamp */
    assert_true(seen[0] >= t1 && seen[0] + 2000000 <= t2);
    assert_true(loop_woke_ns(loop) == seen[0]); /* until the next wait */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_true(loop_woke_ns(loop) >= t2);
    loop_del(loop, &ia);
    loop_del(loop, &ib);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_end_tasks),
        cmocka_unit_test(wake_time_is_the_batchs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
