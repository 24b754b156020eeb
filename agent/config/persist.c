/* The persisted last good configuration (see persist.h). */
#include "config/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define VERSION_FILE ".meshd-version"

const char *cfg_persist_path(const char *state_dir, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" CFG_PERSIST_DIR, state_dir);
    return n < 0 || (size_t)n >= len ? NULL : buf;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (remove(path) == -1 && errno != ENOENT)
        log_warn("config: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* rm -r, not following symlinks; bounded by the loader's nesting (16). */
static int rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == -1)
        return errno == ENOENT ? 0 : -errno;
    nftw(path, rm_entry, 20, FTW_DEPTH | FTW_PHYS);
    return access(path, F_OK) == 0 ? -ENOTEMPTY : 0;
}

int cfg_stage_begin(struct cfg_stage *st, const char *state_dir)
{
    *st = (struct cfg_stage){0};
    if (!cfg_persist_path(state_dir, st->final, sizeof(st->final)) ||
        snprintf(st->dir, sizeof(st->dir), "%s.new", st->final) >= (int)sizeof(st->dir))
        return st->err = -ENAMETOOLONG;
    int err = rm_tree(st->dir); /* a load interrupted by a crash */
    if (!err && mkdir(st->dir, 0700) == -1)
        err = -errno;
    return st->err = err;
}

/* Creates the directories of `rel` (a relative file name) under base. */
static int make_parents(const char *base, const char *rel)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", base, rel) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    for (char *p = path + strlen(base) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) == -1 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* The loader's names come from its own walk (no hidden entries, so no
 * ".."); refuse anything else rather than write outside the staging. */
static bool safe_name(const char *name)
{
    if (!*name || name[0] == '/')
        return false;
    for (const char *c = name; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || c[0] == '.')
            return false;
        c += n;
        if (*c == '/')
            c++;
    }
    return true;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_file(const char *base, const char *rel, const char *buf, size_t len)
{
    char path[PATH_MAX];
    int err = make_parents(base, rel);
    if (err)
        return err;
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd == -1)
        return -errno;
    err = write_all(fd, buf, len);
    if (close(fd) == -1 && !err)
        err = -errno;
    return err;
}

void cfg_stage_file(void *ctx, const char *name, const char *buf, size_t len)
{
    struct cfg_stage *st = ctx;
    if (st->err)
        return;
    if (!safe_name(name))
        st->err = -EINVAL;
    else if (st->bytes + len > CFG_PERSIST_MAX_BYTES || st->files >= CFG_PERSIST_MAX_FILES)
        st->err = -EFBIG;
    else
        st->err = write_file(st->dir, name, buf, len);
    st->bytes += len;
    st->files++;
}

void cfg_stage_abort(struct cfg_stage *st)
{
    if (st->dir[0])
        rm_tree(st->dir);
}

int cfg_stage_commit(struct cfg_stage *st, const char *version)
{
    int err = st->err;
    if (!err)
        err = write_file(st->dir, VERSION_FILE, version, strlen(version));
    if (err) {
        /* Keeping the old copy would let a restart serve an older policy
         * than the one applied now: better none (fail closed). */
        cfg_stage_abort(st);
        rm_tree(st->final);
        return err;
    }
    if (renameat2(AT_FDCWD, st->dir, AT_FDCWD, st->final, RENAME_EXCHANGE) == 0) {
        rm_tree(st->dir); /* the old copy, now at .new; the next begin retries */
        return 0;
    }
    /* ENOENT: the first copy; EINVAL: a filesystem without RENAME_EXCHANGE. */
    if (errno == ENOENT && rename(st->dir, st->final) == 0)
        return 0;
    if (errno == EINVAL) {
        char old[PATH_MAX + 8];
        snprintf(old, sizeof(old), "%s.old", st->final);
        rm_tree(old);
        if (rename(st->final, old) == 0 && rename(st->dir, st->final) == 0) {
            rm_tree(old);
            return 0;
        }
    }
    err = -errno;
    cfg_stage_abort(st);
    rm_tree(st->final);
    return err;
}

int cfg_persist_version(const char *state_dir, char *out, size_t len)
{
    char path[PATH_MAX];
    if (!cfg_persist_path(state_dir, path, sizeof(path)) ||
        strlen(path) + sizeof("/" VERSION_FILE) > sizeof(path))
        return -ENAMETOOLONG;
    strcat(path, "/" VERSION_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1)
        return -errno;
    ssize_t n = read(fd, out, len - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return out[0] ? 0 : -ENOENT;
}

int cfg_persist_remove(const char *state_dir)
{
    char path[PATH_MAX], staging[PATH_MAX + 8];
    if (!cfg_persist_path(state_dir, path, sizeof(path)))
        return -ENAMETOOLONG;
    snprintf(staging, sizeof(staging), "%s.new", path);
    int err = rm_tree(staging);
    int err2 = rm_tree(path);
    return err ? err : err2;
}
