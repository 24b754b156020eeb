/* The loader's validation (agent/config/): every error path with its code
 * and file:line:col, Istio's validation rules one row each, manifests that
 * must load, and the message's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "support/config_fixture.h"

/* One broken manifest per error path: the code, where, and what it says. */
static const struct broken_case {
    const char *what;
    const char *yaml;
    enum cfg_level level;
    const char *code;
    uint32_t line, col;
    const char *says;
} broken[] = {
    {"syntax error", "apiVersion: v1\nkind: [Namespace\n", CFG_ERROR, "MSH0100", 3, 1, "YAML:"},
    {"tab indentation", "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: x\n", CFG_ERROR,
     "MSH0100", 4, 1, "YAML:"},
    {"another project's kind is an Info",
     "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", CFG_INFO, "MSH0101", 2, 7,
     "Widget (example.com/v1) is not applied by meshd; 1 resource accepted"},
    {"a Gateway API kind meshd does not serve is an Info",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: g}\n",
     CFG_INFO, "MSH0101", 2, 7,
     "GatewayClass (gateway.networking.k8s.io/v1) is not applied by meshd (of the Gateway API"},
    {"a Gateway API Gateway is decoded: its spec is required",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n", CFG_ERROR,
     "IST0106", 1, 1, "spec is required"},
    {"unknown kind in an Istio group",
     "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: w}\n", CFG_ERROR,
     "MSH0101", 2, 7, "unknown kind \"VirtualServce\""},
    {"unknown version",
     "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: v}\n", CFG_ERROR,
     "MSH0101", 1, 13, "unknown apiVersion \"networking.istio.io/v2\""},
    {"wrong group for kind", "apiVersion: v1\nkind: Gateway\nmetadata: {name: g}\n", CFG_ERROR,
     "MSH0101", 1, 13, "unknown apiVersion"},
    {"not a mapping", "- apiVersion: v1\n", CFG_ERROR, "IST0106", 1, 1, "must be a mapping"},
    {"no kind", "apiVersion: v1\nmetadata: {name: x}\n", CFG_ERROR, "IST0106", 1, 1,
     "apiVersion and kind are required"},
    {"missing name", "apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n", CFG_ERROR,
     "IST0106", 3, 11, "metadata: name is required"},
    {"invalid name", "apiVersion: v1\nkind: Service\nmetadata: {name: Payments_Svc}\n", CFG_ERROR,
     "IST0106", 3, 18, "not a valid name"},
    {"invalid namespace", "apiVersion: v1\nkind: Service\nmetadata: {name: p, namespace: a.b}\n",
     CFG_ERROR, "IST0106", 3, 32, "not a valid namespace"},
    {"weight of the wrong type",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n"
     "      weight: {x: 1}\n",
     CFG_ERROR, "IST0106", 9, 15,
     "spec.http[0].route[0].weight: expected an integer, got a mapping"},
    {"negative weight",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a}\n      weight: -5\n",
     CFG_ERROR, "IST0106", 9, 15, "spec.tcp[0].route[0].weight: expected a non-negative integer"},
    {"port out of range",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 70000\n",
     CFG_ERROR, "IST0106", 6, 11, "spec.ports[0].port: expected an integer from 0 to 65535"},
    {"targetPort neither number nor name",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n"
     "  - port: 80\n    targetPort: Not_A_Name\n",
     CFG_ERROR, "IST0106", 7, 17, "not a port number or an IANA port name"},
    {"bad duration",
     "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
     "spec:\n  host: a\n  trafficPolicy:\n    connectionPool:\n      tcp:\n"
     "        connectTimeout: 5 seconds\n",
     CFG_ERROR, "IST0106", 9, 25, "spec.trafficPolicy.connectionPool.tcp.connectTimeout"},
    {"bad IP",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.0.0.300\n",
     CFG_ERROR, "IST0106", 5, 14, "not an IP address"},
    {"bad enum",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
     "spec:\n  mtls:\n    mode: STRICTT\n",
     CFG_ERROR, "IST0106", 6, 11, "expected one of UNSET|PERMISSIVE|STRICT|DISABLE"},
    {"delegate VirtualService with tcp routes",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  tcp: [{route: [{destination: {host: a}}]}]\n",
     CFG_ERROR, "IST0106", 5, 3, "a delegate VirtualService (no hosts) must have no tcp routes"},
    {"missing destination host",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: v1}\n",
     CFG_ERROR, "IST0106", 8, 20, "destination: host is required"},
    {"missing spec where the CRD requires it",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\n", CFG_ERROR,
     "IST0106", 1, 1, "spec is required"},
    {"portLevelMtls without selector",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
     "spec:\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
     CFG_ERROR, "IST0106", 5, 3, "portLevelMtls requires a workload selector"},
    {"bad authz port",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - to:\n    - operation: {ports: [\"http\"]}\n",
     CFG_ERROR, "IST0106", 7, 27, "not a port number: \"http\""},
    {"bad ipBlocks",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0.0/33]}}]\n",
     CFG_ERROR, "IST0106", 6, 45, "ipBlocks[1]: \"10.0.0.0/33\" is not an IP address or CIDR"},
    {"when without values",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - when:\n    - key: source.ip\n",
     CFG_ERROR, "IST0106", 7, 7, "one of values or notValues is required"},
    {"empty notNamespaces value (Istio: empty value not allowed)",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [\"\"]}}]\n",
     CFG_ERROR, "IST0106", 7, 38, "notNamespaces[0]: empty value not allowed"},
    {"empty when notValues value",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - when:\n    - {key: source.principal, notValues: [\"\"]}\n",
     CFG_ERROR, "IST0106", 7, 43, "notValues[0]: empty value not allowed"},
    {"serviceAccounts wildcard",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {serviceAccounts: [\"ns/*\"]}}]\n",
     CFG_ERROR, "IST0106", 6, 40,
     "serviceAccounts[0]: expected 'serviceAccount' or 'namespace/serviceAccount' without "
     "wildcards, got \"ns/*\""},
    {"notServiceAccounts with two slashes",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {notServiceAccounts: [a/b/c]}}]\n",
     CFG_ERROR, "IST0106", 6, 43,
     "notServiceAccounts[0]: expected 'serviceAccount' or 'namespace/serviceAccount' without "
     "wildcards, got \"a/b/c\""},
    {"serviceAccounts with namespaces",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {serviceAccounts: [a], namespaces: [b]}}]\n",
     CFG_ERROR, "IST0106", 6, 21, "cannot set serviceAccounts with namespaces or principals"},
    {"duplicate key", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Service\n",
     CFG_ERROR, "MSH0100", 4, 1, "duplicate key \"kind\""},
    {"duplicate resource",
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
     CFG_ERROR, "MSH0102", 5, 1, "also defined at input.yaml:1"},
    {"unknown anchor", "apiVersion: v1\nkind: Namespace\nmetadata: *nothing\n", CFG_ERROR,
     "MSH0100", 3, 11, "unknown anchor \"nothing\""},
    {"self-referencing anchor", "apiVersion: v1\nkind: Namespace\nmetadata: &m {name: *m}\n",
     CFG_ERROR, "MSH0100", 3, 21, "unknown anchor"},
    {"mapping key not a string", "apiVersion: v1\nkind: Namespace\nmetadata:\n  ? [a]\n  : b\n",
     CFG_ERROR, "IST0106", 4, 5, "mapping key must be a string"},
    {"secret data not a string",
     "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  tls.crt: [1]\n", CFG_ERROR,
     "IST0106", 5, 12, "data: tls.crt: expected a string"},
    {"unknown field (typo) is a warning",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a}\n      wieght: 5\n",
     CFG_WARNING, "MSH0103", 9, 15, "spec.tcp[0].route[0].wieght: unknown field"},
    {"unapplied Istio kind is a warning",
     "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\n", CFG_WARNING,
     "MSH0205", 1, 1, "Sidecar (networking.istio.io/v1) is not applied by meshd"},
    {"matchExpressions is a warning",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  selector:\n    matchExpressions: []\n",
     CFG_WARNING, "MSH0205", 6, 23, "matchExpressions is not supported"},
};

static void test_broken_manifests(void **state)
{
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        const struct broken_case *c = &broken[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        const struct cfg_diag *g = cfg_fixture_diag(&f, c->code);
        if (!g || g->level != c->level || g->pos.line != c->line || g->pos.col != c->col ||
            !strstr(g->message, c->says) || strcmp(g->pos.file, "input.yaml") != 0) {
            fprintf(stderr, "case \"%s\": want %s %s at %u:%u saying \"%s\"; got:\n", c->what,
                    cfg_level_name(c->level), c->code, c->line, c->col, c->says);
            cfg_fixture_dump(&f);
            fail();
        }
        /* An error keeps the resource out of the snapshot; a warning does not. */
        size_t resources = 0;
        for (int k = 0; k < CFG_KIND_COUNT; k++)
            resources += cfg_count(f.snap, (enum cfg_kind)k);
        if (c->level == CFG_ERROR && strcmp(c->code, "MSH0102") != 0)
            assert_int_equal(resources, 0);
        cfg_fixture_free(&f);
    }
}

/* Valid manifests that meshd once refused (issue 16): each loads with no
 * error and the resource it describes, and kinds meshd does not apply get
 * exactly one Info per kind. */
static const struct valid_case {
    const char *what;
    const char *yaml;
    enum cfg_kind kind; /* the resource that must be in the snapshot */
    size_t infos;       /* Info messages expected */
} valid[] = {
    {"ServiceEntry addresses as CIDRs (samples/external/github.yaml)",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: github-tcp}\n"
     "spec:\n  hosts: [dummy.github.com]\n  addresses:\n  - 13.229.188.59/32\n"
     "  - 140.82.112.0/20\n  - fd00:10::/64\n  ports: [{name: tcp, number: 22, protocol: TCP}]\n"
     "  location: MESH_EXTERNAL\n  resolution: NONE\n",
     CFG_SERVICE_ENTRY, 0},
    {"unix:// endpoints, abstract and by path",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: uds}\n"
     "spec:\n  hosts: [uds.example.com]\n  ports: [{name: http, number: 80, protocol: HTTP}]\n"
     "  resolution: STATIC\n  endpoints:\n  - address: unix://@foo\n"
     "  - address: unix:///var/run/example/socket\n",
     CFG_SERVICE_ENTRY, 0},
    {"WorkloadEntry with a network and no address",
     "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: remote}\n"
     "spec:\n  network: network-2\n  labels: {app: remote}\n",
     CFG_WORKLOAD_ENTRY, 0},
    {"WorkloadEntry on a unix socket",
     "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: uds}\n"
     "spec:\n  address: unix://@foo\n",
     CFG_WORKLOAD_ENTRY, 0},
    {"VirtualService without hosts (a delegate)",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: productpage}\n"
     "spec:\n  http:\n  - match: [{uri: {prefix: /productpage}}]\n"
     "    route: [{destination: {host: productpage}}]\n",
     CFG_VIRTUAL_SERVICE, 0},
    {"AuthorizationPolicy without spec (deny all)",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\n",
     CFG_AUTHORIZATION_POLICY, 0},
    {"PeerAuthentication without spec",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d}\n",
     CFG_PEER_AUTHENTICATION, 0},
    {"Telemetry without spec",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\n", CFG_TELEMETRY, 0},
    {"flow sequence holding an IPv6 address ending in ':'",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: full}\n"
     "spec:\n  hosts: [\"example.com\"]\n  addresses: [1.2.3.4, 2001:db8::, 001:db8::]\n"
     "  ports: [{name: foo, protocol: HTTP, number: 1234}]\n  resolution: DNS\n",
     CFG_SERVICE_ENTRY, 0},
    {"other projects' kinds: one Info per kind",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: a}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: a}\n---\n"
     "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n---\n"
     "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: a}\n---\n"
     "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\n"
     "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: a}\n---\n"
     "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
     CFG_NAMESPACE, 8},
};

static void test_valid_manifests_load(void **state)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_load(&f, valid[i].yaml);
        size_t infos = 0;
        for (size_t d = 0; d < f.diags.n; d++)
            infos += f.diags.v[d].level == CFG_INFO && f.diags.v[d].pos.line > 0;
        if (f.diags.counts[CFG_ERROR] || f.diags.counts[CFG_WARNING] || infos != valid[i].infos ||
            cfg_count(f.snap, valid[i].kind) != 1) {
            fprintf(stderr, "case \"%s\": want it loaded with %zu Info; got:\n", valid[i].what,
                    valid[i].infos);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* Istio's validation, one row per rule (its CRD schema's
 * x-kubernetes-validations and pkg/config/validation/validation.go, named
 * in each row): refused with IST0106 and the resource left out. */
#define SE_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n"
#define WE_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: we}\nspec:\n"
#define DR_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr}\nspec:\n"     \
    "  host: a\n"
static const struct rule_case {
    const char *rule, *yaml, *says;
} istio_rules[] = {
    {"CRD: port must be between 1-65535",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 70000, name: p}]\n", "from 0 to 65535"},
    {"CRD: port number 0", SE_HEAD "  hosts: [a.example]\n  ports: [{number: 0, name: p}]\n",
     "port must be 1-65535"},
    {"CRD: port number cannot be duplicated",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]\n",
     "port number 80 is duplicated"},
    {"ValidateServiceEntry: port name already defined",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}, {number: 81, name: a}]\n",
     "port name a is duplicated"},
    {"CRD: NONE mode cannot set endpoints",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}]\n"
             "  endpoints: [{address: 10.0.0.1}]\n",
     "resolution NONE cannot set endpoints"},
    {"CRD: hostname cannot be wildcard", SE_HEAD "  hosts: ['*']\n  resolution: DNS\n",
     "a hostname cannot be \"*\""},
    {"CRD: CIDR addresses are allowed only for NONE/STATIC resolution",
     SE_HEAD "  hosts: [a.example]\n  addresses: [10.0.0.0/8]\n  resolution: DNS\n",
     "CIDR addresses are allowed only for NONE/STATIC"},
    {"CRD: DNS_ROUND_ROBIN mode cannot have multiple endpoints",
     SE_HEAD "  hosts: [a.example]\n  resolution: DNS_ROUND_ROBIN\n"
             "  endpoints: [{address: a.example}, {address: b.example}]\n",
     "DNS_ROUND_ROBIN cannot have more than one endpoint"},
    {"CRD: only one of WorkloadSelector or Endpoints can be set",
     SE_HEAD "  hosts: [a.example]\n  resolution: STATIC\n  workloadSelector: {labels: {a: b}}\n"
             "  endpoints: [{address: 10.0.0.1}]\n",
     "only one of workloadSelector or endpoints"},
    {"CRD: wildcard is not supported in selector",
     SE_HEAD "  hosts: [a.example]\n  workloadSelector: {labels: {a: 'b*'}}\n",
     "wildcard is not supported in selector"},
    {"resolution is an enum", SE_HEAD "  hosts: [a.example]\n  resolution: DNSS\n",
     "expected one of NONE|STATIC|DNS"},
    {"CRD: UDS must be an absolute path or abstract socket", WE_HEAD "  address: unix://foo\n",
     "UDS must be an absolute path or abstract socket"},
    {"CRD: UDS may not be a dir", WE_HEAD "  address: unix:///dir/\n", "may not be a directory"},
    {"CRD: UDS may not include ports", WE_HEAD "  address: unix:///sock\n  ports: {http: 80}\n",
     "a UDS endpoint may not include ports"},
    {"CRD: Address is required (no address, no network)", WE_HEAD "  labels: {a: b}\n",
     "address is required"},
    {"CRD: WorkloadEntry port must be between 1-65535",
     WE_HEAD "  address: 1.1.1.1\n  ports: {http: 99999}\n", "from 0 to 65535"},
    {"CRD: WorkloadEntry port name must be valid",
     WE_HEAD "  address: 1.1.1.1\n  ports: {'@': 80}\n", "is not a valid port name"},
    {"CRD: warmup.duration is required",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {minimumPercent: 5}}}\n",
     "warmup: duration is required"},
    {"validateLoadBalancer: minimumPercent <= 100",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {duration: 30s, minimumPercent: 150}}}\n",
     "must be from 0 to 100"},
    {"validateLoadBalancer: aggression > 0",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {duration: 30s, aggression: -0.1}}}\n",
     "must be greater than 0"},
    {"CRD: portLevelMtls has at least one property",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n"
     "  selector: {matchLabels: {a: b}}\n  portLevelMtls: {}\n",
     "must have at least one port"},
    {"CRD: provider name at least 1 character",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  accessLogging: [{providers: [{name: ''}]}]\n",
     "name is required"},
    {"CRD: metrics customMetric at least 1 character",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{match: {customMetric: ''}}]}]\n",
     "customMetric: must not be empty"},
    {"CRD: tag override value must be set when operation is UPSERT",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{tagOverrides: {foo: {operation: UPSERT}}}]}]\n",
     "value must be set when operation is UPSERT"},
    {"CRD: tag override value must not be set when operation is REMOVE",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{tagOverrides: {foo: {operation: REMOVE, value: x}}}]}]\n",
     "value must not be set when operation is REMOVE"},
    {"ValidateGateway: gateway must have at least one server",
     "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
     "  selector: {istio: ingressgateway}\n",
     "a Gateway must have at least one server"},
    {"ValidateVirtualService: delegate must have no gateways",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n"
     "  gateways: [g]\n  http: [{route: [{destination: {host: a}}]}]\n",
     "a delegate VirtualService (no hosts) must have no gateways"},
};

static void test_istio_validation_rules(void **state)
{
    for (size_t i = 0; i < sizeof(istio_rules) / sizeof(istio_rules[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_load(&f, istio_rules[i].yaml);
        bool found = false;
        for (size_t d = 0; d < f.diags.n; d++)
            found |= f.diags.v[d].level == CFG_ERROR && strcmp(f.diags.v[d].code, "IST0106") == 0 &&
                     strstr(f.diags.v[d].message, istio_rules[i].says) != NULL &&
                     f.diags.v[d].pos.line > 0;
        size_t resources = 0;
        for (int k = 0; k < CFG_KIND_COUNT; k++)
            resources += cfg_count(f.snap, (enum cfg_kind)k);
        if (!found || resources) {
            fprintf(stderr, "rule \"%s\": want IST0106 saying \"%s\"; got:\n", istio_rules[i].rule,
                    istio_rules[i].says);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* The message names the resource in istioctl's shape. */
static void test_message_format(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                         "metadata: {name: payments, namespace: shop}\n"
                         "spec:\n  host: payments\n  trafficPolicy:\n"
                         "    loadBalancer: {simple: FASTEST}\n");
    assert_int_equal(f.diags.n, 1);
    char line[1200];
    cfg_diag_format(&f.diags.v[0], line, sizeof(line));
    assert_string_equal(line,
                        "Error [IST0106] (DestinationRule shop/payments input.yaml:7:28) "
                        "spec.trafficPolicy.loadBalancer.simple: expected one of "
                        "UNSPECIFIED|LEAST_CONN|RANDOM|PASSTHROUGH|ROUND_ROBIN|LEAST_REQUEST: "
                        "\"FASTEST\"");
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broken_manifests),
        cmocka_unit_test(test_valid_manifests_load),
        cmocka_unit_test(test_istio_validation_rules),
        cmocka_unit_test(test_message_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
