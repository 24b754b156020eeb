#!/usr/bin/env bash
# Kubernetes YAML for the e2e tests' workloads, one object per call, on
# stdout (sourced after topology.sh: pods use TOPO_RUN and POD_IP4).
#   pod_yaml I J LABELS SA        Pod pod-I-J on node I, e.g. LABELS '{app: a, version: v1}'
#   deployment_yaml NAME APP VER  a Deployment whose template has app/version
pod_yaml() {
    printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: pod-%s-%s, labels: %s}\n' "$1" "$2" "$3"
    printf 'spec: {nodeName: m%sn%s, serviceAccountName: %s}\nstatus: {podIP: %s}\n' "$TOPO_RUN" "$1" "$4" "${POD_IP4[$1,$2]}"
}
deployment_yaml() {
    printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s}\n' "$1"
    printf 'spec:\n  selector: {matchLabels: {app: %s, version: %s}}\n' "$2" "$3"
    printf '  template: {metadata: {labels: {app: %s, version: %s}}}\n' "$2" "$3"
}
