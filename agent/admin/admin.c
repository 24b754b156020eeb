/* Unix-socket JSON control server (see admin.h). */
#include "admin/admin.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"

struct admin_client {
    struct loop_io io;
    struct admin *admin;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    struct admin_client *next;
    struct loop_deferred release;
};

struct admin {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const struct admin_command *cmds; /* borrowed */
    size_t ncmds;
    struct admin_client *clients;
    size_t nclients;
};

static json_t *error_response(const char *msg)
{
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

json_t *admin_dispatch(const struct admin_command *cmds, size_t ncmds, const char *request,
                       size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        char msg[256];
        snprintf(msg, sizeof(msg), "bad request: %s (column %d)", jerr.text, jerr.column);
        return error_response(msg);
    }
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    json_t *resp = NULL;
    if (!json_is_object(req) || !cmd) {
        resp = error_response("bad request: want an object with a \"cmd\" string");
        goto out;
    }
    for (size_t i = 0; i < ncmds; i++) {
        if (strcmp(cmds[i].name, cmd) != 0)
            continue;
        char err[512] = "failed";
        json_t *result = cmds[i].fn(cmds[i].ctx, req, err, sizeof(err));
        resp = result ? json_pack("{s:b,s:o}", "ok", 1, "result", result) : error_response(err);
        goto out;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "unknown command \"%.64s\"", cmd);
    resp = error_response(msg);
out:
    json_decref(req);
    return resp;
}

static void client_release(struct loop_deferred *d)
{
    struct admin_client *c =
        (struct admin_client *)((char *)d - offsetof(struct admin_client, release));
    free(c->in);
    free(c->out);
    free(c);
}

static void client_close(struct admin_client *c)
{
    struct admin *a = c->admin;
    loop_del(a->loop, &c->io);
    close(c->io.fd);
    for (struct admin_client **pp = &a->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    a->nclients--;
    c->release.fn = client_release;
    loop_defer(a->loop, &c->release);
}

static void client_respond(struct admin_client *c)
{
    struct admin *a = c->admin;
    json_t *resp = admin_dispatch(a->cmds, a->ncmds, c->in, c->in_len);
    c->out = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    if (!c->out) {
        client_close(c);
        return;
    }
    c->out_len = strlen(c->out);
    c->out[c->out_len++] = '\n'; /* replaces the NUL; length-tracked from here */
    loop_set(a->loop, &c->io, EPOLLOUT);
}

static void client_on_io(struct loop_io *io, uint32_t events)
{
    struct admin_client *c = (struct admin_client *)io;
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
        if (c->in_len == ADMIN_MAX_REQUEST) {
            log_ratelimited(LOG_WARN, "admin: request over %d bytes; dropped", ADMIN_MAX_REQUEST);
            client_close(c);
            return;
        }
        ssize_t n = read(io->fd, c->in + c->in_len, ADMIN_MAX_REQUEST - c->in_len);
        if (n > 0) {
            char *nl = memchr(c->in + c->in_len, '\n', (size_t)n);
            c->in_len += (size_t)n;
            if (nl) {
                c->in_len = (size_t)(nl - c->in);
                client_respond(c);
                return;
            }
        } else if (n == 0) {
            client_respond(c);
            return;
        } else if (errno == EAGAIN || errno == EINTR) {
            return;
        } else {
            client_close(c);
            return;
        }
    }
}

static void admin_on_accept(struct loop_io *io, uint32_t events)
{
    struct admin *a = (struct admin *)io;
    for (;;) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1)
            return;
        struct admin_client *c = NULL;
        if (a->nclients >= ADMIN_MAX_CLIENTS || !(c = calloc(1, sizeof(*c))) ||
            !(c->in = malloc(ADMIN_MAX_REQUEST))) {
            log_ratelimited(LOG_WARN, "admin: too many clients; connection dropped");
            if (c)
                free(c);
            close(fd);
            continue;
        }
        c->io.fd = fd;
        c->io.cb = client_on_io;
        c->admin = a;
        if (loop_add(a->loop, &c->io, EPOLLIN) != 0) {
            close(fd);
            free(c->in);
            free(c);
            continue;
        }
        c->next = a->clients;
        a->clients = c;
        a->nclients++;
    }
}

int admin_new(struct loop *loop, const char *path, const struct admin_command *cmds, size_t ncmds,
              struct admin **out)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    struct admin *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->loop = loop;
    a->cmds = cmds;
    a->ncmds = ncmds;
    strcpy(a->path, path);
    int err;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        err = -errno;
        goto err_free;
    }
    unlink(path); /* a stale socket from a previous instance */
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc == -1 || listen(fd, 64) == -1) {
        err = -errno;
        log_error("admin: cannot listen on %s: %s", path, strerror(-err));
        goto err_close;
    }
    a->io.fd = fd;
    a->io.cb = admin_on_accept;
    err = loop_add(loop, &a->io, EPOLLIN);
    if (err)
        goto err_unlink;
    *out = a;
    return 0;
err_unlink:
    unlink(path);
err_close:
    close(fd);
err_free:
    free(a);
    return err;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    while (a->clients)
        client_close(a->clients);
    loop_del(a->loop, &a->io);
    close(a->io.fd);
    unlink(a->path);
    free(a);
}
