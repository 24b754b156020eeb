#!/usr/bin/env python3
"""The pod side of deploy/'s manifests, for tests (needs root).

  deploy_pod.py lint FILE...
      the rules the API server, the kubelet or the runtime apply to a pod
      template that a schema does not show: no privileged: true;
      Bidirectional mount propagation only in a privileged container;
      allowPrivilegeEscalation: false refused with CAP_SYS_ADMIN; every
      capability a Linux one; every volumeMount names a volume and every
      volume is mounted; a readiness probe's port and the Prometheus port
      annotation are ports of the container.
  deploy_pod.py rbac FILE
      the ClusterRoles' rules, one "group resource verb" a line, sorted.
  deploy_pod.py plan FILE DAEMONSET CONTAINER --node N [--env K=V]...
      the container as the kubelet would start it, in JSON: argv ($(VAR)
      expanded), env (fieldRef spec.nodeName -> N), capabilities, mounts,
      probes, the pod's terminationGracePeriodSeconds and annotations.
  deploy_pod.py run FILE DAEMONSET CONTAINER --node N --rootfs DIR
          --host-root DIR [--host-real PATH]... [--secret NAME=DIR]...
          [--sa-dir DIR] [--env K=V]... [--bind SRC=HOSTPATH]...
      runs it as a container runtime would, in the current (private:
      `unshare -m --propagation private`) mount namespace: DIR as the
      root file system (read-only if readOnlyRootFilesystem), /proc, /dev
      and /sys, each volume mounted at its mountPath (a hostPath P from
      --host-root/P, or from P itself when P is a --host-real; a Secret
      from its --secret DIR; the service account's token and ca.crt from
      --sa-dir, where the pod automounts them), readOnly mounts read-only,
      the user and the capabilities of its securityContext (the bounding
      set cut to them: what a root process keeps across exec), then exec.
      --bind puts SRC at HOSTPATH of the simulated host first (a pod's
      network namespace as the runtime pins it in /var/run/netns).
"""

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys

import yaml

CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
        "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
        "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
        "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
        "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
        "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
# What containerd and CRI-O give a container that drops nothing.
RUNTIME_DEFAULT = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                   "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                   "AUDIT_WRITE"]
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def docs(paths):
    for p in paths:
        with open(p) as f:
            for d in yaml.safe_load_all(f):
                if isinstance(d, dict):
                    yield p, d


def pod_templates(paths):
    for p, d in docs(paths):
        if d.get("kind") in ("DaemonSet", "Deployment", "StatefulSet", "Job"):
            yield p, d, d["spec"]["template"]
        elif d.get("kind") == "Pod":
            yield p, d, d


def containers(spec):
    return [(c, True) for c in spec.get("initContainers") or []] + \
           [(c, False) for c in spec.get("containers") or []]


def cap_set(sc):
    """The capabilities a container runs with, by the runtime's rules."""
    sc = sc or {}
    if sc.get("privileged"):
        return set(CAPS)
    caps = sc.get("capabilities") or {}
    drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
    have = set() if "ALL" in drop else set(RUNTIME_DEFAULT) - drop
    return have | {c.upper().removeprefix("CAP_") for c in caps.get("add") or []}


def lint(paths):
    errs = []
    for path, d, tmpl in pod_templates(paths):
        spec, meta = tmpl["spec"], tmpl.get("metadata") or {}
        where = f"{path}: {d['kind']}/{d['metadata']['name']}"
        vols = {v["name"] for v in spec.get("volumes") or []}
        used = set()
        for c, _init in containers(spec):
            w = f"{where} container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("privileged"):
                errs.append(f"{w}: privileged: true (name the capabilities instead)")
            caps = sc.get("capabilities") or {}
            for name in (caps.get("add") or []) + (caps.get("drop") or []):
                if name.upper().removeprefix("CAP_") not in CAPS + ["ALL"]:
                    errs.append(f"{w}: {name!r} is not a Linux capability")
            if sc.get("allowPrivilegeEscalation") is False and \
                    (sc.get("privileged") or "SYS_ADMIN" in cap_set(sc)):
                errs.append(f"{w}: allowPrivilegeEscalation: false with CAP_SYS_ADMIN or privileged "
                            "(the API server refuses it)")
            for m in c.get("volumeMounts") or []:
                used.add(m["name"])
                if m["name"] not in vols:
                    errs.append(f"{w}: volumeMount {m['name']!r} names no volume")
                if m.get("mountPropagation") == "Bidirectional" and not sc.get("privileged"):
                    errs.append(f"{w}: Bidirectional propagation of {m['name']!r} needs a "
                                "privileged container (the API server refuses it)")
            ports = {p.get("name") for p in c.get("ports") or []} | \
                    {p["containerPort"] for p in c.get("ports") or []}
            probe = (c.get("readinessProbe") or {}).get("httpGet")
            if probe and probe["port"] not in ports:
                errs.append(f"{w}: the readiness probe's port {probe['port']} is not a port of it")
        for v in vols - used:
            errs.append(f"{where}: volume {v!r} is mounted nowhere")
        ann = (meta.get("annotations") or {}).get("prometheus.io/port")
        if ann is not None:
            all_ports = {p["containerPort"] for c, _ in containers(spec) for p in c.get("ports") or []}
            if int(ann) not in all_ports:
                errs.append(f"{where}: prometheus.io/port {ann} is no container's port")
    return errs


def rbac(paths):
    out = set()
    for _p, d in docs(paths):
        if d.get("kind") == "ClusterRole":
            for r in d.get("rules") or []:
                for g in r.get("apiGroups") or []:
                    for res in r.get("resources") or []:
                        for v in r.get("verbs") or []:
                            out.add(f"{g or 'core'} {res} {v}")
    return sorted(out)


def expand(s, env):
    """The kubelet's $(VAR) expansion: a defined VAR is replaced, $$ is $."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, s)


def find(path, ds, name):
    for _p, d in docs([path]):
        if d.get("kind") == "DaemonSet" and d["metadata"]["name"] == ds:
            tmpl = d["spec"]["template"]
            for c, init in containers(tmpl["spec"]):
                if c["name"] == name:
                    return tmpl, c, init
    sys.exit(f"deploy_pod: no container {name} in DaemonSet {ds} of {path}")


def plan(path, ds, name, node, extra_env):
    tmpl, c, init = find(path, ds, name)
    spec = tmpl["spec"]
    env = {"PATH": "/usr/bin", "HOSTNAME": node}
    env.update(dict(e.split("=", 1) for e in extra_env))
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = expand(str(e["value"]), env)
        else:
            field = e["valueFrom"]["fieldRef"]["fieldPath"]
            if field != "spec.nodeName":
                sys.exit(f"deploy_pod: fieldRef {field} not simulated")
            env[e["name"]] = node
    argv = [expand(a, env) for a in (c.get("command") or ["/usr/bin/meshd"]) + (c.get("args") or [])]
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    sc = c.get("securityContext") or {}
    return {
        "init": init, "argv": argv, "env": env, "caps": sorted(cap_set(sc)),
        "run_as": sc.get("runAsUser", 0), "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
        "no_new_privs": sc.get("allowPrivilegeEscalation") is False,
        "mounts": [dict(m, volume=vols[m["name"]]) for m in c.get("volumeMounts") or []],
        "automount_sa": spec.get("automountServiceAccountToken", True),
        "readiness": c.get("readinessProbe"), "ports": c.get("ports") or [],
        "grace": spec.get("terminationGracePeriodSeconds", 30),
        "annotations": (tmpl.get("metadata") or {}).get("annotations") or {},
    }


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def under(root, path):
    return os.path.join(root, path.lstrip("/"))


def drop_caps(keep):
    libc = ctypes.CDLL(None, use_errno=True)
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    want = {CAPS.index(c) for c in keep}
    for cap in range(last + 1):
        if cap not in want and libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    for line in open("/proc/self/status"):
        if line.startswith("CapInh:") and int(line.split()[1], 16) & ~sum(1 << c for c in want):
            raise OSError("inheritable capabilities beyond the set")


def run(a):
    p = plan(a.file, a.daemonset, a.container, a.node, a.env)
    root, host = os.path.abspath(a.rootfs), os.path.abspath(a.host_root)
    secrets = dict(s.split("=", 1) for s in a.secret)
    real = set(a.host_real)
    for b in a.bind:  # the simulated host's own mounts (a pinned netns)
        src, dst = b.split("=", 1)
        target = under(host, dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
        mount("--bind", src, target)
    mount("--bind", root, root)
    mount("-t", "proc", "proc", under(root, "/proc"))
    mount("--rbind", "/dev", under(root, "/dev"))
    mount("-t", "sysfs", "-o", "ro", "sysfs", under(root, "/sys"))
    mounts = list(p["mounts"])
    if p["automount_sa"] and a.sa_dir:
        mounts.append({"mountPath": SA_PATH, "readOnly": True, "volume": {"sa": a.sa_dir}})
    for m in mounts:
        v = m["volume"]
        if "hostPath" in v:
            hp = v["hostPath"]["path"]
            src = hp if hp in real else under(host, hp)
            if v["hostPath"].get("type") == "DirectoryOrCreate":
                os.makedirs(src, exist_ok=True)
        elif "secret" in v:
            src = secrets[v["secret"]["secretName"]]
        elif "sa" in v:
            src = v["sa"]
        else:
            sys.exit(f"deploy_pod: volume {v} not simulated")
        target = under(root, m["mountPath"])
        os.makedirs(target, exist_ok=True)
        mount("--rbind", src, target)
        if m.get("readOnly"):
            mount("-o", "remount,bind,ro", target)
    if p["read_only_root"]:
        mount("-o", "remount,bind,ro", root)
    os.chroot(root)
    os.chdir("/")
    drop_caps(p["caps"])
    if p["no_new_privs"]:
        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if p["run_as"]:
        os.setgroups([])
        os.setgid(p["run_as"])
        os.setuid(p["run_as"])
    os.execve(p["argv"][0], p["argv"], p["env"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("lint").add_argument("files", nargs="+")
    sub.add_parser("rbac").add_argument("files", nargs="+")
    for name in ("plan", "run"):
        s = sub.add_parser(name)
        s.add_argument("file")
        s.add_argument("daemonset")
        s.add_argument("container")
        s.add_argument("--node", required=True)
        s.add_argument("--env", action="append", default=[])
        if name == "run":
            s.add_argument("--rootfs", required=True)
            s.add_argument("--host-root", required=True)
            s.add_argument("--host-real", action="append", default=[])
            s.add_argument("--secret", action="append", default=[])
            s.add_argument("--sa-dir")
            s.add_argument("--bind", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "lint":
        errs = lint(a.files)
        for e in errs:
            print("deploy_pod: " + e)
        return 1 if errs else 0
    if a.cmd == "rbac":
        print("\n".join(rbac(a.files)))
        return 0
    if a.cmd == "plan":
        print(json.dumps(plan(a.file, a.daemonset, a.container, a.node, a.env), indent=1))
        return 0
    run(a)
    return 1


if __name__ == "__main__":
    sys.exit(main())
