/* The byte pump: copies both ways between two connected non-blocking
 * sockets on the event loop, with half-close and reset propagated.
 *
 * Written once for every plaintext proxied connection. Memory follows load:
 * an idle connection holds no buffer; a buffer is allocated at
 * RELAY_BUF_MIN when bytes arrive, grows to RELAY_BUF_MAX when a read fills
 * it, and is released once drained (its size is remembered). A full buffer
 * stops reading from its source (backpressure), so nothing grows without
 * bound: at most 2 x RELAY_BUF_MAX per connection.
 *
 * relay_start_splice() moves the bytes with splice(2) through one pipe per
 * direction instead (socket -> pipe -> socket, no copy through user
 * memory): the pipe's pages are the buffer, held only while bytes are in
 * flight, at most RELAY_PIPE_CAP per direction; a full pipe stops reading
 * from its source exactly as a full buffer does. */
#ifndef MESHD_PROXY_RELAY_H
#define MESHD_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"

#define RELAY_BUF_MIN  (16 * 1024)
#define RELAY_BUF_MAX  (64 * 1024)
#define RELAY_PIPE_CAP (256 * 1024)

enum relay_side { RELAY_DOWN = 0, RELAY_UP = 1 };

struct relay;
/* Called once when both directions are finished (err 0) or on the first
 * error (-errno). The relay has closed both sockets by then. */
typedef void (*relay_done_cb)(struct relay *r, int err);

struct relay_end {
    struct loop_io io;
    struct relay *owner;
    bool rd_eof;  /* peer sent FIN */
    bool wr_shut; /* we sent FIN */
};

struct relay_buf {
    char *data; /* NULL while idle */
    uint32_t head, tail;
    uint32_t cap; /* size to allocate next time: grows under load */
};

struct relay {
    struct loop *loop; /* borrowed */
    struct relay_end end[2];
    struct relay_buf buf[2]; /* buf[i]: read from end i, to be written to end 1-i */
    uint64_t bytes[2];       /* bytes read from end i */
    relay_done_cb done;
    bool finished;
    int failed_end; /* on error: RELAY_DOWN or RELAY_UP, the socket that failed */
    /* splice: pipe[i] holds bytes read from end i ([0] read end, [1] write
     * end), in_pipe[i] of them; pipe_full[i] once a splice into it would
     * block with bytes in it (reading resumes when it drains). */
    bool splice;
    int pipe[2][2];
    uint32_t in_pipe[2];
    bool pipe_full[2];
};

/* Takes ownership of both fds. Returns 0 or -errno (fds closed on error). */
int relay_start(struct relay *r, struct loop *loop, int fd_down, int fd_up, relay_done_cb done);
/* relay_start() through splice(2) (see above); without pipes (out of
 * files) it copies as relay_start() does. */
int relay_start_splice(struct relay *r, struct loop *loop, int fd_down, int fd_up,
                       relay_done_cb done);
/* Resets both sockets (RST) and releases buffers; `done` is not called. */
void relay_abort(struct relay *r);

#endif
