/* meshctl: meshd's istioctl. Talks to one agent over its control socket:
 * enrollment, what the agent serves, its counters. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent_client.h"
#include "analyze.h"
#include "core/node_name.h"
#include "ca.h"
#include "dashboard.h"
#include "explain.h"

struct ctl {
    const char *agent;
    int json; /* -o json */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshctl [--agent SOCK | --node NAME] [-o json] COMMAND [ARGS]\n"
            "\n"
            "Agent commands (talk to meshd's control socket):\n"
            "  enroll NAMESPACE/POD --netns PATH [--sa SA] [--ip IP]...\n"
            "                                      capture the pod's traffic; its Pod object\n"
            "                                      gives SA and IPs (given ones must agree)\n"
            "  unenroll NAMESPACE/POD              stop capturing it\n"
            "  pods                                enrolled pods\n"
            "  connections                         open and recent connections\n"
            "  status                              agent, BPF and proxy counters\n"
            "  proxy-status                        one line per agent (istioctl proxy-status)\n"
            "  proxy-config pods|connections|config\n"
            "                                      what the agent serves (istioctl proxy-config)\n"
            "  proxy-config routes WORKLOAD [--service HOST] [-f YAML]...\n"
            "                                      how the workload's connections are routed\n"
            "  authn tls-check WORKLOAD [-f YAML]...\n"
            "                                      mTLS modes of its ports, its identity\n"
            "  bpf status                          BPF decision counters and pins\n"
            "  dashboard kiali|jaeger|prometheus   the service graph, traces, Prometheus\n"
            "                                      (meshctl dashboard --help)\n"
            "Offline commands:\n"
            "  analyze [--root-namespace NS] DIR|FILE...     istioctl analyze on the YAML\n"
            "  ca init DIR [--trust-domain TD] [--force]     create the mesh CA\n"
            "  ca node NODE --ca-dir MESH_CA OUT_DIR         a node's intermediate CA\n"
            "  ca issue DIR --ns NS --sa SA --out PREFIX     a workload certificate\n"
            "\n"
            "WORKLOAD is NAMESPACE/NAME or NAME.NAMESPACE; -f explains offline from YAML.\n"
            "--agent defaults to $MESHD_AGENT, else /run/meshd/NODE/meshd.sock.\n");
}

static int print_result(const struct ctl *ctl, json_t *result)
{
    if (!result)
        return 1;
    json_dumpf(result, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(result);
    return 0;
}

static int do_enroll(const struct ctl *ctl, int argc, char **argv)
{
    const char *netns = NULL, *pod = NULL, *sa = NULL;
    json_t *ips = json_array();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc)
            netns = argv[++i];
        else if (strcmp(argv[i], "--sa") == 0 && i + 1 < argc)
            sa = argv[++i];
        else if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc)
            json_array_append_new(ips, json_string(argv[++i]));
        else if (strncmp(argv[i], "--netns=", 8) == 0)
            netns = argv[i] + 8;
        else if (!pod && argv[i][0] != '-')
            pod = argv[i];
        else {
            fprintf(stderr, "meshctl enroll: unexpected argument \"%s\"\n", argv[i]);
            json_decref(ips);
            return 2;
        }
    }
    if (!pod || !netns) {
        fprintf(stderr,
                "usage: meshctl enroll NAMESPACE/POD --netns PATH [--sa SA] [--ip IP]...\n");
        json_decref(ips);
        return 2;
    }
    json_t *res = agent_call(ctl->agent, json_pack("{s:s,s:s,s:s,s:s?,s:o}", "cmd", "enroll", "pod",
                                                   pod, "netns", netns, "sa", sa, "ips", ips));
    if (!res)
        return 1;
    printf("enrolled %s (netns %s)\n", pod, netns);
    json_decref(res);
    return 0;
}

static int do_unenroll(const struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: meshctl unenroll NAMESPACE/POD\n");
        return 2;
    }
    json_t *res = agent_call(ctl->agent, json_pack("{s:s,s:s}", "cmd", "unenroll", "pod", argv[1]));
    if (!res)
        return 1;
    printf("unenrolled %s\n", argv[1]);
    json_decref(res);
    return 0;
}

static int do_pods(const struct ctl *ctl, int argc, char **argv)
{
    json_t *res = agent_call(ctl->agent, json_pack("{s:s}", "cmd", "pods"));
    if (!res || ctl->json)
        return print_result(ctl, res);
    size_t i;
    json_t *p;
    printf("%-40s %-6s %-24s %-9s %s\n", "POD", "ID", "SERVICE-ACCOUNT", "IDENTITY", "NETNS");
    json_array_foreach(res, i, p)
    {
        char ref[320];
        const char *sa = json_string_value(json_object_get(p, "sa"));
        snprintf(ref, sizeof(ref), "%s/%s", json_string_value(json_object_get(p, "namespace")),
                 json_string_value(json_object_get(p, "name")));
        printf("%-40s %-6lld %-24s %-9s %s\n", ref, json_integer_value(json_object_get(p, "id")),
               sa ? sa : "-", json_string_value(json_object_get(p, "binding")),
               json_string_value(json_object_get(p, "netns")));
    }
    json_decref(res);
    return 0;
}

static int do_connections(const struct ctl *ctl, int argc, char **argv)
{
    json_t *res = agent_call(ctl->agent, json_pack("{s:s}", "cmd", "connections"));
    if (!res || ctl->json)
        return print_result(ctl, res);
    size_t i;
    json_t *c;
    printf("%-8s %-9s %-28s %-24s %-26s %-10s %10s %10s\n", "ID", "DIR", "POD", "SOURCE",
           "ORIGINAL-DST", "STATE", "SENT", "RECEIVED");
    json_array_foreach(res, i, c)
    {
        printf("%-8lld %-9s %-28s %-24s %-26s %-10s %10lld %10lld\n",
               json_integer_value(json_object_get(c, "id")),
               json_string_value(json_object_get(c, "direction")),
               json_string_value(json_object_get(c, "pod")),
               json_string_value(json_object_get(c, "src")),
               json_string_value(json_object_get(c, "original_dst")),
               json_string_value(json_object_get(c, "state")),
               json_integer_value(json_object_get(c, "bytes_sent")),
               json_integer_value(json_object_get(c, "bytes_received")));
    }
    json_decref(res);
    return 0;
}

static int do_status(const struct ctl *ctl, int argc, char **argv)
{
    return print_result(ctl, agent_call(ctl->agent, json_pack("{s:s}", "cmd", "status")));
}

/* istioctl proxy-status: is the agent up, what does it serve. */
static int do_proxy_status(const struct ctl *ctl, int argc, char **argv)
{
    json_t *st = agent_call(ctl->agent, json_pack("{s:s}", "cmd", "status"));
    if (!st || ctl->json)
        return print_result(ctl, st);
    json_t *c = json_object_get(st, "connections");
    json_t *cfg = json_object_get(st, "config");
    printf("%-20s %-10s %-17s %-6s %-10s %-10s %s\n", "NODE", "VERSION", "CONFIG", "PODS", "ACTIVE",
           "FORWARDED", "BPF");
    printf("%-20s %-10s %-17s %-6lld %-10lld %-10lld %s\n",
           json_string_value(json_object_get(st, "node")),
           json_string_value(json_object_get(st, "version")),
           json_string_value(json_object_get(cfg, "version")),
           json_integer_value(json_object_get(st, "pods")),
           json_integer_value(json_object_get(c, "active")),
           json_integer_value(json_object_get(c, "forwarded")),
           json_string_value(json_object_get(st, "pin_dir")));
    json_decref(st);
    return 0;
}

/* istioctl proxy-config: meshd's config is its pods and connections. */
/* The configuration the agent serves: version, counts, the last rejection. */
static int do_config(const struct ctl *ctl, int argc, char **argv)
{
    json_t *c = agent_call(ctl->agent, json_pack("{s:s}", "cmd", "config"));
    if (!c || ctl->json)
        return print_result(ctl, c);
    const char *serving = json_string_value(json_object_get(c, "serving"));
    printf("version:    %s%s\n", json_string_value(json_object_get(c, "version")),
           json_is_true(json_object_get(c, "loaded")) ? "" : " (nothing loaded yet)");
    if (serving && strcmp(serving, "persisted") == 0)
        printf("serving:    the persisted last good configuration (the directory does not "
               "load)\n");
    else if (serving && strcmp(serving, "none") == 0)
        printf("serving:    nothing (fail closed: inbound traffic to enrolled pods refused)\n");
    printf("directory:  %s (%lld files)\n", json_string_value(json_object_get(c, "dir")),
           json_integer_value(json_object_get(c, "files")));
    printf("reloads:    %lld applied, %lld rejected\n",
           json_integer_value(json_object_get(c, "applied")),
           json_integer_value(json_object_get(c, "rejected")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(c, "resources"), k, v) if (json_integer_value(v))
        printf("  %-22s %lld\n", k, json_integer_value(v));
    size_t i;
    json_array_foreach(json_object_get(c, "last_errors"), i, v)
        printf("%s%s\n", i ? "" : "last rejected load:\n  ", json_string_value(v));
    json_decref(c);
    return 0;
}

static int do_proxy_config(const struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: meshctl proxy-config pods|connections|config|routes\n");
        return 2;
    }
    if (strcmp(argv[1], "config") == 0)
        return do_config(ctl, argc - 1, argv + 1);
    if (strcmp(argv[1], "pods") == 0)
        return do_pods(ctl, argc - 1, argv + 1);
    if (strcmp(argv[1], "connections") == 0)
        return do_connections(ctl, argc - 1, argv + 1);
    fprintf(stderr,
            "meshctl proxy-config: unknown section \"%s\" (pods, connections, config, routes)\n",
            argv[1]);
    return 2;
}

/* meshctl bpf status: what the kernel side decided, as bpftool would show. */
static int do_bpf(const struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        fprintf(stderr, "usage: meshctl bpf status\n");
        return 2;
    }
    json_t *st = agent_call(ctl->agent, json_pack("{s:s}", "cmd", "status"));
    if (!st || ctl->json)
        return print_result(ctl, st);
    printf("pins:   %s\ncgroup: %s\n", json_string_value(json_object_get(st, "pin_dir")),
           json_string_value(json_object_get(st, "cgroup")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(st, "bpf"), k, v)
        printf("  %-22s %lld\n", k, json_integer_value(v));
    printf("inspect: bpftool map dump pinned %s/meshd_enrolled\n",
           json_string_value(json_object_get(st, "pin_dir")));
    json_decref(st);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"node", required_argument, NULL, 'n'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl ctl = {.agent = getenv("MESHD_AGENT")};
    char path[300];
    int c;
    /* "+": stop at the command, whose own flags come after it. */
    while ((c = getopt_long(argc, argv, "+a:n:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            ctl.agent = optarg;
            break;
        case 'n': {
            /* meshd's default state directory: the node's instance name */
            char inst[NODE_INSTANCE_MAX + 1];
            if (node_instance_name(optarg, inst, sizeof(inst)) != 0) {
                fprintf(stderr, "meshctl: --node \"%s\" is not a valid node name\n", optarg);
                return 2;
            }
            snprintf(path, sizeof(path), "/run/meshd/%s/meshd.sock", inst);
            ctl.agent = path;
            break;
        }
        case 'o':
            if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "meshctl: -o supports json only\n");
                return 2;
            }
            ctl.json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int cargc = argc - optind;
    char **cargv = argv + optind;
    if (strcmp(cmd, "ca") == 0)
        return ctl_ca(cargc, cargv);
    if (strcmp(cmd, "analyze") == 0)
        return ctl_analyze(cargc, cargv, ctl.json);
    /* Agent or offline (-f), so ahead of the agent-only commands. */
    if (strcmp(cmd, "proxy-config") == 0 && cargc >= 2 && strcmp(cargv[1], "routes") == 0)
        return ctl_proxy_routes(ctl.agent, cargc - 1, cargv + 1, ctl.json);
    if (strcmp(cmd, "authn") == 0)
        return ctl_tls_check(ctl.agent, cargc, cargv, ctl.json);
    if (strcmp(cmd, "dashboard") == 0)
        return ctl_dashboard(ctl.agent, cargc, cargv);
    static const struct {
        const char *name;
        int (*fn)(const struct ctl *, int, char **);
    } agent_cmds[] = {
        {"enroll", do_enroll},
        {"unenroll", do_unenroll},
        {"pods", do_pods},
        {"connections", do_connections},
        {"status", do_status},
        {"proxy-status", do_proxy_status},
        {"proxy-config", do_proxy_config},
        {"bpf", do_bpf},
    };
    for (size_t i = 0; i < sizeof(agent_cmds) / sizeof(agent_cmds[0]); i++) {
        if (strcmp(cmd, agent_cmds[i].name) != 0)
            continue;
        if (!ctl.agent) {
            fprintf(stderr,
                    "meshctl: which agent? use --agent SOCK, --node NAME or $MESHD_AGENT\n");
            return 2;
        }
        return agent_cmds[i].fn(&ctl, cargc, cargv);
    }
    fprintf(stderr, "meshctl: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
