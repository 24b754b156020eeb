#!/usr/bin/env python3
"""A stand-in for the Kubernetes API server, for tests (stdlib only).

Serves the real API's list/watch protocol for the kinds meshd reads, so a
real client (kubectl, python3-kubernetes, meshd --kube) works against it:

  discovery   /api, /api/v1, /apis, /apis/G, /apis/G/V, /version
  lists       GET .../RESOURCE: {"kind":"XList","metadata":{"resourceVersion"},
              "items":[...]} (items without kind/apiVersion, as the real
              server's typed lists); labelSelector (=, ==, !=, exists),
              fieldSelector metadata.name / metadata.namespace / spec.nodeName;
              limit=N pages them: metadata.continue (an opaque token: the
              list's resourceVersion and where the next page starts) and
              remainingItemCount while more follow, every page at the first
              one's resourceVersion; a token older than the compaction point
              is 410 Expired (the client lists again from the start). Unlike
              the real server's, later pages show objects as they are now,
              not as of that resourceVersion
  watch       ?watch=1 (or true): a chunked stream of one JSON event a line,
              ADDED/MODIFIED/DELETED from resourceVersion (none or "0": every
              object as ADDED first), BOOKMARK every --bookmark-seconds when
              allowWatchBookmarks=true, an ERROR event with a 410 Status for a
              resourceVersion older than the compaction point (and a 410
              response for such a list); timeoutSeconds ends the stream
  writes      POST (create), PUT (replace), PATCH (merge, strategic merge
              treated as merge, JSON patch add/replace/remove), DELETE
  auth        --token-file: every request needs "Authorization: Bearer T"
              with T the file's content, read again at each request
              (a rotated token is accepted at once, the old one refused)
  TLS         --tls-cert/--tls-key: HTTPS

One store per (group, kind): every served version of a kind is a view of the
same objects (as the real server converts between versions), with apiVersion
set to the version asked for.

The control port (--control-port, plain HTTP, 127.0.0.1 or wherever --listen
is) steers the test:
  POST /cut          closes every open watch mid-stream (no final chunk)
  POST /compact      the resourceVersion moves on and every older one is
                     compacted (410); open watches are cut so clients come
                     back with an old one
  POST /down         closes the API listener and every connection
  POST /up           listens again on the same port
  POST /seed         a JSON list of objects (apiVersion, kind, metadata set),
                     created or replaced at once (many objects, quickly)
  POST /delete?kind=K&namespace=NS&name=N[&group=G]  deletes an object, also
                     while the API is down (a watch that comes back after a
                     compaction never sees the event: only a relist tells)
  POST /expire-continue  the next list request with a continue token is
                     410 Expired, as after a compaction between two pages
  GET  /stats        {"lists":N,"watches":N,"open_watches":N,"requests":[...],
                     "user_agents":[...]} (the last 200 requests as "METHOD PATH",
                     and each one's User-Agent, in the same order)
"""

import argparse
import base64
import copy
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (group, versions, plural, kind, namespaced)
KINDS = [
    ("", ["v1"], "namespaces", "Namespace", False),
    ("", ["v1"], "pods", "Pod", True),
    ("", ["v1"], "services", "Service", True),
    ("", ["v1"], "secrets", "Secret", True),
    ("", ["v1"], "configmaps", "ConfigMap", True),
    ("discovery.k8s.io", ["v1"], "endpointslices", "EndpointSlice", True),
    ("apps", ["v1"], "deployments", "Deployment", True),
]
for plural, kind in [("virtualservices", "VirtualService"), ("destinationrules", "DestinationRule"),
                     ("gateways", "Gateway"), ("serviceentries", "ServiceEntry"),
                     ("sidecars", "Sidecar"), ("workloadentries", "WorkloadEntry"),
                     ("workloadgroups", "WorkloadGroup")]:
    KINDS.append(("networking.istio.io", ["v1", "v1beta1", "v1alpha3"], plural, kind, True))
for plural, kind in [("peerauthentications", "PeerAuthentication"),
                     ("authorizationpolicies", "AuthorizationPolicy"),
                     ("requestauthentications", "RequestAuthentication")]:
    KINDS.append(("security.istio.io", ["v1", "v1beta1"], plural, kind, True))
KINDS.append(("telemetry.istio.io", ["v1", "v1alpha1"], "telemetries", "Telemetry", True))
for plural, kind, versions in [("gateways", "Gateway", ["v1", "v1beta1"]),
                               ("httproutes", "HTTPRoute", ["v1", "v1beta1"]),
                               ("referencegrants", "ReferenceGrant", ["v1beta1", "v1alpha2"]),
                               ("tlsroutes", "TLSRoute", ["v1alpha2"]),
                               ("tcproutes", "TCPRoute", ["v1alpha2"])]:
    KINDS.append(("gateway.networking.k8s.io", versions, plural, kind, True))

SHORT = {"namespaces": ["ns"], "pods": ["po"], "services": ["svc"], "configmaps": ["cm"], "deployments": ["deploy"],
         "virtualservices": ["vs"], "destinationrules": ["dr"], "gateways": ["gw"], "serviceentries": ["se"],
         "peerauthentications": ["pa"], "authorizationpolicies": ["ap"], "requestauthentications": ["ra"]}
BY_PLURAL = {(g, p): (g, vs, p, k, n) for g, vs, p, k, n in KINDS}
HISTORY_MAX = 10000


class Store:
    def __init__(self, bookmark_s):
        self.cond = threading.Condition()
        self.rv = 1
        self.compacted = 0  # a resourceVersion below this is 410 Gone
        self.objects = {}  # (group, kind) -> {(ns, name): obj}
        self.history = []  # (rv, type, group, kind, obj)
        self.cut_gen = 0
        self.expire_continue = False
        self.bookmark_s = bookmark_s
        self.stats = {"lists": 0, "watches": 0, "open_watches": 0, "requests": [], "user_agents": []}

    def _emit(self, typ, g, k, obj):
        self.history.append((self.rv, typ, g, k, copy.deepcopy(obj)))
        if len(self.history) > HISTORY_MAX:
            drop = self.history[: len(self.history) - HISTORY_MAX]
            self.compacted = max(self.compacted, drop[-1][0] + 1)
            del self.history[: len(drop)]
        self.cond.notify_all()

    def put(self, g, k, ns, obj, create_only=False, must_exist=False):
        """Create or replace; returns (status, object)."""
        with self.cond:
            objs = self.objects.setdefault((g, k), {})
            meta = obj.setdefault("metadata", {})
            name = meta.get("name")
            if not name:
                return 422, status_obj(422, "Invalid", "metadata.name: Required value")
            if ns is not None:
                meta["namespace"] = ns
            key = (meta.get("namespace"), name)
            old = objs.get(key)
            if old is not None and create_only:
                return 409, status_obj(409, "AlreadyExists", f'{k.lower()} "{name}" already exists')
            if old is None and must_exist:
                return 404, status_obj(404, "NotFound", f'{k.lower()} "{name}" not found')
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            meta["creationTimestamp"] = (old["metadata"].get("creationTimestamp") if old else
                                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            meta["generation"] = (old["metadata"].get("generation", 1) + 1) if old else 1
            objs[key] = obj
            self._emit("MODIFIED" if old else "ADDED", g, k, obj)
            return (200 if old else 201), obj

    def delete(self, g, k, ns, name):
        with self.cond:
            obj = self.objects.get((g, k), {}).pop((ns, name), None)
            if obj is None:
                return 404, status_obj(404, "NotFound", f'{k.lower()} "{name}" not found')
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._emit("DELETED", g, k, obj)
            return 200, obj


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def send_json(handler, code, body):
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def merge_patch(dst, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(dst, dict):
        dst = {}
    for key, val in patch.items():
        if key.startswith("$"):
            continue  # strategic-merge directives
        if val is None:
            dst.pop(key, None)
        else:
            dst[key] = merge_patch(dst.get(key), val)
    return dst


def json_patch(doc, ops):
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(idx, op["value"])
                else:
                    parent[idx] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise ValueError("unsupported op " + op["op"])
    return doc


def parse_label_selector(sel):
    reqs = []
    for term in filter(None, (t.strip() for t in (sel or "").split(","))):
        m = re.fullmatch(r"([^!=]+?)\s*(==|=|!=)\s*(.*)", term)
        if m:
            reqs.append((m.group(1), m.group(2), m.group(3)))
        elif term.startswith("!"):
            reqs.append((term[1:], "absent", None))
        else:
            reqs.append((term, "exists", None))
    return reqs


def labels_match(reqs, labels):
    for key, op, val in reqs:
        have = labels.get(key)
        if op in ("=", "==") and have != val:
            return False
        if op == "!=" and have == val:
            return False
        if op == "exists" and have is None:
            return False
        if op == "absent" and have is not None:
            return False
    return True


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def parse_field_selector(sel):
    reqs = []
    for term in filter(None, (t.strip() for t in (sel or "").split(","))):
        m = re.fullmatch(r"([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace", "spec.nodeName"):
            raise ValueError(f'field label not supported: "{term}"')
        reqs.append(m.groups())
    return reqs


def fields_match(reqs, obj):
    for path, op, val in reqs:
        if (field_value(obj, path) == val) != (op != "!="):
            return False
    return True


class API(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-standin/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kubeapi: " + (fmt % args) + "\n")

    # ---- plumbing -------------------------------------------------------
    def send_json(self, code, body):
        send_json(self, code, body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 3 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def authorized(self):
        tf = self.server.token_file
        if not tf:
            return True
        try:
            with open(tf) as f:
                want = f.read().strip()
        except OSError:
            return False
        return self.headers.get("Authorization", "") == "Bearer " + want

    def route(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        parts = [p for p in u.path.split("/") if p]
        return u.path, parts, q

    def handle_any(self, method):
        store = self.server.store
        path, parts, q = self.route()
        with store.cond:
            reqs = store.stats["requests"]
            reqs.append(f"{method} {self.path}")
            del reqs[:-200]
            uas = store.stats["user_agents"]
            uas.append(self.headers.get("User-Agent", ""))
            del uas[:-200]
        if not self.authorized():
            return self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
        if method == "GET" and self.discovery(path, parts):
            return None
        res = self.resource_of(parts)
        if res is None:
            return self.send_json(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        (g, versions, plural, kind, namespaced), version, ns, name = res
        try:
            if method == "GET" and name is None:
                return self.list_or_watch(g, version, kind, ns, q)
            if method == "GET":
                obj = store.objects.get((g, kind), {}).get((ns, name))
                if obj is None:
                    return self.send_json(404, status_obj(404, "NotFound", f'{plural} "{name}" not found'))
                return self.send_json(200, self.view(obj, g, version, kind))
            body = self.read_body()
            if method == "DELETE":
                code, obj = store.delete(g, kind, ns, name)
                return self.send_json(code, self.view(obj, g, version, kind) if code == 200 else obj)
            if method == "POST" and name is None:
                code, obj = store.put(g, kind, ns, self.typed(json.loads(body), g, version, kind),
                                      create_only=True)
            elif method == "PUT" and name is not None:
                obj = self.typed(json.loads(body), g, version, kind)
                obj.setdefault("metadata", {})["name"] = name
                code, obj = store.put(g, kind, ns, obj, must_exist=True)
            elif method == "PATCH" and name is not None:
                code, obj = self.patch(g, version, kind, ns, name, body)
            else:
                return self.send_json(405, status_obj(405, "MethodNotAllowed", method))
            return self.send_json(code, self.view(obj, g, version, kind) if code < 300 else obj)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return self.send_json(400, status_obj(400, "BadRequest", str(e)))

    def patch(self, g, version, kind, ns, name, body):
        store = self.server.store
        ctype = self.headers.get("Content-Type", "")
        with store.cond:
            cur = store.objects.get((g, kind), {}).get((ns, name))
            if cur is None:
                return 404, status_obj(404, "NotFound", f'"{name}" not found')
            doc = copy.deepcopy(cur)
            patch = json.loads(body)
            if "json-patch" in ctype:
                doc = json_patch(doc, patch)
            elif "merge-patch" in ctype:  # merge and strategic merge
                doc = merge_patch(doc, patch)
            else:
                return 415, status_obj(415, "UnsupportedMediaType", ctype)
            return store.put(g, kind, ns, self.typed(doc, g, version, kind), must_exist=True)

    def typed(self, obj, g, version, kind):
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        obj["apiVersion"] = f"{g}/{version}" if g else version
        obj["kind"] = kind
        return obj

    def view(self, obj, g, version, kind):
        out = copy.deepcopy(obj)
        out["apiVersion"] = f"{g}/{version}" if g else version
        out["kind"] = kind
        return out

    def resource_of(self, parts):
        """/api/v1[/namespaces/NS]/PLURAL[/NAME] or /apis/G/V[/namespaces/NS]/PLURAL[/NAME]."""
        if len(parts) >= 3 and parts[0] == "api":
            g, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            g, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if len(rest) == 2 and rest[0] == "namespaces" and g == "" and ns is None:
            return BY_PLURAL[("", "namespaces")], version, None, rest[1]
        if not rest or len(rest) > 2 or (g, rest[0]) not in BY_PLURAL:
            return None
        res = BY_PLURAL[(g, rest[0])]
        if version not in res[1] or (ns is not None and not res[4]):
            return None
        return res, version, ns, (rest[1] if len(rest) == 2 else None)

    # ---- discovery ------------------------------------------------------
    def resources_json(self, g, version):
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{g}/{version}" if g else version,
                "resources": [dict({"name": p, "singularName": k.lower(), "namespaced": n, "kind": k,
                                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
                                   **({"shortNames": SHORT[p]} if p in SHORT else {}))
                              for gg, vs, p, k, n in KINDS if gg == g and version in vs]}

    def openapi_v3(self, parts):
        """The least kubectl's validation and apply need: an index of group
        versions, and per group version one schema per kind that names its
        group-version-kind and accepts any fields (as a CRD with
        x-kubernetes-preserve-unknown-fields)."""
        gvs = sorted({(g, v) for g, vs, _, _, _ in KINDS for v in vs})
        rel = {("api/v1" if not g else f"apis/{g}/{v}"): (g, v) for g, v in gvs}
        if parts == ["openapi", "v3"]:
            return {"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash=standin"} for k in rel}}
        key = "/".join(parts[2:])
        if key not in rel:
            return None
        g, v = rel[key]
        schemas = {}
        for gg, vs, _, k, _ in KINDS:
            if gg == g and v in vs:
                schemas[f"{g or 'core'}.{v}.{k}"] = {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "x-kubernetes-group-version-kind": [{"group": g, "version": v, "kind": k}],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.30.0"},
                "paths": {}, "components": {"schemas": schemas}}

    def group_json(self, g):
        versions = next(vs for gg, vs, _, _, _ in KINDS if gg == g)
        gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": gvs, "preferredVersion": gvs[0]}

    def discovery(self, path, parts):
        groups = sorted({g for g, _, _, _, _ in KINDS if g})
        if parts[:2] == ["openapi", "v3"]:
            doc = self.openapi_v3(parts)
            if doc is None:
                return False
            self.send_json(200, doc)
        elif parts == ["version"]:
            self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-standin",
                                 "platform": "linux/amd64"})
        elif parts == ["api"]:
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                 "serverAddress": "127.0.0.1"}]})
        elif parts == ["api", "v1"]:
            self.send_json(200, self.resources_json("", "v1"))
        elif parts == ["apis"]:
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                 "groups": [self.group_json(g) for g in groups]})
        elif len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            self.send_json(200, self.group_json(parts[1]))
        elif len(parts) == 3 and parts[0] == "apis" and parts[1] in groups and \
                any(parts[2] in vs for g, vs, _, _, _ in KINDS if g == parts[1]):
            self.send_json(200, self.resources_json(parts[1], parts[2]))
        else:
            return False
        return True

    # ---- list and watch -------------------------------------------------
    def selected(self, q, ns, kind):
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"))

        def ok(obj):
            meta = obj.get("metadata", {})
            if ns is not None and meta.get("namespace") != ns:
                return False
            return labels_match(labels, meta.get("labels") or {}) and fields_match(fields, obj)
        return ok

    def list_or_watch(self, g, version, kind, ns, q):
        store = self.server.store
        ok = self.selected(q, ns, kind)
        rv = q.get("resourceVersion", "")
        if q.get("watch", "").lower() in ("1", "true"):
            return self.watch(g, version, kind, ok, rv, q)
        limit = int(q.get("limit") or 0)
        start, list_rv = 0, None
        if q.get("continue"):
            try:
                tok = json.loads(base64.b64decode(q["continue"], validate=True))
                start, list_rv = int(tok["start"]), int(tok["rv"])
            except (ValueError, KeyError, TypeError):
                return self.send_json(400, status_obj(400, "BadRequest", "continue key is not valid"))
        with store.cond:
            store.stats["lists"] += 1
            if rv not in ("", "0") and int(rv) < store.compacted:
                return self.send_json(410, status_obj(410, "Expired", f"too old resource version: {rv} ({store.compacted})"))
            if list_rv is not None and (list_rv < store.compacted or store.expire_continue):
                store.expire_continue = False
                store.stats["continue_expired"] = store.stats.get("continue_expired", 0) + 1
                return self.send_json(410, status_obj(
                    410, "Expired", "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter."))
            items = []
            for obj in sorted(store.objects.get((g, kind), {}).values(),
                              key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"])):
                if ok(obj):
                    item = copy.deepcopy(obj)
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                    items.append(item)
            list_rv = store.rv if list_rv is None else list_rv
            meta = {"resourceVersion": str(list_rv)}
            if limit > 0:
                end = start + limit
                if end < len(items):
                    meta["continue"] = base64.b64encode(json.dumps({"rv": list_rv, "start": end}).encode()).decode()
                    meta["remainingItemCount"] = len(items) - end
                items = items[start:end]
            elif start:
                items = items[start:]
            body = {"kind": kind + "List", "apiVersion": f"{g}/{version}" if g else version,
                    "metadata": meta, "items": items}
        self.send_json(200, body)

    def event(self, typ, obj, g, version, kind):
        if typ == "ERROR":
            return {"type": typ, "object": obj}
        if typ == "BOOKMARK":
            return {"type": typ, "object": {"kind": kind, "apiVersion": f"{g}/{version}" if g else version,
                                            "metadata": obj["metadata"]}}
        return {"type": typ, "object": self.view(obj, g, version, kind)}

    def chunk(self, obj):
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, g, version, kind, ok, rv, q):
        store = self.server.store
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("1", "true")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with store.cond:
            store.stats["watches"] += 1
            store.stats["open_watches"] += 1
            gen = store.cut_gen
            pending = []
            if rv in ("", "0"):
                pending = [("ADDED", o) for o in store.objects.get((g, kind), {}).values() if ok(o)]
                since = store.rv
            elif int(rv) < store.compacted:
                pending = [("ERROR", status_obj(410, "Expired", f"too old resource version: {rv} ({store.compacted})"))]
                since = None
            else:
                since = int(rv)
        try:
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + store.bookmark_s
            while True:
                for typ, obj in pending:
                    self.chunk(self.event(typ, obj, g, version, kind))
                pending = []
                if since is None:
                    break  # after an ERROR the server ends the stream
                with store.cond:
                    while True:
                        if store.cut_gen != gen or self.server.down:
                            raise ConnectionAbortedError("cut")
                        new = [(t, o) for r, t, gg, k, o in store.history
                               if r > since and gg == g and k == kind]
                        now = time.monotonic()
                        if new or now >= deadline or (bookmarks and now >= next_bookmark):
                            break
                        store.cond.wait(max(0.01, min(deadline, next_bookmark if bookmarks else deadline) - now))
                    since = store.rv
                    pending = [(t, o) for t, o in new if ok(o)]
                    if not new and bookmarks and now >= next_bookmark:
                        pending = [("BOOKMARK", {"metadata": {"resourceVersion": str(store.rv)}})]
                        next_bookmark = now + store.bookmark_s
                if not pending and time.monotonic() >= deadline:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except ConnectionAbortedError:
            # Cut mid-stream: no final chunk, the connection is dropped.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with store.cond:
                store.stats["open_watches"] -= 1

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")


class APIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, store, args):
        self.store, self.verbose, self.token_file, self.down = store, args.verbose, args.token_file, False
        self.conns = set()
        super().__init__(addr, API)
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            self.socket = ctx.wrap_socket(self.socket, server_side=True)

    def process_request(self, request, client_address):
        self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.conns.discard(request)
        super().shutdown_request(request)


class Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        send_json(self, code, body)

    def do_GET(self):
        st = self.server.api.store
        with st.cond:
            self.reply(200, dict(st.stats, rv=st.rv, compacted=st.compacted))

    def do_POST(self):
        api = self.server.api
        st = api.store
        if self.path == "/cut":
            with st.cond:
                st.cut_gen += 1
                st.cond.notify_all()
        elif self.path == "/compact":
            # As etcd's compaction after a write: the current version moves
            # on and every older one is gone (a list still answers with
            # the new one, from which a watch is valid).
            with st.cond:
                st.rv += 1
                st.compacted = st.rv
                st.cut_gen += 1
                st.cond.notify_all()
        elif self.path == "/expire-continue":
            with st.cond:
                st.expire_continue = True
        elif self.path.startswith("/delete?"):
            q = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            code, _ = st.delete(q.get("group", ""), q["kind"], q.get("namespace"), q["name"])
            return self.reply(code, {"ok": code == 200, "rv": st.rv})
        elif self.path == "/seed":
            n = int(self.headers.get("Content-Length") or 0)
            objs = json.loads(self.rfile.read(n)) if n else []
            for obj in objs:
                g = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
                st.put(g, obj["kind"], obj["metadata"].get("namespace"), obj)
            return self.reply(200, {"ok": True, "rv": st.rv, "seeded": len(objs)})
        elif self.path == "/down":
            api.go_down()
        elif self.path == "/up":
            api.go_up()
        else:
            return self.reply(404, {"error": "unknown"})
        self.reply(200, {"ok": True, "rv": st.rv})


class Runner:
    """The API listener that can go down and come back on the same port."""

    def __init__(self, args, store):
        self.args, self.store, self.srv, self.lock = args, store, None, threading.Lock()

    def go_up(self):
        with self.lock:
            if self.srv:
                return
            for _ in range(50):
                try:
                    self.srv = APIServer((self.args.listen, self.args.port), self.store, self.args)
                    break
                except OSError:
                    time.sleep(0.1)
            self.args.port = self.srv.server_address[1]
            threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def go_down(self):
        with self.lock:
            srv, self.srv = self.srv, None
        if not srv:
            return
        srv.down = True
        with self.store.cond:
            self.store.cond.notify_all()
        srv.shutdown()
        srv.server_close()
        for c in list(srv.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--port-file", help="writes 'API_PORT CONTROL_PORT' here once listening")
    ap.add_argument("--token-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--bookmark-seconds", type=float, default=5.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    store = Store(args.bookmark_seconds)
    runner = Runner(args, store)
    runner.go_up()
    ctl = ThreadingHTTPServer((args.listen, args.control_port), Control)
    ctl.daemon_threads = True
    ctl.api = runner
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{args.port} {ctl.server_address[1]}\n")

        os.rename(args.port_file + ".tmp", args.port_file)
    ctl.serve_forever()


if __name__ == "__main__":
    main()
