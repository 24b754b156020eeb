/* meshctl ca: the mesh CA from the command line.
 *   meshctl ca init DIR [--trust-domain TD] [--force]
 *   meshctl ca node NODE --ca-dir MESH_CA_DIR OUT_DIR [--trust-domain TD]
 *                        [--ttl SECONDS] [--force]
 *   meshctl ca issue DIR --ns NS --sa SA --out PREFIX [--trust-domain TD]
 *                        [--ttl SECONDS] [--not-before SECONDS]
 * `node` makes one node's intermediate CA (what `meshd --ca-dir` should
 * hold: the mesh CA key stays off the nodes). `issue` writes PREFIX.pem
 * (the certificate, then the CAs up to the root, as a TLS peer sends them)
 * and PREFIX-key.pem (0600): for tests and for peers outside the mesh that
 * must present an identity. */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "pki/pki.h"

static int write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int append_chain(const char *path, STACK_OF(X509) * chain)
{
    FILE *f = fopen(path, "ae");
    if (!f)
        return -1;
    int ok = 1;
    for (int i = 0; ok && i < sk_X509_num(chain); i++)
        ok = PEM_write_X509(f, sk_X509_value(chain, i));
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int ca_node(const char *node, const char *td, bool force, int argc, char **argv)
{
    const char *mesh_dir = NULL, *out = NULL;
    long ttl = PKI_NODE_TTL;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--ca-dir") == 0 && i + 1 < argc)
            mesh_dir = argv[++i];
        else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc &&
                 (ttl = strtol(argv[i + 1], &end, 10), !*end))
            i++;
        else if (!out && argv[i][0] != '-')
            out = argv[i];
        else {
            fprintf(stderr, "meshctl ca node: bad argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!mesh_dir || !out || ttl <= 0) {
        fprintf(stderr, "usage: meshctl ca node NODE --ca-dir MESH_CA_DIR OUT_DIR [--ttl S] "
                        "[--trust-domain TD] [--force]\n");
        return 2;
    }
    char err[256];
    if (pki_ca_init_node(mesh_dir, node, td, ttl, out, force, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshctl: %s\n", err);
        return 1;
    }
    printf("node CA for %s (spiffe://%s/meshd/node/%s) created in %s\n", node, td, node, out);
    return 0;
}

static int ca_issue(const char *dir, const char *td, int argc, char **argv)
{
    const char *ns = NULL, *sa = NULL, *prefix = NULL;
    long ttl = PKI_DEFAULT_TTL, nb = 0;
    for (int i = 0; i + 1 < argc; i += 2) {
        char *end;
        if (strcmp(argv[i], "--ns") == 0)
            ns = argv[i + 1];
        else if (strcmp(argv[i], "--sa") == 0)
            sa = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--ttl") == 0 && (ttl = strtol(argv[i + 1], &end, 10), !*end))
            ;
        else if (strcmp(argv[i], "--not-before") == 0 &&
                 (nb = strtol(argv[i + 1], &end, 10), !*end))
            ;
        else {
            fprintf(stderr, "meshctl ca issue: bad argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!ns || !sa || !prefix || ttl <= 0 || (argc % 2)) {
        fprintf(stderr, "usage: meshctl ca issue DIR --ns NS --sa SA --out PREFIX [--ttl S] "
                        "[--not-before S] [--trust-domain TD]\n");
        return 2;
    }
    char err[256];
    struct pki_ca *ca;
    if (pki_ca_load(dir, &ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshctl: %s\n", err);
        return 1;
    }
    struct pki_cert *c;
    int rc = pki_issue(ca, td, ns, sa, nb, ttl, &c);
    if (rc) {
        fprintf(stderr, "meshctl: cannot issue for %s/%s: not valid Kubernetes names\n", ns, sa);
        pki_ca_free(ca);
        return 1;
    }
    char cert_path[512], key_path[512];
    snprintf(cert_path, sizeof(cert_path), "%s.pem", prefix);
    snprintf(key_path, sizeof(key_path), "%s-key.pem", prefix);
    rc = write_pem(cert_path, c->leaf, NULL) || append_chain(cert_path, pki_ca_path(ca)) ||
         write_pem(key_path, NULL, c->key);
    if (rc)
        fprintf(stderr, "meshctl: cannot write %s / %s\n", cert_path, key_path);
    else
        printf("issued %s -> %s, %s\n", c->spiffe_id, cert_path, key_path);
    pki_cert_unref(c);
    pki_ca_free(ca);
    return rc ? 1 : 0;
}

int ctl_ca(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: meshctl ca init DIR [--trust-domain TD] [--force]\n"
                        "       meshctl ca node NODE --ca-dir MESH_CA_DIR OUT_DIR ...\n"
                        "       meshctl ca issue DIR --ns NS --sa SA --out PREFIX ...\n");
        return 2;
    }
    const char *td = "cluster.local";
    bool force = false;
    /* --trust-domain and --force may come anywhere after DIR. */
    char *rest[32];
    int nrest = 0;
    for (int i = 3; i < argc && nrest < 32; i++) {
        if (strcmp(argv[i], "--trust-domain") == 0 && i + 1 < argc)
            td = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else
            rest[nrest++] = argv[i];
    }
    if (strcmp(argv[1], "issue") == 0)
        return ca_issue(argv[2], td, nrest, rest);
    if (strcmp(argv[1], "node") == 0)
        return ca_node(argv[2], td, force, nrest, rest);
    if (strcmp(argv[1], "init") != 0 || nrest) {
        fprintf(stderr, "meshctl ca: unknown command or argument\n");
        return 2;
    }
    char err[256];
    if (pki_ca_init_dir(argv[2], td, force, err, sizeof(err)) != 0) {
        fprintf(stderr, "meshctl: %s\n", err);
        return 1;
    }
    printf("mesh CA for trust domain %s created in %s\n", td, argv[2]);
    return 0;
}
