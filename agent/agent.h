/* The agent: wires the modules of one meshd instance together and runs its
 * event loop until SIGTERM/SIGINT. main.c only parses flags into these
 * options. */
#ifndef MESHD_AGENT_H
#define MESHD_AGENT_H

#include <stddef.h>

#define MESHD_VERSION "0.1.0"

struct agent_opts {
    const char *config_dir;
    const char *node;
    const char *state_dir;    /* default /run/meshd/<instance> */
    const char *admin_socket; /* default <state_dir>/meshd.sock */
    const char *bpffs;        /* default: found in /proc/self/mounts, else /sys/fs/bpf */
    size_t max_conns;
    unsigned ring_bytes;      /* kernel connection-event ring; 0: default */
    int access_log;           /* log every connection until Telemetry resources decide */
    int log_json;             /* --log-format json */
    const char *ca_dir;       /* mesh CA (Istio plug-in layout); NULL: no mTLS */
    const char *trust_domain; /* default cluster.local */
    long cert_ttl_s;          /* workload certificates; 0: 24h */
    unsigned drain_s;         /* SIGTERM: grace for open connections */
    /* OTLP/HTTP collector, "[NAME=]IP:PORT[/PATH]" (telemetry/otlp.h);
     * NULL: no spans. */
    const char *trace_collector;
    /* Istio MeshConfig (or its ConfigMap) whose extensionProviders name
     * OTLP/HTTP collectors (config/mesh_config.h); NULL: none. */
    const char *mesh_config;
    int kube;               /* --kube: configuration from the Kubernetes API */
    const char *kubeconfig; /* outside a cluster; NULL: the service account */
    int enroll_by_label;    /* pods of ambient namespaces enrolled (on with --kube) */
    const char *netns_dir;  /* where running pods' netns are found; NULL: /var/run/netns */
    int no_local_fast_path; /* --no-local-fast-path: same-node traffic over HBONE too */
    /* Gateway servers' file certificates (tls.serverCertificate, ...) are
     * read only below it; NULL: refused. */
    const char *gateway_cert_dir;
    /* A request head's deadline (Envoy's request_headers_timeout); 0: 60 s. */
    unsigned http_header_timeout_s;
    /* node's bounded instance name (core/node_name.h): the pin directory
     * <bpffs>/meshd/<instance> and the default state directory */
    const char *instance;
};

/* Returns the process exit status. */
int agent_run(const struct agent_opts *opts);

/* `meshd uninstall`: with no agent running for opts->node, removes what a
 * stopped agent leaves in place on purpose: the BPF enrollment entries,
 * the pinned links (detached) and maps, the pin directory, pods.json and
 * the persisted configuration. Idempotent. Returns the exit status. */
int agent_uninstall(const struct agent_opts *opts);

#endif
