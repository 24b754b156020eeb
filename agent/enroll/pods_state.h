/* pods.json: the enrolled pods as their enrolling callers claimed them
 * (namespace, name, netns path, service account, IPs), kept in the state
 * directory so the next agent can take its pods back (pods_restore). The
 * claims, not the effective values: a restored pod is bound against the
 * configuration of its day, as at enrollment. Pure file format and I/O,
 * no kernel state: the registry (pods.c) decides what an entry becomes. */
#ifndef MESHD_ENROLL_PODS_STATE_H
#define MESHD_ENROLL_PODS_STATE_H

#include <stddef.h>

#include "enroll/pods.h"

/* Writes every pod of the list from `head` (linked by ->next) to `path`,
 * atomically (path.tmp, then rename: a reader sees the old file or the
 * new one). 0 or -errno, logged; on failure no path.tmp is left. */
int pods_state_save(const char *path, const struct pod *head);

/* One entry of the file: its strings borrowed for the call only; spec->ref
 * is NULL, spec->ips holds the IPs that parse (at most POD_MAX_IPS). */
typedef void (*pods_state_entry_fn)(void *ctx, size_t index, const char *ns, const char *name,
                                    const struct pod_spec *spec);

/* Reads `path` and calls `fn` for every entry that has a namespace, a name
 * and a netns, all strings (others are skipped with a warning; names are
 * not validated here). Returns the number of entries passed to `fn`; 0 when
 * the file does not exist; -EINVAL when it is not a JSON array (logged, and
 * nothing is passed to `fn`). */
int pods_state_load(const char *path, pods_state_entry_fn fn, void *ctx);

#endif
