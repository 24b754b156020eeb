/* The API server's address and credentials (see target.h). */
#include "kube/target.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/yaml.h"
#include "core/arena.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static int fail(char *err, size_t errlen, int code, const char *fmt, const char *a)
{
    snprintf(err, errlen, fmt, a);
    return code;
}

char *kube_read_file(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    *err = 0;
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KUBE_FILE_MAX) {
        *err = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        *err = -ENOMEM;
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r <= 0) {
            *err = r < 0 ? -errno : -EIO;
            free(buf);
            buf = NULL;
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
out:
    close(fd);
    return buf;
}

int kube_parse_server(const char *url, struct kube_target *t)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        t->tls = true;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        t->tls = false;
        p = url + 7;
    } else {
        return -EINVAL;
    }
    const char *host = p, *hend;
    if (*p == '[') {
        host = p + 1;
        if (!(hend = strchr(host, ']')))
            return -EINVAL;
        p = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        p = hend;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof(t->host))
        return -EINVAL;
    memcpy(t->host, host, hlen);
    t->host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:", host[i]))
            return -EINVAL;
    t->port = t->tls ? 443 : 80;
    if (*p == ':') {
        char *end;
        unsigned long v = strtoul(p + 1, &end, 10);
        if (end == p + 1 || v == 0 || v > 65535)
            return -EINVAL;
        t->port = (uint16_t)v;
        p = end;
    }
    /* A path prefix (a proxy in front of the API) is not supported. */
    if (*p && strcmp(p, "/") != 0)
        return -EINVAL;
    return 0;
}

void kube_target_free(struct kube_target *t)
{
    free(t->ca_pem);
    free(t->cert_pem);
    free(t->key_pem);
    if (t->token)
        OPENSSL_cleanse(t->token, strlen(t->token));
    free(t->token);
    memset(t, 0, sizeof(*t));
}

static char *b64_decode(const char *s)
{
    size_t n = strlen(s);
    if (n > KUBE_FILE_MAX * 2)
        return NULL;
    unsigned char *out = malloc(n + 1);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int l1 = 0, l2 = 0;
    if (!out || !ctx || (EVP_DecodeInit(ctx), 0) ||
        EVP_DecodeUpdate(ctx, out, &l1, (const unsigned char *)s, (int)n) < 0 ||
        EVP_DecodeFinal(ctx, out + l1, &l2) != 1) {
        free(out);
        EVP_ENCODE_CTX_free(ctx);
        return NULL;
    }
    EVP_ENCODE_CTX_free(ctx);
    out[l1 + l2] = '\0';
    return (char *)out;
}

static const char *str(const struct ynode *map, const char *key)
{
    const struct ynode *n = ymap_get(map, key);
    return n && n->type == YNODE_SCALAR && !ynode_is_null(n) ? n->scalar.s : NULL;
}

/* The entry of a named list ("clusters", "users", "contexts") called `name`,
 * its `inner` mapping. */
static const struct ynode *named(const struct ynode *root, const char *list, const char *inner,
                                 const char *name)
{
    const struct ynode *l = ymap_get(root, list);
    if (!l || l->type != YNODE_SEQ || !name)
        return NULL;
    for (size_t i = 0; i < l->seq.n; i++) {
        const char *nm = str(l->seq.v[i], "name");
        if (nm && strcmp(nm, name) == 0) {
            const struct ynode *m = ymap_get(l->seq.v[i], inner);
            return m && m->type == YNODE_MAP ? m : NULL;
        }
    }
    return NULL;
}

/* `data` (base64) or `file` (relative to dir) into *out; neither: NULL. */
static int pem_of(const char *data, const char *file, const char *dir, char **out)
{
    *out = NULL;
    if (data)
        return (*out = b64_decode(data)) ? 0 : -EINVAL;
    if (!file)
        return 0;
    char path[1024];
    if (file[0] == '/')
        snprintf(path, sizeof(path), "%s", file);
    else
        snprintf(path, sizeof(path), "%s/%s", dir, file);
    int err;
    *out = kube_read_file(path, NULL, &err);
    return err;
}

static int from_doc(const struct ynode *root, const char *dir, struct kube_target *t, char *err,
                    size_t errlen)
{
    if (!root || root->type != YNODE_MAP)
        return fail(err, errlen, -EINVAL, "%s: not a kubeconfig mapping", "kubeconfig");
    const char *cur = str(root, "current-context");
    const struct ynode *ctx = named(root, "contexts", "context", cur);
    if (!ctx)
        return fail(err, errlen, -ENOENT, "current-context \"%s\" not found", cur ? cur : "");
    const char *cname = str(ctx, "cluster"), *uname = str(ctx, "user");
    const struct ynode *cl = named(root, "clusters", "cluster", cname);
    if (!cl)
        return fail(err, errlen, -ENOENT, "cluster \"%s\" not found", cname ? cname : "");
    const char *server = str(cl, "server");
    if (!server || kube_parse_server(server, t) != 0)
        return fail(err, errlen, -EINVAL, "server \"%s\" is not http(s)://host[:port]",
                    server ? server : "");
    if (ymap_get(cl, "proxy-url"))
        return fail(err, errlen, -ENOTSUP, "%s is not supported", "proxy-url");
    t->insecure = yscalar_is(ymap_get(cl, "insecure-skip-tls-verify"), "true");
    if (pem_of(str(cl, "certificate-authority-data"), str(cl, "certificate-authority"), dir,
               &t->ca_pem) != 0)
        return fail(err, errlen, -EINVAL, "cluster %s: certificate-authority unreadable", cname);
    const struct ynode *u = uname ? named(root, "users", "user", uname) : NULL;
    if (uname && !u)
        return fail(err, errlen, -ENOENT, "user \"%s\" not found", uname);
    if (!u)
        return 0;
    static const char *const refused[] = {"exec", "auth-provider", "username", "password"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (ymap_get(u, refused[i]))
            return fail(err, errlen, -ENOTSUP, "user credential \"%s\" is not supported",
                        refused[i]);
    const char *tok = str(u, "token"), *tokfile = str(u, "tokenFile");
    if (tok && !(t->token = strdup(tok)))
        return -ENOMEM;
    if (tokfile) {
        int n = snprintf(t->token_file, sizeof(t->token_file), "%s%s%s",
                         tokfile[0] == '/' ? "" : dir, tokfile[0] == '/' ? "" : "/", tokfile);
        if (n < 0 || (size_t)n >= sizeof(t->token_file))
            return fail(err, errlen, -ENAMETOOLONG, "user %s: tokenFile path too long", uname);
    }
    if (pem_of(str(u, "client-certificate-data"), str(u, "client-certificate"), dir,
               &t->cert_pem) != 0 ||
        pem_of(str(u, "client-key-data"), str(u, "client-key"), dir, &t->key_pem) != 0)
        return fail(err, errlen, -EINVAL, "user %s: client certificate or key unreadable", uname);
    if (!t->cert_pem != !t->key_pem)
        return fail(err, errlen, -EINVAL, "user %s: a client certificate needs its key", uname);
    return 0;
}

int kube_target_kubeconfig(const char *path, struct kube_target *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc;
    size_t len;
    char *buf = kube_read_file(path, &len, &rc);
    if (!buf)
        return fail(err, errlen, rc, "%s: unreadable", path);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    struct arena a;
    arena_init(&a, 4u << 20);
    struct yreader r;
    struct ylimits lim = YLIMITS_DEFAULT;
    struct ydoc doc;
    yreader_init(&r, buf, len, &lim);
    int got = yreader_next(&r, &a, &doc);
    if (got == 1) {
        rc = from_doc(doc.root, dir, out, err, errlen);
    } else {
        snprintf(err, errlen, "%s:%u:%u: %s", path, r.err_line, r.err_col,
                 got == 0 ? "empty" : r.err);
        rc = -EINVAL;
    }
    yreader_fini(&r);
    arena_free(&a);
    free(buf);
    if (rc)
        kube_target_free(out);
    return rc;
}

int kube_target_in_cluster(const char *sa_dir, struct kube_target *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host)
        return fail(err, errlen, -ENOENT, "%s is not set: not in a cluster",
                    "KUBERNETES_SERVICE_HOST");
    char url[320];
    snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
             port && *port ? port : "443");
    if (kube_parse_server(url, out) != 0)
        return fail(err, errlen, -EINVAL, "KUBERNETES_SERVICE_HOST/PORT make \"%s\"", url);
    char path[600];
    snprintf(path, sizeof(path), "%s/ca.crt", sa_dir ? sa_dir : SA_DIR);
    int rc;
    if (!(out->ca_pem = kube_read_file(path, NULL, &rc))) {
        kube_target_free(out);
        return fail(err, errlen, rc, "%s: unreadable", path);
    }
    snprintf(out->token_file, sizeof(out->token_file), "%s/token", sa_dir ? sa_dir : SA_DIR);
    if (access(out->token_file, R_OK) != 0) {
        snprintf(path, sizeof(path), "%s", out->token_file);
        kube_target_free(out);
        return fail(err, errlen, -ENOENT, "%s: unreadable", path);
    }
    return 0;
}
