/* Loading and attaching the per-pod sk_lookup program (see inbound_lookup.h). */
#include "capture/inbound_lookup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/log.h"
#include "inbound.skel.h"

struct inbound_lookup {
    struct meshd_inbound *skel;
    struct bpf_link *link;
    char pin[320];
};

static int set_listener(struct inbound_lookup *il, uint32_t slot, int fd)
{
    uint64_t value = (uint64_t)fd;
    return bpf_map__update_elem(il->skel->maps.meshd_in_lsn, &slot, sizeof(slot), &value,
                                sizeof(value), BPF_ANY);
}

int inbound_lookup_attach(const char *pin_dir, uint64_t netns_cookie, int netns_fd, int lsn4,
                          int lsn6, struct inbound_lookup **out)
{
    int err;
    struct inbound_lookup *il = calloc(1, sizeof(*il));
    if (!il)
        return -ENOMEM;
    snprintf(il->pin, sizeof(il->pin), "%s/inbound_%llu", pin_dir,
             (unsigned long long)netns_cookie);
    il->skel = meshd_inbound__open_and_load();
    if (!il->skel) {
        err = -errno;
        log_error("inbound: loading the sk_lookup program failed: %s", strerror(-err));
        goto err_free;
    }
    if ((err = set_listener(il, 0, lsn4)) != 0 || (lsn6 >= 0 && (err = set_listener(il, 1, lsn6))))
        goto err_free;
    /* A pin left by a previous agent: swap our program in, atomically. */
    if (access(il->pin, F_OK) == 0 && (il->link = bpf_link__open(il->pin)) != NULL) {
        err = bpf_link__update_program(il->link, il->skel->progs.meshd_inbound);
        if (err == 0)
            goto done;
        log_warn("inbound: cannot take over %s (%s); attaching anew", il->pin, strerror(-err));
        bpf_link__unpin(il->link);
        bpf_link__destroy(il->link);
    }
    il->link = bpf_program__attach_netns(il->skel->progs.meshd_inbound, netns_fd);
    if (!il->link) {
        err = -errno;
        log_error("inbound: attaching sk_lookup to the pod netns failed: %s", strerror(-err));
        goto err_free;
    }
    if ((err = bpf_link__pin(il->link, il->pin)) != 0) {
        log_error("inbound: pinning %s failed: %s", il->pin, strerror(-err));
        goto err_free;
    }
done:
    *out = il;
    return 0;
err_free:
    bpf_link__destroy(il->link);
    meshd_inbound__destroy(il->skel);
    free(il);
    return err;
}

void inbound_lookup_prune(const char *pin_dir, const uint64_t *keep, size_t n)
{
    DIR *d = opendir(pin_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long cookie;
        char tail;
        if (sscanf(de->d_name, "inbound_%llu%c", &cookie, &tail) != 1)
            continue;
        bool kept = false;
        for (size_t i = 0; i < n && !kept; i++)
            kept = keep[i] == cookie;
        if (kept)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_info("inbound: pruned stale %s", path);
    }
    closedir(d);
}

void inbound_lookup_detach(struct inbound_lookup *il)
{
    if (!il)
        return;
    bpf_link__unpin(il->link);
    bpf_link__destroy(il->link);
    meshd_inbound__destroy(il->skel);
    free(il);
}

void inbound_lookup_close(struct inbound_lookup *il)
{
    if (!il)
        return;
    bpf_link__destroy(il->link); /* drops our fd; the pin holds the link */
    meshd_inbound__destroy(il->skel);
    free(il);
}

int inbound_lookup_self_map(const struct inbound_lookup *il)
{
    return bpf_map__fd(il->skel->maps.meshd_in_self);
}
