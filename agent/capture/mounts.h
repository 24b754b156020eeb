/* Finding (or making) the cgroup2 and bpffs mounts the capture needs.
 *
 * cgroup2 lives at /sys/fs/cgroup on unified hosts and /sys/fs/cgroup/unified
 * on hybrid ones; `ip netns exec` hides both. Read /proc/self/mounts rather
 * than guess, and mount our own when none is there. */
#ifndef MESHD_CAPTURE_MOUNTS_H
#define MESHD_CAPTURE_MOUNTS_H

#include <stddef.h>

/* First mount point of `fstype` listed in `mounts_path` (fstab format, octal
 * escapes decoded). Prefers `preferred` when it is one of them. 0 or -ENOENT. */
int mounts_find(const char *mounts_path, const char *fstype, const char *preferred, char *out,
                size_t len);
/* Finds cgroup2, or mounts it at `fallback`. */
int mounts_ensure(const char *fstype, const char *preferred, const char *fallback, char *out,
                  size_t len);

#endif
