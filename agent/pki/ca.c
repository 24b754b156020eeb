/* The mesh CA, node intermediates and leaf issuance (see pki.h).
 *
 * A CA dir is Istio's plug-in layout whatever it holds: the mesh root
 * itself (ca-cert = root-cert, the legacy layout where every node can sign
 * any identity), or one node's intermediate from `meshctl ca node`
 * (ca-cert = the node's CA, cert-chain = it and what is above it up to the
 * root). Loading tells the two apart by the node URI SAN, so the agent can
 * warn about the first and authorize peers by node with the second. */
#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define ROOT_TTL  (10L * 365 * 24 * 3600)
#define SKEW_BACK (5L * 60)

struct pki_ca {
    X509 *cert;                  /* signs leaves: the mesh root or a node's intermediate */
    EVP_PKEY *key;               /* cert's key */
    X509 *root;                  /* root-cert.pem: the only trust anchor */
    STACK_OF(X509) * path;       /* sent after each leaf: the CAs between it and the root */
    char node[PKI_NODE_MAX + 1]; /* "" unless cert is a node intermediate */
    char node_td[256];
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    ERR_clear_error();
    return rc;
}

static int add_ext(X509 *issuer, X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -EINVAL;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -EINVAL;
}

/* A fresh certificate: random 128-bit serial, validity from now+nb_s. */
static X509 *cert_new(EVP_PKEY *key, long nb_s, long ttl_s)
{
    X509 *c = X509_new();
    BIGNUM *bn = BN_new();
    unsigned char serial[16];
    if (!c || !bn || RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    if (!BN_bin2bn(serial, sizeof(serial), bn) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) || !X509_set_version(c, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(c), nb_s) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), nb_s + ttl_s) || !X509_set_pubkey(c, key))
        goto fail;
    BN_free(bn);
    return c;
fail:
    BN_free(bn);
    X509_free(c);
    return NULL;
}

static int write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    if (fd == -1)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -errno;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

int pki_ca_init_dir(const char *dir, const char *trust_domain, bool force, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/ca-key.pem", dir);
    if (!force && access(path, F_OK) == 0)
        return fail(err, errlen, -EEXIST, "%s exists: refusing to replace a mesh CA (--force)",
                    path);
    if (mkdir(dir, 0700) == -1 && errno != EEXIST)
        return fail(err, errlen, -errno, "cannot create %s", dir);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *c = key ? cert_new(key, -SKEW_BACK, ROOT_TTL) : NULL;
    int rc = -EINVAL;
    if (!c)
        goto out;
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)trust_domain, -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"meshd root CA", -1,
                               -1, 0);
    if (!X509_set_issuer_name(c, name) ||
        add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext(c, c, NID_subject_key_identifier, "hash") || !X509_sign(c, key, EVP_sha256()))
        goto out;
    /* Istio's plug-in layout: the root signs directly, so the intermediate
     * (ca-cert), the root and the chain are the same certificate. */
    if ((rc = write_pem(dir, "ca-key.pem", NULL, key)) ||
        (rc = write_pem(dir, "ca-cert.pem", c, NULL)) ||
        (rc = write_pem(dir, "root-cert.pem", c, NULL)) ||
        (rc = write_pem(dir, "cert-chain.pem", c, NULL)))
        goto out;
    rc = 0;
out:
    if (rc)
        snprintf(err, errlen, "cannot create the mesh CA in %s: %s", dir,
                 rc == -EINVAL ? "OpenSSL failed" : strerror(-rc));
    ERR_clear_error();
    X509_free(c);
    EVP_PKEY_free(key);
    return rc;
}

static X509 *read_cert(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return c;
}

/* Every certificate of a PEM file (cert-chain.pem); NULL when absent. */
static STACK_OF(X509) * read_certs(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *c;
    while (sk && (c = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            break;
        }
    ERR_clear_error(); /* the read that ended the loop */
    fclose(f);
    return sk;
}

static bool self_signed(X509 *c)
{
    return X509_check_issued(c, c) == X509_V_OK;
}

static int append_pem(const char *dir, const char *name, X509 *cert)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "ae");
    if (!f)
        return -errno;
    int ok = PEM_write_X509(f, cert);
    return fclose(f) == 0 && ok ? 0 : -EIO;
}

int pki_ca_init_node(const char *mesh_dir, const char *node, const char *trust_domain, long ttl_s,
                     const char *out_dir, bool force, char *err, size_t errlen)
{
    char path[512], uri[PKI_ID_MAX + 8], cn[PKI_NODE_MAX + 32];
    if (!pki_node_name_valid(node))
        return fail(err, errlen, -EINVAL, "\"%s\" is not a Kubernetes node name", node);
    snprintf(path, sizeof(path), "%s/ca-key.pem", out_dir);
    if (!force && access(path, F_OK) == 0)
        return fail(err, errlen, -EEXIST, "%s exists: refusing to replace a node CA (--force)",
                    path);
    struct pki_ca *mesh;
    int rc = pki_ca_load(mesh_dir, &mesh, err, errlen);
    if (rc)
        return rc;
    if (mesh->node[0]) {
        pki_ca_free(mesh);
        return fail(err, errlen, -EINVAL,
                    "%s is a node CA: node CAs are signed by the mesh CA (pathlen:0)", mesh_dir);
    }
    if (mkdir(out_dir, 0700) == -1 && errno != EEXIST) {
        pki_ca_free(mesh);
        return fail(err, errlen, -errno, "cannot create %s", out_dir);
    }
    snprintf(uri, sizeof(uri), "URI:spiffe://%s/meshd/node/%s", trust_domain, node);
    snprintf(cn, sizeof(cn), "meshd node CA %s", node);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *c = key ? cert_new(key, -SKEW_BACK, ttl_s + SKEW_BACK) : NULL;
    rc = -EINVAL;
    if (!c)
        goto out;
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)trust_domain, -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    /* pathlen:0: a node signs workload leaves, never another CA; the URI
     * SAN names the node, which peers hold every identity it signs to. */
    if (!X509_set_issuer_name(c, X509_get_subject_name(mesh->cert)) ||
        add_ext(mesh->cert, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        add_ext(mesh->cert, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext(mesh->cert, c, NID_subject_key_identifier, "hash") ||
        add_ext(mesh->cert, c, NID_authority_key_identifier, "keyid:always") ||
        add_ext(mesh->cert, c, NID_subject_alt_name, uri) || !X509_sign(c, mesh->key, EVP_sha256()))
        goto out;
    /* cert-chain.pem: the node CA, then the mesh CA's own chain (which
     * ends at the root; just the root in the `ca init` layout). */
    if ((rc = write_pem(out_dir, "ca-key.pem", NULL, key)) ||
        (rc = write_pem(out_dir, "ca-cert.pem", c, NULL)) ||
        (rc = write_pem(out_dir, "root-cert.pem", mesh->root, NULL)) ||
        (rc = write_pem(out_dir, "cert-chain.pem", c, NULL)))
        goto out;
    for (int i = 0; i < sk_X509_num(mesh->path); i++)
        if ((rc = append_pem(out_dir, "cert-chain.pem", sk_X509_value(mesh->path, i))))
            goto out;
    rc = append_pem(out_dir, "cert-chain.pem", mesh->root);
out:
    if (rc)
        snprintf(err, errlen, "cannot create the node CA in %s: %s", out_dir,
                 rc == -EINVAL ? "OpenSSL failed" : strerror(-rc));
    ERR_clear_error();
    X509_free(c);
    EVP_PKEY_free(key);
    pki_ca_free(mesh);
    return rc;
}

/* The path to send after leaves (cert-chain.pem without the root: a peer
 * has the root), checked to lead from ca-cert to root-cert. */
static int load_path(struct pki_ca *ca, const char *dir, char *err, size_t errlen)
{
    STACK_OF(X509) *all = read_certs(dir, "cert-chain.pem");
    ca->path = sk_X509_new_null();
    if (!ca->path) {
        sk_X509_pop_free(all, X509_free);
        return -ENOMEM;
    }
    /* Istio's cert-chain starts with ca-cert and ends with the root;
     * `ca init` dirs of old may lack it (then ca-cert is the root). */
    for (int i = 0; all && i < sk_X509_num(all); i++) {
        X509 *c = sk_X509_value(all, i);
        if (self_signed(c) || !sk_X509_push(ca->path, c))
            continue;
        X509_up_ref(c);
    }
    sk_X509_pop_free(all, X509_free);
    if (!self_signed(ca->cert) &&
        (sk_X509_num(ca->path) == 0 || X509_cmp(sk_X509_value(ca->path, 0), ca->cert) != 0))
        return fail(err, errlen, -EINVAL, "%s/cert-chain.pem does not start with ca-cert.pem", dir);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    int ok = store && vctx && X509_STORE_add_cert(store, ca->root) &&
             X509_STORE_CTX_init(vctx, store, ca->cert, ca->path) && X509_verify_cert(vctx) == 1;
    int vr = vctx ? X509_STORE_CTX_get_error(vctx) : X509_V_ERR_UNSPECIFIED;
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    if (!ok) {
        snprintf(err, errlen, "%s: ca-cert.pem does not chain to root-cert.pem: %s", dir,
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
        return -EINVAL;
    }
    return 0;
}

int pki_ca_load(const char *dir, struct pki_ca **out, char *err, size_t errlen)
{
    char path[512];
    struct pki_ca *ca = calloc(1, sizeof(*ca));
    if (!ca)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/ca-key.pem", dir);
    FILE *f = fopen(path, "re");
    ca->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ca->cert = read_cert(dir, "ca-cert.pem");
    ca->root = read_cert(dir, "root-cert.pem");
    /* A dir without root-cert.pem is the mesh root alone. */
    if (!ca->root && ca->cert && self_signed(ca->cert) && X509_up_ref(ca->cert))
        ca->root = ca->cert;
    int rc = 0;
    if (!ca->key)
        rc = fail(err, errlen, -ENOENT, "%s/ca-key.pem: missing or not a PEM private key", dir);
    else if (!ca->cert)
        rc = fail(err, errlen, -ENOENT, "%s/ca-cert.pem: missing or not a PEM certificate", dir);
    else if (!ca->root)
        rc = fail(err, errlen, -ENOENT, "%s/root-cert.pem: missing or not a PEM certificate", dir);
    else if (X509_check_private_key(ca->cert, ca->key) != 1)
        rc = fail(err, errlen, -EINVAL, "%s: ca-key.pem does not match ca-cert.pem", dir);
    else if (X509_check_ca(ca->cert) < 1)
        rc = fail(err, errlen, -EINVAL, "%s/ca-cert.pem is not a CA certificate", dir);
    else if (X509_cmp_current_time(X509_get0_notAfter(ca->cert)) <= 0 ||
             X509_cmp_current_time(X509_get0_notBefore(ca->cert)) >= 0)
        rc = fail(err, errlen, -EINVAL, "%s/ca-cert.pem is outside its validity period", dir);
    else
        rc = load_path(ca, dir, err, errlen);
    char id[PKI_ID_MAX];
    if (!rc && pki_cert_spiffe_id(ca->cert, id, sizeof(id)) == 0 &&
        pki_node_id_parse(id, ca->node_td, sizeof(ca->node_td), ca->node, sizeof(ca->node)) != 0)
        ca->node[0] = '\0';
    if (rc) {
        pki_ca_free(ca);
        return rc;
    }
    *out = ca;
    return 0;
}

void pki_ca_free(struct pki_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    X509_free(ca->root);
    sk_X509_pop_free(ca->path, X509_free);
    EVP_PKEY_free(ca->key);
    free(ca);
}

X509 *pki_ca_root(const struct pki_ca *ca)
{
    return ca->root;
}

const char *pki_ca_node(const struct pki_ca *ca, const char **trust_domain)
{
    if (trust_domain)
        *trust_domain = ca->node_td;
    return ca->node[0] ? ca->node : NULL;
}

STACK_OF(X509) * pki_ca_path(const struct pki_ca *ca)
{
    return ca->path;
}

int pki_issue(const struct pki_ca *ca, const char *trust_domain, const char *ns, const char *sa,
              long not_before_s, long ttl_s, struct pki_cert **out)
{
    char id[PKI_ID_MAX], san[PKI_ID_MAX + 8], td[128], pns[64], psa[254];
    if (snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", trust_domain, ns, sa) >=
            (int)sizeof(id) ||
        pki_spiffe_parse(id, td, sizeof(td), pns, sizeof(pns), psa, sizeof(psa)) != 0)
        return -EINVAL;
    /* No leaf outlives its CA (a node CA lives a month): it would stop
     * verifying before its renewal is due. */
    int days, secs;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca->cert)) == 1) {
        long left = (long)days * 86400 + secs;
        if (left > 0 && not_before_s + ttl_s > left)
            ttl_s = left - not_before_s;
    }
    struct pki_cert *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return -ENOMEM;
    pc->refs = 1;
    snprintf(pc->spiffe_id, sizeof(pc->spiffe_id), "%s", id);
    snprintf(san, sizeof(san), "URI:%s", id);
    pc->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    pc->leaf = pc->key ? cert_new(pc->key, not_before_s - SKEW_BACK, ttl_s + SKEW_BACK) : NULL;
    /* Exactly the CA's end, for the second that may have passed since. */
    const ASN1_TIME *ca_end = X509_get0_notAfter(ca->cert);
    if (!pc->leaf ||
        (ASN1_TIME_compare(X509_get0_notAfter(pc->leaf), ca_end) > 0 &&
         !X509_set1_notAfter(pc->leaf, ca_end)) ||
        !X509_set_issuer_name(pc->leaf, X509_get_subject_name(ca->cert)) ||
        add_ext(ca->cert, pc->leaf, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(ca->cert, pc->leaf, NID_key_usage, "critical,digitalSignature,keyAgreement") ||
        add_ext(ca->cert, pc->leaf, NID_ext_key_usage, "serverAuth,clientAuth") ||
        add_ext(ca->cert, pc->leaf, NID_subject_alt_name, san) ||
        add_ext(ca->cert, pc->leaf, NID_authority_key_identifier, "keyid:always") ||
        !X509_sign(pc->leaf, ca->key, EVP_sha256())) {
        ERR_clear_error();
        pki_cert_unref(pc);
        return -EINVAL;
    }
    time_t now = time(NULL);
    pc->not_before = now + not_before_s - SKEW_BACK;
    pc->not_after = now + not_before_s + ttl_s;
    pc->issued_at = now + not_before_s;
    *out = pc;
    return 0;
}

struct pki_cert *pki_cert_ref(struct pki_cert *c)
{
    c->refs++;
    return c;
}

void pki_cert_unref(struct pki_cert *c)
{
    if (!c || --c->refs > 0)
        return;
    X509_free(c->leaf);
    EVP_PKEY_free(c->key);
    free(c);
}

bool pki_cert_needs_renewal(const struct pki_cert *c, time_t now)
{
    return now >= c->issued_at + (c->not_after - c->issued_at) / 2;
}
