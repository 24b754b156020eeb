#!/usr/bin/python3
"""A small HTTP/1.1 backend for the HTTP routing tests (keep-alive).

  httpd.py PORT NAME [LOG]   serve on [::]:PORT. Every request is answered
                             with a JSON body {"name": NAME, "method",
                             "path", "headers": {...}, "body_len"} and the
                             header x-served-by: NAME, except:
      /status/CODE          answers CODE (same body)
      /delay/MS             answers after MS milliseconds (at most 30 s)
      /fail-then-ok/KEY     503 the first time KEY is seen, 200 after
  NAME "fail-*" answers 503 to every request (a broken endpoint).
  With LOG, one JSON line per request (method, path, headers) is appended
  to LOG, so a test can check what reached the app (or that nothing did).
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "?"
LOG = None
SEEN = set()
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in one write (flushed per request): written
    # apart, Nagle holds the body for the peer's delayed ACK, 40 ms a request.
    wbufsize = 65536

    def log_message(self, *args):
        pass

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body_in = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body_in = self.read_chunked()
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = {"name": NAME, "method": self.command, "path": self.path,
               "headers": headers, "body_len": len(body_in)}
        if LOG:
            with LOCK, open(LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
        code = 503 if NAME.startswith("fail-") else 200
        parts = self.path.split("?")[0].split("/")
        if len(parts) >= 3 and parts[1] == "status":
            code = int(parts[2])
        elif len(parts) >= 3 and parts[1] == "delay":
            time.sleep(min(int(parts[2]), 30000) / 1000)
        elif len(parts) >= 3 and parts[1] == "fail-then-ok":
            with LOCK:
                first = parts[2] not in SEEN
                SEEN.add(parts[2])
            code = 503 if first else 200
        body = (json.dumps(rec) + "\n").encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("x-served-by", NAME)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = answer


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    NAME = sys.argv[2]
    LOG = sys.argv[3] if len(sys.argv) > 3 else None
    Server(("::", int(sys.argv[1])), Handler).serve_forever()
