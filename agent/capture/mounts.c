/* cgroup2/bpffs discovery from /proc/self/mounts (see mounts.h). */
#include "capture/mounts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "core/log.h"

/* /proc/self/mounts escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int mounts_find(const char *mounts_path, const char *fstype, const char *preferred, char *out,
                size_t len)
{
    FILE *f = fopen(mounts_path, "re");
    if (!f)
        return -errno;
    char line[4096];
    int rc = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL;
        char *dev = strtok_r(line, " \t\n", &save);
        char *dir = strtok_r(NULL, " \t\n", &save);
        char *type = strtok_r(NULL, " \t\n", &save);
        if (!dev || !dir || !type || strcmp(type, fstype) != 0)
            continue;
        unescape_octal(dir);
        if (strlen(dir) >= len)
            continue;
        if (rc != 0 || (preferred && strcmp(dir, preferred) == 0)) {
            snprintf(out, len, "%s", dir);
            rc = 0;
            if (preferred && strcmp(dir, preferred) == 0)
                break;
        }
    }
    fclose(f);
    return rc;
}

int mounts_ensure(const char *fstype, const char *preferred, const char *fallback, char *out,
                  size_t len)
{
    if (mounts_find("/proc/self/mounts", fstype, preferred, out, len) == 0)
        return 0;
    if (strlen(fallback) >= len)
        return -ENAMETOOLONG;
    if (mkdir(fallback, 0700) == -1 && errno != EEXIST)
        return -errno;
    if (mount(fstype, fallback, fstype, 0, NULL) == -1) {
        int err = -errno;
        log_error("mounts: cannot mount %s at %s: %s", fstype, fallback, strerror(-err));
        return err;
    }
    log_info("mounts: mounted %s at %s", fstype, fallback);
    snprintf(out, len, "%s", fallback);
    return 0;
}
