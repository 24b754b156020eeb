#!/usr/bin/python3
"""A minimal OTLP/HTTP JSON collector for the tracing tests (stdlib only).

  otlp_collector.py ADDR PORT [STATUS]

  POST /v1/traces   an ExportTraceServiceRequest in JSON: every span is
                    kept in memory, flattened with its resource's
                    service.name and its attributes as a {key: value}
                    map (stringValue, or intValue as an int). Answered
                    STATUS (default 200) with "{}" and a Content-Length,
                    on a keep-alive connection.
  GET /spans        every span kept, as a JSON array, oldest first
                    (?trace=HEX: only that trace's).
  GET /requests     how many export requests arrived.
  DELETE /spans     forgets every span.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SPANS = []
REQUESTS = [0]
LOCK = threading.Lock()
STATUS = 200
MAX_BODY = 16 << 20


def attr_value(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return v["boolValue"]
    return v


def flatten(req):
    out = []
    for rs in req.get("resourceSpans", []):
        res = {a["key"]: attr_value(a["value"])
               for a in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                span = dict(s)
                span["service"] = res.get("service.name")
                span["attributes"] = {a["key"]: attr_value(a["value"])
                                      for a in s.get("attributes", [])}
                out.append(span)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self.reply(413, "{}")
            return
        body = self.rfile.read(length)
        with LOCK:
            REQUESTS[0] += 1
        if urlparse(self.path).path != "/v1/traces":
            self.reply(404, "{}")
            return
        if self.headers.get("content-type", "").split(";")[0] != "application/json":
            self.reply(415, "{}")
            return
        try:
            spans = flatten(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.reply(400, "{}")
            return
        if STATUS == 200:
            with LOCK:
                SPANS.extend(spans)
        self.reply(STATUS, "{}")

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/requests":
            self.reply(200, str(REQUESTS[0]))
            return
        if u.path != "/spans":
            self.reply(404, "{}")
            return
        trace = parse_qs(u.query).get("trace", [None])[0]
        with LOCK:
            spans = [s for s in SPANS if not trace or s.get("traceId") == trace]
        self.reply(200, json.dumps(spans))

    def do_DELETE(self):
        with LOCK:
            SPANS.clear()
        self.reply(200, "{}")


def main():
    global STATUS
    if len(sys.argv) > 3:
        STATUS = int(sys.argv[3])
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
