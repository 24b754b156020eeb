/* TLS contexts at the edge (see edge_tls.h). */
#include "gateway/edge_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config/config.h"
#include "config/gateway.h"
#include "core/log.h"
#include "route/gateway_route.h"

struct edge_tls {
    int refs;
    struct edge_tls_server servers[EDGE_TLS_MAX_SERVERS];
    size_t n;
    struct edge_tls_mesh mesh; /* ISTIO_MUTUAL: the client verification */
    bool wants_mesh;           /* an ISTIO_MUTUAL server was asked for */
    const X509 *mesh_leaf;     /* the workload certificate its contexts hold */
};

/* What a handshake is tied to (SSL ex_data). */
struct edge_attach {
    struct edge_tls *set; /* a reference */
    uint16_t port;
    const struct edge_tls_server *chosen;
    char peer_id[256]; /* ISTIO_MUTUAL: the client's verified SPIFFE id */
};

static int ex_index = -1;

static void attach_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct edge_attach *a = ptr;
    if (!a)
        return;
    edge_tls_unref(a->set);
    free(a);
}

static int ex_idx(void)
{
    if (ex_index < 0) /* the agent's loop is single-threaded */
        ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, attach_free);
    return ex_index;
}

static int tls_version(const char *v, int dflt)
{
    static const struct {
        const char *name;
        int version;
    } versions[] = {{"TLSV1_0", TLS1_VERSION},
                    {"TLSV1_1", TLS1_1_VERSION},
                    {"TLSV1_2", TLS1_2_VERSION},
                    {"TLSV1_3", TLS1_3_VERSION}};
    for (size_t i = 0; v && i < sizeof(versions) / sizeof(versions[0]); i++)
        if (strcmp(v, versions[i].name) == 0)
            return versions[i].version;
    return dflt; /* unset or TLS_AUTO: Envoy's server defaults */
}

static bool host_matches(const struct edge_tls_server *s, const char *sni)
{
    for (size_t i = 0; i < s->nhosts; i++) {
        if (strcmp(s->hosts[i], "*") == 0)
            return true;
        if (sni && *sni && gw_host_matches(s->hosts[i], sni))
            return true;
    }
    return false;
}

const struct edge_tls_server *edge_tls_select(const struct edge_tls *t, uint16_t port,
                                              const char *sni)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->servers[i].port == port && host_matches(&t->servers[i], sni))
            return &t->servers[i];
    return NULL;
}

SSL_CTX *edge_tls_first_ctx(const struct edge_tls *t, uint16_t port)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->servers[i].port == port)
            return t->servers[i].ctx;
    return NULL;
}

size_t edge_tls_count(const struct edge_tls *t)
{
    return t ? t->n : 0;
}

/* Everything of the chosen server's context that SSL_set_SSL_CTX leaves
 * as it was (it swaps the certificate only). */
static void apply(SSL *ssl, const struct edge_tls_server *s)
{
    SSL_set_SSL_CTX(ssl, s->ctx);
    SSL_set_verify(ssl, s->verify_mode, NULL);
    SSL_set_min_proto_version(ssl, s->min_version);
    SSL_set_max_proto_version(ssl, s->max_version);
    if (s->ciphers[0])
        SSL_set_cipher_list(ssl, s->ciphers);
    if (s->verify_mode != SSL_VERIFY_NONE) {
        SSL_set1_verify_cert_store(ssl, SSL_CTX_get_cert_store(s->ctx));
        STACK_OF(X509_NAME) *names = SSL_dup_CA_list(SSL_CTX_get_client_CA_list(s->ctx));
        if (names)
            SSL_set_client_CA_list(ssl, names);
    }
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct edge_attach *a = SSL_get_ex_data(ssl, ex_idx());
    if (!a)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct edge_tls_server *s = edge_tls_select(a->set, a->port, sni);
    if (!s) {
        log_ratelimited(LOG_INFO,
                        "gateway: port %u: no server for SNI \"%.128s\"; handshake refused",
                        a->port, sni ? sni : "");
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    apply(ssl, s);
    a->chosen = s;
    return SSL_TLSEXT_ERR_OK;
}

int edge_tls_alpn_select(const unsigned char *in, unsigned inlen, const unsigned char **out,
                         unsigned char *outlen)
{
    static const struct {
        const char *name;
        unsigned char len;
    } ours[] = {{"h2", 2}, {"http/1.1", 8}};
    for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++)
        for (unsigned i = 0; i < inlen;) {
            unsigned len = in[i];
            if (len == 0 || i + 1 + len > inlen)
                break; /* malformed: OpenSSL checked it, but stay in bounds */
            if (len == ours[k].len && memcmp(in + i + 1, ours[k].name, len) == 0) {
                *out = in + i + 1;
                *outlen = ours[k].len;
                return 0;
            }
            i += 1 + len;
        }
    return -ENOENT;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    return edge_tls_alpn_select(in, inlen, out, outlen) == 0 ? SSL_TLSEXT_ERR_OK
                                                             : SSL_TLSEXT_ERR_NOACK;
}

/* Certificates of a PEM text: the first is the leaf, the rest its chain. */
static int load_chain(SSL_CTX *ctx, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int rc = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1 ? 0 : -EINVAL;
    X509_free(leaf);
    X509 *x;
    while (rc == 0 && b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            X509_free(x);
            rc = -ENOMEM;
        }
    ERR_clear_error(); /* the end of the text reads as an error */
    BIO_free(b);
    return rc;
}

static int load_key(SSL_CTX *ctx, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    int rc = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1
                 ? 0
                 : -EINVAL;
    EVP_PKEY_free(k);
    BIO_free(b);
    return rc;
}

/* Trusts the CAs of `pem` for client certificates and names them in the
 * CertificateRequest. */
static int load_client_cas(SSL_CTX *ctx, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    size_t n = 0;
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert(store, x) == 1 && SSL_CTX_add_client_CA(ctx, x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(b);
    return n ? 0 : -EINVAL;
}

static const struct cfg_secret *secret(const struct cfg_snapshot *snap, const char *ns,
                                       const char *name, const char *suffix)
{
    char full[320];
    snprintf(full, sizeof(full), "%s%s", name, suffix);
    return cfg_find(snap, CFG_SECRET, ns, full);
}

/* What every terminating server's context has: versions, no resumption,
 * the SNI and ALPN callbacks, ciphers. */
static void setup_ctx(struct edge_tls_server *s, const struct cfg_gateway_server *srv)
{
    s->min_version = tls_version(srv->min_protocol, TLS1_2_VERSION);
    s->max_version = tls_version(srv->max_protocol, TLS1_3_VERSION);
    SSL_CTX_set_min_proto_version(s->ctx, s->min_version);
    SSL_CTX_set_max_proto_version(s->ctx, s->max_version);
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                    SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    /* No resumption at the edge: TLS 1.3's stateful tickets (sent despite
     * SSL_OP_NO_TICKET) could never resume without a cache; not sending
     * them saves two records and their encryption per handshake. */
    SSL_CTX_set_num_tickets(s->ctx, 0);
    SSL_CTX_set_tlsext_servername_callback(s->ctx, on_servername);
    /* HTTP is negotiated only where meshd speaks it: a TLS server's bytes
     * are carried as they are (tcp[] routes), so no ALPN is chosen there,
     * as Envoy's TCP proxy chooses none. Set (or cleared) either way: an
     * ISTIO_MUTUAL context comes from the mesh with HBONE's h2-only one. */
    bool http = !srv->protocol || strcasecmp(srv->protocol, "TLS") != 0;
    SSL_CTX_set_alpn_select_cb(s->ctx, http ? on_alpn : NULL, NULL);
    for (size_t i = 0; i < srv->cipher_suites.n; i++) {
        size_t len = strlen(s->ciphers);
        snprintf(s->ciphers + len, sizeof(s->ciphers) - len, "%s%s", len ? ":" : "",
                 srv->cipher_suites.v[i]);
    }
    /* Istio ignores the invalid names (its validation warned). */
    if (s->ciphers[0] && SSL_CTX_set_cipher_list(s->ctx, s->ciphers) != 1) {
        ERR_clear_error();
        s->ciphers[0] = '\0';
    }
}

/* The server's port, name, hosts and subjectAltNames. */
static void describe(const struct gw_server *gs, struct edge_tls_server *s)
{
    const struct cfg_gateway_server *srv = gs->srv;
    for (size_t i = 0; i < srv->subject_alt_names.n && s->nsans < 8; i++)
        snprintf(s->sans[s->nsans++], sizeof(s->sans[0]), "%s", srv->subject_alt_names.v[i]);
    s->port = gs->listen_port;
    snprintf(s->name, sizeof(s->name), "%s/%s:%s", gs->gw->meta.ns, gs->gw->meta.name,
             srv->port_name ? srv->port_name : "?");
    for (size_t i = 0; i < srv->hosts.n && s->nhosts < EDGE_TLS_MAX_HOSTS; i++) {
        const char *h = strchr(srv->hosts.v[i], '/');
        snprintf(s->hosts[s->nhosts++], sizeof(s->hosts[0]), "%s", h ? h + 1 : srv->hosts.v[i]);
    }
}

static bool istio_mutual(const struct cfg_gateway_server *srv)
{
    return srv->tls_mode && !strcmp(srv->tls_mode, "ISTIO_MUTUAL");
}

/* ISTIO_MUTUAL: the mesh's context (the workload certificate, the mesh
 * CA alone trusted, a client certificate required), made an edge one. */
static const char *build_istio_mutual(const struct edge_tls_mesh *mesh, const struct gw_server *gs,
                                      struct edge_tls_server *s)
{
    if (!mesh || !mesh->server_ctx || !mesh->verify)
        return "ISTIO_MUTUAL needs the mesh's workload identities, which this agent lacks";
    s->ctx = mesh->server_ctx(mesh->ctx, mesh->pod);
    if (!s->ctx)
        return "the gateway pod has no workload certificate (yet)";
    setup_ctx(s, gs->srv);
    s->verify_mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(s->ctx, s->verify_mode, NULL);
    static const unsigned char sid[] = "meshd-gateway-istio";
    SSL_CTX_set_session_id_context(s->ctx, sid, sizeof(sid) - 1);
    s->istio_mutual = true;
    describe(gs, s);
    return NULL;
}

/* One terminating server's context; a reason when it cannot be built. */
static const char *build_server(const struct cfg_snapshot *snap, const char *ns,
                                const struct gw_server *gs, struct edge_tls_server *s)
{
    const struct cfg_gateway_server *srv = gs->srv;
    bool mutual = !strcmp(srv->tls_mode, "MUTUAL") || !strcmp(srv->tls_mode, "OPTIONAL_MUTUAL");
    if (!srv->credential_name)
        return "no credentialName (file certificates are not read at the edge)";
    const struct cfg_secret *sec = secret(snap, ns, srv->credential_name, "");
    if (!sec || !sec->tls_crt || !sec->tls_key)
        return "its credentialName Secret is missing or has no tls.crt/tls.key";
    const char *ca = sec->ca_crt;
    if (mutual && !ca) {
        const struct cfg_secret *cas = secret(snap, ns, srv->credential_name, "-cacert");
        ca = cas ? cas->ca_crt : NULL;
        if (!ca)
            return "MUTUAL without ca.crt in the Secret or a -cacert Secret";
    }
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ctx)
        return "out of memory";
    setup_ctx(s, srv);
    if (load_chain(s->ctx, sec->tls_crt) != 0)
        return "tls.crt holds no usable certificate";
    if (load_key(s->ctx, sec->tls_key) != 0)
        return "tls.key is not the certificate's private key";
    s->verify_mode = SSL_VERIFY_NONE;
    if (mutual) {
        if (load_client_cas(s->ctx, ca) != 0)
            return "ca.crt holds no usable certificate";
        s->verify_mode = SSL_VERIFY_PEER;
        if (!strcmp(srv->tls_mode, "MUTUAL"))
            s->verify_mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(s->ctx, s->verify_mode, NULL);
        static const unsigned char sid[] = "meshd-gateway";
        SSL_CTX_set_session_id_context(s->ctx, sid, sizeof(sid) - 1);
    }
    describe(gs, s);
    return NULL;
}

static bool terminates(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && srv->tls_mode &&
           (!strcmp(srv->tls_mode, "SIMPLE") || !strcmp(srv->tls_mode, "MUTUAL") ||
            !strcmp(srv->tls_mode, "OPTIONAL_MUTUAL") || istio_mutual(srv)) &&
           (!srv->protocol || cfg_gateway_protocol_is_tls(srv->protocol));
}

int edge_tls_build_mesh(const struct cfg_snapshot *snap, const char *ns,
                        const struct gw_server *servers, size_t n, const struct edge_tls_mesh *mesh,
                        struct edge_tls **out)
{
    struct edge_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->refs = 1;
    if (mesh)
        t->mesh = *mesh;
    for (size_t i = 0; i < n && t->n < EDGE_TLS_MAX_SERVERS; i++) {
        if (!terminates(servers[i].srv))
            continue;
        struct edge_tls_server *s = &t->servers[t->n];
        memset(s, 0, sizeof(*s));
        bool im = istio_mutual(servers[i].srv);
        t->wants_mesh |= im;
        const char *why =
            im ? build_istio_mutual(mesh, &servers[i], s) : build_server(snap, ns, &servers[i], s);
        if (why) {
            ERR_clear_error();
            log_warn("gateway: %s/%s port %u (%s%s in %s): %s; not served", servers[i].gw->meta.ns,
                     servers[i].gw->meta.name, servers[i].srv->port,
                     im ? "ISTIO_MUTUAL" : "credentialName ",
                     im                                ? ""
                     : servers[i].srv->credential_name ? servers[i].srv->credential_name
                                                       : "-",
                     ns, why);
            SSL_CTX_free(s->ctx);
            s->ctx = NULL;
            continue;
        }
        if (im)
            t->mesh_leaf = SSL_CTX_get0_certificate(s->ctx);
        t->n++;
    }
    *out = t;
    return 0;
}

int edge_tls_build(const struct cfg_snapshot *snap, const char *ns, const struct gw_server *servers,
                   size_t n, struct edge_tls **out)
{
    return edge_tls_build_mesh(snap, ns, servers, n, NULL, out);
}

bool edge_tls_mesh_stale(const struct edge_tls *t, const X509 *current)
{
    /* The set's contexts hold their leaf: a renewed one is another object. */
    return t && t->wants_mesh && t->mesh.server_ctx && current && current != t->mesh_leaf;
}

struct edge_tls *edge_tls_ref(struct edge_tls *t)
{
    t->refs++;
    return t;
}

void edge_tls_unref(struct edge_tls *t)
{
    if (!t || --t->refs > 0)
        return;
    for (size_t i = 0; i < t->n; i++)
        SSL_CTX_free(t->servers[i].ctx);
    free(t);
}

int edge_tls_attach(struct edge_tls *t, SSL *ssl, uint16_t port)
{
    struct edge_attach *a = calloc(1, sizeof(*a));
    if (!a || SSL_set_ex_data(ssl, ex_idx(), a) != 1) {
        free(a);
        return -ENOMEM;
    }
    a->set = edge_tls_ref(t);
    a->port = port;
    return 0;
}

const struct edge_tls_server *edge_tls_chosen(SSL *ssl)
{
    struct edge_attach *a = SSL_get_ex_data(ssl, ex_idx());
    return a ? a->chosen : NULL;
}

/* One of the certificate's DNS or URI SANs equals `want`. */
static bool has_san(X509 *cert, const char *want)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; names && !found && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_DNS && g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *s =
            g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        found = (size_t)s->length == strlen(want) && memcmp(s->data, want, (size_t)s->length) == 0;
    }
    GENERAL_NAMES_free(names);
    return found;
}

int edge_tls_check_peer(SSL *ssl, char *why, size_t len)
{
    struct edge_attach *a = SSL_get_ex_data(ssl, ex_idx());
    const struct edge_tls_server *s = a ? a->chosen : NULL;
    /* No SNI callback ran (none should): the context it started with. */
    for (size_t i = 0; a && !s && i < a->set->n; i++)
        if (a->set->servers[i].ctx == SSL_get_SSL_CTX(ssl))
            s = &a->set->servers[i];
    if (s && s->istio_mutual) {
        /* The HBONE server's own check, not a second one. */
        const struct edge_tls_mesh *m = &a->set->mesh;
        if (m->verify(m->ctx, ssl, a->peer_id, sizeof(a->peer_id), why, len) != 0) {
            a->peer_id[0] = '\0';
            return -EPERM;
        }
    }
    if (!s || !s->nsans)
        return 0;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) {
        snprintf(why, len, "no client certificate to match subjectAltNames");
        return s->verify_mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT ? -EPERM : 0;
    }
    bool ok = false;
    for (size_t i = 0; i < s->nsans && !ok; i++)
        ok = has_san(peer, s->sans[i]);
    X509_free(peer);
    if (!ok)
        snprintf(why, len, "the client certificate has none of the server's subjectAltNames");
    return ok ? 0 : -EPERM;
}

const char *edge_tls_peer_id(SSL *ssl)
{
    struct edge_attach *a = SSL_get_ex_data(ssl, ex_idx());
    return a ? a->peer_id : "";
}
