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
  tls_edge.py serve PORT CERT KEY NAME
      an HTTPS backend (dual-stack) answering every request with NAME:
      the TLS a PASSTHROUGH gateway carries untouched ends here.
  tls_edge.py slowloris IP PORT HOST CA GO_FILE
      a TLS connection sending a request head it never finishes, held
      until GO_FILE exists (60 s at most); prints JSON {"closed": bool}.
  tls_edge.py hostile IP PORT HOST KIND LIMIT_S
      one connection sending what KIND says, then waiting (LIMIT_S at
      most) for the server to close it; prints JSON {"closed": bool,
      "after_s": seconds until closed, "reset": bool, "got": hex of the
      first bytes received}. KIND: garbage (random bytes), plain-http (an
      HTTP/1.1 request, no TLS), hello-cut (the first half of a real
      ClientHello, then our FIN), hello-held (the first half, then
      nothing: a handshake never finished), head-held (a whole handshake,
      then a request head never finished).
  tls_edge.py idle IP PORT N GO_FILE
      (as above; the open-file limit is raised to the hard limit first,
      and "refused" counts connects that failed.)
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
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    refused = 0
    t0 = time.monotonic()
    end = t0 + 60
    for _ in range(int(n)):
        if time.monotonic() > end:
            break
        try:
            socks.append(socket.create_connection((ip, int(port)), timeout=5))
        except OSError:
            refused += 1
            if refused > 100:
                break
    open_s = round(time.monotonic() - t0, 1)
    with open(go + ".opened", "w") as f:
        f.write("%d\n" % len(socks))
    wait_for(go, 60)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:  # no select(): these descriptors pass FD_SETSIZE
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(json.dumps({"opened": len(socks), "closed": closed, "refused": refused,
                      "open_s": open_s}))


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


def client_hello(host):
    """The first flight of a real TLS client: its ClientHello."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def hostile(ip, port, host, kind, limit):
    raw = socket.create_connection((ip, int(port)), timeout=10)
    sock = raw
    if kind == "garbage":
        raw.sendall(os.urandom(4096))
    elif kind == "plain-http":
        raw.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
    elif kind in ("hello-cut", "hello-held"):
        hello = client_hello(host)
        raw.sendall(hello[:len(hello) // 2])
        if kind == "hello-cut":
            raw.shutdown(socket.SHUT_WR)
    elif kind == "head-held":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode())
    start = time.monotonic()
    sock.settimeout(0.2)
    got, closed, reset = b"", False, False
    while time.monotonic() - start < float(limit):
        try:
            chunk = sock.recv(4096)
            if not chunk:
                closed = True
                break
            got += chunk
        except socket.timeout:
            continue
        except ssl.SSLError:
            closed = True
            break
        except OSError:
            closed = reset = True
            break
    print(json.dumps({"closed": closed, "after_s": round(time.monotonic() - start, 1),
                      "reset": reset, "got": got[:16].hex(),
                      "text": got[:512].decode("latin-1")}))


def serve(port, cert, key, name):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    srv = Server(("::", int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"keepalive": keepalive, "idle": idle, "slowloris": slowloris, "serve": serve,
     "hostile": hostile}[cmd](*args)
