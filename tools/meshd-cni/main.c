/* meshd-cni: run by the container runtime as a chained CNI plugin after
 * the interface plugins (bridge + host-local, or the cluster's), or by an
 * operator as `meshd-cni install|uninstall`.
 *
 *   ADD      tells meshd (admin socket, "cni-add") the pod's namespace,
 *            name, UID and netns; meshd enrolls it if its namespace is in
 *            the mesh. prevResult is passed on as the result. meshd
 *            unreachable, or refusing: the ADD fails (code 11, try again
 *            later): the runtime retries, the pod never starts uncaptured.
 *   DEL      tells meshd ("cni-del"); always succeeds (meshd down: nothing
 *            to release; a restarted meshd prunes namespaces that are gone).
 *   CHECK    fails while meshd is unreachable.
 *   STATUS   (1.1) fails (code 50) while meshd is unreachable.
 *   GC       (1.1) nothing to collect: meshd prunes gone namespaces itself.
 *   VERSION  the supported versions.
 *
 * Idempotent: an ADD retried for the same sandbox is a no-op in meshd. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../meshctl/agent_client.h"
#include "cni.h"

#define STDIN_MAX (1u << 20)

static int emit(json_t *doc)
{
    if (doc) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int fail(const char *version, int code, const char *msg, const char *details)
{
    emit(cni_error(version, code, msg, details));
    return 1;
}

static char *read_stdin(size_t *len)
{
    char *buf = malloc(STDIN_MAX + 1);
    size_t n = 0;
    ssize_t r;
    while (buf && n < STDIN_MAX && (r = read(0, buf + n, STDIN_MAX - n)) > 0)
        n += (size_t)r;
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static const char *env(const char *name)
{
    return getenv(name);
}

static int plugin(void)
{
    size_t len = 0;
    struct cni_req req;
    char msg[512];
    const char *cmd = getenv("CNI_COMMAND");
    char *in = cmd && strcmp(cmd, "VERSION") != 0 ? read_stdin(&len) : NULL;
    int code = cni_parse(env, in ? in : "", len, &req, msg, sizeof(msg));
    free(in);
    if (code)
        return fail(NULL, code, msg, NULL);
    int rc = 0;
    char err[512];
    json_t *res;
    switch (req.cmd) {
    case CNI_VERSION:
        return emit(cni_version_result());
    case CNI_ADD: {
        json_t *out = cni_add_result(&req);
        if (!out) {
            rc = fail(req.cni_version, CNI_ERR_CONFIG, "meshd-cni is a chained plugin",
                      "no prevResult: list it after an interface plugin");
            break;
        }
        if (req.pod_ns[0]) { /* not a Kubernetes pod: nothing to capture */
            res = agent_call_err(req.socket,
                                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "cmd", "cni-add", "namespace",
                                           req.pod_ns, "name", req.pod_name, "uid", req.pod_uid,
                                           "netns", req.netns),
                                 err, sizeof(err));
            if (!res) {
                json_decref(out);
                rc = fail(req.cni_version, CNI_ERR_TRY_LATER, "meshd did not enroll the pod", err);
                break;
            }
            json_decref(res);
        }
        rc = emit(out);
        break;
    }
    case CNI_DEL:
        if (req.pod_ns[0])
            json_decref(agent_call_err(req.socket,
                                       json_pack("{s:s,s:s,s:s}", "cmd", "cni-del", "namespace",
                                                 req.pod_ns, "name", req.pod_name),
                                       err, sizeof(err)));
        break;
    case CNI_CHECK:
    case CNI_STATUS:
        res = agent_call_err(req.socket, json_pack("{s:s}", "cmd", "status"), err, sizeof(err));
        if (!res)
            rc = fail(req.cni_version,
                      req.cmd == CNI_STATUS ? CNI_ERR_UNAVAILABLE : CNI_ERR_TRY_LATER,
                      "meshd is not reachable", err);
        json_decref(res);
        break;
    case CNI_GC:
        break;
    }
    cni_req_free(&req);
    return rc;
}

/* Writes `data` to `path` whole: a temporary beside it, then rename. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.meshd-tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -errno;
    }
    return 0;
}

/* The conflist the runtime uses: the first by name, as libcni picks. */
static int find_conf(const char *dir, char *out, size_t outlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), found = -ENOENT;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (found != 0 && nm[0] != '.' &&
            ((l > 9 && strcmp(nm + l - 9, ".conflist") == 0) ||
             (l > 5 && strcmp(nm + l - 5, ".conf") == 0))) {
            snprintf(out, outlen, "%s/%s", dir, nm);
            found = 0;
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return found;
}

static int install(int argc, char **argv, bool remove)
{
    static const struct option opts[] = {{"conf-dir", required_argument, NULL, 'c'},
                                         {"bin-dir", required_argument, NULL, 'b'},
                                         {"socket", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *conf_dir = "/etc/cni/net.d", *bin_dir = "/opt/cni/bin", *sock = CNI_SOCKET_DEFAULT;
    int c;
    while ((c = getopt_long(argc, argv, "c:b:s:", opts, NULL)) != -1) {
        if (c == 'c')
            conf_dir = optarg;
        else if (c == 'b')
            bin_dir = optarg;
        else if (c == 's')
            sock = optarg;
        else
            return 2;
    }
    char conf[1100], bin[1100];
    snprintf(bin, sizeof(bin), "%s/meshd-cni", bin_dir);
    if (find_conf(conf_dir, conf, sizeof(conf)) != 0) {
        /* Uninstall runs on every node, also where no network was ever
         * configured: nothing to take out of a list, only the binary. */
        if (remove && (unlink(bin) == 0 || errno == ENOENT)) {
            printf("meshd-cni: no configuration in %s; %s is gone\n", conf_dir, bin);
            return 0;
        }
        fprintf(stderr, "meshd-cni: no .conflist or .conf in %s\n", conf_dir);
        return 1;
    }
    json_error_t jerr;
    json_t *list = json_load_file(conf, JSON_REJECT_DUPLICATES, &jerr), *edited;
    if (!list) {
        fprintf(stderr, "meshd-cni: %s: %s\n", conf, jerr.text);
        return 1;
    }
    edited = remove ? cni_conflist_remove(list) : cni_conflist_insert(list, sock);
    json_decref(list);
    if (!edited) {
        fprintf(stderr, "meshd-cni: %s is not a CNI configuration\n", conf);
        return 1;
    }
    char *text = json_dumps(edited, JSON_INDENT(2));
    json_decref(edited);
    /* A .conf becomes the .conflist that replaces it (as Istio's does). */
    char out[1110];
    size_t l = strlen(conf);
    bool single = l > 5 && strcmp(conf + l - 5, ".conf") == 0;
    snprintf(out, sizeof(out), "%s%s", conf, single ? "list" : "");
    int err = text ? write_atomic(out, text, strlen(text), 0644) : -ENOMEM;
    free(text);
    if (!err && single)
        unlink(conf);
    if (!err && remove) {
        if (unlink(bin) != 0 && errno != ENOENT)
            err = -errno;
    } else if (!err) {
        size_t n;
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        char *self = NULL;
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && (self = malloc((size_t)st.st_size))) {
            for (n = 0; n < (size_t)st.st_size;) {
                ssize_t r = read(fd, self + n, (size_t)st.st_size - n);
                if (r <= 0)
                    break;
                n += (size_t)r;
            }
            err = n == (size_t)st.st_size ? write_atomic(bin, self, n, 0755) : -EIO;
        } else {
            err = -errno;
        }
        free(self);
        if (fd >= 0)
            close(fd);
    }
    if (err) {
        fprintf(stderr, "meshd-cni: %s: %s\n", remove ? "uninstall" : "install", strerror(-err));
        return 1;
    }
    printf("meshd-cni: %s %s and %s\n", remove ? "removed from" : "installed in", out, bin);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "install") == 0 || strcmp(argv[1], "uninstall") == 0))
        return install(argc - 1, argv + 1, strcmp(argv[1], "uninstall") == 0);
    if (argc > 1) {
        fprintf(stderr, "usage: meshd-cni (run by a container runtime: CNI_COMMAND, config on "
                        "stdin)\n"
                        "       meshd-cni install|uninstall [--conf-dir DIR] [--bin-dir DIR] "
                        "[--socket PATH]\n");
        return 2;
    }
    return plugin();
}
