/* pods.json, written and read (see pods_state.h). */
#include "enroll/pods_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/addr.h"
#include "core/log.h"

static json_t *pod_json(const struct pod *pod)
{
    json_t *ips = json_array();
    for (size_t i = 0; i < pod->nclaimed_ips && ips; i++) {
        char a[ADDR_STRLEN];
        addr_format(&pod->claimed_ips[i], a, sizeof(a));
        json_array_append_new(ips, json_string(a));
    }
    return json_pack("{s:s,s:s,s:s,s:s?,s:o?}", "namespace", pod->ns, "name", pod->name, "netns",
                     pod->netns_path, "sa", pod->claimed_sa[0] ? pod->claimed_sa : NULL, "ips",
                     ips);
}

int pods_state_save(const char *path, const struct pod *head)
{
    json_t *arr = json_array();
    for (const struct pod *pod = head; pod && arr; pod = pod->next) {
        if (json_array_append_new(arr, pod_json(pod)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int err = 0;
    errno = 0;
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        err = -ENAMETOOLONG;
    } else if (!arr || json_dump_file(arr, tmp, JSON_INDENT(2)) != 0 || rename(tmp, path) == -1) {
        err = errno ? -errno : -EIO;
        unlink(tmp);
    }
    if (err)
        log_error("pods: cannot save %s: %s", path, strerror(-err));
    json_decref(arr);
    return err;
}

int pods_state_load(const char *path, pods_state_entry_fn fn, void *ctx)
{
    json_error_t jerr;
    json_t *arr = json_load_file(path, 0, &jerr);
    if (!arr) {
        if (access(path, F_OK) != 0)
            return 0; /* nothing enrolled yet */
        log_error("pods: ignoring unreadable state %s:%d: %s", path, jerr.line, jerr.text);
        return -EINVAL;
    }
    if (!json_is_array(arr)) {
        log_error("pods: ignoring state %s: not a list of pods", path);
        json_decref(arr);
        return -EINVAL;
    }
    int passed = 0;
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        const char *ns = json_string_value(json_object_get(item, "namespace"));
        const char *name = json_string_value(json_object_get(item, "name"));
        struct pod_spec spec = {
            .netns_path = json_string_value(json_object_get(item, "netns")),
            .sa = json_string_value(json_object_get(item, "sa")),
        };
        if (!ns || !name || !spec.netns_path) {
            log_warn("pods: state entry %zu is incomplete; skipped", i);
            continue;
        }
        size_t k;
        json_t *ip;
        json_array_foreach(json_object_get(item, "ips"), k, ip)
        {
            if (spec.nips < POD_MAX_IPS &&
                addr_parse(json_string_value(ip) ? json_string_value(ip) : "",
                           &spec.ips[spec.nips]) == 0)
                spec.nips++;
        }
        fn(ctx, i, ns, name, &spec);
        passed++;
    }
    json_decref(arr);
    return passed;
}
