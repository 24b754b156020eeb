#!/usr/bin/env bash
# L7 AuthorizationPolicy at the destination, no waypoint (issue 15):
#  - methods, paths and request headers decided per request, across nodes
#    over HBONE: on one keep-alive connection an allowed path works, a
#    denied one gets 403 "RBAC: access denied", and the next allowed one
#    works again;
#  - the path the policy judges is the one the app receives (Istio's
#    normalization): /public/../admin is /admin, denied, and never reaches
#    the app;
#  - a plaintext client (PERMISSIVE) is decided per request too;
#  - istio_requests_total counts both sides with response codes.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

VIP=10.96.0.20
topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    cat >"$d/app.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  clusterIP: $VIP
  selector: {app: app-2-1}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: app-allow, namespace: default}
spec:
  selector: {matchLabels: {app: app-2-1}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET], paths: ["/public*", "/admin*"]}}]
  - to: [{operation: {methods: [POST], paths: ["/submit"]}}]
    when: [{key: "request.headers[x-token]", values: ["s3cret"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: app-deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: app-2-1}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
YAML
done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 2 "2,1"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/httpd.out" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 app "$E2E_TMP/app.log" >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10

# keepalive_script: several requests on ONE connection, one status per line.
keepalive() { # POD HOST PORT then METHOD:PATH[:HEADER=VALUE] ...
    local pod=$1 host=$2 port=$3
    shift 3
    in_pod "$pod" /usr/bin/python3 - "$host" "$port" "$@" <<'PY'
import http.client, sys


class OneWrite(http.client.HTTPConnection):
    # A request's head and body in one write, as curl sends them: written
    # apart, the body may reach the proxy after the destination answered
    # the head, and an answer before the whole request closes the
    # connection (the proxy cannot know where the next request starts).
    def _send_output(self, message_body=None, encode_chunked=False):
        self._buffer.extend((b"", b""))
        msg = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(msg + (message_body or b""))


host, port = sys.argv[1], int(sys.argv[2])
c = OneWrite(host, port, timeout=10)
opened = 0
for spec in sys.argv[3:]:
    parts = spec.split(":")
    method, path = parts[0], parts[1]
    headers = dict(p.split("=", 1) for p in parts[2:])
    body = b"x" if method == "POST" else None
    if c.sock is None:
        opened += 1
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read().decode(errors="replace").strip().replace("\n", " ")
    print(r.status, data[:40] if r.status != 200 else "")
print("connections", opened)
PY
}

t_begin "across nodes over HBONE: allowed, denied and allowed again on one connection"
out=$(keepalive "1,1" "$VIP" 80 GET:/public/a GET:/admin/x GET:/public/b POST:/submit:x-token=s3cret \
    POST:/submit:x-token=wrong DELETE:/public/a)
echo "$out" | sed 's/^/    /'
t_expect_eq "$(sed -n 1p <<<"$out")" "200 " "GET /public/a allowed"
t_expect_eq "$(sed -n 2p <<<"$out")" "403 RBAC: access denied" "GET /admin/x denied by the DENY policy, Envoy's body"
t_expect_eq "$(sed -n 3p <<<"$out")" "200 " "GET /public/b allowed after it, same connection"
t_expect_eq "$(sed -n 4p <<<"$out")" "200 " "POST /submit with the header the condition wants"
t_expect_eq "$(sed -n 5p <<<"$out" | cut -d' ' -f1)" "403" "POST /submit with another header value: no ALLOW rule"
t_expect_eq "$(sed -n 6p <<<"$out" | cut -d' ' -f1)" "403" "DELETE: no ALLOW rule"
t_expect_eq "$(sed -n 7p <<<"$out")" "connections 1" "all on one keep-alive connection"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" '"/admin' "no denied request reached the app"
t_expect_eq "$(grep -c '"/public/' "$E2E_TMP/app.log")" 2 "both allowed GETs did"

t_begin "the path judged is the path the app receives (Istio's normalization)"
out=$(keepalive "1,1" "$VIP" 80 GET:/public/../admin/x GET:/public/%2e%2e/admin GET:/public/./c)
echo "$out" | sed 's/^/    /'
t_expect_eq "$(sed -n 1p <<<"$out" | cut -d' ' -f1)" 403 "/public/../admin/x is /admin/x: denied"
t_expect_eq "$(sed -n 2p <<<"$out" | cut -d' ' -f1)" 403 "/public/%2e%2e/admin is /admin: denied"
t_expect_eq "$(sed -n 3p <<<"$out" | cut -d' ' -f1)" 200 "/public/./c allowed"
t_expect_contains "$(tail -1 "$E2E_TMP/app.log")" '"path": "/public/c"' "and the app got the normalized /public/c"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" 'admin' "nothing with admin in its path reached the app"

t_begin "a plaintext client outside the mesh is decided per request too (PERMISSIVE)"
out=$(keepalive "1,2" "${POD_IP4[2,1]}" 8080 GET:/public/p GET:/admin/p)
echo "$out" | sed 's/^/    /'
t_expect_eq "$(sed -n 1p <<<"$out")" "200 " "GET /public/p from plaintext: allowed"
t_expect_eq "$(sed -n 2p <<<"$out")" "403 RBAC: access denied" "GET /admin/p: denied"

t_begin "istio_requests_total on both sides, with response codes"
m1=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
m2=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics")
t_expect_contains "$m1" 'istio_requests_total{reporter="source"' "the source side reports requests"
t_expect_contains "$(grep 'istio_requests_total{reporter="destination"' <<<"$m2" | grep 'response_code="403"')" \
    'response_flags="DENY"' "the destination counts its 403s, flagged DENY"

meshd_check_logs
t_summary
