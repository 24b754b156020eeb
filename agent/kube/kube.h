/* meshd --kube: the Kubernetes API as the configuration source.
 *
 * One watcher a kind (Namespaces, this node's Pods by field selector,
 * Services, EndpointSlices, Secrets, and every Istio kind meshd decodes)
 * lists (in pages: kube/list.h), then watches from the list's
 * resourceVersion with bookmarks,
 * over HTTP/1.1 (TLS with OpenSSL, or plain http for a test's stand-in),
 * non-blocking on the agent's loop: one connection a watcher, nothing
 * waits. A watch that ends is resumed from the last resourceVersion seen
 * (an event's or a bookmark's); a 410 Gone (an ERROR event or a 410
 * response) relists; any other failure (connect refused, a cut stream, a
 * 5xx, a line past its bound) backs off exponentially with jitter before
 * the next attempt, and the token file is read again before each request
 * (kubelet rotates it). An Istio kind is read in the first of its served
 * versions (v1, then v1beta1, then v1alpha3...) that the server has.
 *
 * Objects land in a mirror directory (kube/mirror.h) that the agent's
 * configuration store serves, so they go through the same validation and
 * snapshot path as files; while the API is unreachable the mirror, and so
 * the served snapshot, stays as it was. Bounds: a watch line 4 MiB, a
 * list page 64 MiB, a request head 8 KiB. */
#ifndef MESHD_KUBE_KUBE_H
#define MESHD_KUBE_KUBE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "kube/target.h"

#define KUBE_LINE_MAX (4u << 20)
#define KUBE_LIST_MAX (64u << 20)

struct kube;

struct kube_opts {
    const char *mirror_dir;  /* served by the configuration store */
    const char *node;        /* Pods: spec.nodeName=node */
    uint32_t backoff_cap_ms; /* 0: 8000 */
    /* Called with true when a list starts mirroring (its first page) and
     * false when no list is under way any more: the configuration store's
     * cfg_store_hold, so that a list is one reload. NULL: not called. */
    void (*hold)(void *ctx, bool on);
    void *hold_ctx;
};

struct kube_status {
    unsigned kinds, synced; /* watchers, and those whose first list is in */
    uint64_t lists, watches, events, relists, errors, bad_objects;
    uint64_t page_slices; /* list pages mirrored in more than one loop turn */
};

/* Takes `target` (freed by kube_free, even on failure). Creates the mirror
 * directories and starts every watcher. 0 or -errno. */
int kube_new(struct loop *loop, struct kube_target *target, const struct kube_opts *opts,
             struct kube **out);
void kube_free(struct kube *k);
void kube_status(const struct kube *k, struct kube_status *out);

#endif
