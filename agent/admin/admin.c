/* Unix-socket JSON control server (see admin.h). */
#include "admin/admin.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "admin/reqserver.h"
#include "core/loop.h"

struct admin {
    struct reqserver *server;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const struct admin_command *cmds; /* borrowed */
    size_t ncmds;
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

/* A request is one line (or whatever came before EOF). */
static size_t admin_complete(const char *buf, size_t len, bool eof)
{
    const char *nl = memchr(buf, '\n', len);
    if (nl)
        return (size_t)(nl - buf) + 1;
    return eof ? len : 0;
}

static void admin_respond(void *ctx, const char *req, size_t len, char **out, size_t *outlen)
{
    struct admin *a = ctx;
    json_t *resp =
        req ? admin_dispatch(a->cmds, a->ncmds, req, len) : error_response("request too large");
    char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    *out = NULL;
    if (!text)
        return;
    *outlen = strlen(text) + 1;
    text[*outlen - 1] = '\n'; /* replaces the NUL: the length is tracked */
    *out = text;
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
        close(fd);
        goto err_free;
    }
    struct reqserver_ops ops = {.name = "admin",
                                .max_request = ADMIN_MAX_REQUEST,
                                .max_clients = ADMIN_MAX_CLIENTS,
                                .read_ms = ADMIN_READ_MS,
                                .write_ms = ADMIN_WRITE_MS,
                                .complete = admin_complete,
                                .respond = admin_respond,
                                .ctx = a};
    if ((err = reqserver_new(loop, fd, &ops, &a->server)) != 0) {
        unlink(path);
        goto err_free;
    }
    *out = a;
    return 0;
err_free:
    free(a);
    return err;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    reqserver_free(a->server);
    unlink(a->path);
    free(a);
}

void admin_get_stats(const struct admin *a, struct reqserver_stats *out)
{
    reqserver_get_stats(a->server, out);
}
