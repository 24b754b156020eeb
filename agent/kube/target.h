/* Where the Kubernetes API is and how to authenticate to it: from a
 * kubeconfig file (outside a cluster), or from the service account that
 * the kubelet mounts into the pod (in a cluster: KUBERNETES_SERVICE_HOST,
 * KUBERNETES_SERVICE_PORT, <sa>/token and <sa>/ca.crt).
 *
 * Honoured from a kubeconfig: current-context -> its cluster's server
 * (http:// or https://, host:port; an IPv6 host in brackets),
 * certificate-authority(-data), insecure-skip-tls-verify, and its user's
 * token or tokenFile and client-certificate(-data) / client-key(-data).
 * Relative paths are relative to the kubeconfig's directory. Anything
 * else (exec plugins, auth-provider, proxy-url) is refused by name: meshd
 * never runs a command from a file. Files read are at most 1 MiB. */
#ifndef MESHD_KUBE_TARGET_H
#define MESHD_KUBE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KUBE_FILE_MAX (1u << 20)

struct kube_target {
    bool tls;
    char host[256]; /* an address or a name, without brackets */
    uint16_t port;
    bool insecure;        /* insecure-skip-tls-verify: the tests' stand-in only */
    char *ca_pem;         /* heap, or NULL: the system's trust store */
    char *cert_pem;       /* heap: client certificate, or NULL */
    char *key_pem;        /* heap: its key */
    char *token;          /* heap: a fixed bearer token, or NULL */
    char token_file[512]; /* "": none; read again whenever it changes */
};

/* 0, or -errno with a message in err. */
int kube_target_kubeconfig(const char *path, struct kube_target *out, char *err, size_t errlen);
/* `sa_dir` NULL: /var/run/secrets/kubernetes.io/serviceaccount. */
int kube_target_in_cluster(const char *sa_dir, struct kube_target *out, char *err, size_t errlen);
void kube_target_free(struct kube_target *t);

/* "https://10.0.0.1:6443" -> tls, host, port (default 443 / 80). */
int kube_parse_server(const char *url, struct kube_target *t);
/* A whole small file, NUL-terminated (heap), at most KUBE_FILE_MAX. */
char *kube_read_file(const char *path, size_t *len, int *err);

#endif
