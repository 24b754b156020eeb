/* Kubernetes objects as files of the served configuration (see mirror.h). */
#include "kube/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/k8sname.h"

int kube_mirror_name(json_t *obj, char *out, size_t outlen)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (!name || !k8s_name_valid(name, strlen(name), 253, true) ||
        (ns && !k8s_name_valid(ns, strlen(ns), 63, false)))
        return -EINVAL;
    int n =
        ns ? snprintf(out, outlen, "%s_%s.json", ns, name) : snprintf(out, outlen, "%s.json", name);
    return n > 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
}

int kube_mirror_prepare(const char *dir, const char *resource)
{
    char path[768];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    snprintf(path, sizeof(path), "%s/%s", dir, resource);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Whether the file at path holds exactly text[0..len): a relist, or a
 * watch's MODIFIED that changed nothing the mirror keeps, then writes
 * nothing (no inode, no inotify event, no reload). */
static bool same_content(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = false;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len &&
        (buf = malloc(len + 1))) {
        ssize_t r = read(fd, buf, len + 1); /* one byte more: grown since */
        same = r == (ssize_t)len && memcmp(buf, text, len) == 0;
    }
    free(buf);
    close(fd);
    return same;
}

int kube_mirror_put(const char *dir, const char *resource, json_t *obj, const char *api_version,
                    const char *kind)
{
    char name[320], path[1200], tmp[1200];
    int err = kube_mirror_name(obj, name, sizeof(name));
    if (err)
        return err;
    if (json_object_set_new(obj, "apiVersion", json_string(api_version)) ||
        json_object_set_new(obj, "kind", json_string(kind)))
        return -ENOMEM;
    /* Bulk the loader never reads. */
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    char *text = json_dumps(obj, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/%s/%s", dir, resource, name);
    snprintf(tmp, sizeof(tmp), "%s/%s/.%s.tmp", dir, resource, name);
    size_t len = strlen(text), off = 0;
    if (same_content(path, text, len)) {
        free(text);
        return 0;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    err = fd < 0 ? -errno : 0;
    while (!err && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0)
            err = w < 0 ? -errno : -EIO;
        else
            off += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err && fd >= 0)
        unlink(tmp);
    free(text);
    return err;
}

int kube_mirror_delete(const char *dir, const char *resource, json_t *obj)
{
    char name[320], path[1200];
    int err = kube_mirror_name(obj, name, sizeof(name));
    if (err)
        return err;
    snprintf(path, sizeof(path), "%s/%s/%s", dir, resource, name);
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kube_mirror_sweep(const char *dir, const char *resource, char *const *keep, size_t n)
{
    char path[768], file[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, resource);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && e->d_name[1] != '\0' && strstr(e->d_name, ".tmp") == NULL)
            continue; /* ".", "..": a temporary of ours is removed below */
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        const char *key = e->d_name;
        if (n && bsearch(&key, keep, n, sizeof(*keep), cmp_str))
            continue;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (unlink(file) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* A file the mirror writes in a resource's directory: an object's, or a
 * hidden temporary of one. */
static bool mirror_file(const char *name)
{
    size_t l = strlen(name);
    return (l > 5 && strcmp(name + l - 5, ".json") == 0) ||
           (name[0] == '.' && strstr(name, ".tmp") != NULL);
}

/* Empties and removes <dir>/<resource>: 0, or -ENOTEMPTY if a file that
 * is not the mirror's stays. */
static int remove_resource(int dfd, const char *resource)
{
    int fd = openat(dfd, resource, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            !mirror_file(e->d_name) || unlinkat(fd, e->d_name, 0) != 0)
            rc = -ENOTEMPTY;
    }
    closedir(d);
    if (unlinkat(dfd, resource, AT_REMOVEDIR) != 0 && !rc)
        rc = -errno;
    return rc;
}

int kube_mirror_remove(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return err == ENOENT ? 0 : -err;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -errno;
        else if (S_ISREG(st.st_mode) && strcmp(e->d_name, KUBE_MIRROR_SYNCING) == 0)
            rc = unlinkat(fd, e->d_name, 0) == 0 ? rc : -errno;
        else if (!S_ISDIR(st.st_mode) || !k8s_name_valid(e->d_name, strlen(e->d_name), 253, true))
            rc = -ENOTEMPTY; /* not the mirror's: left */
        else if (remove_resource(fd, e->d_name) != 0)
            rc = -ENOTEMPTY;
    }
    closedir(d);
    if (rmdir(dir) != 0 && !rc)
        rc = -errno;
    return rc;
}
