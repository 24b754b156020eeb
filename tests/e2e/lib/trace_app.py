#!/usr/bin/python3
"""A service that calls another, propagating the trace context as an
instrumented app must (Istio's requirement: the app forwards the tracing
headers of the request it serves on the requests it makes).

  trace_app.py PORT NAME NEXT_URL

Every request is answered 200 with {"name": NAME, "next": <NEXT_URL's
status>, "headers": {...what it received...}} after a GET of NEXT_URL
carrying the request's traceparent, tracestate, b3, x-b3-* and
x-request-id.
"""
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import socket

PROPAGATED = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
              "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "x-request-id")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = {k: headers[k] for k in PROPAGATED if k in headers}
        req = urllib.request.Request(NEXT, headers=out)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                status = r.status
                r.read()
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError):
            status = 0
        body = json.dumps({"name": NAME, "next": status, "headers": headers}).encode()
        self.send_response(200 if status == 200 else 502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    PORT, NAME, NEXT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    Server(("::", PORT), Handler).serve_forever()
