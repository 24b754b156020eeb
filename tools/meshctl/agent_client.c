/* Request/response over the agent's unix control socket. */
#include "agent_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_RESPONSE (16u << 20)

json_t *agent_call(const char *socket_path, json_t *req)
{
    char err[512];
    json_t *result = agent_call_err(socket_path, req, err, sizeof(err));
    if (!result)
        fprintf(stderr, "meshctl: %s\n", err);
    return result;
}

json_t *agent_call_err(const char *socket_path, json_t *req, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (strlen(socket_path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", socket_path);
        free(text);
        return NULL;
    }
    strcpy(sun.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        snprintf(err, errlen, "cannot reach meshd at %s: %s", socket_path, strerror(errno));
        if (fd != -1)
            close(fd);
        free(text);
        return NULL;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t len = text ? strlen(text) : 0;
    int ok = text && send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len &&
             send(fd, "\n", 1, MSG_NOSIGNAL) == 1;
    free(text);
    char *buf = NULL;
    size_t cap = 0, used = 0;
    while (ok) {
        if (used + 4096 > cap) {
            if (cap >= MAX_RESPONSE) {
                ok = 0;
                break;
            }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                ok = 0;
                break;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ok = 0;
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    json_t *resp = NULL, *result = NULL;
    json_error_t jerr;
    if (ok)
        resp = json_loadb(buf, used, 0, &jerr);
    free(buf);
    if (!resp) {
        snprintf(err, errlen, "no valid response from meshd at %s", socket_path);
        return NULL;
    }
    if (json_is_true(json_object_get(resp, "ok"))) {
        result = json_object_get(resp, "result");
        json_incref(result);
    } else {
        const char *msg = json_string_value(json_object_get(resp, "error"));
        snprintf(err, errlen, "%s", msg ? msg : "meshd returned an error");
    }
    json_decref(resp);
    return result;
}
