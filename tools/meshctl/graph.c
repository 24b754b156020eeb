/* The service graph from two metric scrapes (see graph.h): deltas per
 * series, accumulated per edge and per reporter, rendered as JSON. */
#include "graph.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 300

enum metric { M_REQUESTS, M_DURATION, M_SENT, M_RECEIVED, M_OPENED, M_FAILED, M__COUNT };

static const char *const metric_names[M__COUNT] = {
    [M_REQUESTS] = "istio_requests_total",
    [M_DURATION] = "istio_request_duration_milliseconds_bucket",
    [M_SENT] = "istio_tcp_sent_bytes_total",
    [M_RECEIVED] = "istio_tcp_received_bytes_total",
    [M_OPENED] = "istio_tcp_connections_opened_total",
    [M_FAILED] = "istio_tcp_connections_failed_total",
};

struct acc { /* one reporter's view of one edge: d = delta, t = total */
    double req_t, req_d, err_t, err_d, den_t, den_d;
    double bytes_t, bytes_d, open_t, open_d, fail_t, fail_d;
    double mtls_t, traffic_t; /* requests and connections, mutual_tls of them */
    double le[GRAPH_MAX_BUCKETS], bucket_d[GRAPH_MAX_BUCKETS];
    size_t nb;
    bool seen; /* any sample of this reporter */
};

struct edge {
    char src[ID_MAX], dst[ID_MAX];
    bool http, tcp;
    struct acc rep[2]; /* 0: reporter source, 1: destination */
};

struct node {
    char id[ID_MAX];
    const char *type;
    char ns[PROM_MAX_LABEL_LEN], name[PROM_MAX_LABEL_LEN], app[PROM_MAX_LABEL_LEN],
        version[PROM_MAX_LABEL_LEN];
    uint64_t agents; /* bit i: agent i reports it as local (first 64) */
};

struct graph {
    struct edge *edges;
    struct node *nodes;
    size_t nedges, nnodes, dropped;
};

/* ---- matching a series across the two scrapes ---------------------------- */

struct keyed {
    char *key;
    double value;
};

static char *series_key(const struct prom_sample *s)
{
    size_t len = strlen(s->name) + 16;
    for (size_t i = 0; i < s->nlabels; i++)
        len += strlen(s->labels[i].name) + strlen(s->labels[i].value) + 2;
    char *k = malloc(len), *p = k;
    if (!k)
        return NULL;
    p += sprintf(p, "%d\x1f%s", s->origin, s->name);
    for (size_t i = 0; i < s->nlabels; i++)
        p += sprintf(p, "\x1f%s\x1e%s", s->labels[i].name, s->labels[i].value);
    return k;
}

static int keyed_cmp(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* ---- nodes and edges ----------------------------------------------------- */

static struct node *node_get(struct graph *g, const char *id)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].id, id) == 0)
            return &g->nodes[i];
    if (g->nnodes >= GRAPH_MAX_NODES)
        return NULL;
    struct node *n = &g->nodes[g->nnodes++];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    return n;
}

/* The node of one side ("source" or "destination") of a sample. */
static struct node *workload_node(struct graph *g, const struct prom_sample *s, const char *side)
{
    char k[64], ns[PROM_MAX_LABEL_LEN], id[ID_MAX];
    snprintf(k, sizeof(k), "%s_workload", side);
    const char *name = prom_label(s, k);
    snprintf(k, sizeof(k), "%s_workload_namespace", side);
    snprintf(ns, sizeof(ns), "%s", prom_label(s, k));
    bool unknown = !*name || strcmp(name, "unknown") == 0;
    if (unknown)
        snprintf(id, sizeof(id), "unknown");
    else
        snprintf(id, sizeof(id), "wl:%s/%s", ns, name);
    struct node *n = node_get(g, id);
    if (!n || n->type)
        return n;
    n->type = unknown ? "unknown" : "workload";
    snprintf(n->name, sizeof(n->name), "%s", unknown ? "unknown" : name);
    snprintf(n->ns, sizeof(n->ns), "%s", unknown ? "" : ns);
    snprintf(k, sizeof(k), "%s_app", side);
    snprintf(n->app, sizeof(n->app), "%s", prom_label(s, k));
    snprintf(k, sizeof(k), "%s_version", side);
    snprintf(n->version, sizeof(n->version), "%s", prom_label(s, k));
    return n;
}

static struct node *service_node(struct graph *g, const struct prom_sample *s)
{
    const char *host = prom_label(s, "destination_service");
    if (!*host || strcmp(host, "unknown") == 0)
        return NULL;
    char id[ID_MAX];
    snprintf(id, sizeof(id), "svc:%s", host);
    struct node *n = node_get(g, id);
    if (n && !n->type) {
        n->type = "service";
        const char *name = prom_label(s, "destination_service_name");
        snprintf(n->name, sizeof(n->name), "%s", *name ? name : host);
        snprintf(n->ns, sizeof(n->ns), "%s", prom_label(s, "destination_service_namespace"));
    }
    return n;
}

static struct edge *edge_get(struct graph *g, const char *src, const char *dst)
{
    for (size_t i = 0; i < g->nedges; i++)
        if (strcmp(g->edges[i].src, src) == 0 && strcmp(g->edges[i].dst, dst) == 0)
            return &g->edges[i];
    if (g->nedges >= GRAPH_MAX_EDGES) {
        g->dropped++;
        return NULL;
    }
    struct edge *e = &g->edges[g->nedges++];
    memset(e, 0, sizeof(*e));
    snprintf(e->src, sizeof(e->src), "%s", src);
    snprintf(e->dst, sizeof(e->dst), "%s", dst);
    return e;
}

static void acc_bucket(struct acc *a, double le, double d)
{
    for (size_t i = 0; i < a->nb; i++)
        if (a->le[i] == le) {
            a->bucket_d[i] += d;
            return;
        }
    if (a->nb < GRAPH_MAX_BUCKETS) {
        a->le[a->nb] = le;
        a->bucket_d[a->nb++] = d;
    }
}

static void acc_add(struct acc *a, enum metric m, const struct prom_sample *s, double d)
{
    double t = s->value;
    a->seen = true;
    bool denied = strcmp(prom_label(s, "response_flags"), "DENY") == 0;
    bool traffic = m == M_REQUESTS || m == M_OPENED;
    if (traffic) {
        a->traffic_t += t;
        if (strcmp(prom_label(s, "connection_security_policy"), "mutual_tls") == 0)
            a->mtls_t += t;
    }
    switch (m) {
    case M_REQUESTS: {
        int code = atoi(prom_label(s, "response_code"));
        bool err = code >= 500 || code == 0;
        a->req_t += t, a->req_d += d;
        a->err_t += err ? t : 0, a->err_d += err ? d : 0;
        a->den_t += denied ? t : 0, a->den_d += denied ? d : 0;
        break;
    }
    case M_DURATION: {
        const char *le = prom_label(s, "le");
        acc_bucket(a, strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL), d);
        break;
    }
    case M_SENT:
    case M_RECEIVED:
        a->bytes_t += t, a->bytes_d += d;
        break;
    case M_OPENED:
        a->open_t += t, a->open_d += d;
        a->den_t += denied ? t : 0, a->den_d += denied ? d : 0;
        break;
    case M_FAILED:
        a->fail_t += t, a->fail_d += d;
        break;
    default:
        break;
    }
}

static void add_sample(struct graph *g, enum metric m, const struct prom_sample *s, double d)
{
    const char *reporter = prom_label(s, "reporter");
    int r = strcmp(reporter, "source") == 0 ? 0 : strcmp(reporter, "destination") == 0 ? 1 : -1;
    struct node *src = workload_node(g, s, "source");
    struct node *dst = workload_node(g, s, "destination");
    struct node *svc = service_node(g, s);
    if (r < 0 || !src || !dst) {
        g->dropped += r >= 0;
        return;
    }
    struct node *local = r == 0 ? src : dst;
    if (s->origin >= 0 && s->origin < 64)
        local->agents |= 1ull << s->origin;
    struct edge *e[2] = {edge_get(g, src->id, svc ? svc->id : dst->id),
                         svc ? edge_get(g, svc->id, dst->id) : NULL};
    bool http = m == M_REQUESTS || m == M_DURATION;
    for (int i = 0; i < 2; i++) {
        if (!e[i])
            continue;
        e[i]->http |= http;
        e[i]->tcp |= !http;
        acc_add(&e[i]->rep[r], m, s, d);
    }
}

/* ---- rendering ----------------------------------------------------------- */

double graph_quantile(double q, const double *le, const double *count, size_t n)
{
    if (n == 0 || count[n - 1] <= 0)
        return -1;
    double rank = q * count[n - 1], lo = 0, below = 0;
    for (size_t i = 0; i < n; i++) {
        if (count[i] >= rank) {
            if (isinf(le[i])) /* as Prometheus: the highest finite bound */
                return i > 0 ? le[i - 1] : -1;
            if (count[i] == below)
                return le[i];
            return lo + (le[i] - lo) * (rank - below) / (count[i] - below);
        }
        lo = le[i], below = count[i];
    }
    return le[n - 1];
}

static double acc_p99(const struct acc *a)
{
    double le[GRAPH_MAX_BUCKETS], cnt[GRAPH_MAX_BUCKETS];
    size_t n = a->nb;
    memcpy(le, a->le, n * sizeof(double));
    memcpy(cnt, a->bucket_d, n * sizeof(double));
    for (size_t i = 1; i < n; i++) /* insertion sort by le: n is small */
        for (size_t j = i; j > 0 && le[j - 1] > le[j]; j--) {
            double tl = le[j], tc = cnt[j];
            le[j] = le[j - 1], cnt[j] = cnt[j - 1];
            le[j - 1] = tl, cnt[j - 1] = tc;
        }
    return graph_quantile(0.99, le, cnt, n);
}

static json_t *edge_json(const struct edge *e, double dt)
{
    const struct acc *a = &e->rep[0];
    const char *reporter = "source";
    if (!a->seen)
        a = &e->rep[1], reporter = "destination";
    double per = dt > 0 ? 1.0 / dt : 0;
    double p99 = acc_p99(a);
    /* Only the destination knows its policy denied a request (the source
     * sees a 403): denials are the larger of the two reporters'. */
    const struct acc *d = e->rep[1].den_t > a->den_t ? &e->rep[1] : a;
    json_t *o = json_pack("{s:s++,s:s,s:s,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}",
                          "id", e->src, "->", e->dst, "source", e->src, "target", e->dst,
                          "protocol", e->http ? (e->tcp ? "http+tcp" : "http") : "tcp", "reporter",
                          reporter, "rps", a->req_d * per, "errors_ps", a->err_d * per, "denied_ps",
                          d->den_d * per, "error_rate", a->req_d > 0 ? a->err_d / a->req_d : 0.0,
                          "tcp_bytes_ps", a->bytes_d * per, "tcp_conns_ps", a->open_d * per,
                          "tcp_failed_ps", a->fail_d * per, "requests_total", a->req_t,
                          "errors_total", a->err_t, "denied_total", d->den_t, "tcp_failed_total",
                          a->fail_t, "mtls", a->traffic_t > 0 ? a->mtls_t / a->traffic_t : 0.0);
    if (o)
        json_object_set_new(o, "p99_ms", p99 >= 0 && dt > 0 ? json_real(p99) : json_null());
    return o;
}

static json_t *node_json(const struct node *n)
{
    json_t *agents = json_array();
    for (int i = 0; i < 64; i++)
        if (n->agents & (1ull << i))
            json_array_append_new(agents, json_integer(i));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "id", n->id, "type", n->type, "name", n->name,
                     "namespace", n->ns, "app", n->app, "version", n->version, "agents", agents);
}

static enum metric metric_of(const char *name)
{
    for (int m = 0; m < M__COUNT; m++)
        if (strcmp(name, metric_names[m]) == 0)
            return (enum metric)m;
    return M__COUNT;
}

json_t *graph_build(const struct prom_set *prev, const struct prom_set *cur, double dt)
{
    struct graph g = {.edges = calloc(GRAPH_MAX_EDGES, sizeof(struct edge)),
                      .nodes = calloc(GRAPH_MAX_NODES, sizeof(struct node))};
    size_t nk = prev && dt > 0 ? prev->n : 0;
    struct keyed *keys = calloc(nk ? nk : 1, sizeof(*keys));
    json_t *out = NULL;
    if (!g.edges || !g.nodes || !keys)
        goto out;
    for (size_t i = 0; i < nk; i++) {
        keys[i].value = prev->v[i].value;
        if (!(keys[i].key = series_key(&prev->v[i])))
            goto out;
    }
    qsort(keys, nk, sizeof(*keys), keyed_cmp);
    for (size_t i = 0; i < cur->n; i++) {
        const struct prom_sample *s = &cur->v[i];
        enum metric m = metric_of(s->name);
        if (m == M__COUNT)
            continue;
        double d = 0;
        if (nk) {
            struct keyed k = {.key = series_key(s)};
            if (!k.key)
                goto out;
            const struct keyed *p = bsearch(&k, keys, nk, sizeof(*keys), keyed_cmp);
            free(k.key);
            d = !p ? s->value : s->value >= p->value ? s->value - p->value : s->value;
        }
        add_sample(&g, m, s, d);
    }
    json_t *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; i < g.nnodes; i++)
        json_array_append_new(nodes, node_json(&g.nodes[i]));
    for (size_t i = 0; i < g.nedges; i++)
        json_array_append_new(edges, edge_json(&g.edges[i], nk ? dt : 0));
    out = json_pack("{s:o,s:o,s:f,s:I}", "nodes", nodes, "edges", edges, "interval_s",
                    nk ? dt : 0.0, "dropped", (json_int_t)g.dropped);
out:
    for (size_t i = 0; keys && i < nk; i++)
        free(keys[i].key);
    free(keys);
    free(g.edges);
    free(g.nodes);
    return out;
}
