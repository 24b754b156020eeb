/* Kubernetes kinds: only the fields meshd uses are decoded; the rest of a
 * Kubernetes object (validated by the API server it came from) is skipped
 * without warnings, unlike Istio specs where an unknown field is a typo. */
#include <string.h>

#include "config/decode.h"

static bool is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}

void decode_namespace(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    (void)d;
    (void)doc;
    (void)out; /* name and labels are all: meta has them */
}

/* IntOrString: a number, a digit string (a name must contain a letter,
 * so "8080" can only mean the number), or a port name. */
static void decode_port_ref(struct cfg_dec *d, const struct ynode *v, const char *field,
                            struct cfg_port_ref *out)
{
    if (ynode_is_null(v))
        return;
    if (v->type == YNODE_SCALAR && v->scalar.len &&
        strspn(v->scalar.s, "0123456789") == v->scalar.len) {
        dec_port(d, v, field, &out->number);
        return;
    }
    if (dec_str(d, v, field, &out->name) && out->name && !cfg_valid_dns_label(out->name)) {
        size_t m = dec_push(d, field);
        dec_error(d, v, "not a port number or an IANA port name: \"%.64s\"", out->name);
        dec_pop(d, m);
    }
}

static void decode_service_port(struct cfg_dec *d, const struct ynode *n,
                                struct cfg_service_port *p)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "name"))
            dec_str(d, v, k, &p->name);
        else if (is(k, "port"))
            dec_port(d, v, k, &p->port);
        else if (is(k, "targetPort"))
            decode_port_ref(d, v, k, &p->target);
        else if (is(k, "protocol"))
            dec_str(d, v, k, &p->protocol);
        else if (is(k, "appProtocol"))
            dec_str(d, v, k, &p->app_protocol);
    }
    if (!p->port)
        dec_error(d, n, "port is required");
}

/* Istio's per-Service visibility: metadata.annotations
 * "networking.istio.io/exportTo", a comma-separated list. */
static void decode_export_annotation(struct cfg_dec *d, const struct ynode *doc,
                                     struct cfg_strs *out)
{
    const struct ynode *v = ymap_get(ymap_get(ymap_get(doc, "metadata"), "annotations"),
                                     "networking.istio.io/exportTo");
    if (!v || v->type != YNODE_SCALAR)
        return;
    size_t n = 1;
    for (const char *c = v->scalar.s; *c; c++)
        n += *c == ',';
    const char **list = arena_array(d->arena, n, sizeof(*list));
    if (!list)
        return;
    size_t k = 0;
    for (const char *c = v->scalar.s; *c;) {
        size_t len = strcspn(c, ",");
        const char *b = c, *e = c + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b && (list[k] = arena_strndup(d->arena, b, (size_t)(e - b))))
            k++;
        c += len + (c[len] == ',');
    }
    *out = (struct cfg_strs){list, k};
}

void decode_service(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_service *s = out;
    decode_export_annotation(d, doc, &s->export_to);
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t mark = dec_push(d, "spec");
    const struct ynode *cluster_ip = NULL, *cluster_ips = NULL;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (is(k, "type")) {
            dec_str(d, v, k, &s->type);
        } else if (is(k, "clusterIP")) {
            cluster_ip = v;
        } else if (is(k, "clusterIPs")) {
            cluster_ips = v;
        } else if (is(k, "selector")) {
            s->selector.set = !ynode_is_null(v);
            dec_labels(d, v, k, &s->selector.match);
        } else if (is(k, "ports")) {
            size_t n;
            struct cfg_service_port *ports = dec_seq(d, v, k, sizeof(*ports), &n);
            size_t m = dec_push(d, k);
            for (size_t j = 0; ports && j < n; j++) {
                size_t m2 = dec_push_index(d, j);
                decode_service_port(d, v->seq.v[j], &ports[j]);
                dec_pop(d, m2);
            }
            dec_pop(d, m);
            s->ports = ports;
            s->nports = n;
        }
    }
    /* clusterIPs (dual stack) supersedes clusterIP; "None" is headless. */
    const struct ynode *ips = cluster_ips ? cluster_ips : NULL;
    if (yscalar_is(cluster_ip, "None") ||
        (cluster_ips && cluster_ips->type == YNODE_SEQ && cluster_ips->seq.n &&
         yscalar_is(cluster_ips->seq.v[0], "None"))) {
        s->headless = true;
    } else if (ips) {
        dec_ips(d, ips, "clusterIPs", &s->cluster_ips);
    } else if (!ynode_is_null(cluster_ip) && !yscalar_is(cluster_ip, "")) {
        struct meshd_addr *a = arena_alloc(d->arena, sizeof(*a));
        if (a && dec_ip(d, cluster_ip, "clusterIP", a)) {
            s->cluster_ips.v = a;
            s->cluster_ips.n = 1;
        }
    }
    dec_pop(d, mark);
}

static void decode_pod_spec(struct cfg_dec *d, const struct ynode *spec, struct cfg_pod *p)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (is(k, "nodeName")) {
            dec_str(d, v, k, &p->node);
        } else if (is(k, "serviceAccountName") ||
                   (is(k, "serviceAccount") && !p->service_account)) {
            dec_str(d, v, k, &p->service_account);
        } else if (is(k, "containers")) {
            size_t n;
            (void)dec_seq(d, v, k, 1, &n);
            size_t total = 0;
            for (size_t j = 0; j < n; j++) {
                const struct ynode *ports = ymap_get(v->seq.v[j], "ports");
                if (ports && ports->type == YNODE_SEQ)
                    total += ports->seq.n;
            }
            struct cfg_container_port *cp =
                total ? arena_array(d->arena, total, sizeof(*cp)) : NULL;
            size_t np = 0;
            size_t m = dec_push(d, k);
            for (size_t j = 0; cp && j < n; j++) {
                size_t m2 = dec_push_index(d, j);
                const struct ynode *ports = ymap_get(v->seq.v[j], "ports");
                size_t m3 = dec_push(d, "ports");
                for (size_t q = 0; ports && ports->type == YNODE_SEQ && q < ports->seq.n; q++) {
                    size_t m4 = dec_push_index(d, q);
                    const struct ynode *pn = ports->seq.v[q];
                    dec_str(d, ymap_get(pn, "name"), "name", &cp[np].name);
                    dec_str(d, ymap_get(pn, "protocol"), "protocol", &cp[np].protocol);
                    if (dec_port(d, ymap_get(pn, "containerPort"), "containerPort", &cp[np].port) &&
                        cp[np].port)
                        np++;
                    dec_pop(d, m4);
                }
                dec_pop(d, m3);
                dec_pop(d, m2);
            }
            dec_pop(d, m);
            p->ports = cp;
            p->nports = np;
        }
    }
}

static void decode_pod_status(struct cfg_dec *d, const struct ynode *status, struct cfg_pod *p)
{
    const struct ynode *pod_ip = NULL, *pod_ips = NULL;
    const char *k;
    const struct ynode *v;
    p->ready = true; /* a manifest without status describes a pod meant to run */
    for (size_t i = 0; dec_each(d, status, &i, &k, &v);) {
        if (is(k, "podIP")) {
            pod_ip = v;
        } else if (is(k, "podIPs")) {
            pod_ips = v;
        } else if (is(k, "phase")) {
            const char *phase = NULL;
            if (dec_str(d, v, k, &phase) && phase && !is(phase, "Running") && !is(phase, "Pending"))
                p->ready = false;
        } else if (is(k, "conditions") && v->type == YNODE_SEQ) {
            for (size_t j = 0; j < v->seq.n; j++) {
                const struct ynode *c = v->seq.v[j];
                if (yscalar_is(ymap_get(c, "type"), "Ready") &&
                    !yscalar_is(ymap_get(c, "status"), "True"))
                    p->ready = false;
            }
        }
    }
    if (pod_ips && pod_ips->type == YNODE_SEQ) {
        /* [{ip: 10.0.0.1}, {ip: fd00::1}] */
        struct meshd_addr *ips = arena_array(d->arena, pod_ips->seq.n + 1, sizeof(*ips));
        size_t n = 0;
        size_t m = dec_push(d, "podIPs");
        for (size_t j = 0; ips && j < pod_ips->seq.n; j++) {
            size_t m2 = dec_push_index(d, j);
            const struct ynode *ip = ymap_get(pod_ips->seq.v[j], "ip");
            if (ip && dec_ip(d, ip, "ip", &ips[n]))
                n++;
            dec_pop(d, m2);
        }
        dec_pop(d, m);
        p->ips.v = ips;
        p->ips.n = n;
    } else if (pod_ips) {
        dec_error(d, pod_ips, "podIPs: expected a list, got %s", ynode_type_name(pod_ips));
    } else if (!ynode_is_null(pod_ip)) {
        struct meshd_addr *a = arena_alloc(d->arena, sizeof(*a));
        if (a && dec_ip(d, pod_ip, "podIP", a)) {
            p->ips.v = a;
            p->ips.n = 1;
        }
    }
}

void decode_pod(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_pod *p = out;
    size_t m = dec_push(d, "spec");
    decode_pod_spec(d, ymap_get(doc, "spec"), p);
    dec_pop(d, m);
    m = dec_push(d, "status");
    decode_pod_status(d, ymap_get(doc, "status"), p);
    dec_pop(d, m);
    if (!p->service_account)
        p->service_account = "default";
}

void decode_deployment(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_deployment *dep = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    dep->replicas = 1;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (is(k, "replicas")) {
            dec_uint(d, v, k, 1000000, &dep->replicas);
        } else if (is(k, "selector")) {
            dec_match_labels(d, v, k, &dep->selector);
        } else if (is(k, "template")) {
            size_t m2 = dec_push(d, k);
            const struct ynode *meta = ymap_get(v, "metadata");
            dec_labels(d, ymap_get(meta, "labels"), "metadata.labels", &dep->template_labels);
            const struct ynode *pspec = ymap_get(v, "spec");
            const char *sa = NULL;
            dec_str(d, ymap_get(pspec, "serviceAccountName"), "spec.serviceAccountName", &sa);
            dep->service_account = sa ? sa : "default";
            dec_pop(d, m2);
        }
    }
    dec_pop(d, m);
}

void decode_secret(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_secret *s = out;
    dec_str(d, ymap_get(doc, "type"), "type", &s->type);
    static const char *const sections[] = {"data", "stringData"};
    for (size_t j = 0; j < 2; j++) {
        const struct ynode *data = ymap_get(doc, sections[j]);
        size_t m = dec_push(d, sections[j]);
        const char *k;
        const struct ynode *v;
        for (size_t i = 0; dec_each(d, data, &i, &k, &v);) {
            if (v->type != YNODE_SCALAR) {
                dec_error(d, v, "%s: expected a string, got %s", k, ynode_type_name(v));
                continue;
            }
            s->has_cert |= is(k, "tls.crt") || is(k, "cert");
            s->has_key |= is(k, "tls.key") || is(k, "key");
            dec_secret_entry(d, sections[j], k, v, s);
        }
        dec_pop(d, m);
    }
}
