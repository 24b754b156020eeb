#!/usr/bin/env bash
# The HTTP carrier against hostile and real clients (issue 15).
#  - every request-smuggling case (conflicting or repeated Content-Length,
#    TE with CL, TE not ending in chunked, chunked twice, obs-fold, bare CR,
#    bare LF, control bytes, space before colon, invalid names, oversize
#    and too many headers, bad chunk sizes, HTTP/0.9, invalid methods, and
#    CL.TE / TE.CL desyncs carrying a second request) sent as raw bytes from
#    a client pod, to an unnamed (sniffed) port and a port named `http`:
#    one 400 (or 431) answer, the connection closed, and the apps' request
#    logs, read before and after, show that nothing reached them, not even
#    the smuggled inner request; a probe after each desync finds the
#    upstream connections clean;
#  - the legitimate cousins: a pipelined pair in one write answered twice in
#    order, a chunked POST and a Content-Length body holding a request line
#    delivered whole as a body, Expect: 100-continue with curl, HEAD on a
#    kept-alive connection, an Upgrade passed through as a stream (to an
#    upgrading backend) or answered 200 (to one that does not upgrade);
#  - real clients: curl over keep-alive with several URLs, and h2c (carried
#    stream by stream by meshd's HTTP/2 sessions, HTTP/2 upstream) with curl
#    --http2-prior-knowledge, nghttp and h2load against nghttpx speaking h2c
#    in front of an app.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

VIP=10.96.0.20    # web, unnamed port 80: sniffed
VIP_N=10.96.0.21  # web-http, port 80 named http
VIP_H2=10.96.0.22 # h2, unnamed port 80 -> nghttpx h2c
VIP_H2N=10.96.0.23 # h2-named, port 80 named http2
VIP_WS=10.96.0.24 # ws, port 80 named http -> the upgrade echo
topo_init
topo_create 2 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null


service_yaml() { # NAME VIP APP PORTSPEC
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\nspec:\n  clusterIP: %s\n  selector: {app: %s}\n  ports: [%s]\n---\n' "$@"
}

write_config() {
    local d=$1
    mkdir -p "$d"
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n' >"$d/namespace.yaml"
    {
        pod_yaml 1 1 '{app: client}' client
        pod_yaml 2 1 '{app: web}' web
        pod_yaml 2 2 '{app: web}' web
        pod_yaml 2 3 '{app: h2}' h2
    } >"$d/pods.yaml"
    {
        service_yaml web "$VIP" web '{port: 80, targetPort: 8080}'
        service_yaml web-http "$VIP_N" web '{name: http, port: 80, targetPort: 8080}'
        service_yaml h2 "$VIP_H2" h2 '{port: 80, targetPort: 8082}'
        service_yaml h2-named "$VIP_H2N" h2 '{name: http2, port: 80, targetPort: 8082}'
        service_yaml ws "$VIP_WS" h2 '{name: http, port: 80, targetPort: 8083}'
    } >"$d/services.yaml"
}
for i in 1 2; do write_config "$E2E_TMP/config-$i"; done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll_pod 1 1 1 client
enroll_pod 2 2 1 web
enroll_pod 2 2 2 web
enroll_pod 2 2 3 h2
backend() { # I J NAME
    topo_spawn "${POD_NS[$1,$2]}" "$E2E_TMP/httpd-$1-$2.out" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 "$3" \
        "$E2E_TMP/httpd-$1-$2.log" >/dev/null
    topo_wait_tcp "${POD_NS[$1,$2]}" "${POD_IP4[$1,$2]}" 8080 10
}
backend 2 1 web-a
backend 2 2 web-b
backend 2 3 h2-app
# h2c in front of the app in pod (2,3): nghttpx takes prior-knowledge
# HTTP/2 in clear text and forwards to the app over loopback (not captured).
topo_spawn "${POD_NS[2,3]}" "$E2E_TMP/nghttpx.log" /usr/sbin/nghttpx --conf=/dev/null \
    --frontend='*,8082;no-tls' --backend='127.0.0.1,8080' --workers=1 --log-level=WARN \
    --errorlog-file=/dev/stderr --accesslog-file=/dev/null >/dev/null
topo_wait_tcp "${POD_NS[2,3]}" "${POD_IP4[2,3]}" 8082 10
topo_spawn "${POD_NS[2,3]}" "$E2E_TMP/upgrade.out" /usr/bin/python3 tests/e2e/lib/upgrade_echo.py 8083 \
    "$E2E_TMP/upgrade.log" >/dev/null
topo_wait_tcp "${POD_NS[2,3]}" "${POD_IP4[2,3]}" 8083 10

APP_LOGS=("$E2E_TMP/httpd-2-1.log" "$E2E_TMP/httpd-2-2.log")
raw() { # VIP REQUEST [QUIET_S]: raw bytes from the client pod
    in_pod "1,1" /usr/bin/python3 tests/e2e/lib/rawhttp.py "$1" 80 "$2" "${3:-3}"
}
app_lines() { # how many requests the web apps logged in all
    local n=0 f
    for f in "${APP_LOGS[@]}"; do
        [ -f "$f" ] && n=$((n + $(wc -l <"$f")))
    done
    echo "$n"
}
app_log() { cat "${APP_LOGS[@]}" 2>/dev/null || true; }

# refused NAME STATUS REQUEST: to both web Services, one answer STATUS, the
# connection closed, the apps' logs unchanged.
refused() {
    local name=$1 want=$2 req=$3 vip before after out
    for vip in "$VIP" "$VIP_N"; do
        before=$(app_lines)
        out=$(raw "$vip" "$req" 2>&1 || true)
        after=$(app_lines)
        local label="$name ($([[ $vip == "$VIP" ]] && echo unnamed || echo http) port)"
        t_expect_eq "$(head -1 <<<"$out" | cut -d' ' -f1-2)" "HTTP/1.1 $want" "$label: $want"
        t_expect_eq "$(sed -n 2p <<<"$out")" closed "$label: connection closed after it"
        t_expect_eq "$(tail -n +3 <<<"$out" | grep -c '^HTTP/1')" 1 "$label: one answer, no second (smuggled) one"
        t_expect_contains "$(tr -d '\r' <<<"$out")" "server: meshd" "$label: answered by meshd"
        t_expect_eq "$((after - before))" 0 "$label: nothing reached the app"
    done
}
# refused_stdin NAME STATUS PYTHON_EXPR: the same with generated bytes.
refused_stdin() {
    local name=$1 want=$2 expr=$3 vip before after out
    for vip in "$VIP" "$VIP_N"; do
        before=$(app_lines)
        out=$(/usr/bin/python3 -c "import sys; sys.stdout.buffer.write($expr)" |
            in_pod "1,1" /usr/bin/python3 tests/e2e/lib/rawhttp.py "$vip" 80 - 2>&1 || true)
        after=$(app_lines)
        local label="$name ($([[ $vip == "$VIP" ]] && echo unnamed || echo http) port)"
        t_expect_eq "$(head -1 <<<"$out" | cut -d' ' -f1-2)" "HTTP/1.1 $want" "$label: $want"
        t_expect_contains "$(tr -d '\r' <<<"$out")" "server: meshd" "$label: answered by meshd"
        t_expect_eq "$((after - before))" 0 "$label: nothing reached the app"
    done
}
# probe: a clean request after a desync attempt is answered as itself.
probe() {
    local before out
    before=$(app_lines)
    out=$(raw "$VIP" 'GET /probe HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n')
    t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "$1: the next request is answered"
    t_expect_contains "$out" '"path": "/probe"' "$1: ... as itself"
    t_expect_eq "$(($(app_lines) - before))" 1 "$1: ... and the app saw exactly that one"
}

H='Host: web\r\n'
t_begin "sanity: a plain request reaches an app through both ports"
out=$(raw "$VIP" "GET /hello HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "unnamed port: 200"
out=$(raw "$VIP_N" "GET /hello HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "http port: 200"
t_expect_eq "$(app_log | grep -c '"/hello"')" 2 "the apps logged both"

t_begin "Content-Length: conflicting, duplicated, a list, not digits"
refused "two different Content-Length" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 3\\r\\nContent-Length: 5\\r\\n\\r\\nabcde"
refused "two equal Content-Length" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 5\\r\\nContent-Length: 5\\r\\n\\r\\nabcde"
refused "Content-Length: 5, 5" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 5, 5\\r\\n\\r\\nabcde"
refused "Content-Length: +5" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: +5\\r\\n\\r\\nabcde"

t_begin "Transfer-Encoding: with Content-Length, not ending in chunked, chunked twice"
refused "TE chunked with Content-Length" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 6\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nG"
refused "TE: chunked, gzip" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked, gzip\\r\\n\\r\\n0\\r\\n\\r\\n"
refused "TE: gzip" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: gzip\\r\\n\\r\\nabc"
refused "TE: xchunked" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: xchunked\\r\\n\\r\\n0\\r\\n\\r\\n"
refused "TE: chunked, chunked" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked, chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
refused "two TE: chunked headers" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
refused "TE in an HTTP/1.0 request" 400 "POST /x HTTP/1.0\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"

t_begin "line framing: obs-fold, bare CR, bare LF, control bytes"
refused "obs-fold" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\r\\n b\\r\\n\\r\\n"
refused "obs-fold hiding TE" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding:\\r\\n chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
refused "bare CR in a header" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\rX-B: b\\r\\n\\r\\n"
refused "bare LF line endings" 400 'GET /x HTTP/1.1\nHost: web\n\n'
refused "one bare LF among CRLFs" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\nX-B: b\\r\\n\\r\\n"
refused "NUL in a header value" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\x00b\\r\\n\\r\\n"
refused "a control byte in a header value" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\x01b\\r\\n\\r\\n"
refused "DEL in a header value" 400 "GET /x HTTP/1.1\\r\\n${H}X-A: a\\x7fb\\r\\n\\r\\n"

t_begin "header names: space before colon, invalid characters, empty"
refused "space before colon" 400 "GET /x HTTP/1.1\\r\\n${H}X-A : b\\r\\n\\r\\n"
refused "space before colon on TE" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding : chunked\\r\\nContent-Length: 3\\r\\n\\r\\nabc"
refused "'@' in a header name" 400 "GET /x HTTP/1.1\\r\\n${H}X@A: b\\r\\n\\r\\n"
refused "a space inside a header name" 400 "GET /x HTTP/1.1\\r\\n${H}X A: b\\r\\n\\r\\n"
refused "an empty header name" 400 "GET /x HTTP/1.1\\r\\n${H}: b\\r\\n\\r\\n"

t_begin "request line and Host: HTTP/0.9, bad versions, invalid methods, no or two Hosts"
refused "HTTP/0.9 (no version)" 400 'GET /x\r\n\r\n'
refused "HTTP/1.2" 400 "GET /x HTTP/1.2\\r\\n${H}\\r\\n"
refused "HTTP/2.0 in a request line" 400 "GET /x HTTP/2.0\\r\\n${H}\\r\\n"
refused "an unknown method" 400 "FOO /x HTTP/1.1\\r\\n${H}\\r\\n"
# Bytes that do not look like a request line are not HTTP to the sniffer,
# on either port: they go on as bytes, as through ztunnel (a port declared
# HTTP carries whatever its client sends, test_external_hosts); the app
# answers them itself and serves nothing.
for m in 'GE@T' 'get'; do
    for vip in "$VIP" "$VIP_N"; do
        before=$(app_lines)
        out=$(raw "$vip" "$m /x HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
        label="method '$m' ($([[ $vip == "$VIP" ]] && echo unnamed || echo http) port)"
        t_expect_not_contains "$(tr -d '\r' <<<"$out")" "server: meshd" "$label: carried as bytes, not answered by meshd"
        t_expect_eq "$(head -1 <<<"$out" | cut -d' ' -f1-2)" "HTTP/1.1 501" "$label: the app refused it itself (501)"
        t_expect_eq "$(($(app_lines) - before))" 0 "$label: and served nothing"
    done
done
refused "two spaces in the request line" 400 "GET  /x HTTP/1.1\\r\\n${H}\\r\\n"
refused "HTTP/1.1 without Host" 400 'GET /x HTTP/1.1\r\n\r\n'
refused "two Host headers" 400 "GET /x HTTP/1.1\\r\\n${H}Host: other\\r\\n\\r\\n"
refused "a fragment in the target" 400 "GET /x#/y HTTP/1.1\\r\\n${H}\\r\\n"

t_begin "limits (Envoy's defaults): 60 KiB head, 100 headers: 431"
refused_stdin "a 70 KiB request line" 431 "b'GET /' + b'a' * 70000 + b' HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n'"
refused_stdin "70 KiB of headers" 431 "b'GET /x HTTP/1.1\\r\\nHost: web\\r\\n' + b''.join(b'X-%d: %s\\r\\n' % (i, b'v' * 1000) for i in range(70)) + b'\\r\\n'"
refused_stdin "101 headers" 431 "b'GET /x HTTP/1.1\\r\\nHost: web\\r\\n' + b''.join(b'X-%d: v\\r\\n' % i for i in range(100)) + b'\\r\\n'"
# At the limits: served. To the upgrade echo app, which counts no headers
# (Python's http.server refuses more than 99 itself, and meshd adds
# x-request-id).
many() { # N: a request with N headers in all
    /usr/bin/python3 -c "import sys; sys.stdout.buffer.write(b'GET /many-$1 HTTP/1.1\\r\\nHost: ws\\r\\n' + b''.join(b'X-%d: v\\r\\n' % i for i in range($1 - 1)) + b'\\r\\n')" |
        in_pod "1,1" /usr/bin/python3 tests/e2e/lib/rawhttp.py "$VIP_WS" 80 -
}
t_expect_eq "$(many 100 | head -1)" "HTTP/1.1 200 OK" "exactly 100 headers: served"
t_expect_eq "$(many 101 | head -1 | cut -d' ' -f1-2)" "HTTP/1.1 431" "101: 431"
t_expect_eq "$(grep -c '"/many-' "$E2E_TMP/upgrade.log")" 1 "... the app saw the 100, not the 101"
out=$(/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(b'GET /big HTTP/1.1\\r\\nHost: ws\\r\\nX-Big: ' + b'v' * (60 * 1024 - 48) + b'\\r\\n\\r\\n')" |
    in_pod "1,1" /usr/bin/python3 tests/e2e/lib/rawhttp.py "$VIP_WS" 80 -)
t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "a head just under 60 KiB: served"

t_begin "chunked bodies: bad size, overflow, data longer than its size"
refused "a chunk size not hex" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\nabc\\r\\n0\\r\\n\\r\\n"
refused "a negative chunk size" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n-5\\r\\nabcde\\r\\n0\\r\\n\\r\\n"
refused "a chunk size overflowing 64 bits" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n1ffffffffffffffff\\r\\nabc\\r\\n0\\r\\n\\r\\n"
refused "chunk data longer than its size" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabcdef\\r\\n0\\r\\n\\r\\n"
refused "a bare LF after a chunk size" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n3\\nabc\\r\\n0\\r\\n\\r\\n"

t_begin "desync attempts carrying a smuggled second request"
# CL.TE: a front end that reads Content-Length forwards the whole thing; a
# back end that reads chunked ends the body at "0" and takes the rest as
# the next request.
inner='GET /smuggled HTTP/1.1\r\nHost: web\r\nX-Ignore: x'
refused "CL.TE" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 51\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n$inner"
probe "after CL.TE"
# TE.CL: the reverse, the inner request hidden in a chunk.
inner2='GET /smuggled HTTP/1.1\r\nHost: web\r\nContent-Length: 10\r\n\r\nx=\r\n0\r\n\r\n'
refused "TE.CL" 400 "POST /x HTTP/1.1\\r\\n${H}Content-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3c\\r\\n$inner2"
probe "after TE.CL"
# TE.TE: one side ignores an obfuscated TE and falls back to CL.
refused "TE.TE (obfuscated second TE)" 400 "POST /x HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nTransfer-Encoding: x\\r\\nContent-Length: 4\\r\\n\\r\\n5c\\r\\n$inner2"
probe "after TE.TE"
# A good request, then a smuggling one in the same write: the first is
# served, the second refused, the connection closed.
before=$(app_lines)
out=$(raw "$VIP" "GET /first HTTP/1.1\\r\\n${H}\\r\\nPOST /x HTTP/1.1\\r\\n${H}Content-Length: 1\\r\\nContent-Length: 40\\r\\n\\r\\n$inner")
t_expect_eq "$(tail -n +3 <<<"$out" | grep -o '^HTTP/1.1 [0-9]*' | tr '\n' ' ')" "HTTP/1.1 200 HTTP/1.1 400 " "good then bad in one write: 200, then 400"
t_expect_eq "$(sed -n 2p <<<"$out")" closed "... then closed"
t_expect_eq "$(($(app_lines) - before))" 1 "... the app saw only the first"
t_expect_not_contains "$(app_log)" "/smuggled" "no smuggled request ever reached an app"
t_expect_eq "$(app_log | grep -c '"path": "/x"')" 0 "nor any refused request"

t_begin "legitimate framing: pipelining, chunked POST, a body holding a request line"
before=$(app_lines)
out=$(raw "$VIP" "GET /one HTTP/1.1\\r\\n${H}\\r\\nGET /two HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
t_expect_eq "$(tail -n +3 <<<"$out" | grep -c '^HTTP/1.1 200')" 2 "a pipelined pair in one write: two answers"
t_expect_eq "$(grep -o '"path": "/[a-z]*"' <<<"$out" | tr '\n' ' ')" '"path": "/one" "path": "/two" ' "... in order"
t_expect_eq "$(($(app_lines) - before))" 2 "... both reached the app"
out=$(raw "$VIP_N" "POST /chunked HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nConnection: close\\r\\n\\r\\n5\\r\\nhello\\r\\n6;ext=1\\r\\n world\\r\\n0\\r\\nX-Trailer: t\\r\\n\\r\\n")
t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "a chunked POST (with an extension and a trailer): 200"
t_expect_contains "$out" '"body_len": 11' "... its body arrived whole (11 bytes)"
body='GET /smuggled-in-body HTTP/1.1\r\nHost: web\r\n\r\n'
out=$(raw "$VIP" "POST /body HTTP/1.1\\r\\n${H}Content-Length: 45\\r\\n\\r\\n${body}GET /after HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
t_expect_eq "$(grep -o '"path": "/[a-z-]*"' <<<"$out" | tr '\n' ' ')" '"path": "/body" "path": "/after" ' \
    "a Content-Length body holding a request line: a body, then the real next request"
t_expect_contains "$out" '"body_len": 45' "... the body delivered as 45 bytes"
t_expect_not_contains "$(app_log)" '"path": "/smuggled-in-body"' "... never taken as a request"

t_begin "Expect: 100-continue and HEAD with curl and raw bytes"
head -c 1048576 /dev/urandom >"$E2E_TMP/big.bin"
out=$(in_pod "1,1" curl -sv -m 20 -H 'Expect: 100-continue' --data-binary @"$E2E_TMP/big.bin" "http://$VIP/upload" 2>&1 || true)
t_expect_contains "$out" "HTTP/1.1 100 Continue" "curl got the app's 100 Continue"
t_expect_contains "$out" "HTTP/1.1 200 OK" "then 200"
t_expect_contains "$out" '"body_len": 1048576' "the 1 MiB body arrived whole"
t_expect_contains "$(app_log)" '"expect": "100-continue"' "the app saw the Expect header"
out=$(in_pod "1,1" curl -s -m 10 -I "http://$VIP_N/head" || true)
t_expect_contains "$out" "HTTP/1.1 200 OK" "curl -I: 200"
t_expect_contains "$(tr -d '\r' <<<"$out" | tr A-Z a-z)" "content-length: " "... with the Content-Length a GET would have"
out=$(raw "$VIP" "HEAD /h HTTP/1.1\\r\\n${H}\\r\\nGET /g HTTP/1.1\\r\\n${H}Connection: close\\r\\n\\r\\n")
t_expect_eq "$(tail -n +3 <<<"$out" | grep -c '^HTTP/1.1 200')" 2 "HEAD then GET on one connection: two answers"
t_expect_eq "$(grep -o '"path": "/[a-z]*"' <<<"$out" | tr '\n' ' ')" '"path": "/g" ' "... the HEAD's without a body, the GET's with"

t_begin "Upgrade: passed through as a stream, or answered 200 when the app does not upgrade"
out=$(in_pod "1,1" /usr/bin/python3 -c "
import socket
c = socket.create_connection(('$VIP_WS', 80), timeout=5)
c.sendall(b'GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
got = b''
while b'\r\n\r\n' not in got:
    got += c.recv(4096)
head, rest = got.split(b'\r\n\r\n', 1)
print(head.split(b'\r\n')[0].decode())
for word in (b'hello', b'world'):
    c.sendall(word)
    want = b'echo:' + word
    while len(rest) < len(want):
        rest += c.recv(4096)
    print(rest[:len(want)].decode())
    rest = rest[len(want):]
")
t_expect_eq "$(tr '\n' ' ' <<<"$out")" "HTTP/1.1 101 Switching Protocols echo:hello echo:world " \
    "101, then bytes both ways over the upgraded connection"
t_expect_contains "$(cat "$E2E_TMP/upgrade.log")" '"upgrade": "echo"' "the app saw the Upgrade header"
out=$(raw "$VIP" "GET /ws HTTP/1.1\\r\\n${H}Connection: Upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\n")
t_expect_eq "$(head -1 <<<"$out")" "HTTP/1.1 200 OK" "an Upgrade the app ignores: its 200"
t_expect_contains "$out" '"path": "/ws"' "... from the app"

t_begin "real clients: curl keep-alive with several URLs"
out=$(in_pod "1,1" curl -s -m 20 -w '\n%{http_code} %{num_connects}\n' \
    "http://$VIP/k1" "http://$VIP/k2" "http://$VIP/k3" "http://$VIP/k4" | grep -E '^[0-9]{3} [0-9]+$' || true)
t_expect_eq "$(tr '\n' ' ' <<<"$out")" "200 1 200 0 200 0 200 0 " "four 200s over one connection"
t_expect_eq "$(app_log | grep -c '"path": "/k[1-4]"')" 4 "the apps saw the four"

t_begin "real clients: h2c prior knowledge (curl, nghttp, h2load) through nghttpx"
for vip in "$VIP_H2" "$VIP_H2N"; do
    port=$([[ $vip == "$VIP_H2" ]] && echo unnamed || echo http2)
    out=$(in_pod "1,1" curl -s -m 10 --http2-prior-knowledge -w '\n%{http_version} %{http_code}' "http://$vip/h2-curl-$port" || true)
    t_expect_eq "$(tail -1 <<<"$out")" "2 200" "curl --http2-prior-knowledge ($port port): HTTP/2 200"
    t_expect_contains "$out" "\"path\": \"/h2-curl-$port\"" "... answered by the app"
    out=$(in_pod "1,1" timeout 20 nghttp -v "http://$vip/h2-nghttp-$port" 2>&1 || true)
    t_expect_contains "$out" ":status: 200" "nghttp ($port port): :status 200"
    t_expect_contains "$out" "\"path\": \"/h2-nghttp-$port\"" "... answered by the app"
    out=$(in_pod "1,1" timeout 60 h2load -n 200 -c 4 -m 10 "http://$vip/h2-load-$port" 2>&1 || true)
    t_expect_contains "$out" "200 total, 200 started, 200 done, 200 succeeded" "h2load ($port port): 200 of 200 succeeded"
    t_expect_contains "$out" "status codes: 200 2xx" "... all 2xx"
done
t_expect_eq "$(grep -c '"path": "/h2-load-' "$E2E_TMP/httpd-2-3.log")" 400 "the app behind nghttpx saw the 400 h2load requests"

meshd_check_logs
t_summary
