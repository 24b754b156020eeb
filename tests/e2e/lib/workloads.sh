#!/usr/bin/env bash
# Kubernetes YAML for the e2e tests' workloads, one object per call, on
# stdout (sourced after topology.sh: pods use TOPO_RUN and POD_IP4).
#   pod_yaml I J LABELS SA [NS]   Pod pod-I-J on node I with both its addresses,
#                                 e.g. LABELS '{app: a, version: v1}' (NS: default)
#   deployment_yaml NAME APP VER  a Deployment whose template has app/version
# Each object is a document of its own: it starts with "---".
pod_yaml() {
    printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: pod-%s-%s, namespace: %s, labels: %s}\n' \
        "$1" "$2" "${5:-default}" "$3"
    printf 'spec: {nodeName: m%sn%s, serviceAccountName: %s}\n' "$TOPO_RUN" "$1" "$4"
    printf 'status:\n  podIPs: [{ip: %s}, {ip: "%s"}]\n' "${POD_IP4[$1,$2]}" "${POD_IP6[$1,$2]}"
}
deployment_yaml() {
    printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s}\n' "$1"
    printf 'spec:\n  selector: {matchLabels: {app: %s, version: %s}}\n' "$2" "$3"
    printf '  template: {metadata: {labels: {app: %s, version: %s}}}\n' "$2" "$3"
}
# sleep_httpbin_yaml: the default namespace in ambient mode, a sleep client
# (pod-1-1) and httpbin v1 (pod-2-1) as Deployments, behind Service httpbin
# (10.96.0.30) with a TCP port (80 -> 8080, carried as bytes: the TCP
# metrics see the app's own bytes) and an HTTP one (8000 -> 8081, carried
# per request: request metrics).
sleep_httpbin_yaml() {
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}\n'
    printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: httpbin}\n'
    printf 'spec: {clusterIP: 10.96.0.30, selector: {app: httpbin}, ports: [{name: tcp-web, port: 80, targetPort: 8080}, {name: http-api, port: 8000, targetPort: 8081}]}\n'
    deployment_yaml sleep sleep v1
    deployment_yaml httpbin-v1 httpbin v1
    pod_yaml 1 1 '{app: sleep, version: v1}' sleep
    pod_yaml 2 1 '{app: httpbin, version: v1}' httpbin
}
