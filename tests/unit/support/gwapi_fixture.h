/* The Gateway API tests' world (test_gateway_api.c,
 * test_gateway_api_refusals.c): namespaces, a Gateway's pods and
 * Secrets, two backends, and how a request through the Gateway comes out.
 * Each test builds its YAML from these and loads it. */
#ifndef MESHD_TEST_GWAPI_FIXTURE_H
#define MESHD_TEST_GWAPI_FIXTURE_H

#include <stddef.h>

#include "config/config.h"
#include "http/message.h"

#define NS_AND_PODS                                                                                \
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n"                            \
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: shop}}\n---\n"         \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: gw-istio-1, namespace: default, labels: "         \
    "{gateway.networking.k8s.io/gateway-name: gw}}\nspec: {nodeName: n1}\n"                        \
    "status: {podIP: 10.1.0.9}\n---\n"                                                             \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: gw-istio-2, namespace: shop, labels: "            \
    "{gateway.networking.k8s.io/gateway-name: gw}}\nspec: {nodeName: n1}\n"                        \
    "status: {podIP: 10.1.0.10}\n---\n"                                                            \
    "apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls, namespace: default}\n"                \
    "type: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: y}\n---\n"                         \
    "apiVersion: v1\nkind: Secret\nmetadata: {name: shop-tls, namespace: shop}\n"                  \
    "type: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: y}\n---\n"

#define GATEWAY                                                                                    \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"                                    \
    "metadata: {name: gw, namespace: default}\nspec:\n  gatewayClassName: istio\n  listeners:\n"   \
    "  - {name: https, port: 8443, protocol: HTTPS, hostname: '*.example.com',\n"                  \
    "     tls: {certificateRefs: [{name: app-tls}]}}\n"                                            \
    "  - {name: http, port: 8080, protocol: HTTP}\n---\n"

/* The same routing twice: as an HTTPRoute, and as the VirtualService an
 * Istio user would write for it. */
#define BACKENDS                                                                                   \
    "apiVersion: v1\nkind: Service\nmetadata: {name: v1, namespace: default}\n"                    \
    "spec: {selector: {app: v1}, ports: [{name: http, port: 8000}]}\n---\n"                        \
    "apiVersion: v1\nkind: Service\nmetadata: {name: v2, namespace: default}\n"                    \
    "spec: {selector: {app: v2}, ports: [{name: http, port: 8000}]}\n---\n"

/* `yaml` loaded (it must load; its diagnostics in `diags`, initialised). */
struct cfg_snapshot *gwapi_load(const char *yaml, struct cfg_diags *diags);
/* The first diagnostic of `level` whose message holds `part`, or NULL. */
const char *gwapi_find_diag(const struct cfg_diags *d, enum cfg_level level, const char *part);
/* Every diagnostic to stderr (a failing row's context). */
void gwapi_dump(const struct cfg_diags *d);
/* What a request gets, as text: "dests v1:90,v2:10 set x-edge", "redirect
 * 301 https new.example.com /old", "404". */
void gwapi_outcome(const struct cfg_snapshot *s, const char *host, const char *path,
                   const struct http_field *hdrs, size_t nh, char *out, size_t len);

#endif
