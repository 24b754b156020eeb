/* meshctl: meshd's istioctl. Talks to one agent over its control socket
 * (enroll, pods, connections, status) or works offline (analyze). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent_client.h"
#include "commands.h"

int cmd_analyze(int argc, char **argv) __attribute__((weak)); /* TEMP */

struct ctl {
    const char *agent;
    int json; /* -o json */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: meshctl [--agent SOCK | --node NAME] [-o json] COMMAND [ARGS]\n"
               "\n"
               "Agent commands (talk to meshd's control socket):\n"
               "  enroll NAMESPACE/POD --netns PATH   capture the pod's traffic\n"
               "  unenroll NAMESPACE/POD              stop capturing it\n"
               "  pods                                enrolled pods\n"
               "  connections                         open and recent connections\n"
               "  status                              agent, BPF and proxy counters\n"
               "Offline commands:\n"
               "  analyze [-o json] [DIR|FILE...]     validate Istio/Kubernetes YAML\n"
               "\n"
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
    const char *netns = NULL, *pod = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc)
            netns = argv[++i];
        else if (strncmp(argv[i], "--netns=", 8) == 0)
            netns = argv[i] + 8;
        else if (!pod && argv[i][0] != '-')
            pod = argv[i];
        else {
            fprintf(stderr, "meshctl enroll: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!pod || !netns) {
        fprintf(stderr, "usage: meshctl enroll NAMESPACE/POD --netns PATH\n");
        return 2;
    }
    json_t *res = agent_call(
        ctl->agent, json_pack("{s:s,s:s,s:s}", "cmd", "enroll", "pod", pod, "netns", netns));
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
    printf("%-40s %-12s %s\n", "POD", "ID", "NETNS");
    json_array_foreach(res, i, p)
    {
        char ref[320];
        snprintf(ref, sizeof(ref), "%s/%s", json_string_value(json_object_get(p, "namespace")),
                 json_string_value(json_object_get(p, "name")));
        printf("%-40s %-12lld %s\n", ref, json_integer_value(json_object_get(p, "id")),
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
        case 'n':
            snprintf(path, sizeof(path), "/run/meshd/%s/meshd.sock", optarg);
            ctl.agent = path;
            break;
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
    if (strcmp(cmd, "analyze") == 0) {
        if (!cmd_analyze) { /* TEMP until the config module lands */
            fprintf(stderr, "meshctl: analyze is not built in\n");
            return 2;
        }
        return cmd_analyze(cargc, cargv);
    }
    static const struct {
        const char *name;
        int (*fn)(const struct ctl *, int, char **);
    } agent_cmds[] = {
        {"enroll", do_enroll},           {"unenroll", do_unenroll}, {"pods", do_pods},
        {"connections", do_connections}, {"status", do_status},
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
