/* The user side of the BPF capture (bpf/capture.bpf.c): load, attach at the
 * cgroup2 root, pin under the instance directory, and the map operations the
 * agent needs (enroll a netns, take an original destination, read counters).
 *
 * Links and maps are pinned, so the programs stay attached if the agent dies:
 * enrolled pods then fail closed (their connects go to a listener that is no
 * longer there) until a restarted agent takes the pins over. */
#ifndef MESHD_CAPTURE_CAPTURE_H
#define MESHD_CAPTURE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/upstream.h"
#include "meshd/capture.h"

struct capture;

struct capture_opts {
    const char *pin_dir;     /* per-instance bpffs directory, created if missing */
    const char *cgroup_path; /* cgroup2 directory to attach to (the root) */
    uint32_t sock_mark;
    uint16_t outbound_port;
    uint32_t ring_bytes; /* connection-event ring; 0: MESHD_RING_BYTES */
};

int capture_open(const struct capture_opts *opts, struct capture **out);
/* Detaches and unpins everything when `detach`; otherwise leaves the pins so
 * a successor can take over. Accepts NULL. */
void capture_close(struct capture *c, bool detach);

/* Uninstall with no agent running: empties the pinned enrollment map,
 * detaches every pinned link under pin_dir (cgroup and per-pod sk_lookup),
 * unpins links and maps, removes pin_dir and its parent once empty. 0 when
 * there was nothing to remove too; -errno if something is left. */
int capture_uninstall(const char *pin_dir);

int capture_enroll(struct capture *c, uint64_t netns_cookie, uint32_t pod_id);
int capture_unenroll(struct capture *c, uint64_t netns_cookie);
/* Unenrolls every netns cookie not in keep[0..n). Used after a restart. */
int capture_prune(struct capture *c, const uint64_t *keep, size_t n);

/* Looks up and deletes the original destination of a captured connection.
 * Returns 0, or -ENOENT when the kernel recorded none. */
int capture_orig_dst_take(struct capture *c, const struct meshd_flow_key *key,
                          struct meshd_orig_dst *out);

/* Sums the per-CPU counters into out[MESHD_STAT__MAX]. */
int capture_stats(struct capture *c, uint64_t *out);
const char *capture_stat_name(enum meshd_stat s);

/* Run counts of the capture programs from the kernel's program info
 * (non-zero only while sysctl kernel.bpf_stats_enabled=1). */
struct capture_prog_stats {
    const char *name;
    uint64_t run_cnt, run_time_ns;
};
/* Fills up to n entries; returns how many. */
size_t capture_prog_stats(const struct capture *c, struct capture_prog_stats *out, size_t n);

/* The connection-event ring buffer (BPF_MAP_TYPE_RINGBUF) map fd. */
int capture_events_fd(const struct capture *c);

/* What the agent's upstream sockets carry so that the capture programs let
 * them through: the mark, and the meshd_own map to register each one in
 * (see core/upstream.h). The fd is borrowed: valid until capture_close. */
struct upstream_owner capture_owner(const struct capture *c);

/* True when the links were taken over from a previous instance. */
bool capture_resumed(const struct capture *c);

#endif
