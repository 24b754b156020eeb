#!/usr/bin/python3
"""A container runtime's CNI side, for tests (Debian has no cnitool).

  cnirt.py ADD|DEL|CHECK|STATUS CONFLIST NETNS CONTAINERID NS NAME UID

runs the conflist's plugins as libcni does: each plugin binary found in
CNI_PATH, executed with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
CNI_IFNAME=eth0, CNI_ARGS (IgnoreUnknown=1;K8S_POD_NAMESPACE=NS;
K8S_POD_NAME=NAME;K8S_POD_INFRA_CONTAINER_ID=ID;K8S_POD_UID=UID) and
CNI_PATH in its environment, and on stdin its plugin configuration with the
list's cniVersion and name and, after the first (ADD) or from the cached
result (DEL, CHECK), "prevResult". ADD runs the plugins in order, DEL in
reverse, and a DEL goes on past a failing plugin. The final result is
cached under CNIRT_CACHE (default /tmp/cnirt) per container and printed;
a plugin's error is printed as it was and the exit status is 1. STATUS
asks every plugin (1.1).
"""
import json
import os
import subprocess
import sys


def run(plugin, conf, env):
    path = None
    for d in env["CNI_PATH"].split(":"):
        if os.path.exists(os.path.join(d, plugin["type"])):
            path = os.path.join(d, plugin["type"])
            break
    if path is None:
        return 1, json.dumps({"code": 5, "msg": "plugin not found: " + plugin["type"]})
    p = subprocess.run([path], input=json.dumps(conf).encode(), env=env, capture_output=True,
                       timeout=30)
    if p.stderr:
        sys.stderr.write(p.stderr.decode(errors="replace"))
    return p.returncode, p.stdout.decode(errors="replace")


def main():
    cmd, conflist, netns, cid, ns, name, uid = sys.argv[1:8]
    with open(conflist) as f:
        lst = json.load(f)
    cache_dir = os.environ.get("CNIRT_CACHE", "/tmp/cnirt")
    os.makedirs(cache_dir, exist_ok=True)
    cache = os.path.join(cache_dir, f"{lst['name']}-{cid}.json")
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID=cid, CNI_NETNS=netns, CNI_IFNAME="eth0",
               CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name};"
                        f"K8S_POD_INFRA_CONTAINER_ID={cid};K8S_POD_UID={uid}",
               CNI_PATH=os.environ.get("CNI_PATH", "/usr/lib/cni"))
    plugins = lst["plugins"]
    prev = None
    if cmd in ("DEL", "CHECK") and os.path.exists(cache):
        with open(cache) as f:
            prev = json.load(f)
    failed = None
    for plugin in (reversed(plugins) if cmd == "DEL" else plugins):
        conf = dict(plugin, cniVersion=lst["cniVersion"], name=lst["name"])
        if prev is not None and cmd != "STATUS":
            conf["prevResult"] = prev
        rc, out = run(plugin, conf, env)
        if rc != 0:
            failed = failed or out
            if cmd != "DEL":
                break
            continue
        if cmd == "ADD":
            prev = json.loads(out)
    if failed:
        print(failed.strip())
        return 1
    if cmd == "ADD":
        with open(cache, "w") as f:
            json.dump(prev, f)
        print(json.dumps(prev))
    elif cmd == "DEL" and os.path.exists(cache):
        os.unlink(cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
