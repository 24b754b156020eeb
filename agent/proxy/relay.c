/* Bidirectional copy between two sockets (see relay.h). */
#include "proxy/relay.h"

#include "core/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void relay_on_io(struct loop_io *io, uint32_t events);

static void relay_release(struct relay *r, bool reset)
{
    for (int i = 0; i < 2; i++) {
        loop_del(r->loop, &r->end[i].io);
        if (r->end[i].io.fd >= 0) {
            if (reset)
                close_with_reset(r->end[i].io.fd);
            else
                close(r->end[i].io.fd);
            r->end[i].io.fd = -1;
        }
        free(r->buf[i].data);
        r->buf[i].data = NULL;
        for (int k = 0; k < 2; k++) {
            if (r->pipe[i][k] >= 0)
                close(r->pipe[i][k]);
            r->pipe[i][k] = -1;
        }
    }
    r->finished = true;
}

int relay_start(struct relay *r, struct loop *loop, int fd_down, int fd_up, relay_done_cb done)
{
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->done = done;
    int fds[2] = {fd_down, fd_up};
    for (int i = 0; i < 2; i++) {
        r->end[i].io.fd = fds[i];
        r->end[i].io.cb = relay_on_io;
        r->end[i].owner = r;
        r->buf[i].cap = RELAY_BUF_MIN;
        r->pipe[i][0] = r->pipe[i][1] = -1;
    }
    int err = 0;
    for (int i = 0; i < 2 && !err; i++)
        err = loop_add(loop, &r->end[i].io, EPOLLIN);
    if (err)
        relay_release(r, true);
    return err;
}

int relay_start_splice(struct relay *r, struct loop *loop, int fd_down, int fd_up,
                       relay_done_cb done)
{
    int err = relay_start(r, loop, fd_down, fd_up, done);
    if (err)
        return err;
    for (int i = 0; i < 2; i++) {
        if (pipe2(r->pipe[i], O_NONBLOCK | O_CLOEXEC) == -1) {
            for (int k = 0; k < i; k++) { /* copy instead: nothing moved yet */
                close(r->pipe[k][0]);
                close(r->pipe[k][1]);
                r->pipe[k][0] = r->pipe[k][1] = -1;
            }
            r->pipe[i][0] = r->pipe[i][1] = -1;
            return 0;
        }
        /* Larger batches per wakeup; the default (64 KiB) if refused. */
        (void)fcntl(r->pipe[i][1], F_SETPIPE_SZ, RELAY_PIPE_CAP);
    }
    r->splice = true;
    return 0;
}

void relay_abort(struct relay *r)
{
    if (!r->finished)
        relay_release(r, true);
}

static bool buf_has_room(const struct relay_buf *b)
{
    return !b->data || b->tail < b->cap;
}

/* Makes room in buf: allocates it, or grows it when the last read filled
 * it (the peer is sending faster than one buffer per wakeup). */
static int buf_reserve(struct relay_buf *b)
{
    if (!b->data) {
        b->data = malloc(b->cap);
        return b->data ? 0 : -ENOMEM;
    }
    if (b->tail == b->cap && b->head == 0 && b->cap < RELAY_BUF_MAX) {
        char *nd = realloc(b->data, b->cap * 2);
        if (!nd)
            return 0; /* keep going at the current size */
        b->data = nd;
        b->cap *= 2;
    }
    return 0;
}

/* splice: end i -> pipe[i] until the socket is empty or the pipe full. */
static int relay_fill_splice(struct relay *r, int i)
{
    struct relay_end *e = &r->end[i];
    while (!e->rd_eof && !r->pipe_full[i] && r->in_pipe[i] < RELAY_PIPE_CAP) {
        size_t want = RELAY_PIPE_CAP - r->in_pipe[i];
        ssize_t n =
            splice(e->io.fd, NULL, r->pipe[i][1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            r->in_pipe[i] += (uint32_t)n;
            r->bytes[i] += (uint64_t)n;
            /* A short splice drained the socket (or filled the pipe's
             * slots): no second call to hear EAGAIN; level-triggered
             * epoll wakes us again for whatever follows, FIN included. */
            if ((size_t)n < want)
                break;
        } else if (n == 0) {
            e->rd_eof = true;
        } else if (errno == EAGAIN || errno == EINTR) {
            /* Either side may be why: with bytes in the pipe, take it as
             * full (its slots are per segment), so that a readable socket
             * is not polled again until the pipe drains. */
            r->pipe_full[i] = r->in_pipe[i] > 0;
            break;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* splice: pipe[i] -> end 1-i; FIN once the source ended and all is out. */
static int relay_flush_splice(struct relay *r, int i)
{
    struct relay_end *dst = &r->end[1 - i];
    while (r->in_pipe[i] > 0) {
        ssize_t n = splice(r->pipe[i][0], NULL, dst->io.fd, NULL, r->in_pipe[i],
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0)
            r->in_pipe[i] -= (uint32_t)n;
        else if (n == -1 && (errno == EAGAIN || errno == EINTR))
            break;
        else
            return n == 0 ? -EPIPE : -errno;
    }
    if (r->in_pipe[i] == 0)
        r->pipe_full[i] = false;
    if (r->in_pipe[i] == 0 && r->end[i].rd_eof && !dst->wr_shut) {
        shutdown(dst->io.fd, SHUT_WR);
        dst->wr_shut = true;
    }
    return 0;
}

/* Reads from end i into buf[i]; returns 0 or -errno. */
static int relay_fill(struct relay *r, int i)
{
    if (r->splice)
        return relay_fill_splice(r, i);
    struct relay_buf *b = &r->buf[i];
    struct relay_end *e = &r->end[i];
    while (!e->rd_eof) {
        if (buf_reserve(b) != 0)
            return -ENOMEM;
        if (b->tail == b->cap)
            break;
        ssize_t n = read(e->io.fd, b->data + b->tail, b->cap - b->tail);
        if (n > 0) {
            b->tail += (uint32_t)n;
            r->bytes[i] += (uint64_t)n;
        } else if (n == 0) {
            e->rd_eof = true;
        } else if (errno == EAGAIN || errno == EINTR) {
            break;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* Writes buf[i] to end 1-i; sends FIN once the source ended and all is out. */
static int relay_flush(struct relay *r, int i)
{
    if (r->splice)
        return relay_flush_splice(r, i);
    struct relay_buf *b = &r->buf[i];
    struct relay_end *dst = &r->end[1 - i];
    while (b->head < b->tail) {
        ssize_t n = send(dst->io.fd, b->data + b->head, b->tail - b->head, MSG_NOSIGNAL);
        if (n > 0)
            b->head += (uint32_t)n;
        else if (n == -1 && (errno == EAGAIN || errno == EINTR))
            break;
        else
            return -errno;
    }
    if (b->head == b->tail) {
        /* Drained: give the memory back while the connection is quiet. */
        b->head = b->tail = 0;
        free(b->data);
        b->data = NULL;
    }
    if (b->tail == 0 && r->end[i].rd_eof && !dst->wr_shut) {
        shutdown(dst->io.fd, SHUT_WR);
        dst->wr_shut = true;
    }
    return 0;
}

static void relay_on_io(struct loop_io *io, uint32_t events)
{
    struct relay_end *e = (struct relay_end *)io;
    struct relay *r = e->owner;
    int i = e == &r->end[0] ? 0 : 1;
    int err = 0;

    /* Which socket failed: reading end i, or writing to the other end. */
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        err = relay_fill(r, i), r->failed_end = i;
    if (!err)
        err = relay_flush(r, i), r->failed_end = 1 - i;
    if (!err && (events & EPOLLOUT))
        err = relay_flush(r, 1 - i), r->failed_end = i;
    if (err) {
        relay_release(r, true);
        r->done(r, err);
        return;
    }
    if (r->end[0].wr_shut && r->end[1].wr_shut) {
        relay_release(r, false);
        r->done(r, 0);
        return;
    }
    for (int k = 0; k < 2; k++) {
        uint32_t want = 0;
        bool room = r->splice ? !r->pipe_full[k] && r->in_pipe[k] < RELAY_PIPE_CAP
                              : buf_has_room(&r->buf[k]);
        bool pending = r->splice ? r->in_pipe[1 - k] > 0 : r->buf[1 - k].head < r->buf[1 - k].tail;
        if (!r->end[k].rd_eof && room)
            want |= EPOLLIN;
        if (pending)
            want |= EPOLLOUT;
        /* Nothing wanted: unregister, or a half-closed socket's level-
         * triggered EPOLLHUP would spin the loop. */
        if (want == 0)
            loop_del(r->loop, &r->end[k].io);
        else if (loop_set(r->loop, &r->end[k].io, want) != 0)
            err = -ENOMEM;
    }
    if (err) {
        relay_release(r, true);
        r->done(r, err);
    }
}
