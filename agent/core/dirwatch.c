/* Debounced inotify over a directory tree (see dirwatch.h). */
#include "core/dirwatch.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |       \
     IN_MOVE_SELF | IN_ATTRIB)

struct dirwatch {
    struct loop_io notify_io;
    struct loop_io timer_io;
    struct loop *loop; /* borrowed */
    unsigned debounce_ms;
    unsigned ndirs;
    int wds[DIRWATCH_MAX_DIRS]; /* watch descriptors held, to count each once */
    char root[PATH_MAX];
    dirwatch_cb cb;
    void *ctx;
};

/* Adds a watch on dir and every directory below it. */
static void watch_tree(struct dirwatch *w, const char *dir, int depth)
{
    if (depth > 16 || w->ndirs >= DIRWATCH_MAX_DIRS) {
        log_ratelimited(LOG_WARN, "config: %s: too deep or too many directories; not watched", dir);
        return;
    }
    int wd = inotify_add_watch(w->notify_io.fd, dir, WATCH_MASK | IN_ONLYDIR);
    if (wd == -1) {
        log_warn("config: cannot watch %s: %s", dir, strerror(errno));
        return;
    }
    bool known = false;
    for (unsigned i = 0; i < w->ndirs && !known; i++)
        known = w->wds[i] == wd;
    if (!known)
        w->wds[w->ndirs++] = wd;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.'))
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
            continue;
        /* Kubernetes ConfigMap volumes are symlinks to ..data dirs: follow. */
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(w, path, depth + 1);
    }
    closedir(d);
}

static void arm_debounce(struct dirwatch *w)
{
    struct itimerspec its = {.it_value = {.tv_sec = w->debounce_ms / 1000,
                                          .tv_nsec = (w->debounce_ms % 1000) * 1000000L + 1}};
    timerfd_settime(w->timer_io.fd, 0, &its, NULL);
}

void dirwatch_poke(struct dirwatch *w)
{
    if (w)
        arm_debounce(w);
}

static void on_notify(struct loop_io *io, uint32_t events)
{
    struct dirwatch *w = (struct dirwatch *)io;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false, new_dir = false;
    for (;;) {
        ssize_t n = read(io->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            changed = true;
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
                new_dir = true;
            if (ev->mask & IN_Q_OVERFLOW)
                log_warn("config: inotify queue overflowed; reloading everything");
            p += sizeof(*ev) + ev->len;
        }
    }
    if (new_dir) /* the watch set follows the tree; known dirs are not recounted */
        watch_tree(w, w->root, 0);
    if (changed)
        arm_debounce(w);
}

static void on_timer(struct loop_io *io, uint32_t events)
{
    struct dirwatch *w = container_of(io, struct dirwatch, timer_io);
    uint64_t n;
    if (read(io->fd, &n, sizeof(n)) != sizeof(n))
        return;
    w->cb(w->ctx);
}

int dirwatch_new(struct loop *loop, const char *root, unsigned debounce_ms, dirwatch_cb cb,
                 void *ctx, struct dirwatch **out)
{
    struct dirwatch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->debounce_ms = debounce_ms;
    w->cb = cb;
    w->ctx = ctx;
    w->timer_io.fd = -1;
    snprintf(w->root, sizeof(w->root), "%s", root);
    int err;
    w->notify_io.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->notify_io.fd == -1)
        goto err_errno;
    w->timer_io.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->timer_io.fd == -1)
        goto err_errno;
    watch_tree(w, root, 0);
    if (w->ndirs == 0) {
        err = -ENOENT;
        goto err_close;
    }
    w->notify_io.cb = on_notify;
    w->timer_io.cb = on_timer;
    if ((err = loop_add(loop, &w->notify_io, EPOLLIN)) != 0 ||
        (err = loop_add(loop, &w->timer_io, EPOLLIN)) != 0)
        goto err_close;
    *out = w;
    return 0;
err_errno:
    err = -errno;
err_close:
    dirwatch_free(w);
    return err;
}

void dirwatch_free(struct dirwatch *w)
{
    if (!w)
        return;
    if (w->notify_io.fd >= 0) {
        loop_del(w->loop, &w->notify_io);
        close(w->notify_io.fd);
    }
    if (w->timer_io.fd >= 0) {
        loop_del(w->loop, &w->timer_io);
        close(w->timer_io.fd);
    }
    free(w);
}
