#!/usr/bin/python3
"""Which backend answered: a tiny TCP server and client for routing tests.

  tally.py serve PORT NAME        accept on [::]:PORT; to each connection
                                  write NAME and a newline, then echo what
                                  arrives until EOF (so a connection can be
                                  held open and checked later)
  tally.py count ADDR PORT N [MS] N sequential connections (MS milliseconds
                                  apart); print JSON {"NAME": count, ...,
                                  "failed": k}
  tally.py hold ADDR PORT FLAG    connect, print the NAME, wait until the
                                  file FLAG exists (60 s at most), then
                                  check the connection still echoes
  tally.py holdmany ADDR PORT N FLAG
                                  open N connections (at most 5000) and
                                  read each one's NAME, print "held N",
                                  keep them idle until FLAG exists (600 s
                                  at most), then close them

The client speaks first (HELLO), as client-first protocols do: meshd sniffs
connections to unnamed Service ports as Istio does (a request line is HTTP,
anything else bytes), and a client that sent nothing would make it wait out
the sniffing timeout before carrying a server-first protocol.
"""
import json
import os
import socket
import sys
import threading
import time


def serve(port, name):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(1024)

    def handle(c):
        try:
            c.sendall(name.encode() + b"\n")
            while True:
                data = c.recv(4096)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


HELLO = b"tally-hello\n"


def connect(addr, port):
    c = socket.create_connection((addr, port), timeout=5)
    c.sendall(HELLO)
    return c


def read_reply(c):
    """The next line that is not the server echoing HELLO."""
    while True:
        line = read_line(c)
        if line != HELLO.decode().strip():
            return line


_pending = {}  # bytes read past a line, per socket


def read_line(c):
    buf = _pending.pop(c.fileno(), b"")
    while b"\n" not in buf:
        data = c.recv(256)
        if not data:
            break
        buf += data
    line, sep, rest = buf.partition(b"\n")
    if rest:
        _pending[c.fileno()] = rest
    return line.decode(errors="replace").strip()


def drain(c):
    """Close cleanly: half-close, then read to the server's EOF. Closing
    with the HELLO echo still unread would reset the connection, and the
    mesh rightly records a reset by the client as DC."""
    try:
        c.shutdown(socket.SHUT_WR)
        while c.recv(4096):
            pass
    except OSError:
        pass


def count(addr, port, n, gap_ms=0):
    tally = {"failed": 0}
    # Bounded in time as well as count (longer under emulation).
    deadline = time.monotonic() + float(os.environ.get("TALLY_DEADLINE_S", "300"))
    for _ in range(n):
        if time.monotonic() > deadline:
            tally["failed"] += 1
            continue
        try:
            with connect(addr, port) as c:
                name = read_line(c)
                _pending.pop(c.fileno(), None)
                drain(c)
                tally[name or "failed"] = tally.get(name or "failed", 0) + 1
        except OSError:
            tally["failed"] += 1
        if gap_ms:
            time.sleep(gap_ms / 1000)
    print(json.dumps(tally))


def hold(addr, port, flag):
    with connect(addr, port) as c:
        print(read_line(c), flush=True)
        for _ in range(600):
            if os.path.exists(flag):
                break
            time.sleep(0.1)
        c.sendall(b"still-open\n")
        print("echo:" + read_reply(c), flush=True)


def holdmany(addr, port, n, flag):
    import resource
    n = min(n, 5000)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    conns = []
    for _ in range(n):
        c = connect(addr, port)
        read_line(c)
        conns.append(c)
    print("held %d" % len(conns), flush=True)
    for _ in range(6000):
        if os.path.exists(flag):
            break
        time.sleep(0.1)
    for c in conns:
        c.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif cmd == "count":
        count(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
              int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "holdmany":
        holdmany(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
