/* Request/response connection handling (see reqserver.h). */
#include "admin/reqserver.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"

struct client {
    struct loop_io io;
    struct reqserver *srv;
    char *in; /* max_request + 1 bytes, NUL-terminated while reading */
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    struct client *next;
    struct loop_deferred release;
};

struct reqserver {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    struct reqserver_ops ops;
    struct client *clients;
    size_t nclients;
};

static void client_release(struct loop_deferred *d)
{
    struct client *c = (struct client *)((char *)d - offsetof(struct client, release));
    free(c->in);
    free(c->out);
    free(c);
}

static void client_close(struct client *c)
{
    struct reqserver *s = c->srv;
    loop_del(s->loop, &c->io);
    close(c->io.fd);
    for (struct client **pp = &s->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->nclients--;
    c->release.fn = client_release;
    loop_defer(s->loop, &c->release);
}

static void client_respond(struct client *c, const char *req, size_t len)
{
    c->srv->ops.respond(c->srv->ops.ctx, req, len, &c->out, &c->out_len);
    if (!c->out) {
        client_close(c);
        return;
    }
    loop_set(c->srv->loop, &c->io, EPOLLOUT);
}

static void client_on_io(struct loop_io *io, uint32_t events)
{
    struct client *c = (struct client *)io;
    struct reqserver *s = c->srv;
    if (c->out) {
        while (c->out_off < c->out_len) {
            ssize_t n = send(io->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (n > 0)
                c->out_off += (size_t)n;
            else if (n == -1 && errno == EAGAIN)
                return;
            else
                break;
        }
        client_close(c);
        return;
    }
    for (;;) {
        if (c->in_len == s->ops.max_request) {
            log_ratelimited(LOG_WARN, "%s: request over %zu bytes", s->ops.name,
                            s->ops.max_request);
            client_respond(c, NULL, 0);
            return;
        }
        ssize_t n = read(io->fd, c->in + c->in_len, s->ops.max_request - c->in_len);
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            client_close(c);
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        size_t req = s->ops.complete(c->in, c->in_len, n == 0);
        if (req) {
            client_respond(c, c->in, req);
            return;
        }
        if (n == 0) { /* EOF before a complete request */
            client_close(c);
            return;
        }
    }
}

static void on_accept(struct loop_io *io, uint32_t events)
{
    struct reqserver *s = (struct reqserver *)io;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1)
            return;
        struct client *c = s->nclients < s->ops.max_clients ? calloc(1, sizeof(*c)) : NULL;
        if (c && !(c->in = malloc(s->ops.max_request + 1))) {
            free(c);
            c = NULL;
        }
        if (!c) {
            log_ratelimited(LOG_WARN, "%s: too many clients; connection dropped", s->ops.name);
            close(fd);
            continue;
        }
        c->io.fd = fd;
        c->io.cb = client_on_io;
        c->srv = s;
        if (loop_add(s->loop, &c->io, EPOLLIN) != 0) {
            close(fd);
            free(c->in);
            free(c);
            continue;
        }
        c->next = s->clients;
        s->clients = c;
        s->nclients++;
    }
}

int reqserver_new(struct loop *loop, int listen_fd, const struct reqserver_ops *ops,
                  struct reqserver **out)
{
    struct reqserver *s = calloc(1, sizeof(*s));
    if (!s) {
        close(listen_fd);
        return -ENOMEM;
    }
    s->loop = loop;
    s->ops = *ops;
    s->io.fd = listen_fd;
    s->io.cb = on_accept;
    int err = loop_add(loop, &s->io, EPOLLIN);
    if (err) {
        close(listen_fd);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

void reqserver_free(struct reqserver *s)
{
    if (!s)
        return;
    while (s->clients)
        client_close(s->clients);
    loop_del(s->loop, &s->io);
    close(s->io.fd);
    free(s);
}
