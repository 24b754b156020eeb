/* `meshctl analyze`'s analyzers (agent/config/analyze.c): one case per
 * message, each with a manifest that should trigger it; and clean
 * configurations that must trigger nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/analyze.h"
#include "support/config_fixture.h"

#define NS_AMBIENT                                                                                 \
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: "                      \
    "{istio.io/dataplane-mode: ambient}\n---\n"
#define PAYMENTS_SVC                                                                               \
    "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\n"                                  \
    "spec:\n  selector: {app: payments}\n  ports: [{port: 80, targetPort: 8080}]\n---\n"
#define PAYMENTS_POD                                                                               \
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: payments-1\n  labels: {app: payments, "         \
    "version: v1}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.0.5}\n---\n"
#define PAYMENTS_DR                                                                                \
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: payments}\n"      \
    "spec:\n  host: payments\n  subsets:\n  - {name: v1, labels: {version: v1}}\n---\n"
#define BASE NS_AMBIENT PAYMENTS_SVC PAYMENTS_POD PAYMENTS_DR
#define TWO_TCP_PORTS                                                                              \
    "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  selector: {app: db}\n"          \
    "  ports: [{name: tcp-a, port: 5432}, {name: tcp-b, port: 6000}]\n---\n"                       \
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"              \
    "spec:\n  hosts: [db]\n  http:\n"                                                              \
    "  - match: [{port: 5432}, {port: 6000, headers: {a: {exact: b}}}]\n"                          \
    "    route: [{destination: {host: db}}]\n"
#define DB_SVC                                                                                     \
    "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  selector: {app: db}\n"          \
    "  ports: [{name: tcp-postgres, port: 5432}]\n---\n"

static const struct analyze_case {
    const char *what;
    const char *yaml;
    enum cfg_level level;
    const char *code;
    const char *says;
} cases[] = {
    {"VirtualService host not found",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  tcp:\n  - route: [{destination: {host: paymnts}}]\n",
     CFG_ERROR, "IST0101", "Referenced host not found: \"paymnts\""},
    {"VirtualService subset not found",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: payments}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route:\n"
          "    - {destination: {host: payments, subset: v1}, weight: 90}\n"
          "    - {destination: {host: payments, subset: v3}, weight: 10}\n",
     CFG_ERROR, "IST0101", "Referenced host+subset in destinationrule not found: \"payments+v3\""},
    {"VirtualService gateway not found",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [app.example.com]\n  gateways: [istio-system/bogus]\n"
          "  http:\n  - route: [{destination: {host: payments}}]\n",
     CFG_ERROR, "IST0101", "Referenced gateway not found: \"istio-system/bogus\""},
    {"weights do not sum to 100",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route:\n"
          "    - {destination: {host: payments, subset: v1}, weight: 60}\n"
          "    - {destination: {host: payments, subset: v1}, weight: 30}\n",
     CFG_WARNING, "MSH0202", "http[0]: route weights sum to 90, not 100"},
    {"a header match on a TCP-named port never matches there",
     BASE DB_SVC "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                 "spec:\n  hosts: [db]\n  http:\n"
                 "  - match: [{headers: {x-canary: {exact: '1'}}}, {uri: {exact: /a}}]\n"
                 "    route: [{destination: {host: db}}]\n",
     CFG_WARNING, "MSH0201",
     "http[0]: port 5432 (tcp-postgres): named for a TCP protocol, carried as bytes; this route "
     "matches on request attributes (its headers/uri matches), so it never matches there and "
     "connections fall through to the next route"},
    {"a fault on a TCP-named port: weights per connection, the fault not applied",
     BASE DB_SVC "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                 "spec:\n  hosts: [db]\n  http:\n  - fault: {abort: {httpStatus: 500}}\n"
                 "    headers: {request: {set: {x-a: b}}}\n"
                 "    route: [{destination: {host: db}, weight: 50}, "
                 "{destination: {host: db}, weight: 50}]\n",
     CFG_WARNING, "MSH0201",
     "http[0]: port 5432 (tcp-postgres): named for a TCP protocol, carried as bytes; there this "
     "route applies per connection (its weights split connections rather than requests); not "
     "applied: headers, fault"},
    {"appProtocol names a TCP protocol: a port match and sourceLabels apply per connection",
     BASE "apiVersion: v1\nkind: Service\nmetadata: {name: cache}\nspec:\n  selector: {app: c}\n"
          "  ports: [{name: web, appProtocol: redis, port: 6379}, {name: http, port: 80}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [cache]\n  http:\n  - match: [{port: 6379, sourceLabels: {app: a}}]\n"
          "    rewrite: {uri: /b}\n    route: [{destination: {host: cache}}]\n",
     CFG_WARNING, "MSH0201",
     "http[0]: port 6379 (redis): named for a TCP protocol, carried as bytes; there this route "
     "applies per connection (its port/sourceLabels matches, connections go to its "
     "destination); not applied: rewrite"},
    {"a redirect-only route on a TCP-named port is skipped there",
     BASE DB_SVC "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                 "spec:\n  hosts: [db]\n  http:\n  - redirect: {uri: /new}\n",
     CFG_WARNING, "MSH0201",
     "http[0]: port 5432 (tcp-postgres): named for a TCP protocol, carried as bytes; this route "
     "has no destination, so connections there skip it (redirect not applied)"},
    {"a match naming one TCP port admits its connections...", BASE TWO_TCP_PORTS, CFG_WARNING,
     "MSH0201",
     "http[0]: port 5432 (tcp-a): named for a TCP protocol, carried as bytes; there this route "
     "applies per connection (its port match, connections go to its destination)"},
    {"...while a match with a header on the other never matches there", BASE TWO_TCP_PORTS,
     CFG_WARNING, "MSH0201",
     "http[0]: port 6000 (tcp-b): named for a TCP protocol, carried as bytes; this route matches "
     "on request attributes (its headers match), so it never matches there"},
    {"a ServiceEntry port by its protocol field",
     BASE "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e}\n"
          "spec:\n  hosts: [db.example.com]\n  ports: [{number: 5432, name: pg, protocol: TCP}, "
          "{number: 80, name: web, protocol: HTTP}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [db.example.com]\n  http:\n  - timeout: 1s\n"
          "    route: [{destination: {host: db.example.com}}]\n",
     CFG_WARNING, "MSH0201",
     "http[0]: port 5432 (TCP): named for a TCP protocol, carried as bytes; there this route "
     "applies per connection (connections go to its destination, its timeout bounds the connect "
     "including retries)"},
    {"mirror is not applied yet",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route: [{destination: {host: payments}}]\n"
          "    mirror: {host: payments}\n",
     CFG_WARNING, "MSH0201",
     "http[0]: mirror is not applied yet: requests go to the route's destinations only and no "
     "copy is sent"},
    {"corsPolicy is not applied yet",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route: [{destination: {host: payments}}]\n"
          "    corsPolicy: {allowOrigins: [{exact: 'https://a.example'}]}\n",
     CFG_WARNING, "MSH0201",
     "http[0]: corsPolicy is not applied yet: preflight requests reach the app and responses get "
     "no CORS headers from meshd"},
    {"delegate is not applied",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - match: [{uri: {prefix: /a}}]\n"
          "    delegate: {name: child}\n",
     CFG_WARNING, "MSH0201",
     "http[0]: delegate is not applied: requests this route admits are answered 503 (no route)"},
    {"a tcp[] match meshd does not decide",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  tcp:\n  - match: [{destinationSubnets: [10.0.0.0/8]}]\n"
          "    route: [{destination: {host: payments}}]\n",
     CFG_WARNING, "MSH0201",
     "tcp[0].match[0]: destinationSubnets is not decided by meshd; this match never matches"},
    {"TLS routes",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  tls:\n  - match: [{sniHosts: [payments]}]\n"
          "    route: [{destination: {host: payments}}]\n",
     CFG_WARNING, "MSH0201", "tls routes match on SNI"},
    {"two VirtualServices for one host",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\n"
          "spec:\n  hosts: [payments]\n  tcp: [{route: [{destination: {host: payments}}]}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\n"
          "spec:\n  hosts: [payments.default.svc.cluster.local]\n"
          "  tcp: [{route: [{destination: {host: payments}}]}]\n",
     CFG_ERROR, "IST0109", "The VirtualServices default/a,default/b associated with mesh"},
    {"DestinationRule host unknown",
     BASE "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
          "spec: {host: reveiws}\n",
     CFG_WARNING, "IST0174",
     "The host reveiws defined in the DestinationRule does not match any services in the mesh."},
    {"two DestinationRules for one host",
     BASE "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: again}\n"
          "spec: {host: payments.default.svc.cluster.local}\n",
     CFG_WARNING, "MSH0203",
     "host payments.default.svc.cluster.local already has "
     "DestinationRule default/payments"},
    {"subset selects no endpoint",
     NS_AMBIENT PAYMENTS_SVC PAYMENTS_POD
     "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: payments}\n"
     "spec:\n  host: payments\n  subsets: [{name: v9, labels: {version: v9}}]\n",
     CFG_ERROR, "IST0173", "The Subset v9 defined in the DestinationRule does not select any pods"},
    {"gateway credentialName missing",
     BASE "apiVersion: v1\nkind: Pod\nmetadata: {name: gw, namespace: istio-system, labels: "
          "{istio: ingressgateway}}\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: "
          "istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"
          "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n"
          "    tls: {mode: SIMPLE, credentialName: app-tls}\n",
     CFG_ERROR, "IST0101", "Referenced credentialName not found: \"app-tls\""},
    {"gateway selector matches nothing",
     BASE "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
          "spec:\n  selector: {istio: nothing}\n  servers:\n"
          "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n",
     CFG_ERROR, "IST0101", "Referenced selector not found: \"istio=nothing\""},
    {"policy selector matches no workload",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  selector: {matchLabels: {app: ghost}}\n  action: DENY\n  rules: [{}]\n",
     CFG_WARNING, "IST0127",
     "No matching workloads for this resource with the following labels: "
     "app=ghost"},
    {"mesh-wide PeerAuthentications in conflict",
     BASE "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, "
          "namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n---\n"
          "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: b, "
          "namespace: istio-system}\nspec: {mtls: {mode: PERMISSIVE}}\n",
     CFG_ERROR, "MSH0204", "a mesh-wide PeerAuthentication istio-system/a"},
    {"PeerAuthentication DISABLE",
     BASE "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a}\n"
          "spec: {mtls: {mode: DISABLE}}\n",
     CFG_WARNING, "MSH0205", "mtls.mode DISABLE"},
    {"CUSTOM authorization",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  action: CUSTOM\n  provider: {name: ext-authz}\n  rules: [{}]\n",
     CFG_ERROR, "MSH0205", "action CUSTOM (external authorization) is not supported"},
    {"targetRef authorization",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  targetRefs: [{kind: Service, group: '', name: payments}]\n  action: DENY\n"
          "  rules: [{}]\n",
     CFG_WARNING, "MSH0205", "targetRef policies are enforced by waypoints"},
    {"L7 fields in an ALLOW rule",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - to: [{operation: {methods: [GET]}}]\n",
     CFG_WARNING, "MSH0201",
     "rules[0].to[0]: methods is HTTP only: decided per request on ports meshd serves as HTTP; "
     "on TCP ports this rule never matches"},
    {"L7 fields in a DENY rule",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  action: DENY\n  rules:\n  - from: [{source: {requestPrincipals: ['*']}}]\n",
     CFG_WARNING, "MSH0201", "requestPrincipals is HTTP only; meshd validates no JWT"},
    {"an L7 field meshd decides nowhere",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  action: DENY\n  rules:\n  - from: [{source: {remoteIpBlocks: [1.2.3.4]}}]\n",
     CFG_WARNING, "MSH0201",
     "remoteIpBlocks is an L7 field meshd does not decide, on TCP or HTTP ports; that part is "
     "dropped"},
    {"a path that is no request path",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - to: [{operation: {notPaths: [/a, admin]}}]\n",
     CFG_WARNING, "MSH0201", "notPaths[1] \"admin\" never matches: request paths start with '/'"},
    {"L7 condition key",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - when: [{key: 'request.headers[x-id]', values: ['1']}]\n",
     CFG_WARNING, "MSH0201", "key request.headers[x-id] is HTTP only"},
    {"a condition key meshd decides nowhere",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - when: [{key: request.auth.principal, values: ['1']}]\n",
     CFG_WARNING, "MSH0201", "key request.auth.principal is not an attribute meshd decides"},
    {"unknown access-log provider",
     BASE "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\n"
          "spec:\n  accessLogging: [{providers: [{name: otel}]}]\n",
     CFG_WARNING, "MSH0205", "accessLogging provider \"otel\""},
    {"namespace not in the mesh", PAYMENTS_SVC PAYMENTS_POD, CFG_INFO, "IST0102",
     "The namespace is not enabled for the mesh. Run 'kubectl label namespace default "
     "istio.io/dataplane-mode=ambient' to enroll it."},
    {"the seed's injection label enrolls, with a note",
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: "
     "enabled}}\n---\n" PAYMENTS_SVC PAYMENTS_POD,
     CFG_INFO, "MSH0206", "istio.io/dataplane-mode=ambient is the native label"},
    {"a wildcard host conflicts across namespaces (scoped vs exported)",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: wild, "
          "namespace: foo}\n"
          "spec:\n  hosts: ['*.example.com']\n  exportTo: ['.']\n"
          "  tcp: [{route: [{destination: {host: payments.default.svc.cluster.local}}]}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api, "
          "namespace: bar}\n"
          "spec:\n  hosts: [api.example.com]\n"
          "  tcp: [{route: [{destination: {host: payments.default.svc.cluster.local}}]}]\n",
     CFG_ERROR, "IST0109",
     "The VirtualServices bar/api,foo/wild associated with mesh gateway "
     "define the same host foo/*.example.com"},
    {"a host exported elsewhere is not found",
     BASE "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, "
          "namespace: other}\nspec:\n  hosts: [db.example.com]\n  exportTo: ['.']\n"
          "  ports: [{number: 5432, name: pg}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [db.example.com]\n"
          "  tcp: [{route: [{destination: {host: db.example.com}}]}]\n",
     CFG_ERROR, "IST0101", "Referenced host not found: \"db.example.com\""},
    {"a destination port the service lacks",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n"
          "  tcp: [{route: [{destination: {host: payments, port: {number: 81}}}]}]\n",
     CFG_ERROR, "IST0101", "Referenced host:port not found: \"payments:81\""},
    {"a mirror to an unknown host",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route: [{destination: {host: payments}}]\n"
          "    mirror: {host: shadow}\n",
     CFG_ERROR, "IST0101", "Referenced mirror host not found: \"shadow\""},
    {"trustDomains, enforced as sidecars do",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - from: [{source: {trustDomains: [cluster.local]}}]\n",
     CFG_INFO, "MSH0205", "rules[0].from[0]: trustDomains are matched on the peer's SPIFFE"},
};

/* Findings istioctl does not make, so neither may meshd. */
static const struct analyze_case quiet[] = {
    {"HTTP/2 and gRPC ports are carried per request: no per-connection warning",
     BASE "apiVersion: v1\nkind: Service\nmetadata: {name: rpc}\nspec:\n  selector: {app: r}\n"
          "  ports: [{name: grpc, port: 9090}, {name: http2-alt, port: 9091}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [rpc]\n  http:\n  - timeout: 3s\n    retries: {attempts: 2}\n"
          "    match: [{uri: {prefix: /pkg.Svc/}}]\n    route: [{destination: {host: rpc}}]\n",
     CFG_WARNING, "MSH0201", "carried as bytes"},
    {"credentialName not checked without the gateway's workload",
     BASE "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: "
          "istio-system}\nspec:\n  selector: {app: my-gateway}\n  servers:\n"
          "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n"
          "    tls: {mode: SIMPLE, credentialName: app-tls}\n",
     CFG_ERROR, "IST0101", "credentialName"},
    {"the injection label enrolls the namespace",
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: "
     "enabled}}\n---\n" PAYMENTS_SVC PAYMENTS_POD,
     CFG_INFO, "IST0102", "not enabled"},
    {"an explicit dataplane mode wins over the injection label",
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: "
     "enabled, istio.io/dataplane-mode: ambient}}\n---\n" PAYMENTS_SVC PAYMENTS_POD,
     CFG_INFO, "MSH0206", "native label"},
    {"a Gateway API Gateway is a gateway a VirtualService may name",
     BASE "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
          "spec: {gatewayClassName: istio}\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [app.example.com]\n  gateways: [default/gw]\n"
          "  http: [{route: [{destination: {host: payments}}]}]\n",
     CFG_ERROR, "IST0101", "gateway"},
    {"subset selected through the pod's Node topology",
     BASE "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: "
          "{topology.kubernetes.io/region: us-west}}\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: west}\n"
          "spec:\n  host: payments\n  subsets:\n"
          "  - {name: west, labels: {topology.kubernetes.io/region: us-west}}\n",
     CFG_ERROR, "IST0173", "west"},
    {"serviceAccounts are L4",
     BASE "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
          "spec:\n  rules:\n  - from: [{source: {serviceAccounts: [default/client]}}]\n",
     CFG_WARNING, "MSH0201", "L7"},
    /* http[] routes on ports carried request by request: everything applies. */
    {"request matches and actions on an unnamed (sniffed) port",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n"
          "  - match: [{headers: {x-canary: {exact: '1'}}, uri: {regex: '/a.*'}, method: "
          "{exact: GET}}]\n"
          "    fault: {abort: {httpStatus: 500, percentage: {value: 10}}}\n"
          "    rewrite: {uri: /b}\n    headers: {response: {remove: [server]}}\n"
          "    timeout: 3s\n    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}\n"
          "    route: [{destination: {host: payments, subset: v1}, weight: 99}, "
          "{destination: {host: payments}, weight: 1}]\n"
          "  - directResponse: {status: 404}\n",
     CFG_WARNING, "MSH0201", "http["},
    {"request matches and actions on an HTTP-named port",
     NS_AMBIENT "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: "
                "{app: w}\n  ports: [{name: http-web, port: 8080}]\n---\n"
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                "spec:\n  hosts: [web]\n  http:\n  - match: [{queryParams: {a: {exact: b}}}]\n"
                "    fault: {delay: {fixedDelay: 1s}}\n    route: [{destination: {host: web}}]\n",
     CFG_WARNING, "MSH0201", "http["},
    {"a port match leaves the service's TCP port out",
     NS_AMBIENT "apiVersion: v1\nkind: Service\nmetadata: {name: mixed}\nspec:\n  selector: "
                "{app: m}\n  ports: [{name: http, port: 80}, {name: tcp, port: 5432}]\n---\n"
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                "spec:\n  hosts: [mixed]\n  http:\n  - match: [{port: 80, headers: {a: {}}}]\n"
                "    route: [{destination: {host: mixed}}]\n",
     CFG_WARNING, "MSH0201", "5432"},
    {"a gateway's VirtualService is its proxy's to apply",
     BASE DB_SVC "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
                 "spec:\n  hosts: [db]\n  gateways: [gw]\n  http:\n"
                 "  - match: [{headers: {a: {}}}]\n    route: [{destination: {host: db}}]\n",
     CFG_WARNING, "MSH0201", "http[0]"},
    {"a ServiceEntry's HTTP port is carried per request",
     BASE "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e}\n"
          "spec:\n  hosts: [api.example.com]\n  ports: [{number: 80, name: web, protocol: "
          "HTTP}]\n---\n"
          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [api.example.com]\n  http:\n  - match: [{uri: {prefix: /v1}}]\n"
          "    timeout: 1s\n    route: [{destination: {host: api.example.com}}]\n",
     CFG_WARNING, "MSH0201", "http[0]"},
    {"the seed's canary on an unnamed port",
     BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec:\n  hosts: [payments]\n  http:\n  - route:\n"
          "    - {destination: {host: payments, subset: v1}, weight: 99}\n"
          "    - {destination: {host: payments, subset: v1}, weight: 1}\n",
     CFG_WARNING, "MSH0201", ""},
};

static void test_no_message_istioctl_would_not_give(void **state)
{
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
        const struct analyze_case *c = &quiet[i];
        struct cfg_fixture f;
        cfg_fixture_analyze(&f, c->yaml);
        for (size_t j = 0; j < f.diags.n; j++) {
            if (strcmp(f.diags.v[j].code, c->code) == 0 && strstr(f.diags.v[j].message, c->says)) {
                fprintf(stderr, "case \"%s\": unexpected:\n", c->what);
                cfg_fixture_dump(&f);
                fail();
            }
        }
        cfg_fixture_free(&f);
    }
}

/* Every message carries its origin, file:line:col. */
static void test_every_message_has_a_position(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_analyze(&f, cases[i].yaml);
        for (size_t j = 0; j < f.diags.n; j++) {
            if (!f.diags.v[j].pos.file || !f.diags.v[j].pos.line || !f.diags.v[j].pos.col) {
                fprintf(stderr, "case \"%s\": a message without file:line:col\n", cases[i].what);
                cfg_fixture_dump(&f);
                fail();
            }
        }
        cfg_fixture_free(&f);
    }
}

static void test_each_message(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct analyze_case *c = &cases[i];
        struct cfg_fixture f;
        cfg_fixture_analyze(&f, c->yaml);
        const struct cfg_diag *g = cfg_fixture_diag(&f, c->code);
        bool found = false;
        for (size_t j = 0; j < f.diags.n && !found; j++)
            found = strcmp(f.diags.v[j].code, c->code) == 0 && f.diags.v[j].level == c->level &&
                    strstr(f.diags.v[j].message, c->says);
        if (!found) {
            fprintf(stderr, "case \"%s\": want %s %s saying \"%s\"; got:\n", c->what,
                    cfg_level_name(c->level), c->code, c->says);
            cfg_fixture_dump(&f);
            fail();
        }
        (void)g;
        cfg_fixture_free(&f);
    }
}

/* No false positives: the base, the seed canary with its namespace
 * enrolled, and the realistic tree. */
static void test_clean_configurations(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_analyze(&f, BASE "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                 "metadata: {name: payments}\nspec:\n  hosts: [payments]\n"
                                 "  http:\n  - match: [{uri: {prefix: /}}]\n"
                                 "    route: [{destination: {host: payments, subset: v1}}]\n");
    cfg_fixture_dump(&f);
    assert_int_equal(f.diags.n, 0);
    cfg_fixture_free(&f);

    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s = NULL;
    const char *paths[] = {"tests/unit/data/config/realistic"};
    assert_int_equal(cfg_load(paths, 1, NULL, &d, &s), 0);
    cfg_analyze(s, &d);
    /* Nothing: the grpc port is carried per request like the HTTP one. */
    for (size_t j = 0; j < d.n; j++)
        fprintf(stderr, "%s %s\n", d.v[j].code, d.v[j].message);
    assert_int_equal(d.n, 0);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

/* A service with many TCP ports: the finding names the first ports whole
 * and counts the rest, and still says what applies (a finding is at most
 * 512 bytes). */
static void test_a_long_port_list_is_bounded(void **state)
{
    char yaml[8192];
    size_t len = (size_t)snprintf(yaml, sizeof(yaml),
                                  NS_AMBIENT "apiVersion: v1\nkind: Service\nmetadata: {name: "
                                             "many}\nspec:\n  selector: {app: m}\n  ports:\n");
    for (unsigned p = 0; p < 80; p++)
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "  - {name: tcp-p%u, port: %u}\n",
                                p, 5000 + p);
    snprintf(yaml + len, sizeof(yaml) - len,
             "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: "
             "v}\nspec:\n  hosts: [many]\n  http:\n  - timeout: 2s\n    fault: {delay: "
             "{fixedDelay: 1s}}\n    route: [{destination: {host: many}}]\n");
    struct cfg_fixture f;
    cfg_fixture_analyze(&f, yaml);
    const struct cfg_diag *g = cfg_fixture_diag(&f, "MSH0201");
    if (!g)
        cfg_fixture_dump(&f);
    assert_non_null(g);
    assert_non_null(strstr(g->message, "http[0]: ports 5000 (tcp-p0), 5001 (tcp-p1), "));
    const char *more = strstr(g->message, " more: named for a TCP protocol");
    assert_non_null(more);
    unsigned named = 0, rest = 0;
    for (const char *c = g->message; c < more; c++)
        named += *c == '(';
    const char *and = strstr(g->message, ") and ");
    assert_non_null(and);
    assert_int_equal(sscanf(and, ") and %u more", &rest), 1);
    assert_int_equal(named + rest, 80);
    assert_non_null(strstr(g->message, "; not applied: fault"));
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_message),
        cmocka_unit_test(test_clean_configurations),
        cmocka_unit_test(test_no_message_istioctl_would_not_give),
        cmocka_unit_test(test_every_message_has_a_position),
        cmocka_unit_test(test_a_long_port_list_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
