#!/usr/bin/python3
"""A bare HBONE client for attacks in e2e tests: TLS 1.3 with whatever
certificate chain it is given, then one HTTP/2 CONNECT and an HTTP/1.0
GET through the tunnel. Independent of meshd's own client, so a test can
present a certificate meshd would never issue (a node key used directly).

  hbone_client.py ADDR:PORT AUTHORITY CHAIN.pem KEY.pem ROOT.pem

CHAIN.pem is the leaf followed by its CAs (sent as they are). Prints
"tunnel 200: <first response line>" and exits 0 when the tunnel carries
the request; prints "refused: <what happened>" and exits 1 otherwise.
Bounded: 5 s for everything. The server's certificate is checked against
ROOT.pem only (its identity is not what this client tests).
"""
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, DATA, RST_STREAM, GOAWAY = 4, 1, 0, 3, 7
END_HEADERS, ACK = 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(index, value):
    """HPACK literal without indexing, indexed name (index < 15), raw value."""
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index, len(v)]) + v


def read_frame(tls, buf, deadline):
    while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
        tls.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = tls.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        buf += chunk
    n = int.from_bytes(buf[:3], "big")
    kind, flags = buf[3], buf[4]
    stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
    return kind, flags, stream, buf[9 : 9 + n], buf[9 + n :]


def run(addr, authority, chain, key, root):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(root)
    ctx.load_cert_chain(chain, key)
    ctx.set_alpn_protocols(["h2"])
    deadline = time.monotonic() + 5
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    tls = ctx.wrap_socket(raw)
    try:
        block = literal(2, "CONNECT") + literal(1, authority)  # :method, :authority
        tls.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, 1, block))
        buf, status, body = b"", None, b""
        while time.monotonic() < deadline:
            kind, flags, stream, payload, buf = read_frame(tls, buf, deadline)
            if kind == SETTINGS and not flags & ACK:
                tls.sendall(frame(SETTINGS, ACK, 0))
            elif kind == HEADERS and stream == 1:
                # 0x88: the static table's ":status: 200"; anything else is
                # not a tunnel.
                if payload[:1] != b"\x88":
                    return f"refused: CONNECT answered with header block {payload.hex()}"
                status = 200
                tls.sendall(frame(DATA, 0, 1, f"GET / HTTP/1.0\r\nHost: {authority}\r\n\r\n".encode()))
            elif kind == DATA and stream == 1:
                body += payload
                if b"\r\n" in body:
                    line = body.split(b"\r\n", 1)[0].decode(errors="replace")
                    return f"tunnel {status}: {line}"
            elif kind in (RST_STREAM, GOAWAY):
                return f"refused: frame type {kind} ({payload.hex()})"
        return "refused: timed out"
    finally:
        tls.close()


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        out = run(*sys.argv[1:])
    except (OSError, EOFError, ssl.SSLError) as e:
        out = f"refused: {type(e).__name__}: {e}"
    print(out)
    return 0 if out.startswith("tunnel 200") else 1


if __name__ == "__main__":
    sys.exit(main())
