#!/usr/bin/env python3
"""Extracts istioctl's analyzer test table (testGrid in
pkg/config/analysis/analyzers/analyzers_test.go of istio/istio) into
istioctl-cases.txt, which tests/unit/test_config_parity.c reads.

  usage: git --git-dir=ISTIO show COMMIT:pkg/config/analysis/analyzers/analyzers_test.go \\
           | extract-istioctl-cases.py MESSAGES_YAML > istioctl-cases.txt

MESSAGES_YAML is pkg/config/analysis/msg/messages.yaml (message name -> code).
Output, one record a line:
  case NAME ANALYZER          (pkg.Type)
  input PATH                  (relative to the corpus, istio/ prefix)
  expect CODE KIND [NS/]NAME  (istioctl's origin)
"""
import re
import sys

codes = {}
name = None
for line in open(sys.argv[1]):
    m = re.match(r'\s*- name: "(\w+)"', line)
    if m:
        name = m.group(1)
    m = re.match(r'\s*code: (IST\d+)', line)
    if m and name:
        codes[name] = m.group(1)

src = sys.stdin.read()
grid = src[src.index("var testGrid = []testCase{"):]
grid = grid[: grid.index("\n}\n")]
# Cases are the top-level {...} entries of the grid.
depth, start, cases = 0, None, []
for i, c in enumerate(grid):
    if c == "{":
        depth += 1
        if depth == 2:
            start = i
    elif c == "}":
        if depth == 2:
            cases.append(grid[start : i + 1])
        depth -= 1
for body in cases:
    n = re.search(r'name:\s*"([^"]*)"', body)
    a = re.search(r"analyzer:\s*&([\w.]+)", body)
    if not n or not a:
        continue
    print("case %s %s" % (n.group(1).replace(" ", "_"), a.group(1)))
    files = re.search(r"inputFiles:\s*\[\]string\{(.*?)\}", body, re.S)
    for f in re.findall(r'"([^"]+)"', files.group(1) if files else ""):
        print("input istio/pkg/config/analysis/analyzers/" + f)
    exp = re.search(r"expected:\s*\[\]message\{(.*)\}", body, re.S)
    for mname, origin in re.findall(r'\{msg\.(\w+),\s*"([^"]*)"\}', exp.group(1) if exp else ""):
        print("expect %s %s" % (codes.get(mname, "?" + mname), origin))
