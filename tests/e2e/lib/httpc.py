#!/usr/bin/python3
"""HTTP/1.1 keep-alive client for the HTTP routing tests.

  httpc.py count HOST PORT PATH N CONNS [HEADER:VALUE ...]
      N requests over CONNS keep-alive connections (round robin), each
      answer's x-served-by counted; prints JSON {"NAME": count, ...,
      "status": {"200": n, ...}, "failed": k, "connections": c} where
      connections is how many TCP connections were opened in all (a
      connection the server or meshd closed is reopened and counted).
      per_connection lists the names each connection slot saw.
  httpc.py get HOST PORT PATH [HEADER:VALUE ...]
      one request (method $HTTPC_METHOD, default GET); prints JSON
      {"status", "headers", "body"}
Bounded in time: 300 s (TALLY_DEADLINE_S).
"""
import http.client
import json
import os
import sys
import time


def headers_of(args):
    h = {}
    for a in args:
        k, _, v = a.partition(":")
        h[k] = v
    return h


def count(host, port, path, n, conns, hdrs):
    deadline = time.monotonic() + float(os.environ.get("TALLY_DEADLINE_S", "300"))
    pool = [None] * conns
    out = {"status": {}, "failed": 0, "connections": 0}
    seen = [set() for _ in range(conns)]  # names each connection slot saw
    for i in range(n):
        if time.monotonic() > deadline:
            out["failed"] += 1
            continue
        k = i % conns
        for attempt in range(2):
            if pool[k] is None:
                pool[k] = http.client.HTTPConnection(host, port, timeout=10)
                out["connections"] += 1
            try:
                pool[k].request("GET", path, headers=hdrs)
                r = pool[k].getresponse()
                r.read()
                out["status"][str(r.status)] = out["status"].get(str(r.status), 0) + 1
                name = r.getheader("x-served-by") or "none"
                out[name] = out.get(name, 0) + 1
                seen[k].add(name)
                if r.getheader("connection", "").lower() == "close":
                    pool[k].close()
                    pool[k] = None
                break
            except (OSError, http.client.HTTPException):
                pool[k].close()
                pool[k] = None
                if attempt == 1:
                    out["failed"] += 1
    out["per_connection"] = [sorted(x) for x in seen]
    print(json.dumps(out))


def get(host, port, path, hdrs):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request(os.environ.get("HTTPC_METHOD", "GET"), path, headers=hdrs)
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    print(json.dumps({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                      "body": body}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "count":
        count(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
              headers_of(sys.argv[7:]))
    elif cmd == "get":
        get(sys.argv[2], int(sys.argv[3]), sys.argv[4], headers_of(sys.argv[5:]))
