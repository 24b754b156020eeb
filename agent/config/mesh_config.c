/* MeshConfig's tracing providers (see mesh_config.h), read with the
 * bounded YAML reader: one document, fields checked as Istio's schema
 * types them (a port 1..65535, a path starting with '/', a duration). */
#include "config/mesh_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"
#include "config/yaml.h"

#define MESH_CONFIG_MAX_BYTES (1u << 20)

struct mc_parse {
    struct mesh_config *out;
    char *err;
    size_t errlen;
};

/* The error at `at` (line:column first), as -EINVAL. Not variadic:
 * the three messages with a value format it first. */
static int fail(struct mc_parse *p, const struct ynode *at, const char *msg)
{
    if (at)
        snprintf(p->err, p->errlen, "%u:%u: %s", at->line, at->col, msg);
    else
        snprintf(p->err, p->errlen, "%s", msg);
    return -EINVAL;
}

/* A scalar copied into buf: false (and the error set) when it is not one or too long. */
static bool scalar(struct mc_parse *p, const struct ynode *n, const char *what, char *buf,
                   size_t len, int *rc)
{
    if (!n || n->type != YNODE_SCALAR || n->scalar.len == 0 || n->scalar.len >= len) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s: expected a string of 1 to %zu characters", what, len - 1);
        *rc = fail(p, n, msg);
        return false;
    }
    memcpy(buf, n->scalar.s, n->scalar.len + 1);
    return true;
}

static void skip(struct mc_parse *p, const char *name, const char *why)
{
    size_t o = strlen(p->out->skipped);
    snprintf(p->out->skipped + o, sizeof(p->out->skipped) - o, "%s%s (%s)", o ? ", " : "", name,
             why);
}

static int otel_provider(struct mc_parse *p, const struct ynode *otel,
                         struct mesh_trace_provider *t)
{
    int rc = 0;
    if (!scalar(p, ymap_get(otel, "service"), "opentelemetry.service", t->service,
                sizeof(t->service), &rc))
        return rc;
    const struct ynode *port = ymap_get(otel, "port");
    char *end = NULL;
    unsigned long v = port && port->type == YNODE_SCALAR ? strtoul(port->scalar.s, &end, 10) : 0;
    if (!end || *end || v == 0 || v > 65535)
        return fail(p, port ? port : otel, "opentelemetry.port: expected 1..65535");
    t->port = (uint16_t)v;
    const struct ynode *http = ymap_get(otel, "http");
    snprintf(t->path, sizeof(t->path), "/v1/traces");
    const struct ynode *path = ymap_get(http, "path");
    if (path && !ynode_is_null(path)) {
        if (!scalar(p, path, "opentelemetry.http.path", t->path, sizeof(t->path), &rc))
            return rc;
        if (t->path[0] != '/' || strpbrk(t->path, " \t\r\n"))
            return fail(p, path, "opentelemetry.http.path: expected an absolute path");
    }
    const struct ynode *timeout = ymap_get(http, "timeout");
    uint64_t ns;
    if (timeout && !ynode_is_null(timeout)) {
        if (timeout->type != YNODE_SCALAR || cfg_parse_duration(timeout->scalar.s, &ns) != 0 ||
            ns < 1000000 || ns > 600ull * 1000000000)
            return fail(p, timeout, "opentelemetry.http.timeout: expected a duration, 1ms..10m");
        t->timeout_ms = (uint32_t)(ns / 1000000);
    }
    return 0;
}

static int providers(struct mc_parse *p, const struct ynode *list)
{
    if (!list || ynode_is_null(list))
        return 0;
    if (list->type != YNODE_SEQ)
        return fail(p, list, "extensionProviders: expected a list");
    for (size_t i = 0; i < list->seq.n; i++) {
        const struct ynode *e = list->seq.v[i];
        struct mesh_trace_provider t = {0};
        int rc = 0;
        if (!scalar(p, ymap_get(e, "name"), "extensionProviders[].name", t.name, sizeof(t.name),
                    &rc))
            return rc;
        for (size_t j = 0; j < p->out->ntracing; j++) {
            if (strcmp(p->out->tracing[j].name, t.name) == 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "extensionProviders: \"%s\" named twice", t.name);
                return fail(p, e, msg);
            }
        }
        const struct ynode *otel = ymap_get(e, "opentelemetry");
        if (!otel) {
            skip(p, t.name, "not opentelemetry");
            continue;
        }
        if (!ymap_get(otel, "http")) {
            skip(p, t.name, "OTLP over gRPC: meshd exports OTLP/HTTP");
            continue;
        }
        if ((rc = otel_provider(p, otel, &t)) != 0)
            return rc;
        if (p->out->ntracing == MESH_TRACE_PROVIDERS_MAX) {
            skip(p, t.name, "too many providers");
            continue;
        }
        p->out->tracing[p->out->ntracing++] = t;
    }
    return 0;
}

static int mesh_doc(struct mc_parse *p, const struct ynode *root)
{
    if (root && root->type != YNODE_MAP)
        return fail(p, root, "expected a mapping (MeshConfig)");
    int rc = providers(p, ymap_get(root, "extensionProviders"));
    const struct ynode *dflt = ymap_get(ymap_get(root, "defaultProviders"), "tracing");
    if (rc == 0 && dflt && dflt->type == YNODE_SEQ && dflt->seq.n)
        scalar(p, dflt->seq.v[0], "defaultProviders.tracing[0]", p->out->default_tracing,
               sizeof(p->out->default_tracing), &rc);
    return rc;
}

/* The first document of buf: a MeshConfig, or a ConfigMap carrying one
 * as text in data.mesh (depth bounds the nesting to one). */
static int parse(struct mc_parse *p, const char *buf, size_t len, int depth)
{
    struct ylimits lim = YLIMITS_DEFAULT;
    lim.max_doc_bytes = MESH_CONFIG_MAX_BYTES;
    lim.max_nodes = 20000;
    struct yreader r;
    struct arena a;
    struct ydoc doc = {0};
    yreader_init(&r, buf, len, &lim);
    arena_init(&a, 16u << 20);
    int rc = yreader_next(&r, &a, &doc);
    if (rc < 0) {
        snprintf(p->err, p->errlen, "%u:%u: YAML: %s", r.err_line, r.err_col, r.err);
        rc = -EINVAL;
    } else if (yscalar_is(ymap_get(doc.root, "kind"), "ConfigMap")) {
        const struct ynode *mesh = ymap_get(ymap_get(doc.root, "data"), "mesh");
        if (depth > 0 || !mesh || mesh->type != YNODE_SCALAR)
            rc = fail(p, doc.root, "a ConfigMap without data.mesh text");
        else
            rc = parse(p, mesh->scalar.s, mesh->scalar.len, depth + 1);
    } else {
        rc = mesh_doc(p, doc.root);
    }
    arena_free(&a);
    yreader_fini(&r);
    return rc;
}

int mesh_config_parse(const char *buf, size_t len, struct mesh_config *out, char *err,
                      size_t errlen)
{
    *out = (struct mesh_config){0};
    struct mc_parse p = {.out = out, .err = err, .errlen = errlen};
    err[0] = '\0';
    if (len > MESH_CONFIG_MAX_BYTES)
        return fail(&p, NULL, "larger than 1 MiB");
    return parse(&p, buf, len, 0);
}

int mesh_config_load(const char *path, struct mesh_config *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s", strerror(e));
        return -e;
    }
    char *buf = malloc(MESH_CONFIG_MAX_BYTES + 1);
    size_t len = buf ? fread(buf, 1, MESH_CONFIG_MAX_BYTES + 1, f) : 0;
    int rc;
    if (!buf)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = -EIO;
    else
        rc = mesh_config_parse(buf, len, out, err, errlen);
    if (rc == -ENOMEM || rc == -EIO)
        snprintf(err, errlen, "%s", strerror(-rc));
    fclose(f);
    free(buf);
    return rc;
}
