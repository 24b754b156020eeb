/* Process set-up the agent does before anything else: its state directory,
 * its open-file limit, its signals. */
#ifndef MESHD_CORE_PROC_H
#define MESHD_CORE_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with `mode` for every missing component. 0 or -errno. */
int proc_mkdir_p(const char *path, mode_t mode);

/* Two sockets per proxied connection: raises the soft open-file limit to
 * what max_conns needs (up to the hard limit) and warns when short. */
void proc_raise_fd_limit(size_t max_conns);

/* SIGTERM and SIGINT blocked and readable from the returned signalfd
 * (non-blocking, close-on-exec); SIGPIPE ignored (a peer's reset is an
 * EPIPE, not a death). The fd or -errno. */
int proc_signalfd(void);

#endif
