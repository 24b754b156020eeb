#!/usr/bin/python3
"""TLS clients for the ingress gateway test (test_gateway.sh).

  tls_edge.py keepalive IP PORT HOST CA GO_FILE
      one TLS connection (SNI HOST, verified against CA): a request, then
      waits for GO_FILE to exist (20 s at most), then a second request on
      the same connection; prints JSON {"first", "second": status,
      "serial": the server certificate's serial (hex), "same_conn": bool}.
  tls_edge.py idle IP PORT N GO_FILE
      opens N TCP connections that never speak, waits for GO_FILE (60 s at
      most), then prints JSON {"opened": n, "closed": how many the server
      had closed meanwhile}.
  tls_edge.py slowloris IP PORT HOST CA GO_FILE
      a TLS connection sending a request head it never finishes, held
      until GO_FILE exists (60 s at most); prints JSON {"closed": bool}.
"""
import json
import os
import select
import socket
import ssl
import sys
import time


def wait_for(path, limit):
    end = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.05)


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def request(tls, host, path):
    tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            return 0
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1])


def keepalive(ip, port, host, ca, go):
    raw = socket.create_connection((ip, int(port)), timeout=10)
    tls = context(ca).wrap_socket(raw, server_hostname=host)
    cert = tls.getpeercert()
    first = request(tls, host, "/before-rotation")
    wait_for(go, 20)
    local = tls.getsockname()
    second = request(tls, host, "/after-rotation")
    print(json.dumps({"first": first, "second": second, "serial": cert.get("serialNumber"),
                      "same_conn": tls.getsockname() == local}))


def idle(ip, port, n, go):
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(socket.create_connection((ip, int(port)), timeout=5))
        except OSError:
            break
    wait_for(go, 60)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            r, _, _ = select.select([s], [], [], 0)
            if r and s.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
        s.close()
    print(json.dumps({"opened": len(socks), "closed": closed}))


def slowloris(ip, port, host, ca, go):
    raw = socket.create_connection((ip, int(port)), timeout=10)
    tls = context(ca).wrap_socket(raw, server_hostname=host)
    tls.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode())
    wait_for(go, 60)
    tls.setblocking(False)
    closed = False
    try:
        r, _, _ = select.select([tls], [], [], 0)
        closed = bool(r) and tls.recv(1) == b""
    except (OSError, ssl.SSLError):
        closed = True
    print(json.dumps({"closed": closed}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"keepalive": keepalive, "idle": idle, "slowloris": slowloris}[cmd](*args)
