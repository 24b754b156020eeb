/* Gateway servers' file certificates (networking.istio.io Gateway
 * servers[].tls.serverCertificate, privateKey, caCertificates), read at
 * load, off the data path, into Secrets the edge reads as it reads a
 * credentialName's (gateway/edge_tls.c).
 *
 * Istio's paths name files in the gateway pod (a mounted Secret); meshd
 * serves the gateway itself, so they name files the agent can read, and
 * only below the directory the operator gave (--gateway-cert-dir): a
 * Gateway is written by whoever may write networking.istio.io objects,
 * and must not make a privileged agent present or sign with any file of
 * its host (the mesh CA's key among them). A path must be absolute and
 * resolve (symbolic links followed) below that directory, a regular file
 * of at most 1 MiB without a NUL. What cannot be read is a warning naming
 * the Gateway, the server and the reason (never the content): the server
 * then has no certificate and fails closed, as a missing Secret does.
 *
 * The Secret, "~file~<gateway>~<server index>", is made in every namespace
 * holding a pod the Gateway selects (the edge looks a server's Secret up
 * in its pod's namespace). Files are read again on every load: a
 * rotated file is served after the next configuration change. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/internal.h"

#define CERT_FILE_MAX  (1u << 20)
#define MAX_NAMESPACES 64 /* namespaces a Gateway's file Secret is copied to */

/* The file's text in the arena, or NULL with *why. */
static const char *read_below(struct arena *a, const char *root, const char *path, const char **why)
{
    char real[PATH_MAX];
    if (path[0] != '/') {
        *why = "the path is not absolute";
        return NULL;
    }
    if (!realpath(path, real)) {
        *why = strerror(errno);
        return NULL;
    }
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || real[rl] != '/') {
        *why = "it is not below --gateway-cert-dir";
        return NULL;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd == -1) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > (off_t)CERT_FILE_MAX) {
        *why = "it is not a regular file of at most 1 MiB";
        goto out;
    }
    buf = arena_alloc(a, (size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);
        if (got <= 0) {
            *why = got == 0 ? "it shrank while read" : strerror(errno);
            buf = NULL;
            break;
        }
        n += (size_t)got;
    }
    if (buf) {
        buf[n] = '\0';
        if (strlen(buf) != n) {
            *why = "it holds a NUL: not PEM";
            buf = NULL;
        }
    } else if (!*why) {
        *why = "out of memory";
    }
out:
    close(fd);
    return buf;
}

/* The namespaces of the pods `gw` selects (at most MAX_NAMESPACES). */
static size_t pod_namespaces(const struct cfg_snapshot *s, const struct cfg_gateway *gw,
                             const char **out)
{
    size_t n = 0;
    for (size_t i = 0; gw->selector.match.n && i < s->kinds[CFG_POD].n; i++) {
        const struct cfg_pod *p = s->kinds[CFG_POD].v[i];
        if (!cfg_labels_match(&gw->selector.match, &p->meta.labels))
            continue;
        size_t j = 0;
        while (j < n && strcmp(out[j], p->meta.ns) != 0)
            j++;
        if (j == n && n < MAX_NAMESPACES)
            out[n++] = p->meta.ns;
    }
    return n;
}

static bool wants_files(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && !srv->credential_name && srv->server_certificate && srv->private_key &&
           (!strcmp(srv->tls_mode, "SIMPLE") || !strcmp(srv->tls_mode, "MUTUAL") ||
            !strcmp(srv->tls_mode, "OPTIONAL_MUTUAL"));
}

static int serve_files(struct cfg_snapshot *s, const char *root, struct cfg_diags *diags,
                       const struct cfg_gateway *gw, size_t idx)
{
    struct arena *a = &s->arena;
    struct cfg_gateway_server *srv = (struct cfg_gateway_server *)&gw->servers[idx];
    const char *why = NULL, *path = srv->server_certificate;
    const char *crt = NULL, *key = NULL, *ca = NULL;
    if (!root) {
        why = "meshd reads file certificates only below --gateway-cert-dir, which is not set";
    } else if ((crt = read_below(a, root, path, &why)) &&
               (key = read_below(a, root, path = srv->private_key, &why))) {
        if (srv->ca_certificates)
            ca = read_below(a, root, path = srv->ca_certificates, &why);
    }
    if (why) {
        cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &gw->meta, &srv->pos,
                     "servers[%zu]: %.200s: %s; the server refuses connections", idx,
                     root ? path : "file certificates", why);
        return 0;
    }
    const char *name = arena_printf(a, "~file~%s~%zu", gw->meta.name, idx);
    const char *nss[MAX_NAMESPACES];
    size_t n = pod_namespaces(s, gw, nss);
    for (size_t i = 0; name && i < n; i++) {
        struct cfg_secret *sec = arena_alloc(a, sizeof(*sec));
        if (!sec)
            return -ENOMEM;
        *sec = (struct cfg_secret){
            .meta = {.kind = CFG_SECRET,
                     .api_version = "v1",
                     .name = name,
                     .ns = nss[i],
                     .pos = srv->pos},
            .type = "kubernetes.io/tls",
            .has_cert = true,
            .has_key = true,
            .tls_crt = crt,
            .tls_key = key,
            .ca_crt = ca,
        };
        if (cfg_list_push(&s->kinds[CFG_SECRET], sec))
            return -ENOMEM;
    }
    if (!name)
        return -ENOMEM;
    srv->credential_name = name; /* the snapshot's, still being built */
    return 0;
}

int cfg_gateway_files(struct cfg_snapshot *s, const char *dir, struct cfg_diags *diags)
{
    char root[PATH_MAX];
    const char *r = dir && realpath(dir, root) ? root : NULL;
    if (dir && !r)
        cfg_diag_push(diags, CFG_WARNING, MSH_NOT_APPLIED, NULL, NULL, NULL, NULL,
                      "--gateway-cert-dir cannot be resolved: file certificates are refused");
    for (size_t i = 0; i < s->kinds[CFG_GATEWAY].n; i++) {
        const struct cfg_gateway *gw = s->kinds[CFG_GATEWAY].v[i];
        for (size_t j = 0; j < gw->nservers; j++) {
            if (!wants_files(&gw->servers[j]))
                continue;
            int rc = serve_files(s, r, diags, gw, j);
            if (rc)
                return rc;
        }
    }
    return 0;
}
