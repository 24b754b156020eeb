#!/usr/bin/env python3
"""A structural check of Kubernetes manifests against the API's definitions,
offline.

The schema is the official Python client's (python3-kubernetes): every
V1* model class is generated from the Kubernetes OpenAPI document, with
`openapi_types` (attribute -> type: str, int, bool, float, object,
datetime, list[T], dict(str, T), or another model) and `attribute_map`
(attribute -> the JSON field name). Each document is walked recursively
from its kind's model; an unknown field, or a value of the wrong type,
is an error naming the document and the field path. Then the client's own
deserializer builds the object, which refuses a missing required field.

  k8s_schema.py FILE...       exit 0 when every document passes, 1 otherwise

What the generated models flatten, decided as the API server does:
  object    IntOrString (a port, maxUnavailable) or a raw extension: a
            string or an integer (or, for a raw extension, anything)
  quantity  resources' limits/requests and sizeLimit are strings in the
            models but resource.Quantity in the API: a number is accepted
Istio's kinds (*.istio.io) are not in the Kubernetes OpenAPI document:
they are reported as skipped here and checked by `meshctl analyze`, which
decodes them as meshd does. Any other kind the client does not know fails.
"""

import re
import sys

import yaml
from kubernetes import client

# Attributes whose str type is really resource.Quantity.
QUANTITY = {"limits", "requests", "size_limit", "hard", "capacity", "allocatable"}
# IntOrString fields (typed "object" in the models); anything else typed
# "object" is a raw extension and takes any JSON value.
INT_OR_STRING = {"port", "target_port", "max_unavailable", "max_surge", "min_available"}


class Checker:
    def __init__(self):
        self.errors = []

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def scalar(self, where, typ, val, attr):
        if typ == "str":
            ok = isinstance(val, str) or (attr in QUANTITY and isinstance(val, (int, float))
                                          and not isinstance(val, bool))
        elif typ == "int":
            ok = isinstance(val, int) and not isinstance(val, bool)
        elif typ == "float":
            ok = isinstance(val, (int, float)) and not isinstance(val, bool)
        elif typ == "bool":
            ok = isinstance(val, bool)
        elif typ in ("datetime", "date"):
            ok = isinstance(val, str)
        elif typ == "object":
            ok = (isinstance(val, (str, int)) and not isinstance(val, bool)) \
                if attr in INT_OR_STRING else True
        else:
            self.err(where, f"schema type {typ!r} unknown to the checker")
            return
        if not ok:
            self.err(where, f"{type(val).__name__} {val!r} where the API wants {typ}")

    def value(self, where, typ, val, attr):
        if val is None:
            return  # null: the field unset, as the API server takes it
        m = re.fullmatch(r"list\[(.+)\]", typ)
        if m:
            if not isinstance(val, list):
                self.err(where, f"{type(val).__name__} where the API wants a list")
                return
            for i, item in enumerate(val):
                self.value(f"{where}[{i}]", m.group(1), item, attr)
            return
        m = re.fullmatch(r"dict\(str, (.+)\)", typ)
        if m:
            if not isinstance(val, dict):
                self.err(where, f"{type(val).__name__} where the API wants a map")
                return
            for k, item in val.items():
                if not isinstance(k, str):
                    self.err(where, f"key {k!r} is not a string")
                self.value(f"{where}.{k}", m.group(1), item, attr)
            return
        model = getattr(client, typ, None) if typ[:1] == "V" or typ[:1].isupper() else None
        if model is not None and hasattr(model, "openapi_types"):
            self.model(where, model, val)
        else:
            self.scalar(where, typ, val, attr)

    def model(self, where, model, val):
        if not isinstance(val, dict):
            self.err(where, f"{type(val).__name__} where the API wants an object ({model.__name__})")
            return
        by_json = {j: a for a, j in model.attribute_map.items()}
        for key, item in val.items():
            attr = by_json.get(key)
            if attr is None:
                self.err(f"{where}.{key}", f"unknown field (not in {model.__name__})")
                continue
            self.value(f"{where}.{key}", model.openapi_types[attr], item, attr)


def model_for(api_version, kind):
    """The client's model of a top-level kind: V1DaemonSet for apps/v1."""
    version = api_version.rsplit("/", 1)[-1]
    prefix = version[:1].upper() + version[1:]
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    candidates = [prefix + kind]
    if not group:
        candidates.insert(0, "CoreV1" + kind)  # CoreV1Event beside EventsV1Event
    for name in candidates:
        m = getattr(client, name, None)
        if m is not None and hasattr(m, "openapi_types"):
            return m
    return None


def check_document(name, doc, checker):
    """Returns 'checked', 'skipped' (an Istio kind) or 'failed'."""
    before = len(checker.errors)
    if not isinstance(doc, dict):
        checker.err(name, "not a mapping")
        return "failed"
    av, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(av, str) or not isinstance(kind, str):
        checker.err(name, "apiVersion and kind are required strings")
        return "failed"
    group = av.rsplit("/", 1)[0] if "/" in av else ""
    if group.endswith(".istio.io"):
        return "skipped"
    model = model_for(av, kind)
    if model is None:
        checker.err(name, f"{av} {kind}: not a kind of the Kubernetes API")
        return "failed"
    checker.model(name, model, doc)
    if len(checker.errors) == before:
        # Required fields: the client's deserializer refuses a None.
        try:
            client.ApiClient()._ApiClient__deserialize(doc, model.__name__)
        except (ValueError, TypeError) as e:
            checker.err(name, f"{e}")
    return "checked" if len(checker.errors) == before else "failed"


def check_files(paths):
    checker = Checker()
    counts = {"checked": 0, "skipped": 0, "failed": 0}
    for path in paths:
        try:
            with open(path) as f:
                docs = list(yaml.safe_load_all(f))
        except (OSError, yaml.YAMLError) as e:
            checker.err(path, f"{e}")
            counts["failed"] += 1
            continue
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            name = meta.get("name", "?") if isinstance(meta, dict) else "?"
            counts[check_document(f"{path}#{i} {kind}/{name}", doc, checker)] += 1
    return checker.errors, counts


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    errors, counts = check_files(argv)
    for e in errors:
        print("k8s_schema: " + e)
    print(f"k8s_schema: {counts['checked']} documents checked, {counts['skipped']} Istio "
          f"documents left to meshctl analyze, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
