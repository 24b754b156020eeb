/* The CNI plugin's pure parts (see cni.h): environment, CNI_ARGS, config,
 * results and the conflist edit. */
#include "cni.h"

#include <stdio.h>
#include <string.h>

#include "core/k8sname.h"

static const char *const versions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

bool cni_version_supported(const char *v)
{
    for (size_t i = 0; v && i < NVERSIONS; i++)
        if (strcmp(v, versions[i]) == 0)
            return true;
    return false;
}

json_t *cni_version_result(void)
{
    json_t *list = json_array();
    for (size_t i = 0; i < NVERSIONS; i++)
        json_array_append_new(list, json_string(versions[i]));
    return json_pack("{s:s,s:o}", "cniVersion", "1.1.0", "supportedVersions", list);
}

json_t *cni_error(const char *version, int code, const char *msg, const char *details)
{
    return json_pack("{s:s,s:i,s:s,s:s}", "cniVersion",
                     cni_version_supported(version) ? version : "1.1.0", "code", code, "msg", msg,
                     "details", details ? details : "");
}

static bool uid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    return strspn(s, "0123456789abcdef-") == n;
}

int cni_parse_args(const char *args, struct cni_req *req, char *msg, size_t msglen)
{
    req->pod_ns[0] = req->pod_name[0] = req->pod_uid[0] = '\0';
    if (!args || !*args)
        return 0;
    if (strlen(args) > 4096) {
        snprintf(msg, msglen, "CNI_ARGS longer than 4096 bytes");
        return CNI_ERR_ENV;
    }
    char buf[4097];
    snprintf(buf, sizeof(buf), "%s", args);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(msg, msglen, "CNI_ARGS: \"%.64s\" is not KEY=VALUE", kv);
            return CNI_ERR_ENV;
        }
        *eq = '\0';
        const char *v = eq + 1;
        char *dst = NULL;
        size_t dlen = 0;
        bool ok = true;
        if (strcmp(kv, "K8S_POD_NAMESPACE") == 0) {
            dst = req->pod_ns, dlen = sizeof(req->pod_ns);
            ok = k8s_name_valid(v, strlen(v), 63, false);
        } else if (strcmp(kv, "K8S_POD_NAME") == 0) {
            dst = req->pod_name, dlen = sizeof(req->pod_name);
            ok = k8s_name_valid(v, strlen(v), 253, true);
        } else if (strcmp(kv, "K8S_POD_UID") == 0) {
            dst = req->pod_uid, dlen = sizeof(req->pod_uid);
            ok = uid_ok(v);
        } else {
            continue; /* IgnoreUnknown, K8S_POD_INFRA_CONTAINER_ID, ... */
        }
        if (!ok) {
            snprintf(msg, msglen, "CNI_ARGS: %s=\"%.64s\" is not valid", kv, v);
            return CNI_ERR_ENV;
        }
        if (dst[0]) {
            snprintf(msg, msglen, "CNI_ARGS: %s given twice", kv);
            return CNI_ERR_ENV;
        }
        snprintf(dst, dlen, "%s", v);
    }
    if (!req->pod_ns[0] != !req->pod_name[0]) {
        snprintf(msg, msglen, "CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME go together");
        return CNI_ERR_ENV;
    }
    return 0;
}

static int cmd_of(const char *s, enum cni_cmd *out)
{
    static const char *const names[] = {"ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"};
    for (size_t i = 0; s && i < 6; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum cni_cmd)i;
            return 0;
        }
    return -1;
}

void cni_req_free(struct cni_req *req)
{
    json_decref(req->conf);
    req->conf = NULL;
}

int cni_parse(cni_env_fn env, const char *stdin_text, size_t len, struct cni_req *req, char *msg,
              size_t msglen)
{
    memset(req, 0, sizeof(*req));
    if (cmd_of(env("CNI_COMMAND"), &req->cmd) != 0) {
        snprintf(msg, msglen, "CNI_COMMAND \"%.32s\" is not one of ADD DEL CHECK VERSION STATUS GC",
                 env("CNI_COMMAND") ? env("CNI_COMMAND") : "");
        return CNI_ERR_ENV;
    }
    if (req->cmd == CNI_VERSION)
        return 0;
    bool per_container = req->cmd == CNI_ADD || req->cmd == CNI_DEL || req->cmd == CNI_CHECK;
    req->container_id = env("CNI_CONTAINERID");
    req->netns = env("CNI_NETNS");
    req->ifname = env("CNI_IFNAME");
    if (per_container && (!req->container_id || !*req->container_id || !req->ifname)) {
        snprintf(msg, msglen, "CNI_CONTAINERID and CNI_IFNAME are required");
        return CNI_ERR_ENV;
    }
    /* DEL may come without a netns (the sandbox is gone); ADD and CHECK
     * need one, absolute. */
    if ((req->cmd == CNI_ADD || req->cmd == CNI_CHECK) &&
        (!req->netns || req->netns[0] != '/' || strlen(req->netns) > 255)) {
        snprintf(msg, msglen, "CNI_NETNS must be an absolute path");
        return CNI_ERR_ENV;
    }
    int rc = per_container ? cni_parse_args(env("CNI_ARGS"), req, msg, msglen) : 0;
    if (rc)
        return rc;
    json_error_t jerr;
    req->conf = json_loadb(stdin_text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(req->conf)) {
        snprintf(msg, msglen, "network configuration: %s",
                 req->conf ? "not a JSON object" : jerr.text);
        cni_req_free(req);
        return CNI_ERR_DECODE;
    }
    req->cni_version = json_string_value(json_object_get(req->conf, "cniVersion"));
    if (!cni_version_supported(req->cni_version)) {
        snprintf(msg, msglen, "cniVersion \"%.16s\" is not supported",
                 req->cni_version ? req->cni_version : "");
        cni_req_free(req);
        return CNI_ERR_VERSION;
    }
    const json_t *sock = json_object_get(req->conf, "socket");
    if (sock && (!json_is_string(sock) || json_string_value(sock)[0] != '/' ||
                 json_string_length(sock) > 107)) {
        snprintf(msg, msglen, "\"socket\" must be an absolute path of at most 107 bytes");
        cni_req_free(req);
        return CNI_ERR_CONFIG;
    }
    req->socket = sock ? json_string_value(sock) : CNI_SOCKET_DEFAULT;
    req->prev = json_object_get(req->conf, "prevResult");
    if (req->prev && !json_is_object(req->prev)) {
        snprintf(msg, msglen, "\"prevResult\" must be an object");
        cni_req_free(req);
        return CNI_ERR_CONFIG;
    }
    return 0;
}

json_t *cni_add_result(const struct cni_req *req)
{
    if (!req->prev)
        return NULL;
    json_t *out = json_deep_copy(req->prev);
    json_object_set_new(out, "cniVersion", json_string(req->cni_version));
    return out;
}

static bool is_ours(const json_t *plugin)
{
    const char *t = json_string_value(json_object_get(plugin, "type"));
    return t && strcmp(t, "meshd-cni") == 0;
}

json_t *cni_conflist_remove(const json_t *list)
{
    json_t *out = json_deep_copy(list);
    json_t *plugins = json_object_get(out, "plugins");
    for (size_t i = json_array_size(plugins); i-- > 0;)
        if (is_ours(json_array_get(plugins, i)))
            json_array_remove(plugins, i);
    return out;
}

json_t *cni_conflist_insert(const json_t *list, const char *socket)
{
    json_t *out;
    if (json_is_array(json_object_get(list, "plugins"))) {
        out = cni_conflist_remove(list);
    } else if (json_is_string(json_object_get(list, "type"))) {
        /* A single plugin's .conf: the list it would be. */
        json_t *plugin = json_deep_copy(list);
        json_t *v = json_object_get(list, "cniVersion"), *name = json_object_get(list, "name");
        out = json_pack("{s:O?,s:O?,s:[o]}", "cniVersion", v, "name", name, "plugins", plugin);
        json_object_del(plugin, "cniVersion");
        json_object_del(plugin, "name");
    } else {
        return NULL;
    }
    json_array_append_new(json_object_get(out, "plugins"),
                          json_pack("{s:s,s:s}", "type", "meshd-cni", "socket", socket));
    return out;
}
