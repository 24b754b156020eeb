/* The objects the API server sent, mirrored into a directory that the
 * configuration store serves (config/store.h) exactly as it serves an
 * operator's --config tree: one JSON file an object (JSON is YAML), so a
 * Kubernetes object passes the same validation, diagnostics and snapshot
 * path as a file, and a bad one is refused with its file name
 * (<dir>/<resource>/<namespace>_<name>.json) while the last good snapshot
 * keeps serving.
 *
 * Names are checked before they become paths (DNS-1123, as the API server
 * itself requires): a hostile name cannot leave the directory. Files are
 * written whole (a hidden temporary, then rename), mode 0600 (Secrets). */
#ifndef MESHD_KUBE_MIRROR_H
#define MESHD_KUBE_MIRROR_H

#include <jansson.h>
#include <stddef.h>

/* The file that is in the mirror until every kind is listed once (kube.c). */
#define KUBE_MIRROR_SYNCING "_meshd-kube-syncing.yaml"

/* Creates <dir>/<resource>. 0 or -errno. */
int kube_mirror_prepare(const char *dir, const char *resource);
/* Writes `obj` with apiVersion and kind set (the API's list items carry
 * neither). `ns` NULL for a cluster-scoped kind. 0, -EINVAL for a name
 * that is not a Kubernetes name, or -errno. */
int kube_mirror_put(const char *dir, const char *resource, json_t *obj, const char *api_version,
                    const char *kind);
/* Removes the object's file; an absent file is not an error. */
int kube_mirror_delete(const char *dir, const char *resource, json_t *obj);
/* Removes every file of <dir>/<resource> whose name is not among
 * `keep` (n file names, sorted with strcmp). Returns how many went. */
int kube_mirror_sweep(const char *dir, const char *resource, char *const *keep, size_t n);
/* `meshd uninstall`: removes the mirror's files (every <resource>
 * directory's, and the marker of a first list not yet in), those
 * directories, then `dir` itself. Anything else found there (a file or
 * directory the mirror never writes, a symbolic link) is left, and makes
 * it -ENOTEMPTY. An absent `dir` is 0. */
int kube_mirror_remove(const char *dir);
/* The file name an object has in the mirror ("ns_name.json"), or -EINVAL. */
int kube_mirror_name(json_t *obj, char *out, size_t outlen);

#endif
