/* Loading, attaching and pinning the capture programs (see capture.h). */
#include "capture/capture.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "capture/inbound_lookup.h"
#include "core/log.h"

struct capture {
    struct meshd_capture *skel;
    int cgroup_fd;
    char pin_dir[256];
    struct bpf_link *links[3];
    uint32_t sock_mark;
    bool resumed;
};

static const char *const stat_names[MESHD_STAT__MAX] = {
    [MESHD_STAT_CONNECT_SEEN] = "connect_seen",
    [MESHD_STAT_CONNECT_CAPTURED] = "connect_captured",
    [MESHD_STAT_CONNECT_SKIP_OWN] = "connect_skip_own",
    [MESHD_STAT_CONNECT_SKIP_LOCAL] = "connect_skip_local",
    [MESHD_STAT_ORIG_DST_STORED] = "orig_dst_stored",
    [MESHD_STAT_ORIG_DST_MISSING] = "orig_dst_missing",
    [MESHD_STAT_MAP_FULL] = "map_full",
    [MESHD_STAT_EVENTS] = "conn_events",
    [MESHD_STAT_EVENT_DROPS] = "conn_event_drops",
    [MESHD_STAT_CONNECT_FORGED_MARK] = "connect_forged_mark",
};

const char *capture_stat_name(enum meshd_stat s)
{
    return (unsigned)s < MESHD_STAT__MAX ? stat_names[s] : "?";
}

static int mkdir_p(const char *path)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) == -1 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) == -1 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Takes over the pinned link `name` from a previous instance, or attaches
 * `prog` afresh and pins it. Taking over swaps the program atomically, so
 * enrolled pods are never left uncaptured during a restart. */
static int attach_pinned(struct capture *c, struct bpf_program *prog, const char *name,
                         struct bpf_link **out)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/%s", c->pin_dir, name);
    struct bpf_link *link = access(path, F_OK) == 0 ? bpf_link__open(path) : NULL;
    if (link) {
        int err = bpf_link__update_program(link, prog);
        if (err == 0) {
            c->resumed = true;
            *out = link;
            return 0;
        }
        log_warn("capture: cannot take over %s (%s); attaching anew", path, strerror(-err));
        bpf_link__unpin(link);
        bpf_link__destroy(link);
    }
    link = bpf_program__attach_cgroup(prog, c->cgroup_fd);
    if (!link) {
        int err = -errno;
        log_error("capture: attaching %s to the cgroup failed: %s", bpf_program__name(prog),
                  strerror(-err));
        return err;
    }
    int err = bpf_link__pin(link, path);
    if (err) {
        log_error("capture: pinning %s failed: %s", path, strerror(-err));
        bpf_link__destroy(link);
        return err;
    }
    *out = link;
    return 0;
}

/* Whether a pinned map can serve as `map` (libbpf refuses it otherwise). */
static bool pin_compatible(const struct bpf_map *map, const struct bpf_map_info *info)
{
    return info->type == (uint32_t)bpf_map__type(map) && info->key_size == bpf_map__key_size(map) &&
           info->value_size == bpf_map__value_size(map) &&
           info->max_entries == bpf_map__max_entries(map) &&
           info->map_flags == bpf_map__map_flags(map);
}

/* Pinned maps of an older meshd (or another --ring-bytes) whose layout
 * differs from ours. libbpf would refuse them and the agent would not
 * start after an upgrade, on every node at once. Counters and in-flight
 * state are replaced (their pins removed; the old programs keep their
 * maps until the links switch). The enrollment map is what keeps pods
 * captured: it is kept open in *old_enrolled for carry_enrolled(), or, if
 * its entries cannot be read as pods, the start is refused with the pins
 * left as they are (fail closed). */
static int pins_reconcile(struct capture *c, int *old_enrolled)
{
    struct bpf_map *map;
    bpf_object__for_each_map(map, c->skel->obj)
    {
        const char *path = bpf_map__pin_path(map);
        int fd = path ? bpf_obj_get(path) : -1;
        if (fd < 0)
            continue;
        struct bpf_map_info info = {0};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || pin_compatible(map, &info)) {
            close(fd);
            continue;
        }
        bool enrolled = map == c->skel->maps.meshd_enrolled;
        if (enrolled && (info.type != BPF_MAP_TYPE_HASH || info.key_size != sizeof(uint64_t))) {
            log_error("capture: pinned %s (type %u, key %u bytes) is no enrollment map meshd "
                      "can read; not starting (remove it with meshd uninstall)",
                      path, info.type, info.key_size);
            close(fd);
            return -EINVAL;
        }
        log_warn("capture: pinned %s (type %u, key %u, value %u, %u entries) differs from this "
                 "meshd's; %s",
                 path, info.type, info.key_size, info.value_size, info.max_entries,
                 enrolled ? "its pods are carried over" : "replaced");
        if (unlink(path) == -1) {
            int err = -errno;
            close(fd);
            return err;
        }
        if (enrolled)
            *old_enrolled = fd;
        else
            close(fd);
    }
    return 0;
}

/* Copies the old enrollment map's pods into the new one (fields it lacks
 * are zero). */
static void carry_enrolled(struct capture *c, int old_fd)
{
    int new_fd = bpf_map__fd(c->skel->maps.meshd_enrolled);
    uint64_t key, next;
    uint8_t value[256];
    size_t n = 0;
    struct bpf_map_info info = {0};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(old_fd, &info, &len) != 0 || info.value_size > sizeof(value))
        return;
    for (int rc = bpf_map_get_next_key(old_fd, NULL, &next); rc == 0;
         rc = bpf_map_get_next_key(old_fd, &key, &next)) {
        key = next;
        struct meshd_pod_info pod = {0};
        memset(value, 0, sizeof(value));
        if (bpf_map_lookup_elem(old_fd, &key, value) != 0)
            continue;
        memcpy(&pod, value, info.value_size < sizeof(pod) ? info.value_size : sizeof(pod));
        if (bpf_map_update_elem(new_fd, &key, &pod, BPF_ANY) == 0)
            n++;
    }
    log_info("capture: %zu enrolled pod%s carried over to the new enrollment map", n,
             n == 1 ? "" : "s");
}

/* libbpf's own diagnostics go through our log, at our levels. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    /* libbpf's debug level is a CO-RE relocation trace: too much even for
     * our debug level. Its info lines (pins, loads) are our debug. */
    if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && log_get_level() < LOG_DEBUG))
        return 0;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_msg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "%s", line); /* libbpf prefixes its own */
    return 0;
}

int capture_open(const struct capture_opts *opts, struct capture **out)
{
    libbpf_set_print(libbpf_log);
    int err;
    bool inherited = false;
    struct capture *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cgroup_fd = -1;
    if (snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", opts->pin_dir) >= (int)sizeof(c->pin_dir)) {
        err = -ENAMETOOLONG;
        goto err_free;
    }
    /* Pins of a previous instance: its pods are enrolled in them. A failed
     * start must leave them as they are (fail closed), never detach. */
    char probe[320];
    snprintf(probe, sizeof(probe), "%s/meshd_enrolled", c->pin_dir);
    inherited = access(probe, F_OK) == 0;
    err = mkdir_p(c->pin_dir);
    if (err) {
        log_error("capture: cannot create %s: %s", c->pin_dir, strerror(-err));
        goto err_free;
    }
    c->cgroup_fd = open(opts->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->cgroup_fd == -1) {
        err = -errno;
        log_error("capture: cannot open cgroup %s: %s", opts->cgroup_path, strerror(-err));
        goto err_free;
    }
    LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = c->pin_dir);
    c->skel = meshd_capture__open_opts(&oo);
    if (!c->skel) {
        err = -errno;
        log_error("capture: cannot open the BPF object: %s", strerror(-err));
        goto err_free;
    }
    c->skel->rodata->sock_mark = opts->sock_mark;
    c->sock_mark = opts->sock_mark;
    c->skel->rodata->outbound_port = opts->outbound_port;
    /* A ring pinned by a previous instance keeps its size: match it, or
     * libbpf refuses to reuse it. */
    if (opts->ring_bytes)
        bpf_map__set_max_entries(c->skel->maps.meshd_events, opts->ring_bytes);
    int old_enrolled = -1;
    err = pins_reconcile(c, &old_enrolled);
    if (err)
        goto err_free;
    err = meshd_capture__load(c->skel);
    if (err) {
        log_error("capture: loading BPF programs failed: %s", strerror(-err));
        if (old_enrolled >= 0)
            close(old_enrolled);
        goto err_free;
    }
    if (old_enrolled >= 0) {
        /* Before the links switch programs: no pod is uncaptured meanwhile. */
        carry_enrolled(c, old_enrolled);
        close(old_enrolled);
    }
    struct {
        struct bpf_program *prog;
        const char *pin;
    } progs[3] = {
        {c->skel->progs.meshd_connect4, "link_connect4"},
        {c->skel->progs.meshd_connect6, "link_connect6"},
        {c->skel->progs.meshd_sockops, "link_sockops"},
    };
    for (int i = 0; i < 3; i++) {
        err = attach_pinned(c, progs[i].prog, progs[i].pin, &c->links[i]);
        if (err)
            goto err_free;
    }
    log_info("capture: programs %s at %s, pinned under %s", c->resumed ? "taken over" : "attached",
             opts->cgroup_path, c->pin_dir);
    *out = c;
    return 0;
err_free:
    capture_close(c, !inherited);
    return err;
}

/* Removes an instance's (empty) pin directory, then the shared parent once
 * the last instance has left. 0, or -1 with errno. */
static int pin_dir_remove(const char *pin_dir)
{
    if (rmdir(pin_dir) == -1 && errno != ENOENT)
        return -1;
    char parent[512];
    if (snprintf(parent, sizeof(parent), "%s", pin_dir) >= (int)sizeof(parent))
        return 0; /* never rmdir a truncated path */
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        rmdir(parent); /* ENOTEMPTY while another instance is pinned: fine */
    }
    return 0;
}

void capture_close(struct capture *c, bool detach)
{
    if (!c)
        return;
    for (int i = 0; i < 3; i++) {
        if (!c->links[i])
            continue;
        if (detach)
            bpf_link__unpin(c->links[i]);
        bpf_link__destroy(c->links[i]);
    }
    if (c->skel && detach) {
        struct bpf_map *map;
        bpf_object__for_each_map(map, c->skel->obj)
        {
            if (bpf_map__is_pinned(map))
                bpf_map__unpin(map, NULL);
        }
    }
    meshd_capture__destroy(c->skel);
    if (detach && c->pin_dir[0] && pin_dir_remove(c->pin_dir) != 0)
        log_warn("capture: %s left behind: %s", c->pin_dir, strerror(errno));
    if (c->cgroup_fd != -1)
        close(c->cgroup_fd);
    free(c);
}

size_t capture_prog_stats(const struct capture *c, struct capture_prog_stats *out, size_t n)
{
    const struct bpf_program *progs[3] = {
        c->skel->progs.meshd_connect4, c->skel->progs.meshd_connect6, c->skel->progs.meshd_sockops};
    size_t k = 0;
    for (size_t i = 0; i < 3 && k < n; i++) {
        struct bpf_prog_info info = {0};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len) != 0)
            continue;
        out[k++] = (struct capture_prog_stats){
            .name = bpf_program__name(progs[i]),
            .run_cnt = info.run_cnt,
            .run_time_ns = info.run_time_ns,
        };
    }
    return k;
}

int capture_events_fd(const struct capture *c)
{
    return bpf_map__fd(c->skel->maps.meshd_events);
}

struct upstream_owner capture_owner(const struct capture *c)
{
    /* The pid once here, not a getpid() per connect. */
    return (struct upstream_owner){.mark = c->sock_mark,
                                   .own_map_fd = bpf_map__fd(c->skel->maps.meshd_own),
                                   .agent_pid = (uint32_t)getpid()};
}

bool capture_resumed(const struct capture *c)
{
    return c->resumed;
}

int capture_enroll(struct capture *c, uint64_t netns_cookie, uint32_t pod_id)
{
    struct meshd_pod_info info = {.pod_id = pod_id};
    return bpf_map__update_elem(c->skel->maps.meshd_enrolled, &netns_cookie, sizeof(netns_cookie),
                                &info, sizeof(info), BPF_ANY);
}

int capture_unenroll(struct capture *c, uint64_t netns_cookie)
{
    int err =
        bpf_map__delete_elem(c->skel->maps.meshd_enrolled, &netns_cookie, sizeof(netns_cookie), 0);
    return err == -ENOENT ? 0 : err;
}

int capture_prune(struct capture *c, const uint64_t *keep, size_t n)
{
    struct bpf_map *map = c->skel->maps.meshd_enrolled;
    uint64_t key, next;
    uint64_t stale[64];
    size_t nstale;
    /* Collect, then delete: deleting while iterating restarts the walk. */
    do {
        nstale = 0;
        const void *prev = NULL;
        while (nstale < 64 && bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
            bool kept = false;
            for (size_t i = 0; i < n && !kept; i++)
                kept = keep[i] == next;
            if (!kept)
                stale[nstale++] = next;
            key = next;
            prev = &key;
        }
        for (size_t i = 0; i < nstale; i++) {
            log_info("capture: pruning stale enrollment netns cookie %llu",
                     (unsigned long long)stale[i]);
            capture_unenroll(c, stale[i]);
        }
    } while (nstale == 64);
    inbound_lookup_prune(c->pin_dir, keep, n);
    return 0;
}

int capture_orig_dst_take(struct capture *c, const struct meshd_flow_key *key,
                          struct meshd_orig_dst *out)
{
    /* One syscall, atomic against a concurrent LRU eviction (kernel >= 5.14). */
    int err = bpf_map__lookup_and_delete_elem(c->skel->maps.meshd_orig_dst, key, sizeof(*key), out,
                                              sizeof(*out), 0);
    return err;
}

int capture_stats(struct capture *c, uint64_t *out)
{
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0)
        return ncpu < 0 ? ncpu : -EINVAL;
    uint64_t *vals = calloc((size_t)ncpu, sizeof(uint64_t));
    if (!vals)
        return -ENOMEM;
    for (uint32_t i = 0; i < MESHD_STAT__MAX; i++) {
        out[i] = 0;
        if (bpf_map__lookup_elem(c->skel->maps.meshd_stats, &i, sizeof(i), vals,
                                 sizeof(uint64_t) * (size_t)ncpu, 0) == 0)
            for (int cpu = 0; cpu < ncpu; cpu++)
                out[i] += vals[cpu];
    }
    free(vals);
    return 0;
}

/* Removes every key of a pinned hash map (collect, then delete: deleting
 * while iterating restarts the walk). Returns how many went. */
static size_t empty_pinned_map(const char *path)
{
    int fd = bpf_obj_get(path);
    if (fd < 0)
        return 0;
    size_t removed = 0, n;
    uint64_t keys[64];
    do {
        n = 0;
        uint64_t key, *prev = NULL;
        while (n < 64 && bpf_map_get_next_key(fd, prev, &keys[n]) == 0) {
            key = keys[n++];
            prev = &key;
        }
        for (size_t i = 0; i < n; i++)
            removed += bpf_map_delete_elem(fd, &keys[i]) == 0;
    } while (n == 64);
    close(fd);
    return removed;
}

int capture_uninstall(const char *pin_dir)
{
    char path[512];
    DIR *d = opendir(pin_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    /* Pods first: with the map empty nothing is captured any more, even if
     * some process still holds the programs. */
    snprintf(path, sizeof(path), "%s/meshd_enrolled", pin_dir);
    size_t pods = empty_pinned_map(path);
    size_t links = 0, pins = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
        bool link = strncmp(de->d_name, "link_", 5) == 0 || strncmp(de->d_name, "inbound_", 8) == 0;
        if (link) {
            /* Detach explicitly: unpinning alone leaves the program attached
             * while any other holder of the link lives. */
            int fd = bpf_obj_get(path);
            if (fd >= 0) {
                links += bpf_link_detach(fd) == 0;
                close(fd);
            }
        }
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            pins++;
        else {
            rc = -errno;
            log_error("uninstall: cannot unpin %s: %s", path, strerror(errno));
        }
    }
    closedir(d);
    if (pin_dir_remove(pin_dir) != 0) {
        rc = rc ? rc : -errno;
        log_error("uninstall: %s left behind: %s", pin_dir, strerror(errno));
    }
    log_info("uninstall: %zu pod enrollment%s removed, %zu link%s detached, %zu pin%s removed "
             "under %s",
             pods, pods == 1 ? "" : "s", links, links == 1 ? "" : "s", pins, pins == 1 ? "" : "s",
             pin_dir);
    return rc;
}
