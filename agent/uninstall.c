/* `meshd uninstall`: the explicit removal of what a stopped agent leaves
 * in place on purpose.
 *
 * A stopping agent (SIGTERM, a rollout) keeps its pods enrolled in the
 * kernel so they fail closed while no agent runs (agent.c). Taking the
 * mesh off a node is this separate command, for an operator or a DaemonSet
 * pre-delete hook: with no agent running for the node, it empties the BPF
 * enrollment map, detaches and unpins every link and map under
 * <bpffs>/meshd/<node>/, and removes pods.json, the persisted
 * configuration and the API mirror (`--kube`'s <state-dir>/kube) from the
 * state directory, the directory itself, and the admin socket a killed
 * agent left. */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "capture/capture.h"
#include "capture/mounts.h"
#include "config/persist.h"
#include "core/log.h"
#include "kube/mirror.h"

/* An agent answers on its admin socket: uninstalling under it would take
 * enforcement away from pods it serves. */
static bool agent_running(const char *socket_path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

static int remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) == 0) {
        log_info("uninstall: removed %s", path);
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    log_error("uninstall: cannot remove %s: %s", path, strerror(errno));
    return -errno;
}

int agent_uninstall(const struct agent_opts *opts)
{
    char bpffs[256], pin_dir[384];
    if (agent_running(opts->admin_socket)) {
        log_error("uninstall: an agent for node %s answers on %s: stop it first", opts->node,
                  opts->admin_socket);
        return 1;
    }
    if (opts->bpffs)
        snprintf(bpffs, sizeof(bpffs), "%s", opts->bpffs);
    else if (mounts_find("/proc/self/mounts", "bpf", "/sys/fs/bpf", bpffs, sizeof(bpffs)) != 0)
        snprintf(bpffs, sizeof(bpffs), "/sys/fs/bpf"); /* no bpffs: no pins either */
    snprintf(pin_dir, sizeof(pin_dir), "%s/meshd/%s", bpffs, opts->instance);
    int err = capture_uninstall(pin_dir);
    int state = remove_file(opts->state_dir, "pods.json");
    remove_file(opts->state_dir, "pods.json.tmp");
    int persisted = cfg_persist_remove(opts->state_dir);
    if (persisted)
        log_error("uninstall: persisted configuration in %s: %s", opts->state_dir,
                  strerror(-persisted));
    char mirror[512];
    snprintf(mirror, sizeof(mirror), "%s/kube", opts->state_dir);
    int kube = kube_mirror_remove(mirror);
    if (kube)
        log_error("uninstall: the API mirror %s: %s", mirror, strerror(-kube));
    /* A SIGKILLed agent's socket (agent_running said nobody answers). */
    struct stat st;
    if (lstat(opts->admin_socket, &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (unlink(opts->admin_socket) == 0) {
            log_info("uninstall: removed %s", opts->admin_socket);
        } else {
            log_error("uninstall: cannot remove %s: %s", opts->admin_socket, strerror(errno));
            kube = kube ? kube : -errno;
        }
    }
    /* The state directory goes too once empty (the agent made it). */
    if (rmdir(opts->state_dir) == 0)
        log_info("uninstall: removed %s", opts->state_dir);
    if (err || state || persisted || kube) {
        log_error("uninstall: node %s: something is left (see above)", opts->node);
        return 1;
    }
    log_info("uninstall: node %s: nothing of meshd is left attached or pinned", opts->node);
    return 0;
}
