/* Identities and HBONE for enrolled pods (see mesh.h). */
#include "mesh/mesh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/addr.h"
#include "core/log.h"
#include "enroll/pods.h"
#include "hbone/pool.h"
#include "pki/pki.h"
#include "proxy/hbone_inbound.h"
#include "proxy/outbound.h"

#define HANDSHAKE_TIMEOUT_NS (10ull * 1000000000ull)
#define IDLE_TIMEOUT_NS      (60ull * 1000000000ull)

struct mesh {
    struct loop *loop; /* borrowed */
    struct pods *pods; /* borrowed */
    void *outbound;    /* borrowed */
    struct pki_ca *ca;
    char trust_domain[128];
    long cert_ttl_s;
    struct hbone_pool *pool;
    struct hbone_inbound *server;
    uint64_t renewals;
};

/* A pod's workload identity: its certificate and the two TLS contexts
 * made from it. Replaced whole at renewal; SSL objects of open connections
 * hold their own references to the old ones. */
struct pod_identity {
    struct pki_cert *cert;
    SSL_CTX *server, *client;
};

static void identity_free(struct pod_identity *id)
{
    if (!id)
        return;
    SSL_CTX_free(id->server);
    SSL_CTX_free(id->client);
    pki_cert_unref(id->cert);
    free(id);
}

static struct pod_identity *identity_issue(struct mesh *m, const struct pod *pod)
{
    struct pod_identity *id = calloc(1, sizeof(*id));
    if (!id || pki_issue(m->ca, m->trust_domain, pod->ns, pod->sa, 0, m->cert_ttl_s, &id->cert))
        goto fail;
    id->server = pki_tls_ctx(m->ca, id->cert, true);
    id->client = pki_tls_ctx(m->ca, id->cert, false);
    if (!id->server || !id->client)
        goto fail;
    return id;
fail:
    identity_free(id);
    return NULL;
}

int mesh_identity_attach(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    struct pod_identity *id = identity_issue(m, pod);
    if (!id)
        return -ENOMEM;
    pod->identity = id;
    log_info("mesh: %s/%s is %s (certificate valid until %ld)", pod->ns, pod->name,
             id->cert->spiffe_id, (long)id->cert->not_after);
    return 0;
}

void mesh_identity_detach(void *ctx, struct pod *pod)
{
    identity_free(pod->identity);
    pod->identity = NULL;
}

/* ---- the HBONE server's view of identities ---- */

static SSL_CTX *server_ctx(void *ctx, const struct pod *pod)
{
    const struct pod_identity *id = pod->identity;
    return id ? id->server : NULL;
}

static int verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen)
{
    struct mesh *m = ctx;
    return pki_verify_peer(ssl, m->trust_domain, NULL, id, idlen, why, whylen);
}

static int verify_server(void *ctx, SSL *ssl, const char *expected, char *why, size_t len)
{
    struct mesh *m = ctx;
    char id[PKI_ID_MAX];
    return pki_verify_peer(ssl, m->trust_domain, expected, id, sizeof(id), why, len);
}

static void pool_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                             const struct hbone_stream_stats *stats)
{
    struct mesh *m = ctx;
    outbound_on_stream_done(m->outbound, st, stream_ctx, err, stats);
}

int mesh_hbone_attach(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    return hbone_inbound_attach_pod(m->server, pod);
}

void mesh_hbone_detach(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    hbone_inbound_detach_pod(m->server, pod);
}

int mesh_new(struct loop *loop, struct conns *conns, const struct mesh_opts *opts,
             struct mesh **out)
{
    char err[256];
    struct mesh *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    snprintf(m->trust_domain, sizeof(m->trust_domain), "%s", opts->trust_domain);
    m->cert_ttl_s = opts->cert_ttl_s > 0 ? opts->cert_ttl_s : PKI_DEFAULT_TTL;
    int rc = pki_ca_load(opts->ca_dir, &m->ca, err, sizeof(err));
    if (rc) {
        log_error("mesh: %s", err);
        free(m);
        return rc;
    }
    struct hbone_pool_opts po = {.mark = opts->mark,
                                 .max_streams = HBONE_MAX_STREAMS,
                                 .idle_timeout_ns = IDLE_TIMEOUT_NS,
                                 .handshake_timeout_ns = HANDSHAKE_TIMEOUT_NS,
                                 .verify_server = verify_server,
                                 .verify_ctx = m,
                                 .on_stream_done = pool_stream_done,
                                 .stream_ctx = m};
    struct hbone_inbound_opts io = {.port = MESHD_PORT_HBONE,
                                    .mark = opts->mark,
                                    .handshake_timeout_ns = HANDSHAKE_TIMEOUT_NS,
                                    .idle_timeout_ns = IDLE_TIMEOUT_NS,
                                    .server_ctx = server_ctx,
                                    .verify_client = verify_client,
                                    .ctx = m};
    if ((rc = hbone_pool_new(loop, &po, &m->pool)) != 0 ||
        (rc = hbone_inbound_new(loop, conns, &io, &m->server)) != 0) {
        mesh_free(m);
        return rc;
    }
    log_info("mesh: CA %s loaded, trust domain %s", opts->ca_dir, m->trust_domain);
    *out = m;
    return 0;
}

void mesh_free(struct mesh *m)
{
    if (!m)
        return;
    hbone_pool_free(m->pool);
    hbone_inbound_free(m->server);
    pki_ca_free(m->ca);
    free(m);
}

void mesh_set_pods(struct mesh *m, struct pods *pods)
{
    m->pods = pods;
}

void mesh_get_stats(const struct mesh *m, struct mesh_stats *st)
{
    struct hbone_pool_stats ps;
    hbone_pool_get_stats(m->pool, &ps);
    st->renewals = m->renewals;
    st->sessions_opened = ps.sessions_opened;
    st->sessions_reused = ps.sessions_reused;
    st->sessions = ps.sessions;
}

struct hbone_pool *mesh_pool(const struct mesh *m)
{
    return m->pool;
}

void mesh_set_outbound(struct mesh *m, void *outbound)
{
    m->outbound = outbound;
}

/* The pod's address of the same family as `like`, for Forwarded. */
static struct meshd_addr pod_addr_like(const struct pod *pod, const struct meshd_addr *like)
{
    for (size_t i = 0; i < pod->nips; i++)
        if (pod->ips[i].family == like->family)
            return pod->ips[i];
    return (struct meshd_addr){0};
}

void mesh_route(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                struct outbound_route *out)
{
    struct mesh *m = ctx;
    const struct pod *dst = m->pods ? pods_find_ip(m->pods, orig_dst) : NULL;
    const struct pod_identity *sid = src->identity;
    if (!dst || !sid || !dst->identity) {
        out->action = OUTBOUND_PASSTHROUGH;
        return;
    }
    out->action = OUTBOUND_HBONE;
    out->target = *orig_dst;
    out->client_ctx = sid->client;
    out->source = pod_addr_like(src, orig_dst);
    snprintf(out->key.src_id, sizeof(out->key.src_id), "%s", sid->cert->spiffe_id);
    int n = snprintf(out->key.dst_id, sizeof(out->key.dst_id), "spiffe://%s/ns/%s/sa/%s",
                     m->trust_domain, dst->ns, dst->sa);
    if (n < 0 || (size_t)n >= sizeof(out->key.dst_id)) {
        /* An identity we cannot express can never be verified: refuse. */
        out->action = OUTBOUND_REFUSE;
        snprintf(out->response_flag, sizeof(out->response_flag), "NR");
        return;
    }
    out->key.dst = *orig_dst;
    out->key.dst.port = htons(MESHD_PORT_HBONE);
}

void mesh_tick(struct mesh *m, uint64_t now_ns)
{
    hbone_pool_expire(m->pool, now_ns);
    hbone_inbound_expire(m->server, now_ns);
    time_t now = time(NULL);
    for (const struct pod *p = m->pods ? pods_first(m->pods) : NULL; p; p = p->next) {
        struct pod_identity *old = p->identity;
        if (!old || !pki_cert_needs_renewal(old->cert, now))
            continue;
        struct pod_identity *fresh = identity_issue(m, p);
        if (!fresh) {
            log_ratelimited(LOG_WARN, "mesh: renewing %s/%s failed; keeping the current one", p->ns,
                            p->name);
            continue;
        }
        /* The registry owns the pod; its identity slot is ours to swap.
         * Open connections keep the contexts their SSL objects reference;
         * pooled sessions with the old certificate take no new streams. */
        ((struct pod *)p)->identity = fresh;
        hbone_pool_drain_src(m->pool, old->cert->spiffe_id);
        identity_free(old);
        m->renewals++;
        log_info("mesh: renewed %s (valid until %ld)", fresh->cert->spiffe_id,
                 (long)fresh->cert->not_after);
    }
}
