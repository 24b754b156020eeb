#!/usr/bin/python3
"""A backend that accepts HTTP/1.1 Upgrade (as a WebSocket server would)
and then echoes bytes, for the Upgrade pass-through test.

  upgrade_echo.py PORT [LOG]   serve on [::]:PORT. A request carrying
      "Connection: upgrade" and "Upgrade: P" is answered "101 Switching
      Protocols" with "Upgrade: P"; after it every byte received is sent
      back prefixed "echo:" per read, until the client closes. Any other
      request gets 200 "no upgrade" and the connection closes. With LOG,
      one JSON line per request head (method, path, upgrade) is appended.
Each connection is bounded: 64 KiB of head, 60 s idle.
"""
import json
import socket
import socketserver
import sys
import threading

LOG = None
LOCK = threading.Lock()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(60)
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(4096)
            if not b or len(head) > 65536:
                return
            head += b
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        proto = hdrs.get("upgrade", "")
        upgrading = proto and "upgrade" in hdrs.get("connection", "").lower()
        if LOG:
            with LOCK, open(LOG, "a") as f:
                f.write(json.dumps({"method": method, "path": path, "upgrade": proto}) + "\n")
        if not upgrading:
            body = b"no upgrade\n"
            s.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                      % len(body) + body)
            return
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
                  + proto.encode() + b"\r\n\r\n")
        if rest:
            s.sendall(b"echo:" + rest)
        while True:
            b = s.recv(65536)
            if not b:
                return
            s.sendall(b"echo:" + b)


class Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    LOG = sys.argv[2] if len(sys.argv) > 2 else None
    Server(("::", int(sys.argv[1])), Handler).serve_forever()
