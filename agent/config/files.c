/* The file side of a load (see load.h): which files a path names, read
 * within the load's bounds (file count, file size, total bytes, nesting). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/load.h"

void cfg_load_error(struct cfg_load *L, const char *file, uint32_t line, uint32_t col,
                    const char *code, const char *fmt, const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, a, b);
    struct cfg_pos pos = {file, line, col};
    cfg_diag_push(L->diags, CFG_ERROR, code, NULL, NULL, NULL, &pos, msg);
}

static bool is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    static const char *const exts[] = {".yaml", ".yml", ".json"};
    for (size_t i = 0; i < 3; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(name + n - e, exts[i]) == 0)
            return true;
    }
    return false;
}

static int add_file(struct cfg_load *L, const char *path, const char *name)
{
    if (L->files.n >= L->o->max_files) {
        cfg_load_error(L, path, 0, 0, MSH_FILE, "more than %s files; %s and later ones not read",
                       "the allowed number of", path);
        return -E2BIG;
    }
    /* One allocation: the path to open, then the name for messages. */
    size_t lp = strlen(path) + 1, ln = strlen(name) + 1;
    char *p = malloc(lp + ln);
    if (!p)
        return -ENOMEM;
    memcpy(p, path, lp);
    memcpy(p + lp, name, ln);
    int rc = cfg_list_push(&L->files, p);
    if (rc)
        free(p);
    return rc; // NOLINT(clang-analyzer-unix.Malloc): L->files owns p (freed in cfg_load)
}

/* Depth-first, entries sorted, hidden entries (., .., ..data of a mounted
 * ConfigMap, editor swap files) skipped; symlinks to files are followed. */
static int walk(struct cfg_load *L, const char *dir, const char *rel, int depth)
{
    if (depth > 16) {
        cfg_load_error(L, dir, 0, 0, MSH_FILE, "directory nesting too deep at %s%s", dir, "");
        return 0;
    }
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        cfg_load_error(L, dir, 0, 0, MSH_FILE, "cannot read directory: %s%s", strerror(errno), "");
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char path[PATH_MAX], relpath[PATH_MAX];
        if (name[0] == '.' || rc ||
            snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
            snprintf(relpath, sizeof(relpath), "%s%s%s", rel, *rel ? "/" : "", name) >=
                (int)sizeof(relpath)) {
            free(ents[i]);
            continue;
        }
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rc = walk(L, path, relpath, depth + 1);
        else if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && is_yaml_name(name))
            rc = add_file(L, path, relpath);
        free(ents[i]);
    }
    free(ents);
    return rc == -ENOMEM ? rc : 0;
}

char *cfg_load_read(struct cfg_load *L, const char *path, const char *name, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cfg_load_error(L, name, 0, 0, MSH_FILE, "cannot open: %s%s", strerror(errno), "");
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        cfg_load_error(L, name, 0, 0, MSH_FILE, "not a regular file%s%s", "", "");
        goto out;
    }
    size_t limit = L->o->max_file_bytes;
    if ((size_t)st.st_size > limit) {
        char sz[32];
        snprintf(sz, sizeof(sz), "%zu", limit);
        cfg_load_error(L, name, 0, 0, MSH_FILE, "file larger than %s bytes%s", sz, "");
        goto out;
    }
    if (L->total + (size_t)st.st_size > L->o->max_total_bytes) {
        cfg_load_error(L, name, 0, 0, MSH_FILE, "configuration larger than %s%s",
                       "the allowed total", "");
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out;
    size_t got = 0;
    /* The file may change under us: never read past what was sized. */
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
    L->total += got;
out:
    close(fd);
    return buf;
}

int cfg_load_collect(struct cfg_load *L, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cfg_load_error(L, path, 0, 0, MSH_FILE, "%s%s", strerror(errno), "");
        return 0;
    }
    if (S_ISDIR(st.st_mode))
        return walk(L, path, "", 0);
    const char *base = strrchr(path, '/');
    return add_file(L, path, base ? base + 1 : path);
}
