/* upstream_connect's contract with the capture programs
 * (agent/core/upstream.c), with a real BPF_MAP_TYPE_SK_STORAGE map in the
 * running kernel shaped like meshd_own: a socket is registered as meshd's
 * own before it connects, and when registration fails no connect is made
 * at all (unregistered, the capture would take meshd's own connect back).
 * That a registered socket is not captured is shown end to end in
 * tests/e2e/test_sec_mark.sh, where the programs are attached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "core/addr.h"
#include "core/upstream.h"

struct fx {
    int own;      /* sk_storage map, key int, value struct meshd_own */
    int not_map;  /* an fd that is not a BPF map */
    int netns_fd; /* the test's own netns */
    int listener;
    struct meshd_addr dst;
};

/* The map as bpf/lib/maps.h declares it: the kernel requires BTF for the
 * key and value of socket storage. */
static int own_map_create(void)
{
    struct btf *btf = btf__new_empty();
    if (!btf)
        return -errno;
    int int_id = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
    int u32_id = btf__add_int(btf, "unsigned int", 4, 0);
    int val_id = btf__add_struct(btf, "meshd_own", sizeof(struct meshd_own));
    int fd = -EINVAL;
    if (int_id < 0 || u32_id < 0 || val_id < 0 ||
        btf__add_field(btf, "agent_pid", u32_id, 0, 0) != 0 ||
        btf__add_field(btf, "flags", u32_id, 32, 0) != 0 || btf__load_into_kernel(btf) != 0)
        goto out;
    LIBBPF_OPTS(bpf_map_create_opts, o, .btf_fd = btf__fd(btf), .btf_key_type_id = int_id,
                .btf_value_type_id = val_id, .map_flags = BPF_F_NO_PREALLOC);
    fd = bpf_map_create(BPF_MAP_TYPE_SK_STORAGE, "meshd_own", sizeof(int), sizeof(struct meshd_own),
                        0, &o);
out:
    btf__free(btf); /* the map holds its own reference to the loaded BTF */
    return fd;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->own = own_map_create();
    if (f->own < 0) {
        free(f);
        return -1; /* no BPF here (not root?): the group fails, loudly */
    }
    f->not_map = open("/dev/null", O_RDONLY | O_CLOEXEC);
    f->netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(f->not_map >= 0 && f->netns_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    f->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->listener, 8), 0);
    assert_int_equal(getsockname(f->listener, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&a, len, &f->dst), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    close(f->listener);
    close(f->netns_fd);
    close(f->not_map);
    close(f->own);
    free(f);
    return 0;
}

/* How many connections reached the listener within `ms`. */
static int accepted_within(int listener, int ms)
{
    int n = 0;
    struct pollfd p = {.fd = listener, .events = POLLIN};
    while (poll(&p, 1, ms) == 1) {
        int fd = accept(listener, NULL, NULL);
        if (fd == -1)
            break;
        close(fd);
        n++;
        ms = 50; /* drain what is already queued */
    }
    return n;
}

enum owner_kind { OWN_MAP, NOT_A_MAP, ZERO_INIT, NO_CAPTURE };

static const struct {
    const char *name;
    enum owner_kind kind;
    bool connects;   /* upstream_connect returns a socket and the peer sees it */
    bool registered; /* the socket has meshd's entry in the map */
} cases[] = {
    {"registered in meshd_own before connecting", OWN_MAP, true, true},
    {"registration refused (not a map): no connect is made", NOT_A_MAP, false, false},
    {"zero-initialised owner (fd 0): no connect is made", ZERO_INIT, false, false},
    {"no capture programs (tests): connects unregistered", NO_CAPTURE, true, false},
};

static void test_registration_table(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("  %s\n", cases[i].name);
        struct upstream_owner o = {.mark = MESHD_SOCK_MARK, .agent_pid = (uint32_t)getpid()};
        switch (cases[i].kind) {
        case OWN_MAP:
            o.own_map_fd = f->own;
            break;
        case NOT_A_MAP:
            o.own_map_fd = f->not_map;
            break;
        case ZERO_INIT:
            o = (struct upstream_owner){0};
            break;
        case NO_CAPTURE:
            o.own_map_fd = UPSTREAM_NO_CAPTURE;
            break;
        }
        int fd = upstream_connect(f->netns_fd, &f->dst, NULL, &o, NULL);
        if (!cases[i].connects) {
            assert_true(fd < 0);
            assert_int_equal(accepted_within(f->listener, 200), 0);
            continue;
        }
        assert_true(fd >= 0);
        assert_int_equal(accepted_within(f->listener, 2000), 1);
        struct meshd_own v = {0};
        int rc = bpf_map_lookup_elem(f->own, &fd, &v);
        if (cases[i].registered) {
            assert_int_equal(rc, 0);
            assert_int_equal(v.agent_pid, (uint32_t)getpid());
        } else {
            assert_int_equal(rc, -ENOENT);
        }
        uint32_t mark = 0;
        socklen_t len = sizeof(mark);
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
        assert_int_equal(mark, o.mark);
        close(fd);
    }
}

/* The storage belongs to the socket: a new socket that reuses the number
 * of a closed, registered one starts without an entry. */
static void test_entry_dies_with_the_socket(void **state)
{
    struct fx *f = *state;
    struct upstream_owner o = {.mark = MESHD_SOCK_MARK, .own_map_fd = f->own};
    int fd = upstream_connect(f->netns_fd, &f->dst, NULL, &o, NULL);
    assert_true(fd >= 0);
    assert_int_equal(accepted_within(f->listener, 2000), 1);
    close(fd);
    int again = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(again, fd); /* the lowest free number: the same one */
    struct meshd_own v;
    assert_int_equal(bpf_map_lookup_elem(f->own, &again, &v), -ENOENT);
    close(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration_table),
        cmocka_unit_test(test_entry_dies_with_the_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
