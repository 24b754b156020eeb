/* meshctl dashboard's data sources (see dash_sources.h). */
#include "dash_sources.h"

#include <errno.h>
#include <glob.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"

bool dash_agents_add(struct dash_agents *a, const char *sock)
{
    if (a->n >= DASH_MAX_AGENTS)
        return false;
    a->sock[a->n++] = sock;
    return true;
}

void dash_agents_discover(struct dash_agents *a)
{
    static glob_t g; /* its strings are the agents' for the process' life */
    if (glob("/run/meshd/*/meshd.sock", 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++)
        dash_agents_add(a, g.gl_pathv[i]);
}

size_t dash_agents_probe(struct dash_agents *a)
{
    size_t up = 0;
    for (size_t i = 0; i < a->n; i++) {
        json_t *st = agent_call(a->sock[i], json_pack("{s:s}", "cmd", "status"));
        const char *node = json_string_value(json_object_get(st, "node"));
        snprintf(a->node[i], sizeof(a->node[i]), "%s", node ? node : a->sock[i]);
        up += (a->up[i] = st != NULL);
        json_decref(st);
    }
    return up;
}

char *dash_agent_metrics(const struct dash_agents *a, size_t i, size_t *len)
{
    json_t *m = agent_call(a->sock[i], json_pack("{s:s}", "cmd", "metrics"));
    const char *text = json_string_value(json_object_get(m, "text"));
    char *out = text ? strndup(text, json_string_length(json_object_get(m, "text"))) : NULL;
    *len = out ? strlen(out) : 0;
    json_decref(m);
    return out;
}

void dash_scrape_agents(struct dash_agents *a, struct prom_set *set)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t len;
        char *text = dash_agent_metrics(a, i, &len);
        a->up[i] = text != NULL;
        set->origin = (int)i;
        if (text)
            prom_parse(set, text, len, "istio_");
        free(text);
    }
}

json_t *dash_agent_connections(const struct dash_agents *a, size_t i)
{
    json_t *all = agent_call(a->sock[i], json_pack("{s:s}", "cmd", "connections"));
    json_t *out = json_array();
    size_t n = json_array_size(all);
    for (size_t k = n > DASH_MAX_CONNS ? n - DASH_MAX_CONNS : 0; out && k < n; k++) {
        json_t *c = json_array_get(all, k);
        json_object_set_new(c, "node", json_string(a->node[i]));
        json_array_append(out, c);
    }
    json_decref(all);
    return out;
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

int dash_http_get(const char *url, char **body, size_t *len, int *status, char *err, size_t errlen)
{
    char host[256], port[8] = "80";
    *body = NULL;
    *len = 0;
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    size_t hl = p ? strcspn(p, ":/") : 0;
    if (!p || hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "%s: want http://HOST[:PORT]/PATH", url);
        return -EINVAL;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        size_t pl = strcspn(++p, "/");
        if (pl == 0 || pl >= sizeof(port)) {
            snprintf(err, errlen, "%s: bad port", url);
            return -EINVAL;
        }
        memcpy(port, p, pl);
        port[pl] = '\0';
        p += pl;
    }
    const char *path = *p ? p : "/";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = DASH_GET_MS / 1000};
    if (fd != -1) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
        rc = -errno;
        snprintf(err, errlen, "cannot reach %s:%s: %s", host, port, strerror(errno));
        freeaddrinfo(ai);
        if (fd != -1)
            close(fd);
        return rc;
    }
    freeaddrinfo(ai);
    char req[2400];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: text/plain\r\n\r\n",
                 path, host, port);
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        snprintf(err, errlen, "%s: request not sent", url);
        return -EIO;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += DASH_GET_MS / 1000;
    char *buf = NULL;
    size_t used = 0, cap = 0;
    rc = 0;
    for (;;) { /* HTTP/1.0: the body ends at EOF */
        if (ms_left(&deadline) <= 0 || used >= DASH_GET_MAX) {
            rc = -ETIMEDOUT;
            snprintf(err, errlen, "%s: too slow or too large", url);
            break;
        }
        if (cap - used < 65536) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 262144);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        ssize_t r = recv(fd, buf + used, cap - used - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", url, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    char *sep = buf && !rc ? (buf[used] = '\0', strstr(buf, "\r\n\r\n")) : NULL;
    if (!rc && (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1)) {
        rc = -EPROTO;
        snprintf(err, errlen, "%s: not an HTTP response", url);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *len = used - (size_t)(sep + 4 - buf);
    memmove(buf, sep + 4, *len + 1);
    *body = buf;
    return 0;
}

int dash_scrape_prometheus(const char *base_url, struct prom_set *set, char *err, size_t errlen)
{
    char url[2048];
    /* match[]={__name__=~"istio_.*"} */
    int n = snprintf(url, sizeof(url),
                     "%s/federate?match%%5B%%5D=%%7B__name__%%3D~%%22istio_.*%%22%%7D", base_url);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        snprintf(err, errlen, "--prometheus URL too long");
        return -EINVAL;
    }
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    int rc = dash_http_get(url, &body, &len, &status, err, errlen);
    if (rc)
        return rc;
    if (status != 200) {
        snprintf(err, errlen, "%s answered %d", url, status);
        free(body);
        return -EPROTO;
    }
    set->origin = -1;
    rc = prom_parse(set, body, len, "istio_");
    free(body);
    return rc;
}
