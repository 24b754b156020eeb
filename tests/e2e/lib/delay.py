#!/usr/bin/python3
"""A wire with latency between two network namespaces, for e2e tests on a
kernel without sch_netem: a TUN device in each netns, and this process
copying IP packets between them, each one DELAY_MS later.

  delay.py NETNS_A TUN_A NETNS_B TUN_B DELAY_MS

Packets the kernel routes into TUN_A come out of TUN_B (and back) after
DELAY_MS, so an RTT across it grows by 2 x DELAY_MS. The caller brings the
links up and routes through them. TUN devices get complete checksums and
no GSO (no offloads are requested), so packets are copied as they are.
Bounded: at most 4096 packets in flight; beyond that, drops (as a full
queue would). Runs until killed.
"""
import ctypes
import fcntl
import heapq
import os
import select
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MAX_IN_FLIGHT = 4096

libc = ctypes.CDLL(None, use_errno=True)


def enter(netns):
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + netns)
    os.close(fd)


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ns_a, tun_a, ns_b, tun_b, delay_ms = sys.argv[1:6]
    delay = int(delay_ms) / 1000.0
    enter(ns_a)
    fa = tun(tun_a)
    enter(ns_b)
    fb = tun(tun_b)
    peer = {fa: fb, fb: fa}
    queue = []  # (due, seq, out_fd, packet)
    seq = 0
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([fa, fb], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            for _ in range(64):
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if len(queue) < MAX_IN_FLIGHT:
                    seq += 1
                    heapq.heappush(queue, (now + delay, seq, peer[fd], pkt))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, pkt = heapq.heappop(queue)
            try:
                os.write(out, pkt)
            except OSError:
                pass  # a full or downed link drops, as a wire would


if __name__ == "__main__":
    main()
