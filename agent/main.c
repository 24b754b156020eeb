/* meshd: the per-node mesh agent. Parses flags and runs the agent, or
 * `meshd uninstall` (detach what stopped agents leave in place). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "core/log.h"
#include "core/node_name.h"
#include "telemetry/otlp.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshd --config DIR --node NAME [options]\n"
               "       meshd uninstall --node NAME [--state-dir DIR] [--bpffs DIR]\n"
               "                       (with no agent running: unenroll every pod, detach\n"
               "                       and unpin the programs, remove the state)\n"
               "  --config DIR         Istio/Kubernetes YAML to serve (may be empty)\n"
               "  --node NAME          this node's name (a DNS-1123 subdomain, as Kubernetes\n"
               "                       node names: ip-10-0-0-1.ec2.internal)\n"
               "  --state-dir DIR      runtime state (default /run/meshd/INSTANCE: NAME, or\n"
               "                       when longer than 63, its start and a hash)\n"
               "  --admin-socket PATH  control socket (default STATE_DIR/meshd.sock)\n"
               "  --bpffs DIR          bpffs mount (default: found in /proc/self/mounts)\n"
               "  --max-conns N        active proxied connections (default 65536)\n"
               "  --ring-bytes N       kernel connection-event ring, a power of two >= 4096\n"
               "                       (default 524288)\n"
               "  --log-level LEVEL    error|warn|info|debug (default info)\n"
               "  --ca-dir DIR         mesh CA (meshctl ca init): workload certificates\n"
               "                       and HBONE between enrolled pods\n"
               "  --trust-domain TD    SPIFFE trust domain (default cluster.local)\n"
               "  --cert-ttl SECONDS   workload certificate lifetime (default 86400),\n"
               "                       renewed at half-life\n"
               "  --access-log         one line per connection on stdout (for every pod,\n"
               "                       until Telemetry resources decide)\n"
               "  --log-format FORMAT  access-log format: text (default) or json\n"
               "  --drain-seconds N    on SIGTERM, stop accepting and give open connections\n"
               "                       N seconds (default 5); pods stay enrolled and fail\n"
               "                       closed until the next agent\n"
               "  --http-header-timeout N  a request head not whole N seconds after its\n"
               "                       first byte resets the connection (default 60)\n"
               "  --trace-collector [NAME=]IP:PORT[/PATH]\n"
               "                       export spans in OTLP/HTTP JSON (PATH default\n"
               "                       /v1/traces); NAME is the provider Telemetry\n"
               "                       tracing[].providers[] names (default otel)\n"
               "  --mesh-config FILE   Istio MeshConfig (or the istio ConfigMap): its\n"
               "                       extensionProviders' opentelemetry collectors (http)\n"
               "  --kube               configuration from the Kubernetes API (in a cluster:\n"
               "                       the service account), mirrored into one directory a\n"
               "                       resource under --config DIR (default STATE_DIR/kube)\n"
               "                       and served with DIR's other files\n"
               "  --kubeconfig FILE    the API server and credentials, outside a cluster\n"
               "                       (implies --kube)\n"
               "  --enroll-by-label    enroll this node's pods of ambient namespaces (on\n"
               "                       with --kube), and meshd-cni's pods\n"
               "  --netns-dir DIR      where running pods' netns are found (default\n"
               "                       /var/run/netns, then /proc/PID/ns/net)\n"
               "  --no-local-fast-path\n"
               "                       carry connections between two pods of this node\n"
               "                       over HBONE (mTLS to itself) like any other, instead\n"
               "                       of the same-node fast path (debugging, comparison)\n"
               "  --gateway-cert-dir DIR  Gateway servers' file certificates\n"
               "                       (tls.serverCertificate, privateKey, caCertificates)\n"
               "                       are read below DIR only (default: refused)\n"
               "  --version\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"node", required_argument, NULL, 'n'},
        {"state-dir", required_argument, NULL, 's'},
        {"admin-socket", required_argument, NULL, 'a'},
        {"bpffs", required_argument, NULL, 'b'},
        {"max-conns", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"access-log", no_argument, NULL, 'A'},
        {"log-format", required_argument, NULL, 'F'},
        {"ring-bytes", required_argument, NULL, 'r'},
        {"ca-dir", required_argument, NULL, 'C'},
        {"trust-domain", required_argument, NULL, 'T'},
        {"cert-ttl", required_argument, NULL, 'L'},
        {"drain-seconds", required_argument, NULL, 'D'},
        {"http-header-timeout", required_argument, NULL, 'H'},
        {"trace-collector", required_argument, NULL, 'O'},
        {"mesh-config", required_argument, NULL, 'M'},
        {"kube", no_argument, NULL, 'K'},
        {"kubeconfig", required_argument, NULL, 'k'},
        {"enroll-by-label", no_argument, NULL, 'E'},
        {"netns-dir", required_argument, NULL, 'N'},
        {"no-local-fast-path", no_argument, NULL, 'P'},
        {"gateway-cert-dir", required_argument, NULL, 'G'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct agent_opts opts = {.max_conns = 65536, .trust_domain = "cluster.local", .drain_s = 5};
    bool uninstall = argc > 1 && strcmp(argv[1], "uninstall") == 0;
    if (uninstall) { /* a subcommand: getopt sees the flags after it */
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    char state_dir[512], admin_socket[600], instance[NODE_INSTANCE_MAX + 1];
    int c, level;
    char *end;
    while ((c = getopt_long(argc, argv, "c:n:s:a:b:m:l:r:AF:C:T:L:D:O:M:Kk:EN:PG:Vh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'c':
            opts.config_dir = optarg;
            break;
        case 'n':
            opts.node = optarg;
            break;
        case 's':
            opts.state_dir = optarg;
            break;
        case 'a':
            opts.admin_socket = optarg;
            break;
        case 'b':
            opts.bpffs = optarg;
            break;
        case 'm':
            opts.max_conns = strtoul(optarg, &end, 10);
            if (*end || opts.max_conns == 0) {
                fprintf(stderr, "meshd: --max-conns wants a positive number\n");
                return 2;
            }
            break;
        case 'r': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 4096 || v > (1ul << 30) || (v & (v - 1))) {
                fprintf(stderr, "meshd: --ring-bytes wants a power of two from 4096 to 1 GiB\n");
                return 2;
            }
            opts.ring_bytes = (unsigned)v;
            break;
        }
        case 'C':
            opts.ca_dir = optarg;
            break;
        case 'T':
            opts.trust_domain = optarg;
            break;
        case 'L':
            opts.cert_ttl_s = strtol(optarg, &end, 10);
            if (*end || opts.cert_ttl_s < 2 || opts.cert_ttl_s > 30L * 24 * 3600) {
                fprintf(stderr, "meshd: --cert-ttl wants seconds, from 2 to 30 days\n");
                return 2;
            }
            break;
        case 'D': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || v > 3600) {
                fprintf(stderr, "meshd: --drain-seconds wants seconds, from 0 to 3600\n");
                return 2;
            }
            opts.drain_s = (unsigned)v;
            break;
        }
        case 'H': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || v == 0 || v > 3600) {
                fprintf(stderr, "meshd: --http-header-timeout wants seconds, from 1 to 3600\n");
                return 2;
            }
            opts.http_header_timeout_s = (unsigned)v;
            break;
        }
        case 'K':
            opts.kube = opts.enroll_by_label = 1;
            break;
        case 'k':
            opts.kube = opts.enroll_by_label = 1;
            opts.kubeconfig = optarg;
            break;
        case 'E':
            opts.enroll_by_label = 1;
            break;
        case 'N':
            opts.netns_dir = optarg;
            break;
        case 'G':
            opts.gateway_cert_dir = optarg;
            break;
        case 'A':
            opts.access_log = 1;
            break;
        case 'P':
            opts.no_local_fast_path = 1;
            break;
        case 'O': {
            struct otlp_collector coll;
            if (otlp_collector_parse(optarg, &coll) != 0) {
                fprintf(stderr, "meshd: --trace-collector wants [NAME=]IP:PORT[/PATH]\n");
                return 2;
            }
            opts.trace_collector = optarg;
            break;
        }
        case 'M':
            opts.mesh_config = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "meshd: --log-format wants text or json\n");
                return 2;
            }
            opts.log_json = strcmp(optarg, "json") == 0;
            break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "meshd: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            log_set_level((enum log_level)level);
            break;
        case 'V':
            printf("meshd %s\n", MESHD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((!opts.config_dir && !opts.kube && !uninstall) || !opts.node || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* A node name reaches paths, the field selector and labels: hold it to
     * what Kubernetes allows; paths take its bounded instance name. */
    if (node_instance_name(opts.node, instance, sizeof(instance)) != 0) {
        fprintf(stderr, "meshd: --node \"%s\" is not a valid node name (a DNS-1123 subdomain)\n",
                opts.node);
        return 2;
    }
    opts.instance = instance;
    if (opts.state_dir && strlen(opts.state_dir) > 400) { /* its files' paths stay bounded */
        fprintf(stderr, "meshd: --state-dir is longer than 400 bytes\n");
        return 2;
    }
    if (!opts.state_dir) {
        snprintf(state_dir, sizeof(state_dir), "/run/meshd/%s", opts.instance);
        opts.state_dir = state_dir;
    }
    char kube_dir[600];
    if (opts.kube && !opts.config_dir) { /* the API's objects, mirrored and served as files */
        snprintf(kube_dir, sizeof(kube_dir), "%s/kube", opts.state_dir);
        opts.config_dir = kube_dir;
    }
    if (!opts.admin_socket) {
        snprintf(admin_socket, sizeof(admin_socket), "%s/meshd.sock", opts.state_dir);
        opts.admin_socket = admin_socket;
    }
    return uninstall ? agent_uninstall(&opts) : agent_run(&opts);
}
