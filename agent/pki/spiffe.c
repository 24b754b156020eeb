/* SPIFFE identities, the leaf of pki/ (see pki.h): workload ids
 * (spiffe://<td>/ns/<ns>/sa/<sa>), node ids (spiffe://<td>/meshd/node/<n>)
 * and a certificate's single URI SAN. Strict parsers of peer input; the CA
 * (ca.c) and the verifier (verify.c) both use them, they use neither. */
#include "pki/pki.h"

#include <errno.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "core/k8sname.h"

static int copy_part(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return -EINVAL;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int pki_spiffe_parse(const char *id, char *td, size_t tdlen, char *ns, size_t nslen, char *sa,
                     size_t salen)
{
    static const char scheme[] = "spiffe://";
    if (!id || strncmp(id, scheme, sizeof(scheme) - 1) != 0 || strlen(id) >= PKI_ID_MAX)
        return -EINVAL;
    const char *t = id + sizeof(scheme) - 1;
    const char *p = strchr(t, '/');
    /* The trust domain: a DNS-like name, no port, userinfo or escapes. */
    if (!p || !k8s_name_valid(t, (size_t)(p - t), 255, true) ||
        copy_part(td, tdlen, t, (size_t)(p - t)))
        return -EINVAL;
    if (strncmp(p, "/ns/", 4) != 0)
        return -EINVAL;
    const char *n = p + 4, *s = strstr(n, "/sa/");
    if (!s || !k8s_name_valid(n, (size_t)(s - n), 63, false) ||
        copy_part(ns, nslen, n, (size_t)(s - n)))
        return -EINVAL;
    const char *a = s + 4;
    size_t al = strlen(a);
    /* Nothing after the service account: no trailing slash, query,
     * fragment or percent-encoding can sneak through k8s_name. */
    if (!k8s_name_valid(a, al, 253, true) || copy_part(sa, salen, a, al))
        return -EINVAL;
    return 0;
}

int pki_cert_spiffe_id(X509 *cert, char *out, size_t len)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *uri = gn->d.uniformResourceIdentifier;
        if (++found > 1 || (size_t)uri->length >= len ||
            memchr(uri->data, '\0', (size_t)uri->length)) {
            found = 2; /* several URIs, too long or an embedded NUL: refuse */
            break;
        }
        memcpy(out, uri->data, (size_t)uri->length);
        out[uri->length] = '\0';
    }
    GENERAL_NAMES_free(names);
    return found == 1 ? 0 : -EINVAL;
}

int pki_node_id_parse(const char *id, char *td, size_t tdlen, char *node, size_t nodelen)
{
    static const char scheme[] = "spiffe://", path[] = "/meshd/node/";
    if (!id || strncmp(id, scheme, sizeof(scheme) - 1) != 0)
        return -EINVAL;
    const char *t = id + sizeof(scheme) - 1, *p = strstr(t, path);
    if (!p || p == t || (size_t)(p - t) >= tdlen || memchr(t, '/', (size_t)(p - t)))
        return -EINVAL;
    const char *n = p + sizeof(path) - 1;
    size_t nl = strlen(n);
    if (!pki_node_name_valid(n) || nl >= nodelen)
        return -EINVAL;
    memcpy(td, t, (size_t)(p - t));
    td[p - t] = '\0';
    memcpy(node, n, nl + 1);
    return 0;
}

bool pki_node_name_valid(const char *n)
{
    /* A Kubernetes node name: a DNS-1123 subdomain. */
    size_t len = strlen(n);
    if (len == 0 || len > PKI_NODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.') || i == 0 || i == len - 1))
            return false;
    }
    return true;
}
