/* Reading configuration into a snapshot (see config.h): the content hash,
 * the dispatch of each YAML document to its kind's decoder, kinds accepted
 * but not applied. The file walk and its bounds are in files.c. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"
#include "config/internal.h"
#include "config/load.h"

/* A kind meshd accepts without applying: reported once per load. */
struct unapplied {
    char kind[64], api[128];
    struct cfg_pos pos; /* the first one; file borrowed from the snapshot arena */
    size_t n;
};

/* Every kind meshd models (named by cfg_kind_name), with the API versions
 * Istio and Kubernetes serve. */
static const char *const v_core[] = {"v1", NULL};
static const char *const v_networking[] = {"v1alpha3", "v1beta1", "v1", NULL};
static const char *const v_security[] = {"v1beta1", "v1", NULL};
static const char *const v_telemetry[] = {"v1alpha1", "v1", NULL};
static const char *const v_gwapi[] = {"v1", "v1beta1", NULL};
static const char *const v_gwapi_grant[] = {"v1beta1", "v1alpha2", NULL};
static const char *const v_gwapi_alpha[] = {"v1alpha2", NULL};
#define GWAPI "gateway.networking.k8s.io"

static const struct kind_def {
    const char *group; /* "" for the core group */
    const char *const *versions;
    enum cfg_kind k;
    bool namespaced;
    bool istio;         /* strict schema: unknown fields are reported */
    bool spec_required; /* the CRD's schema lists spec as required */
    size_t size;
    cfg_decode_fn decode;
} kind_defs[] = {
    {"", v_core, CFG_NAMESPACE, false, false, false, sizeof(struct cfg_namespace),
     decode_namespace},
    {"", v_core, CFG_SERVICE, true, false, false, sizeof(struct cfg_service), decode_service},
    {"", v_core, CFG_POD, true, false, false, sizeof(struct cfg_pod), decode_pod},
    {"apps", v_core, CFG_DEPLOYMENT, true, false, false, sizeof(struct cfg_deployment),
     decode_deployment},
    {"", v_core, CFG_SECRET, true, false, false, sizeof(struct cfg_secret), decode_secret},
    {"networking.istio.io", v_networking, CFG_GATEWAY, true, true, false,
     sizeof(struct cfg_gateway), decode_gateway},
    {"networking.istio.io", v_networking, CFG_VIRTUAL_SERVICE, true, true, false,
     sizeof(struct cfg_virtual_service), decode_virtual_service},
    {"networking.istio.io", v_networking, CFG_DESTINATION_RULE, true, true, false,
     sizeof(struct cfg_destination_rule), decode_destination_rule},
    {"networking.istio.io", v_networking, CFG_SERVICE_ENTRY, true, true, true,
     sizeof(struct cfg_service_entry), decode_service_entry},
    {"networking.istio.io", v_networking, CFG_WORKLOAD_ENTRY, true, true, true,
     sizeof(struct cfg_workload_entry), decode_workload_entry},
    {"security.istio.io", v_security, CFG_PEER_AUTHENTICATION, true, true, false,
     sizeof(struct cfg_peer_authentication), decode_peer_authentication},
    {"security.istio.io", v_security, CFG_AUTHORIZATION_POLICY, true, true, false,
     sizeof(struct cfg_authorization_policy), decode_authorization_policy},
    {"telemetry.istio.io", v_telemetry, CFG_TELEMETRY, true, true, false,
     sizeof(struct cfg_telemetry), decode_telemetry},
    {GWAPI, v_gwapi, CFG_K8S_GATEWAY, true, true, true, sizeof(struct cfg_k8s_gateway),
     decode_k8s_gateway},
    {GWAPI, v_gwapi, CFG_HTTP_ROUTE, true, true, true, sizeof(struct cfg_gwapi_route),
     decode_http_route_k8s},
    {GWAPI, v_gwapi_alpha, CFG_TLS_ROUTE, true, true, true, sizeof(struct cfg_gwapi_route),
     decode_tls_route_k8s},
    {GWAPI, v_gwapi_alpha, CFG_TCP_ROUTE, true, true, true, sizeof(struct cfg_gwapi_route),
     decode_tcp_route_k8s},
    {GWAPI, v_gwapi_grant, CFG_REFERENCE_GRANT, true, true, true,
     sizeof(struct cfg_reference_grant), decode_reference_grant},
};

/* Kubernetes' built-in kinds that carry nothing for a mesh: accepted
 * silently. Every other kind meshd does not apply (Gateway API, Argo CD,
 * IstioOperator, Node, Prometheus' monitors, any CRD) is accepted with one
 * Info per kind naming it as not applied: never a rejected file. */
static const char *const ignored_kinds[] = {"ServiceAccount",
                                            "ConfigMap",
                                            "Role",
                                            "RoleBinding",
                                            "ClusterRole",
                                            "ClusterRoleBinding",
                                            "StatefulSet",
                                            "DaemonSet",
                                            "ReplicaSet",
                                            "Job",
                                            "CronJob",
                                            "Ingress",
                                            "IngressClass",
                                            "NetworkPolicy",
                                            "HorizontalPodAutoscaler",
                                            "PodDisruptionBudget",
                                            "Endpoints",
                                            "EndpointSlice",
                                            "PersistentVolumeClaim",
                                            "PersistentVolume",
                                            "StorageClass",
                                            "CustomResourceDefinition",
                                            "APIService",
                                            "PodSecurityPolicy",
                                            "CSIDriver",
                                            "LimitRange",
                                            "ResourceQuota",
                                            "PriorityClass",
                                            "MutatingWebhookConfiguration",
                                            "ValidatingWebhookConfiguration",
                                            NULL};
/* Istio kinds meshd does not apply (sidecar- or Envoy-specific). */
static const char *const istio_unapplied[] = {
    "Sidecar",    "EnvoyFilter", "WorkloadGroup", "ProxyConfig", "RequestAuthentication",
    "WasmPlugin", NULL};

void cfg_load_opts_default(struct cfg_load_opts *o)
{
    *o = (struct cfg_load_opts){
        .root_namespace = "istio-system",
        .domain = "cluster.local",
        .yaml = YLIMITS_DEFAULT,
        .max_file_bytes = 16u << 20,
        .max_total_bytes = 256u << 20,
        .max_files = 10000,
    };
}

static bool version_served(const struct kind_def *def, const char *api_version);

/* The definition of `kind` serving `api`, else the first of that kind
 * (two groups have a Gateway). */
static const struct kind_def *find_kind(const char *kind, const char *api)
{
    const struct kind_def *first = NULL;
    for (size_t i = 0; i < sizeof(kind_defs) / sizeof(kind_defs[0]); i++) {
        const struct kind_def *def = &kind_defs[i];
        /* The Gateway API's Gateway is named apart from Istio's. */
        if (strcmp(def->k == CFG_K8S_GATEWAY ? "Gateway" : cfg_kind_name(def->k), kind) != 0)
            continue;
        if (version_served(def, api))
            return def;
        if (!first)
            first = def;
    }
    return first;
}

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* "group/version" or "version" (core). */
static bool version_served(const struct kind_def *def, const char *api_version)
{
    const char *slash = strrchr(api_version, '/');
    size_t glen = slash ? (size_t)(slash - api_version) : 0;
    if (glen != strlen(def->group) || strncmp(api_version, def->group, glen) != 0)
        return false;
    return in_list(slash ? slash + 1 : api_version, def->versions);
}

#define MAX_UNAPPLIED_KINDS 256

static int cmp_label(const void *x, const void *y)
{
    const struct cfg_kv *a = x, *b = y;
    return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

static void note_unapplied(struct cfg_load *L, const char *kind, const char *api,
                           const struct cfg_pos *pos)
{
    for (size_t i = 0; i < L->nunapplied; i++) {
        if (strcmp(L->unapplied[i].kind, kind) == 0 && strcmp(L->unapplied[i].api, api) == 0) {
            L->unapplied[i].n++;
            return;
        }
    }
    if (L->nunapplied == MAX_UNAPPLIED_KINDS)
        return;
    struct unapplied *v = realloc(L->unapplied, (L->nunapplied + 1) * sizeof(*v));
    if (!v)
        return;
    L->unapplied = v;
    struct unapplied *u = &v[L->nunapplied++];
    snprintf(u->kind, sizeof(u->kind), "%s", kind);
    snprintf(u->api, sizeof(u->api), "%s", api);
    u->pos = *pos;
    u->n = 1;
}

static void report_unapplied(struct cfg_load *L)
{
    for (size_t i = 0; i < L->nunapplied; i++) {
        const struct unapplied *u = &L->unapplied[i];
        bool gateway_api = strncmp(u->api, "gateway.networking.k8s.io/", 26) == 0 ||
                           strncmp(u->api, "gateway.networking.x-k8s.io/", 28) == 0;
        char msg[400];
        snprintf(msg, sizeof(msg), "%s (%s) is not applied by meshd%s; %zu resource%s accepted",
                 u->kind, u->api,
                 gateway_api
                     ? " (of the Gateway API meshd serves Gateway and HTTPRoute v1/v1beta1, "
                       "ReferenceGrant v1beta1, TLSRoute and TCPRoute v1alpha2)"
                     : "",
                 u->n, u->n == 1 ? "" : "s");
        cfg_diag_push(L->diags, CFG_INFO, MSH_UNKNOWN_KIND, NULL, NULL, NULL, &u->pos, msg);
    }
    free(L->unapplied);
    L->unapplied = NULL;
    L->nunapplied = 0;
}

/* Nodes and Gateway API Gateways are kept for the analyzers: name,
 * namespace and labels only, read leniently (they are not meshd's to
 * validate). */
static void keep_other(struct cfg_load *L, const char *kind, const char *api,
                       const struct ynode *root)
{
    const char *slash = strrchr(api, '/');
    bool node = !slash && strcmp(kind, "Node") == 0;
    bool k8s_gw = slash && strcmp(kind, "Gateway") == 0 &&
                  strncmp(api, "gateway.networking.k8s.io/", 26) == 0;
    const struct ynode *meta = ymap_get(root, "metadata"), *name = ymap_get(meta, "name"),
                       *ns = ymap_get(meta, "namespace"), *labels = ymap_get(meta, "labels");
    if ((!node && !k8s_gw) || !name || name->type != YNODE_SCALAR)
        return;
    struct arena *a = &L->s->arena;
    struct cfg_other *o = arena_alloc(a, sizeof(*o));
    if (!o)
        return;
    *o = (struct cfg_other){
        .kind = arena_strdup(a, kind),
        .group = slash ? arena_strndup(a, api, (size_t)(slash - api)) : "",
        .ns = ns && ns->type == YNODE_SCALAR ? arena_strdup(a, ns->scalar.s) : NULL,
        .name = arena_strdup(a, name->scalar.s),
    };
    size_t n = labels && labels->type == YNODE_MAP ? labels->map.n : 0;
    struct cfg_kv *kv = n ? arena_array(a, n, sizeof(*kv)) : NULL;
    size_t k = 0;
    for (size_t i = 0; kv && i < n; i++) {
        const struct ynode *key = labels->map.v[i].key, *val = labels->map.v[i].value;
        if (key->type == YNODE_SCALAR && val->type == YNODE_SCALAR)
            kv[k++] =
                (struct cfg_kv){arena_strdup(a, key->scalar.s), arena_strdup(a, val->scalar.s)};
    }
    if (k > 1)
        qsort(kv, k, sizeof(*kv), cmp_label);
    o->labels = (struct cfg_labels){kv, k};
    if (o->kind && o->group && o->name)
        cfg_list_push(&L->s->others, o);
}

/* The API groups whose kinds meshd decodes: an unknown kind or version
 * there is a mistake Kubernetes would refuse too (the CRD does not serve
 * it), not a resource of another project. */
static bool meshd_group(const char *api)
{
    static const char *const groups[] = {"networking.istio.io/", "security.istio.io/",
                                         "telemetry.istio.io/", NULL};
    for (size_t i = 0; groups[i]; i++)
        if (strncmp(api, groups[i], strlen(groups[i])) == 0)
            return true;
    return false;
}

static void decode_meta(struct cfg_dec *d, const struct ynode *meta, const struct kind_def *def,
                        struct cfg_meta *m)
{
    size_t mark = dec_push(d, "metadata");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, meta, &i, &k, &v);) {
        if (strcmp(k, "name") == 0)
            dec_str(d, v, k, &m->name);
        else if (strcmp(k, "namespace") == 0)
            dec_str(d, v, k, &m->ns);
        else if (strcmp(k, "labels") == 0)
            dec_labels(d, v, k, &m->labels);
    }
    if (!m->name) {
        dec_error(d, meta, "name is required");
    } else if (!cfg_valid_dns_subdomain(m->name)) {
        dec_error(d, ymap_get(meta, "name"),
                  "name: \"%.80s\" is not a valid name (lowercase letters, digits, '-', '.')",
                  m->name);
    }
    if (!def->namespaced) {
        m->ns = NULL;
    } else if (!m->ns) {
        m->ns = "default";
    } else if (!cfg_valid_dns_label(m->ns)) {
        dec_error(d, ymap_get(meta, "namespace"), "namespace: \"%.80s\" is not a valid namespace",
                  m->ns);
    }
    dec_pop(d, mark);
}

static void load_document(struct cfg_load *L, const char *file, const struct ynode *root,
                          int list_depth);

static void load_list(struct cfg_load *L, const char *file, const struct ynode *root,
                      int list_depth)
{
    const struct ynode *items = ymap_get(root, "items");
    if (list_depth > 0 || (items && items->type != YNODE_SEQ)) {
        cfg_load_error(L, file, root->line, root->col, IST_SCHEMA,
                       "List: items must be a list of resources%s%s", "", "");
        return;
    }
    for (size_t i = 0; items && i < items->seq.n; i++)
        load_document(L, file, items->seq.v[i], list_depth + 1);
}

static void load_document(struct cfg_load *L, const char *file, const struct ynode *root,
                          int list_depth)
{
    if (!root || ynode_is_null(root))
        return; /* an empty document, e.g. a trailing "---" */
    if (root->type != YNODE_MAP) {
        cfg_load_error(L, file, root->line, root->col, IST_SCHEMA,
                       "a resource must be a mapping, got %s%s", ynode_type_name(root), "");
        return;
    }
    const struct ynode *av = ymap_get(root, "apiVersion"), *kv = ymap_get(root, "kind");
    if (!av || av->type != YNODE_SCALAR || !kv || kv->type != YNODE_SCALAR || !av->scalar.len ||
        !kv->scalar.len) {
        cfg_load_error(L, file, root->line, root->col, IST_SCHEMA,
                       "apiVersion and kind are required strings%s%s", "", "");
        return;
    }
    const char *kind = kv->scalar.s, *api = av->scalar.s;
    if (strcmp(kind, "List") == 0 && strcmp(api, "v1") == 0) {
        load_list(L, file, root, list_depth);
        return;
    }
    const struct kind_def *def = find_kind(kind, api);
    struct cfg_pos pos = {file, root->line, root->col};
    if (!def || !version_served(def, api)) {
        bool core = !strchr(api, '/');
        if (in_list(kind, istio_unapplied) && strstr(api, ".istio.io/")) {
            /* Istio kinds that change what a sidecar would do: a warning each. */
            char msg[200];
            snprintf(msg, sizeof(msg), "%.40s (%.60s) is not applied by meshd", kind, api);
            cfg_diag_push(L->diags, CFG_WARNING, MSH_NOT_APPLIED, NULL, NULL, NULL, &pos, msg);
        } else if (def && (core || meshd_group(api))) {
            cfg_load_error(L, file, av->line, av->col, MSH_UNKNOWN_KIND,
                           "unknown apiVersion \"%.60s\" for kind %s", api, kind);
        } else if (meshd_group(api)) {
            cfg_load_error(L, file, kv->line, kv->col, MSH_UNKNOWN_KIND,
                           "unknown kind \"%.60s\" (apiVersion %.60s)", kind, api);
        } else if (!in_list(kind, ignored_kinds)) {
            note_unapplied(L, kind, api, &(struct cfg_pos){file, kv->line, kv->col});
            keep_other(L, kind, api, root);
        }
        return;
    }
    struct cfg_meta *meta = arena_alloc(&L->s->arena, def->size);
    if (!meta) {
        cfg_load_error(L, file, root->line, root->col, MSH_FILE, "out of memory%s%s", "", "");
        return;
    }
    meta->kind = def->k;
    meta->pos = pos;
    struct cfg_dec d = {
        .arena = &L->s->arena,
        .diags = L->diags,
        .file = file,
        .meta = meta,
        .budget = 1000000,
    };
    dec_str(&d, av, "apiVersion", &meta->api_version);
    decode_meta(&d, ymap_get(root, "metadata"), def, meta);
    if (def->istio) {
        const char *k;
        const struct ynode *v;
        for (size_t i = 0; dec_each(&d, root, &i, &k, &v);)
            if (strcmp(k, "apiVersion") != 0 && strcmp(k, "kind") != 0 &&
                strcmp(k, "metadata") != 0 && strcmp(k, "spec") != 0 && strcmp(k, "status") != 0)
                dec_unknown(&d, k, v);
        if (def->spec_required && !ymap_get(root, "spec"))
            dec_error(&d, root, "spec is required");
    }
    def->decode(&d, root, meta);
    if (!d.failed && cfg_list_push(&L->s->kinds[def->k], meta))
        cfg_load_error(L, file, root->line, root->col, MSH_FILE, "out of memory%s%s", "", "");
}

static void load_buffer(struct cfg_load *L, const char *name, const char *buf, size_t len)
{
    /* The version covers names and contents: renaming a file is a change. */
    EVP_DigestUpdate(L->hash, name, strlen(name) + 1);
    EVP_DigestUpdate(L->hash, buf, len);
    L->s->nfiles++;
    L->s->bytes += len;
    const char *file = arena_strdup(&L->s->arena, name);
    struct yreader r;
    yreader_init(&r, buf, len, &L->o->yaml);
    for (;;) {
        struct arena doc_arena;
        arena_init(&doc_arena, L->o->yaml.max_doc_bytes * 16);
        struct ydoc doc = {0};
        int rc = yreader_next(&r, &doc_arena, &doc);
        if (rc < 0)
            cfg_load_error(L, file, r.err_line, r.err_col, MSH_YAML_SYNTAX, "YAML: %s%s", r.err,
                           "");
        else if (rc > 0)
            load_document(L, file, doc.root, 0);
        arena_free(&doc_arena);
        if (rc <= 0)
            break;
    }
    yreader_fini(&r);
}

static void load_file(struct cfg_load *L, const char *path, const char *name)
{
    size_t len = 0;
    char *buf = cfg_load_read(L, path, name, &len);
    if (buf && L->o->file_read)
        L->o->file_read(L->o->file_read_ctx, name, buf, len);
    if (buf)
        load_buffer(L, name, buf, len);
    free(buf);
}

static const char *file_name(const char *entry)
{
    return entry + strlen(entry) + 1;
}

static void free_list_strings(struct cfg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->v[i]);
    free(l->v);
}

static int load_begin(struct cfg_load *L, const struct cfg_load_opts *opts, struct cfg_diags *diags)
{
    *L = (struct cfg_load){.o = opts, .diags = diags, .hash = EVP_MD_CTX_new()};
    struct cfg_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    L->s = s;
    atomic_init(&s->refs, 1);
    arena_init(&s->arena, 0);
    s->root_ns =
        arena_strdup(&s->arena, opts->root_namespace ? opts->root_namespace : "istio-system");
    s->domain = arena_strdup(&s->arena, opts->domain ? opts->domain : "cluster.local");
    if (!L->hash || !s->root_ns || !s->domain || !EVP_DigestInit_ex(L->hash, EVP_sha256(), NULL))
        return -ENOMEM;
    return 0;
}

/* Seals the version and builds the indexes; frees L's scratch state
 * whatever `rc` (a failure of the load so far) is. */
static int load_finish(struct cfg_load *L, int rc, struct cfg_snapshot **out)
{
    struct cfg_snapshot *s = L->s;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!rc && EVP_DigestFinal_ex(L->hash, md, &mdlen) && mdlen >= 8)
        for (int i = 0; i < 8; i++)
            snprintf(s->version + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(L->hash);
    free_list_strings(&L->files);
    report_unapplied(L);
    if (!rc)
        rc = cfg_gateway_files(s, L->o->gateway_cert_dir, L->diags);
    if (!rc)
        rc = cfg_gwapi_translate(s, L->diags);
    if (!rc)
        rc = cfg_snapshot_index(s, L->diags);
    if (rc) {
        cfg_snapshot_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

static const struct cfg_load_opts *opts_or_default(const struct cfg_load_opts *opts,
                                                   struct cfg_load_opts *defaults)
{
    if (opts)
        return opts;
    cfg_load_opts_default(defaults);
    return defaults;
}

int cfg_load(const char *const *paths, size_t npaths, const struct cfg_load_opts *opts,
             struct cfg_diags *diags, struct cfg_snapshot **out)
{
    struct cfg_load_opts defaults;
    struct cfg_load L;
    int rc = load_begin(&L, opts_or_default(opts, &defaults), diags);
    for (size_t i = 0; !rc && i < npaths; i++)
        rc = cfg_load_collect(&L, paths[i]) == -ENOMEM ? -ENOMEM : 0;
    for (size_t i = 0; !rc && i < L.files.n; i++) {
        if (L.o->cancel && atomic_load(L.o->cancel)) {
            rc = -ECANCELED;
            break;
        }
        load_file(&L, L.files.v[i], file_name(L.files.v[i]));
    }
    return load_finish(&L, rc, out);
}

int cfg_load_buffer(const char *name, const char *buf, size_t len, const struct cfg_load_opts *opts,
                    struct cfg_diags *diags, struct cfg_snapshot **out)
{
    struct cfg_load_opts defaults;
    struct cfg_load L;
    int rc = load_begin(&L, opts_or_default(opts, &defaults), diags);
    if (!rc && len > L.o->max_file_bytes)
        cfg_load_error(&L, name, 0, 0, MSH_FILE, "file larger than %s%s", "the allowed size", "");
    else if (!rc)
        load_buffer(&L, name, buf, len); /* libyaml reads exactly len bytes */
    return load_finish(&L, rc, out);
}
