/* Process set-up (see proc.h). */
#include "core/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "core/log.h"

int proc_mkdir_p(const char *path, mode_t mode)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) == -1 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    return mkdir(buf, mode) == -1 && errno != EEXIST ? -errno : 0;
}

/* Two sockets per proxied connection: the soft default of 1024 would cap
 * the agent near 500 connections, far below --max-conns. */
void proc_raise_fd_limit(size_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = (rlim_t)max_conns * 2 + 1024;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            log_warn("agent: cannot raise the open-file limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_conns * 2)
        log_warn("agent: open-file limit %llu allows fewer than --max-conns %zu connections",
                 (unsigned long long)rl.rlim_cur, max_conns);
}

int proc_signalfd(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd == -1 ? -errno : fd;
}
