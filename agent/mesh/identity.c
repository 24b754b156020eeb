/* Workload identities for enrolled pods (see mesh.h, mesh/internal.h):
 * the SPIFFE certificate each pod gets from this node's CA, renewed at
 * half-life; the local half of the node authorizer (this agent signs only
 * for pods of its node); and the peer verification the HBONE server and
 * the pool run on every handshake (chain, exact identity, node
 * authorizer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/store.h"
#include "core/log.h"
#include "enroll/pod_source.h"
#include "enroll/pods.h"
#include "hbone/pool.h"
#include "mesh/internal.h"

static void identity_free(struct pod_identity *id)
{
    if (!id)
        return;
    SSL_CTX_free(id->server);
    SSL_CTX_free(id->client);
    pki_cert_unref(id->cert);
    free(id);
}

/* The local half of the node authorizer: this agent signs only for pods
 * of its own node. A Pod object the configuration places on another node,
 * or with another service account, gets no certificate from here. Without
 * a Pod object the enrollment (a CNI call on this node) is all there is. */
static int may_sign(const struct mesh *m, const struct pod *pod)
{
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    const struct cfg_pod *p = snap ? cfg_find(snap, CFG_POD, pod->ns, pod->name) : NULL;
    if (!p)
        return 0;
    if (p->node && m->node[0] && strcmp(p->node, m->node) != 0) {
        log_ratelimited(LOG_ERROR, "mesh: not signing for %s/%s: its Pod is on node %s, not %s",
                        pod->ns, pod->name, p->node, m->node);
        return -EPERM;
    }
    if (p->service_account && strcmp(p->service_account, pod->sa) != 0) {
        log_ratelimited(LOG_ERROR,
                        "mesh: not signing %s/%s as service account %s: its Pod runs as %s",
                        pod->ns, pod->name, pod->sa, p->service_account);
        return -EPERM;
    }
    return 0;
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
    if (!pod_source_bound(pod)) {
        /* No certificate for a guess: the pod's traffic is refused until
         * its Pod object says who it is (mesh_identity_rebind). */
        log_warn("mesh: %s/%s has no identity yet (%s): its traffic is refused", pod->ns, pod->name,
                 pod->binding_why);
        pod->identity = NULL;
        return 0;
    }
    int rc = may_sign(m, pod);
    if (rc)
        return rc;
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

void mesh_identity_rebind(void *ctx, struct pod *pod)
{
    struct mesh *m = ctx;
    struct pod_identity *old = pod->identity;
    pod->identity = NULL;
    if (old) { /* pooled sessions with the old certificate take no new streams */
        hbone_pool_drain_src(m->pool, old->cert->spiffe_id);
        hbone_pool_drain_src(m->http_pool, old->cert->spiffe_id);
    }
    identity_free(old);
    if (mesh_identity_attach(m, pod) != 0)
        log_error("mesh: %s/%s: no certificate could be issued; its traffic is refused", pod->ns,
                  pod->name);
}

SSL_CTX *mesh_server_ctx(void *ctx, const struct pod *pod)
{
    const struct pod_identity *id = pod->identity;
    return id ? id->server : NULL;
}

/* Whether node `node` runs ns/sa: a Pod of the configuration there, or,
 * for this node, a pod enrolled here (this agent signed its certificate
 * itself). One hash lookup per handshake; the scan of local pods only for
 * a local identity the configuration does not know. */
static bool node_runs(void *ctx, const char *node, const char *ns, const char *sa)
{
    const struct mesh *m = ctx;
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    if (snap && cfg_pod_identity_on_node(snap, node, ns, sa))
        return true;
    if (strcmp(node, m->node) != 0 || !m->pods)
        return false;
    for (const struct pod *p = pods_first(m->pods); p; p = p->next)
        if (p->identity && strcmp(p->ns, ns) == 0 && strcmp(p->sa, sa) == 0)
            return true;
    return false;
}

/* The chain to the root and the exact identity, then the node authorizer. */
static int verify_peer(struct mesh *m, SSL *ssl, const char *expected, char *id, size_t idlen,
                       char *why, size_t whylen)
{
    char node[PKI_NODE_MAX + 1];
    int rc = pki_verify_peer(ssl, m->trust_domain, expected, id, idlen, why, whylen);
    if (rc == 0)
        rc = pki_authorize_node(ssl, m->trust_domain, id, node_runs, m, node, sizeof(node), why,
                                whylen);
    return rc;
}

int mesh_verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen)
{
    return verify_peer(ctx, ssl, NULL, id, idlen, why, whylen);
}

int mesh_verify_server(void *ctx, SSL *ssl, const char *expected, char *why, size_t len)
{
    char id[PKI_ID_MAX];
    return verify_peer(ctx, ssl, expected, id, sizeof(id), why, len);
}

bool mesh_pod_certificate(const struct pod *pod, const char **spiffe_id, long *not_after)
{
    const struct pod_identity *id = pod->identity;
    if (!id)
        return false;
    *spiffe_id = id->cert->spiffe_id;
    *not_after = (long)id->cert->not_after;
    return true;
}

int mesh_identity_init(struct mesh *m, const struct mesh_opts *opts)
{
    char err[256];
    snprintf(m->trust_domain, sizeof(m->trust_domain), "%s", opts->trust_domain);
    m->cert_ttl_s = opts->cert_ttl_s > 0 ? opts->cert_ttl_s : PKI_DEFAULT_TTL;
    snprintf(m->node, sizeof(m->node), "%s", opts->node ? opts->node : "");
    int rc = pki_ca_load(opts->ca_dir, &m->ca, err, sizeof(err));
    if (rc) {
        log_error("mesh: %s", err);
        return rc;
    }
    const char *ca_td, *ca_node = pki_ca_node(m->ca, &ca_td);
    if (!ca_node) {
        log_warn("mesh: %s holds the mesh CA key: this node can mint every identity in the mesh; "
                 "give it a node CA (meshctl ca node %s --ca-dir MESH_CA OUT)",
                 opts->ca_dir, m->node[0] ? m->node : "NODE");
    } else if (strcmp(ca_node, m->node) != 0 || strcmp(ca_td, m->trust_domain) != 0) {
        /* Its leaves would be refused by every peer: say so now. */
        log_error("mesh: %s is the CA of node %s (trust domain %s), not of node %s (%s)",
                  opts->ca_dir, ca_node, ca_td, m->node, m->trust_domain);
        mesh_identity_deinit(m);
        return -EINVAL;
    }
    log_info("mesh: CA %s loaded (%s%s), trust domain %s", opts->ca_dir,
             ca_node ? "node CA of " : "the mesh CA", ca_node ? ca_node : "", m->trust_domain);
    return 0;
}

void mesh_identity_deinit(struct mesh *m)
{
    pki_ca_free(m->ca);
    m->ca = NULL;
}

/* Renewal at half-life: a fresh certificate and TLS contexts swapped into
 * the pod's slot. */
void mesh_identity_renew(struct mesh *m, time_t now)
{
    for (const struct pod *p = m->pods ? pods_first(m->pods) : NULL; p; p = p->next) {
        struct pod_identity *old = p->identity;
        if (!old || !pki_cert_needs_renewal(old->cert, now))
            continue;
        /* A pod the configuration moved elsewhere keeps the certificate
         * it has until it expires, and gets no new one from this node. */
        struct pod_identity *fresh = may_sign(m, p) == 0 ? identity_issue(m, p) : NULL;
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
        hbone_pool_drain_src(m->http_pool, old->cert->spiffe_id);
        identity_free(old);
        m->renewals++;
        log_info("mesh: renewed %s (valid until %ld)", fresh->cert->spiffe_id,
                 (long)fresh->cert->not_after);
    }
}
